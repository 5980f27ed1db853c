"""Results collection rules that need no AWS: summaries, result keys, the retry policy, the message."""

from __future__ import annotations

from typing import Any

import pytest

from batchdrop_core.config import Resources, Settings
from batchdrop_core.notifications import MAX_FAILED_FILES_IN_MESSAGE, batch_outcome
from batchdrop_core.outcomes import CollectOutcome, result_key, settle_failure, summarize
from batchdrop_core.redact import MAX_MESSAGE_CHARS
from batchdrop_core.tracking import BatchState, FileStatus, Submission, TrackedFile

ROUTE = {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_abc"}


def tracked(attempts: int = 1, key: str = "invoices/a.pdf") -> TrackedFile:
    return TrackedFile(
        bucket="drop",
        key=key,
        version_id="v1",
        status=FileStatus.SUBMITTED,
        route="invoices",
        attempts=attempts,
    )


def submission(**overrides: Any) -> Submission:
    values: dict[str, Any] = {
        "submission_id": "sub_1",
        "route": "invoices",
        "processor_type": "extract",
        "processor_id": "ex_abc",
        "state": BatchState.SUBMITTED,
        "created_at": "2026-11-28T10:00:00.000000Z",
        "batch_id": "bpr_1",
    }
    return Submission(**{**values, **overrides})


class FakeFiles:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def requeue(
        self,
        tracked: TrackedFile,
        submission_id: str,
        reason: str,
        message: str | None,
        run_id: str | None,
        spent_attempt: bool = True,
    ) -> bool:
        self.calls.append(("requeue", {"reason": reason, "runId": run_id, "spentAttempt": spent_attempt}))
        return True

    def record_outcome(self, tracked: TrackedFile, submission_id: str, **fields: Any) -> bool:
        self.calls.append(("record", fields))
        return True


class FakeRuntime:
    def __init__(self, **settings: Any) -> None:
        self.settings = Settings.parse({"routes": [ROUTE], **settings}, "test")
        self.resources = Resources(results_bucket="results")
        self.files = FakeFiles()


@pytest.mark.parametrize(
    ("processor_type", "output", "summary"),
    [
        (
            "classify",
            {"id": "invoice", "type": "INVOICE", "confidence": 0.94},
            {"type": "INVOICE", "confidence": 0.94},
        ),
        ("split", {"splits": [{"id": "s1"}, {"id": "s2"}]}, {"splitCount": 2}),
        ("extract", {"value": {"a": 1, "b": None}, "metadata": {}}, {"fieldCount": 2}),
        ("extract", {"invoice_number": {"value": "1"}, "total": {"value": 2}}, {"fieldCount": 2}),  # legacy
        ("extract", None, None),
        (
            "parse",
            {"chunks": [{"type": "page"}, {"type": "page"}], "metadata": {"pages": [{}, {}, {}]}},
            {"chunkCount": 2, "pageCount": 3},
        ),
        ("parse", {"chunks": "odd"}, {"chunkCount": 0, "pageCount": None}),
    ],
)
def test_summaries_are_small_and_tolerant(processor_type: str, output: Any, summary: Any) -> None:
    from batchdrop_core.extend import Run

    assert summarize(processor_type, Run(id="r1", status="PROCESSED", output=output)) == summary


def test_workflow_summaries_read_the_whole_run() -> None:
    from batchdrop_core.extend import Run

    run = Run.model_validate(
        {
            "id": "workflow_run_1",
            "status": "PROCESSED",
            "reviewed": True,
            "stepRuns": [{"id": "s"}, {"id": "t"}],
        }
    )
    assert summarize("workflow", run) == {"stepCount": 2, "reviewed": True}


def test_result_keys_derive_from_the_source_key_alone() -> None:
    assert (
        result_key(tracked(key="invoices/ACME #1042+final.pdf"))
        == "results/invoices/ACME #1042+final.pdf/v1.json"
    )


@pytest.mark.parametrize(
    ("reason", "attempts", "expected"),
    [
        ("INTERNAL_ERROR", 1, "requeue"),
        ("FAILED_TO_PROCESS_FILE", 1, "record"),  # Extend could not read the file with a valid URL
        ("INTERNAL_ERROR", 3, "record"),  # maxAttempts reached
        ("INVALID_CONFIGURATION", 1, "record"),
        ("SOMETHING_NEW", 1, "record"),
        ("MISSING_RUN", 2, "requeue"),  # never tried by Extend, whatever the configured reasons
        ("MISSING_RUN", 3, "record"),
    ],
)
def test_the_retry_policy(reason: str, attempts: int, expected: str) -> None:
    rt = FakeRuntime(maxAttempts=3)
    outcome = CollectOutcome()

    settle_failure(rt, submission(), tracked(attempts), "exr_1", reason, "why", outcome)

    ((call, fields),) = rt.files.calls
    assert call == expected
    if expected == "record":
        assert fields["status"] == FileStatus.FAILED and fields["failure_reason"] == reason
        assert outcome.counts["failed"] == 1
    else:
        assert outcome.requeued_routes == {"invoices"} and outcome.counts["requeued"] == 1


@pytest.mark.parametrize(
    ("reason", "failed_at", "expiries", "expected"),
    [
        # Extend fetched the file after its URL expired: ours, not the file's: a fresh URL, no attempt used
        ("FAILED_TO_PROCESS_FILE", "2026-11-28T11:00:01Z", 0, ("requeue", "URL_EXPIRED", False)),
        ("FAILED_TO_PROCESS_FILE", "2026-11-28T11:30:00Z", 2, ("requeue", "URL_EXPIRED", False)),
        # Each type says which reasons mean "could not fetch the file": parse's is not extract's
        ("UNABLE_TO_DOWNLOAD_FILE", "2026-11-28T11:30:00Z", 0, ("record", "UNABLE_TO_DOWNLOAD_FILE", None)),
        # ... but not without end: the bound on files at Extend should have prevented it
        ("FAILED_TO_PROCESS_FILE", "2026-11-28T11:30:00Z", 3, ("record", "URL_EXPIRED", None)),
        # A download that failed while the URL was valid: Extend's reason, not retried
        ("FAILED_TO_PROCESS_FILE", "2026-11-28T10:59:59Z", 0, ("record", "FAILED_TO_PROCESS_FILE", None)),
        # Not a download failure: the usual policy, whenever it happened
        ("INTERNAL_ERROR", "2026-11-28T11:30:00Z", 0, ("requeue", "INTERNAL_ERROR", True)),
    ],
)
def test_an_expired_url_is_ours_and_uses_no_attempt(
    reason: str, failed_at: str, expiries: int, expected: tuple[str, str, bool | None]
) -> None:
    # Given a submission whose presigned URLs expired at 11:00, and a file on its last attempt
    rt = FakeRuntime(maxAttempts=3)
    outcome = CollectOutcome()
    file = tracked(attempts=2)
    file.history = [{"status": "QUEUED", "reason": "URL_EXPIRED"}] * expiries
    batch = submission(url_expires_at="2026-11-28T11:00:00Z")

    # When Extend reports the run failed
    settle_failure(rt, batch, file, "exr_1", reason, "Could not download file", outcome, failed_at=failed_at)

    # Then
    ((call, fields),) = rt.files.calls
    kind, recorded_reason, spent = expected
    assert call == kind
    if kind == "requeue":
        assert (fields["reason"], fields["spentAttempt"]) == (recorded_reason, spent)
    else:
        assert fields["failure_reason"] == recorded_reason and fields["failure_message"]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # S3 refused a URL that died before urlExpiresAt (signed with temporary credentials that ended)
        ("Could not download file: HTTP 403 (the presigned URL has expired)", "requeue"),
        ("Failed to fetch file: AccessDenied", "requeue"),
        ("Download failed: Request has expired", "requeue"),
        # A valid URL and a file Extend could not read: Extend's reason, not retried
        ("Could not download file: HTTP 404", "record"),
        ("Could not download file: connection reset", "record"),
    ],
)
def test_a_download_refused_as_expired_is_ours_even_before_urlExpiresAt(message: str, expected: str) -> None:
    rt = FakeRuntime(maxAttempts=3)
    outcome = CollectOutcome()
    batch = submission(url_expires_at="2026-11-28T11:00:00Z")

    settle_failure(
        rt,
        batch,
        tracked(attempts=1),
        "exr_1",
        "FAILED_TO_PROCESS_FILE",
        message,
        outcome,
        failed_at="2026-11-28T10:05:00Z",
    )

    ((call, fields),) = rt.files.calls
    assert call == expected
    if expected == "requeue":
        assert (fields["reason"], fields["spentAttempt"]) == ("URL_EXPIRED", False)
    else:
        assert fields["failure_reason"] == "FAILED_TO_PROCESS_FILE"


