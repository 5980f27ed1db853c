"""Intake Lambda: S3 notifications (via SQS) → one Files item per object version, then a flush request."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import BotoCoreError, ClientError

from batchdrop_core.intake import IntakeOutcome, ingest_message
from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.runtime import Runtime

# HeadObject and PutItem are I/O bound: run the records of a batch concurrently.
_io_pool = ThreadPoolExecutor(max_workers=32, thread_name_prefix="intake")


@cache
def runtime() -> Runtime:
    return Runtime.from_env()


async def record_handler(record: SQSRecord) -> IntakeOutcome:
    return await asyncio.get_running_loop().run_in_executor(_io_pool, ingest_message, runtime(), record.body)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    total = IntakeOutcome()
    # A processor per invocation: it holds the invocation's records and outcomes.
    processor = AsyncBatchProcessor(event_type=EventType.SQS)
    with processor(records=event["Records"], handler=record_handler, lambda_context=context):
        for status, result, _record in processor.async_process():
            if status == "success":
                total.merge(result)
    _emit_metrics(total)
    rt = runtime()
    for route in sorted(total.queued_routes):
        try:
            rt.request_flush(route, reason="arrivals")
        except (BotoCoreError, ClientError):
            # The files are durable; the scheduled sweep requests the flush if this one was lost.
            logger.exception("flush request failed", extra={"route": route})
    return processor.response()


def _emit_metrics(outcome: IntakeOutcome) -> None:
    counts = outcome.counts
    metrics.add_metric(MetricName.FILES_RECEIVED, MetricUnit.Count, counts["queued"] + counts["rejected"])
    metrics.add_metric(MetricName.FILES_REJECTED, MetricUnit.Count, counts["rejected"])
    metrics.add_metric(MetricName.DUPLICATE_NOTIFICATIONS, MetricUnit.Count, counts["duplicate"])
