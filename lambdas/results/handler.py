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

processor = BatchProcessor(event_type=EventType.SQS)
_context: Any = None

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


def _time_left() -> float:
    return _context.get_remaining_time_in_millis() / 1000 if _context else 900.0


def record_handler(record: SQSRecord) -> None:
    # A failure (including RetryLater) returns the message to the queue; after maxReceiveCount, the DLQ.
    request = json.loads(record.body)
    outcome = collect(runtime(), request, _time_left)
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
    global _context
    _context = context
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
