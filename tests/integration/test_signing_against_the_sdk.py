"""Both sides of the webhook signature, checked against Extend's official SDK (extend-ai): what batchdrop's
signing code produces, and what the simulator sends for every kind of event (processor and parse batches,
workflow runs), verify with the SDK's own verifier. Neither side imports the other, so a mistake in one
cannot hide behind the other."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from extend_ai.wrapper.webhooks import Webhooks

from batchdrop_core.extend.signing import WebhookSignatureError, signature_headers, verify
from sandbox.apigw import ApiGatewayServer
from sandbox.extend_sim import ExtendSimulator

SECRET = "wss_test_not_a_real_secret_0000"
KEY = "sk_test_not_a_real_key"
HEADERS = {"Authorization": f"Bearer {KEY}", "x-extend-api-version": "2026-02-09"}


def test_our_signatures_verify_with_the_sdk_and_its_rules_match_ours() -> None:
    sdk = Webhooks()
    body = json.dumps(
        {"eventId": "evt_1", "eventType": "batch_parse_run.processed", "payload": {"id": "bpar_1"}}
    )

    signed = signature_headers(SECRET, body.encode())

    assert sdk.verify(body, signed, SECRET)
    assert not sdk.verify(body + " ", signed, SECRET)
    assert not sdk.verify(body, signed, SECRET + "x")
    stale = signature_headers(SECRET, body.encode(), int(time.time()) - 301)
    assert not sdk.verify(body, stale, SECRET)
    with pytest.raises(WebhookSignatureError, match="too old"):
        verify(SECRET, stale, body.encode())


def test_every_event_the_simulator_sends_verifies_with_the_sdk() -> None:
    received: list[tuple[dict[str, str], str]] = []

    def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
        received.append((event["headers"], event["body"]))
        return {"statusCode": 200, "body": "{}"}

    with (
        ApiGatewayServer(handler) as gateway,
        ExtendSimulator(api_key=KEY, webhook_url=gateway.url + "/hook", webhook_secret=SECRET) as sim,
    ):
        inputs = [{"file": {"text": "Invoice Number: 1"}}, {"file": {"text": "Claim SIMULATE_REVIEW"}}]
        for path, reference in (
            ("/extract_runs/batch", {"extractor": {"id": "ex_1"}}),
            ("/parse_runs/batch", {}),
            ("/workflow_runs/batch", {"workflow": {"id": "workflow_1"}}),
        ):
            response = httpx.post(sim.base_url + path, json={"inputs": inputs, **reference}, headers=HEADERS)
            assert response.status_code == 200, response.text
        deadline = time.monotonic() + 20
        while len(received) < 4 or httpx.get(f"{sim.base_url}/_sim/stats").json()["webhooksPending"]:
            assert time.monotonic() < deadline, f"only {len(received)} deliveries"
            time.sleep(0.05)

    sdk = Webhooks()
    kinds = set()
    for headers, body in received:
        assert sdk.verify(body, headers, SECRET), body[:200]
        verify(SECRET, headers, body.encode())  # and ours agrees
        kinds.add(json.loads(body)["eventType"])
    assert kinds == {
        "batch_processor_run.processed",
        "batch_parse_run.processed",
        "workflow_run.completed",
        "workflow_run.needs_review",
    }
