"""``make demo``: the whole pipeline on this machine, end to end.

Starts the sandbox (moto server, Extend simulator, the real handlers), uploads realistic sample documents
to the drop bucket, shows progress and what the pipeline is waiting for until every file is terminal, and
prints a summary. A slow machine only makes it slower: it gives up (exit 1) only when nothing has moved
for ``--stall-timeout`` seconds, and then says what was stuck. Ctrl-C or SIGTERM stops the sandbox in
order and says what was left unfinished (a second Ctrl-C forces exit). ``--keep`` leaves the sandbox
running for the AWS CLI and ``batchdrop``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from batchdrop_core.config import ConfigError, Settings
from batchdrop_core.dynamo import scan_all
from batchdrop_core.observability import SERVICE
from batchdrop_core.timeutil import parse_iso
from batchdrop_core.tracking import BatchState, FileStatus, with_derived_names
from sandbox import aws, interrupt
from sandbox.aws import queue_depth
from sandbox.documents import sample_files
from sandbox.interrupt import Interrupted
from sandbox.local import Sandbox, SandboxOptions, counted

EXAMPLE_ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_demo"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_demo"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_demo"},
]
# Without progress for this long, the pipeline is stuck (on the simulator every step shows within
# seconds; a real Extend API shows nothing until a batch completes, which can take a while).
STALL_TIMEOUT = 180.0
STALL_TIMEOUT_REAL_EXTEND = 1800.0
UNROUTED = "(no route)"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo ARGS=...", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2500, help="sample documents to drop (default 2500)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running until Ctrl-C")
    parser.add_argument("--endpoints", type=Path, help="with --keep: write the endpoints JSON here")
    parser.add_argument(
        "--max-wait", type=int, default=300, help="maxWaitSeconds: when a partial batch goes out"
    )
    parser.add_argument(
        "--log", type=Path, default=Path("demo-out/sandbox.log"), help="where the functions' logs go"
    )
    parser.add_argument("--json", type=Path, help="also write the summary as JSON to this path")
    parser.add_argument(
        "--stall-timeout",
        type=float,
        metavar="SECONDS",
        help=f"give up (exit 1) when no file, batch or Extend run has moved for this long (default "
        f"{STALL_TIMEOUT:.0f}; {STALL_TIMEOUT_REAL_EXTEND:.0f} with --extend-url, whose progress shows only "
        "when a batch completes); time spent waiting for a partial batch's maxWaitSeconds does not count",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="also give up after this many seconds in all, progressing or not (default: no limit)",
    )
    parser.add_argument("--extend-url", help="use a real Extend API instead of the simulator")
    parser.add_argument("--api-key", help="the Extend API key for --extend-url")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a batchdrop setting by its cdk.json name, e.g. --set maxBatchSize=200 --set "
        "extendFilesPerMinute=80 (VALUE is JSON, or else a string; repeatable)",
    )
    parser.add_argument(
        "--sim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an Extend simulator setting, e.g. --sim plan=payg --sim missing_retry_after_share=0.5 "
        f"(one of: {', '.join(_simulator_settings())}; repeatable)",
    )
    args = parser.parse_args(argv)
    args.settings = _assignments(parser, "--set", args.set, _setting_names())
    args.sim_settings = _assignments(parser, "--sim", args.sim, _simulator_settings())
    if args.sim_settings and args.extend_url:
        parser.error("--sim configures the Extend simulator: with --extend-url there is no simulator")
    if bool(args.extend_url) != bool(args.api_key):
        parser.error("--extend-url and --api-key go together")
    if args.endpoints and not args.keep:
        parser.error("--endpoints needs --keep (the endpoints only exist while the sandbox runs)")
    if args.files < 0:
        parser.error("--files must be 0 or more")
    if args.stall_timeout is None:
        args.stall_timeout = STALL_TIMEOUT_REAL_EXTEND if args.extend_url else STALL_TIMEOUT
    if args.stall_timeout <= 0 or (args.timeout is not None and args.timeout <= 0):
        parser.error("--stall-timeout and --timeout must be positive")
    _check(parser, args)
    return args


def _setting_names() -> list[str]:
    return [field.alias or name for name, field in Settings.model_fields.items()]


def _simulator_settings() -> list[str]:
    from sandbox.extend_sim import ExtendSimulator

    return list(ExtendSimulator.SETTINGS)


def _assignments(
    parser: argparse.ArgumentParser, option: str, given: list[str], names: list[str]
) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as a dict; VALUE as JSON if it parses (numbers, true, lists …), else a string."""
    values: dict[str, Any] = {}
    for item in given:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            parser.error(f"{option} {item!r}: expected NAME=VALUE")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(names)}"
            parser.error(f"{option} {name}: no such setting{hint}")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    return values


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse bad values now, with the setting's own message, rather than after the sandbox started."""
    options = options_for(args)
    data = {"routes": options.routes, "extendBaseUrl": "http://127.0.0.1", **options.settings}
    try:
        Settings.parse(data, "--set")
    except ConfigError as exc:
        parser.error(str(exc))
    if args.sim_settings:
        from sandbox.extend_sim import ExtendSimulator

        try:
            ExtendSimulator().configure(**dict(args.sim_settings))
        except (TypeError, ValueError) as exc:
            parser.error(f"--sim: {exc}")


