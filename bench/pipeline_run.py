"""Metric 1's measurement (its figures are metrics 1, 4 under load, 6 and 7): the arrival pattern uploaded
to moto alone (the upload baseline), then into the whole sandbox with the naive design alongside, until
every file is in a finished batch; what both recorded."""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from batchdrop_core import timeutil
from batchdrop_core.dynamo import from_item, scan_all, scan_items
from bench.console import SINK, progress
from bench.harness import (
    ESM_POLLERS,
    ESM_WINDOW_SECONDS,
    ROUTES,
    make_settings,
    sim_batches,
    stack_visibility,
    uploader,
    wait_until,
)
from bench.naive import start_naive
from bench.request_counter import RequestCounter, count_runtime_requests
from bench.writeunits import item_size
from sandbox.aws import REGION, Deployment, MotoServer, provision, queue_depth
from sandbox.documents import SampleFile
from sandbox.local import Sandbox, SandboxOptions

MAX_WAIT_SECONDS = 900  # longer than any route's arrival span here, so I2 promises ⌈N/1000⌉
TRICKLE_FILES_PER_SECOND = 20.0
PAUSE_SECONDS = 4.0
# The flush sweep and the reconciler run every minute and every 5 minutes on AWS; the sandbox's defaults
# (2 s, 10 s) make moto answer a dozen GSI queries a second, each of which scans the whole Files table in
# moto, which slows everything else in a 10,000-file run. These are closer to AWS and still short.
SWEEP_INTERVAL = 10.0
RECONCILE_INTERVAL = 30.0
# (kind, share of the files): bursts go as fast as the uploaders can, trickles at a steady slow rate,
# with pauses between phases so the pollers fall idle, as between real drops.
PATTERN = [("burst", 0.30), ("trickle", 0.05), ("burst", 0.40), ("trickle", 0.05), ("burst", 0.20)]

Phases = list[tuple[str, float, int]]  # (kind, seconds, files) per phase of the PATTERN


@dataclass
class UploadAlone:
    """The baseline: the same uploads to moto alone."""

    phases: Phases
    seconds: float
    moto_cpu: float


@dataclass
class PipelineRun:
    """What the pipeline run measured and what it left in the tables and at Extend."""

    phases: Phases
    started_at: datetime
    arrival_span: float  # seconds from the first upload to the last
    intake_done: float  # seconds from the first upload (so are the next two)
    fast_forward: float  # when the pipeline's clock was moved past maxWaitSeconds
    elapsed: float  # when every file was in a finished batch
    e2e_cpu: float  # moto server's CPU seconds over the run
    batches: list[dict[str, Any]]  # as the Extend simulator received them
    statuses: dict[str, int]  # files by status
    files_table: list[dict[str, Any]]  # every Files item
    file_bytes: list[int]  # DynamoDB's size of each Files item
    batch_bytes: list[int]  # and of each Batches item
    submissions: list[dict[str, Any]]  # every Batches item
    sim_stats: dict[str, Any]
    invocations: dict[str, int]  # by event source
    intake_sizes: list[int]  # records per intake invocation
    naive_batches: list[tuple[str, int]]  # (route, files) per batch the naive design would submit
    naive_invocations: int
    counter: RequestCounter
    durations: dict[str, list[float]]  # invocation times by function
    log_bytes: int  # what the handlers wrote to their logs


def upload_alone(files: list[SampleFile], pause: float) -> UploadAlone:
    """The arrival pattern uploaded to a fresh moto server with nothing else running."""
    moto = MotoServer().start()
    moto.use_in_this_process()
    try:
        alone = provision(
            make_settings("http://127.0.0.1:9"),
            name_prefix="upl",
            session=boto3.session.Session(region_name=REGION),
        )
        # No notifications: an unconsumed queue of 10,000 notifications slows moto's SendMessage (and so
        # every upload) and would flatter the ratio; in the pipeline run the queue is drained as it fills.
        alone.session.client("s3").put_bucket_notification_configuration(
            Bucket=alone.resources.drop_bucket, NotificationConfiguration={}
        )
        cpu = moto.cpu_seconds()
        started = time.perf_counter()
        phases = _arrive(alone, files, pause)
        seconds = time.perf_counter() - started
        moto_cpu = moto.cpu_seconds() - cpu
    finally:
        moto.stop()
    return UploadAlone(phases, seconds, moto_cpu)


