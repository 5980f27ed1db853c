"""Webhook handling: what is answered, enqueued and remembered for each delivery (design §5 I4, I5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from batchdrop_core.extend.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_headers
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.tracking import EVENT_ACCEPTED, EVENT_PENDING
from batchdrop_core.webhook import CLAIM_PENDING_SECONDS, MAX_BODY_BYTES, handle_webhook

EVENTS = Path(__file__).resolve().parents[1] / "events"
SECRET = "wss_test_not_a_real_secret_0000"


class FakeState:
    """The webhook's State items as StateStore keeps them: a pending claim expires, a confirmed one stays."""

    def __init__(self) -> None:
        self.now = 0.0
        self.claims: dict[str, dict[str, Any]] = {}
        self.released: list[str] = []
        self.confirm_down = False

    @property
    def seen(self) -> set[str]:
        return set(self.claims)

    def claim_event(self, event_id: str, pending_seconds: int) -> str | None:
        held = self.claims.get(event_id)
        if held and held["expiresAt"] >= self.now:
            return None
        token = f"token-{len(self.released)}-{self.now}"
        self.claims[event_id] = {"token": token, "expiresAt": self.now + pending_seconds, "accepted": False}
        return token

    def confirm_event(self, event_id: str, token: str) -> bool:
        if self.confirm_down:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "UpdateItem")
        held = self.claims.get(event_id)
        if not held or held["token"] != token:
            return False
        held.update(accepted=True, expiresAt=self.now + 7 * 24 * 3600)
        return True

    def release_event(self, event_id: str, token: str) -> bool:
        if self.claims.get(event_id, {}).get("token") != token:
            return False
        del self.claims[event_id]
        self.released.append(event_id)
        return True

    def event_state(self, event_id: str) -> str | None:
        held = self.claims.get(event_id)
        if not held or held["expiresAt"] < self.now:
            return None
        return EVENT_ACCEPTED if held["accepted"] else EVENT_PENDING


class FakeRuntime:
    """The parts of Runtime the webhook uses: the cached secret, its refresh, dedupe and the queue."""

    def __init__(self, cached_secret: str = SECRET, stored_secret: str = SECRET) -> None:
        self.cached = cached_secret
        self.stored = stored_secret
        self.refreshes = 0
        self.state = FakeState()
        self.enqueued: list[dict[str, Any]] = []
        self.queue_down = False
        self.queue_slow = False
        self.crash_before_enqueue = False
        self.quick: list[bool] = []

    def secret_value(self, field_name: str, *, force_fetch: bool = False) -> str:
        return self.cached

    def refreshed_secret_value(self, field_name: str, *, min_interval: float = 30.0) -> str | None:
        self.refreshes += 1
        self.cached = self.stored
        return self.cached

    def request_collection(self, request: CollectionRequest, *, quick: bool = False) -> None:
        self.quick.append(quick)
        if self.crash_before_enqueue:
            # The process dies here (a timeout, an out-of-memory kill): nothing after this line runs.
            raise SystemExit("killed between the claim and the enqueue")
        if self.queue_down:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")
        if self.queue_slow:  # what the quick client raises when SQS does not answer within its timeouts
            raise ReadTimeoutError(endpoint_url="https://sqs.invalid")
        self.enqueued.append(json.loads(request.to_body()))  # what the queue would hold


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


def test_a_parse_batch_event_is_enqueued_by_its_batch_id() -> None:
    rt = FakeRuntime()
    payload = {"object": "batch_run", "id": "bpar_1", "status": "PROCESSED", "runCount": 3}
    body = json.dumps({"eventId": "evt_p", "eventType": "batch_parse_run.processed", "payload": payload})

    reply = deliver(rt, body.encode())

    assert reply.status == 200
    assert rt.enqueued == [
        {
            "eventId": "evt_p",
            "eventType": "batch_parse_run.processed",
            "batchId": "bpar_1",
            "source": "webhook",
        }
    ]


@pytest.mark.parametrize(
    "event_type",
    ["workflow_run.completed", "workflow_run.failed", "workflow_run.needs_review", "workflow_run.rejected"],
)
def test_a_workflow_run_event_names_its_run_batch_and_submission(event_type: str) -> None:
    rt = FakeRuntime()
    payload = {
        "object": "workflow_run",
        "id": "workflow_run_9",
        "batchId": "batch_4",
        "status": "PROCESSED",
        "metadata": {"batchdrop": {"submissionId": "sub_1", "fileId": "drop/claims/a.pdf#v1"}, "tenant": "x"},
        "outputs": [{"big": "x" * 1000}],
    }
    body = json.dumps({"eventId": "evt_w", "eventType": event_type, "payload": payload}).encode()

    first, again = deliver(rt, body), deliver(rt, body)

    # One small message per event (the run is read again by the results worker): never the payload
    assert (first.status, again.status, again.body) == (200, 200, {"duplicate": True})
    assert rt.enqueued == [
        {
            "eventId": "evt_w",
            "eventType": event_type,
            "batchId": "batch_4",
            "submissionId": "sub_1",
            "runId": "workflow_run_9",
            "source": "webhook",
        }
    ]