# The demo's simulated Extend has no plan limits (it processes and answers as fast as this machine allows),
# and batchdrop's budgets are set to match: the demo shows the pipeline, not Extend's throughput. Run it
# at Extend's pay-as-you-go limits with: --sim plan=payg --set extendFilesPerMinute=80 --set
# readRateLimit=8 --set writeRateLimit=8.
DEMO_SETTINGS: dict[str, Any] = {
    "orphanGraceSeconds": 5,
    "probeIntervalSeconds": 5,  # a blocked route is probed (and a throttled one waits) on the demo's clock
    "probeIntervalMaxSeconds": 60,
    "readRateLimit": 400,
    "writeRateLimit": 400,
    "extendFilesPerMinute": 100_000,
}


def options_for(args: argparse.Namespace) -> SandboxOptions:
    settings: dict[str, Any] = {**DEMO_SETTINGS, "maxWaitSeconds": args.max_wait}
    if args.extend_url:
        # A machine without a public address gets no webhooks: upload the bytes, and let the reconciler
        # poll batches after a minute.
        settings |= {"fileTransfer": "upload", "webhookGraceMinutes": 1}
    return SandboxOptions(
        routes=EXAMPLE_ROUTES,
        settings={**settings, **args.settings},
        extend_url=args.extend_url,
        api_key=args.api_key,
        reconcile_interval=15.0,
        read_rps=0.0,
        sim=args.sim_settings,
    )


class Uploader:
    """Puts the sample files into the drop bucket from 8 threads; ``stop`` lets only the puts in hand end."""

    def __init__(self, sandbox: Sandbox, files: list[Any]) -> None:
        self.files = files
        self.count = 0
        self.error: BaseException | None = None
        self._s3 = sandbox.deployment.session.client("s3")
        self._bucket = sandbox.deployment.resources.drop_bucket
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-upload", daemon=True)

    def start(self) -> Uploader:
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _put(self, sample: Any) -> None:
        if self._stop.is_set():
            return
        self._s3.put_object(Bucket=self._bucket, Key=sample.key, Body=sample.body)
        with self._lock:
            self.count += 1

    def _run(self) -> None:
        try:
            with ThreadPoolExecutor(max_workers=8, thread_name_prefix="demo-upload") as pool:
                list(pool.map(self._put, self.files))
        except Exception as exc:  # noqa: BLE001 - reported by the demo, which then stops
            self.error = exc

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)


# -- what the pipeline is doing ------------------------------------------------------------------------


@dataclass
class Census:
    """Files by route and status from one Scan projected to those two attributes. It reads every item,
    which costs moto about 0.7 ms of CPU per file, so it runs at a pace set by its own duration."""

    by_route: dict[str, Counter[str]]
    seconds: float  # how long it took
    oldest_queued: dict[str, float] = field(default_factory=dict)  # route -> epoch of its oldest QUEUED file
    blocked: dict[str, str] = field(default_factory=dict)  # route -> why Extend refuses it

    def count(self, statuses: Iterable[str], route: str | None = None) -> int:
        counters = [self.by_route.get(route, Counter())] if route else list(self.by_route.values())
        return sum(c[s] for c in counters for s in statuses)

    @property
    def tracked(self) -> int:
        return self.count(FileStatus.ALL)

    @property
    def terminal(self) -> int:
        return self.count(FileStatus.TERMINAL)

    @property
    def submitted(self) -> int:
        """Files no longer QUEUED (the REJECTED ones included, as they will never be)."""
        return self.tracked - self.count([FileStatus.QUEUED])

    def fingerprint(self) -> tuple[Any, ...]:
        return tuple(sorted((r, s, n) for r, c in self.by_route.items() for s, n in c.items()))


