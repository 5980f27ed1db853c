"""The demo's watch: uploads while showing progress (bars on a terminal, a line now and then otherwise)
until every file is terminal or waiting on a person's review at Extend, the pipeline stalls, or the time
is up."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from batchdrop_core.tracking import IN_REVIEW
from sandbox.demo.observe import Census, Observer, Pulse, review_line, waiting_for
from sandbox.demo.upload import Uploader
from sandbox.local import Sandbox


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
    """Upload while showing progress; until every file is terminal or waiting on review (a workflow run in
    NEEDS_REVIEW: the simulator decided it waits for a person, and nobody reviews in the demo), the
    pipeline stalls, or ``timeout``."""
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
                idle = all_in and not pulse.collection_requests and not any(pulse.at_work(r) for r in routes)
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
            if census and uploader.done and census.settled >= expected:
                # What still shows: the files waiting on review, which no one in the demo decides.
                display.waiting = [review_line(r, census) for r in routes if census.count([IN_REVIEW], r)]
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
        if census.in_review:
            parts.append(f"waiting on review {census.in_review:,}")
    console.print(f"[{elapsed:5.0f} s] " + ", ".join(parts), highlight=False, soft_wrap=True)
    for line in lines:
        console.print(f"  waiting: {line}", highlight=False, soft_wrap=True)


def flush_all_routes(sandbox: Sandbox) -> None:
    runtime = sandbox.pipeline.runtime("submitter")
    for route in sandbox.settings.routes:
        runtime.request_flush(route.name, reason="demo: every file has arrived", force=True)
