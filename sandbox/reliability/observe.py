"""What a run watches and reads back: progress, settling, the end state the checks read (gathered once), the
handlers' logs.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from batchdrop_core.dynamo import scan_all
from batchdrop_core.observability import logger as powertools_logger
from batchdrop_core.tracking import (
    BatchState,
    with_derived_names,
)
from sandbox import aws
from sandbox.aws import queue_depth
from sandbox.local import Sandbox


def record_message(bucket: str, key: str, size: int, version_id: str | None = None) -> str:
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0" * 32}
    if version_id:
        obj["versionId"] = version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": datetime.now(UTC).isoformat(),
        "s3": {"bucket": {"name": bucket}, "object": obj},
    }
    return json.dumps({"Records": [record]})


def scan(client: Any, table: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    return scan_all(client, TableName=table, ConsistentRead=True, **kwargs)


def progress_snapshot(sandbox: Sandbox) -> tuple[Counter[str], int]:
    """(files by status, open submissions): one projected scan of each table."""
    ddb = sandbox.deployment.session.client("dynamodb")
    resources = sandbox.deployment.resources
    names = {"#s": "status"}
    statuses = Counter(
        i["status"]
        for i in scan(ddb, resources.files_table, ProjectionExpression="#s", ExpressionAttributeNames=names)
    )
    names = {"#s": "state"}
    open_count = sum(
        1
        for i in scan(ddb, resources.batches_table, ProjectionExpression="#s", ExpressionAttributeNames=names)
        if i["state"] in BatchState.OPEN
    )
    return statuses, open_count


def sim_get(sandbox: Sandbox, path: str) -> Any:
    return httpx.get(f"{sandbox.simulator.base_url}{path}", timeout=120).json()


def settle(sandbox: Sandbox, timeout: float = 120.0) -> dict[str, int]:
    """Wait until webhooks are delivered and the flush, results and arrivals queues are empty; what was
    still busy at the end (empty when everything settled)."""
    deployment = sandbox.deployment
    queues = {
        "flush": deployment.resources.flush_queue_url,
        "results": deployment.resources.results_queue_url,
        "arrivals": deployment.arrivals_queue_url,
    }
    deadline = time.monotonic() + timeout
    quiet = 0
    busy: dict[str, int] = {}
    sqs = deployment.session.client("sqs")
    while time.monotonic() < deadline:
        busy = {name: queue_depth(sqs, url) for name, url in queues.items()}
        busy["webhooks"] = sim_get(sandbox, "/_sim/stats")["webhooksPending"]
        busy = {name: count for name, count in busy.items() if count}
        quiet = 0 if busy else quiet + 1
        if quiet >= 3:
            return {}
        time.sleep(1.0)
    return busy


@dataclass
class State:
    """Everything the checks read, gathered once at the end of a run."""

    files: list[dict[str, Any]]
    submissions: list[dict[str, Any]]
    sim_batches: list[dict[str, Any]]
    drop_versions: list[dict[str, Any]]
    result_versions: Counter[str]
    result_bodies: dict[str, dict[str, Any]]
    manifests: dict[str, list[dict[str, Any]]]
    notifications: list[dict[str, Any]]
    dlq_bodies: dict[str, list[str]]
    log_text: str = ""
    secrets: list[str] = field(default_factory=list)
    webhook_replies: list[tuple[str, int]] = field(default_factory=list)
    # fileId -> when each write of its Files item returned, in order (None: not recorded)
    write_times: dict[str, list[float]] | None = None


class FilesWrites:
    """The requests that write the Files table. Every handler runs in this process and reaches DynamoDB
    through botocore, so one hook on the client sees them all (instrumentation, not a fault). Two records:

    - every write request when it is sent, by operation and caller (``between``): the adversity run counts
      the Files writes a blocked route costs;
    - when each write of a Files item returned (``snapshot``): under load, the gap between a file's
      queuedAt and the write that makes it claimable is seconds, and the I2 check must not count a file as
      waiting before a batch could see it.
    """

    SENT = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
    ITEM_WRITES = frozenset({"PutItem", "UpdateItem"})

    def __init__(self, table: str) -> None:
        self.table = table
        self.writes: list[tuple[float, str]] = []  # (time sent, "operation by caller")
        self.times: defaultdict[str, list[float]] = defaultdict(list)  # fileId -> when each write returned
        self._lock = threading.Lock()
        self._original: Any = None

    def _touches(self, params: dict[str, Any]) -> bool:
        # A batch or a transaction names its tables deeper in the request; the rest at the top, which
        # spares the long run a JSON dump of every write.
        return params.get("TableName") == self.table or f'"{self.table}"' in json.dumps(params, default=str)

    def install(self) -> None:
        from botocore.client import BaseClient

        original = self._original = BaseClient._make_api_call
        recorder = self

        def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if operation in recorder.SENT and recorder._touches(params):
                with recorder._lock:
                    caller = threading.current_thread().name.rstrip("0123456789-_").removesuffix("-poller")
                    recorder.writes.append((time.time(), f"{operation} by {caller}"))
            response = original(client, operation, params)  # a refused conditional write raises
            if operation in recorder.ITEM_WRITES and params.get("TableName") == recorder.table:
                key = params.get("Item") or params.get("Key") or {}
                file_key, version = key.get("fileKey", {}).get("S"), key.get("versionId", {}).get("S")
                if file_key and version:
                    with recorder._lock:
                        recorder.times[f"{file_key}#{version}"].append(time.time())
            return response

        BaseClient._make_api_call = recorded  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            from botocore.client import BaseClient

            BaseClient._make_api_call = self._original  # type: ignore[method-assign]
            self._original = None

    def between(self, start: float, end: float) -> dict[str, int]:
        """Writes sent in a window, by operation and caller (the thread: a function's poller, a schedule)."""
        with self._lock:
            return dict(Counter(op for t, op in self.writes if start <= t < end))

    def snapshot(self) -> dict[str, list[float]]:
        with self._lock:
            return {fid: sorted(times) for fid, times in self.times.items()}


def gather(
    sandbox: Sandbox,
    log_text: str = "",
    webhook_replies: list[tuple[str, int]] | None = None,
    write_times: dict[str, list[float]] | None = None,
) -> State:
    deployment = sandbox.deployment
    resources = deployment.resources
    session = deployment.session
    ddb, s3 = session.client("dynamodb"), session.client("s3")
    files = [with_derived_names(f) for f in scan(ddb, resources.files_table)]
    submissions = list(scan(ddb, resources.batches_table))
    drop_versions = [
        v
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=resources.drop_bucket)
        for v in page.get("Versions", [])
    ]
    result_versions: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=resources.results_bucket):
        result_versions.update(v["Key"] for v in page.get("Versions", []))

    def read(key: str) -> tuple[str, Any]:
        body = s3.get_object(Bucket=resources.results_bucket, Key=key)["Body"].read().decode("utf-8")
        if key.startswith("manifests/"):
            return key, [json.loads(line) for line in body.splitlines() if line]
        return key, json.loads(body)

    with ThreadPoolExecutor(max_workers=16) as pool:
        bodies = dict(pool.map(read, list(result_versions)))
    secret_values = [
        session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        for arn in (resources.api_key_secret, resources.webhook_secret)
    ]
    return State(
        files=files,
        submissions=submissions,
        sim_batches=sim_get(sandbox, "/_sim/batches")["batches"],
        drop_versions=drop_versions,
        result_versions=result_versions,
        result_bodies={k: v for k, v in bodies.items() if k.startswith("results/")},
        manifests={k: v for k, v in bodies.items() if k.startswith("manifests/")},
        notifications=drain_notifications(sandbox),
        dlq_bodies={name: peek_queue(sandbox, url) for name, url in deployment.dlq_urls.items()},
        log_text=log_text,
        secrets=secret_values,
        webhook_replies=list(webhook_replies or []),
        write_times=write_times,
    )


