"""The sandbox a metric runs on (``sandbox.local.Sandbox`` with the benchmarks' routes and the stack's queue
settings), and the sample files it uploads."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from batchdrop_core.config import Settings
from sandbox import documents
from sandbox.aws import Deployment
from sandbox.local import Sandbox, SandboxOptions

ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_bench"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_bench"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_bench"},
]
API_KEY = "sk_bench_not_a_real_key"
WEBHOOK_SECRET = "wss_bench_not_a_real_secret_0000"
UPLOAD_THREADS = 8
# The stack's event source mapping for intake (stacks/constants.py): batch 1000, 5 s window, 5 pollers
# (the SQS event source starts with five and INTAKE_MAX_CONCURRENCY caps it there).
ESM_BATCH_SIZE = 1000
ESM_WINDOW_SECONDS = 5.0
ESM_POLLERS = 5


# The stack gives each queue a visibility timeout of 6x its consumer's timeout (intake: 6 x 60 s); the
# sandbox uses 5 s, shorter than the stack's 5 s batching window plus a 1,000-record invocation, which
# would make messages reappear mid-invocation. The benchmarks use the stack's value.
ARRIVALS_VISIBILITY_SECONDS = 360


def stack_visibility(deployment: Deployment) -> None:
    """The stack's visibility timeout on a running sandbox's arrivals queue (metric 1's run)."""
    deployment.session.client("sqs").set_queue_attributes(
        QueueUrl=deployment.arrivals_queue_url,
        Attributes={"VisibilityTimeout": str(ARRIVALS_VISIBILITY_SECONDS)},
    )


def make_settings(extend_url: str, **overrides: Any) -> Settings:
    data: dict[str, Any] = {"routes": ROUTES, "extendBaseUrl": extend_url, "orphanGraceSeconds": 30}
    data.update(overrides)
    return Settings.parse(data, "bench settings")


def hand_driven_sandbox(
    name_prefix: str, *, intake_window: float, files_per_minute: float = 0.0, **settings: Any
) -> Sandbox:
    """A sandbox (not started yet) whose pipeline the metric drives itself (``drain()``, its own pollers):
    no pollers, schedules, webhooks or notifications inbox of its own, so the work the metric times is the
    only work moto and the simulator do. No read limit at the simulator (metric 3 sets its own); the
    arrivals queue hides a message as long as the stack's does. ``settings``: camelCase overrides."""
    return Sandbox(
        SandboxOptions(
            routes=ROUTES,
            settings={"orphanGraceSeconds": 30, **settings},
            api_key=API_KEY,
            webhook_secret=WEBHOOK_SECRET,
            files_per_minute=files_per_minute,
            read_rps=0,
            intake_window=intake_window,
            queue_visibility={"arrivals": ARRIVALS_VISIBILITY_SECONDS},
            name_prefix=name_prefix,
            background=False,
            webhooks=False,
            inbox=False,
        )
    )


def sim_batches(simulator: Any, timeout: float = 60) -> list[dict[str, Any]]:
    """Every batch the Extend simulator has been sent."""
    return httpx.get(f"{simulator.base_url}/_sim/batches", timeout=timeout).json()["batches"]


def sim_stats(simulator: Any) -> dict[str, Any]:
    return httpx.get(f"{simulator.base_url}/_sim/stats", timeout=30).json()


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
