"""S3 event notifications as SQS delivers them: parsed defensively (design §3 intake).

Real S3 sends ``versionId`` and ``sequencer``; moto leaves both out. Keys arrive form-encoded (a space is
``+``, ``+`` is ``%2B``) and must be decoded with ``unquote_plus``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


class MalformedEventError(ValueError):
    """The message is not an S3 notification batchdrop can read (it will end in the DLQ)."""


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    size: int
    etag: str | None
    version_id: str | None
    sequencer: str | None
    event_name: str
    event_time: str | None

    @property
    def is_folder_marker(self) -> bool:
        return self.key.endswith("/") and self.size == 0


@dataclass(frozen=True)
class ParsedMessage:
    objects: list[ObjectCreated]
    skipped: str | None = None  # why nothing in the message needs work (test event, removal, …)


def parse_notification(body: str) -> ParsedMessage:
    """The created objects in one SQS message body."""
    try:
        document = json.loads(body)
    except (TypeError, json.JSONDecodeError) as exc:
        raise MalformedEventError(f"message body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise MalformedEventError("message body is not a JSON object")
    if document.get("Event") == "s3:TestEvent":
        return ParsedMessage([], skipped="s3:TestEvent")
    records = document.get("Records")
    if not isinstance(records, list):
        raise MalformedEventError("message has no Records list (not an S3 event notification)")
    objects: list[ObjectCreated] = []
    ignored: list[str] = []
    for record in records:
        parsed = _parse_record(record)
        if isinstance(parsed, str):
            ignored.append(parsed)
        else:
            objects.append(parsed)
    skipped = None if objects else (", ".join(sorted(set(ignored))) or "no records")
    return ParsedMessage(objects, skipped=skipped)


def _parse_record(record: Any) -> ObjectCreated | str:
    if not isinstance(record, dict):
        raise MalformedEventError("an event record is not a JSON object")
    if record.get("eventSource") not in (None, "aws:s3"):
        return f"event source {record.get('eventSource')}"
    event_name = record.get("eventName")
    if not isinstance(event_name, str) or not event_name:
        raise MalformedEventError("an S3 event record has no eventName")
    if not event_name.startswith("ObjectCreated:"):
        return f"event {event_name}"
    version = str(record.get("eventVersion", "2.1"))
    if version.split(".")[0] != "2":
        raise MalformedEventError(f"unsupported S3 event version {version}")
    try:
        s3 = record["s3"]
        bucket = s3["bucket"]["name"]
        obj = s3["object"]
        key = unquote_plus(obj["key"])
        size = int(obj.get("size", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEventError(f"S3 record is missing {exc}") from None
    return ObjectCreated(
        bucket=bucket,
        key=key,
        size=size,
        etag=obj.get("eTag") or obj.get("etag"),
        version_id=obj.get("versionId") or None,
        sequencer=obj.get("sequencer"),
        event_name=event_name,
        event_time=record.get("eventTime"),
    )