@dataclass
class Pulse:
    """What is cheap to read every second: a few milliseconds of moto's time, not a read of every file."""

    tracked: int  # items in the Files table (DescribeTable's ItemCount, which moto keeps exact)
    batches: list[dict[str, Any]]  # the Batches table (one small item per submission)
    arrivals_visible: int = 0  # S3 notifications intake has not read
    arrivals_in_flight: int = 0  # ... being read
    flush_requests: int = 0
    collection_requests: int = 0
    extend_runs: dict[str, Counter[str]] | None = None  # batch id -> runs by status (None: a real Extend)
    webhooks_pending: int = 0

    def open_batches(self, route: str) -> list[dict[str, Any]]:
        found = [b for b in self.batches if b["route"] == route and b["state"] in BatchState.OPEN]
        return sorted(found, key=lambda b: b["createdAt"])

    def fingerprint(self) -> tuple[Any, ...]:
        batches = tuple(sorted((b["submissionId"], b["state"], b.get("batchId") or "") for b in self.batches))
        runs = tuple(sorted((bid, tuple(sorted(c.items()))) for bid, c in (self.extend_runs or {}).items()))
        return self.tracked, batches, runs


def extend_runs(simulator: Any) -> dict[str, Counter[str]] | None:
    """Runs by status of every batch the simulator holds (read in this process; None without one)."""
    if simulator is None:
        return None
    with simulator.lock:
        engine = simulator.engine
        return {b.id: Counter(engine.runs[r].status for r in b.run_ids) for b in engine.batches.values()}


