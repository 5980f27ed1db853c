"""Metric 4, drop-to-submit latency, on a quiet pipeline: from the arrival (the Files item's ``arrivedAt``)
of a route's 1,000th file to the batch POST (the simulator's ``createdAt`` of the batch), and for a partial
batch from its ``maxWaitSeconds`` expiry (oldest ``queuedAt`` + maxWaitSeconds) to the POST. The submitter's
phases (claiming the files, presigning URLs, the POST) are timed by wrapping them in this process."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any

from batchdrop_core import submit, timeutil
from batchdrop_core.dynamo import scan_all
from batchdrop_core.extend import ExtendClient
from batchdrop_core.tracking import FileStore
from bench.console import progress
from bench.efficiency import latency_rows
from bench.harness import (
    ESM_POLLERS,
    ESM_WINDOW_SECONDS,
    hand_driven_sandbox,
    make_files,
    sim_batches,
    sim_stats,
    upload_all,
    wait_until,
)
from bench.report import Row, Section
from bench.stats import summarize

SWEEP_INTERVAL = 2.0
FULL = {"batch": 1000, "partial": 150, "max_wait": 10, "repetitions": 3}
QUICK = {"batch": 100, "partial": 20, "max_wait": 5, "repetitions": 1}


@contextmanager
def _phase_timer(records: list[tuple[str, Any, float, float]]) -> Any:
    """Time FileStore.claim, submit.build_inputs and ExtendClient.create_batch while active."""
    lock = threading.Lock()
    originals = (FileStore.claim, submit.build_inputs, ExtendClient.create_batch)

    def timed(name: str, function: Any, count: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            result = function(*args, **kwargs)
            with lock:
                records.append((name, count(args, result), started, time.perf_counter()))
            return result

        return wrapper

    # A batch's claim may take several calls (it tops a batch up when the queued index lags): each call
    # records its submission and the files it won, and a batch's calls are added up.
    FileStore.claim = timed("claim", originals[0], lambda a, r: (a[2], len(r)))  # type: ignore[method-assign]
    submit.build_inputs = timed("presign", originals[1], lambda a, r: len(a[3]))
    ExtendClient.create_batch = timed("post", originals[2], lambda a, r: len(a[3]))  # type: ignore[method-assign]
    try:
        yield
    finally:
        FileStore.claim, submit.build_inputs, ExtendClient.create_batch = originals  # type: ignore[method-assign]


def run(quick: bool, shared: dict[str, Any]) -> Section:
    plan = QUICK if quick else FULL
    size, partial, max_wait = plan["batch"], plan["partial"], plan["max_wait"]
    section = Section("latency", "4. Drop-to-submit latency")
    # Extend never finishes these batches, so room for all of them: this measures latency, not the bound.
    sandbox = hand_driven_sandbox(
        "lat",
        intake_window=ESM_WINDOW_SECONDS,
        files_per_minute=0.001,
        maxWaitSeconds=max_wait,
        maxBatchSize=size,
        maxFilesAtExtend=100_000,
    )
    stop = threading.Event()
    full_waits: list[float] = []
    partial_waits: list[float] = []
    phases: dict[str, list[float]] = defaultdict(list)
    records: list[tuple[str, Any, float, float]] = []
    batch_counts: list[int] = []  # batches per repetition (2 expected: one full, one partial)
    sweeper: threading.Thread | None = None
    try:
        pipeline = sandbox.start().pipeline
        deployment, simulator = sandbox.deployment, sandbox.simulator
        pipeline.intake.start(pollers=ESM_POLLERS)
        pipeline.submitter.start(pollers=1)

        def sweeps() -> None:
            while not stop.wait(SWEEP_INTERVAL):
                try:
                    pipeline.schedule("sweep")
                except Exception as exc:  # noqa: BLE001 - the next sweep tries again
                    progress(f"  sweep failed: {exc}")

        sweeper = threading.Thread(target=sweeps, name="bench-sweeps", daemon=True)
        sweeper.start()
        ddb = deployment.session.client("dynamodb")
        with _phase_timer(records):
            for rep in range(plan["repetitions"]):
                tag = f"lat{rep}"
                before = sim_stats(simulator)["counters"]["batches"]
                records.clear()
                # One after the other, so neither waits behind the other's submission.
                for route, count, seed in (("invoices", size, 40), ("documents", partial, 50)):
                    upload_all(deployment, make_files({route: count}, seed=seed + rep, tag=tag))
                    # Wait for this route's batch by its processor (a count of batches would also be met
                    # by a second batch of the other route).
                    prefix = "ex" if route == "invoices" else "cl"
                    if not wait_until(
                        lambda prefix=prefix, before=before: any(
                            b["processor"]["id"].startswith(prefix) for b in sim_batches(simulator)[before:]
                        ),
                        timeout=300,
                        interval=0.5,
                    ):
                        raise RuntimeError(
                            f"the {route} batch of a latency repetition did not go out in 300 s"
                        )
                batches = sim_batches(simulator)[before:]
                items = [
                    i
                    for i in scan_all(
                        ddb,
                        TableName=deployment.resources.files_table,
                        ProjectionExpression="fileKey, #r, arrivedAt, queuedAt",
                        ExpressionAttributeNames={"#r": "route"},
                    )
                    if f"/{tag}-" in i["fileKey"]
                ]
                # The first batch of each route (a route that sent more than one shows in the batch count)
                posted: dict[str, Any] = {}
                for b in batches:
                    posted.setdefault(b["processor"]["id"].split("_")[0], timeutil.parse_iso(b["createdAt"]))
                batch_counts.append(len(batches))
                full = [timeutil.parse_iso(i["arrivedAt"]) for i in items if i["route"] == "invoices"]
                queued = [
                    timeutil.parse_iso(i.get("queuedAt") or i["arrivedAt"])
                    for i in items
                    if i["route"] == "documents"
                ]
                full_waits.append((posted["ex"] - max(full)).total_seconds())
                expiry = min(queued).timestamp() + max_wait
                partial_waits.append(posted["cl"].timestamp() - expiry)
                claims: dict[str, list[float]] = {}  # submission → [files won, first start, last end]
                for name, count, began, ended in records:
                    if name == "claim":
                        sid, won = count
                        total = claims.setdefault(sid, [0, began, ended])
                        total[0] += won
                        total[1], total[2] = min(total[1], began), max(total[2], ended)
                    elif count == size:
                        phases[name].append(ended - began)
                phases["claim"] += [end - start for won, start, end in claims.values() if won == size]
                progress(
                    f"  latency rep {rep + 1}: full {full_waits[-1]:.1f}s after the last arrival, "
                    f"partial {partial_waits[-1]:.1f}s after maxWait expiry"
                )
    finally:
        stop.set()
        if sweeper is not None:
            sweeper.join(timeout=60)  # a sweep in hand finishes before moto server stops
        sandbox.stop()

    full_s, partial_s = summarize(full_waits), summarize(partial_waits)
    section.setup = (
        f"{plan['repetitions']} repetitions on an otherwise idle pipeline: {size} files on one route (a full "
        f"batch, maxBatchSize {size}) and {partial} on another (a partial batch) uploaded once the first "
        f"batch was out; "
        f"maxWaitSeconds {max_wait}; the stack's intake event source (window {ESM_WINDOW_SECONDS:.0f} s, "
        f"{ESM_POLLERS} pollers); one submitter poller; the flush sweep every {SWEEP_INTERVAL:.0f} s (every "
        "60 s on AWS). Times: the Files item's arrivedAt / first queued time and the simulator's batch "
        "createdAt (one clock: same process)."
    )
    section.rows = [
        Row(f"{size}th file's arrival → full batch POST", full_s.spread(1, " s")),
        *[
            Row(f"  of which {label}", summarize(phases[name]).spread(2, " s"))
            for name, label in (
                ("claim", f"claiming {size} files (conditional UpdateItem each)"),
                ("presign", f"presigning {size} URLs"),
                ("post", "the POST to Extend"),
            )
            if phases.get(name)
        ],
        Row(
            "maxWaitSeconds expiry → partial batch POST",
            partial_s.spread(1, " s"),
            f"sweep every {SWEEP_INTERVAL:.0f} s",
        ),
        *latency_rows(shared.get("latency_under_load") or {}),
    ]
    claim = summarize(phases["claim"]).median if phases.get("claim") else float("nan")
    section.notes = [
        "The issue sets no target for latency; these are the measured figures and what they are made of.",
        f"A full batch goes out as soon as the intake invocation that queued its {size}th file has asked "
        "for a flush: the submitter then counts the queue, claims the oldest files one conditional "
        f"UpdateItem each (16 threads), presigns a URL per file and POSTs. Against moto, claiming is most of "
        + (f"it ({claim:.1f} s median for {size} files: " if claim == claim else "it (")
        + "moto serves the updates one at a time); DynamoDB serves them in parallel.",
        f"A partial batch waits for the sweep after its oldest file's maxWaitSeconds: up to one sweep "
        f"interval ({SWEEP_INTERVAL:.0f} s here, 60 s on AWS) plus the submitter's work. To send it at the "
        "expiry itself, the submitter would need a timer per route: the flush queue is FIFO (one submitter "
        "per route), and FIFO queues take no per-message DelaySeconds, so a delayed flush request is not "
        "available; a one-time EventBridge Scheduler schedule at the oldest file's expiry would be (a "
        "schedule per partial batch, created and deleted by the submitter). The issue sets no latency "
        "target, and against `maxWaitSeconds` (300 s by default) one sweep interval is small, so it is "
        "not built.",
        "Under load (metric 1, row 'under load'), the wait also includes the submitter working through the "
        "batches "
        "queued before it: one submitter per route at a time (FIFO group), and here a single poller for "
        "all routes.",
        f"Batches per repetition (one full, one partial expected): {batch_counts}.",
    ]
    section.data = {"full": full_s.median, "partial": partial_s.median, "batchCounts": batch_counts}
    return section
