"""Intake Lambda: S3 notifications (via SQS) → one Files item per object version, then a flush request."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from batchdrop_core.intake import IntakeOutcome, ingest_message
from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.runtime import Runtime
from batchdrop_core.sqsbatch import Record, process_records

# HeadObject and PutItem are I/O bound: run the records of a batch concurrently.
_io_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="intake")


@cache
def runtime() -> Runtime:
    return Runtime.from_env()


def record_handler(record: Record) -> IntakeOutcome:
    return ingest_message(runtime(), record["body"])


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rt = runtime()
    batch = process_records(event["Records"], record_handler, executor=_io_pool)
    total = IntakeOutcome()
    for outcome in batch.results:
        total.merge(outcome)
    _emit_metrics(total)
    for route in sorted(total.queued_routes):
        try:
            rt.request_flush(route, reason="arrivals")
        except (BotoCoreError, ClientError):
            # The files are durable; the scheduled sweep requests the flush if this one was lost.
            logger.exception("flush request failed", extra={"route": route})
    return batch.response()


def _emit_metrics(outcome: IntakeOutcome) -> None:
    counts = outcome.counts
    metrics.add_metric(MetricName.FILES_RECEIVED, MetricUnit.Count, counts["queued"] + counts["rejected"])
    metrics.add_metric(MetricName.FILES_REJECTED, MetricUnit.Count, counts["rejected"])
    metrics.add_metric(MetricName.DUPLICATE_NOTIFICATIONS, MetricUnit.Count, counts["duplicate"])