class Observer:
    """Reads the pulse every second and a census at a pace that keeps its cost to about a tenth of moto's
    time (at least every 30 s); says what the pipeline waits for."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        deployment = sandbox.deployment
        self._ddb = deployment.session.client("dynamodb")
        self._sqs = deployment.session.client("sqs")
        self._runtime = sandbox.pipeline.runtime("submitter")
        self.census: Census | None = None
        self._next_census = 0.0
        self._census_saw: Any = None  # the pulse when the census was taken

    def pulse(self) -> Pulse:
        deployment = self.sandbox.deployment
        resources = deployment.resources
        tracked = self._ddb.describe_table(TableName=resources.files_table)["Table"]["ItemCount"]
        batches = list(scan_all(self._ddb, TableName=resources.batches_table))
        arrivals = self._sqs.get_queue_attributes(
            QueueUrl=deployment.arrivals_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        simulator = self.sandbox.simulator
        return Pulse(
            tracked=tracked,
            batches=batches,
            arrivals_visible=int(arrivals["ApproximateNumberOfMessages"]),
            arrivals_in_flight=int(arrivals["ApproximateNumberOfMessagesNotVisible"]),
            flush_requests=queue_depth(self._sqs, resources.flush_queue_url),
            collection_requests=queue_depth(self._sqs, resources.results_queue_url),
            extend_runs=extend_runs(simulator),
            webhooks_pending=simulator.webhooks.pending() if simulator else 0,
        )

    def census_due(self, now: float) -> bool:
        return now >= self._next_census

    def stale(self, pulse: Pulse) -> bool:
        """Something moved since the census was taken."""
        return pulse.fingerprint() != self._census_saw

    def take_census(self, now: float, pulse: Pulse | None = None) -> Census:
        began = time.monotonic()
        files = self._runtime.files
        counts = files.count_by_route_and_status()
        by_route = {(UNROUTED if r == "-" else r): c for r, c in counts.items()}
        census = Census(by_route=by_route, seconds=time.monotonic() - began)
        for route in self.sandbox.settings.routes:
            if by_route.get(route.name, Counter())[FileStatus.QUEUED]:
                oldest = files.queue_depth(route.name, 1)[1]
                if oldest:
                    census.oldest_queued[route.name] = parse_iso(oldest).timestamp()
                state = self._runtime.state.route_state(route.name)
                if state.get("blocked"):
                    census.blocked[route.name] = (
                        f"{state.get('blockedReason')}: {state.get('blockedMessage')}"
                    )
        self.census = census
        self._census_saw = pulse.fingerprint() if pulse else None
        self._next_census = now + min(30.0, max(3.0, 10 * (time.monotonic() - began)))
        return census


def waiting_for(
    pulse: Pulse,
    census: Census | None,
    *,
    routes: list[str],
    max_wait: float,
    max_batch: int,
    flushed: bool,
    uploading: tuple[int, int] | None,
    now: float,
) -> list[str]:
    """What the pipeline is waiting for, one line per reason (``now``: wall clock)."""
    lines = []
    if uploading:
        lines.append(f"uploading: {uploading[0]:,} of {uploading[1]:,} files put in the drop bucket")
    if pulse.arrivals_visible or pulse.arrivals_in_flight:
        line = f"intake: {counted(pulse.arrivals_visible, 'S3 notification')} not yet read"
        if pulse.arrivals_in_flight:
            line += f", {pulse.arrivals_in_flight:,} being read"
        lines.append(line)
    for route in routes:
        opened = pulse.open_batches(route)
        queued = 0
        if census:  # less the files that went into a batch since the census
            in_batches = census.count([FileStatus.SUBMITTED], route)
            claimed = sum(b.get("fileCount", 0) for b in opened) - in_batches
            queued = census.count([FileStatus.QUEUED], route) - max(0, claimed)
        if queued > 0:
            lines.append(_queued_line(route, queued, census, max_wait, max_batch, flushed, now))
        for batch in opened:
            lines.append(_batch_line(batch, pulse))
    if pulse.flush_requests:
        lines.append(f"submitter: {counted(pulse.flush_requests, 'flush request')} queued")
    if pulse.collection_requests:
        lines.append(f"results: {counted(pulse.collection_requests, 'collection request')} queued")
    return lines


def _queued_line(
    route: str, queued: int, census: Census, max_wait: float, max_batch: int, flushed: bool, now: float
) -> str:
    head = f"{queued:,} files QUEUED on route {route}"
    if route in census.blocked:
        return (
            f"{head}: the route is blocked ({census.blocked[route]}); they wait for a submission to succeed"
        )
    if queued >= max_batch:
        return f"{head}: a full batch, waiting for the submitter"
    if flushed:
        return f"{head}: flush requested, waiting for the submitter"
    oldest = census.oldest_queued.get(route)
    if oldest is None:
        return f"{head} until maxWaitSeconds or flush"
    due = oldest + max_wait - now
    when = f"in {due:.0f} s" if due > 0 else f"due {-due:.0f} s ago, the next sweep sends them"
    return f"{head} until maxWaitSeconds ({when}) or flush"


def _batch_line(batch: dict[str, Any], pulse: Pulse) -> str:
    count, route = batch.get("fileCount", 0), batch["route"]
    if batch["state"] == BatchState.SUBMITTING:
        what = (
            f"{count:,} files of route {route}" if count else f"a batch of route {route} (claiming its files)"
        )
        return f"{what} being submitted to Extend ({batch['submissionId']})"
    if batch["state"] == BatchState.UNKNOWN:
        return f"{count:,} files of route {route}: the batch POST's outcome is unknown, being resolved"
    head = f"{count:,} files of route {route} submitted in batch {batch.get('batchId')} at Extend"
    if pulse.extend_runs is None:
        return head
    runs = pulse.extend_runs.get(batch.get("batchId") or "", Counter())
    total = sum(runs.values())
    done = runs["PROCESSED"] + runs["FAILED"]
    if done < total or not total:
        return f"{head}: {done:,} of {total:,} runs done"
    line = f"{head}: every run done, results being collected"
    pending = pulse.webhooks_pending
    return line + (f" ({counted(pending, 'webhook')} on the way)" if pending else "")


class Stall:
    """Progress is any change of what the pulse or the census see; the pipeline is stalled when nothing
    changed for ``timeout`` seconds, not counting a wait for a partial batch's maxWaitSeconds."""

    def __init__(self, timeout: float, now: float) -> None:
        self.timeout = timeout
        self.last_change = now
        self._seen: Any = None

    def observe(self, fingerprint: Any, now: float, quiet_until: float = 0.0) -> None:
        if fingerprint != self._seen:
            self._seen = fingerprint
            self.last_change = now
        self.last_change = max(self.last_change, min(quiet_until, now))

    def quiet_for(self, now: float) -> float:
        return now - self.last_change

    def stalled(self, now: float) -> bool:
        return self.quiet_for(now) >= self.timeout


