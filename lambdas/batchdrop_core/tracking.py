"""Files, batches and route state in DynamoDB: the only code that knows the tables' attribute names.

Every state change is a conditional write, so duplicates, retries and races change nothing twice
(design §5 I1, I3, I4). The tables are defined in ``tables.py``; the flows in docs/architecture.md.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from batchdrop_core.dynamo import (
    UpdateBuilder,
    conditional_write,
    from_item,
    query_all,
    scan_all,
    serialize,
    to_item,
)
from batchdrop_core.redact import redact, redact_optional
from batchdrop_core.tables import (
    BATCHES_BATCH_ID_INDEX,
    BATCHES_OPEN_INDEX,
    FILES_PROBLEMS_INDEX,
    FILES_QUEUED_INDEX,
    FILES_SUBMISSION_INDEX,
    STATE_ROUTE_PREFIX,
    STATE_WEBHOOK_PREFIX,
    state_rate_key,
)
from batchdrop_core.timeutil import now_iso


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
        return cls(
            bucket=bucket,
            key=key,
            version_id=values["versionId"],
            status=values["status"],
            route=values.get("route"),
            size=values.get("size"),
            etag=values.get("etag"),
            content_type=values.get("contentType"),
            user_metadata=values.get("userMetadata") or {},
            arrived_at=values.get("arrivedAt"),
            queued_at=values.get("queuedAt"),
            submission_id=values.get("submissionId"),
            batch_id=values.get("batchId"),
            run_id=values.get("runId"),
            attempts=values.get("attempts", 0),
            completed_at=values.get("completedAt"),
            result_key=values.get("resultKey"),
            result_summary=values.get("resultSummary"),
            failure_reason=values.get("failureReason"),
            failure_message=values.get("failureMessage"),
            history=values.get("history") or [],
        )

    def to_values(self) -> dict[str, Any]:
        return {
            "fileKey": self.file_key,
            "versionId": self.version_id,
            "status": self.status,
            "route": self.route,
            "size": self.size,
            "etag": self.etag,
            "contentType": self.content_type,
            "userMetadata": self.user_metadata or None,
            "arrivedAt": self.arrived_at,
            "queuedAt": self.queued_at,
            "submissionId": self.submission_id,
            "batchId": self.batch_id,
            "runId": self.run_id,
            "attempts": self.attempts or None,
            "completedAt": self.completed_at,
            "resultKey": self.result_key,
            "resultSummary": self.result_summary,
            "failureReason": self.failure_reason,
            "failureMessage": self.failure_message,
            "history": self.history or None,
        }


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


def _entry(at: str, status: str, **details: Any) -> list[dict[str, Any]]:
    return [{"at": at, "status": status, **{k: v for k, v in details.items() if v is not None}}]


# History is kept for attempts that did not settle a file. Releases (a submission that never reached Extend)
# do not use an attempt, so a long outage could repeat them without end: the history stops growing here,
# and so does the item.
MAX_HISTORY_ENTRIES = 20
SUBMISSION_NOT_SENT = "SUBMISSION_NOT_SENT"  # history reason of a release


class FileStore:
    """The Files table."""

    def __init__(
        self, client: Any, table_name: str, *, queued_shards: int = 4, max_workers: int = 16
    ) -> None:
        self.client = client
        self.table = table_name
        self.queued_shards = queued_shards
        self.max_workers = max_workers

    # -- intake ---------------------------------------------------------------------------------------
    def add(self, tracked: TrackedFile) -> bool:
        """Create the item for a new object version; False when it already exists (a duplicate event)."""
        values = tracked.to_values()
        if tracked.status == FileStatus.QUEUED:
            values["queuedShard"] = queued_shard(
                tracked.route or UNROUTED, tracked.file_id, self.queued_shards
            )
            values["queuedAt"] = tracked.queued_at or tracked.arrived_at
        if tracked.status == FileStatus.REJECTED:
            values["problemRoute"] = tracked.route or UNROUTED
            values["problemAt"] = tracked.arrived_at
        return conditional_write(
            self.client.put_item,
            TableName=self.table,
            Item=to_item(values),
            ConditionExpression="attribute_not_exists(fileKey)",
        )

    def get(self, bucket: str, key: str, version_id: str) -> TrackedFile | None:
        response = self.client.get_item(
            TableName=self.table,
            Key={"fileKey": serialize(f"{bucket}/{key}"), "versionId": serialize(version_id)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return TrackedFile.from_values(from_item(item)) if item else None

    def get_by_id(self, identifier: str) -> TrackedFile | None:
        file_key, version_id = split_file_id(identifier)
        bucket, _, key = file_key.partition("/")
        return self.get(bucket, key, version_id)

    def versions(self, bucket: str, key: str) -> list[TrackedFile]:
        """Every tracked version of one object, newest arrival first."""
        items = query_all(
            self.client,
            TableName=self.table,
            KeyConditionExpression="fileKey = :k",
            ExpressionAttributeValues={":k": serialize(f"{bucket}/{key}")},
        )
        files = [TrackedFile.from_values(v) for v in items]
        return sorted(files, key=lambda f: f.arrived_at or "", reverse=True)

    # -- the queue --------------------------------------------------------------------------------------
    def _queued_query(self, route: str, shard: int) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "IndexName": FILES_QUEUED_INDEX.name,
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": {":s": serialize(f"{route}#{shard}")},
        }

    def queue_depth(self, route: str, enough: int) -> tuple[int, str | None]:
        """(QUEUED files of a route, counted up to about ``enough``; the oldest one's queuedAt).

        Cheap enough to run on every flush request: counts and one key per shard, no items.
        """
        count, oldest = 0, None
        for shard in range(self.queued_shards):
            first = self.client.query(
                **self._queued_query(route, shard), Limit=1, ProjectionExpression="queuedAt"
            ).get("Items", [])
            if not first:
                continue
            queued_at = from_item(first[0])["queuedAt"]
            oldest = queued_at if oldest is None else min(oldest, queued_at)
            kwargs = {**self._queued_query(route, shard), "Select": "COUNT"}
            while count < enough:
                page = self.client.query(**kwargs)
                count += page.get("Count", 0)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return count, oldest

    def oldest_queued(self, route: str, limit: int) -> list[QueuedEntry]:
        """The ``limit`` oldest QUEUED files of a route: a lazy merge of the index shards.

        Files hash evenly over the shards, so each shard is read a page of about limit/shards at a time
        and only as far as the merge needs.
        """
        page_size = max(10, -(-limit * 5 // (4 * self.queued_shards)))

        def shard_entries(shard: int) -> Iterator[QueuedEntry]:
            kwargs = {**self._queued_query(route, shard), "Limit": page_size}
            while True:
                page = self.client.query(**kwargs)
                for item in page.get("Items", []):
                    values = from_item(item)
                    yield QueuedEntry(values["fileKey"], values["versionId"], values["queuedAt"])
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        merged = heapq.merge(
            *(shard_entries(s) for s in range(self.queued_shards)), key=lambda e: (e.queued_at, e.file_id)
        )
        return list(itertools.islice(merged, limit))

    def _parallel(self, function: Any, items: Iterable[Any]) -> list[Any]:
        items = list(items)
        if len(items) <= 1:
            return [function(f) for f in items]
        with ThreadPoolExecutor(max_workers=min(self.max_workers, len(items))) as pool:
            return list(pool.map(function, items))

    def map_parallel(self, function: Any, items: Iterable[Any]) -> list[Any]:
        """``function`` over ``items`` on the store's I/O threads, results in order."""
        return self._parallel(function, items)

    def _conditional_update(self, key: dict[str, Any], update: UpdateBuilder, condition: str) -> bool:
        return conditional_write(
            self.client.update_item, TableName=self.table, Key=key, **update.kwargs(condition)
        )

    def claim(self, entries: Iterable[QueuedEntry], submission_id: str) -> list[TrackedFile]:
        """Move QUEUED files into a submission; returns the claimed files as they now are (the others
        moved on meanwhile). One conditional write per file, which also reads the item back."""

        def claim_one(entry: QueuedEntry) -> TrackedFile | None:
            update = (
                UpdateBuilder()
                .set("status", FileStatus.SUBMITTED)
                .set("submissionId", submission_id)
                .remove("queuedShard")
                .remove("batchId")
                .remove("runId")
                .add_number("attempts", 1)
            )
            update.value("expectQueued", FileStatus.QUEUED)
            try:
                response = self.client.update_item(
                    TableName=self.table,
                    Key=entry.item_key(),
                    ReturnValues="ALL_NEW",
                    **update.kwargs("#status = :expectQueued"),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    return None
                raise
            return TrackedFile.from_values(from_item(response["Attributes"]))

        return [f for f in self._parallel(claim_one, entries) if f is not None]

    def release(self, files: Iterable[TrackedFile], submission_id: str) -> int:
        """Put the files of a submission that never reached Extend back in the queue, in their old place
        (``queuedAt`` is kept), with the attempt given back; the history says which submission held them."""
        at = now_iso()

        def release_one(tracked: TrackedFile) -> bool:
            update = (
                UpdateBuilder()
                .set("status", FileStatus.QUEUED)
                .set(
                    "queuedShard",
                    queued_shard(tracked.route or UNROUTED, tracked.file_id, self.queued_shards),
                )
                .set_if_absent("queuedAt", tracked.queued_at or tracked.arrived_at or at)
                .remove("submissionId")
                .add_number("attempts", -1)
            )
            if len(tracked.history) < MAX_HISTORY_ENTRIES:
                update.append(
                    "history",
                    _entry(at, FileStatus.QUEUED, submissionId=submission_id, reason=SUBMISSION_NOT_SENT),
                )
            update.value("expectSubmission", submission_id)
            update.value("expectSubmitted", FileStatus.SUBMITTED)
            condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
            return self._conditional_update(tracked.item_key(), update, condition)

        return sum(self._parallel(release_one, files))

    def reject_claimed(self, tracked: TrackedFile, submission_id: str, reason: str, message: str) -> bool:
        """A claimed file that cannot go to Extend (Extend refused it as an input, or its object version
        is gone) is REJECTED and leaves the submission; its batch-mates go on without it. The claim's
        attempt is given back: the file never reached Extend in a batch (``attempts`` counts batches)."""
        at = now_iso()
        update = (
            UpdateBuilder()
            .set("status", FileStatus.REJECTED)
            .set("completedAt", at)
            .set("failureReason", reason)
            .set("failureMessage", redact(message))
            .set("problemRoute", tracked.route or UNROUTED)
            .set("problemAt", at)
            .remove("submissionId")
            .add_number("attempts", -1)
        )
        update.value("expectSubmission", submission_id)
        update.value("expectSubmitted", FileStatus.SUBMITTED)
        condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
        return self._conditional_update(tracked.item_key(), update, condition)

    def ids_of_submission(self, submission_id: str) -> list[str]:
        """The file ids the bySubmission index lists for a submission (eventually consistent)."""
        items = query_all(
            self.client,
            TableName=self.table,
            IndexName=FILES_SUBMISSION_INDEX.name,
            KeyConditionExpression="submissionId = :s",
            ExpressionAttributeValues={":s": serialize(submission_id)},
        )
        return [f"{v['fileKey']}#{v['versionId']}" for v in items]

    def of_submission(self, submission_id: str) -> list[TrackedFile]:
        """The files a submission still holds, read from the table (the index only says which)."""
        files = self.batch_get_ids(self.ids_of_submission(submission_id))
        return [f for f in files.values() if f.submission_id == submission_id]

    # -- outcomes ---------------------------------------------------------------------------------------
    def record_outcome(
        self,
        tracked: TrackedFile,
        submission_id: str,
        *,
        status: str,
        run_id: str | None,
        batch_id: str | None = None,
        result_key: str | None = None,
        result_summary: dict[str, Any] | None = None,
        failure_reason: str | None = None,
        failure_message: str | None = None,
    ) -> bool:
        """SUBMITTED → PROCESSED/FAILED, exactly once per attempt (I4)."""
        at = now_iso()
        update = (
            UpdateBuilder()
            .set("status", status)
            .set("runId", run_id)
            .set("completedAt", at)
            .set("resultKey", result_key)
            .set("resultSummary", result_summary)
            .set("failureReason", redact_optional(failure_reason))
            .set("failureMessage", redact_optional(failure_message))
        )
        if batch_id:
            update.set("batchId", batch_id)
        if status == FileStatus.FAILED:
            update.set("problemRoute", tracked.route or UNROUTED).set("problemAt", at)
        update.value("expectSubmission", submission_id)
        update.value("expectSubmitted", FileStatus.SUBMITTED)
        condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
        return self._conditional_update(tracked.item_key(), update, condition)

    def requeue(
        self,
        tracked: TrackedFile,
        submission_id: str | None,
        reason: str,
        message: str | None,
        run_id: str | None = None,
        *,
        spent_attempt: bool = True,
    ) -> bool:
        """Send a file round again (a retryable run failure, or an operator retry of a FAILED file), at the
        back of the queue; the attempt that did not settle it goes into its history. ``spent_attempt``
        False gives the attempt back (the failure was not the file's)."""
        at = now_iso()
        previous = submission_id or tracked.submission_id
        update = (
            UpdateBuilder()
            .set("status", FileStatus.QUEUED)
            .set("queuedShard", queued_shard(tracked.route or UNROUTED, tracked.file_id, self.queued_shards))
            .set("queuedAt", at)
            .remove("submissionId")
            .remove("problemRoute")
            .remove("problemAt")
            .set("failureReason", redact(reason))
            .set("failureMessage", redact_optional(message))
        )
        if not spent_attempt:
            update.add_number("attempts", -1)
        if len(tracked.history) < MAX_HISTORY_ENTRIES:
            entry = _entry(at, FileStatus.QUEUED, submissionId=previous, runId=run_id or tracked.run_id)
            entry[0]["reason"] = reason
            update.append("history", entry)
        if submission_id is None:
            update.value("expectFailed", FileStatus.FAILED)
            return self._conditional_update(tracked.item_key(), update, "#status = :expectFailed")
        update.value("expectSubmission", submission_id)
        update.value("expectSubmitted", FileStatus.SUBMITTED)
        condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
        return self._conditional_update(tracked.item_key(), update, condition)

    def problems(self, route: str, since: str | None = None) -> Iterator[TrackedFile]:
        """FAILED and REJECTED files of a route (``-`` for files that matched no route), oldest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": FILES_PROBLEMS_INDEX.name,
            "KeyConditionExpression": "problemRoute = :r",
            "ExpressionAttributeValues": {":r": serialize(route)},
        }
        if since:
            kwargs["KeyConditionExpression"] += " AND problemAt >= :since"
            kwargs["ExpressionAttributeValues"][":since"] = serialize(since)
        listed = query_all(self.client, **kwargs)
        while page := list(itertools.islice(listed, 100)):
            ids = [f"{v['fileKey']}#{v['versionId']}" for v in page]
            found = self.batch_get_ids(ids)
            for identifier in ids:
                tracked = found.get(identifier)
                if tracked is not None and tracked.status in (FileStatus.FAILED, FileStatus.REJECTED):
                    yield tracked

    def batch_get_ids(self, file_ids: Iterable[str]) -> dict[str, TrackedFile]:
        """Files by id, read consistently, 100 per request; returned by file id."""
        keys = []
        for identifier in dict.fromkeys(file_ids):
            file_key, version_id = split_file_id(identifier)
            bucket, _, key = file_key.partition("/")
            keys.append((bucket, key, version_id))
        return self.batch_get(keys)

    def batch_get(self, keys: list[tuple[str, str, str]]) -> dict[str, TrackedFile]:
        """Files by (bucket, key, versionId), 100 per request; returned by file id."""
        found: dict[str, TrackedFile] = {}
        for start in range(0, len(keys), 100):
            request = {
                self.table: {
                    "Keys": [
                        {"fileKey": serialize(f"{b}/{k}"), "versionId": serialize(v)}
                        for b, k, v in keys[start : start + 100]
                    ],
                    "ConsistentRead": True,
                }
            }
            delay = 0.05
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table, []):
                    tracked = TrackedFile.from_values(from_item(item))
                    found[tracked.file_id] = tracked
                request = response.get("UnprocessedKeys") or {}
                if request:
                    time.sleep(delay)
                    delay = min(delay * 2, 2.0)
        return found

    def count_queued_before(self, route: str, before: str) -> int:
        """QUEUED files of a route that were queued before ``before`` (the reconciler's stuck check)."""
        count = 0
        for shard in range(self.queued_shards):
            kwargs = self._queued_query(route, shard)
            kwargs["KeyConditionExpression"] += " AND queuedAt < :before"
            kwargs["ExpressionAttributeValues"][":before"] = serialize(before)
            kwargs["Select"] = "COUNT"
            while True:
                page = self.client.query(**kwargs)
                count += page.get("Count", 0)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return count

    def count_by_route_and_status(self) -> dict[str, Counter[str]]:
        """Files per route (``-`` for unrouted) and status, for operators (``batchdrop status``).

        A full Scan projected to two attributes: no index can count terminal files, and this never runs
        on a pipeline path.
        """
        counts: dict[str, Counter[str]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#route, #status",
            "ExpressionAttributeNames": {"#route": "route", "#status": "status"},
        }
        for values in scan_all(self.client, **kwargs):
            counts.setdefault(values.get("route") or UNROUTED, Counter())[values["status"]] += 1
        return counts


@dataclass
class Submission:
    """One batch submission (an item of the Batches table), created before Extend is called."""

    submission_id: str
    route: str
    processor_type: str
    processor_id: str
    state: str
    created_at: str
    processor_version: str | None = None
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

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Submission:
        return cls(
            submission_id=values["submissionId"],
            route=values["route"],
            processor_type=values["processorType"],
            processor_id=values["processorId"],
            state=values["state"],
            created_at=values["createdAt"],
            processor_version=values.get("processorVersion"),
            file_count=values.get("fileCount", 0),
            batch_id=values.get("batchId"),
            submitted_at=values.get("submittedAt"),
            completed_at=values.get("completedAt"),
            extend_status=values.get("extendStatus"),
            processed_count=values.get("processedCount", 0),
            failed_count=values.get("failedCount", 0),
            requeued_count=values.get("requeuedCount", 0),
            adopted=values.get("adopted", False),
            note=values.get("note"),
            notified_at=values.get("notifiedAt"),
            manifest_key=values.get("manifestKey"),
            url_expires_at=values.get("urlExpiresAt"),
            orphan_searches=values.get("orphanSearches", 0),
            orphan_searched_at=values.get("orphanSearchedAt"),
            late_batch_at=values.get("lateBatchAt"),
        )


class BatchStore:
    """The Batches table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def _key(self, submission_id: str) -> dict[str, Any]:
        return {"submissionId": serialize(submission_id)}

    def create(self, submission: Submission) -> None:
        values = {
            "submissionId": submission.submission_id,
            "route": submission.route,
            "processorType": submission.processor_type,
            "processorId": submission.processor_id,
            "processorVersion": submission.processor_version,
            "state": submission.state,
            "createdAt": submission.created_at,
            "openRoute": submission.route,
            "fileCount": submission.file_count,
        }
        self.client.put_item(
            TableName=self.table,
            Item=to_item(values),
            ConditionExpression="attribute_not_exists(submissionId)",
        )

    def get(self, submission_id: str) -> Submission | None:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(submission_id), ConsistentRead=True
        ).get("Item")
        return Submission.from_values(from_item(item)) if item else None

    def by_batch_id(self, batch_id: str) -> Submission | None:
        items = list(
            query_all(
                self.client,
                TableName=self.table,
                IndexName=BATCHES_BATCH_ID_INDEX.name,
                KeyConditionExpression="batchId = :b",
                ExpressionAttributeValues={":b": serialize(batch_id)},
            )
        )
        # The index is eventually consistent: read the item itself for its current state.
        return self.get(items[0]["submissionId"]) if items else None

    def open_submissions(self, route: str, created_before: str | None = None) -> list[Submission]:
        """Non-terminal submissions of a route, oldest first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": BATCHES_OPEN_INDEX.name,
            "KeyConditionExpression": "openRoute = :r",
            "ExpressionAttributeValues": {":r": serialize(route)},
        }
        if created_before:
            kwargs["KeyConditionExpression"] += " AND createdAt < :before"
            kwargs["ExpressionAttributeValues"][":before"] = serialize(created_before)
        return [Submission.from_values(v) for v in query_all(self.client, **kwargs)]

    def update(self, submission_id: str, update: UpdateBuilder, condition: str | None = None) -> bool:
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=self._key(submission_id),
            **update.kwargs(condition),
        )

    def transition(
        self, submission_id: str, from_states: Iterable[str], to_state: str, **attributes: Any
    ) -> bool:
        """Move a submission between states exactly once; terminal states leave the open index."""
        update = UpdateBuilder().set("state", to_state)
        for name, value in attributes.items():
            # A note may quote Extend: redacted like every stored message.
            update.set(name, redact(value) if name == "note" and value is not None else value)
        if to_state in BatchState.TERMINAL:
            update.remove("openRoute")
        placeholders = []
        for i, state in enumerate(from_states):
            placeholders.append(update.value(f"from{i}", state))
        condition = f"#state IN ({', '.join(placeholders)})"
        return self.update(submission_id, update, condition)

    def link_batch_id(self, submission_id: str, batch_id: str) -> bool:
        """Record Extend's batch id once; a second, different id for one submission is refused."""
        update = UpdateBuilder().set("batchId", batch_id)
        update.value("sameBatch", batch_id)
        return self.update(submission_id, update, "attribute_not_exists(batchId) OR batchId = :sameBatch")

    def record_orphan_search(self, submission_id: str, searches: int) -> bool:
        """An ambiguous submission was searched for at Extend and not found (yet)."""
        update = UpdateBuilder().set("orphanSearches", searches).set("orphanSearchedAt", now_iso())
        update.name("state")
        update.value("submitting", BatchState.SUBMITTING)
        update.value("unknown", BatchState.UNKNOWN)
        return self.update(submission_id, update, "#state IN (:submitting, :unknown)")

    def claim_late_batch(self, submission_id: str, batch_id: str) -> bool:
        """An ABANDONED submission's batch turned up at Extend: True the first time it is seen (the
        metric and the alert go out once)."""
        update = UpdateBuilder().set("lateBatchAt", now_iso()).set("note", f"late duplicate batch {batch_id}")
        update.name("state")
        update.value("abandoned", BatchState.ABANDONED)
        return self.update(submission_id, update, "#state = :abandoned AND attribute_not_exists(lateBatchAt)")

    def claim_notification(self, submission_id: str) -> str | None:
        """Take the right to announce a submission's outcome: the claim's timestamp, or None when another
        caller already has it (one SNS message per batch outcome, I4)."""
        at = now_iso()
        update = UpdateBuilder().set("notifiedAt", at)
        return at if self.update(submission_id, update, "attribute_not_exists(notifiedAt)") else None

    def release_notification(self, submission_id: str, claimed_at: str) -> bool:
        """Give a claim back after the publish failed, so the retry announces the outcome."""
        update = UpdateBuilder().remove("notifiedAt")
        update.value("claimedAt", claimed_at)
        return self.update(submission_id, update, "notifiedAt = :claimedAt")

    def claim_collection(self, submission_id: str, owner: str, until: str) -> bool:
        """Lease a submission's result collection to one worker until ``until`` (ISO time), so duplicate
        requests do not spend the read budget twice. An expired lease can be taken over."""
        update = UpdateBuilder().set("collectorId", owner).set("collectorUntil", until)
        update.value("now", now_iso())
        update.value("owner", owner)
        condition = "attribute_not_exists(collectorUntil) OR collectorUntil < :now OR collectorId = :owner"
        return self.update(submission_id, update, condition)

    def release_collection(self, submission_id: str, owner: str) -> bool:
        update = UpdateBuilder().remove("collectorId").remove("collectorUntil")
        update.value("owner", owner)
        return self.update(submission_id, update, "collectorId = :owner")

    def recent_finished(self, limit: int, route: str | None = None) -> list[Submission]:
        """The ``limit`` submissions (of ``route``, if given) that reached a terminal state last, newest
        first; for operators (``batchdrop status``).

        A Scan filtered to terminal states: no index orders finished batches, and the table holds one
        item per batch of up to 1,000 files, so it stays small next to the Files table.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "#state IN (:completed, :failed, :abandoned)",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": {
                ":completed": serialize(BatchState.COMPLETED),
                ":failed": serialize(BatchState.FAILED),
                ":abandoned": serialize(BatchState.ABANDONED),
            },
        }
        if route:
            kwargs["FilterExpression"] += " AND #route = :route"
            kwargs["ExpressionAttributeNames"]["#route"] = "route"
            kwargs["ExpressionAttributeValues"][":route"] = serialize(route)
        finished = [Submission.from_values(values) for values in scan_all(self.client, **kwargs)]
        finished.sort(key=lambda s: s.completed_at or s.created_at, reverse=True)
        return finished[:limit]


def _event_key(event_id: str) -> dict[str, Any]:
    return {"pk": serialize(f"{STATE_WEBHOOK_PREFIX}{event_id}")}


def _route_key(route: str) -> dict[str, Any]:
    return {"pk": serialize(f"{STATE_ROUTE_PREFIX}{route}")}


# What StateStore.event_state says of a webhook event id.
EVENT_ACCEPTED = "accepted"  # enqueued: a later delivery is a duplicate
EVENT_PENDING = "pending"  # claimed by a delivery that may still be enqueueing it


class StateStore:
    """The State table: route health, webhook event dedupe and the deployment's Extend request budgets."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- webhook event dedupe (batchdrop_core.webhook) ---------------------------------------------------
    # One item per event id, ``WEBHOOK#<eventId>``. A delivery first takes a *pending* claim that expires
    # after ``pending_seconds`` (longer than the webhook function can live) and carries a random token;
    # only after the batch was enqueued is it confirmed (``acceptedAt``, kept ``ttl_seconds``). So a
    # process that dies between the claim and the enqueue leaves a claim that expires, and Extend's retry
    # goes through.
    def claim_event(self, event_id: str, pending_seconds: int) -> str | None:
        """A pending claim on an event id: its token, or None while the id is accepted or claimed by a
        delivery that may still be alive (an unexpired pending claim)."""
        now = int(time.time())
        token = secrets.token_hex(16)
        claimed = conditional_write(
            self.client.put_item,
            TableName=self.table,
            Item=to_item(
                {
                    "pk": f"{STATE_WEBHOOK_PREFIX}{event_id}",
                    "claimToken": token,
                    "expiresAt": now + pending_seconds,
                    "claimedAt": now_iso(),
                }
            ),
            # An expired claim is free: a pending one whose holder died, or an accepted one past its TTL
            # (TTL deletes lazily, so it may still be there).
            ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now",
            ExpressionAttributeValues={":now": serialize(now)},
        )
        return token if claimed else None

    def confirm_event(self, event_id: str, token: str, ttl_seconds: int = 7 * 24 * 3600) -> bool:
        """The event was enqueued: keep its id as a duplicate marker. False when the claim is no longer
        ours (it expired and another delivery took it: that one enqueues too, which collection absorbs)."""
        until = int(time.time()) + ttl_seconds
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=_event_key(event_id),
            UpdateExpression="SET expiresAt = :until, acceptedAt = :at REMOVE claimToken",
            ConditionExpression="claimToken = :token",
            ExpressionAttributeValues={
                ":until": serialize(until),
                ":at": serialize(now_iso()),
                ":token": serialize(token),
            },
        )

    def release_event(self, event_id: str, token: str) -> bool:
        """Drop our pending claim (the enqueue failed), so Extend's retry is accepted at once; a claim
        that is no longer ours is left alone."""
        return conditional_write(
            self.client.delete_item,
            TableName=self.table,
            Key=_event_key(event_id),
            ConditionExpression="claimToken = :token",
            ExpressionAttributeValues={":token": serialize(token)},
        )

    def event_state(self, event_id: str) -> str | None:
        """``EVENT_ACCEPTED``, ``EVENT_PENDING`` (claimed, not expired, not confirmed) or None (free)."""
        key = _event_key(event_id)
        item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        values = from_item(item) if item else {}
        if not values or int(values.get("expiresAt", 0)) < int(time.time()):
            return None
        return EVENT_ACCEPTED if "acceptedAt" in values else EVENT_PENDING

    # -- request budgets (batchdrop_core.budget) ------------------------------------------------------
    def lease_slots(self, budget: str, duration_ms: int, now_ms: int) -> int:
        """Reserve the next ``duration_ms`` of a budget's schedule; the start of the lease (epoch ms).

        The schedule is one number, the time its next request may go (``nextSlotMs``): a lease moves it
        on by its duration, from where it is or from now, whichever is later. One conditional write, no
        read: the first form succeeds while the schedule runs ahead of now, the second once it has
        fallen behind; a race with another lease fails the condition and tries again."""
        key = {"pk": serialize(state_rate_key(budget))}
        duration, now = serialize(duration_ms), serialize(now_ms)
        for _ in range(20):
            try:
                response = self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET nextSlotMs = nextSlotMs + :duration",
                    ConditionExpression="nextSlotMs >= :now",
                    ExpressionAttributeValues={":duration": duration, ":now": now},
                    ReturnValues="UPDATED_OLD",
                )
                return int(from_item(response["Attributes"])["nextSlotMs"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            started = conditional_write(
                self.client.update_item,
                TableName=self.table,
                Key=key,
                UpdateExpression="SET nextSlotMs = :until",
                ConditionExpression="attribute_not_exists(nextSlotMs) OR nextSlotMs < :now",
                ExpressionAttributeValues={":until": serialize(now_ms + duration_ms), ":now": now},
            )
            if started:
                return now_ms
        raise RuntimeError(f"could not lease from request budget {budget!r}: too much contention")

    def hold_budget(self, budget: str, until_ms: int) -> None:
        """No lease of the budget starts before ``until_ms`` (Extend answered 429: everyone waits)."""
        conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key={"pk": serialize(state_rate_key(budget))},
            UpdateExpression="SET nextSlotMs = :until",
            ConditionExpression="attribute_not_exists(nextSlotMs) OR nextSlotMs < :until",
            ExpressionAttributeValues={":until": serialize(until_ms)},
        )

    def route_state(self, route: str) -> dict[str, Any]:
        item = self.client.get_item(TableName=self.table, Key=_route_key(route)).get("Item")
        return from_item(item) if item else {}

    def _route_key(self, route: str) -> dict[str, Any]:
        return _route_key(route)

    def block_route(self, route: str, reason: str, message: str, probe_at: str, probe_seconds: float) -> bool:
        """Mark a route blocked, its first probe at ``probe_at``; True when this is news (it was not
        blocked for the same reason). An old block is left as it is (its probe schedule runs on)."""
        update = (
            UpdateBuilder()
            .set("blocked", True)
            .set("blockedReason", reason)
            .set("blockedMessage", redact(message))
            .set("blockedAt", now_iso())
            .set("probeAt", probe_at)
            .set("probeSeconds", probe_seconds)
        )
        update.value("sameReason", reason)
        update.value("yes", True)
        condition = "attribute_not_exists(#blocked) OR #blocked <> :yes OR #blockedReason <> :sameReason"
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=self._route_key(route),
            **update.kwargs(condition),
        )

    def claim_probe(
        self, route: str, expected_at: str | None, next_at: str, interval: float, *, force: bool = False
    ) -> bool:
        """Move a blocked route's next probe to ``next_at`` (the probe about to go is this interval's):
        conditional on the probe time read (``expected_at``), so one probe goes per interval."""
        update = UpdateBuilder().set("probeAt", next_at).set("probeSeconds", interval)
        update.name("blocked")
        update.value("yes", True)
        condition = "#blocked = :yes"
        if not force:
            if expected_at is None:
                condition += " AND attribute_not_exists(#probeAt)"
            else:
                update.value("expectProbeAt", expected_at)
                condition += " AND #probeAt = :expectProbeAt"
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=self._route_key(route),
            **update.kwargs(condition),
        )

    def set_route_backoff(self, route: str, until: str, interval: float) -> None:
        """No batch of the route is submitted before ``until`` (ISO time); ``interval`` is the current
        backoff interval (it doubles while Extend keeps throttling)."""
        self.client.update_item(
            TableName=self.table,
            Key=self._route_key(route),
            **UpdateBuilder().set("backoffUntil", until).set("backoffSeconds", interval).kwargs(),
        )

    def reset_route_intervals(self, route: str) -> None:
        """Extend accepted a batch: the next backoff or block starts from the first interval again."""
        self.client.update_item(
            TableName=self.table,
            Key=self._route_key(route),
            **UpdateBuilder().remove("backoffSeconds").remove("probeSeconds").kwargs(),
        )

    def unblock_route(self, route: str) -> bool:
        """Clear a block; True when the route was blocked. ``probeSeconds`` stays until a batch is
        accepted, so a block that comes straight back (no credits) probes at the next interval."""
        update = UpdateBuilder().set("blocked", False).set("unblockedAt", now_iso()).remove("probeAt")
        update.value("yes", True)
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=_route_key(route),
            **update.kwargs("#blocked = :yes"),
        )
