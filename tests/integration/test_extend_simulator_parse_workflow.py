"""Parse batches (POST /parse_runs/batch, bpar_ ids, batch_parse_run.* webhooks) and workflow batches
(POST /workflow_runs/batch: {batchId}, no batch webhook, one workflow_run.* webhook per run, reviews)."""

from __future__ import annotations

import httpx

from tests.integration.extend_sim_support import (
    INVOICE,
    SECRET,
    batch_runs,
    client,
    events,
    sim_get,
    sim_post,
    submit,
    wait_batch,
    wait_for,
)
from tests.integration.extend_sim_support import local as local
from tests.integration.extend_sim_support import make_sim as make_sim
from tests.integration.extend_sim_support import sim as sim

PDF = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\nINVOICE\nInvoice Number: 7\n%%EOF"

# -- parse ---------------------------------------------------------------------------------------------


def test_parse_batch_runs_webhook_and_failure_reasons(make_sim, local):
    local.files["/scan.pdf"] = (200, PDF)
    local.files["/tool.exe"] = (200, b"MZ\x90\x00")
    local.files["/broken.pdf"] = (200, b"this is not a pdf")
    sim = make_sim(webhook_url=local.url + "/hook", webhook_secret=SECRET)
    inputs = [
        {"file": {"text": INVOICE}, "metadata": {"doc": 1}},
        {"file": {"url": local.url + "/scan.pdf"}},
        {"file": {"url": local.url + "/missing.pdf"}},
        {"file": {"url": local.url + "/tool.exe"}},
        {"file": {"url": local.url + "/broken.pdf"}},
        {"file": {"text": "SIMULATE_FAILURE:OCR_ERROR"}},
    ]
    with client(sim) as api:
        response = api.post(
            "/parse_runs/batch",
            json={"inputs": inputs, "config": {"chunkingStrategy": {"type": "document"}}, "priority": 5},
        )
        assert response.status_code == 200
        batch = response.json()
        assert set(batch) == {"object", "id", "status", "runCount", "createdAt"}
        assert batch["object"] == "batch_run" and batch["id"].startswith("bpar_") and batch["runCount"] == 6

        event = events(local.wait_posts(1))[0]
        assert event["eventType"] == "batch_parse_run.processed"
        assert event["payload"] == api.get(f"/batch_runs/{batch['id']}").json()

        # No sortBy/sortDir on this list; the page size may be called limit.
        seen, token = [], None
        while True:
            params = {"batchId": batch["id"], "limit": 4, **({"nextPageToken": token} if token else {})}
            page = api.get("/parse_runs", params=params).json()
            seen += page["data"]
            token = page["nextPageToken"]
            if not token:
                break
        assert len(seen) == 6 and len({r["id"] for r in seen}) == 6
        assert all(r["object"] == "parse_run" and r["id"].startswith("pr_") for r in seen)
        assert all(r["batchId"] == batch["id"] and "output" not in r and "config" not in r for r in seen)
        assert api.get("/parse_runs", params={"batchId": batch["id"], "maxPageSize": 2}).json()[
            "nextPageToken"
        ]

        runs = batch_runs(api, "parse", batch["id"])
    reasons = [r.get("failureReason") for r in runs]
    assert reasons == [
        None,
        None,
        "UNABLE_TO_DOWNLOAD_FILE",
        "FILE_TYPE_NOT_SUPPORTED",
        "CORRUPT_FILE",
        "OCR_ERROR",
    ]
    text, scan = runs[0], runs[1]
    assert text["metadata"] == {"doc": 1} and "metadata" not in scan  # only when given
    assert text["config"]["chunkingStrategy"] == {"type": "document"}
    assert text["config"]["target"] == "markdown"  # the defaults fill the rest
    (chunk,) = text["output"]["chunks"]
    assert chunk["type"] == "document" and "Invoice Number: INV-1042" in chunk["content"]
    assert scan["file"]["name"] == "scan.pdf" and scan["metrics"]["pageCount"] == 1
    assert scan["usage"]["credits"] == 1
    assert all(r["file"] is None and "output" not in r for r in runs[2:])


