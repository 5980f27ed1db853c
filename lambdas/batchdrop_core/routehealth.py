"""Route health: a route Extend refuses (blocked) or throttles (backing off) costs nothing while it waits.

A blocked route (Extend refused the route itself: the key, the processor, the credits) claims no file,
POSTs no batch and writes no Files item. It is probed instead: one ``GET`` of its processor, which
exercises the key and the processor both, first ``probeIntervalSeconds`` (a minute) after the block, then
at doubling intervals up to ``probeIntervalMaxSeconds`` (30 minutes; longer when Extend's ``Retry-After``
says so). A probe that succeeds clears
the block and the flush goes on at once, so the route resumes within one probe interval of Extend
accepting again.

A throttled POST (429 after the client's retries) backs the route off: no claim before ``backoffUntil``,
Extend's ``Retry-After`` the first time, then at least the route's backoff interval, which doubles with
each throttled POST in a row (the same intervals) and is cleared by the next accepted batch.

The state is kept on the route's State item (``ROUTE#<name>``): ``blocked`` …, ``probeAt`` (no probe
before), ``probeSeconds`` (the current probe interval), ``backoffUntil``, ``backoffSeconds``. Each probe
is one conditional write that moves ``probeAt`` on first, so two flushes never probe in one interval.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from batchdrop_core import timeutil
from batchdrop_core.observability import logger
from batchdrop_core.runconfig import RunRoute as Route
from batchdrop_core.runtime import Runtime


def later(seconds: float) -> str:
    return timeutil.iso(timeutil.utc_now() + timedelta(seconds=seconds))


def _passed(moment: str | None) -> bool:
    return moment is None or timeutil.age_seconds(moment) >= 0


def next_interval(rt: Runtime, current: float | None) -> float:
    """The next wait of the exponential backoff: ``probeIntervalSeconds``, then doubling up to
    ``probeIntervalMaxSeconds``."""
    first, cap = rt.settings.probe_interval_seconds, rt.settings.probe_interval_max_seconds
    return float(first) if not current else float(min(float(current) * 2, cap))


def held(state: dict[str, Any]) -> str | None:
    """Why a route may not claim files now ("blocked", "backing_off"), or None."""
    if state.get("blocked"):
        return "blocked"
    if not _passed(state.get("backoffUntil")):
        return "backing_off"
    return None


def probe_due(state: dict[str, Any]) -> bool:
    """A blocked route's probe may go now (a block recorded without ``probeAt`` is probed at once)."""
    return bool(state.get("blocked")) and _passed(state.get("probeAt"))


def wants_flush(state: dict[str, Any]) -> bool:
    """Whether a flush request for the route could do anything now (the sweep asks only then)."""
    reason = held(state)
    return reason is None or (reason == "blocked" and probe_due(state))


def probe(rt: Runtime, route: Route, state: dict[str, Any]) -> bool:
    """Probe a blocked route if its probe is due: True when Extend accepted it (the block is cleared).

    At most one probe per interval: the next probe time is written first (conditional on the one read),
    so a failed, crashed or concurrent probe waits for the next interval like any other.
    """
    if not probe_due(state):
        return False
    interval = next_interval(rt, state.get("probeSeconds"))
    if not rt.state.claim_probe(route.name, state.get("probeAt"), later(interval), interval):
        return False
    from batchdrop_core.extend import ExtendError, ExtendRetryableError

    try:
        rt.extend.check_route(route.type, route.processor_id, retries=0)
    except ExtendRetryableError as exc:
        # Throttled or unavailable: honour Extend's wait if it is longer than the interval.
        if exc.retry_after and exc.retry_after > interval:
            rt.state.claim_probe(route.name, None, later(exc.retry_after), interval, force=True)
        logger.info("probe of a blocked route: Extend unavailable", extra={"route": route.name})
        return False
    except ExtendError as exc:
        logger.info(
            "probe of a blocked route: still refused",
            extra={"route": route.name, "status": exc.status_code, "nextProbeSeconds": interval},
        )
        return False
    logger.info("probe of a blocked route succeeded; the route resumes", extra={"route": route.name})
    return True


def back_off(rt: Runtime, route: Route, state: dict[str, Any], retry_after: float | None) -> str:
    """A POST of the route was throttled: no claim before the time returned (ISO).

    The first throttle waits what Extend asked (``Retry-After``; the first interval when it said
    nothing), as long as Extend asked; each further one in a row waits at least the backoff interval,
    which doubles, so a throttle that lasts all afternoon costs one attempt per interval."""
    current = state.get("backoffSeconds")
    if current:
        wait, interval = max(float(current), retry_after or 0), next_interval(rt, current)
    else:
        interval = next_interval(rt, None)
        wait = retry_after if retry_after else interval
    until = later(wait)
    rt.state.set_route_backoff(route.name, until, interval)
    return until


def accepted(rt: Runtime, route: Route, state: dict[str, Any]) -> None:
    """Extend accepted a batch of the route: the backoff and probe intervals start again from the first
    (one write, only when there is something to clear)."""
    if state.get("backoffSeconds") or state.get("probeSeconds"):
        rt.state.reset_route_intervals(route.name)
        state.pop("backoffSeconds", None)
        state.pop("probeSeconds", None)
