"""SQS partial batch responses (``ReportBatchItemFailures``) for the functions that consume queues.

This is what the functions used Powertools' batch processors for, with their semantics: each record is
handled on its own; the ones that raised are reported in ``batchItemFailures`` and return to the queue,
the others are deleted; when every record failed, the invocation fails (``BatchFailed``), so SQS retries
the whole batch and the function's error metric counts it; on a FIFO queue, the records after a failed one
are not handled and are reported as failed too, so a message group keeps its order. Importing Powertools'
batch utility loads asyncio and every event data class Powertools knows, about a sixth of boto3's own
import time at every cold start of intake, submitter and results (docs/benchmarks.md, section 5).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from batchdrop_core.observability import logger

Record = dict[str, Any]  # one element of the event's "Records", as Lambda delivers it


class BatchFailed(Exception):
    """Every record of the batch failed; the first failure is the cause."""


@dataclass
class BatchOutcome:
    results: list[Any] = field(default_factory=list)  # what the handler returned, for each success
    failed: list[str] = field(default_factory=list)  # message ids

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in self.failed]}


def process_records(
    records: Iterable[Record],
    handler: Callable[[Record], Any],
    *,
    fifo: bool = False,
    executor: Executor | None = None,
) -> BatchOutcome:
    """Handle every record (concurrently on ``executor`` if given; in order, stopping at the first
    failure, if ``fifo``) and say which ones failed. Raises ``BatchFailed`` if all of them did."""
    records = list(records)
    outcome = BatchOutcome()
    first_error: Exception | None = None
    if executor is not None and not fifo:
        calls = [executor.submit(handler, record).result for record in records]
    else:
        calls = [partial(handler, record) for record in records]  # one after the other, as they come
    for record, call in zip(records, calls, strict=True):
        if fifo and first_error is not None:
            outcome.failed.append(record["messageId"])  # not handled: a FIFO group keeps its order
            continue
        try:
            outcome.results.append(call())
        except Exception as exc:  # noqa: BLE001 - a failed record returns to the queue; the others go on
            logger.warning(
                "record failed; it returns to the queue",
                extra={"messageId": record["messageId"]},
                exc_info=True,
            )
            outcome.failed.append(record["messageId"])
            first_error = first_error or exc
    if records and len(outcome.failed) == len(records):
        raise BatchFailed(f"all {len(records)} records of the batch failed") from first_error
    return outcome
