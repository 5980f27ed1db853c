"""`batchdrop retry / redrive / backfill / register-webhook / demo` against a running sandbox."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from batchdrop_cli import actions
from batchdrop_core.tracking import FileStatus, TrackedFile
from tests.helpers import CliSandbox, sim_batches


def submitted_files(sandbox: CliSandbox, keys: list[str]) -> list[TrackedFile]:
    """Upload ``keys`` to the invoices route and flush them into one submission."""
    sandbox.upload(keys)
    sandbox.pipeline.pump()
    sandbox.json("flush", "invoices")
    sandbox.pipeline.pump()
    return [sandbox.rt.files.versions(sandbox.drop_bucket, key)[0] for key in keys]


def fail(sandbox: CliSandbox, tracked: TrackedFile, reason: str) -> None:
    assert sandbox.rt.files.record_outcome(
        tracked,
        tracked.submission_id or "",
        status=FileStatus.FAILED,
        run_id="run_test",
        failure_reason=reason,
        failure_message=f"{reason} from the test",
    )


def current(sandbox: CliSandbox, tracked: TrackedFile) -> TrackedFile:
    found = sandbox.rt.files.get(tracked.bucket, tracked.key, tracked.version_id)
    assert found is not None
    return found


def test_retry_requeues_failed_files_by_reason_and_by_batch(sandbox: CliSandbox) -> None:
    # Given a batch of three where two runs failed, for different reasons
    ok, internal, unsupported = submitted_files(
        sandbox, ["invoices/x-1.pdf", "invoices/x-2.pdf", "invoices/x-3.pdf"]
    )
    first_batch = internal.batch_id
    fail(sandbox, internal, "INTERNAL_ERROR")
    fail(sandbox, unsupported, "CORRUPT_FILE")

    # When the operator asks for a dry run, nothing changes
    preview = sandbox.json("retry", "--dry-run")
    assert (preview["matched"], preview["requeued"]) == (2, 0)
    assert current(sandbox, internal).status == FileStatus.FAILED

    # When only one reason is retried, only that file goes back to the queue, and its route is flushed
    retried = sandbox.json("retry", "--reason", "INTERNAL_ERROR")
    assert (retried["requeued"], retried["flushRequested"]) == (1, ["invoices"])
    requeued = current(sandbox, internal)
    assert requeued.status == FileStatus.QUEUED
    assert requeued.failure_reason == "OPERATOR_RETRY" and "INTERNAL_ERROR" in (
        requeued.failure_message or ""
    )
    assert current(sandbox, unsupported).status == FileStatus.FAILED
    assert current(sandbox, ok).status == FileStatus.SUBMITTED

    # Then the flush sends it again at once, alone
    sandbox.pipeline.pump()
    assert [b["runCount"] for b in sim_batches(sandbox.sim)] == [3, 1]
    assert current(sandbox, internal).status == FileStatus.SUBMITTED

    # When the rest of the first batch is retried by its batch id
    by_batch = sandbox.json("retry", "--batch", first_batch or "")
    assert [f["fileId"] for f in by_batch["files"]] == [unsupported.file_id]
    assert current(sandbox, unsupported).status == FileStatus.QUEUED

    # And nothing is left to retry
    assert sandbox.json("retry")["matched"] == 0
    assert "No FAILED files match" in sandbox.run("retry").stdout


def test_redrive_moves_dead_letters_back_to_their_queues(sandbox: CliSandbox) -> None:
    # Given a poison flush request and a results message in their DLQs
    sqs = sandbox.deployment.session.client("sqs")
    dlqs = sandbox.deployment.dlq_urls
    sqs.send_message(
        QueueUrl=dlqs["flush"],
        MessageBody=json.dumps({"route": "invoices", "force": True, "reason": "test"}),
        MessageGroupId="invoices",
        MessageDeduplicationId="dead-1",
    )
    sqs.send_message(QueueUrl=dlqs["results"], MessageBody=json.dumps({"batchId": "bpr_dead"}))

    # When everything is redriven
    moved = {q["queue"]: q for q in sandbox.json("redrive")["queues"]}

    # Then each message is back in its source queue (FIFO group kept), and the DLQs are empty
    assert {name: q["messages"] for name, q in moved.items()} == {"arrivals": 0, "flush": 1, "results": 1}
    assert moved["flush"]["method"] == "receive-send-delete"
    for dlq in dlqs.values():
        assert not sqs.receive_message(QueueUrl=dlq).get("Messages")
    (flush,) = sqs.receive_message(
        QueueUrl=sandbox.deployment.resources.flush_queue_url, MessageSystemAttributeNames=["MessageGroupId"]
    )["Messages"]
    assert (
        json.loads(flush["Body"])["route"] == "invoices"
        and flush["Attributes"]["MessageGroupId"] == "invoices"
    )
    (result,) = sqs.receive_message(QueueUrl=sandbox.deployment.resources.results_queue_url)["Messages"]
    assert json.loads(result["Body"]) == {"batchId": "bpr_dead"}

    # And one queue can be chosen
    assert sandbox.json("redrive", "--queue", "results")["queues"] == [
        {"queue": "results", "messages": 0, "method": "receive-send-delete", "taskHandle": None}
    ]


def test_backfill_tracks_existing_objects_once(sandbox: CliSandbox) -> None:
    # Given objects that arrived while the bucket sent no notifications (a bucket filled before deployment)
    s3 = sandbox.deployment.session.client("s3")
    s3.put_bucket_notification_configuration(Bucket=sandbox.drop_bucket, NotificationConfiguration={})
    sandbox.upload(["invoices/old-1.pdf", "invoices/old-1.pdf", "invoices/old-2.pdf", "misc/other.pdf"])
    sandbox.upload(["documents/empty.txt"], body=b"")
    latest = s3.head_object(Bucket=sandbox.drop_bucket, Key="invoices/old-1.pdf")["VersionId"]

    # When the operator previews a backfill, it counts current versions under the routes, writes nothing
    preview = sandbox.json("backfill", "--dry-run")
    assert (preview["objects"], preview["new"], preview["alreadyTracked"]) == (3, 3, 0)
    assert sandbox.rt.files.versions(sandbox.drop_bucket, "invoices/old-1.pdf") == []

    # When it backfills, each object gets one Files item, through intake's rules
    done = sandbox.json("backfill")
    assert {k: done[k] for k in ("created", "queued", "rejected", "duplicates", "flushRequested")} == {
        "created": 3,
        "queued": 2,
        "rejected": 1,
        "duplicates": 0,
        "flushRequested": ["invoices"],
    }
    (old_1,) = sandbox.rt.files.versions(sandbox.drop_bucket, "invoices/old-1.pdf")
    assert (old_1.version_id, old_1.status) == (latest, FileStatus.QUEUED)
    (empty,) = sandbox.rt.files.versions(sandbox.drop_bucket, "documents/empty.txt")
    assert (empty.status, empty.failure_reason) == (FileStatus.REJECTED, "EMPTY_FILE")
    assert sandbox.rt.files.versions(sandbox.drop_bucket, "misc/other.pdf") == []

    # Then a second backfill (or one under a narrower prefix) creates nothing
    again = sandbox.json("backfill")
    assert (again["created"], again["duplicates"]) == (0, 3)
    narrow = sandbox.json("backfill", "invoices/old-")
    assert (narrow["prefixes"], narrow["objects"], narrow["duplicates"]) == (["invoices/old-"], 2, 2)

    # And a prefix outside every route is refused with the list of routes
    assert "under no route" in sandbox.fails("backfill", "misc/")


def test_register_webhook_stores_the_signing_secret_and_never_prints_it(sandbox: CliSandbox) -> None:
    secrets = sandbox.deployment.session.client("secretsmanager")
    secret_id = sandbox.deployment.resources.webhook_secret
    before = secrets.get_secret_value(SecretId=secret_id)["SecretString"]

    result = sandbox.run("register-webhook", "--url", "https://hooks.example.test/webhooks/extend", "--json")

    assert result.exit_code == 0, result.output
    registered = json.loads(result.stdout)
    assert registered["endpointId"].startswith("whe_")
    after = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    assert after != before and after.startswith("wss_sim_")
    assert after not in result.output
    # This sandbox's endpoints file names no webhook URL, so one must be given.
    assert "pass --url" in sandbox.fails("register-webhook")


def test_demo_delegates_to_the_demo_module(sandbox: CliSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_call(argv: list[str], **_: Any) -> int:
        calls.append(argv)
        return 3

    monkeypatch.setattr(actions.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(subprocess, "call", fake_call)
    result = sandbox.run("demo", "--files", "10", "--keep")
    assert result.exit_code == 3
    assert calls[0][1:] == ["-m", "sandbox.demo", "--files", "10", "--keep"]

    monkeypatch.setattr(actions.importlib.util, "find_spec", lambda name: None)
    assert "run `make demo`" in sandbox.fails("demo")
