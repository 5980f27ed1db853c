"""The simulator enforces an Extend plan: processing throughput across the workspace with batches queued in
submission order, read and write request budgets (429s with and without Retry-After), the list endpoints'
default order, and the backfill figures (/_sim/stats, /_sim/timeline). Over real HTTP on loopback; no
assertion depends on how fast this machine is."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from tests.integration.extend_sim_support import (
    INVOICE,
    batch_runs,
    client,
    counters,
    sim_get,
    sim_post,
    submit,
    wait_batch,
    wait_for,
)
from tests.integration.extend_sim_support import local as local
from tests.integration.extend_sim_support import make_sim as make_sim
from tests.integration.extend_sim_support import sim as sim


def pause(sim, paused: bool = True) -> None:
    assert sim_post(sim, "/_sim/config", {"paused": paused}).json()["paused"] is paused


def sim_batch(sim, batch_id: str) -> dict:
    return next(b for b in sim_get(sim, "/_sim/batches")["batches"] if b["id"] == batch_id)


def presigned(url: str, expires_in: int) -> str:
    """A URL shaped like an S3 SigV4 presigned URL signed now."""
    signed = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    query = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={signed}&X-Amz-Expires={expires_in}"
    return f"{url}?{query}&X-Amz-Signature=0"


# -- plans and settings --------------------------------------------------------------------------------


def test_plan_sets_the_limits_and_defaults_are_unlimited(make_sim):
    config = sim_get(make_sim(), "/_sim/config")
    assert (config["plan"], config["files_per_minute"], config["read_rps"], config["write_rps"]) == (
        "unlimited",
        0,
        0,
        0,
    )
    assert config["default_sort_by"] == "updatedAt" and config["paused"] is False

    payg = make_sim(plan="payg", write_rps=5)
    config = sim_get(payg, "/_sim/config")
    assert (config["plan"], config["files_per_minute"], config["read_rps"], config["write_rps"]) == (
        "custom",
        80,
        10,
        5,
    )
    config = sim_post(payg, "/_sim/config", {"plan": "scale"}).json()
    assert (config["plan"], config["files_per_minute"], config["read_rps"], config["write_rps"]) == (
        "scale",
        120,
        25,
        25,
    )
    assert sim_post(payg, "/_sim/config", {"plan": "payg"}).json()["plan"] == "payg"
    for bad in ({"plan": "gold"}, {"read_rps": -1}, {"missing_retry_after_share": 2}, {"paused": "yes"}):
        assert sim_post(payg, "/_sim/config", bad).status_code == 400
    assert sim_get(payg, "/_sim/config")["plan"] == "payg"  # a refused change changes nothing


# -- throughput across the workspace, queue order, URLs expiring in the queue ------------------------


def test_batches_of_every_kind_queue_behind_each_other_in_submission_order(make_sim):
    sim = make_sim(workers=1)
    pause(sim)
    with client(sim) as api:
        first = submit(api, "extract", "ex_a", [{"text": f"n: {i}"} for i in range(3)])
        second = submit(api, "classify", "cl_a", [{"text": "invoice"}, {"text": "receipt"}])
        third = submit(api, "parse", None, [{"text": "# Title\nbody"}])
        # Nothing starts while processing is paused; the queue holds all six files.
        assert [r["status"] for r in batch_runs(api, "extract", first["id"])] == ["PENDING"] * 3
        pause(sim, False)
        for batch in (first, second, third):
            assert wait_batch(api, batch["id"])["status"] == "PROCESSED"
    orders = [sim_batch(sim, b["id"])["runStartOrder"] for b in (first, second, third)]
    assert orders == [[0, 1, 2], [3, 4], [5]]


def test_a_presigned_url_that_expires_while_its_batch_waits_fails_that_run(make_sim, local):
    local.files["/early.txt"] = (200, INVOICE.encode())
    local.files["/late.txt"] = (200, INVOICE.encode())
    local.expires["/late.txt"] = time.time() + 1  # like S3: refused once the presigned URL has expired
    late_url = presigned(local.url + "/late.txt", expires_in=1)
    sim = make_sim(workers=1)
    pause(sim)
    with client(sim) as api:
        early = submit(api, "extract", "ex_a", [{"url": local.url + "/early.txt"}])
        late = submit(api, "extract", "ex_a", [{"url": late_url}])
        parse = submit(api, "parse", None, [{"url": late_url}])
        wait_for(lambda: time.time() > local.expires["/late.txt"] + 0.1, timeout=10)
        pause(sim, False)
        for batch in (early, late, parse):
            wait_batch(api, batch["id"])
        (ok,) = batch_runs(api, "extract", early["id"])
        (expired,) = batch_runs(api, "extract", late["id"])
        (parse_run,) = batch_runs(api, "parse", parse["id"])
    assert ok["status"] == "PROCESSED"
    assert (expired["status"], expired["failureReason"], expired["file"]) == (
        "FAILED",
        "FAILED_TO_PROCESS_FILE",
        None,
    )
    assert expired["failureMessage"].startswith("Could not download file")
    assert (parse_run["status"], parse_run["failureReason"]) == ("FAILED", "UNABLE_TO_DOWNLOAD_FILE")
    assert counters(sim)["downloads_url_expired"] == 2
    assert sim_get(sim, "/_sim/stats")["backfill"]["downloadFailures"] == {"urlExpired": 2, "other": 0}


# -- request budgets -----------------------------------------------------------------------------------


def test_writes_have_their_own_budget_and_429s_say_when_to_retry(make_sim):
    sim = make_sim(write_rps=0.5)  # one token, then one more every 2 s
    body = {"extractor": {"id": "ex_a"}, "inputs": [{"file": {"text": "a: 1"}}]}
    with client(sim) as api:
        responses = [api.post("/extract_runs/batch", json=body) for _ in range(4)]
        upload = api.post("/files/upload", files={"file": ("a.txt", b"a: 1", "text/plain")})
        assert api.get("/extract_runs").status_code == 200  # reads are not spent by writes
    limited = [r for r in [*responses, upload] if r.status_code == 429]
    assert responses[0].status_code == 200 and upload.status_code == 429 and len(limited) >= 3
    for response in limited:
        error = response.json()
        assert (error["code"], error["retryable"]) == ("RATE_LIMIT_EXCEEDED", True)
        assert error["requestId"].startswith("req_")
        assert int(response.headers["Retry-After"]) >= 1
        # x-ratelimit-reset is the Unix time (seconds) when the budget allows the request again.
        assert int(response.headers["x-ratelimit-reset"]) >= int(time.time()) - 1
    created = sum(r.status_code == 200 for r in responses)
    assert len(sim_get(sim, "/_sim/batches")["batches"]) == created  # a 429 creates nothing
    stats = sim_get(sim, "/_sim/stats")
    assert stats["backfill"]["rateLimited"] == {
        "read": {"withRetryAfter": 0, "withoutRetryAfter": 0},
        "write": {"withRetryAfter": len(limited), "withoutRetryAfter": 0},
    }
    assert (stats["counters"]["rate_limited_write"], stats["counters"]["rate_limited_read"]) == (
        len(limited),
        0,
    )


def test_a_share_of_429s_comes_without_retry_after(make_sim):
    sim = make_sim(read_rps=0.5, missing_retry_after_share=1.0)
    with client(sim) as api:
        assert api.get("/extract_runs").status_code == 200
        bare = api.get("/extract_runs")
        assert bare.status_code == 429 and "Retry-After" not in bare.headers
        reset = int(bare.headers["x-ratelimit-reset"])
        assert time.time() - 1 <= reset <= time.time() + 10  # epoch seconds, not a delay
        sim_post(sim, "/_sim/config", {"missing_retry_after_share": 0})
        with_header = api.get("/extract_runs")
        assert with_header.status_code == 429 and int(with_header.headers["Retry-After"]) >= 1
    stats = sim_get(sim, "/_sim/stats")
    assert stats["backfill"]["rateLimited"]["read"] == {"withRetryAfter": 1, "withoutRetryAfter": 1}
    assert stats["counters"]["rate_limited_without_retry_after"] == 1


def test_half_of_the_429s_without_retry_after(make_sim):
    sim = make_sim(read_rps=0.1, missing_retry_after_share=0.5, seed=3)
    with client(sim) as api:
        answers = [api.get("/extract_runs") for _ in range(30)]
    limited = [r for r in answers if r.status_code == 429]
    with_header = sum("Retry-After" in r.headers for r in limited)
    assert 0 < with_header < len(limited)
    assert all("x-ratelimit-reset" in r.headers for r in limited)


# -- list order ----------------------------------------------------------------------------------------


def test_lists_default_to_updated_at_unless_sort_by_is_passed(make_sim):
    sim = make_sim(workers=1)
    pause(sim)
    with client(sim) as api:
        older = submit(api, "extract", "ex_a", [{"text": "a: 1"}, {"text": "a: 2"}])
        newer = submit(api, "extract", "ex_a", [{"text": "b: 1"}], priority=1)  # processed first
        pause(sim, False)
        wait_batch(api, older["id"])
        wait_batch(api, newer["id"])
        a1, a2 = (r["id"] for r in batch_runs(api, "extract", older["id"]))
        (b1,) = (r["id"] for r in batch_runs(api, "extract", newer["id"]))

        def listed(**params: str) -> list[str]:
            return [r["id"] for r in api.get("/extract_runs", params=params).json()["data"]]

        assert listed() == [a2, a1, b1]  # updatedAt, newest first: b1 finished first
        assert listed(sortBy="updatedAt", sortDir="asc") == [b1, a1, a2]
        assert listed(sortBy="createdAt") == [b1, a2, a1]
        sim_post(sim, "/_sim/config", {"default_sort_by": "createdAt"})
        assert listed() == [b1, a2, a1]


# -- backfill figures ----------------------------------------------------------------------------------


def test_backfill_stats_and_timeline(make_sim):
    sim = make_sim(workers=1)
    pause(sim)
    with client(sim) as api:
        first = submit(api, "extract", "ex_a", [{"text": f"n: {i}"} for i in range(3)])
        second = submit(
            api, "split", "spl_a", [{"url": "http://127.0.0.1:9/a.pdf"}, {"url": "http://127.0.0.1:9/b.pdf"}]
        )
        backfill = sim_get(sim, "/_sim/stats")["backfill"]
        assert (backfill["outstanding"], backfill["maxOutstanding"], backfill["filesAccepted"]) == (5, 5, 5)
        assert backfill["lastTerminalAt"] is None and backfill["spanSeconds"] is None
        pause(sim, False)
        wait_batch(api, first["id"])
        wait_batch(api, second["id"])
    backfill = sim_get(sim, "/_sim/stats")["backfill"]
    assert (backfill["outstanding"], backfill["maxOutstanding"], backfill["filesFinished"]) == (0, 5, 5)
    assert backfill["batches"] == {
        "count": 2,
        "foreign": 0,
        "byType": {"extract": 1, "split": 1},
        "sizes": [3, 2],
        "minSize": 2,
        "maxSize": 3,
        "meanSize": 2.5,
    }
    assert backfill["firstAcceptedAt"] <= backfill["maxOutstandingAt"] <= backfill["lastTerminalAt"]
    assert backfill["spanSeconds"] >= 0
    assert backfill["downloadFailures"] == {"urlExpired": 0, "other": 2}

    timeline = sim_get(sim, "/_sim/timeline")
    points = timeline["points"]
    assert timeline["intervalSeconds"] == 1 and points
    assert [p["t"] for p in points] == list(range(points[0]["t"], points[0]["t"] + len(points)))
    assert max(p["outstanding"] for p in points) == 5
    assert sum(p["accepted"] for p in points) == 5 and sum(p["finished"] for p in points) == 5
    later = sim_get(sim, f"/_sim/timeline?since={points[-1]['t']}")["points"]
    assert later and later[0]["t"] == points[-1]["t"]
    assert httpx.get(sim.base_url + "/_sim/timeline?since=soon").status_code == 400


def test_reset_clears_the_backfill_figures(sim):
    with client(sim) as api:
        wait_batch(api, submit(api, "extract", "ex_a", [{"text": "a: 1"}])["id"])
    assert sim_get(sim, "/_sim/stats")["backfill"]["filesAccepted"] == 1
    sim_post(sim, "/_sim/reset", {})
    backfill = sim_get(sim, "/_sim/stats")["backfill"]
    assert (backfill["filesAccepted"], backfill["maxOutstanding"], backfill["batches"]["count"]) == (0, 0, 0)
    assert sim_get(sim, "/_sim/timeline")["points"] == []


def test_a_batch_is_outstanding_as_a_whole_even_when_its_runs_finish_at_once(sim):
    # The whole batch is counted before any run can start, so no run finishes before it was accepted.
    with client(sim) as api:
        for _ in range(3):
            wait_batch(api, submit(api, "extract", "ex_a", [{"text": f"n: {i}"} for i in range(50)])["id"])
    backfill = sim_get(sim, "/_sim/stats")["backfill"]
    assert backfill["maxOutstanding"] == 50 and backfill["outstanding"] == 0
    assert min(p["outstanding"] for p in sim_get(sim, "/_sim/timeline")["points"]) >= 0