class _Display(Progress):
    """The progress bars, then what the pipeline is waiting for."""

    def __init__(self, *columns: Any, **kwargs: Any) -> None:
        self.waiting: list[str] = []  # before Progress renders for the first time
        super().__init__(*columns, **kwargs)

    def get_renderables(self) -> Iterable[RenderableType]:
        yield Group(
            self.make_tasks_table(self.tasks), Text("\n".join(f"  waiting: {w}" for w in self.waiting))
        )


@dataclass
class Outcome:
    finished: bool
    reason: str = ""  # why it gave up
    stuck: list[str] = field(default_factory=list)  # what it was waiting for then


def watch(
    sandbox: Sandbox,
    uploader: Uploader,
    console: Console,
    *,
    stall_timeout: float,
    timeout: float | None = None,
    log_every: float = 30.0,
) -> Outcome:
    """Upload while showing progress; until every file is terminal, the pipeline stalls, or ``timeout``."""
    expected = len(uploader.files)
    observer = Observer(sandbox)
    settings = sandbox.settings
    routes = [r.name for r in settings.routes]
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    display = _Display(*columns, console=console, transient=False)
    bars = {
        name: display.add_task(name, total=expected)
        for name in ("uploaded", "tracked", "submitted", "terminal")
    }
    started = time.monotonic()
    stall = Stall(stall_timeout, started)
    flushed = False
    next_log = started
    pulse: Pulse | None = None
    lines: list[str] = []
    with display:
        uploader.start()
        while True:
            now = time.monotonic()
            if uploader.error is not None:
                raise uploader.error
            try:
                pulse = observer.pulse()
                all_in = uploader.done and pulse.tracked >= expected
                idle = (
                    all_in
                    and not pulse.collection_requests
                    and not any(pulse.open_batches(r) for r in routes)
                )
                if observer.census_due(now) or (idle and observer.stale(pulse)):
                    observer.take_census(now, pulse)
            except Exception as exc:  # noqa: BLE001 - a busy moto may time out; the next round reads again
                problem = f"could not read the sandbox's state ({type(exc).__name__}: {str(exc)[:80]})"
                display.waiting = [f"{problem}; trying again", *lines]
                if stall.stalled(now):
                    return Outcome(finished=False, reason=f"{problem} for {stall.quiet_for(now):.0f} s")
                time.sleep(1.0)
                continue
            census = observer.census
            lines = waiting_for(
                pulse,
                census,
                routes=routes,
                max_wait=settings.max_wait_seconds,
                max_batch=settings.max_batch_size,
                flushed=flushed,
                uploading=None if uploader.done else (uploader.count, expected),
                now=time.time(),
            )
            display.waiting = lines
            display.update(bars["uploaded"], completed=uploader.count)
            display.update(bars["tracked"], completed=min(pulse.tracked, expected))
            if census:
                display.update(bars["submitted"], completed=min(census.submitted, expected))
                display.update(bars["terminal"], completed=min(census.terminal, expected))
            if census and uploader.done and census.terminal >= expected:
                display.waiting = []
                return Outcome(finished=True)
            if all_in and not flushed:
                # Everything has arrived: do what an operator would (`batchdrop flush`) rather than
                # wait maxWaitSeconds for the last, partial batch of each route.
                flush_all_routes(sandbox)
                flushed = True
            fingerprint = (uploader.count, pulse.fingerprint(), census.fingerprint() if census else None)
            stall.observe(fingerprint, now, 0.0 if flushed else _max_wait_over(census, settings, now))
            if not console.is_terminal and now >= next_log:
                _log_progress(console, now - started, uploader, pulse, census, lines)
                next_log = now + log_every
            if stall.stalled(now):
                reason = f"no progress for {stall.quiet_for(now):.0f} s (--stall-timeout {stall_timeout:.0f})"
                return Outcome(finished=False, reason=reason, stuck=lines)
            if timeout is not None and now - started >= timeout:
                return Outcome(finished=False, reason=f"--timeout {timeout:.0f} s reached", stuck=lines)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))