def test_parse_output_inline_or_as_a_url(make_sim):
    sim = make_sim()
    with client(sim) as api:
        batch = submit(api, "parse", None, [{"text": "# Heading\nKey: value\fPage two"}] * 2)
        wait_batch(api, batch["id"])
        first, second = (r["id"] for r in batch_runs(api, "parse", batch["id"]))
        inline = api.get(f"/parse_runs/{first}").json()
        assert [c["type"] for c in inline["output"]["chunks"]] == ["page", "page"]
        assert inline["output"] == api.get(f"/parse_runs/{second}").json()["output"]  # deterministic

        by_url = api.get(f"/parse_runs/{first}", params={"responseType": "url"}).json()
        assert "output" not in by_url
        assert httpx.get(by_url["outputUrl"]).json() == inline["output"]  # a plain GET, no auth

        sim_post(sim, "/_sim/config", {"parse_output_url": True})
        assert "outputUrl" in api.get(f"/parse_runs/{first}").json()
        assert "output" in api.get(f"/parse_runs/{first}", params={"responseType": "json"}).json()
        assert api.get(f"/parse_runs/{first}", params={"responseType": "xml"}).status_code == 400

        sim_post(sim, "/_sim/config", {"output_url_ttl_seconds": 0})
        expired = api.get(f"/parse_runs/{first}").json()["outputUrl"]
        assert httpx.get(expired).status_code == 403


def test_parse_file_size_limit_and_request_validation(make_sim):
    sim = make_sim(max_file_bytes=16)
    with client(sim) as api:
        batch = submit(api, "parse", None, [{"text": "short"}, {"text": "x" * 17}])
        wait_batch(api, batch["id"])
        small, big = batch_runs(api, "parse", batch["id"])
        assert small["status"] == "PROCESSED"
        assert (big["status"], big["failureReason"]) == ("FAILED", "FILE_SIZE_TOO_LARGE")
        for body in (
            {"inputs": [{"file": {"text": "x"}}], "extractor": {"id": "ex_a"}},
            {"inputs": [{"file": {"text": "x"}}], "config": {"target": "html"}},
            {"inputs": [{"file": {"text": "x"}}], "config": {"chunkingStrategy": {"type": "paragraph"}}},
            {"inputs": []},
        ):
            assert api.post("/parse_runs/batch", json=body).status_code == 400
        assert api.get("/parse_runs", params={"limit": 0}).status_code == 400
        assert api.get("/parse_runs", params={"status": "CANCELLED"}).status_code == 400


# -- workflow ------------------------------------------------------------------------------------------


