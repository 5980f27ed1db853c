"""The Files table: one item per object version, from intake to its outcome. Every state change is a
conditional write, so duplicates, retries and races change nothing twice (I1, I3, I4).
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import ClientError

from batchdrop_core.dynamo import (
    UpdateBuilder,
    conditional_write,
    count_query,
    from_item,
    index_query,
    query_all,
    scan_all,
    serialize,
    to_item,
)
from batchdrop_core.redact import redact, redact_optional
from batchdrop_core.tables import (
    FILES_PROBLEMS_INDEX,
    FILES_QUEUED_INDEX,
    FILES_SUBMISSION_INDEX,
)
from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking.records import (
    MAX_HISTORY_ENTRIES,
    SUBMISSION_NOT_SENT,
    UNROUTED,
    FileStatus,
    QueuedEntry,
    TrackedFile,
    queued_shard,
    split_file_id,
)


def _entry(at: str, status: str, **details: Any) -> list[dict[str, Any]]:
    return [{"at": at, "status": status, **{k: v for k, v in details.items() if v is not None}}]


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
    def _queued_query(self, route: str, shard: int, before: str | None = None) -> dict[str, Any]:
        partition = ("queuedShard", f"{route}#{shard}")
        return index_query(self.table, FILES_QUEUED_INDEX.name, partition, ("queuedAt", "<", before))

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
            if count < enough:
                count += count_query(self.client, up_to=enough - count, **self._queued_query(route, shard))
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
        query = index_query(self.table, FILES_SUBMISSION_INDEX.name, ("submissionId", submission_id))
        items = query_all(self.client, **query)
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

    def reopen(self, tracked: TrackedFile, fresh: TrackedFile, reason: str, message: str) -> bool:
        """Send a finished file (REJECTED or PROCESSED) through again, as intake would take it today:
        QUEUED under ``fresh``'s route (intake's description under the settings now), attempts from zero.
        Only from the status it was read in, so a second operator or a repeated command sends it once."""
        at = now_iso()
        route = fresh.route or UNROUTED
        update = (
            UpdateBuilder()
            .set("status", FileStatus.QUEUED)
            .set("route", fresh.route)
            .set("queuedShard", queued_shard(route, tracked.file_id, self.queued_shards))
            .set("queuedAt", at)
            .set("attempts", 0)
            .set("contentType", fresh.content_type)
            .set("failureReason", reason)
            .set("failureMessage", redact(message))
            .remove("submissionId")
            .remove("batchId")
            .remove("runId")
            .remove("completedAt")
            .remove("resultKey")
            .remove("resultSummary")
            .remove("problemRoute")
            .remove("problemAt")
        )
        if fresh.user_metadata:
            update.set("userMetadata", fresh.user_metadata)
        else:
            update.remove("userMetadata")
        if len(tracked.history) < MAX_HISTORY_ENTRIES:
            update.append("history", _entry(at, FileStatus.QUEUED, runId=tracked.run_id, reason=reason))
        update.value("expectStatus", tracked.status)
        return self._conditional_update(tracked.item_key(), update, "#status = :expectStatus")

    def problems(self, route: str, since: str | None = None) -> Iterator[TrackedFile]:
        """FAILED and REJECTED files of a route (``-`` for files that matched no route), oldest first."""
        query = index_query(
            self.table, FILES_PROBLEMS_INDEX.name, ("problemRoute", route), ("problemAt", ">=", since)
        )
        listed = query_all(self.client, **query)
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
        return sum(
            count_query(self.client, **self._queued_query(route, shard, before))
            for shard in range(self.queued_shards)
        )

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