def test_the_batch_message_names_its_outcome_in_attributes_and_caps_failed_files() -> None:
    rt = FakeRuntime()
    done = submission(
        state=BatchState.FAILED,
        extend_status="FAILED",
        file_count=60,
        failed_count=60,
        manifest_key="manifests/x",
    )
    failed = [tracked(key=f"invoices/{i}.pdf") for i in range(60)]

    notification = batch_outcome(done, failed, rt.resources.require("results_bucket"))
    subject, message, attributes = notification.subject, notification.message, notification.attributes

    assert attributes == {
        "eventType": "batch.failed",
        "route": "invoices",
        "processorType": "extract",
        "status": "FAILED",
    }
    assert message["eventType"] == "batch.failed" and message["manifest"] == "s3://results/manifests/x"
    assert len(message["failedFiles"]) == MAX_FAILED_FILES_IN_MESSAGE and message["failedFilesTruncated"]
    assert len(subject) <= 100


ECHOED_URL = (
    "https://drop.s3.amazonaws.com/invoices/a.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIATESTNOTAREALKEY00%2F20261128%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Security-Token=test-not-a-real-token&X-Amz-Signature=" + "ab" * 32
)


def test_extends_failure_message_is_stored_and_published_redacted_and_bounded() -> None:
    # Given a run that failed with a long message echoing the file's presigned URL, per-file notices on
    rt = FakeRuntime(maxAttempts=1, perFileNotifications=True)
    published: list[dict[str, Any]] = []
    rt.notify = lambda notification: published.append(notification.message)  # type: ignore[attr-defined]
    message = f"Could not process {ECHOED_URL}: " + "the document is unreadable. " * 200

    # When collection settles it, and the batch's message lists it
    settle_failure(rt, submission(), tracked(), "exr_1", "FAILED_TO_PROCESS_FILE", message, CollectOutcome())
    stored = tracked()
    stored.failure_message = message  # an item written before redaction existed
    batch_body = batch_outcome(submission(state=BatchState.FAILED), [stored], "results").message

    # Then the Files item, the file's notification and the batch's carry neither credentials nor more
    # than about a kilobyte of Extend's text
    ((_, fields),) = rt.files.calls
    [file_body] = published
    for text in (
        fields["failure_message"],
        file_body["failureMessage"],
        batch_body["failedFiles"][0]["failureMessage"],
    ):
        assert text.startswith("Could not process https://drop.s3.amazonaws.com/invoices/a.pdf?")
        assert "AKIATEST" not in text and "not-a-real-token" not in text and "ab" * 32 not in text
        assert len(text) <= MAX_MESSAGE_CHARS
