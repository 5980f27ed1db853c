"""Ambiguous submissions (a POST whose answer was lost, a crash before its batch id was recorded): adopted
when Extend has their runs, abandoned (files back to the queue) only after searches that would have found
them (I3)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from batchdrop_core import admission, lookup, timeutil
from batchdrop_core.observability import logger
from batchdrop_core.redact import redact
from batchdrop_core.runtime import Runtime
from batchdrop_core.timeutil import iso, now_iso
from batchdrop_core.tracking import BatchState, FileStatus, Submission, TrackedFile

if TYPE_CHECKING:
    from batchdrop_core.submit import FlushOutcome


# An ambiguous submission is abandoned only after this many searches that found none of its runs, each
# at least orphanGraceSeconds after the one before (minutes apart by default).
ORPHAN_SEARCHES = 2


def abandon_submission(rt: Runtime, submission_id: str, files: list[TrackedFile], note: str) -> None:
    """A submission that never reached Extend: its files go back to the queue in their old places, its
    admission reservation is released."""
    rt.files.release(files, submission_id)
    from_states = [BatchState.SUBMITTING, BatchState.UNKNOWN]
    rt.batches.transition(submission_id, from_states, BatchState.ABANDONED, note=redact(note, 500))
    admission.release(rt, submission_id)


def resolve_orphans(rt: Runtime, route: str, outcome: FlushOutcome) -> None:
    """Settle submissions a crash or an ambiguous POST left SUBMITTING/UNKNOWN (I3). A submission records
    its processor, so a route removed since (`batchdrop routes apply`) is settled by its name alone."""
    cutoff = iso(timeutil.utc_now() - timedelta(seconds=rt.settings.orphan_grace_seconds))
    for submission in ambiguous_submissions(rt, route, cutoff):
        resolve_orphan(rt, submission, outcome)


def ambiguous_submissions(rt: Runtime, route: str, created_before: str) -> list[Submission]:
    return [
        s
        for s in rt.batches.open_submissions(route, created_before=created_before)
        if s.state in (BatchState.SUBMITTING, BatchState.UNKNOWN)
    ]


def resolve_orphan(rt: Runtime, submission: Submission, outcome: FlushOutcome) -> None:
    """Adopt an ambiguous submission that Extend has; abandon it (its files go back to the queue) only
    after ``ORPHAN_SEARCHES`` searches at least ``orphanGraceSeconds`` apart found nothing, since a batch
    may show its runs late. A batch that turns up even later is a late duplicate (``collect``)."""
    sid = submission.submission_id
    fresh = rt.batches.get(sid) or submission
    batch_id = fresh.batch_id
    run_ids: dict[str, str] = {}
    if not batch_id:
        last = fresh.orphan_searched_at
        if last and timeutil.age_seconds(last) < rt.settings.orphan_grace_seconds:
            outcome.counts["orphan_waiting"] += 1
            return  # searched a moment ago: the next search waits, so the two are minutes apart
        runs = lookup.runs_of_submission(rt, submission)
        run_ids = {run.id: run.id for run in runs}
        # Types whose runs name their batch (parse, workflows): the batch is linked, and collected by it.
        found_batch = next((run.batch_id for run in runs if run.batch_id), None)
        if found_batch and rt.batches.link_batch_id(sid, found_batch):
            batch_id = found_batch
    if batch_id or run_ids:
        # Extend has it: adopt the batch, never resend (I3).
        rt.batches.transition(
            sid,
            [BatchState.SUBMITTING, BatchState.UNKNOWN],
            BatchState.SUBMITTED,
            submittedAt=now_iso(),
            adopted=True,
            note=f"adopted after an ambiguous submission ({len(run_ids) or 'batch id known'} runs found)",
        )
        outcome.counts["adopted"] += 1
        logger.info("ambiguous submission adopted", extra={"submissionId": sid, "runs": len(run_ids)})
        return
    searches = fresh.orphan_searches + 1
    if searches < ORPHAN_SEARCHES:
        rt.batches.record_orphan_search(sid, searches)
        outcome.counts["orphan_searched"] += 1
        logger.info("ambiguous submission not found at Extend yet", extra={"submissionId": sid})
        return
    files = [f for f in rt.files.of_submission(sid) if f.status == FileStatus.SUBMITTED]
    note = f"no run of this submission found at Extend in {searches} searches; files requeued"
    abandon_submission(rt, sid, files, note)
    outcome.counts["requeued_orphan"] += 1
    logger.info("ambiguous submission never reached Extend; files requeued", extra={"submissionId": sid})
