"""Results Lambda: a collection request (SQS) → every run of one finished batch recorded, announced once."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from batchdrop_core.collect import collect
from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.runtime import Runtime

_METRICS = {
    "processed": MetricName.RESULTS_RECORDED,
    "failed": MetricName.RUNS_FAILED,
    "requeued": MetricName.FILES_REQUEUED,
    "completed": MetricName.BATCHES_COMPLETED,
}


@cache
def runtime() -> Runtime:
    # Copies share the deployment's read budget (batchdrop_core.budget).
    return Runtime.from_env()


def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    # A failure (including RetryLater) returns the message to the queue; after maxReceiveCount, the DLQ.
    def time_left() -> float:
        return lambda_context.get_remaining_time_in_millis() / 1000 if lambda_context else 900.0

    request = json.loads(record.body)
    outcome = collect(runtime(), request, time_left)
    for name, metric in _METRICS.items():
        if outcome.counts[name]:
            metrics.add_metric(metric, MetricUnit.Count, outcome.counts[name])
    logger.info(
        "collection request handled",
        extra={"submissionId": outcome.submission_id, "result": outcome.result, **outcome.counts},
    )


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # A processor per invocation, and the context passed to the record handler (Powertools passes it to a
    # handler that takes ``lambda_context``): no per-invocation state at module level.
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