def _max_wait_over(census: Census | None, settings: Any, now: float) -> float:
    """When (monotonic) the last partial batch the census saw waiting is due, plus a sweep's slack;
    waiting for it is no stall."""
    if census is None or not census.oldest_queued:
        return 0.0
    due = max(census.oldest_queued.values()) + settings.max_wait_seconds + 10
    return now + (due - time.time())


def _log_progress(
    console: Console,
    elapsed: float,
    uploader: Uploader,
    pulse: Pulse,
    census: Census | None,
    lines: list[str],
) -> None:
    """Without a terminal (CI, a pipe), a progress line every so often instead of the bars."""
    parts = [f"uploaded {uploader.count:,}/{len(uploader.files):,}", f"tracked {pulse.tracked:,}"]
    if census:
        parts += [f"submitted {census.submitted:,}", f"terminal {census.terminal:,}"]
    console.print(f"[{elapsed:5.0f} s] " + ", ".join(parts), highlight=False, soft_wrap=True)
    for line in lines:
        console.print(f"  waiting: {line}", highlight=False, soft_wrap=True)


def flush_all_routes(sandbox: Sandbox) -> None:
    runtime = sandbox.pipeline.runtime("submitter")
    for route in sandbox.settings.routes:
        runtime.request_flush(route.name, reason="demo: every file has arrived", force=True)


def summarize(sandbox: Sandbox, elapsed: float) -> dict[str, Any]:
    ddb = sandbox.deployment.session.client("dynamodb")
    resources = sandbox.deployment.resources
    files = [with_derived_names(v) for v in scan_all(ddb, TableName=resources.files_table)]
    batches = list(scan_all(ddb, TableName=resources.batches_table))
    routes: dict[str, Any] = defaultdict(lambda: {"files": 0, "statuses": Counter(), "batches": []})
    for item in files:
        route = routes[item.get("route") or "(no route)"]
        route["files"] += 1
        route["statuses"][item["status"]] += 1
    for batch in sorted(batches, key=lambda b: b["createdAt"]):
        if batch["state"] != "ABANDONED":
            routes[batch["route"]]["batches"].append(batch["fileCount"])
    rejected = sorted(
        (item["key"], item.get("failureReason")) for item in files if item["status"] == FileStatus.REJECTED
    )
    return {
        "elapsedSeconds": round(elapsed, 1),
        "files": len(files),
        "nonTerminal": sum(1 for item in files if item["status"] not in FileStatus.TERMINAL),
        "routes": {
            name: {"files": r["files"], "batches": r["batches"], "byStatus": dict(r["statuses"])}
            for name, r in sorted(routes.items())
        },
        "rejected": [{"key": k, "reason": r} for k, r in rejected],
        "notifications": _notifications(sandbox),
        "motoCpuSeconds": round(sandbox.moto.cpu_seconds(), 1),
    }


def _notifications(sandbox: Sandbox) -> list[dict[str, Any]]:
    drained = aws.drain_notifications(sandbox.deployment, sandbox.notifications_queue_url)
    return [{"subject": n.subject, "message": n.message} for n in drained]


def print_summary(console: Console, summary: dict[str, Any], sandbox: Sandbox) -> None:
    table = Table(title="batchdrop demo: per route")
    for column in ("route", "files", "batches (sizes)", "processed", "failed", "rejected", "other"):
        table.add_column(column, justify="right" if column not in ("route", "batches (sizes)") else "left")
    for name, route in summary["routes"].items():
        by = route["byStatus"]
        other = route["files"] - by.get("PROCESSED", 0) - by.get("FAILED", 0) - by.get("REJECTED", 0)
        sizes = ", ".join(str(s) for s in route["batches"]) or "-"
        table.add_row(
            name,
            str(route["files"]),
            f"{len(route['batches'])} ({sizes})",
            str(by.get("PROCESSED", 0)),
            str(by.get("FAILED", 0)),
            str(by.get("REJECTED", 0)),
            str(other),
        )
    console.print(table)
    console.print(f"elapsed: {summary['elapsedSeconds']} s, files tracked: {summary['files']}")
    for item in summary["rejected"]:
        console.print(f"  rejected: {item['key']!r}: {item['reason']}")
    console.print(f"SNS notifications received: {len(summary['notifications'])}")
    for note in summary["notifications"][:10]:
        message = note["message"]
        console.print(f"  {note['subject']}: {json.dumps(message, default=str)[:160]}")
    bucket = sandbox.deployment.resources.drop_bucket
    console.print("\nTry next (with --keep, the sandbox stays up):")
    console.print("  .venv/bin/batchdrop --sandbox sandbox-endpoints.json status")
    console.print(
        "  .venv/bin/batchdrop --sandbox sandbox-endpoints.json file invoices/2026/acme/INV-000000.pdf"
    )
    console.print(
        f"  AWS_ENDPOINT_URL={sandbox.moto.url} aws s3 ls s3://{bucket}/invoices/ --recursive | head"
    )


