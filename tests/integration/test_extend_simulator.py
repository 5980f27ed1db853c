"""The Extend simulator over real HTTP on loopback, driven with plain httpx (not batchdrop's client)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from batchdrop_core.extend.signing import verify
from sandbox.extend_sim.webhooks import sign, signature_headers
from tests.helpers import deliveries
from tests.integration.extend_sim_support import (
    HEADERS,
    INVOICE,
    REPO_ROOT,
    SECRET,
    batch_runs,
    batch_runs_ids,
    client,
    counters,
    submit,
    wait_batch,
    wait_for,
)
from tests.integration.extend_sim_support import local as local
from tests.integration.extend_sim_support import make_sim as make_sim
from tests.integration.extend_sim_support import sim as sim

# -- batch create, webhooks ----------------------------------------------------------------------------


def test_batch_post_returns_batch_run_and_a_signed_webhook_arrives(make_sim, local):
    sim = make_sim(webhook_url=local.url + "/hook", webhook_secret=SECRET)
    with client(sim) as api:
        batch = submit(api, "extract", "ex_invoices", [{"text": INVOICE}, {"text": "Total: 3"}])
        assert set(batch) == {"object", "id", "status", "runCount", "createdAt"}
        assert batch["object"] == "batch_run" and batch["id"].startswith("bpr_")
        assert (batch["status"], batch["runCount"]) == ("PENDING", 2)

        headers, body = local.wait_posts(1)[0]
        verify(SECRET, headers, body)  # raises if the signature or timestamp is wrong
        event = json.loads(body)
        assert event["eventId"].startswith("evt_")
        assert event["eventType"] == "batch_processor_run.processed"
        assert event["payload"] == api.get(f"/batch_runs/{batch['id']}").json()
        assert event["payload"]["status"] == "PROCESSED"


def test_signature_matches_extends_documented_example():
    # Extend's documented worked example (webhook signature verification): the secret, timestamp,
    # raw body (a batch_processor_run.processed event) and the signature it must give.
    secret = "wss_test_not_a_real_secret_0000"
    timestamp = 1764320400
    body = (
        b'{"eventId": "evt_7QpL2mX9vB4kR8tN", "eventType": "batch_processor_run.processed", "payload": '
        b'{"object": "batch_run", "id": "bpr_Xj8mK2pL9nR4vT7qY5wZ", "status": "PROCESSED", '
        b'"runCount": 1000, "createdAt": "2026-11-28T09:20:11Z"}}'
    )
    expected = "dd6aaa962efa5c7f0f0851a5bd5290ab6755b7554099361425c6b4b83984bf24"
    assert sign(secret, timestamp, body) == expected
    assert signature_headers(secret, body, timestamp) == {
        "x-extend-request-timestamp": "1764320400",
        "x-extend-request-signature": expected,
    }
    # One changed byte of the body changes the signature.
    assert sign(secret, timestamp, body.replace(b"1000", b"1001")) != expected


def test_registered_webhook_endpoint_gets_events_signed_with_its_secret(sim, local):
    with client(sim) as api:
        endpoint = api.post(
            "/webhook_endpoints",
            json={
                "url": local.url + "/registered",
                "name": "batchdrop",
                "enabledEvents": ["batch_processor_run.processed", "batch_processor_run.failed"],
                "apiVersion": "2026-02-09",
            },
        ).json()
        assert endpoint["object"] == "webhook_endpoint" and endpoint["id"].startswith("whe_")
        assert endpoint["status"] == "enabled" and endpoint["signingSecret"].startswith("wss_sim_")
        batch = submit(api, "classify", "cl_doc", [{"text": "receipt"}])
        headers, body = local.wait_posts(1)[0]
        verify(endpoint["signingSecret"], headers, body)
        assert json.loads(body)["payload"]["id"] == batch["id"]


def test_failed_webhook_deliveries_are_retried_with_the_same_event(make_sim, local):
    sim = make_sim(webhook_url=local.url, webhook_secret=SECRET)
    local.post_statuses = [500, 503]
    with client(sim) as api:
        submit(api, "extract", "ex_a", [{"text": "a: 1"}])
    posts = local.wait_posts(3)
    assert len({json.loads(body)["eventId"] for _, body in posts}) == 1
    # The log entry for an attempt is written once the receiver has answered it.
    log = wait_for(lambda: deliveries(sim) if len(deliveries(sim)) == 3 else None)
    assert [(d["attempt"], d["statusCode"], d["outcome"]) for d in log] == [
        (1, 500, "retrying"),
        (2, 503, "retrying"),
        (3, 200, "delivered"),
    ]


def test_webhook_duplicate_and_drop_faults(make_sim, local):
    sim = make_sim(webhook_url=local.url, webhook_secret=SECRET)
    sim.faults.webhook_duplicate_rate = 1.0
    with client(sim) as api:
        submit(api, "extract", "ex_a", [{"text": "a: 1"}])
        first, second = local.wait_posts(2)
        assert first[1] == second[1]  # the same event, same eventId, twice

        httpx.post(sim.base_url + "/_sim/faults", json={"webhook_duplicate_rate": 0, "webhook_drop_rate": 1})
        batch = submit(api, "extract", "ex_a", [{"text": "a: 2"}])
        wait_batch(api, batch["id"])
    # The event is published just after the batch turns PROCESSED, so wait for the counter.
    assert wait_for(lambda: counters(sim)["webhooks_dropped"]) == 1
    assert counters(sim)["webhooks_duplicated"] == 1
    time.sleep(0.2)
    assert len(local.posts) == 2


def test_webhook_reorder_fault_still_delivers_every_event(make_sim, local):
    sim = make_sim(webhook_url=local.url, webhook_secret=SECRET)
    sim.faults.webhook_reorder = True
    with client(sim) as api:
        batch_ids = {submit(api, "extract", "ex_a", [{"text": f"n: {i}"}])["id"] for i in range(4)}
    posts = local.wait_posts(4, timeout=5)
    for headers, body in posts:
        verify(SECRET, headers, body)
    assert {json.loads(body)["payload"]["id"] for _, body in posts} == batch_ids


def test_signed_url_payload_fault_serves_the_batch_run(make_sim, local):
    sim = make_sim(webhook_url=local.url, webhook_secret=SECRET)
    sim.faults.signed_url_payload = True
    with client(sim) as api:
        batch = submit(api, "extract", "ex_a", [{"text": "a: 1"}])
        headers, body = local.wait_posts(1)[0]
        verify(SECRET, headers, body)
        payload = json.loads(body)["payload"]
        assert payload["object"] == "signed_data_url" and payload["id"] == batch["id"]
        fetched = httpx.get(payload["data"]).json()  # plain GET, no auth
        assert fetched == api.get(f"/batch_runs/{batch['id']}").json()


def test_fail_batches_fault_ends_the_batch_failed(make_sim, local):
    sim = make_sim(webhook_url=local.url, webhook_secret=SECRET)
    sim.faults.fail_batches = 1
    with client(sim) as api:
        batch = submit(api, "extract", "ex_a", [{"text": "a: 1"}, {"text": "b: 2"}])
        assert wait_batch(api, batch["id"])["status"] == "FAILED"
        runs = batch_runs(api, "extract", batch["id"])
        assert {(r["status"], r["failureReason"]) for r in runs} == {("FAILED", "INTERNAL_ERROR")}
        assert json.loads(local.wait_posts(1)[0][1])["eventType"] == "batch_processor_run.failed"
        # Only one batch was picked.
        assert wait_batch(api, submit(api, "extract", "ex_a", [{"text": "x"}])["id"])["status"] == "PROCESSED"


# -- validation and auth -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/extract_runs/batch", {"extractor": {"id": "ex_a"}, "inputs": []}),
        ("/extract_runs/batch", {"extractor": {"id": "ex_a"}, "inputs": [{"file": {"text": "x"}}] * 1001}),
        ("/extract_runs/batch", {"extractor": {"id": "cl_a"}, "inputs": [{"file": {"text": "x"}}]}),
        ("/extract_runs/batch", {"inputs": [{"file": {"text": "x"}}]}),
        ("/split_runs/batch", {"splitter": {"id": "spl_a"}, "inputs": [{"file": {"text": "x"}}]}),
        ("/classify_runs/batch", {"classifier": {"id": "cl_a"}, "inputs": [{"file": {}}]}),
        (
            "/extract_runs/batch",
            {
                "extractor": {"id": "ex_a"},
                "inputs": [{"file": {"text": "x"}, "metadata": {"k": "v" * 11_000}}],
            },
        ),
        (
            "/extract_runs/batch",
            {"extractor": {"id": "ex_a"}, "inputs": [{"file": {"text": "x"}}], "metadata": {}},
        ),
    ],
    ids=[
        "no-inputs",
        "1001-inputs",
        "wrong-prefix",
        "no-processor",
        "split-text",
        "empty-file",
        "big-metadata",
        "top-metadata",
    ],
)
def test_invalid_batch_requests_get_400(sim, path, body):
    with client(sim) as api:
        response = api.post(path, json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["code"] == "INVALID_REQUEST" and error["retryable"] is False
    assert error["requestId"] == response.headers["x-extend-request-id"]
    assert httpx.get(sim.base_url + "/_sim/batches").json()["batches"] == []


def test_unknown_processor_is_404(make_sim):
    sim = make_sim(allowed_processors={"ex_known"})
    with client(sim) as api:
        response = api.post(
            "/extract_runs/batch", json={"extractor": {"id": "ex_other"}, "inputs": [{"file": {"text": "x"}}]}
        )
        assert response.status_code == 404
        assert response.json()["code"] == "NOT_FOUND" and response.json()["retryable"] is False
        assert api.get("/batch_runs/bpr_missing").status_code == 404
        assert api.get("/extract_runs/exr_missing").json()["code"] == "NOT_FOUND"
        submit(api, "extract", "ex_known", [{"text": "x"}])


def test_auth_headers_and_api_key_changes_at_runtime(make_sim):
    sim = make_sim(api_key="sk_good")
    with httpx.Client(base_url=sim.base_url) as api:
        version = {"x-extend-api-version": "2026-02-09"}
        assert api.get("/extract_runs", headers=version).json()["code"] == "UNAUTHORIZED"
        assert (
            api.get("/extract_runs", headers={**version, "Authorization": "Bearer sk_bad"}).status_code == 401
        )
        assert api.get("/extract_runs", headers={"Authorization": "Bearer sk_good"}).status_code == 400
        good = {**version, "Authorization": "Bearer sk_good"}
        assert api.get("/extract_runs", headers=good).status_code == 200

        # Revoke the key (as if rotated elsewhere), then restore it.
        assert api.post("/_sim/config", json={"api_key": "sk_new"}).json()["api_key"] == "sk_new"
        assert api.get("/extract_runs", headers=good).status_code == 401
        api.post("/_sim/config", json={"api_key": "sk_good"})
        assert api.get("/extract_runs", headers=good).status_code == 200


# -- lifecycle, listing, outputs -----------------------------------------------------------------------


def test_runs_go_pending_processing_processed(make_sim):
    # A second per run: on a busy machine a poll of both runs can take a few hundred milliseconds.
    sim = make_sim(processing_delay=1.0, workers=1)
    with client(sim) as api:
        batch = submit(api, "extract", "ex_a", [{"text": "a: 1"}, {"text": "b: 2"}])
        assert batch["status"] == "PENDING"
        # One worker, 1 s per run: the first run is PROCESSING while the second still waits.
        wait_for(
            lambda: (
                [r["status"] for r in batch_runs(api, "extract", batch["id"])] == ["PROCESSING", "PENDING"]
            )
        )
        assert api.get(f"/batch_runs/{batch['id']}").json()["status"] == "PROCESSING"
        assert wait_batch(api, batch["id"])["status"] == "PROCESSED"
        runs = batch_runs(api, "extract", batch["id"])
        assert [r["status"] for r in runs] == ["PROCESSED", "PROCESSED"]
        assert all(r["updatedAt"] > r["createdAt"] for r in runs)


def test_lower_priority_value_runs_first(make_sim):
    sim = make_sim(processing_delay=0.1, workers=1)
    with client(sim) as api:
        background = submit(api, "extract", "ex_a", [{"text": f"n: {i}"} for i in range(3)])
        urgent = submit(api, "extract", "ex_a", [{"text": "urgent"}], priority=1)
        wait_batch(api, background["id"])
        wait_batch(api, urgent["id"])
        finished = [r["updatedAt"] for r in batch_runs(api, "extract", background["id"])]
        (urgent_run,) = batch_runs(api, "extract", urgent["id"])
    # Only the run already started when the urgent batch arrived may finish before it.
    assert sum(updated < urgent_run["updatedAt"] for updated in finished) <= 1


def test_list_pagination_has_no_gaps_or_repeats_and_no_outputs(sim):
    with client(sim) as api:
        files = [{"text": f"Doc Number: {i}"} for i in range(22)] + [
            {"text": "SIMULATE_FAILURE:INTERNAL_ERROR"}
        ]
        batch = submit(api, "extract", "ex_list", files)
        other = submit(api, "extract", "ex_other", [{"text": "x"}])
        wait_batch(api, batch["id"])
        wait_batch(api, other["id"])

        for sort_dir in ("desc", "asc"):
            seen, token, pages = [], None, 0
            while True:
                params = {"batchId": batch["id"], "maxPageSize": 7, "sortDir": sort_dir}
                page = api.get(
                    "/extract_runs", params={**params, **({"nextPageToken": token} if token else {})}
                ).json()
                assert page["object"] == "list" and len(page["data"]) <= 7
                seen += page["data"]
                pages += 1
                token = page["nextPageToken"]
                if token is None:
                    break
            assert pages == 4
            ids = [run["id"] for run in seen]
            assert len(ids) == len(set(ids)) == 23
            assert set(ids) == set(batch_runs_ids(sim, batch["id"]))
            assert all("output" not in run and "config" not in run for run in seen)
            created = [run["createdAt"] for run in seen]
            assert created == sorted(created, reverse=sort_dir == "desc")

        failed = api.get("/extract_runs", params={"batchId": batch["id"], "status": "FAILED"}).json()["data"]
        assert [(r["failureReason"], r["file"]) for r in failed] == [("INTERNAL_ERROR", None)]
        by_processor = api.get("/extract_runs", params={"extractorId": "ex_other"}).json()["data"]
        assert [r["extractor"]["id"] for r in by_processor] == ["ex_other"]
        assert api.get("/extract_runs", params={"maxPageSize": 0}).status_code == 400
        assert api.get("/extract_runs", params={"maxPageSize": 1001}).status_code == 400
        assert api.get("/extract_runs", params={"nextPageToken": "garbage"}).status_code == 400


def test_outputs_are_deterministic_for_each_type(sim):
    packet = b"INVOICE\nInvoice Number: INV-7\f more invoice\fRECEIPT\nReceipt Number: R-77\n"
    with client(sim) as api:
        uploaded = api.post("/files/upload", files={"file": ("packet.txt", packet, "text/plain")}).json()

        extract = submit(api, "extract", "ex_a", [{"text": INVOICE}, {"text": INVOICE}])
        classify = submit(
            api, "classify", "cl_a", [{"text": INVOICE}, {"text": INVOICE}, {"text": "a bank statement"}]
        )
        split = submit(api, "split", "spl_a", [{"id": uploaded["id"]}, {"id": uploaded["id"]}])
        for batch in (extract, classify, split):
            assert wait_batch(api, batch["id"])["status"] == "PROCESSED"

        ex1, ex2 = batch_runs(api, "extract", extract["id"])
        assert ex1["output"] == ex2["output"]
        assert ex1["output"]["value"] == {"invoice_number": "INV-1042", "total": 1250.5, "date": "2026-11-01"}
        assert 0 <= ex1["output"]["metadata"]["total"]["ocrConfidence"] <= 1
        assert ex1["object"] == "extract_run" and ex1["id"].startswith("exr_")
        assert ex1["config"]["baseProcessor"] and ex1["usage"]["credits"] == 1
        assert ex1["file"]["metadata"]["pageCount"] == 1

        cl1, cl2, cl3 = batch_runs(api, "classify", classify["id"])
        assert cl1["output"] == cl2["output"]
        assert cl1["output"]["type"] == "INVOICE" and 0.5 <= cl1["output"]["confidence"] <= 0.99
        assert cl1["output"]["insights"][0]["type"] == "reasoning"
        assert cl3["output"]["type"] == "BANK_STATEMENT"

        sp1, sp2 = batch_runs(api, "split", split["id"])
        assert sp1["output"] == sp2["output"]
        splits = [(s["type"], s["startPage"], s["endPage"], s["identifier"]) for s in sp1["output"]["splits"]]
        assert splits == [("INVOICE", 1, 2, "INV-7"), ("RECEIPT", 3, 3, "R-77")]
        assert sp1["file"]["id"] == uploaded["id"] and sp1["usage"]["credits"] == 3


def test_simulate_failure_marker_fails_the_run(sim):
    with client(sim) as api:
        batch = submit(
            api, "classify", "cl_a", [{"text": "ok"}, {"text": "x SIMULATE_FAILURE:PARSING_ERROR y"}]
        )
        assert wait_batch(api, batch["id"])["status"] == "PROCESSED"  # finished, even with a failed run
        ok, failed = batch_runs(api, "classify", batch["id"])
        assert ok["status"] == "PROCESSED"
        assert (failed["status"], failed["failureReason"], failed["file"]) == (
            "FAILED",
            "PARSING_ERROR",
            None,
        )
        assert failed["failureMessage"] and "output" not in failed


# -- files ---------------------------------------------------------------------------------------------


def test_urls_are_downloaded_at_processing_time(sim, local):
    local.files["/ok.txt"] = (200, INVOICE.encode())
    local.files["/expired.pdf"] = (403, b"<Error>AccessDenied</Error>")
    with client(sim) as api:
        batch = submit(
            api,
            "extract",
            "ex_a",
            [{"url": local.url + "/ok.txt"}, {"url": local.url + "/expired.pdf", "name": "x.pdf"}],
        )
        wait_batch(api, batch["id"])
        ok, expired = batch_runs(api, "extract", batch["id"])
    assert ok["status"] == "PROCESSED" and ok["output"]["value"]["invoice_number"] == "INV-1042"
    assert ok["file"]["name"] == "ok.txt"
    assert expired["status"] == "FAILED" and expired["failureReason"] == "FAILED_TO_PROCESS_FILE"
    assert "403" in expired["failureMessage"] and expired["file"] is None
    counters = httpx.get(sim.base_url + "/_sim/stats").json()["counters"]
    assert (counters["downloads_ok"], counters["downloads_failed"]) == (1, 1)


def test_upload_then_process_by_id(sim):
    pdf = (
        b"%PDF-1.4\n1 0 obj << /Type /Pages /Count 2 >>\n2 0 obj << /Type /Page >>\n3 0 obj << /Type/Page >>"
    )
    with client(sim) as api:
        uploaded = api.post("/files/upload", files={"file": ("scan.pdf", pdf, "application/pdf")})
        assert uploaded.status_code == 200
        file = uploaded.json()
        assert file["object"] == "file" and file["id"].startswith("file_")
        assert (file["name"], file["type"], file["metadata"]["pageCount"]) == ("scan.pdf", "PDF", 2)
        batch = submit(api, "extract", "ex_a", [{"id": file["id"]}, {"id": "file_unknown"}])
        wait_batch(api, batch["id"])
        known, unknown = batch_runs(api, "extract", batch["id"])
    assert known["status"] == "PROCESSED" and known["file"]["id"] == file["id"]
    assert unknown["failureReason"] == "FAILED_TO_PROCESS_FILE"


# -- limits and request faults -------------------------------------------------------------------------


def test_read_rate_limit_answers_429_with_retry_after(make_sim):
    sim = make_sim(read_rps=2)
    with client(sim) as api:
        responses = [api.get("/extract_runs") for _ in range(6)]
    limited = [r for r in responses if r.status_code == 429]
    assert responses[0].status_code == 200 and len(limited) >= 3
    assert int(limited[0].headers["Retry-After"]) >= 1
    assert limited[0].json()["code"] == "RATE_LIMIT_EXCEEDED" and limited[0].json()["retryable"] is True
    assert httpx.get(sim.base_url + "/_sim/stats").json()["counters"]["rate_limited"] == len(limited)


def test_rate_limit_storm_faults(sim):
    sim.faults.rate_limit_storm_requests = 2
    with client(sim) as api:
        assert [api.get("/extract_runs").status_code for _ in range(3)] == [429, 429, 200]
        sim.faults.rate_limit_storm_until = time.time() + 2
        response = api.get("/extract_runs")
        assert response.status_code == 429 and int(response.headers["Retry-After"]) in (1, 2)


def test_files_per_minute_throttles_processing(make_sim):
    sim = make_sim(files_per_minute=120)  # one file every 0.5 s
    with client(sim) as api:
        started = time.monotonic()
        batch = submit(api, "extract", "ex_a", [{"text": f"n: {i}"} for i in range(4)])
        wait_batch(api, batch["id"])
        elapsed = time.monotonic() - started
    assert 1.4 <= elapsed < 3.5


def test_error_5xx_rate_fault(make_sim):
    sim = make_sim(seed=7)
    with client(sim) as api:
        sim.faults.error_5xx_rate = 1.0
        response = api.get("/extract_runs")
        assert response.status_code == 500
        assert response.json()["code"] == "INTERNAL_ERROR" and response.json()["retryable"] is True
        assert (
            api.post(
                "/extract_runs/batch", json={"extractor": {"id": "ex_a"}, "inputs": [{"file": {"text": "x"}}]}
            ).status_code
            == 500
        )
        httpx.post(sim.base_url + "/_sim/faults", json={"error_5xx_rate": 0.5})
        codes = {api.get("/extract_runs").status_code for _ in range(20)}
        assert codes == {200, 500}
    stats = httpx.get(sim.base_url + "/_sim/stats").json()
    assert stats["requests"]["GET /extract_runs"]["500"] >= 2
    assert httpx.get(sim.base_url + "/_sim/batches").json()["batches"] == []  # a 500 creates nothing


def test_lost_post_response_still_creates_the_batch(sim):
    httpx.post(sim.base_url + "/_sim/faults", json={"lose_post_response": 1})
    body = {"extractor": {"id": "ex_a"}, "inputs": [{"file": {"text": "a: 1"}}]}
    with client(sim) as api:
        with pytest.raises(httpx.TransportError):
            api.post("/extract_runs/batch", json=body)
        (lost,) = httpx.get(sim.base_url + "/_sim/batches").json()["batches"]
        assert lost["responseLost"] is True and lost["inputs"][0]["file"] == {"text": "a: 1"}
        assert wait_batch(api, lost["id"])["status"] == "PROCESSED"
        assert api.post("/extract_runs/batch", json=body).status_code == 200  # only the next one was lost
    assert httpx.get(sim.base_url + "/_sim/stats").json()["counters"]["responses_lost"] == 1


def test_latency_and_reset(sim):
    sim.faults.latency_ms = 200
    with client(sim) as api:
        started = time.monotonic()
        api.get("/extract_runs")
        assert time.monotonic() - started >= 0.2
        submit(api, "extract", "ex_a", [{"text": "x"}])
    assert httpx.post(sim.base_url + "/_sim/reset").json() == {"ok": True}
    assert httpx.get(sim.base_url + "/_sim/faults").json()["latency_ms"] == 0
    assert httpx.get(sim.base_url + "/_sim/batches").json()["batches"] == []
    assert httpx.get(sim.base_url + "/_sim/stats").json()["counters"]["batches"] == 0
    assert httpx.post(sim.base_url + "/_sim/faults", json={"no_such_fault": 1}).status_code == 400


# -- command line --------------------------------------------------------------------------------------


def test_command_line_prints_its_url_and_serves():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "lambdas"), str(REPO_ROOT)])}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.extend_simulator",
            "--port",
            "0",
            "--processors",
            "ex_a,cl_b",
            "--plan",
            "payg",
            "--write-rps",
            "5",
            "--missing-retry-after-share",
            "0.25",
            "--default-sort-by",
            "createdAt",
            "--refuse-processors",
            "ex_gone",
            "--workflow-review-share",
            "0.5",
            "--parse-output-url",
            "--max-file-bytes",
            "1000000",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=base_url, headers=HEADERS, timeout=5) as api:
            assert (
                wait_batch(api, submit(api, "extract", "ex_a", [{"text": "x"}])["id"])["status"]
                == "PROCESSED"
            )
            assert (
                api.post(
                    "/classify_runs/batch",
                    json={"classifier": {"id": "cl_x"}, "inputs": [{"file": {"text": "x"}}]},
                ).status_code
                == 404
            )
        config = httpx.get(base_url + "/_sim/config").json()
        assert config == {
            **config,
            "plan": "custom",
            "files_per_minute": 80,
            "read_rps": 10,
            "write_rps": 5,
            "missing_retry_after_share": 0.25,
            "default_sort_by": "createdAt",
            "allowed_processors": ["cl_b", "ex_a"],
            "refused_processors": ["ex_gone"],
            "workflow_review_share": 0.5,
            "parse_output_url": True,
            "max_file_bytes": 1000000,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=10)
