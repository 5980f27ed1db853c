"""What the pipeline is doing, as the demo sees it: a cheap pulse every second, a census of the files now
and then, and the lines that say what the pipeline waits for.

A file whose workflow run waits in NEEDS_REVIEW for a person at Extend is SUBMITTED with ``reviewSince``:
neither terminal nor stuck. For the demo it is settled (the simulator decided that it waits; nobody
reviews in the demo), so the demo is done when every file is terminal or waiting on review."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from batchdrop_core.dynamo import scan_all
from batchdrop_core.timeutil import parse_iso
from batchdrop_core.tracking import IN_REVIEW, BatchState, FileStatus
from sandbox.aws import queue_depth
from sandbox.local import Sandbox, counted

UNROUTED = "(no route)"
# Extend's run statuses as the simulator holds them: over, and waiting on a person (workflows).
RUN_DONE = frozenset({"PROCESSED", "FAILED", "CANCELLED", "REJECTED"})
RUN_IN_REVIEW = "NEEDS_REVIEW"


@dataclass
class Census:
    """Files by route and status from one Scan projected to those two attributes. It reads every item,
    which costs moto about 0.7 ms of CPU per file, so it runs at a pace set by its own duration."""

    by_route: dict[str, Counter[str]]
    seconds: float  # how long it took
    oldest_queued: dict[str, float] = field(default_factory=dict)  # route -> epoch of its oldest QUEUED file
    blocked: dict[str, str] = field(default_factory=dict)  # route -> why Extend refuses it
    oldest_review: dict[str, str] = field(default_factory=dict)  # route -> its longest review's reviewSince

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
    def in_review(self) -> int:
        """SUBMITTED files whose workflow run waits on a person's review at Extend."""
        return self.count([IN_REVIEW])

    @property
    def settled(self) -> int:
        """Terminal, or waiting on review: all the demo waits for."""
        return self.terminal + self.in_review

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

    def at_work(self, route: str) -> list[dict[str, Any]]:
        """Open batches of a route, less those whose every run at Extend is over or waiting on review and
        whose webhooks are delivered (a workflow batch stays open while a review waits)."""
        if self.extend_runs is None or self.webhooks_pending:
            return self.open_batches(route)
        return [b for b in self.open_batches(route) if not self._runs_out(b)]

    def _runs_out(self, batch: dict[str, Any]) -> bool:
        runs = (self.extend_runs or {}).get(batch.get("batchId") or "", Counter())
        out = sum(n for status, n in runs.items() if status in RUN_DONE or status == RUN_IN_REVIEW)
        return bool(runs) and out == sum(runs.values())

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
        counts, oldest_review = files.census()
        by_route = {(UNROUTED if r == "-" else r): c for r, c in counts.items()}
        census = Census(by_route=by_route, seconds=time.monotonic() - began, oldest_review=oldest_review)
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
        if census and census.count([IN_REVIEW], route):
            lines.append(review_line(route, census))
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


def review_line(route: str, census: Census) -> str:
    """Files of a route whose run waits on a person's review at Extend: settled for the demo, not stuck."""
    since = census.oldest_review.get(route)
    head = f"{census.count([IN_REVIEW], route):,} files of route {route} waiting on review at Extend"
    when = f" since {since[11:19]} UTC" if since and len(since) >= 19 else ""
    return f"{head}{when}: a person decides; not stuck"


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
    done = sum(n for status, n in runs.items() if status in RUN_DONE)
    review = runs[RUN_IN_REVIEW]
    in_review = f", {review:,} waiting on review" if review else ""
    if done + review < total or not total:
        return f"{head}: {done:,} of {total:,} runs done{in_review}"
    line = f"{head}: every run done{' or waiting on review' if review else ''}, results being collected"
    pending = pulse.webhooks_pending
    return line + (f" ({counted(pending, 'webhook')} on the way)" if pending else "")
