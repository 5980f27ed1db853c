"""The flush sweep (scheduled): a route gets a flush request when its oldest QUEUED file has waited
``maxWaitSeconds``, when a full batch is waiting (its flush request was lost, or Extend throttled it), or
when it holds an ambiguous submission past its grace period (design §2, I2, I3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from batchdrop_core import routehealth, timeutil
from batchdrop_core.observability import logger
from batchdrop_core.runtime import Runtime
from batchdrop_core.timeutil import age_seconds, iso
from batchdrop_core.tracking import BatchState


@dataclass
class SweepOutcome:
    oldest_queued_age: dict[str, float] = field(default_factory=dict)
    flushed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # blocked (probe not due) or backing off


def sweep(rt: Runtime) -> SweepOutcome:
    outcome = SweepOutcome()
    orphan_cutoff = iso(timeutil.utc_now() - timedelta(seconds=rt.settings.orphan_grace_seconds))
    for route in rt.settings.routes:
        waiting, oldest = rt.files.queue_depth(route.name, rt.settings.max_batch_size)
        age = age_seconds(oldest) if oldest else 0.0
        outcome.oldest_queued_age[route.name] = age  # measured while a route is held too: its alarm
        if not routehealth.wants_flush(rt.state.route_state(route.name)):
            # Blocked until its next probe, or backing off: a flush request could do nothing.
            outcome.held.append(route.name)
            continue
        ambiguous = [
            s
            for s in rt.batches.open_submissions(route.name, created_before=orphan_cutoff)
            if s.state in (BatchState.SUBMITTING, BatchState.UNKNOWN)
        ]
        due = oldest is not None and (
            age >= rt.settings.max_wait_seconds or waiting >= rt.settings.max_batch_size
        )
        if due or ambiguous:
            rt.request_flush(route.name, reason="sweep")
            outcome.flushed.append(route.name)
    # A route removed (`batchdrop routes apply`) while a submission of it was ambiguous: the submitter
    # settles that submission by the route's name (it records its processor); no batch goes out for it.
    for name in rt.retired_routes():
        submissions = rt.batches.open_submissions(name, created_before=orphan_cutoff)
        if any(s.state in (BatchState.SUBMITTING, BatchState.UNKNOWN) for s in submissions):
            rt.request_flush(name, reason="sweep")
            outcome.flushed.append(name)
    if outcome.flushed:
        logger.info("flush requested", extra={"routes": outcome.flushed})
    return outcome
