"""`batchdrop reprocess`: finished files sent through again, once, as intake would take them today."""

from __future__ import annotations

import json

from batchdrop_core.tracking import FileStatus, TrackedFile
from tests.helpers import EXAMPLE_ROUTES, CliSandbox, make_settings, sim_batches


def test_a_file_rejected_before_its_route_existed_is_queued_on_it_once(sandbox: CliSandbox) -> None:
    # Given a file dropped under no route: REJECTED NO_ROUTE
    sandbox.upload(["receipts/r-1.pdf"])
    sandbox.pipeline.pump()
    (rejected,) = sandbox.rt.files.versions(sandbox.drop_bucket, "receipts/r-1.pdf")
    assert (rejected.status, rejected.failure_reason) == (FileStatus.REJECTED, "NO_ROUTE")

    # Before the route exists, a reprocess would reject it again and changes nothing
    before = sandbox.json("reprocess", "--reason", "NO_ROUTE")
    assert (before["matched"], before["queued"], before["stillRejected"]) == (1, 0, 1)
    assert before["rejectedAgain"][0]["reason"] == "NO_ROUTE"

    # When the operator adds a route for it (the deployment's settings now)
    receipts = {
        "name": "receipts",
        "prefix": "receipts/",
        "type": "extract",
        "processorId": "ex_receipts_test",
    }
    settings = make_settings(sandbox.sim.base_url, routes=[*EXAMPLE_ROUTES, receipts])
    document = json.loads(sandbox.path.read_text())
    document["settings"] = json.loads(settings.to_env_json())
    sandbox.path.write_text(json.dumps(document))

    # Then a dry run says where it would go, and changes nothing
    preview = sandbox.json("reprocess", "--reason", "NO_ROUTE", "--dry-run")
    assert (preview["wouldQueue"], preview["byRoute"]) == (1, {"receipts": 1})
    assert sandbox.rt.files.versions(sandbox.drop_bucket, "receipts/r-1.pdf")[0].status == FileStatus.REJECTED

    # And the reprocess queues it on the new route, a fresh file (attempts 0), with the old reason in history
    done = sandbox.json("reprocess", "--reason", "NO_ROUTE")
    assert (done["queued"], done["flushRequested"]) == (1, ["receipts"])
    (queued,) = sandbox.rt.files.versions(sandbox.drop_bucket, "receipts/r-1.pdf")
    assert (queued.status, queued.route, queued.attempts) == (FileStatus.QUEUED, "receipts", 0)
    assert queued.failure_reason == "OPERATOR_REPROCESS" and "REJECTED NO_ROUTE" in (
        queued.failure_message or ""
    )
    assert queued.history[-1]["reason"] == "OPERATOR_REPROCESS"
    assert [e.file_id for e in sandbox.rt.files.oldest_queued("receipts", 10)] == [queued.file_id]

    # Once: it is no longer REJECTED, so a second reprocess finds nothing
    assert sandbox.json("reprocess", "--reason", "NO_ROUTE")["matched"] == 0
    assert "No REJECTED files match" in sandbox.run("reprocess").stdout


def test_a_file_extend_refused_goes_through_once_more_and_reaches_extend(sandbox: CliSandbox) -> None:
    # Given a file REJECTED at submission because Extend refused it as an input (since fixed at Extend)
    sandbox.upload(["invoices/p-1.pdf"])
    sandbox.pipeline.pump()
    (tracked,) = sandbox.rt.files.versions(sandbox.drop_bucket, "invoices/p-1.pdf")
    refused = TrackedFile(**{**tracked.__dict__, "status": FileStatus.REJECTED})
    refused.failure_reason, refused.failure_message = "EXTEND_REFUSED_INPUT", "Extend refused the input"
    rt = sandbox.rt
    rt.client("dynamodb").delete_item(TableName=rt.files.table, Key=tracked.item_key())
    assert rt.files.add(refused)

    # When it is reprocessed by key, it is queued and its route flushed at once: one batch of one at Extend
    done = sandbox.json("reprocess", "invoices/p-1.pdf")
    assert (done["queued"], done["flushRequested"]) == (1, ["invoices"])
    sandbox.pipeline.pump()
    (sent,) = rt.files.versions(sandbox.drop_bucket, "invoices/p-1.pdf")
    assert (sent.status, sent.attempts) == (FileStatus.SUBMITTED, 1)
    assert [b["runCount"] for b in sim_batches(sandbox.sim)] == [1]

    # In flight, it is not REJECTED any more: reprocessing it again sends nothing twice
    again = sandbox.json("reprocess", "invoices/p-1.pdf")
    assert (again["matched"], again["queued"]) == (0, 0)


def test_reprocess_refuses_what_it_cannot_find(sandbox: CliSandbox) -> None:
    assert "needs KEYs or --prefix" in sandbox.fails("reprocess", "--status", "PROCESSED")
    assert "no tracked file" in sandbox.fails("reprocess", "invoices/never.pdf")
    assert "unknown route 'nope'" in sandbox.fails("reprocess", "--route", "nope")
