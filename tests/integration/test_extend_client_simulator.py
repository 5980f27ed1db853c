"""The Extend client against the simulator over real HTTP, including the simulator's faults."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from batchdrop_core.extend import (
    BatchInput,
    ExtendClient,
    ExtendInputError,
    ExtendOutcomeUnknownError,
    ExtendRejectedError,
    FileRef,
    ProcessorRef,
    RateLimiter,
    RunStatus,
)
from sandbox.extend_sim import ExtendSimulator

KEY = "sk_test_not_a_real_key"


@pytest.fixture
def sim() -> Iterator[ExtendSimulator]:
    with ExtendSimulator(api_key=KEY) as simulator:
        yield simulator


def client_for(sim: ExtendSimulator, **kwargs: object) -> ExtendClient:
    return ExtendClient(KEY, base_url=sim.base_url, backoff_base=0.05, backoff_cap=2.0, **kwargs)


def text_inputs(n: int, tag: str = "t") -> list[BatchInput]:
    return [
        BatchInput(file=FileRef.from_text(f"Invoice Number: {tag}-{i}\nTotal: {i}.00"), metadata={"i": i})
        for i in range(n)
    ]


def wait_processed(client: ExtendClient, batch_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while client.get_batch_run(batch_id).status not in ("PROCESSED", "FAILED"):
        assert time.monotonic() < deadline, "batch did not finish"
        time.sleep(0.05)


def sim_get(sim: ExtendSimulator, path: str) -> dict:
    return httpx.get(f"{sim.base_url}/_sim/{path}", timeout=10).json()


def test_every_endpoint_end_to_end(sim: ExtendSimulator) -> None:
    with client_for(sim) as client:
        # create (each type), get batch, list runs, get run
        for kind, processor in (("extract", "ex_a"), ("classify", "cl_a")):
            batch = client.create_batch(kind, ProcessorRef(id=processor, version="1.0"), text_inputs(3))
            assert batch.id.startswith("bpr_") and batch.run_count == 3
            wait_processed(client, batch.id)
            summaries = list(client.iter_runs(kind, batch_id=batch.id))
            assert len(summaries) == 3 and all(s.status == RunStatus.PROCESSED for s in summaries)
            run = client.get_run(kind, summaries[0].id)
            assert run.output is not None and run.metadata["i"] in (0, 1, 2)
        uploaded = client.upload_file("packet.pdf", b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF")
        assert uploaded.id.startswith("file_")
        split = client.create_batch(
            "split", ProcessorRef(id="spl_a"), [BatchInput(file=FileRef.from_id(uploaded.id))]
        )
        wait_processed(client, split.id)
        [summary] = client.iter_runs("split", batch_id=split.id)
        assert client.get_run("split", summary.id).output["splits"]
        endpoint = client.create_webhook_endpoint("http://127.0.0.1:9/hook", name="batchdrop")
        assert endpoint.signing_secret.startswith("wss_")


def test_pagination_across_three_pages_yields_every_run_once(sim: ExtendSimulator) -> None:
    with client_for(sim) as client:
        batch = client.create_batch("extract", ProcessorRef(id="ex_a"), text_inputs(25))
        wait_processed(client, batch.id)
        runs = list(client.iter_runs("extract", batch_id=batch.id, max_page_size=10))
    assert len(runs) == 25 and len({r.id for r in runs}) == 25
    pages = sim_get(sim, "stats")["requests"]["GET /extract_runs"]["200"]
    assert pages == 3
    assert all(getattr(r, "output", None) is None for r in runs)


def test_429_with_retry_after_is_honoured(sim: ExtendSimulator) -> None:
    sleeps: list[float] = []
    sim.faults.rate_limit_storm_requests = 2
    with client_for(sim, sleep=lambda s: sleeps.append(s)) as client:
        batch = client.create_batch("extract", ProcessorRef(id="ex_a"), text_inputs(1))
        assert client.get_batch_run(batch.id).id == batch.id
    assert sleeps == [1.0, 1.0]  # the simulator's Retry-After, not the client's own backoff
    assert sim_get(sim, "stats")["counters"]["rate_limited"] == 2


def test_reads_retry_on_5xx_until_they_succeed(sim: ExtendSimulator) -> None:
    with client_for(sim) as client:
        batch = client.create_batch("extract", ProcessorRef(id="ex_a"), text_inputs(2))
        sim.faults.error_5xx_rate = 0.5
        for _ in range(10):
            assert client.get_batch_run(batch.id).id == batch.id
        sim.faults.error_5xx_rate = 0.0
        assert client.stats["retries"] > 0


def test_a_lost_post_response_is_outcome_unknown_and_creates_one_batch(sim: ExtendSimulator) -> None:
    sim.faults.lose_post_response = 1
    with client_for(sim) as client, pytest.raises(ExtendOutcomeUnknownError):
        client.create_batch("extract", ProcessorRef(id="ex_a"), text_inputs(4))
    batches = sim_get(sim, "batches")["batches"]
    assert len(batches) == 1 and batches[0]["responseLost"] is True


def test_a_5xx_on_post_is_never_retried(sim: ExtendSimulator) -> None:
    sim.faults.error_5xx_rate = 1.0
    with client_for(sim) as client, pytest.raises(ExtendOutcomeUnknownError):
        client.create_batch("extract", ProcessorRef(id="ex_a"), text_inputs(1))
    assert sim_get(sim, "stats")["requests"]["POST /extract_runs/batch"] == {"500": 1}


def test_rejections_carry_extends_message(sim: ExtendSimulator) -> None:
    sim.configure(allowed_processors=["ex_known"])
    with client_for(sim) as client:
        with pytest.raises(ExtendRejectedError) as error:
            client.create_batch("extract", ProcessorRef(id="ex_unknown"), text_inputs(1))
        assert error.value.status_code == 404 and error.value.is_config_problem
        assert "ex_unknown" in str(error.value)
        with pytest.raises(ExtendInputError):
            client.create_batch("split", ProcessorRef(id="spl_a"), text_inputs(1))
    with (
        ExtendClient("sk_test_wrong", base_url=sim.base_url) as bad,
        pytest.raises(ExtendRejectedError) as error,
    ):
        bad.get_batch_run("bpr_x")
    assert error.value.status_code == 401 and error.value.is_auth_problem


def test_read_limiter_keeps_the_client_under_the_simulators_read_rate(sim: ExtendSimulator) -> None:
    sim.configure(read_rps=20)
    with client_for(sim, read_limiter=RateLimiter(15)) as client:
        batch = client.create_batch("extract", ProcessorRef(id="ex_a"), text_inputs(1))
        started = time.monotonic()
        for _ in range(30):
            client.get_batch_run(batch.id)
        elapsed = time.monotonic() - started
    assert elapsed >= 29 / 15 * 0.95
    assert sim_get(sim, "stats")["counters"].get("rate_limited", 0) == 0


def test_workflow_run_events_come_through_a_subscription_not_the_endpoint(sim: ExtendSimulator) -> None:
    received: list[dict] = []
    from sandbox.apigw import ApiGatewayServer

    def handler(event: dict, context: object) -> dict:
        import json

        received.append(json.loads(event["body"]))
        return {"statusCode": 200, "body": "{}"}

    with ApiGatewayServer(handler) as gateway, client_for(sim) as client:
        url = gateway.url + "/hook"
        # An endpoint refuses workflow run events as its own (Extend's endpoint event types exclude them)
        with pytest.raises(ExtendRejectedError, match="webhook_subscriptions"):
            client.create_webhook_endpoint(url, name="b", enabled_events=["workflow_run.completed"])
        # The default registration is the table's endpoint events; a workflow's runs are subscribed
        endpoint = client.create_webhook_endpoint(url, name="batchdrop")
        subscription = client.create_webhook_subscription(
            endpoint.id, "workflow", "workflow_ours", ["workflow_run.completed", "workflow_run.failed"]
        )
        assert subscription.id.startswith("whs_") and subscription.resource_id == "workflow_ours"
        with pytest.raises(ExtendRejectedError, match="not an event of a workflow"):
            client.create_webhook_subscription(
                endpoint.id, "workflow", "workflow_x", ["extract_run.processed"]
            )

        # When runs of the subscribed workflow and of another one finish
        for workflow in ("workflow_ours", "workflow_other"):
            client.create_batch("workflow", ProcessorRef(id=workflow), text_inputs(2, tag=workflow))
        deadline = time.monotonic() + 20
        while sim_get(sim, "stats")["webhooksPending"] or len(received) < 2:
            assert time.monotonic() < deadline, "no deliveries"
            time.sleep(0.05)

    # Then only the subscribed workflow's run events arrived, one per run
    assert sorted(e["eventType"] for e in received) == ["workflow_run.completed"] * 2
    assert {e["payload"]["workflow"]["id"] for e in received} == {"workflow_ours"}
