"""Results collection: a finished batch's runs → results bucket, Files and Batches items, one SNS message.

Every write is conditional or idempotent, so duplicate, late or reordered requests, continuations and
retries after a crash record nothing twice (I4): a file already settled for this submission is skipped,
and the outcome is announced once (a conditional write on ``notifiedAt`` claims the right to publish).
A lease on the submission keeps two workers from collecting one batch at the same time.

A collection request (``messages.CollectionRequest``) names the batch, our submission, or both.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from batchdrop_core import admission, deployspec, lookup, notifications, timeutil
from batchdrop_core.extend import (
    BatchStatus,
    ExtendRejectedError,
    ExtendRetryableError,
)
from batchdrop_core.extend.processors import processor_type
from batchdrop_core.lookup import RetryLater, resolve_submission
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.observability import logger
from batchdrop_core.outcomes import (
    MISSING_RUN,
    CollectOutcome,
    manifest_key,
    settle_failed_run,
    settle_failure,
    store_result,
)
from batchdrop_core.runtime import Runtime
from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking import BatchState, FileStatus, Submission, TrackedFile

if TYPE_CHECKING:  # the API models (pydantic) load with the Extend client, when the first run is read
    from batchdrop_core.extend import RunSummary

# The results function's event source runs at most this many copies at once (the ESM's minimum). Copies
# share the deployment's read budget (batchdrop_core.budget): one collector alone reads at the whole
# readRateLimit, two together never beyond it.
RESULTS_MAX_CONCURRENCY = deployspec.RESULTS_TRIGGER.max_concurrency or 1
# A request that met an unavailable Extend or a refused key comes back after 30 s, 60 s, … (≤ 15 min),
# about 2 hours in all, then fails (and reaches the DLQ, whose alarm an operator hears).
DEFER_BASE_SECONDS = 30
MAX_SQS_DELAY_SECONDS = 900
MAX_DEFERRALS = 12
# Below this much remaining Lambda time, stop reading runs and continue in a new invocation.
TIME_RESERVE_SECONDS = 60.0

REQUEUED = "REQUEUED"  # manifest status of a file sent round again


def collect(rt: Runtime, request: CollectionRequest, time_left: Callable[[], float]) -> CollectOutcome:
    """Collect (or continue collecting) the batch a request names.

    When Extend is unavailable (throttling or failing beyond the client's retries) or refuses the API key,
    the request comes back later, with a growing delay, instead of failing: a key revoked for an hour
    must not send every finished batch to the DLQ. After ``MAX_DEFERRALS`` it fails like any error.
    """
    try:
        return _collect(rt, request, time_left)
    except (ExtendRetryableError, ExtendRejectedError) as exc:
        transient = isinstance(exc, ExtendRetryableError) or exc.is_auth_problem
        if not transient or request.deferrals >= MAX_DEFERRALS:
            raise
        delay = min(MAX_SQS_DELAY_SECONDS, DEFER_BASE_SECONDS * 2**request.deferrals)
        rt.request_collection(request.deferred(), delay_seconds=delay)
        logger.error(
            "Extend unavailable or refusing the API key; collection deferred",
            extra={"batchId": request.batch_id, "delaySeconds": delay, "error": str(exc)},
        )
        return CollectOutcome(result="deferred", submission_id=request.submission_id)


def _collect(rt: Runtime, request: CollectionRequest, time_left: Callable[[], float]) -> CollectOutcome:
    outcome = CollectOutcome()
    submission = resolve_submission(rt, request)
    if submission is None:
        outcome.result = "not_ours"
        return outcome
    sid = outcome.submission_id = submission.submission_id
    from batchdrop_core import run_events  # it builds on this module

    per_run = run_events.reports_per_run(submission)
    if request.run_id and per_run:
        # A run event records its own run: conditional writes, no lease (a batch's runs report at once).
        finished = run_events.collect_run(rt, submission, request.run_id, time_left, outcome)
        for route in sorted(outcome.requeued_routes):
            rt.request_flush(route, reason="retry")
        outcome.result = "completed" if finished else "run_recorded"
        return outcome
    owner = uuid.uuid4().hex
    until = timeutil.iso(timeutil.utc_now() + timedelta(seconds=time_left() + 30))
    if not rt.batches.claim_collection(sid, owner, until):
        # The lease holder's own message stays in the queue until it finishes, so this one can go.
        logger.info("batch is being collected by another worker", extra={"submissionId": sid})
        outcome.result = "busy"
        return outcome
    try:
        # Read under the lease: a worker that held it before may have finished the batch meanwhile.
        submission = rt.batches.get(sid) or submission
        late = submission.state == BatchState.ABANDONED and bool(submission.batch_id)
        done_before = submission.state in BatchState.TERMINAL and not late
        if late:
            finished = collect_late_batch(rt, submission, time_left, outcome)
        elif per_run:
            finished = done_before or run_events.sweep(rt, submission, time_left, outcome)
            if not finished:
                outcome.result = "waiting"  # runs at work or in review: their events, or the next sweep
        else:
            finished = done_before or _collect_submission(rt, submission, time_left, outcome)
    finally:
        rt.batches.release_collection(sid, owner)
    for route in sorted(outcome.requeued_routes):
        rt.request_flush(route, reason="retry")
    if done_before:
        # Nothing left to record; only a publish that failed before is retried.
        announce(rt, sid)
        outcome.result = "already_done"
        return outcome
    if finished:
        outcome.result = "late_duplicate" if late else "completed"
        return outcome
    if outcome.result == "waiting":
        return outcome
    # Released first, so the continuation can take the lease at once.
    continuation = request.continued(sid)
    rt.request_collection(continuation)
    logger.info(
        "collection continues in a new invocation",
        extra={"submissionId": sid, "continuation": continuation.continuation},
    )
    outcome.result = "continued"
    return outcome


# -- which submission -------------------------------------------------------------------------------


def finished_runs(rt: Runtime, submission: Submission) -> tuple[str, list[RunSummary]]:
    """(Extend's batch status, every run of the submission) once the batch is over; else RetryLater."""
    finished = lookup.finished_runs(rt, submission)
    if finished is None:
        raise RetryLater(f"the batch of submission {submission.submission_id} is not over at Extend")
    return finished


# -- collecting -------------------------------------------------------------------------------------


def _collect_submission(
    rt: Runtime,
    submission: Submission,
    time_left: Callable[[], float],
    outcome: CollectOutcome,
) -> bool:
    """Record every run of a finished batch; False when time ran short before all were read."""
    sid = submission.submission_id
    info = processor_type(submission.processor_type)
    batch_status, runs = finished_runs(rt, submission)
    runs_by_file: dict[str, RunSummary] = {}
    for run in runs:
        ids = run.batchdrop_metadata
        if ids.get("submissionId") == sid and ids.get("fileId"):
            runs_by_file.setdefault(ids["fileId"], run)
    file_ids = set(runs_by_file) | set(rt.files.ids_of_submission(sid))
    files = rt.files.batch_get_ids(file_ids)
    # Settled files are skipped: continuations and duplicate requests record nothing twice.
    open_files = [f for f in files.values() if f.submission_id == sid and f.status == FileStatus.SUBMITTED]

    to_fetch: list[tuple[TrackedFile, RunSummary]] = []
    for tracked in open_files:
        run = runs_by_file.get(tracked.file_id)
        if run is None:
            continue  # settled below, once the runs that exist are recorded
        if run.status == info.succeeded_status:
            to_fetch.append((tracked, run))
        elif run.status in info.terminal_statuses:
            settle_failed_run(rt, submission, tracked, run, outcome)  # the summary has all there is
        elif batch_status == BatchStatus.PROCESSED:
            raise RetryLater(f"run {run.id} is {run.status} although its batch is finished")
        else:
            message = f"Extend ended the batch ({batch_status}) before this run finished."
            settle_failure(rt, submission, tracked, run.id, f"BATCH_{batch_status}", message, outcome)

    if not fetch_processed_runs(rt, submission, to_fetch, time_left, outcome):
        return False
    for tracked in open_files:
        if tracked.file_id not in runs_by_file:
            message = "Extend has no run for this file although its batch is finished."
            settle_failure(rt, submission, tracked, None, MISSING_RUN, message, outcome)
    outcome.credits += finish_submission(rt, submission, batch_status, file_ids, runs_by_file)
    outcome.add("completed")
    return True


def collect_late_batch(
    rt: Runtime, submission: Submission, time_left: Callable[[], float], outcome: CollectOutcome
) -> bool:
    """A batch of an ABANDONED submission turned up after all (its ambiguous POST had reached Extend, and
    the searches missed it): a duplicate submission, whose results are kept rather than thrown away.

    Its files went back to the queue when it was abandoned. A file still QUEUED is taken back into this
    submission and its result recorded (PROCESSED runs only: a failed one goes round the normal way); a
    file already in a newer submission, or settled, is left alone, so each file is recorded once (I4).
    The duplicate is counted (``LateDuplicateBatches``, alarmed) and announced once."""
    from batchdrop_core.tracking import QueuedEntry

    sid = submission.submission_id
    batch_status, runs = finished_runs(rt, submission)
    if rt.batches.claim_late_batch(sid, submission.batch_id or ""):
        outcome.add("late_duplicate")
        logger.error(
            "a batch of an abandoned submission turned up at Extend: a duplicate submission",
            extra={"submissionId": sid, "batchId": submission.batch_id, "runs": len(runs)},
        )
        rt.notify(notifications.batch_duplicate(submission, len(runs)))
    processed = {
        ids["fileId"]: run
        for run in runs
        if (ids := run.batchdrop_metadata).get("submissionId") == sid
        and ids.get("fileId")
        and run.status == processor_type(submission.processor_type).succeeded_status
    }
    files = rt.files.batch_get_ids(processed)
    queued = [f for f in files.values() if f.status == FileStatus.QUEUED and f.queued_at]
    entries = [QueuedEntry(f.file_key, f.version_id, f.queued_at or "") for f in queued]
    taken = {f.file_id: f for f in rt.files.claim(entries, sid)}
    # Files this submission took back on an earlier try that stopped short.
    taken.update(
        {i: f for i, f in files.items() if f.status == FileStatus.SUBMITTED and f.submission_id == sid}
    )
    outcome.add("late_skipped", len(processed) - len(taken))
    pairs = [(tracked, processed[file_id]) for file_id, tracked in taken.items()]
    logger.info(
        "late duplicate batch collected",
        extra={"submissionId": sid, "batchStatus": batch_status, "recorded": len(pairs)},
    )
    return fetch_processed_runs(rt, submission, pairs, time_left, outcome)


def fetch_processed_runs(
    rt: Runtime,
    submission: Submission,
    pairs: list[tuple[TrackedFile, RunSummary]],
    time_left: Callable[[], float],
    outcome: CollectOutcome,
) -> bool:
    """GET each PROCESSED run (bounded concurrency; the client's shared limiter keeps the read rate) and
    store its result. False when time ran short and some were left for a continuation."""
    if not pairs:
        return True
    stop = threading.Event()  # set when a run was skipped: for lack of time, or after an error
    errors: list[Exception] = []

    def fetch(pair: tuple[TrackedFile, RunSummary]) -> None:
        if stop.is_set():
            return
        if time_left() < TIME_RESERVE_SECONDS:
            stop.set()
            return
        tracked, summary = pair
        try:
            try:
                run = rt.extend.get_run(submission.processor_type, summary.id)
            except ExtendRejectedError as exc:
                if exc.status_code != 404:
                    raise
                settle_failure(rt, submission, tracked, summary.id, "RUN_NOT_FOUND", str(exc), outcome)
                return
            if run.status == processor_type(submission.processor_type).succeeded_status:
                store_result(rt, submission, tracked, run, outcome)
            else:
                settle_failed_run(rt, submission, tracked, run, outcome)
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the other threads stop
            errors.append(exc)
            stop.set()

    workers = min(rt.settings.results_concurrency, len(pairs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
        list(pool.map(fetch, pairs))
    if errors:
        raise errors[0]
    return not stop.is_set()


# -- finishing --------------------------------------------------------------------------------------


def finish_submission(
    rt: Runtime,
    submission: Submission,
    batch_status: str,
    file_ids: set[str],
    runs_by_file: dict[str, RunSummary],
) -> float:
    """Manifest, final state, counts and the credits Extend reported for the batch's runs, then the one
    announcement; returns those credits."""
    sid = submission.submission_id
    files = rt.files.batch_get_ids(file_ids)
    lines: list[dict[str, Any]] = []
    failed: list[TrackedFile] = []
    counts: Counter[str] = Counter()
    for fid in sorted(file_ids):
        tracked = files.get(fid)
        run = runs_by_file.get(fid)
        if tracked is None:
            continue
        ours = tracked.submission_id == sid
        if ours and tracked.status not in FileStatus.TERMINAL:
            raise RetryLater(f"file {fid} of submission {sid} is still {tracked.status}")
        status = tracked.status if ours else REQUEUED
        counts[status] += 1
        if status == FileStatus.FAILED:
            failed.append(tracked)
        lines.append(
            {
                "fileId": fid,
                "key": tracked.key,
                "versionId": tracked.version_id,
                "status": status,
                "runId": run.id if run else None,
                "resultKey": tracked.result_key if status == FileStatus.PROCESSED else None,
                "failureReason": tracked.failure_reason if ours else (run.failure_reason if run else None),
            }
        )
    key = manifest_key(submission)
    rt.client("s3").put_object(
        Bucket=rt.resources.require("results_bucket"),
        Key=key,
        Body="".join(json.dumps(line) + "\n" for line in lines).encode("utf-8"),
        ContentType="application/x-ndjson",
    )
    charged = [run.credits for run in runs_by_file.values() if run.credits is not None]
    credits = round(sum(charged), 6) if charged else None  # None: Extend reported none (legacy billing)
    state = BatchState.FAILED if batch_status == BatchStatus.FAILED else BatchState.COMPLETED
    moved = rt.batches.transition(
        sid,
        BatchState.OPEN,
        state,
        completedAt=now_iso(),
        extendStatus=batch_status,
        processedCount=counts[FileStatus.PROCESSED],
        failedCount=counts[FileStatus.FAILED],
        requeuedCount=counts[REQUEUED],
        manifestKey=key,
        credits=credits,
    )
    logger.info("batch collected", extra={"submissionId": sid, "batchId": submission.batch_id, **counts})
    admission.release(rt, sid)  # its room at Extend goes to the next route at once
    announce(rt, sid, failed)
    return (credits or 0.0) if moved else 0.0  # counted once, by the request that finished it


def announce(rt: Runtime, submission_id: str, failed: list[TrackedFile] | None = None) -> bool:
    """Publish a finished submission's outcome exactly once; True when this call published it."""
    submission = rt.batches.get(submission_id)
    if submission is None or submission.state not in (BatchState.COMPLETED, BatchState.FAILED):
        return False
    if submission.notified_at:
        return False
    claimed_at = rt.batches.claim_notification(submission_id)
    if claimed_at is None:
        return False
    if failed is None:
        failed = [f for f in rt.files.of_submission(submission_id) if f.status == FileStatus.FAILED]
    try:
        rt.notify(notifications.batch_outcome(submission, failed, rt.resources.require("results_bucket")))
    except Exception:
        rt.batches.release_notification(submission_id, claimed_at)
        raise
    return True
