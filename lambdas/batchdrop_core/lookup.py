"""What Extend holds for one of our submissions: its runs, found by the metadata every input carries (I3),
and whether its batch is over. The submitter (orphans), the results worker and the reconciler ask here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from batchdrop_core.extend import (
    TERMINAL_BATCH_STATUSES,
    BatchStatus,
    ExtendRejectedError,
)
from batchdrop_core.extend.processors import PROCESSOR_TYPES, ProcessorTypeInfo, processor_type
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
    """The runs Extend holds for a submission, found by their metadata: the type's runs newest first,
    back to the submission's creation (less ``SEARCH_SKEW``). For a submission whose batch id we never
    learnt (an ambiguous POST, a crash before it was recorded).

    A list that takes no sort (parse) comes in its default order, the newest change first: a run last
    changed before the window was also created before it, and so is every run after it. A type whose
    summaries carry no metadata (workflows) is read one run per batch met, whose metadata names the
    submission for the whole batch."""
    info = processor_type(submission.processor_type)
    not_before = parse_iso(submission.created_at) - SEARCH_SKEW
    owner_of_batch: dict[str, object] = {}
    found: list[RunSummary] = []
    for run in rt.extend.iter_runs(
        submission.processor_type,
        processor_id=submission.processor_id,
        sort_by="createdAt",
        sort_dir="desc",
        max_page_size=1000,
    ):
        when = run.created_at if info.sortable else (run.updated_at or run.created_at)
        if when and parse_iso(str(when)) < not_before:
            break
        if info.summaries_carry_metadata:
            owner = run.batchdrop_metadata.get("submissionId")
        else:
            key = run.batch_id or run.id
            if key not in owner_of_batch:
                owner_of_batch[key] = rt.extend.get_run(
                    submission.processor_type, run.id
                ).batchdrop_metadata.get("submissionId")
            owner = owner_of_batch[key]
        if owner == submission.submission_id:
            found.append(run)
    return found


def runs_of_batch(rt: Runtime, processor_type_name: str, batch_id: str) -> list[RunSummary]:
    """Every run of a batch, in a stable order where the list can sort (Extend's default may be
    updatedAt, which moves a run between pages as it changes)."""
    return list(
        rt.extend.iter_runs(
            processor_type_name, batch_id=batch_id, sort_by="createdAt", sort_dir="asc", max_page_size=1000
        )
    )


def status_if_over(rt: Runtime, submission: Submission) -> str | None:
    """Extend's batch status once the submission's batch is over; None while it is not (or, without a
    batch id or a batch Extend can read, while its runs are not all found and finished)."""
    info = processor_type(submission.processor_type)
    if submission.batch_id and info.batch_readable:
        status = rt.extend.get_batch_run(submission.batch_id).status
        return status if status in TERMINAL_BATCH_STATUSES else None
    runs = (
        runs_of_batch(rt, submission.processor_type, submission.batch_id)
        if submission.batch_id
        else runs_of_submission(rt, submission)
    )
    return BatchStatus.PROCESSED if _all_finished(info, runs) else None


def finished_runs(rt: Runtime, submission: Submission) -> tuple[str, list[RunSummary]] | None:
    """(Extend's batch status, every run of the submission) once its batch is over; None while it is not."""
    info = processor_type(submission.processor_type)
    if submission.batch_id and info.batch_readable:
        status = status_if_over(rt, submission)
        if status is None:
            return None
        return status, runs_of_batch(rt, submission.processor_type, submission.batch_id)
    found = (
        runs_of_batch(rt, submission.processor_type, submission.batch_id)
        if submission.batch_id
        else runs_of_submission(rt, submission)
    )
    return (BatchStatus.PROCESSED, found) if _all_finished(info, found) else None


def _all_finished(info: ProcessorTypeInfo, runs: list[RunSummary]) -> bool:
    return bool(runs) and all(run.status in info.terminal_statuses for run in runs)


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
    # Only the types whose batch ids look like this one (bpr_, bpar_, batch_) can hold its runs.
    types = sorted(
        {r.type for r in rt.settings.routes if batch_id.startswith(PROCESSOR_TYPES[r.type].batch_id_prefix)}
    )
    if not types:
        logger.info("batch of a type no route submits; acknowledged", extra={"batchId": batch_id})
        return None
    for type_name in types:
        page = rt.extend.list_runs_page(
            type_name,
            batch_id=batch_id,
            sort_by="createdAt",
            sort_dir="asc",
            max_page_size=LOOKUP_PAGE_SIZE,
        )
        if not page.data:
            continue
        runs = page.data
        if not PROCESSOR_TYPES[type_name].summaries_carry_metadata:
            runs = [rt.extend.get_run(type_name, runs[0].id)]  # one run's metadata names the batch's
        sid = next((s for r in runs if (s := r.batchdrop_metadata.get("submissionId"))), None)
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
    if not any(PROCESSOR_TYPES[t].batch_readable for t in types):
        raise RetryLater(f"no run of batch {batch_id} is listed yet")
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
