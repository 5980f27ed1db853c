"""Results Lambda: a collection request (SQS) → every run of one finished batch recorded, announced once."""

from __future__ import annotations

from functools import cache, partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from batchdrop_core.collect import collect
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.runtime import Runtime
from batchdrop_core.sqsbatch import Record, process_records

_METRICS = {
    "processed": MetricName.RESULTS_RECORDED,
    "failed": MetricName.RUNS_FAILED,
    "requeued": MetricName.FILES_REQUEUED,
    "completed": MetricName.BATCHES_COMPLETED,
    "late_duplicate": MetricName.LATE_DUPLICATE_BATCHES,
}


@cache
def runtime() -> Runtime:
    # Copies share the deployment's read budget (batchdrop_core.budget).
    return Runtime.from_env()


def record_handler(record: Record, context: Any) -> None:
    # A failure (including RetryLater) returns the message to the queue; after maxReceiveCount, the DLQ.
    request = CollectionRequest.from_body(record["body"])  # malformed: retried, then the DLQ
    outcome = collect(runtime(), request, lambda: context.get_remaining_time_in_millis() / 1000)
    for name, metric in _METRICS.items():
        if outcome.counts[name]:
            metrics.add_metric(metric, MetricUnit.Count, outcome.counts[name])
    if outcome.credits:
        metrics.add_metric(MetricName.CREDITS_USED, MetricUnit.Count, outcome.credits)
    if outcome.result == "not_ours":
        metrics.add_metric(MetricName.FOREIGN_BATCHES, MetricUnit.Count, 1)
    logger.info(
        "collection request handled",
        extra={"submissionId": outcome.submission_id, "result": outcome.result, **outcome.counts},
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    handle = partial(record_handler, context=context)  # no module state: invocations may overlap
    return process_records(event["Records"], handle).response()
