"""Reading the Files table: items by key and by version, the queue (the queued index's shards), a
submission's files, the problems index, and the operators' counts. ``files.FileStore`` adds every state
change on top.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from batchdrop_core.dynamo import (
    count_query,
    from_item,
    index_query,
    query_all,
    scan_all,
    serialize,
)
from batchdrop_core.tables import (
    FILES_PROBLEMS_INDEX,
    FILES_QUEUED_INDEX,
    FILES_SUBMISSION_INDEX,
)
from batchdrop_core.tracking.records import (
    IN_REVIEW,
    UNROUTED,
    FileStatus,
    QueuedEntry,
    TrackedFile,
    split_file_id,
)


class FileReads:
    """The Files table's reads (``FileStore`` adds the writes)."""

    def __init__(
        self, client: Any, table_name: str, *, queued_shards: int = 4, max_workers: int = 16
    ) -> None:
        self.client = client
        self.table = table_name
        self.queued_shards = queued_shards
        self.max_workers = max_workers

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

    def ids_of_submission(self, submission_id: str) -> list[str]:
        """The file ids the bySubmission index lists for a submission (eventually consistent)."""
        query = index_query(self.table, FILES_SUBMISSION_INDEX.name, ("submissionId", submission_id))
        items = query_all(self.client, **query)
        return [f"{v['fileKey']}#{v['versionId']}" for v in items]

    def of_submission(self, submission_id: str) -> list[TrackedFile]:
        """The files a submission still holds, read from the table (the index only says which)."""
        files = self.batch_get_ids(self.ids_of_submission(submission_id))
        return [f for f in files.values() if f.submission_id == submission_id]

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
        """Files per route (``-`` for unrouted) and status, for operators (``batchdrop status``); SUBMITTED
        files whose run waits on a person's review are counted under SUBMITTED and again under
        ``IN_REVIEW``.

        A full Scan projected to three attributes: no index can count terminal files, and this never runs
        on a pipeline path.
        """
        return self.census()[0]

    def census(self) -> tuple[dict[str, Counter[str]], dict[str, str]]:
        """(files per route and status as ``count_by_route_and_status``, since when the longest review of
        each route has waited)."""
        counts: dict[str, Counter[str]] = {}
        oldest_review: dict[str, str] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ProjectionExpression": "#route, #status, reviewSince",
            "ExpressionAttributeNames": {"#route": "route", "#status": "status"},
        }
        for values in scan_all(self.client, **kwargs):
            route = values.get("route") or UNROUTED
            counts.setdefault(route, Counter())[values["status"]] += 1
            since = values.get("reviewSince")
            if since and values["status"] == FileStatus.SUBMITTED:
                counts[route][IN_REVIEW] += 1
                oldest_review[route] = min(since, oldest_review.get(route, since))
        return counts, oldest_review
