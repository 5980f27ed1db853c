"""`batchdrop status / file / batch / results / flush` against a running sandbox."""

from __future__ import annotations

import json

from batchdrop_core.tracking import IN_REVIEW, FileStatus
from tests.helpers import CliSandbox, sim_batches


def test_status_file_and_batch_follow_files_through_a_flush(sandbox: CliSandbox) -> None:
    # Given five invoices, two documents and an empty invoice, all tracked but waiting for maxWaitSeconds
    sandbox.upload([f"invoices/a-{i}.pdf" for i in range(5)])
    sandbox.upload(["documents/d-0.txt", "documents/d-1.txt"])
    sandbox.upload(["invoices/empty.pdf"], body=b"")
    sandbox.pipeline.pump()

    status = sandbox.json("status")
    routes = {r["name"]: r for r in status["routes"]}
    assert routes["invoices"]["counts"][FileStatus.QUEUED] == 5
    assert routes["invoices"]["counts"][FileStatus.REJECTED] == 1
    assert routes["documents"]["counts"][FileStatus.QUEUED] == 2
    assert routes["packets"]["counts"] == dict.fromkeys((*FileStatus.ALL, IN_REVIEW), 0)
    assert routes["invoices"]["oldestQueuedAgeSeconds"] >= 0
    assert routes["invoices"]["inFlight"] == [] and not routes["invoices"]["blocked"]

    # When the operator flushes one route
    assert sandbox.json("flush", "invoices") == {"flushRequested": ["invoices"]}
    sandbox.pipeline.pump()

    # Then exactly that route went out, as one partial batch, and status shows it in flight
    assert [b["runCount"] for b in sim_batches(sandbox.sim)] == [5]
    routes = {r["name"]: r for r in sandbox.json("status")["routes"]}
    assert routes["invoices"]["counts"][FileStatus.SUBMITTED] == 5
    assert routes["documents"]["counts"][FileStatus.QUEUED] == 2
    (in_flight,) = routes["invoices"]["inFlight"]
    assert in_flight["fileCount"] == 5 and in_flight["batchId"].startswith("bpr_")

    # And `file` shows the file's batch, joined through its submission, and no earlier attempt
    (version,) = sandbox.json("file", "invoices/a-0.pdf")["versions"]
    assert version["status"] == FileStatus.SUBMITTED
    assert version["batchId"] == in_flight["batchId"]
    assert version["submissionId"] == in_flight["submissionId"]
    assert (version["submissionState"], version["processorId"]) == ("SUBMITTED", in_flight["processorId"])
    assert version["submittedAt"] == in_flight["submittedAt"] and version["urlExpiresAt"]
    assert version["history"] is None
    rejected = sandbox.json("file", f"s3://{sandbox.drop_bucket}/invoices/empty.pdf")["versions"][0]
    assert (rejected["status"], rejected["failureReason"]) == (FileStatus.REJECTED, "EMPTY_FILE")

    # And `batch` finds the batch by Extend's id and by ours
    by_batch_id = sandbox.json("batch", in_flight["batchId"])
    assert by_batch_id["counts"] == {FileStatus.SUBMITTED: 5}
    assert sorted(f["key"] for f in by_batch_id["files"]) == [f"invoices/a-{i}.pdf" for i in range(5)]
    assert sandbox.json("batch", in_flight["submissionId"])["submission"]["batchId"] == in_flight["batchId"]

    # And the human-readable forms print the same facts
    table = sandbox.run("status")
    assert table.exit_code == 0 and "invoices" in table.stdout and in_flight["batchId"] in table.stdout
    panel = sandbox.run("file", "invoices/a-0.pdf")
    assert panel.exit_code == 0 and in_flight["batchId"] in panel.stdout
    listing = sandbox.run("batch", in_flight["batchId"], "--limit", "2")
    assert listing.exit_code == 0 and "3 more" in listing.stdout

    # When every route is flushed, the documents go too
    assert sandbox.json("flush")["flushRequested"] == ["invoices", "documents", "packets"]
    sandbox.pipeline.pump()
    assert sorted(b["runCount"] for b in sim_batches(sandbox.sim)) == [2, 5]


def test_results_prints_the_stored_result_and_explains_a_missing_one(sandbox: CliSandbox) -> None:
    # Given a submitted file whose outcome was recorded with a result object, and one that failed
    sandbox.upload(["invoices/r-0.pdf", "invoices/r-1.pdf"])
    sandbox.pipeline.pump()
    sandbox.json("flush", "invoices")
    sandbox.pipeline.pump()
    rt = sandbox.rt
    processed, failed = sorted(
        rt.files.versions(sandbox.drop_bucket, "invoices/r-0.pdf")
        + rt.files.versions(sandbox.drop_bucket, "invoices/r-1.pdf"),
        key=lambda f: f.key,
    )
    result_key = f"results/invoices/r-0.pdf/{processed.version_id}.json"
    document = {"run": {"id": "run_123", "status": "PROCESSED", "output": {"total": 42}}}
    rt.client("s3").put_object(
        Bucket=rt.resources.results_bucket, Key=result_key, Body=json.dumps(document).encode()
    )
    assert rt.files.record_outcome(
        processed,
        processed.submission_id,
        status=FileStatus.PROCESSED,
        run_id="run_123",
        result_key=result_key,
    )
    assert rt.files.record_outcome(
        failed,
        failed.submission_id,
        status=FileStatus.FAILED,
        run_id="run_456",
        failure_reason="INTERNAL_ERROR",
        failure_message="boom",
    )

    # Then `results` prints the stored JSON, and `file` names where it is
    assert sandbox.json("results", "invoices/r-0.pdf") == document
    (version,) = sandbox.json("file", "invoices/r-0.pdf")["versions"]
    assert version["resultUri"] == f"s3://{rt.resources.results_bucket}/{result_key}"
    human = sandbox.run("results", "invoices/r-0.pdf")
    assert human.exit_code == 0 and "run_123" in human.stdout

    # And a file without a result gets a reason, not a traceback
    message = sandbox.fails("results", "invoices/r-1.pdf")
    assert "has no stored result: it is FAILED (INTERNAL_ERROR)" in message
