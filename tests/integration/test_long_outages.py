"""Long adversity: a blocked route waits quietly and is probed, never churned (moto server and the Extend
simulator over real HTTP; batchdrop's clock is moved on, so days of sweeps take seconds)."""

from __future__ import annotations

import itertools
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest

from batchdrop_core import timeutil
from batchdrop_core.dynamo import from_item, scan_items, serialize
from batchdrop_core.extend.client import ExtendClient
from batchdrop_core.submit import flush_route
from batchdrop_core.sweep import sweep
from batchdrop_core.tracking import FileStatus
from sandbox.aws import Deployment
from sandbox.pipeline import LocalPipeline
from tests.helpers import EXAMPLE_ROUTES, make_settings, sim_batches, upload

GOOD_KEY = "sk_test_not_a_real_key"
SWEEP_SECONDS = 60


class Clock:
    """batchdrop's clock (``timeutil.utc_now``), moved on by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = timeutil.utc_now()
        monkeypatch.setattr(timeutil, "utc_now", lambda: self.now)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def files_items(rt: Any) -> list[dict[str, Any]]:
    return list(scan_items(rt.client("dynamodb"), TableName=rt.resources.files_table))


def item_bytes(item: dict[str, Any]) -> int:
    return len(json.dumps(item, sort_keys=True))


def count_writes(rt: Any, table: str) -> dict[str, int]:
    """Counts every write call the runtime's DynamoDB client makes to ``table``."""
    writes = {"count": 0}

    def on_call(params: dict[str, Any], **kwargs: Any) -> None:
        body = params.get("body")
        body = json.loads(body) if isinstance(body, bytes | str) and body else {}
        named = json.dumps(body.get("RequestItems", {})) + json.dumps(body.get("TransactItems", []))
        if body.get("TableName") == table or table in named:
            writes["count"] += 1

    for operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"):
        rt.client("dynamodb").meta.events.register(f"before-call.dynamodb.{operation}", on_call)
    return writes


@pytest.fixture
def pipeline(deployment: Deployment, extend_sim: Any) -> LocalPipeline:
    # One route and one index shard: each sweep costs the fewest requests to moto
    settings = make_settings(
        extend_sim.base_url, routes=EXAMPLE_ROUTES[:1], maxWaitSeconds=1, queuedIndexShards=1
    )
    return LocalPipeline(settings, deployment, intake_window=0.3)


def set_key(sim: Any, key: str) -> None:
    httpx.post(f"{sim.base_url}/_sim/config", json={"api_key": key}, timeout=5).raise_for_status()


def sim_requests(sim: Any) -> dict[str, dict[str, int]]:
    return httpx.get(f"{sim.base_url}/_sim/stats", timeout=5).json()["requests"]


# 5,000 sweeps cost about 15,000 requests to moto server (three minutes on a busy 2-core machine): the
# full run is marked slow (make test runs it); 300 sweeps reach the 30-minute cap in the fast suite.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("sweeps", [300, pytest.param(5000, marks=pytest.mark.slow)])
def test_a_revoked_key_for_thousands_of_sweeps_writes_no_file_and_probes_once_per_growing_interval(
    pipeline: LocalPipeline,
    deployment: Deployment,
    extend_sim: Any,
    monkeypatch: pytest.MonkeyPatch,
    sweeps: int,
) -> None:
    # Given ten QUEUED files, and a key Extend no longer accepts
    upload(deployment, [f"invoices/outage-{i}.pdf" for i in range(10)])
    pipeline.intake.drain()
    time.sleep(1.1)  # maxWaitSeconds
    set_key(extend_sim, "sk_test_revoked_key")
    rt = pipeline.runtime("submitter")
    clock = Clock(monkeypatch)
    flushes: list[str] = []
    monkeypatch.setattr(rt, "request_flush", lambda route, **kwargs: flushes.append(route))
    probes: list[Any] = []
    real_get_processor = ExtendClient.get_processor

    def recorded(self: ExtendClient, *args: Any, **kwargs: Any) -> Any:
        probes.append(clock.now)
        return real_get_processor(self, *args, **kwargs)

    monkeypatch.setattr(ExtendClient, "get_processor", recorded)

    # When the first flush meets the revoked key, the route is blocked
    outcome = flush_route(rt, "invoices")
    assert outcome.stopped_because == "blocked"
    before = {item_bytes(i) for i in files_items(rt)}
    state_key = {"pk": serialize("ROUTE#invoices")}
    writes = count_writes(rt, rt.resources.files_table)

    # And for thousands of sweeps (one a minute: 5,000 are about 3.5 days) the sweep and each flush it
    # asks for run
    state_sizes = set()
    for sweep_number in range(sweeps):
        clock.advance(SWEEP_SECONDS)
        flushes.clear()
        sweep(rt)
        for route in flushes:
            assert flush_route(rt, route).stopped_because == "blocked"
        if sweep_number >= 100 and sweep_number % 100 == 0:  # the probe interval at its cap
            item = rt.client("dynamodb").get_item(TableName=rt.resources.state_table, Key=state_key)["Item"]
            state_sizes.add(item_bytes(item))

    # Then no Files item was written, and each is the size it was
    assert writes["count"] == 0
    assert {item_bytes(i) for i in files_items(rt)} == before
    assert {from_item(i)["status"] for i in files_items(rt)} == {FileStatus.QUEUED}
    # And the route's own State item did not grow either
    assert len(state_sizes) == 1
    # And Extend saw the one refused POST, then only probes: 1, 2, 4, 8, 16 minutes apart, then 30
    requests = sim_requests(extend_sim)
    posts = sum(sum(codes.values()) for route, codes in requests.items() if route.startswith("POST /extract"))
    assert posts == 1 and sim_batches(extend_sim) == [], requests
    assert requests["GET /extractors/{id}"] == {"401": len(probes)}
    gaps = [(b - a).total_seconds() / 60 for a, b in itertools.pairwise(probes)]
    assert gaps[:6] == [2, 4, 8, 16, 30, 30]  # one sweep after each interval ends
    assert all(gap == 30 for gap in gaps[4:])
    assert len(probes) <= sweeps // 30 + 6

    # When the key is restored, the route resumes at its next probe: within one interval
    set_key(extend_sim, GOOD_KEY)
    monkeypatch.setattr(ExtendClient, "get_processor", real_get_processor)
    for _ in range(31):
        clock.advance(SWEEP_SECONDS)
        flushes.clear()
        sweep(rt)
        if flushes:
            flush_route(rt, "invoices")
            break
    assert [b["runCount"] for b in sim_batches(extend_sim)] == [10]
    assert {from_item(i)["status"] for i in files_items(rt)} == {FileStatus.SUBMITTED}
    state = rt.state.route_state("invoices")
    assert state["blocked"] is False and "probeAt" not in state and "probeSeconds" not in state


