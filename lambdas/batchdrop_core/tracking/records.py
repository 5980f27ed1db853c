"""The records of the tracking tables and their vocabularies: a Files item (``TrackedFile``), a Batches item
(``Submission``), the statuses and ids.

A record's DynamoDB attribute names are its field names in camelCase (``submission_id`` is
``submissionId``), computed here and nowhere else; a field left at its default is not stored, which keeps
the items small (a Files item of a normal file stays under 1 KB: one write unit per write).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar

from batchdrop_core.dynamo import serialize

R = TypeVar("R")


@cache
def attribute_name(field_name: str) -> str:
    """The DynamoDB attribute that holds a record's field."""
    head, *rest = field_name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def record_from_values(cls: type[R], values: dict[str, Any], **derived: Any) -> R:
    """A record from an item's values: each field from its attribute, its default when the item lacks it;
    ``derived`` gives the fields that no attribute of the same name holds."""
    kwargs = {
        f.name: values[attribute_name(f.name)]
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.name not in derived and values.get(attribute_name(f.name)) is not None
    }
    return cls(**kwargs, **derived)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def record_to_values(record: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """An item's values from a record, by attribute name; a field at its default is ``None`` (not stored)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        if f.name in skip:
            continue
        value = getattr(record, f.name)
        values[attribute_name(f.name)] = None if value == _default(f) else value
    return values


class FileStatus:
    QUEUED = "QUEUED"
    SUBMITTED = "SUBMITTED"  # in a submission; the submission's state says whether Extend has it yet
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"

    TERMINAL = frozenset({PROCESSED, FAILED, REJECTED})
    ALL = (QUEUED, SUBMITTED, PROCESSED, FAILED, REJECTED)


class BatchState:
    SUBMITTING = "SUBMITTING"  # persisted, POST not yet known to have succeeded
    UNKNOWN = "UNKNOWN"  # POST outcome ambiguous: resolve through run metadata before resubmitting
    SUBMITTED = "SUBMITTED"  # Extend accepted it
    COMPLETED = "COMPLETED"  # every run is recorded (some may have failed)
    FAILED = "FAILED"  # Extend reported the whole batch failed
    ABANDONED = "ABANDONED"  # never reached Extend; its files went back to the queue

    OPEN = frozenset({SUBMITTING, UNKNOWN, SUBMITTED})
    TERMINAL = frozenset({COMPLETED, FAILED, ABANDONED})


UNROUTED = "-"  # problemRoute of files that matched no route
# Not a status: SUBMITTED files whose workflow run waits on a person's review (``reviewSince``), as counted
# for operators.
IN_REVIEW = "IN_REVIEW"


def file_id(bucket: str, key: str, version_id: str) -> str:
    """The id batchdrop gives a file: it names the object version and travels in run metadata."""
    return f"{bucket}/{key}#{version_id}"


def split_file_id(value: str) -> tuple[str, str]:
    """``(fileKey, versionId)`` from a file id; keys may contain '#', version ids never do."""
    file_key, _, version_id = value.rpartition("#")
    return file_key, version_id


def new_submission_id() -> str:
    # Time-ordered and unique without coordination: ms timestamp + random suffix.
    return f"sub_{int(time.time() * 1000):013d}{secrets.token_hex(6)}"


@dataclass
class TrackedFile:
    """One object version and where it is in the pipeline (an item of the Files table).

    The item is kept under 1 KB for a normal file, so each of its writes costs one write unit: what the
    submission records (processor, submission and URL-expiry times) is read from the Batches item, the
    bucket and key are read from ``fileKey``, and ``history`` holds only claims that went round again.
    """

    bucket: str
    key: str
    version_id: str
    status: str
    route: str | None = None
    size: int | None = None
    etag: str | None = None
    content_type: str | None = None
    user_metadata: dict[str, str] = field(default_factory=dict)
    arrived_at: str | None = None
    queued_at: str | None = None
    submission_id: str | None = None
    batch_id: str | None = None
    run_id: str | None = None
    attempts: int = 0
    completed_at: str | None = None
    result_key: str | None = None
    result_summary: dict[str, Any] | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    # Since when its run has waited on a person's review at Extend (workflows' NEEDS_REVIEW): the file is
    # SUBMITTED, neither failed nor stuck. Kept once the review ends, as a record that there was one.
    review_since: str | None = None
    # One entry per claim that did not settle the file (a requeued attempt, or a submission that never
    # reached Extend): {at, status: QUEUED, submissionId, runId?, reason}; at most MAX_HISTORY_ENTRIES.
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def file_id(self) -> str:
        return file_id(self.bucket, self.key, self.version_id)

    @property
    def file_key(self) -> str:
        return f"{self.bucket}/{self.key}"

    def item_key(self) -> dict[str, Any]:
        return {"fileKey": serialize(self.file_key), "versionId": serialize(self.version_id)}

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> TrackedFile:
        bucket, _, key = values["fileKey"].partition("/")
        return record_from_values(cls, values, bucket=bucket, key=key)

    def to_values(self) -> dict[str, Any]:
        """The item's values (``None``: not stored); ``fileKey`` holds the bucket and key."""
        return {"fileKey": self.file_key, **record_to_values(self, skip=("bucket", "key"))}


def with_derived_names(values: dict[str, Any]) -> dict[str, Any]:
    """A Files item's values plus the names its key implies (``fileId``, ``bucket``, ``key``), which the
    item does not store; for readers of raw items (the sandbox's checks, operators' scripts)."""
    bucket, _, key = values["fileKey"].partition("/")
    return {**values, "fileId": f"{values['fileKey']}#{values['versionId']}", "bucket": bucket, "key": key}


@dataclass(frozen=True)
class QueuedEntry:
    """A file as the queued index lists it: its keys and its place in the queue."""

    file_key: str
    version_id: str
    queued_at: str

    @property
    def file_id(self) -> str:
        return f"{self.file_key}#{self.version_id}"

    def item_key(self) -> dict[str, Any]:
        return {"fileKey": serialize(self.file_key), "versionId": serialize(self.version_id)}


def queued_shard(route: str, file_identifier: str, shards: int) -> str:
    digest = hashlib.blake2s(file_identifier.encode("utf-8"), digest_size=4).digest()
    return f"{route}#{int.from_bytes(digest, 'big') % shards}"


# History is kept for attempts that did not settle a file. Releases (a submission that never reached Extend)
# do not use an attempt, so a long outage could repeat them without end: the history stops growing here,
# and so does the item.
MAX_HISTORY_ENTRIES = 20
SUBMISSION_NOT_SENT = "SUBMISSION_NOT_SENT"  # history reason of a release


@dataclass
class Submission:
    """One batch submission (an item of the Batches table), created before Extend is called."""

    submission_id: str
    route: str
    processor_type: str
    processor_id: str | None  # None: the type names no processor (parse)
    state: str
    created_at: str
    processor_version: str | None = None
    # The route's whole configuration when it was submitted (runconfig.route_digest): routes change
    # without a redeploy (`batchdrop routes apply`); the batch keeps what it was submitted with.
    route_digest: str | None = None
    file_count: int = 0
    batch_id: str | None = None
    submitted_at: str | None = None
    completed_at: str | None = None
    extend_status: str | None = None
    processed_count: int = 0
    failed_count: int = 0
    requeued_count: int = 0
    adopted: bool = False
    note: str | None = None
    notified_at: str | None = None
    manifest_key: str | None = None
    url_expires_at: str | None = None  # when the presigned URLs of its files expire (url mode)
    orphan_searches: int = 0  # searches of Extend's runs that found none (an ambiguous POST)
    orphan_searched_at: str | None = None  # the last of them
    late_batch_at: str | None = None  # an ABANDONED submission's batch turned up at Extend after all
    credits: float | None = None  # Extend credits its runs used, as Extend reported them (when finished)
    # Types whose runs report one by one (workflows): runs whose file this submission settled, and runs
    # that left Extend's processing (settled, or waiting on a person's review). Counted by the run events;
    # the reconciler compares them with Extend's list to find runs whose webhook was lost.
    runs_settled: int = 0
    runs_out_of_processing: int = 0

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Submission:
        return record_from_values(cls, values, processor_id=values.get("processorId"))

    def to_values(self) -> dict[str, Any]:
        return record_to_values(self)
