"""Intake: S3 notifications become one tracked Files item per object version (design §3, I1, I6)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from batchdrop_core.filetypes import extension_of, is_supported, user_metadata_too_large
from batchdrop_core.observability import logger
from batchdrop_core.runtime import Runtime
from batchdrop_core.s3events import ObjectCreated, parse_notification
from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking import FileStatus, TrackedFile


class RejectReason:
    NO_ROUTE = "NO_ROUTE"
    EMPTY_FILE = "EMPTY_FILE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"
    METADATA_TOO_LARGE = "METADATA_TOO_LARGE"
    OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"


UNVERSIONED = "null"  # S3's own version id for objects written while versioning was off


@dataclass
class IntakeOutcome:
    """What one SQS message did; counts feed metrics, routes get a flush request."""

    counts: Counter[str] = field(default_factory=Counter)
    queued_routes: set[str] = field(default_factory=set)

    def merge(self, other: IntakeOutcome) -> None:
        self.counts.update(other.counts)
        self.queued_routes |= other.queued_routes


def ingest_message(rt: Runtime, body: str) -> IntakeOutcome:
    """Track every object created in one SQS message; raises (so the message is retried) on AWS errors."""
    outcome = IntakeOutcome()
    parsed = parse_notification(body)
    if parsed.skipped:
        logger.info("message needs no work", extra={"skipped": parsed.skipped})
        outcome.counts["skipped"] += 1
    for created in parsed.objects:
        ingest_object(rt, created, outcome)
    return outcome


def ingest_object(rt: Runtime, created: ObjectCreated, outcome: IntakeOutcome) -> None:
    drop_bucket = rt.resources.drop_bucket
    if drop_bucket and created.bucket != drop_bucket:
        logger.warning("event for another bucket ignored", extra={"bucket": created.bucket})
        outcome.counts["foreign_bucket"] += 1
        return
    if created.is_folder_marker:
        outcome.counts["folder_marker"] += 1
        return

    tracked = _describe(rt, created)
    if tracked.status == FileStatus.REJECTED:
        logger.info(
            "file rejected",
            extra={"key": created.key, "reason": tracked.failure_reason, "detail": tracked.failure_message},
        )
    if not rt.files.add(tracked):
        outcome.counts["duplicate"] += 1
        return
    outcome.counts[tracked.status.lower()] += 1
    if tracked.status == FileStatus.QUEUED:
        outcome.queued_routes.add(tracked.route or "")


def describe_again(rt: Runtime, tracked: TrackedFile) -> TrackedFile:
    """A tracked file as intake would describe it today (its route and checks under the settings now):
    what an operator's reprocess sends through, or the reason it would be rejected again."""
    created = ObjectCreated(
        bucket=tracked.bucket,
        key=tracked.key,
        size=tracked.size or 0,
        etag=tracked.etag,
        version_id=None if tracked.version_id == UNVERSIONED else tracked.version_id,
        sequencer=None,
        event_name="ObjectCreated:Reprocess",
        event_time=None,
    )
    return _describe(rt, created)


def _describe(rt: Runtime, created: ObjectCreated) -> TrackedFile:
    """The new Files item for an object: QUEUED, or REJECTED with a specific reason."""
    settings = rt.settings
    route = settings.route_for_key(created.key)
    arrived_at = now_iso()
    tracked = TrackedFile(
        bucket=created.bucket,
        key=created.key,
        version_id=created.version_id or UNVERSIONED,
        status=FileStatus.QUEUED,
        route=route.name if route else None,
        size=created.size,
        etag=created.etag,
        arrived_at=arrived_at,
        queued_at=arrived_at,
    )

    def reject(reason: str, message: str) -> TrackedFile:
        tracked.status = FileStatus.REJECTED
        tracked.failure_reason = reason
        tracked.failure_message = message
        tracked.completed_at = arrived_at
        tracked.queued_at = None
        return tracked

    if route is None:
        return reject(RejectReason.NO_ROUTE, "the key is under no configured route prefix")
    head = None
    if not created.version_id:
        # S3 names the version in the notification of a versioned bucket; without it (an unversioned bucket)
        # the item must be keyed by the version S3 reports, or a later backfill of the same object would look
        # like a new file.
        head = _head_object(rt, created)
        if head is None:
            return reject(RejectReason.OBJECT_NOT_FOUND, "the object was deleted before it could be read")
        tracked.version_id = head.get("VersionId") or UNVERSIONED
    # Cheap checks before reading S3: a file these reject is never read.
    if created.size == 0:
        return reject(RejectReason.EMPTY_FILE, "the object is empty (0 bytes)")
    if created.size > settings.max_file_size_bytes:
        return reject(
            RejectReason.FILE_TOO_LARGE,
            f"the object is {created.size} bytes; the limit (maxFileSizeBytes) is "
            f"{settings.max_file_size_bytes}",
        )
    if not is_supported(created.key):
        extension = extension_of(created.key) or "no extension"
        return reject(RejectReason.UNSUPPORTED_TYPE, f"Extend does not accept this file type ({extension})")
    if not route.forward_user_metadata:
        return tracked  # the notification said all intake needs: no request to S3
    head = head or _head_object(rt, created)
    if head is None:
        return reject(RejectReason.OBJECT_NOT_FOUND, "the object was deleted before it could be read")
    tracked.content_type = head.get("ContentType")
    tracked.user_metadata = dict(head.get("Metadata") or {})
    if user_metadata_too_large(tracked.user_metadata):
        return reject(
            RejectReason.METADATA_TOO_LARGE,
            "the object's user metadata (x-amz-meta-*) is larger than Extend accepts as run metadata",
        )
    return tracked


def _head_object(rt: Runtime, created: ObjectCreated) -> dict | None:
    """HeadObject of the notified version (the current one when the event names none); None if gone."""
    kwargs = {"Bucket": created.bucket, "Key": created.key}
    if created.version_id:
        kwargs["VersionId"] = created.version_id
    try:
        return rt.client("s3").head_object(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchVersion"):
            return None
        raise