def test_a_probe_that_succeeds_resumes_the_route_at_once_and_a_refused_probe_waits_longer(
    pipeline: LocalPipeline, deployment: Deployment, extend_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a route blocked because its processor is gone
    upload(deployment, [f"invoices/gone-{i}.pdf" for i in range(3)])
    pipeline.intake.drain()
    time.sleep(1.1)
    httpx.post(
        f"{extend_sim.base_url}/_sim/config", json={"refused_processors": ["ex_invoices_test"]}, timeout=5
    )
    rt = pipeline.runtime("submitter")
    clock = Clock(monkeypatch)
    assert flush_route(rt, "invoices").stopped_because == "blocked"
    state = rt.state.route_state("invoices")
    assert state["blockedReason"] == "EXTEND_REJECTED" and state["probeSeconds"] == 60

    # When a flush comes before the probe is due, nothing is asked of Extend
    clock.advance(30)
    assert flush_route(rt, "invoices").stopped_because == "blocked"
    assert "GET /extractors/{id}" not in sim_requests(extend_sim)

    # When the probe is due and refused, the next one waits twice as long
    clock.advance(31)
    assert flush_route(rt, "invoices").stopped_because == "blocked"
    assert sim_requests(extend_sim)["GET /extractors/{id}"] == {"404": 1}
    state = rt.state.route_state("invoices")
    assert state["probeSeconds"] == 120
    assert timeutil.age_seconds(state["probeAt"]) == -120

    # When the processor is back and the probe is due, the same flush submits the batch
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"refused_processors": []}, timeout=5)
    clock.advance(120)
    outcome = flush_route(rt, "invoices")
    assert outcome.counts["probe_succeeded"] == 1 and len(outcome.submitted) == 1
    assert [b["runCount"] for b in sim_batches(extend_sim)] == [3]
    assert sim_requests(extend_sim)["GET /extractors/{id}"] == {"404": 1, "200": 1}


def test_throttled_posts_in_a_row_back_the_route_off_at_doubling_intervals_honouring_retry_after(
    pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchdrop_core import routehealth

    rt = pipeline.runtime("submitter")
    route = rt.settings.route("invoices")
    clock = Clock(monkeypatch)
    state: dict[str, Any] = {}
    waits = []
    for retry_after in (15, 5, None, None, None, None, None, 7200):
        until = routehealth.back_off(rt, route, state, retry_after)
        state = rt.state.route_state("invoices")
        waits.append(-timeutil.age_seconds(until))
        assert routehealth.held(state) == "backing_off"
    # The first throttle waits what Extend asked; those in a row after it, a doubling interval at least
    assert waits == [15, 60, 120, 240, 480, 960, 1800, 7200]
    clock.advance(7201)
    assert routehealth.held(state) is None and routehealth.wants_flush(state)
    # And a batch accepted starts the intervals again from the first
    routehealth.accepted(rt, route, state)
    assert "backoffSeconds" not in rt.state.route_state("invoices")
