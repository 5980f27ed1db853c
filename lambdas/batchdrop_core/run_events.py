"""Collection for types whose runs report one by one (workflows: no batch webhook, one webhook per run).

A file is recorded when its run's event arrives: the run is read (its state now, so duplicate, reordered
and late events all record what Extend holds, once), and its file settled (PROCESSED, FAILED, REJECTED by
a reviewer, or requeued by the retry policy) or marked as waiting on review. Two counters on the Batches
item follow the batch without reading its files: runs settled, and runs out of Extend's processing
(settled or waiting on review). When every run is out of processing, the submission's room at Extend is
given back (a review may take days and holds no processing); when every run is settled, the batch is
swept and finished (manifest, counts, one announcement), as a batch of the other types is.

A sweep lists the batch's runs and records any whose event was lost; the reconciler asks for one when
Extend's list and the counters disagree, and it sets the counters to what it found (a crash between a
record and its count leaves a count short).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from batchdrop_core import admission, timeutil
from batchdrop_core.collect import fetch_processed_runs, finish_submission
from batchdrop_core.extend import ExtendRejectedError
from batchdrop_core.extend.processors import ProcessorTypeInfo, processor_type
from batchdrop_core.lookup import RetryLater, runs_of_batch
from batchdrop_core.observability import logger
from batchdrop_core.outcomes import (
    MISSING_RUN,
    CollectOutcome,
    settle_failed_run,
    settle_failure,
    store_result,
)
from batchdrop_core.runtime import Runtime
from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking import BatchState, FileStatus, Submission, TrackedFile

if TYPE_CHECKING:
    from batchdrop_core.extend import Run, RunSummary

SETTLING_COUNTS = ("processed", "failed", "requeued")


def reports_per_run(submission: Submission) -> bool:
    """Whether a submission's batch is collected run by run (its type has no batch webhook)."""
    return processor_type(submission.processor_type).reports_per_run


def collect_run(
    rt: Runtime, submission: Submission, run_id: str, time_left: Callable[[], float], outcome: CollectOutcome
) -> bool:
    """Record one run of a submission from its event; True when the submission is over (now or before)."""
    info = processor_type(submission.processor_type)
    sid = submission.submission_id
    if submission.state in BatchState.TERMINAL:
        return True
    try:
        run = rt.extend.get_run(submission.processor_type, run_id)
    except ExtendRejectedError as exc:
        if exc.status_code != 404:
            raise
        logger.warning("run of a run event not found at Extend", extra={"runId": run_id, "submissionId": sid})
        return False
    file_id = run.batchdrop_metadata.get("fileId")
    if run.batchdrop_metadata.get("submissionId") != sid or not file_id:
        logger.warning(
            "run event for a run of another submission", extra={"runId": run_id, "submissionId": sid}
        )
        return False
    tracked = rt.files.batch_get_ids([file_id]).get(file_id)
    current = submission
    if tracked is not None and tracked.submission_id == sid and tracked.status == FileStatus.SUBMITTED:
        settled, out_of_processing = record_run(rt, info, submission, tracked, run, outcome)
        if settled or out_of_processing:
            current = rt.batches.count_runs(sid, settled=settled, out_of_processing=out_of_processing)
    else:
        outcome.add("run_already_recorded")
    return after_count(rt, current, time_left, outcome)


def record_run(
    rt: Runtime,
    info: ProcessorTypeInfo,
    submission: Submission,
    tracked: TrackedFile,
    run: Run | RunSummary,
    outcome: CollectOutcome,
) -> tuple[int, int]:
    """Settle an open file by its run's state: (runs settled, runs out of processing) by this call."""
    before = sum(outcome.counts[name] for name in SETTLING_COUNTS)
    if run.status == info.succeeded_status:
        full = run if _is_full(run) else rt.extend.get_run(submission.processor_type, run.id)
        store_result(rt, submission, tracked, full, outcome)  # type: ignore[arg-type]
    elif run.status in info.terminal_statuses:
        settle_failed_run(rt, submission, tracked, run, outcome)
    elif run.status in info.review_statuses:
        since = str(run.updated_at or now_iso())
        if rt.files.mark_in_review(tracked, submission.submission_id, run.id, since):
            outcome.add("in_review")
            return 0, 1
        return 0, 0
    else:
        return 0, 0  # still at work at Extend: its next event says more
    settled = sum(outcome.counts[name] for name in SETTLING_COUNTS) - before
    # A run that waited on review already left processing when it was marked.
    return settled, settled if tracked.review_since is None else 0