def test_a_workflow_run_event_as_a_signed_url_is_enqueued_from_its_id_and_metadata() -> None:
    rt = FakeRuntime()
    payload = {
        "object": "signed_data_url",
        "data": "https://x.invalid/p?signature=s3cr3t",
        "id": "workflow_run_9",
        "metadata": {"batchdrop": {"submissionId": "sub_1"}},
    }
    body = json.dumps({"eventId": "evt_s", "eventType": "workflow_run.completed", "payload": payload})

    reply = deliver(rt, body.encode())

    assert reply.status == 200
    assert (rt.enqueued[0]["runId"], rt.enqueued[0]["submissionId"]) == ("workflow_run_9", "sub_1")
    assert "signature=" not in json.dumps(rt.enqueued)


def test_a_run_event_without_its_run_or_batch_is_refused() -> None:
    rt = FakeRuntime()
    body = json.dumps(
        {"eventId": "evt_x", "eventType": "workflow_run.completed", "payload": {"id": "workflow_run_1"}}
    )

    reply = deliver(rt, body.encode())

    assert reply.status == 400 and "batchId" in reply.body["message"]
    assert rt.enqueued == [] and rt.state.seen == set()


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


@pytest.mark.parametrize("failure", ["queue_down", "queue_slow"])
def test_an_event_that_cannot_be_enqueued_is_released_for_the_retry(failure: str) -> None:
    # Given SQS refusing the message, or not answering within the quick client's timeouts
    rt = FakeRuntime()
    setattr(rt, failure, True)
    body = event("extend-webhook-batch-processed.json")

    # When Extend delivers the event, and retries after the 500
    failed = deliver(rt, body)
    setattr(rt, failure, False)
    retried = deliver(rt, body)

    # Then the retry is accepted and enqueued, once, through the fail-fast client
    assert failed.status == 500 and rt.state.released == ["evt_7QpL2mX9vB4kR8tN"]
    assert (retried.status, retried.body) == (200, {"accepted": True})
    assert len(rt.enqueued) == 1
    assert rt.quick == [True, True]


def test_a_duplicate_after_a_successful_enqueue_is_answered_200_without_a_second_message() -> None:
    rt = FakeRuntime()
    body = event("extend-webhook-batch-processed.json")
    assert deliver(rt, body).body == {"accepted": True}

    # Long after the pending window, the claim is still a duplicate marker
    rt.state.now += 3600
    again = deliver(rt, body)

    assert (again.status, again.body) == (200, {"duplicate": True})
    assert len(rt.enqueued) == 1


def test_a_crash_between_claim_and_enqueue_does_not_swallow_the_retry() -> None:
    # Given a delivery whose process dies after claiming the event id, before enqueueing it
    rt = FakeRuntime()
    body = event("extend-webhook-batch-processed.json")
    rt.crash_before_enqueue = True
    with pytest.raises(SystemExit):
        deliver(rt, body)
    rt.crash_before_enqueue = False

    # When Extend retries while the dead delivery's claim is pending, and again once it has expired
    early = deliver(rt, body)
    rt.state.now += CLAIM_PENDING_SECONDS + 1
    late = deliver(rt, body)

    # Then the early retry is asked to come back (not a 200, which would drop the event) and the late
    # one is accepted and enqueued
    assert early.status == 409 and "retry" in early.body["message"]
    assert (late.status, late.body) == (200, {"accepted": True})
    assert [e["eventId"] for e in rt.enqueued] == ["evt_7QpL2mX9vB4kR8tN"]


def test_an_event_queued_but_not_confirmed_is_still_accepted() -> None:
    # Given a State table that fails the confirmation after the message was sent
    rt = FakeRuntime()
    rt.state.confirm_down = True
    body = event("extend-webhook-batch-processed.json")

    # Then the event is accepted (it is queued); a retry within the pending window is deferred
    assert deliver(rt, body).body == {"accepted": True}
    assert deliver(rt, body).status == 409
    assert len(rt.enqueued) == 1


@pytest.mark.parametrize(
    "crafted",
    [
        {TIMESTAMP_HEADER: "²"},
        {TIMESTAMP_HEADER: "١٧٦٤٣٢٠٤٠٠"},
        {TIMESTAMP_HEADER: "1" * 13},
        {SIGNATURE_HEADER: "é" * 64},
        {SIGNATURE_HEADER: "٣" * 64},
        {SIGNATURE_HEADER: "A" * 64},
    ],
)
def test_crafted_headers_are_refused_with_401_before_anything_else(crafted: dict[str, str]) -> None:
    rt = FakeRuntime()
    reply = deliver(rt, event("extend-webhook-batch-processed.json"), **crafted)
    assert reply.status == 401 and reply.rejected
    assert rt.refreshes == 0 and rt.enqueued == [] and rt.state.seen == set()


def test_an_overlong_event_id_is_refused() -> None:
    rt = FakeRuntime()
    body = json.dumps(
        {"eventId": "e" * 300, "eventType": "batch_processor_run.processed", "payload": {"id": "bpr_1"}}
    ).encode()
    assert deliver(rt, body).status == 400
    assert rt.state.seen == set()