def sandbox_options() -> SandboxOptions:
    """The whole sandbox, its pollers and schedules running, as metric 1 measures it."""
    return SandboxOptions(
        routes=ROUTES,
        settings={"maxWaitSeconds": MAX_WAIT_SECONDS, "readRateLimit": 1000, "orphanGraceSeconds": 30},
        read_rps=0,
        files_per_minute=0,
        intake_pollers=ESM_POLLERS,
        sweep_interval=SWEEP_INTERVAL,
        reconcile_interval=RECONCILE_INTERVAL,
        name_prefix="run",
    )


def run_pipeline(files: list[SampleFile], counts: dict[str, int], pause: float) -> PipelineRun:
    """The arrival pattern uploaded into the whole sandbox, the naive design fed the same notifications,
    until every file is in a finished batch."""
    total = sum(counts.values())
    counter = RequestCounter()
    durations: dict[str, list[float]] = defaultdict(list)
    log_bytes_before = SINK.mark()[0]
    real_utc_now = timeutil.utc_now
    naive_source = None
    with count_runtime_requests(counter):
        sandbox = Sandbox(sandbox_options()).start()
        try:
            pipeline = sandbox.pipeline
            pipeline.intake.window = ESM_WINDOW_SECONDS  # the stack's batching window
            counter.name_pipeline(pipeline)
            _time_invocations(pipeline, durations)
            deployment = sandbox.deployment
            # Set once the pipeline is built, as for the published figures: the intake event source keeps
            # the sandbox's 5 s for the small batches it holds invisible (sandbox.lambda_runtime).
            stack_visibility(deployment)
            naive, naive_source, naive_url = start_naive(deployment, sandbox.settings)
            stats = sandbox.simulator.stats
            ddb = deployment.session.client("dynamodb")
            cpu = sandbox.moto.cpu_seconds()
            started_at = datetime.now(UTC)
            started = time.perf_counter()
            phases = _arrive(deployment, files, pause)
            arrival_span = time.perf_counter() - started
            intake_done = _wait_for_intake(deployment, naive_url, started)
            _wait_for_full_batches(stats, counts)
            # The remainders wait for maxWaitSeconds: move the pipeline's clock past it instead of idling.
            fast_forward = time.perf_counter() - started
            timeutil.utc_now = lambda: real_utc_now() + timedelta(seconds=MAX_WAIT_SECONDS + 1)
            _wait_until_terminal(ddb, deployment.resources.batches_table, total, started)
            elapsed = time.perf_counter() - started
            e2e_cpu = sandbox.moto.cpu_seconds() - cpu
            timeutil.utc_now = real_utc_now
            naive_source.stop()
            batches = sim_batches(sandbox.simulator, timeout=120)
            statuses = sandbox.count_files()
            raw_items = list(scan_items(ddb, TableName=deployment.resources.files_table))
            files_table = [from_item(i) for i in raw_items]
            file_bytes = [item_size(i) for i in raw_items]
            del raw_items
            raw_batches = list(scan_items(ddb, TableName=deployment.resources.batches_table))
            batch_bytes = [item_size(i) for i in raw_batches]
            submissions = [from_item(i) for i in raw_batches]
            sim_stats = stats.snapshot()
            invocations = {n: getattr(pipeline, n).invocations for n in ("intake", "submitter", "results")}
            intake_sizes = list(pipeline.intake.batch_sizes)
        finally:
            timeutil.utc_now = real_utc_now
            if naive_source is not None:
                naive_source.stop()
            sandbox.stop()
    return PipelineRun(
        phases=phases,
        started_at=started_at,
        arrival_span=arrival_span,
        intake_done=intake_done,
        fast_forward=fast_forward,
        elapsed=elapsed,
        e2e_cpu=e2e_cpu,
        batches=batches,
        statuses=statuses,
        files_table=files_table,
        file_bytes=file_bytes,
        batch_bytes=batch_bytes,
        submissions=submissions,
        sim_stats=sim_stats,
        invocations=invocations,
        intake_sizes=intake_sizes,
        naive_batches=naive.batches,
        naive_invocations=naive_source.invocations,
        counter=counter,
        durations=durations,
        log_bytes=SINK.mark()[0] - log_bytes_before,
    )


