"""Reconciliation (scheduled): batches whose webhook never came are polled and, once finished, handed to
the results worker; files that stay non-terminal longer than the SLA raise an operator alert.

It changes no tracking state itself: a finished batch gets a collection request, which the results
worker settles exactly as it settles a webhook's (design §3, I4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batchdrop_core import admission, lookup, notifications, timeutil
from batchdrop_core.extend import ExtendError
from batchdrop_core.extend.processors import processor_type
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.observability import logger
from batchdrop_core.runtime import Runtime
from batchdrop_core.tracking import BatchState, Submission

MAX_OVERDUE_LISTED = 20  # per route, in the alert; the counts cover the rest


@dataclass
class ReconcileOutcome:
    polled: int = 0
    collection_requested: list[str] = field(default_factory=list)  # submission ids
    stuck_files: int = 0
    overdue_batches: int = 0
    stuck_by_route: dict[str, dict[str, Any]] = field(default_factory=dict)
    alerted: bool = False
    reservations_released: list[str] = field(default_factory=list)
    # Workflow runs waiting on a person's review: not stuck, but past reviewSlaMinutes they are alerted.
    in_review: int = 0
    review_overdue: int = 0
    review_overdue_by_route: dict[str, dict[str, Any]] = field(default_factory=dict)


def reconcile(rt: Runtime, now: datetime | None = None) -> ReconcileOutcome:
    outcome = ReconcileOutcome()
    now = now or timeutil.utc_now()  # through the module, so tests can move the clock
    outcome.reservations_released = admission.audit(rt)
    settings = rt.settings
    grace_cutoff = timeutil.iso(now - timedelta(minutes=settings.webhook_grace_minutes))
    sla_cutoff = timeutil.iso(now - timedelta(minutes=settings.file_sla_minutes))
    review_cutoff = timeutil.iso(now - timedelta(minutes=settings.review_sla_minutes))
    # A route removed (`batchdrop routes apply`) while its batches are at Extend: they are still polled.
    for name in [r.name for r in settings.routes] + list(rt.retired_routes()):
        overdue: list[Submission] = []
        at_work_overdue = 0
        reviews = ReviewWaits()
        # Only submissions past at least one of the two limits matter here.
        past_a_limit = max(grace_cutoff, sla_cutoff)
        for submission in rt.batches.open_submissions(name, created_before=past_a_limit):
            if submission.state == BatchState.SUBMITTED and submission.created_at < grace_cutoff:
                poll_submission(rt, submission, outcome, reviews)
            if submission.created_at < sla_cutoff:
                overdue.append(submission)
                # Runs reporting one by one: those settled or waiting on review are not stuck.
                at_work_overdue += submission.file_count - min(
                    submission.runs_out_of_processing, submission.file_count
                )
        queued = rt.files.count_queued_before(name, sla_cutoff)
        if queued or at_work_overdue:
            outcome.stuck_files += queued + at_work_overdue
            outcome.overdue_batches += len(overdue)
            outcome.stuck_by_route[name] = {
                "queuedOverSla": queued,
                "overdueSubmissions": [_describe(s) for s in overdue[:MAX_OVERDUE_LISTED]],
                "overdueSubmissionCount": len(overdue),
            }
        outcome.in_review += reviews.count
        late = [since for since in reviews.since if since < review_cutoff]
        if late:
            outcome.review_overdue += len(late)
            outcome.review_overdue_by_route[name] = {
                "overdueReviews": len(late),
                "oldestSince": min(late),
            }
    if outcome.stuck_files:
        alert_stuck_files(rt, outcome)
    if outcome.review_overdue:
        rt.notify(
            notifications.reviews_overdue(
                settings.review_sla_minutes, outcome.review_overdue, outcome.review_overdue_by_route
            )
        )
        logger.warning(
            "reviews waiting beyond the review SLA", extra={"overdueReviews": outcome.review_overdue}
        )
    return outcome


@dataclass
class ReviewWaits:
    """Runs of a route waiting on review at Extend, and since when (their last change)."""

    since: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.since)


def poll_submission(
    rt: Runtime, submission: Submission, outcome: ReconcileOutcome, reviews: ReviewWaits | None = None
) -> None:
    """Ask for collection when Extend says the submission's batch is over; for a batch whose runs report
    one by one, when Extend's list shows runs settled or in review that the counters have not seen (their
    events were lost)."""
    sid = submission.submission_id
    outcome.polled += 1
    try:
        if processor_type(submission.processor_type).reports_per_run and submission.batch_id:
            if not _runs_unseen(rt, submission, reviews if reviews is not None else ReviewWaits()):
                return
        # Adopted without a batch id, its runs (found by their metadata) tell whether it is over.
        elif lookup.status_if_over(rt, submission) is None:
            return
        request = CollectionRequest(submission.batch_id, sid, source="reconciler")
    except ExtendError as exc:
        logger.warning(
            "could not poll a batch; the next run tries again", extra={"submissionId": sid, "error": str(exc)}
        )
        return
    rt.request_collection(request)
    outcome.collection_requested.append(sid)
    logger.info(
        "finished runs without their webhook; collection requested",
        extra={"submissionId": sid, "batchId": submission.batch_id},
    )


def _runs_unseen(rt: Runtime, submission: Submission, reviews: ReviewWaits) -> bool:
    """List the batch's runs (one read per 1,000): note the reviews, and whether any settled or reviewed
    run is missing from the counters."""
    info = processor_type(submission.processor_type)
    runs = lookup.runs_of_batch(rt, submission.processor_type, submission.batch_id or "")
    settled = sum(1 for r in runs if r.status in info.terminal_statuses)
    waiting = [str(r.updated_at or r.created_at or "") for r in runs if r.status in info.review_statuses]
    reviews.since.extend(waiting)
    return settled > submission.runs_settled or settled + len(waiting) > submission.runs_out_of_processing


def _describe(submission: Submission) -> dict[str, Any]:
    return {
        "submissionId": submission.submission_id,
        "batchId": submission.batch_id,
        "state": submission.state,
        "createdAt": submission.created_at,
        "fileCount": submission.file_count,
    }


def alert_stuck_files(rt: Runtime, outcome: ReconcileOutcome) -> None:
    """One operator alert per reconciler run, whatever the number of stuck files."""
    sla = rt.settings.file_sla_minutes
    routes = sorted(outcome.stuck_by_route)
    rt.notify(
        notifications.files_stuck(sla, outcome.stuck_files, outcome.overdue_batches, outcome.stuck_by_route)
    )
    outcome.alerted = True
    logger.warning("files stuck beyond the SLA", extra={"stuckFiles": outcome.stuck_files, "routes": routes})
