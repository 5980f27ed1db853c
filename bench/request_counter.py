"""Counting the AWS requests of a run: by who made them (a handler, the event sources), service, operation
and table or queue, with the read and write units DynamoDB would charge for them."""

from __future__ import annotations

import contextlib
import math
import re
import threading
import weakref
from collections import Counter
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from bench.writeunits import WriteUnitMeter, item_size

DYNAMO_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
DYNAMO_READS = ("GetItem", "Query", "Scan", "BatchGetItem")
# Clients already counted (by any counter): a client is hooked once.
_hooked: weakref.WeakSet[Any] = weakref.WeakSet()

_TABLE = re.compile(r'"TableName":\s*"([^"]+)"|"RequestItems":\s*\{\s*"([^"]+)"')
_QUEUE = re.compile(r'"QueueUrl":\s*"([^"]+)"')


def _resource(service: str, body: Any, url_path: str = "") -> str:
    """The table or queue a request is about, without the deployment's name prefix; for S3, the folder of
    the results bucket (``results``, ``manifests``) or the bucket."""
    if service == "s3":
        parts = url_path.split("?", 1)[0].strip("/").split("/")
        folder = next((p for p in parts[:2] if p in ("results", "manifests")), None)
        return folder or parts[0].split("-", 1)[-1]
    if not isinstance(body, (str, bytes)):
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if service == "dynamodb":
        match = _TABLE.search(text)
        name = (match.group(1) or match.group(2)) if match else ""
    elif service == "sqs":
        match = _QUEUE.search(text)
        name = match.group(1).rsplit("/", 1)[-1] if match else ""
    else:
        return ""
    return name.split("-", 1)[-1]


class RequestCounter:
    """Counts AWS API calls by (who, service, operation) through botocore's event hooks.

    Also records the size of what DynamoDB writes (PutItem items) and returns (items read), so the cost
    model can turn requests into request units."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str, str]] = Counter()
        # (who, service, table/queue, operation)
        self.resources: Counter[tuple[str, str, str, str]] = Counter()
        self.put_bytes_by_table: dict[str, list[int]] = {}
        self.empty_receives: Counter[str] = Counter()
        self.empty_by_resource: Counter[str] = Counter()
        self.put_bytes: list[int] = []
        self.read_items: Counter[tuple[str, str]] = Counter()  # (who, operation) -> items read
        self.read_bytes: Counter[tuple[str, str]] = Counter()
        self.read_units: Counter[tuple[str, str]] = Counter()  # (who, table) -> estimated RRU
        self.write_units = WriteUnitMeter()
        self._labels: dict[int, str] = {}

    def name(self, owner: Any, label: str) -> None:
        self._labels[id(owner)] = label

    def label(self, owner: Any) -> str:
        return self._labels.get(id(owner), "other")

    def name_pipeline(self, pipeline: Any) -> None:
        """Count a ``LocalPipeline``'s requests: each handler's by its name, the event sources' together."""
        for name, module in pipeline.modules.items():
            if module is not None:
                self.name(pipeline.runtime(name), name)
        self.name(pipeline.sqs, "event-sources")
        self.hook(pipeline.sqs, pipeline.sqs)

    def hook(self, client: Any, owner: Any) -> None:
        if client in _hooked:
            return
        client.meta.events.register("before-call", partial(self._before, owner))
        client.meta.events.register("before-parameter-build.dynamodb.PutItem", self._put_item)
        client.meta.events.register("before-parameter-build.dynamodb", self._keep_params)
        client.meta.events.register("after-call", partial(self._after, owner))
        _hooked.add(client)

    def _before(
        self, owner: Any, model: Any = None, params: Any = None, context: Any = None, **_: Any
    ) -> None:
        service = model.service_model.service_name
        request = params if isinstance(params, dict) else {}
        resource = _resource(service, request.get("body"), request.get("url_path", ""))
        if isinstance(context, dict):
            context["bench_resource"] = resource
        with self._lock:
            self.calls[(self.label(owner), service, model.name)] += 1
            self.resources[(self.label(owner), service, resource, model.name)] += 1

    @staticmethod
    def _keep_params(params: Any = None, context: Any = None, **_: Any) -> None:
        if isinstance(context, dict):
            context["bench_params"] = params

    def _put_item(self, params: Any = None, **_: Any) -> None:
        size = item_size(params.get("Item", {})) if params else 0
        table = str(params.get("TableName", "")).split("-", 1)[-1] if params else ""
        with self._lock:
            self.put_bytes.append(size)
            self.put_bytes_by_table.setdefault(table, []).append(size)

    def _after(
        self, owner: Any, model: Any = None, parsed: Any = None, context: Any = None, **_: Any
    ) -> None:
        if not isinstance(parsed, dict):
            return
        service, operation, who = model.service_model.service_name, model.name, self.label(owner)
        if service == "sqs" and operation == "ReceiveMessage" and not parsed.get("Messages"):
            resource = context.get("bench_resource", "") if isinstance(context, dict) else ""
            with self._lock:
                self.empty_receives[who] += 1
                self.empty_by_resource[resource] += 1
        if service == "dynamodb" and operation in DYNAMO_WRITES and isinstance(context, dict):
            self.write_units.record(who, operation, context.get("bench_params") or {}, parsed)
        if service != "dynamodb" or operation not in DYNAMO_READS:
            return
        if operation == "GetItem":
            items = [parsed["Item"]] if "Item" in parsed else []
        elif operation == "BatchGetItem":
            items = [i for table in parsed.get("Responses", {}).values() for i in table]
        else:
            items = parsed.get("Items", [])
        size = sum(item_size(i) for i in items)
        count = len(items) if items else int(parsed.get("Count", 0))
        if not items and count:  # Select=COUNT reads the items without returning them
            size = count * 1500
        # Query/Scan: eventually consistent (0.5 RRU per 4 KB of the whole response); reads of one item:
        # consistent (1 RRU per 4 KB of each item), which is what this project asks for.
        if operation in ("Query", "Scan"):
            units = 0.5 * max(1, math.ceil(size / 4096))
        else:
            units = sum(max(1, math.ceil(item_size(i) / 4096)) for i in items) or 1
        with self._lock:
            self.read_items[(who, operation)] += count
            self.read_bytes[(who, operation)] += size
            resource = context.get("bench_resource", "") if isinstance(context, dict) else ""
            self.read_units[(who, resource)] += units

    def by_service(self, who: str | None = None) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for (label, service, operation), n in self.calls.items():
            if who is None or label == who:
                out[(service, operation)] += n
        return out

    def total(
        self, who: str | None = None, service: str | None = None, operations: Sequence[str] = ()
    ) -> int:
        return sum(
            n
            for (label, svc, op), n in self.calls.items()
            if (who is None or label == who)
            and (service is None or svc == service)
            and (not operations or op in operations)
        )


@contextlib.contextmanager
def count_runtime_requests(counter: RequestCounter) -> Iterator[None]:
    """Every AWS client a handler's ``Runtime`` creates while this is active is counted."""
    from batchdrop_core.runtime import Runtime

    original = Runtime.client

    def client(self: Runtime, service: str, **options: Any) -> Any:
        made = original(self, service, **options)  # options: the webhook's fail-fast client (quick=True)
        counter.hook(made, self)
        return made

    Runtime.client = client  # type: ignore[method-assign]
    try:
        yield
    finally:
        Runtime.client = original  # type: ignore[method-assign]
