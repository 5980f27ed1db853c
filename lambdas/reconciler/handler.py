"""Reconciler Lambda (scheduled): ``{"task": "sweep"}`` requests flushes for routes whose files have
waited long enough; ``{"task": "reconcile"}`` settles batches whose webhook never came."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.reconcile import reconcile
from batchdrop_core.runtime import Runtime
from batchdrop_core.sweep import sweep


@cache
def runtime() -> Runtime:
    return Runtime.from_env()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    task = (event or {}).get("task", "sweep")
    rt = runtime()
    if task == "sweep":
        outcome = sweep(rt)
        oldest = max(outcome.oldest_queued_age.values(), default=0.0)
        metrics.add_metric(MetricName.OLDEST_QUEUED_AGE, MetricUnit.Seconds, oldest)
        return {
            "task": task,
            "flushed": outcome.flushed,
            "held": outcome.held,
            "oldestQueuedAgeSeconds": outcome.oldest_queued_age,
        }
    if task == "reconcile":
        result = reconcile(rt)
        metrics.add_metric(MetricName.STUCK_FILES, MetricUnit.Count, result.stuck_files)
        metrics.add_metric(MetricName.OVERDUE_BATCHES, MetricUnit.Count, result.overdue_batches)
        return {
            "task": task,
            "polled": result.polled,
            "collectionRequested": result.collection_requested,
            "stuckFiles": result.stuck_files,
            "overdueBatches": result.overdue_batches,
            "inReview": result.in_review,
            "reviewOverdue": result.review_overdue,
            "alerted": result.alerted,
            "reservationsReleased": result.reservations_released,
        }
    raise ValueError(f"unknown task {task!r}; expected 'sweep' or 'reconcile'")
