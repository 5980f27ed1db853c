"""Submitter Lambda: a flush request (FIFO, group = route) → every due batch of that route goes to Extend."""

from __future__ import annotations

from functools import cache, partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from batchdrop_core.extend import ExtendError
from batchdrop_core.messages import FlushRequest, MalformedMessage
from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.orphans import resolve_orphans
from batchdrop_core.runtime import Runtime
from batchdrop_core.sqsbatch import Record, process_records
from batchdrop_core.submit import FlushOutcome, flush_route


@cache
def runtime() -> Runtime:
    return Runtime.from_env()


def record_handler(record: Record, context: Any) -> None:
    try:
        request = FlushRequest.from_body(record["body"])
    except MalformedMessage as exc:
        # Only a nudge: the sweep asks again. Failing it would hold up its FIFO group (a route).
        logger.error("malformed flush request dropped", extra={"error": str(exc)})
        return
    route = request.route
    rt = runtime()
    if route not in {r.name for r in rt.settings.routes}:
        if route in rt.retired_routes():
            settle_removed_route(rt, route)
            return
        logger.warning("flush request for an unknown route dropped", extra={"route": route})
        return

    def time_left() -> float:
        return context.get_remaining_time_in_millis() / 1000

    outcome = flush_route(rt, route, force=request.force, time_left=time_left)
    metrics.add_metric(MetricName.BATCHES_SUBMITTED, MetricUnit.Count, len(outcome.submitted))
    metrics.add_metric(MetricName.FILES_SUBMITTED, MetricUnit.Count, outcome.counts["files"])
    if outcome.counts["throttled"]:
        metrics.add_metric(MetricName.EXTEND_RATE_LIMITED, MetricUnit.Count, outcome.counts["throttled"])
    if outcome.counts["blocked"] or outcome.counts["unknown"]:
        metrics.add_metric(
            MetricName.SUBMIT_ERRORS, MetricUnit.Count, outcome.counts["blocked"] + outcome.counts["unknown"]
        )
    if outcome.counts["blocked"]:
        metrics.add_metric(MetricName.ROUTE_BLOCKED, MetricUnit.Count, 1)
    if outcome.counts["rejected"]:  # inputs Extend refused, or object versions gone: those files alone
        metrics.add_metric(MetricName.FILES_REJECTED, MetricUnit.Count, outcome.counts["rejected"])
    logger.info(
        "flush done",
        extra={"route": route, "batches": len(outcome.submitted), "stopped": outcome.stopped_because},
    )


def settle_removed_route(rt: Runtime, route: str) -> None:
    """A route `batchdrop routes apply` removed: only its ambiguous submissions are settled (adopted when
    Extend has them, else their files requeued); nothing new is submitted for it."""
    outcome = FlushOutcome()
    try:
        resolve_orphans(rt, route, outcome)
    except ExtendError as exc:  # the sweep asks again
        logger.warning("removed route's submissions not settled", extra={"route": route, "error": str(exc)})
        return
    logger.info("removed route's ambiguous submissions settled", extra={"route": route, **outcome.counts})


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    handle = partial(record_handler, context=context)  # no module state: invocations may overlap
    return process_records(event["Records"], handle, fifo=True).response()
