"""Faults for long adversity, switched at run time through /_sim: file names Extend refuses, batches
nobody here submitted, a lost POST whose batch shows up late, a revoked key and a vanished processor."""

from __future__ import annotations

import httpx
import pytest

from sandbox.extend_sim.webhooks import sign
from tests.integration.extend_sim_support import (
    SECRET,
    batch_runs,
    client,
    counters,
    events,
    sim_get,
    sim_post,
    wait_batch,
    wait_for,
)
from tests.integration.extend_sim_support import local as local
from tests.integration.extend_sim_support import make_sim as make_sim
from tests.integration.extend_sim_support import sim as sim

# -- refused file names --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/extract_runs/batch", {"extractor": {"id": "ex_a"}}),
        ("/parse_runs/batch", {}),
        ("/workflow_runs/batch", {"workflow": {"id": "workflow_a"}}),
    ],
    ids=["extract", "parse", "workflow"],
)
def test_a_batch_with_a_refused_file_name_gets_400_naming_the_input(sim, path, body):
    assert sim_post(sim, "/_sim/faults", {"refuse_file_names": r"(^|/)secret[^/]*\.pdf$"}).status_code == 200
    inputs = [
        {"file": {"url": "http://127.0.0.1:9/ok.pdf?X-Amz-Signature=1"}},
        {"file": {"url": "http://127.0.0.1:9/docs/secret%20plan.pdf?X-Amz-Signature=2"}},
    ]
    with client(sim) as api:
        refused = api.post(path, json={**body, "inputs": inputs})
        assert refused.status_code == 400
        error = refused.json()
        assert (error["code"], error["retryable"]) == ("INVALID_REQUEST", False)
        assert error["message"].endswith("; Path: inputs[1].file.url")
        assert "secret plan.pdf" in error["message"]
        assert error["requestId"] == refused.headers["x-extend-request-id"]
        assert sim_get(sim, "/_sim/batches")["batches"] == []

        # The name field counts too, and wins over the URL's object name.
        named = [{"file": {"url": "http://127.0.0.1:9/x.pdf", "name": "secret.pdf"}}]
        assert (
            api.post(path, json={**body, "inputs": named})
            .json()["message"]
            .endswith("; Path: inputs[0].file.name")
        )
        renamed = [{"file": {"url": "http://127.0.0.1:9/secret.pdf", "name": "public.pdf"}}]
        assert api.post(path, json={**body, "inputs": renamed}).status_code == 200

        sim_post(sim, "/_sim/faults", {"refuse_file_names": ""})
        assert api.post(path, json={**body, "inputs": inputs}).status_code == 200
    assert counters(sim)["batches_refused"] == 2


def test_an_upload_with_a_refused_file_name_gets_400(sim):
    sim_post(sim, "/_sim/faults", {"refuse_file_names": r"\.exe$"})
    with client(sim) as api:
        refused = api.post("/files/upload", files={"file": ("setup.exe", b"MZ", "application/octet-stream")})
        assert refused.status_code == 400
        assert refused.json()["code"] == "INVALID_REQUEST"
        assert refused.json()["message"].endswith("; Path: file")
        assert (
            api.post("/files/upload", files={"file": ("notes.txt", b"hi", "text/plain")}).status_code == 200
        )
    assert counters(sim)["uploads_refused"] == 1
    assert sim_post(sim, "/_sim/faults", {"refuse_file_names": "("}).status_code == 400  # not a regex


# -- foreign batches -----------------------------------------------------------------------------------


def test_foreign_batches_are_processed_and_announced_like_real_ones(make_sim, local):
    sim = make_sim(webhook_url=local.url, webhook_secret=SECRET)
    plain = sim_post(sim, "/_sim/foreign_batches", {"runs": 2}).json()["batchIds"]
    other_tool = {"ingest-bot": {"jobId": "job-7"}}
    tagged = sim_post(
        sim,
        "/_sim/foreign_batches",
        {"type": "classify", "batches": 2, "metadata": other_tool, "priority": 5},
    ).json()["batchIds"]
    assert len(plain) == 1 and len(tagged) == 2

    posts = local.wait_posts(3)
    for headers, body in posts:  # signed like every other delivery
        assert headers["x-extend-request-signature"] == sign(
            SECRET, headers["x-extend-request-timestamp"], body
        )
    announced = {e["payload"]["id"]: e["eventType"] for e in events(posts)}
    assert announced == dict.fromkeys([*plain, *tagged], "batch_processor_run.processed")

    with client(sim) as api:
        assert wait_batch(api, plain[0])["runCount"] == 2
        runs = api.get("/extract_runs", params={"batchId": plain[0]}).json()["data"]
        assert [r["metadata"] for r in runs] == [{}, {}]  # no batchdrop metadata at all
        (tagged_run,) = batch_runs(api, "classify", tagged[0])
        assert tagged_run["metadata"] == other_tool and tagged_run["classifier"]["id"] == "cl_foreign"
    listed = sim_get(sim, "/_sim/batches")["batches"]
    assert [b["foreign"] for b in listed] == [True, True, True]
    assert sim_get(sim, "/_sim/stats")["backfill"]["batches"]["foreign"] == 3
    assert counters(sim)["foreign_batches"] == 3