def _arrive(deployment: Any, files: list[Any], pause: float) -> Phases:
    """Upload the files in the PATTERN; returns (phase, seconds, files) per phase."""
    put = uploader(deployment)
    phases = []
    position = 0
    for index, (kind, share) in enumerate(PATTERN):
        count = len(files) - position if index == len(PATTERN) - 1 else round(len(files) * share)
        chunk = files[position : position + count]
        position += count
        started = time.perf_counter()
        if kind == "burst":
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="upload") as pool:
                list(pool.map(put, chunk))
        else:
            for i, sample in enumerate(chunk):
                put(sample)
                delay = started + (i + 1) / TRICKLE_FILES_PER_SECOND - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        phases.append((kind, time.perf_counter() - started, len(chunk)))
        progress(f"  {kind} of {len(chunk)} files in {phases[-1][1]:.1f}s")
        if index < len(PATTERN) - 1:
            time.sleep(pause)
    return phases


def _time_invocations(pipeline: Any, durations: dict[str, list[float]]) -> None:
    """Every invocation of every function times itself into ``durations`` (by function)."""
    for name in ("intake", "submitter", "results"):
        source = getattr(pipeline, name)
        source.handler = _timed(source.handler, name, durations)
    pipeline.webhook = _timed(pipeline.webhook, "webhook", durations)
    pipeline.schedule = _timed(pipeline.schedule, "reconciler", durations)


def _timed(function: Any, name: str, durations: dict[str, list[float]]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            durations[name].append(time.perf_counter() - started)

    return wrapper


def _wait_for_intake(deployment: Deployment, naive_url: str, started: float) -> float:
    """Until both designs have taken in every notification; seconds since ``started``."""
    sqs = deployment.session.client("sqs")
    wait_until(
        lambda: _queue_empty(sqs, deployment.arrivals_queue_url) and _queue_empty(sqs, naive_url),
        timeout=3600,
        interval=1.0,
    )
    time.sleep(ESM_WINDOW_SECONDS + 1)
    intake_done = time.perf_counter() - started
    progress(f"  pipeline run: intake done after {intake_done:.0f}s; waiting for the full batches")
    return intake_done


def _queue_empty(sqs: Any, url: str) -> bool:
    return queue_depth(sqs, url) == 0


def _wait_for_full_batches(stats: Any, counts: dict[str, int]) -> None:
    """Until Extend has every full batch (1,000 files) of every route, then two sweeps more."""
    full_batches = sum(n // 1000 for n in counts.values())
    wait_until(lambda: stats.get("batches") >= full_batches, timeout=3600, interval=2.0)
    time.sleep(SWEEP_INTERVAL * 2)


def _wait_until_terminal(ddb: Any, batches_table: str, total: int, started: float) -> None:
    """Until finished batches account for all ``total`` files (an hour at most)."""
    deadline = time.perf_counter() + 3600
    last_report = time.perf_counter()
    while time.perf_counter() < deadline:
        done = _terminal(ddb, batches_table)
        if done >= total:
            break
        if time.perf_counter() - last_report > 60:
            last_report = time.perf_counter()
            progress(f"  pipeline run: {done}/{total} terminal after {last_report - started:.0f}s")
        time.sleep(2.0)


def _terminal(client: Any, table: str) -> int:
    """Files recorded by finished batches (a small Scan of the Batches table)."""
    done = 0
    for values in scan_all(client, TableName=table):
        if values.get("state") in ("COMPLETED", "FAILED"):
            done += int(values.get("processedCount") or 0) + int(values.get("failedCount") or 0)
    return done
