"""Webhook handling: what is answered, enqueued and remembered for each delivery (design §5 I4, I5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batchdrop_core.extend.signing import signature_headers
from batchdrop_core.webhook import MAX_BODY_BYTES, handle_webhook

EVENTS = Path(__file__).resolve().parents[1] / "events"
SECRET = "wss_test_not_a_real_secret_0000"


class FakeState:
    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.released: list[str] = []

    def claim_event(self, event_id: str) -> bool:
        if event_id in self.seen:
            return False
        self.seen.add(event_id)
        return True

    def release_event(self, event_id: str) -> None:
        self.seen.discard(event_id)
        self.released.append(event_id)


class FakeRuntime:
    """The parts of Runtime the webhook uses: the cached secret, its refresh, dedupe and the queue."""

    def __init__(self, cached_secret: str = SECRET, stored_secret: str = SECRET) -> None:
        self.cached = cached_secret
        self.stored = stored_secret
        self.refreshes = 0
        self.state = FakeState()
        self.enqueued: list[dict[str, Any]] = []
        self.queue_down = False

    def secret_value(self, field_name: str, *, force_fetch: bool = False) -> str:
        return self.cached

    def refreshed_secret_value(self, field_name: str, *, min_interval: float = 30.0) -> str | None:
        self.refreshes += 1
        self.cached = self.stored
        return self.cached

    def request_collection(self, body: dict[str, Any]) -> None:
        if self.queue_down:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
        self.enqueued.append(body)


def event(name: str) -> bytes:
    return (EVENTS / name).read_bytes().rstrip(b"\n")


def deliver(rt: FakeRuntime, body: bytes, secret: str = SECRET, **header_overrides: str) -> Any:
    return handle_webhook(rt, {**signature_headers(secret, body), **header_overrides}, body)


def test_a_batch_event_is_enqueued_once() -> None:
    rt = FakeRuntime()
    body = event("extend-webhook-batch-failed.json")

    first, second = deliver(rt, body), deliver(rt, body)

    assert (first.status, first.body) == (200, {"accepted": True})
    assert (second.status, second.body) == (200, {"duplicate": True})
    assert rt.enqueued == [
        {
            "eventId": "evt_3ZcV8nM1qW6eT5yU",
            "eventType": "batch_processor_run.failed",
            "batchId": "bpr_Lm4nB7vC1xZ9aS2dF6gH",
            "source": "webhook",
        }
    ]


def test_the_signed_data_url_variant_is_enqueued_by_its_batch_id_without_the_url() -> None:
    rt = FakeRuntime()
    payload = {"object": "signed_data_url", "data": "https://x.invalid/p?signature=s3cr3t", "id": "bpr_big"}
    body = json.dumps({"eventId": "evt_u", "eventType": "batch_processor_run.processed", "payload": payload})

    reply = deliver(rt, body.encode())

    assert reply.status == 200
    assert rt.enqueued[0]["batchId"] == "bpr_big"
    assert "signature=" not in json.dumps(rt.enqueued)


def test_other_event_types_are_acknowledged_and_ignored() -> None:
    rt = FakeRuntime()
    reply = deliver(rt, event("extend-webhook-signed-url.json"))
    assert (reply.status, reply.body) == (200, {"ignored": True})
    assert rt.enqueued == [] and rt.state.seen == set()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'{"eventType": "batch_processor_run.processed", "payload": {"id": "bpr_1"}}', 400),
        (b'{"eventId": "e", "eventType": "batch_processor_run.processed", "payload": {}}', 400),
        (b"x" * (MAX_BODY_BYTES + 1), 413),
    ],
)
def test_malformed_bodies_are_refused_without_a_trace(body: bytes, status: int) -> None:
    rt = FakeRuntime()
    reply = deliver(rt, body)
    assert reply.status == status and reply.body["message"]
    assert rt.enqueued == [] and rt.state.seen == set()


def test_a_bad_signature_is_refused_after_one_refresh_of_the_secret() -> None:
    rt = FakeRuntime()
    reply = deliver(rt, event("extend-webhook-batch-processed.json"), secret="wss_someone_else")
    assert (reply.status, reply.body) == (401, {"message": "signature does not match"})
    assert rt.refreshes == 1 and rt.enqueued == [] and rt.state.seen == set()


def test_a_stale_request_is_refused_without_reading_the_secret_again() -> None:
    rt = FakeRuntime()
    body = event("extend-webhook-batch-processed.json")
    reply = handle_webhook(rt, signature_headers(SECRET, body, timestamp=1_000_000), body)
    assert (reply.status, reply.body) == (401, {"message": "timestamp is too old"})
    assert rt.refreshes == 0


def test_a_rotated_secret_is_read_again_and_accepted() -> None:
    rt = FakeRuntime(cached_secret=SECRET, stored_secret="wss_rotated")
    reply = deliver(rt, event("extend-webhook-batch-processed.json"), secret="wss_rotated")
    assert reply.status == 200 and rt.refreshes == 1


def test_an_event_that_cannot_be_enqueued_is_released_for_the_retry() -> None:
    rt = FakeRuntime()
    rt.queue_down = True
    body = event("extend-webhook-batch-processed.json")

    failed = deliver(rt, body)
    rt.queue_down = False
    retried = deliver(rt, body)

    assert failed.status == 500
    assert (retried.status, retried.body) == (200, {"accepted": True})
    assert len(rt.enqueued) == 1