def send_logs_to(path: Path) -> Console:
    """The functions' output (JSON log lines, EMF metric blobs on stdout) goes to a file, as it would go
    to CloudWatch; the returned console writes to the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = path.open("w", encoding="utf-8", buffering=1)
    log = logging.getLogger(SERVICE)
    handler = logging.StreamHandler(to_file)
    for existing in list(log.handlers):
        handler.setFormatter(existing.formatter)
        log.removeHandler(existing)
    log.addHandler(handler)
    terminal = Console(file=sys.stdout)
    sys.stdout = to_file
    return terminal


def print_stuck(console: Console, outcome: Outcome, census: Census) -> None:
    """Why the demo gave up: the files not terminal by route and status, and what it was waiting for."""
    console.print(f"[red]gave up: {outcome.reason}[/red]")
    console.print("not terminal, by route and status:")
    for route, counts in sorted(census.by_route.items()):
        left = [f"{s} {counts[s]:,}" for s in FileStatus.ALL if s not in FileStatus.TERMINAL and counts[s]]
        if left:
            console.print(f"  {route}: {', '.join(left)}", highlight=False, soft_wrap=True)
    if outcome.stuck:
        console.print("it was waiting for:")
        for line in outcome.stuck:
            console.print(f"  {line}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt.install()
    console = send_logs_to(args.log)
    files = sample_files(args.files) if args.files else []
    extend = f"Extend at {args.extend_url}" if args.extend_url else "the Extend simulator"
    console.print(f"Starting the sandbox (moto server, {extend})…")
    sandbox = Sandbox(options_for(args))
    uploader: Uploader | None = None
    keeping = False
    try:
        sandbox.start()
        console.print(f"  AWS endpoint: {sandbox.moto.url}   Extend: {sandbox.settings.extend_base_url}")
        console.print(
            f"  webhook: {sandbox.webhook_url}   drop bucket: {sandbox.deployment.resources.drop_bucket}"
        )
        console.print(f"  function logs: {args.log}")
        started = time.monotonic()
        outcome = Outcome(finished=True)
        if files:
            console.print(
                f"Dropping {len(files):,} files; giving up after {args.stall_timeout:.0f} s without progress"
            )
            uploader = Uploader(sandbox, files)
            outcome = watch(
                sandbox, uploader, console, stall_timeout=args.stall_timeout, timeout=args.timeout
            )
            uploader.stop()
        summary = summarize(sandbox, time.monotonic() - started)
        summary["outcome"] = "finished" if outcome.finished else outcome.reason
        if not outcome.finished:
            print_stuck(console, outcome, Observer(sandbox).take_census(time.monotonic()))
        print_summary(console, summary, sandbox)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2, default=str))
        if args.keep:
            endpoints = sandbox.endpoints()
            if args.endpoints:
                args.endpoints.write_text(json.dumps(endpoints, indent=2))
                console.print(f"endpoints written to {args.endpoints}")
            console.print(json.dumps(endpoints, indent=2))
            console.print("The sandbox keeps running; Ctrl-C stops it.")
            keeping = True
            while True:
                time.sleep(3600)
        if not outcome.finished or summary["nonTerminal"]:
            console.print(f"[red]{summary['nonTerminal']} file(s) did not reach a terminal state[/red]")
            return 1
        return 0
    except Interrupted as stop:
        console.print(
            f"{stop}: stopping the sandbox (Ctrl-C again to force exit)…", highlight=False, soft_wrap=True
        )
        if uploader is not None:
            uploader.stop()
            if uploader.count < len(files):
                interrupt.note(f"{len(files) - uploader.count:,} of {len(files):,} files never dropped")
        sandbox.stop()
        console.print(interrupt.summary(), highlight=False, soft_wrap=True)
        return interrupt.finish(0 if keeping else stop.exit_code)
    finally:
        if uploader is not None:
            uploader.stop()
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