def test_workflow_batch_sends_one_event_per_run_and_reviews_finish_the_held_ones(make_sim, local):
    sim = make_sim(webhook_url=local.url, webhook_secret=SECRET)
    inputs = [
        {"file": {"text": INVOICE}, "metadata": {"ref": "a"}},
        {"file": {"text": "SIMULATE_REVIEW\nTotal: 3"}, "metadata": {"ref": "b"}},
        {"file": {"text": "SIMULATE_FAILURE:INTERNAL_ERROR"}, "metadata": {"ref": "c"}},
        {"file": {"text": "SIMULATE_REVIEW\nTotal: 4"}, "metadata": {"ref": "d"}, "secrets": {"k": "v"}},
    ]
    with client(sim) as api:
        response = api.post(
            "/workflow_runs/batch",
            json={"workflow": {"id": "workflow_invoices", "version": "3"}, "inputs": inputs},
        )
        assert response.status_code == 200
        batch_id = response.json()["batchId"]
        assert response.json() == {"batchId": batch_id} and batch_id.startswith("batch_")
        assert api.get(f"/batch_runs/{batch_id}").status_code == 404  # not a BatchRun

        by_ref = {e["payload"]["metadata"]["ref"]: e for e in events(local.wait_posts(4))}
        assert {ref: e["eventType"] for ref, e in by_ref.items()} == {
            "a": "workflow_run.completed",
            "b": "workflow_run.needs_review",
            "c": "workflow_run.failed",
            "d": "workflow_run.needs_review",
        }
        for event in by_ref.values():
            payload = event["payload"]
            assert payload["object"] == "workflow_run" and payload["batchId"] == batch_id
            assert (
                payload["id"].startswith("workflow_run_") and payload["workflow"]["id"] == "workflow_invoices"
            )
        completed = by_ref["a"]["payload"]
        (step,) = completed["stepRuns"]
        assert step["stepType"] == "EXTRACT"
        assert step["result"]["extractRun"]["output"]["value"]["invoice_number"] == "INV-1042"
        assert by_ref["c"]["payload"]["failureReason"] == "INTERNAL_ERROR"

        listed = api.get("/workflow_runs", params={"batchId": batch_id, "sortBy": "createdAt"}).json()["data"]
        assert len(listed) == 4 and all("stepRuns" not in r and "metadata" not in r for r in listed)
        held = api.get("/workflow_runs", params={"batchId": batch_id, "status": "NEEDS_REVIEW"}).json()[
            "data"
        ]
        assert len(held) == 2
        assert sim_get(sim, "/_sim/stats")["backfill"]["outstanding"] == 2  # not terminal yet

        b_id, d_id = by_ref["b"]["payload"]["id"], by_ref["d"]["payload"]["id"]
        rejected = sim_post(
            sim, "/_sim/workflow_reviews", {"decision": "reject", "runIds": [b_id], "note": "no"}
        )
        assert rejected.json() == {"reviewed": [b_id]}
        approved = sim_post(sim, "/_sim/workflow_reviews", {"decision": "approve", "batchId": batch_id})
        assert approved.json() == {"reviewed": [d_id]}
        later = {e["payload"]["id"]: e for e in events(local.wait_posts(6)[4:])}
        assert later[b_id]["eventType"] == "workflow_run.rejected"
        assert later[d_id]["eventType"] == "workflow_run.completed"
        b = api.get(f"/workflow_runs/{b_id}").json()
        assert (b["status"], b["reviewed"], b["rejectionNote"]) == ("REJECTED", True, "no")
        assert b["metadata"] == {"ref": "b"} and b["reviewedAt"] and b["endTime"]
        assert api.get(f"/workflow_runs/{d_id}").json()["status"] == "PROCESSED"
    assert sim_get(sim, "/_sim/stats")["backfill"]["outstanding"] == 0
    assert not [e for e in events(local.posts) if e["eventType"].startswith("batch_")]  # no batch event
    assert sim_post(sim, "/_sim/workflow_reviews", {"decision": "approve", "runIds": [b_id]}).json() == {
        "reviewed": []
    }


def test_workflow_review_share_and_validation(make_sim):
    sim = make_sim(workflow_review_share=1.0)
    with client(sim) as api:
        batch_id = submit(api, "workflow", "workflow_a", [{"text": "a: 1"}, {"text": "b: 2"}])["batchId"]
        held = wait_for(
            lambda: (
                runs
                if len(
                    runs := api.get(
                        "/workflow_runs", params={"batchId": batch_id, "status": "NEEDS_REVIEW"}
                    ).json()["data"]
                )
                == 2
                else None
            )
        )
        assert {r["status"] for r in held} == {"NEEDS_REVIEW"}
        assert len(sim_post(sim, "/_sim/workflow_reviews", {"decision": "approve"}).json()["reviewed"]) == 2
        for body in (
            {"workflow": {"id": "wf_a"}, "inputs": [{"file": {"text": "x"}}]},
            {"workflow": {"id": "workflow_a"}, "inputs": [{"file": {"text": "x"}}], "priority": 0},
            {"workflow": {"id": "workflow_a", "overrideConfig": {}}, "inputs": [{"file": {"text": "x"}}]},
            {"workflow": {"id": "workflow_a"}, "inputs": [{"file": {"text": "x"}, "priority": 1}]},
        ):
            assert api.post("/workflow_runs/batch", json=body).status_code == 400
    assert sim_post(sim, "/_sim/workflow_reviews", {"decision": "maybe"}).status_code == 400
