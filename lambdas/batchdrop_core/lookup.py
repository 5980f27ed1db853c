"""What Extend holds for one of our submissions: its runs, found by the metadata every input carries (I3),
and whether its batch is over. The submitter (orphans), the results worker and the reconciler ask here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from batchdrop_core.extend import (
    TERMINAL_BATCH_STATUSES,
    TERMINAL_RUN_STATUSES,
    BatchStatus,
    ExtendRejectedError,
)
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.observability import logger
from batchdrop_core.timeutil import parse_iso

if TYPE_CHECKING:
    from batchdrop_core.extend import RunSummary
    from batchdrop_core.runtime import Runtime
    from batchdrop_core.tracking import Submission


class RetryLater(Exception):
    """The batch cannot be collected yet; the message goes back to the queue and is tried again."""


# Runs created this long before a submission's record cannot belong to it (clock skew allowance).
SEARCH_SKEW = timedelta(minutes=5)


def runs_of_submission(rt: Runtime, submission: Submission) -> list[RunSummary]:
    """The runs Extend holds for a submission, found by their metadata: the processor's runs newest first,
    back to the submission's creation (less ``SEARCH_SKEW``). For a submission whose batch id we never
    learnt (an ambiguous POST, a crash before it was recorded)."""
    not_before = parse_iso(submission.created_at) - SEARCH_SKEW
    found: list[RunSummary] = []
    for run in rt.extend.iter_runs(
        submission.processor_type,
        processor_id=submission.processor_id,
        sort_by="createdAt",
        sort_dir="desc",
        max_page_size=1000,
    ):
        if run.created_at and parse_iso(str(run.created_at)) < not_before:
            break
        if run.batchdrop_metadata.get("submissionId") == submission.submission_id:
            found.append(run)
    return found


def status_if_over(rt: Runtime, submission: Submission) -> str | None:
    """Extend's batch status once the submission's batch is over; None while it is not (or, without a
    batch id, while its runs are not all found and finished)."""
    if submission.batch_id:
        status = rt.extend.get_batch_run(submission.batch_id).status
        return status if status in TERMINAL_BATCH_STATUSES else None
    runs = runs_of_submission(rt, submission)
    return BatchStatus.PROCESSED if _all_finished(runs) else None


def finished_runs(rt: Runtime, submission: Submission) -> tuple[str, list[RunSummary]] | None:
    """(Extend's batch status, every run of the submission) once its batch is over; None while it is not."""
    if submission.batch_id:
        status = status_if_over(rt, submission)
        if status is None:
            return None
        # A stable order (Extend's default may be updatedAt, which moves a run between pages as it changes).
        runs = rt.extend.iter_runs(
            submission.processor_type,
            batch_id=submission.batch_id,
            sort_by="createdAt",
            sort_dir="asc",
            max_page_size=1000,
        )
        return status, list(runs)
    found = runs_of_submission(rt, submission)
    return (BatchStatus.PROCESSED, found) if _all_finished(found) else None


def _all_finished(runs: list[RunSummary]) -> bool:
    return bool(runs) and all(run.status in TERMINAL_RUN_STATUSES for run in runs)


# -- which submission a batch is ----------------------------------------------------------------------


# A few runs are enough to read a batch's submission id from their metadata.
LOOKUP_PAGE_SIZE = 10


def resolve_submission(rt: Runtime, request: CollectionRequest) -> Submission | None:
    """Our submission for a request; None when the batch is not batchdrop's. Raises RetryLater when
    it cannot be told yet."""
    if request.submission_id:
        submission = rt.batches.get(request.submission_id)
        if submission is None:
            extra = {"submissionId": request.submission_id, "source": request.source}
            logger.warning("collection request for an unknown submission dropped", extra=extra)
        return submission
    batch_id = request.batch_id or ""  # a request names one or the other (CollectionRequest)
    return rt.batches.by_batch_id(batch_id) or _adopt_batch(rt, batch_id)


def _adopt_batch(rt: Runtime, batch_id: str) -> Submission | None:
    """A batch id we have not recorded (the webhook beat the submitter, or the submission was adopted
    without it): its runs' metadata name the submission (I3)."""
    for processor_type in sorted({route.type for route in rt.settings.routes}):
        page = rt.extend.list_runs_page(
            processor_type,
            batch_id=batch_id,
            sort_by="createdAt",
            sort_dir="asc",
            max_page_size=LOOKUP_PAGE_SIZE,
        )
        if not page.data:
            continue
        sid = next((s for r in page.data if (s := r.batchdrop_metadata.get("submissionId"))), None)
        submission = rt.batches.get(sid) if sid else None
        if submission is None:
            # Another tool's batch in the workspace (the webhook hears of every batch): acknowledged and
            # counted (ForeignBatches), never retried into the DLQ.
            logger.info("batch is not batchdrop's; acknowledged", extra={"batchId": batch_id})
            return None
        if not rt.batches.link_batch_id(sid, batch_id):
            logger.error(
                "submission already has another batch id; this batch is not collected",
                extra={"batchId": batch_id, "submissionId": sid, "knownBatchId": submission.batch_id},
            )
            return None
        # The files learn the batch id when their outcome is recorded.
        submission.batch_id = batch_id
        logger.info("batch linked to its submission via run metadata", extra={"submissionId": sid})
        return submission
    # No run of any type batchdrop submits: if Extend shows the batch finished, its runs are of another
    # kind (another tool's), and they will never be listed here; if not, it may still be on its way.
    try:
        batch = rt.extend.get_batch_run(batch_id)
    except ExtendRejectedError as exc:
        if exc.status_code != 404:
            raise
        raise RetryLater(f"batch {batch_id} is not visible at Extend yet") from exc
    if batch.status in TERMINAL_BATCH_STATUSES:
        logger.info(
            "finished batch without runs of batchdrop's types; acknowledged", extra={"batchId": batch_id}
        )
        return None
    raise RetryLater(f"no run of batch {batch_id} is listed yet")
