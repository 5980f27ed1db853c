"""The local stack a metric runs on (moto server, Extend simulator, a provisioned deployment, the pipeline),
and the sample files it uploads."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
import httpx

from batchdrop_core.config import Settings
from bench.request_counter import RequestCounter
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
