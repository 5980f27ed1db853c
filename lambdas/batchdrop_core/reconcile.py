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


def reconcile(rt: Runtime, now: datetime | None = None) -> ReconcileOutcome:
    outcome = ReconcileOutcome()
    now = now or timeutil.utc_now()  # through the module, so tests can move the clock
    outcome.reservations_released = admission.audit(rt)
    settings = rt.settings
    grace_cutoff = timeutil.iso(now - timedelta(minutes=settings.webhook_grace_minutes))
    sla_cutoff = timeutil.iso(now - timedelta(minutes=settings.file_sla_minutes))
    for route in settings.routes:
        overdue: list[Submission] = []
        # Only submissions past at least one of the two limits matter here.
        past_a_limit = max(grace_cutoff, sla_cutoff)
        for submission in rt.batches.open_submissions(route.name, created_before=past_a_limit):
            if submission.state == BatchState.SUBMITTED and submission.created_at < grace_cutoff:
                poll_submission(rt, submission, outcome)
            if submission.created_at < sla_cutoff:
                overdue.append(submission)
        queued = rt.files.count_queued_before(route.name, sla_cutoff)
        if queued or overdue:
            outcome.stuck_files += queued + sum(s.file_count for s in overdue)
            outcome.overdue_batches += len(overdue)
            outcome.stuck_by_route[route.name] = {
                "queuedOverSla": queued,
                "overdueSubmissions": [_describe(s) for s in overdue[:MAX_OVERDUE_LISTED]],
                "overdueSubmissionCount": len(overdue),
            }
    if outcome.stuck_files:
        alert_stuck_files(rt, outcome)
    return outcome


def poll_submission(rt: Runtime, submission: Submission, outcome: ReconcileOutcome) -> None:
    """Ask for collection when Extend says the submission's batch is over."""
    sid = submission.submission_id
    outcome.polled += 1
    try:
        # Adopted without a batch id, its runs (found by their metadata) tell whether it is over.
        if lookup.status_if_over(rt, submission) is None:
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
        "finished batch without a webhook; collection requested",
        extra={"submissionId": sid, "batchId": submission.batch_id},
    )


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
