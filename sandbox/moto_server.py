"""Run moto's server, with two performance fixes for queues that hold thousands of messages, and two S3
rules that real S3 enforces and moto does not.

moto 5 reads a queue's attributes on every SendMessage and for every received message; each read counts
the queue's messages, asking each one for the time through a slow datetime round trip. With the
3,000-message arrivals queue of a burst, a send or receive took tens of milliseconds to a second.
The fixes: take "now" from ``time.time()`` (what moto computes, without the datetime detour) and read
the retention period directly. Behaviour is unchanged. ``sandbox.aws.MotoServer`` runs this module.

The S3 rules (``s3_refusal``): a presigned URL is refused once it has expired (403 AccessDenied "Request
has expired"), so "the URL expired before Extend fetched it" can happen here as it does on AWS; and an
object key longer than 1,024 bytes is refused (400 KeyTooLongError). And one S3 fix: ListObjectVersions
honours ``encoding-type=url`` (moto wrote keys raw, so one key with a control character, which XML 1.0
cannot carry, made every version listing of its bucket fail with 500).
"""

from __future__ import annotations

import atexit
import cProfile
import json
import logging
import marshal
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote_to_bytes, urlsplit

import moto.server as moto_server
import moto.sqs.models as sqs_models
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.core.utils import unix_time
from moto.dynamodb.models import dynamodb_backends
from moto.s3.responses import S3Response

import sandbox.moto_speed  # noqa: F401 - its patches apply on import
from sandbox import moto_atomic, moto_s3_events
from sandbox.aws import STATUS_COUNTS_PATH

_moto_unix_time_millis = sqs_models.unix_time_millis


def _unix_time_millis(dt: datetime | None = None) -> float:
    return time.time() * 1000.0 if dt is None else _moto_unix_time_millis(dt)


def _retained(self: sqs_models.SQSBackend, queue_name: str, message: sqs_models.Message) -> bool:
    queue = self.get_queue(queue_name)
    retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000  # type: ignore[operator]
    return retain_until > unix_time()


sqs_models.unix_time_millis = _unix_time_millis
sqs_models.SQSBackend.is_message_valid_based_on_retention_period = _retained  # type: ignore[method-assign]

S3_MAX_KEY_BYTES = 1024


def _s3_error(status: str, code: str, message: str) -> tuple[str, bytes]:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    body += "</Error>"
    return status, body.encode("utf-8")


def _presigned_expiry(query: dict[str, list[str]]) -> float | None:
    """When a presigned S3 URL stops working (epoch seconds), or None when the URL is not presigned."""
    if "Signature" in query and "Expires" in query:  # SigV2 query auth: Expires is an epoch time
        return float(query["Expires"][0])
    credential = query.get("X-Amz-Credential", [""])[0]
    if "X-Amz-Expires" in query and "X-Amz-Date" in query and "/s3/" in credential:
        signed = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return signed.timestamp() + float(query["X-Amz-Expires"][0])
    return None


def s3_refusal(environ: dict[str, Any], now: float) -> tuple[str, bytes] | None:
    """The error real S3 would answer and moto does not, or None to let moto handle the request."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI") or environ.get("PATH_INFO", "")
    parts = urlsplit(raw)
    query = parse_qs(parts.query)
    try:
        expires = _presigned_expiry(query)
    except ValueError:
        expires = None
    if expires is not None and now > expires:
        return _s3_error("403 Forbidden", "AccessDenied", "Request has expired")
    is_s3_call = "/s3/aws4_request" in environ.get("HTTP_AUTHORIZATION", "")
    if is_s3_call and environ.get("REQUEST_METHOD") in ("PUT", "POST"):
        path = unquote_to_bytes(parts.path).lstrip(b"/")
        _bucket, _, key = path.partition(b"/")
        if len(key) > S3_MAX_KEY_BYTES:
            return _s3_error("400 Bad Request", "KeyTooLongError", "Your key is too long")
    return None


PROFILE_ENV = "BATCHDROP_MOTO_PROFILE"


class _RequestProfiles:
    """``BATCHDROP_MOTO_PROFILE=PATH``: every request runs under its own cProfile (the server answers each
    request in a new thread, and a profiler sees one thread); their stats are summed and written to PATH
    at exit, for ``pstats.Stats(PATH)``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.stats: dict[Any, Any] = {}
        self._lock = threading.Lock()
        atexit.register(self.dump)

    def run(self, call: Callable[[], Iterable[bytes]]) -> Iterable[bytes]:
        profile = cProfile.Profile()
        body = profile.runcall(lambda: list(call()))  # the body too: moto may build it lazily
        profile.create_stats()
        with self._lock:
            for func, (cc, nc, tt, ct, callers) in profile.stats.items():  # type: ignore[attr-defined]
                old = self.stats.get(func)
                if old is None:
                    self.stats[func] = (cc, nc, tt, ct, dict(callers))
                    continue
                merged = old[4]
                for caller, counts in callers.items():
                    prev = merged.get(caller)
                    merged[caller] = (
                        counts if prev is None else tuple(a + b for a, b in zip(prev, counts, strict=True))
                    )
                self.stats[func] = (old[0] + cc, old[1] + nc, old[2] + tt, old[3] + ct, merged)
        return body

    def dump(self) -> None:
        with self._lock, open(self.path, "wb") as out:
            marshal.dump(self.stats, out)


