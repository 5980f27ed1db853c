"""What every benchmark needs: statistics, the report's data model, request counting, a sink for the
handlers' log output, the local stack (moto server + Extend simulator + pipeline), and sample files."""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import boto3
import httpx

from batchdrop_core.config import Settings
from bench.writeunits import WriteUnitMeter, item_size
from sandbox import documents, interrupt
from sandbox.aws import REGION, Deployment, MotoServer, provision

ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_bench"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_bench"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_bench"},
]
API_KEY = "sk_bench_not_a_real_key"
WEBHOOK_SECRET = "wss_bench_not_a_real_secret_0000"
UPLOAD_THREADS = 8

_started = time.monotonic()


def progress(message: str) -> None:
    """Console progress (stderr: stdout is where the handlers' logs go, and they are swallowed)."""
    print(f"[bench {time.monotonic() - _started:7.1f}s] {message}", file=sys.__stderr__, flush=True)


# -- statistics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def spread(self, digits: int = 2, unit: str = "") -> str:
        """``median (min-max, n=…)``."""
        if len(self.values) == 1:
            return f"{self.median:.{digits}f}{unit} (n=1)"
        low, high = f"{self.low:.{digits}f}", f"{self.high:.{digits}f}"
        return f"{self.median:.{digits}f}{unit} ({low}-{high}, n={len(self.values)})"


def summarize(values: Sequence[float]) -> Summary:
    return Summary(tuple(values))


def ratio_summary(numerators: Sequence[float], denominators: Sequence[float]) -> Summary:
    """Ratios of paired measurements (each pair taken back to back in the same repetition)."""
    return summarize([n / d for n, d in zip(numerators, denominators, strict=True) if d])


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[index]


# -- the report's data model -------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    value: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: str = "—"


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    key: str
    title: str
    setup: str = ""
    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # what later metrics (the cost model) reuse
    seconds: float = 0.0


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


# -- request counting --------------------------------------------------------------------------------


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

    def hook(self, client: Any, owner: Any) -> None:
        if getattr(client, "_bench_hooked", False):
            return
        client.meta.events.register("before-call", partial(self._before, owner))
        client.meta.events.register("before-parameter-build.dynamodb.PutItem", self._put_item)
        client.meta.events.register("before-parameter-build.dynamodb", self._keep_params)
        client.meta.events.register("after-call", partial(self._after, owner))
        client._bench_hooked = True

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
        if service != "dynamodb" or operation not in ("Query", "Scan", "GetItem", "BatchGetItem"):
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


DYNAMO_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
DYNAMO_READS = ("GetItem", "Query", "Scan", "BatchGetItem")


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


# -- where the handlers' output goes -----------------------------------------------------------------


