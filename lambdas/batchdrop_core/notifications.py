"""Every message batchdrop publishes to its SNS topic, in one place (the formats are in the README).

Each function returns a ``Notification``: a subject (SNS cuts it to 100 characters), a JSON body whose
``eventType`` says what happened, and message attributes that subscriptions can filter on (``eventType``,
``route``, ``processorType``, ``status``). Extend's text in a body goes through ``redact`` first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchdrop_core.redact import redact_optional
from batchdrop_core.tracking import BatchState

if TYPE_CHECKING:
    from batchdrop_core.runconfig import RunRoute
    from batchdrop_core.tracking import Submission, TrackedFile

# SNS messages are limited to 256 KB; the manifest lists every file.
MAX_FAILED_FILES_IN_MESSAGE = 50
BLOCKED_ROUTE_WAIT = (
    " Files stay QUEUED; batchdrop checks the route at growing intervals (1 to 30 minutes)"
    " and sends them once Extend accepts it again."
)


@dataclass(frozen=True)
class Notification:
    subject: str
    message: dict[str, Any]
    attributes: dict[str, str]


def batch_outcome(submission: Submission, failed: list[TrackedFile], results_bucket: str) -> Notification:
    """A submission finished (``batch.completed`` / ``batch.failed``): counts, manifest, failed files."""
    event_type = "batch.failed" if submission.state == BatchState.FAILED else "batch.completed"
    manifest = submission.manifest_key
    message = {
        "eventType": event_type,
        "submissionId": submission.submission_id,
        "batchId": submission.batch_id,
        "route": submission.route,
        "processorType": submission.processor_type,
        "processorId": submission.processor_id,
        "status": submission.state,
        "extendStatus": submission.extend_status,
        "fileCount": submission.file_count,
        "processedCount": submission.processed_count,
        "failedCount": submission.failed_count,
        "requeuedCount": submission.requeued_count,
        "credits": submission.credits,
        "manifest": f"s3://{results_bucket}/{manifest}" if manifest else None,
        "failedFiles": [
            {
                "key": f.key,
                "versionId": f.version_id,
                "failureReason": f.failure_reason,
                "failureMessage": redact_optional(f.failure_message),  # items stored before redaction
            }
            for f in failed[:MAX_FAILED_FILES_IN_MESSAGE]
        ],
        "failedFilesTruncated": len(failed) > MAX_FAILED_FILES_IN_MESSAGE,
        "completedAt": submission.completed_at,
    }
    subject = (
        f"batchdrop: batch {submission.state.lower()} on route {submission.route} "
        f"({submission.processed_count} processed, {submission.failed_count} failed)"
    )
    return Notification(subject, message, _attributes(event_type, submission, submission.state))


def file_outcome(
    submission: Submission,
    tracked: TrackedFile,
    status: str,
    run_id: str | None,
    *,
    result_key: str | None = None,
    summary: dict[str, Any] | None = None,
    reason: str | None = None,
    message: str | None = None,
) -> Notification:
    """One file's outcome (``file.processed`` / ``file.failed`` / ``file.queued``), when switched on."""
    event_type = f"file.{status.lower()}"
    body = {
        "eventType": event_type,
        "fileId": tracked.file_id,
        "bucket": tracked.bucket,
        "key": tracked.key,
        "versionId": tracked.version_id,
        "route": submission.route,
        "submissionId": submission.submission_id,
        "batchId": submission.batch_id,
        "runId": run_id,
        "status": status,
        "attempt": tracked.attempts,
        "resultKey": result_key,
        "resultSummary": summary,
        "failureReason": reason,
        "failureMessage": redact_optional(message),
    }
    subject = f"batchdrop: {tracked.key} {status.lower()}"
    return Notification(subject, body, _attributes(event_type, submission, status))


def batch_duplicate(submission: Submission, runs: int) -> Notification:
    """An abandoned submission's batch turned up at Extend after all: a duplicate submission."""
    message = {
        "eventType": "batch.duplicate",
        "route": submission.route,
        "submissionId": submission.submission_id,
        "batchId": submission.batch_id,
        "runs": runs,
        "whatToDo": "Extend processed these files twice (credits spent twice); each file's result "
        "is recorded once. Frequent duplicates mean POST responses are being lost.",
    }
    subject = f"batchdrop: duplicate batch on route {submission.route}"
    return Notification(subject, message, _attributes("batch.duplicate", submission))


def route_blocked(route: RunRoute, reason: str, status: int | None, message: str) -> Notification:
    """Extend refused the route itself (key, processor, credits): its files wait."""
    hint = (
        "Check the Extend API key in Secrets Manager (and the workspace id)."
        if reason == "EXTEND_AUTH"
        else "Check the route's processor id, version and overrideConfig."
    )
    body = {
        "eventType": "route.blocked",
        "route": route.name,
        "reason": reason,
        "status": status,
        "message": redact_optional(message),
        "whatToDo": hint + BLOCKED_ROUTE_WAIT,
    }
    attributes = {
        "eventType": "route.blocked",
        "route": route.name,
        "processorType": route.type,
        "status": reason,
    }
    return Notification(f"batchdrop: route {route.name} is blocked", body, attributes)


def route_resumed(route: RunRoute) -> Notification:
    attributes = {"eventType": "route.resumed", "route": route.name, "processorType": route.type}
    body = {"eventType": "route.resumed", "route": route.name}
    return Notification(f"batchdrop: route {route.name} resumed", body, attributes)


def files_stuck(
    sla_minutes: int, stuck_files: int, overdue_batches: int, by_route: dict[str, dict[str, Any]]
) -> Notification:
    """Files not finished within the SLA: one alert per reconciler run, whatever their number."""
    routes = sorted(by_route)
    message = {
        "eventType": "files.stuck",
        "slaMinutes": sla_minutes,
        "stuckFiles": stuck_files,
        "overdueBatches": overdue_batches,
        "routes": by_route,
        "whatToDo": (
            "QUEUED files: check whether the route is blocked (batchdrop status) and the submitter's DLQ. "
            "Submitted batches: check the batch at Extend (batchdrop batch ID) and the results DLQ."
        ),
    }
    attributes = {
        "eventType": "files.stuck",
        "status": "STUCK",
        "route": routes[0] if len(routes) == 1 else "",
    }
    subject = f"batchdrop: {stuck_files} files not finished after {sla_minutes} minutes"
    return Notification(subject, message, attributes)


def reviews_overdue(sla_minutes: int, overdue: int, by_route: dict[str, dict[str, Any]]) -> Notification:
    """Workflow runs waiting on a person's review past the review SLA: one alert per reconciler run."""
    routes = sorted(by_route)
    message = {
        "eventType": "files.review_overdue",
        "reviewSlaMinutes": sla_minutes,
        "overdueReviews": overdue,
        "routes": by_route,
        "whatToDo": (
            "These runs wait for a person in Extend's dashboard (review queue of the route's workflow); "
            "`batchdrop status` shows how many and since when. They are not failed: once reviewed, each is "
            "recorded PROCESSED, or FAILED with reason REJECTED."
        ),
    }
    attributes = {
        "eventType": "files.review_overdue",
        "status": "IN_REVIEW",
        "route": routes[0] if len(routes) == 1 else "",
    }
    subject = f"batchdrop: {overdue} files waiting on review for more than {sla_minutes} minutes"
    return Notification(subject, message, attributes)


def _attributes(event_type: str, submission: Submission, status: str | None = None) -> dict[str, str]:
    attributes = {
        "eventType": event_type,
        "route": submission.route,
        "processorType": submission.processor_type,
    }
    if status:
        attributes["status"] = status
    return attributes