_profiles = _RequestProfiles(os.environ[PROFILE_ENV]) if os.environ.get(PROFILE_ENV) else None


def status_counts(table_name: str, attribute: str = "status", region: str = "us-east-1") -> dict[str, int]:
    """Items of a table by the string value of one attribute, read from moto's memory: the sandbox's
    progress display asks every second, and a Scan would copy, size and serialize every item each time
    (1.4 s of CPU per Scan of 2,500 Files items); this costs about a microsecond per item."""
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables[table_name]
    partitions = list(table.items.values())  # list(): one step under the GIL, while writers go on
    items = [i for p in partitions for i in list(p.values())] if table.range_key_attr else partitions
    counts: Counter[str] = Counter()
    for item in items:
        value = item.attrs.get(attribute)
        if value is not None and value.type == "S":
            counts[value.value] += 1
    return dict(counts)


def _status_counts_response(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        body, status = json.dumps(status_counts(query["table"][0])).encode(), "200 OK"
    except (KeyError, IndexError) as exc:  # no such table, or no table named
        body, status = json.dumps({"error": repr(exc)}).encode(), "404 Not Found"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


class _RealisticS3Dispatcher(moto_server.DomainDispatcherApplication):
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATUS_COUNTS_PATH:
            return _status_counts_response(environ, start_response)
        refusal = s3_refusal(environ, time.time())
        if refusal is None:
            if _profiles is not None:
                return _profiles.run(
                    lambda: super(_RealisticS3Dispatcher, self).__call__(environ, start_response)
                )
            return super().__call__(environ, start_response)
        status, body = refusal
        start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
        return [body]


moto_server.DomainDispatcherApplication = _RealisticS3Dispatcher  # main() builds its app from this name

_moto_list_object_versions = S3Response.list_object_versions
_ENCODED_FIELDS = ("Delimiter", "KeyMarker", "NextKeyMarker", "Prefix")


def _list_object_versions(self: S3Response) -> Any:
    if self.querystring.get("encoding-type", [None])[0] != "url":
        return _moto_list_object_versions(self)
    serialize = self.serialized

    def serialized(action_result: ActionResult) -> Any:
        result: Any = action_result.result
        for entry in [*result.get("Versions", []), *result.get("DeleteMarkers", [])]:
            entry["Key"] = quote(entry["Key"], safe="/")
        for entry in result.get("CommonPrefixes", []):
            entry["Prefix"] = quote(entry["Prefix"], safe="/")
        for name in _ENCODED_FIELDS:
            if result.get(name):
                result[name] = quote(result[name], safe="/")
        result["EncodingType"] = "url"
        return serialize(action_result)

    self.serialized = serialized  # type: ignore[method-assign]  # one S3Response per request
    return _moto_list_object_versions(self)


S3Response.list_object_versions = _list_object_versions  # type: ignore[method-assign]

moto_atomic.apply()
moto_s3_events.apply()

if __name__ == "__main__":
    # werkzeug logs every request (to our /dev/null), formatting it and taking the logging lock each time.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_server.main()
