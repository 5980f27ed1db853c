"""One file's run, recorded: its result object (at a key derived from the source key) and summary, or its
failure by the retry policy (retryable reasons and expired presigned URLs go round again), and the
per-file notification. ``collect`` calls these for every run of a finished batch."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop_core import notifications, timeutil
from batchdrop_core.extend.processors import processor_type
from batchdrop_core.observability import logger
from batchdrop_core.redact import redact, redact_optional
from batchdrop_core.runtime import Runtime
from batchdrop_core.timeutil import now_iso, parse_iso
from batchdrop_core.tracking import FileStatus, Submission, TrackedFile

if TYPE_CHECKING:  # the API models (pydantic) load with the Extend client, when the first run is read
    from batchdrop_core.extend import Run, RunSummary


# A file Extend made no run for was never tried: it goes round again whatever the configured reasons.
MISSING_RUN = "MISSING_RUN"
MAX_S3_KEY_BYTES = 1024
LONG_KEYS_FOLDER = "_long-keys"  # results of source keys too long to nest under results/


@dataclass
class CollectOutcome:
    # completed | continued | already_done | busy | deferred | not_ours | late_duplicate
    result: str = ""
    submission_id: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    credits: float = 0.0  # Extend credits of the batches this request finished
    requeued_routes: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[name] += amount

    def requeued(self, route: str) -> None:
        with self._lock:
            self.counts["requeued"] += 1
            self.requeued_routes.add(route)


def result_key(tracked: TrackedFile) -> str:
    """Where a file's result lives: derived from the source key alone, so users can find it.

    S3 keys stop at 1,024 bytes, so a source key near that limit cannot be nested under ``results/``;
    its result goes under a digest of the key instead (the Files item's resultKey says where)."""
    key = f"results/{tracked.key}/{tracked.version_id}.json"
    if len(key.encode("utf-8")) <= MAX_S3_KEY_BYTES:
        return key
    digest = hashlib.sha256(tracked.key.encode("utf-8")).hexdigest()
    return f"results/{LONG_KEYS_FOLDER}/{digest}/{tracked.version_id}.json"


def manifest_key(submission: Submission) -> str:
    return f"manifests/{submission.route}/{submission.submission_id}.jsonl"


def summarize(processor_type_name: str, run: Run) -> dict[str, Any] | None:
    """The small result summary kept on the Files item (the processor-type table says what it holds)."""
    info = processor_type(processor_type_name)
    # Only a type whose summary reads the whole run (workflow steps) pays for dumping it.
    data = run.model_dump(mode="json", by_alias=True) if info.summarize_whole_run else {"output": run.output}
    return info.summarize(data)


def store_result(
    rt: Runtime, submission: Submission, tracked: TrackedFile, run: Run, outcome: CollectOutcome
) -> None:
    """Write the run (as Extend returned it, plus our tracking fields), then mark the file PROCESSED."""
    key = result_key(tracked)
    document = run.model_dump(mode="json", by_alias=True, exclude_unset=True)
    document["batchdrop"] = {
        "fileId": tracked.file_id,
        "bucket": tracked.bucket,
        "key": tracked.key,
        "versionId": tracked.version_id,
        "route": tracked.route,
        "submissionId": submission.submission_id,
        "batchId": submission.batch_id,
        "attempt": tracked.attempts,
        "collectedAt": now_iso(),
    }
    try:
        # Written at most once: a try that stopped after this put and before the Files update below
        # (a crash, a timeout) must not leave a second version of the result behind (I4).
        rt.client("s3").put_object(
            Bucket=rt.resources.require("results_bucket"),
            Key=key,
            Body=json.dumps(document).encode("utf-8"),
            ContentType="application/json",
            IfNoneMatch="*",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("PreconditionFailed", "412"):
            raise
        # Only PROCESSED runs are written, and a file is PROCESSED once: the object there is this run's
        # result, stored by the earlier try. Record it.
        logger.info("result already stored by an earlier try", extra={"fileId": tracked.file_id})
    summary = summarize(submission.processor_type, run)
    recorded = rt.files.record_outcome(
        tracked,
        submission.submission_id,
        status=FileStatus.PROCESSED,
        run_id=run.id,
        batch_id=submission.batch_id,
        result_key=key,
        result_summary=summary,
    )
    if recorded:
        outcome.add("processed")
        notify_file(rt, submission, tracked, FileStatus.PROCESSED, run.id, result_key=key, summary=summary)


def settle_failed_run(
    rt: Runtime,
    submission: Submission,
    tracked: TrackedFile,
    run: RunSummary,
    outcome: CollectOutcome,
) -> None:
    """A run Extend ended without a result (FAILED, CANCELLED, or REJECTED by a reviewer): its reason (or
    its status) and message, by the retry policy."""
    reason = run.failure_reason or run.status
    message = run.failure_message
    note = (run.model_extra or {}).get("rejectionNote")
    if message is None and isinstance(note, str):
        message = f"rejected in review: {note}"
    settle_failure(rt, submission, tracked, run.id, reason, message, outcome, failed_at=run.updated_at)


def settle_failure(
    rt: Runtime,
    submission: Submission,
    tracked: TrackedFile,
    run_id: str | None,
    reason: str,
    message: str | None,
    outcome: CollectOutcome,
    *,
    failed_at: str | None = None,
) -> None:
    """The retry policy. A file Extend could not download because its presigned URL had expired goes
    round again with a fresh URL without using an attempt (the expiry was ours, not the file's); a
    retryable reason goes round again until ``maxAttempts``; anything else, including a download that
    failed with a valid URL, is FAILED with Extend's reason and message."""
    settings = rt.settings
    sid = submission.submission_id
    expired = url_had_expired(submission, reason, failed_at, message)  # on Extend's whole text
    message = redact_optional(message)  # Extend's text, stored and published below
    if expired:
        expiries = sum(1 for h in tracked.history if h.get("reason") == URL_EXPIRED)
        if expiries < MAX_URL_EXPIRIES:
            note = f"the presigned URL had expired when Extend fetched the file ({reason}: {message})"
            if rt.files.requeue(tracked, sid, URL_EXPIRED, redact(note), run_id=run_id, spent_attempt=False):
                outcome.requeued(tracked.route or submission.route)
                outcome.add("url_expired")
            return
        reason, message = (
            URL_EXPIRED,
            f"the presigned URL expired {expiries + 1} times before Extend fetched it",
        )
    retryable = (
        reason in settings.retryable_failure_reasons
        or reason in processor_type(submission.processor_type).retryable_reasons
        or reason == MISSING_RUN
    )
    if retryable and tracked.attempts < settings.max_attempts:
        if rt.files.requeue(tracked, sid, reason, message, run_id=run_id):
            outcome.requeued(tracked.route or submission.route)
        return
    recorded = rt.files.record_outcome(
        tracked,
        sid,
        status=FileStatus.FAILED,
        run_id=run_id,
        batch_id=submission.batch_id,
        failure_reason=reason,
        failure_message=message,
    )
    if recorded:
        outcome.add("failed")
        notify_file(rt, submission, tracked, FileStatus.FAILED, run_id, reason=reason, message=message)


URL_EXPIRED = "URL_EXPIRED"  # our reason: the URL we handed Extend had expired when it fetched the file
# A file whose URLs keep expiring is FAILED URL_EXPIRED after this many free rounds (the bound on files at
# Extend is meant to prevent it: repeated expiries say the bound is set too high for the plan).
MAX_URL_EXPIRIES = 3
# What a download refused for its URL looks like in Extend's message (S3: 403 "Request has expired",
# AccessDenied, ExpiredToken).
EXPIRED_URL_MESSAGE = re.compile(r"expired|\b403\b|access ?denied|forbidden", re.IGNORECASE)


def url_had_expired(
    submission: Submission, reason: str, failed_at: str | None, message: str | None = None
) -> bool:
    """Whether a download failure was the URL's fault: it happened after the submission's presigned URLs
    expired (run times are Extend's, URL expiry ours: a clock skew of seconds only matters for a run that
    failed at the edge), or Extend says the download was refused as expired or forbidden. A URL can die
    before ``urlExpiresAt``: one presigned with temporary credentials (a Lambda role's) ends when they
    do, and S3 then answers 403 to a URL whose signature is otherwise good."""
    if reason not in processor_type(submission.processor_type).download_failures:
        return False
    if message and EXPIRED_URL_MESSAGE.search(message):
        return True
    if not submission.url_expires_at:
        return False
    when = parse_iso(failed_at) if failed_at else timeutil.utc_now()
    return when >= parse_iso(submission.url_expires_at)


def notify_file(
    rt: Runtime,
    submission: Submission,
    tracked: TrackedFile,
    status: str,
    run_id: str | None,
    **details: Any,
) -> None:
    """Per-file notification (``notifications.file_outcome``; ``details``: result key and summary, or the
    failure's reason and message), when switched on. Best effort: the file is recorded whatever happens."""
    if not rt.settings.per_file_notifications:
        return
    notification = notifications.file_outcome(submission, tracked, status, run_id, **details)
    try:
        rt.notify(notification)
    except (BotoCoreError, ClientError):
        logger.exception("per-file notification failed", extra={"fileId": tracked.file_id})