def drain_notifications(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [n.message for n in aws.drain_notifications(sandbox.deployment, sandbox.notifications_queue_url)]


def peek_queue(sandbox: Sandbox, url: str) -> list[str]:
    """Bodies in a queue, read without deleting (each stays hidden for the visibility timeout)."""
    sqs = sandbox.deployment.session.client("sqs")
    bodies: list[str] = []
    for _ in range(1000):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        )
        if not messages:
            break
        bodies += [m["Body"] for m in messages]
    return bodies


class _NotBatchdrop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("batchdrop")


class LogCapture:
    """Sends the handlers' Powertools logs, their EMF metric blobs (printed to stdout) and other warnings
    to a file, to keep the console readable and to scan them for secrets afterwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream = path.open("a", encoding="utf-8")
        self._previous: Any = None
        self._stdout: Any = None
        self._root = logging.StreamHandler(self._stream)
        self._root.setLevel(logging.WARNING)
        self._root.addFilter(_NotBatchdrop())

    def __enter__(self) -> LogCapture:
        self._previous = powertools_logger.registered_handler.setStream(self._stream)
        logging.getLogger().addHandler(self._root)
        self._stdout, sys.stdout = sys.stdout, self._stream
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._stdout
        logging.getLogger().removeHandler(self._root)
        if self._previous is not None:
            powertools_logger.registered_handler.setStream(self._previous)
        self._stream.close()

    def text(self) -> str:
        self._stream.flush()
        return self.path.read_text(encoding="utf-8", errors="replace")