def test_foreign_batches_of_other_kinds_and_bad_requests(sim):
    (parse_batch,) = sim_post(sim, "/_sim/foreign_batches", {"type": "parse"}).json()["batchIds"]
    (split_batch,) = sim_post(sim, "/_sim/foreign_batches", {"type": "split"}).json()["batchIds"]
    (workflow_batch,) = sim_post(
        sim, "/_sim/foreign_batches", {"type": "workflow", "processorId": "workflow_theirs"}
    ).json()["batchIds"]
    assert parse_batch.startswith("bpar_") and workflow_batch.startswith("batch_")
    with client(sim) as api:
        assert wait_batch(api, parse_batch)["status"] == "PROCESSED"
        assert wait_batch(api, split_batch)["status"] == "PROCESSED"
        (run,) = wait_for(
            lambda: [
                r
                for r in api.get("/workflow_runs", params={"batchId": workflow_batch}).json()["data"]
                if r["status"] == "PROCESSED"
            ]
        )
        assert run["workflow"]["id"] == "workflow_theirs"
    for bad in ({"type": "edit"}, {"runs": 0}, {"metadata": "x"}, {"colour": "red"}):
        assert sim_post(sim, "/_sim/foreign_batches", bad).status_code == 400


# -- a lost POST whose batch appears late --------------------------------------------------------------


def test_a_lost_post_response_with_a_batch_that_appears_late(sim):
    sim_post(sim, "/_sim/faults", {"lose_post_response": 1, "lost_batch_delay_seconds": 2.0})
    body = {"extractor": {"id": "ex_a"}, "inputs": [{"file": {"text": "a: 1"}, "metadata": {"k": "v"}}]}
    with client(sim) as api:
        with pytest.raises(httpx.TransportError):
            api.post("/extract_runs/batch", json=body)
        (hidden,) = sim_get(sim, "/_sim/batches")["batches"]
        assert hidden["responseLost"] is True
        if not hidden["visible"]:  # checked within the delay (a very slow machine may be past it)
            assert api.get(f"/batch_runs/{hidden['id']}").status_code == 404
            assert api.get("/extract_runs", params={"batchId": hidden["id"]}).json()["data"] == []
            assert api.get(f"/extract_runs/{hidden['runIds'][0]}").status_code == 404
            assert hidden["runStatuses"] == {"PENDING": 1}
        # Later the batch, and its runs in the lists, are there and it is processed.
        assert wait_for(lambda: api.get(f"/batch_runs/{hidden['id']}").status_code == 200, timeout=10)
        assert wait_batch(api, hidden["id"])["status"] == "PROCESSED"
        (run,) = api.get("/extract_runs", params={"batchId": hidden["id"]}).json()["data"]
        assert run["metadata"] == {"k": "v"}
        assert api.post("/extract_runs/batch", json=body).status_code == 200  # only one response lost
    assert sim_get(sim, "/_sim/batches")["batches"][0]["visible"] is True


# -- revoked key, refused processor --------------------------------------------------------------------


def test_a_processor_or_workflow_can_be_refused_at_run_time(sim):
    def post(api: httpx.Client, path: str, key: str, processor_id: str) -> httpx.Response:
        return api.post(path, json={key: {"id": processor_id}, "inputs": [{"file": {"text": "x"}}]})

    with client(sim) as api:
        config = sim_post(sim, "/_sim/config", {"refused_processors": ["ex_gone", "workflow_gone"]}).json()
        assert config["refused_processors"] == ["ex_gone", "workflow_gone"]
        gone = post(api, "/extract_runs/batch", "extractor", "ex_gone")
        assert gone.status_code == 404
        assert gone.json()["code"] == "NOT_FOUND" and "ex_gone" in gone.json()["message"]
        assert post(api, "/workflow_runs/batch", "workflow", "workflow_gone").status_code == 404
        assert post(api, "/extract_runs/batch", "extractor", "ex_here").status_code == 200
        sim_post(sim, "/_sim/config", {"refused_processors": []})
        assert post(api, "/extract_runs/batch", "extractor", "ex_gone").status_code == 200


def test_the_api_key_can_be_revoked_and_restored(make_sim):
    sim = make_sim(api_key="sk_test")  # the key tests send
    with client(sim) as api:
        assert api.get("/extract_runs").status_code == 200
        sim_post(sim, "/_sim/config", {"api_key": "sk_rotated_elsewhere"})
        revoked = api.post("/extract_runs/batch", json={"extractor": {"id": "ex_a"}, "inputs": []})
        assert revoked.status_code == 401 and revoked.json()["code"] == "UNAUTHORIZED"
        sim_post(sim, "/_sim/config", {"api_key": "sk_test"})
        assert api.get("/extract_runs").status_code == 200
    assert sim_get(sim, "/_sim/config")["api_key"] == "sk_test"