def after_count(
    rt: Runtime, submission: Submission, time_left: Callable[[], float], outcome: CollectOutcome
) -> bool:
    """Give the room back once no run is in processing; sweep and finish once every run is settled."""
    if submission.state not in BatchState.OPEN or not submission.file_count:
        return submission.state in BatchState.TERMINAL
    if submission.runs_out_of_processing >= submission.file_count and admission.release(
        rt, submission.submission_id
    ):
        logger.info(
            "every run left processing (settled or in review); room at Extend released",
            extra={"submissionId": submission.submission_id},
        )
    if submission.runs_settled < submission.file_count:
        return False
    return sweep_under_lease(rt, submission, time_left, outcome)


def sweep_under_lease(
    rt: Runtime, submission: Submission, time_left: Callable[[], float], outcome: CollectOutcome
) -> bool:
    """A sweep needs the collection lease; a run event that finds it taken comes back later."""
    sid = submission.submission_id
    owner = uuid.uuid4().hex
    until = timeutil.iso(timeutil.utc_now() + timedelta(seconds=time_left() + 30))
    if not rt.batches.claim_collection(sid, owner, until):
        raise RetryLater(f"submission {sid} is being swept by another worker")
    try:
        return sweep(rt, rt.batches.get(sid) or submission, time_left, outcome)
    finally:
        rt.batches.release_collection(sid, owner)


def sweep(
    rt: Runtime, submission: Submission, time_left: Callable[[], float], outcome: CollectOutcome
) -> bool:
    """List the batch's runs, record every settled or reviewed run not recorded yet (a lost event), and
    finish the submission when every file is settled. False while runs are at work or in review."""
    info = processor_type(submission.processor_type)
    sid = submission.submission_id
    if submission.state in BatchState.TERMINAL:
        return True
    if not submission.batch_id:
        raise RetryLater(f"submission {sid} has no batch id yet")
    runs = runs_of_batch(rt, submission.processor_type, submission.batch_id)
    file_ids = set(rt.files.ids_of_submission(sid))
    files = rt.files.batch_get_ids(file_ids)
    open_files = {
        i: f for i, f in files.items() if f.submission_id == sid and f.status == FileStatus.SUBMITTED
    }
    by_run = {f.run_id: f for f in open_files.values() if f.run_id}
    runs_by_file: dict[str, RunSummary] = {}
    to_fetch: list[tuple[TrackedFile, RunSummary]] = []
    for summary in runs:
        tracked = by_run.get(summary.id)
        if tracked is not None and summary.status in info.review_statuses:
            runs_by_file[tracked.file_id] = summary
            continue  # marked already
        if summary.status not in info.terminal_statuses | info.review_statuses:
            continue  # at work: its event (or the next sweep) records it
        run: RunSummary = summary
        if tracked is None:
            if not info.summaries_carry_metadata:
                if not open_files:
                    continue
                run = rt.extend.get_run(submission.processor_type, summary.id)  # whose file is it?
            tracked = open_files.get(run.batchdrop_metadata.get("fileId") or "")
            if tracked is None or run.batchdrop_metadata.get("submissionId") != sid:
                continue  # settled already
        runs_by_file[tracked.file_id] = run
        if run.status == info.succeeded_status and not _is_full(run):
            to_fetch.append((tracked, run))
        else:
            record_run(rt, info, submission, tracked, run, outcome)
    if not fetch_processed_runs(rt, submission, to_fetch, time_left, outcome):
        raise RetryLater(f"time ran short sweeping submission {sid}")
    listed_all = bool(runs) and all(r.status in info.terminal_statuses for r in runs)
    files = rt.files.batch_get_ids(file_ids)
    still_open = [f for f in files.values() if f.submission_id == sid and f.status == FileStatus.SUBMITTED]
    if listed_all:
        for tracked in still_open:
            if tracked.file_id not in runs_by_file and not tracked.run_id:
                message = "Extend has no run for this file although every run of its batch is over."
                settle_failure(rt, submission, tracked, None, MISSING_RUN, message, outcome)
        files = rt.files.batch_get_ids(file_ids)
        still_open = [
            f for f in files.values() if f.submission_id == sid and f.status == FileStatus.SUBMITTED
        ]
    # Every settled file names its run: the manifest and the credits read the runs listed.
    listed = {r.id: r for r in runs}
    runs_by_file.update({i: listed[f.run_id] for i, f in files.items() if f.run_id in listed})
    in_review = sum(1 for f in still_open if f.review_since)
    settled = submission.file_count - len(still_open)
    rt.batches.set_run_counts(sid, settled, settled + in_review)
    if still_open:
        outcome.add("swept_open", len(still_open))
        return False
    outcome.credits += finish_submission(rt, submission, "PROCESSED", file_ids, runs_by_file)
    outcome.add("completed")
    return True


def _is_full(run: object) -> bool:
    """A run read by id (with its output), not a list summary."""
    from batchdrop_core.extend import Run

    return isinstance(run, Run)