class LogSink:
    """Swallows what the handlers print (Powertools JSON logs and EMF metrics), counting bytes by phase
    (CloudWatch Logs ingestion is priced by the byte) and keeping the first few errors for the console."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes = 0
        self.lines = 0
        self.errors: list[str] = []
        self.error_count = 0

    def write(self, text: str) -> int:
        with self._lock:
            self.bytes += len(text.encode("utf-8", "replace"))
            self.lines += text.count("\n")
            if '"level":"ERROR"' in text or '"level": "ERROR"' in text:
                self.error_count += 1
                if len(self.errors) < 5:
                    self.errors.append(text.strip()[:600])
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def mark(self) -> tuple[int, int]:
        with self._lock:
            return self.bytes, self.error_count


SINK = LogSink()


def capture_handler_output() -> None:
    """Send stdout (EMF metrics, Powertools logs) to the sink for the rest of the process."""
    from batchdrop_core.observability import logger

    sys.stdout = SINK  # type: ignore[assignment]
    for handler in logger._logger.handlers:  # Powertools' StreamHandler captured sys.stdout at import
        if hasattr(handler, "setStream"):
            handler.setStream(SINK)
    os.environ.pop("POWERTOOLS_METRICS_DISABLED", None)


# -- processes ---------------------------------------------------------------------------------------


def self_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


# -- the local stack ---------------------------------------------------------------------------------


# The stack gives each queue a visibility timeout of 6x its consumer's timeout (intake: 6 x 60 s); the
# sandbox uses 5 s, shorter than the stack's 5 s batching window plus a 1,000-record invocation, which
# would make messages reappear mid-invocation. The benchmarks use the stack's value.
ARRIVALS_VISIBILITY_SECONDS = 360


def stack_visibility(deployment: Deployment) -> None:
    deployment.session.client("sqs").set_queue_attributes(
        QueueUrl=deployment.arrivals_queue_url,
        Attributes={"VisibilityTimeout": str(ARRIVALS_VISIBILITY_SECONDS)},
    )


def make_settings(extend_url: str, **overrides: Any) -> Settings:
    data: dict[str, Any] = {"routes": ROUTES, "extendBaseUrl": extend_url, "orphanGraceSeconds": 30}
    data.update(overrides)
    return Settings.parse(data, "bench settings")


@dataclass
class Stack:
    """moto server, Extend simulator and a provisioned deployment (no pipeline yet)."""

    moto: MotoServer
    sim: Any
    settings: Settings
    deployment: Deployment
    pipeline: Any = None

    @property
    def moto_cpu(self) -> float:
        return self.moto.cpu_seconds()

    def start_pipeline(self, *, intake_window: float, counter: RequestCounter | None = None) -> Any:
        from sandbox.pipeline import LocalPipeline

        self.pipeline = LocalPipeline(self.settings, self.deployment, intake_window=intake_window)
        if counter is not None:
            for name in self.pipeline.modules:
                if self.pipeline.modules[name] is not None:
                    counter.name(self.pipeline.runtime(name), name)
            counter.name(self.pipeline.sqs, "event-sources")
            counter.hook(self.pipeline.sqs, self.pipeline.sqs)
        return self.pipeline

    def sim_batches(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.sim.base_url}/_sim/batches", timeout=60).json()["batches"]

    def sim_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.sim.base_url}/_sim/stats", timeout=30).json()

    def stop(self, grace: float = 30.0) -> None:
        """Pollers first (``grace`` seconds in all for the invocations in hand), then the simulator, moto
        server last; a first Ctrl-C or SIGTERM does not cut it short (sandbox.interrupt)."""
        with interrupt.shielded():
            pipeline = self.pipeline
            sources = (
                [s for s in (pipeline.intake, pipeline.submitter, pipeline.results) if s] if pipeline else []
            )
            for source in sources:
                source.request_stop()
            deadline = time.monotonic() + grace
            for source in sources:
                source.stop(timeout=max(0.0, deadline - time.monotonic()))
            self.sim.stop()
            self.moto.stop()


def start_stack(name_prefix: str, *, sim: dict[str, Any] | None = None, **settings: Any) -> Stack:
    from sandbox.extend_sim import ExtendSimulator

    moto = MotoServer().start()
    moto.use_in_this_process()
    simulator = ExtendSimulator(api_key=API_KEY, **(sim or {})).start()
    resolved = make_settings(simulator.base_url, **settings)
    deployment = provision(
        resolved,
        name_prefix=name_prefix,
        api_key=API_KEY,
        webhook_secret=WEBHOOK_SECRET,
        session=boto3.session.Session(region_name=REGION),
    )
    stack_visibility(deployment)
    return Stack(moto=moto, sim=simulator, settings=resolved, deployment=deployment)


# -- files -------------------------------------------------------------------------------------------

_MAKERS = {"invoices": documents.invoice, "documents": documents.document, "packets": documents.packet}


def make_files(counts: dict[str, int], *, seed: int = 8, tag: str = "") -> list[documents.SampleFile]:
    """Realistic documents (sandbox.documents), ``counts[route]`` of each route, routes interleaved at
    random (seeded). ``tag`` keeps keys of different runs apart."""
    rng = random.Random(seed)
    files: list[documents.SampleFile] = []
    serial = 0
    for route, count in counts.items():
        for _ in range(count):
            made = _MAKERS[route](rng, serial)
            key = made.key if not tag else made.key.replace("/", f"/{tag}-", 1)
            files.append(documents.SampleFile(key, made.body))
            serial += 1
    rng.shuffle(files)
    return files


def uploader(deployment: Deployment) -> Callable[[documents.SampleFile], None]:
    s3 = deployment.session.client("s3")
    bucket = deployment.resources.drop_bucket

    def put(sample: documents.SampleFile) -> None:
        s3.put_object(Bucket=bucket, Key=sample.key, Body=sample.body)

    return put


def upload_all(
    deployment: Deployment, files: Sequence[documents.SampleFile], threads: int = UPLOAD_THREADS
) -> float:
    """Upload as fast as ``threads`` uploaders go; the seconds it took."""
    put = uploader(deployment)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="upload") as pool:
        list(pool.map(put, files))
    return time.perf_counter() - started


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def fmt_seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"
