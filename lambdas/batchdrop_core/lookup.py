"""What Extend holds for one of our submissions: its runs, found by the metadata every input carries (I3),
and whether its batch is over. The submitter (orphans), the results worker and the reconciler ask here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from batchdrop_core.extend import TERMINAL_BATCH_STATUSES, TERMINAL_RUN_STATUSES, BatchStatus
from batchdrop_core.timeutil import parse_iso

if TYPE_CHECKING:
    from batchdrop_core.extend import RunSummary
    from batchdrop_core.runtime import Runtime
    from batchdrop_core.tracking import Submission

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
