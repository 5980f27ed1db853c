"""The webhook endpoint and everything that completes a batch without one, over real HTTP: the simulator
delivers signed webhooks to a local API Gateway in front of the real handler (design §5 I3, I4, I5)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from datetime import timedelta
from fnmatch import fnmatchcase
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from batchdrop_core import timeutil
from batchdrop_core.extend.signing import signature_headers
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.runtime import Runtime
from batchdrop_core.tables import STATE_LEADING_KEYS, STATE_ROUTES_KEY
from batchdrop_core.tracking import BatchState, BatchStore, FileStatus
from batchdrop_core.tracking import state as state_store
from batchdrop_core.webhook import CLAIM_PENDING_SECONDS
from sandbox.apigw import proxy_event
from sandbox.aws import Deployment, subscribe_queue_to_topic
from sandbox.lambda_runtime import LambdaContext
from sandbox.local import WEBHOOK_PATH as PATH
from sandbox.pipeline import LocalPipeline
from tests.helpers import (
    TEST_WEBHOOK_SECRET,
    all_files,
    assert_bucket_and_table_agree,
    deliveries,
    notifications,
    sim_batches,
    submissions,
    upload,
    wait_until_finished,
)

SECRET = TEST_WEBHOOK_SECRET  # what the deployment fixture stores in Secrets Manager


def post(env: SimpleNamespace, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(env.gateway.url + PATH, content=body, headers=headers, timeout=10)


def event_body(
    event_id: str, batch_id: str = "bpr_test", event_type: str = "batch_processor_run.processed"
) -> bytes:
    payload = {"object": "batch_run", "id": batch_id, "status": "PROCESSED", "runCount": 1}
    return json.dumps({"eventId": event_id, "eventType": event_type, "payload": payload}).encode()


def queued_requests(deployment: Deployment) -> list[dict[str, Any]]:
    sqs = deployment.session.client("sqs")
    found = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=deployment.resources.results_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
        ).get("Messages", [])
        if not messages:
            return found
        found += [json.loads(m["Body"]) for m in messages]


def state_items(deployment: Deployment) -> list[dict[str, Any]]:
    """The webhook deliveries recorded in the State table (the table also holds the pipeline's ledger)."""
    client = deployment.session.client("dynamodb")
    items = client.scan(TableName=deployment.resources.state_table, ConsistentRead=True)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("WEBHOOK#")]


# -- the endpoint ---------------------------------------------------------------------------------------


def test_forged_stale_and_malformed_webhooks_change_nothing(
    env: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the endpoint, and requests an attacker or a broken sender could make
    env.build()
    body = event_body("evt_forged")
    now = int(time.time())
    cases = [
        ("no signature", body, {}, HTTPStatus.UNAUTHORIZED, "missing"),
        ("wrong secret", body, signature_headers("wss_attacker", body), HTTPStatus.UNAUTHORIZED, "match"),
        ("tampered", body + b" ", signature_headers(SECRET, body), HTTPStatus.UNAUTHORIZED, "match"),
        ("stale", body, signature_headers(SECRET, body, now - 301), HTTPStatus.UNAUTHORIZED, "old"),
        ("future", body, signature_headers(SECRET, body, now + 120), HTTPStatus.UNAUTHORIZED, "future"),
        ("not JSON", b"{nope", signature_headers(SECRET, b"{nope"), HTTPStatus.BAD_REQUEST, "JSON"),
        (
            "no eventId",
            b'{"eventType": "x"}',
            signature_headers(SECRET, b'{"eventType": "x"}'),
            400,
            "eventId",
        ),
        ("oversized", b"x" * 300_000, signature_headers(SECRET, b"x" * 300_000), 413, "larger"),
    ]

    # When each is posted
    for name, content, headers, status, reason in cases:
        response = post(env, content, {"content-type": "application/json", **headers})

        # Then it is refused with a short reason
        assert response.status_code == status, name
        assert reason in response.json()["message"], name

    # And nothing was recorded or enqueued, and no secret reached the logs
    assert state_items(env.deployment) == []
    assert queued_requests(env.deployment) == []
    logged = capsys.readouterr()
    assert SECRET not in logged.out + logged.err


def test_valid_events_are_enqueued_once_and_other_events_ignored(env: SimpleNamespace) -> None:
    pipeline = env.build()
    signed = {"content-type": "application/json"}

    # When a batch event arrives twice, another event type once, and a batch event base64-encoded
    body = event_body("evt_1", "bpr_one")
    first = post(env, body, {**signed, **signature_headers(SECRET, body)})
    again = post(env, body, {**signed, **signature_headers(SECRET, body)})
    other = event_body("evt_2", "exr_x", event_type="extract_run.processed")
    ignored = post(env, other, {**signed, **signature_headers(SECRET, other)})
    encoded = event_body("evt_3", "bpr_two", event_type="batch_processor_run.failed")
    event = proxy_event("POST", PATH, signature_headers(SECRET, encoded), encoded, base64=True)
    direct = pipeline.modules["webhook"].lambda_handler(event, LambdaContext("batchdrop-webhook", 10))

    # Then each answer says what happened, and each batch event is enqueued exactly once
    assert (first.status_code, first.json()) == (200, {"accepted": True})
    assert (again.status_code, again.json()) == (200, {"duplicate": True})
    assert (ignored.status_code, ignored.json()) == (200, {"ignored": True})
    assert (direct["statusCode"], json.loads(direct["body"])) == (200, {"accepted": True})
    requests = sorted(queued_requests(env.deployment), key=lambda r: r["eventId"])
    assert requests == [
        {
            "batchId": "bpr_one",
            "eventId": "evt_1",
            "eventType": "batch_processor_run.processed",
            "source": "webhook",
        },
        {
            "batchId": "bpr_two",
            "eventId": "evt_3",
            "eventType": "batch_processor_run.failed",
            "source": "webhook",
        },
    ]


def test_a_rotated_signing_secret_is_picked_up_and_the_old_one_refused(env: SimpleNamespace) -> None:
    # Given a webhook function that has cached the current secret
    env.build()
    body = event_body("evt_a")
    assert post(env, body, signature_headers(SECRET, body)).status_code == 200

    # When the secret is rotated (the endpoint re-created) and Extend signs with the new one
    rotated = "wss_test_rotated_secret_1111"
    env.deployment.session.client("secretsmanager").put_secret_value(
        SecretId=env.deployment.resources.webhook_secret, SecretString=rotated
    )
    body = event_body("evt_b")
    new = post(env, body, signature_headers(rotated, body))
    body = event_body("evt_c")
    old = post(env, body, signature_headers(SECRET, body))

    # Then the new secret is accepted at once and the old one refused
    assert new.status_code == 200
    assert old.status_code == 401


def test_an_event_that_cannot_be_enqueued_is_answered_500_and_accepted_on_retry(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    env.build()
    body = event_body("evt_retry")

    def unavailable(self: Runtime, body: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessage")

    monkeypatch.setattr(Runtime, "request_collection", unavailable)
    assert post(env, body, signature_headers(SECRET, body)).status_code == 500
    monkeypatch.undo()

    # The event id was released, so Extend's retry is not mistaken for a duplicate
    retry = post(env, body, signature_headers(SECRET, body))
    assert (retry.status_code, retry.json()) == (200, {"accepted": True})
    assert [r["eventId"] for r in queued_requests(env.deployment)] == ["evt_retry"]


class BlackHole:
    """A TCP endpoint that accepts connections and never answers: SQS hanging mid-request."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, name="black-hole", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._server.close()
        for connection in self.connections:
            connection.close()


def test_an_enqueue_that_hangs_gives_up_within_the_function_and_the_retry_is_accepted(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an SQS endpoint that accepts the connection and never answers (set after the pipeline's own
    # pollers were built: only the webhook's client, created on its first request, goes there)
    env.build()
    hole = BlackHole()
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", hole.url)
    body = event_body("evt_hang")
    try:
        # When Extend delivers an event
        hung = post(env, body, signature_headers(SECRET, body))
    finally:
        hole.close()
        monkeypatch.delenv("AWS_ENDPOINT_URL_SQS")

    # Then the webhook gave up after its quick client's two attempts (not botocore's default five, each
    # allowed 60 s) and answered 500, its claim released
    assert hung.status_code == 500
    assert len(hole.connections) == 2
    assert state_items(env.deployment) == []

    # And Extend's retry, once SQS answers again, is accepted and enqueued once
    env.build()
    retry = post(env, body, signature_headers(SECRET, body))
    assert (retry.status_code, retry.json()) == (200, {"accepted": True})
    assert [r["eventId"] for r in queued_requests(env.deployment)] == ["evt_hang"]


def test_a_delivery_that_dies_between_claim_and_enqueue_does_not_swallow_the_retry(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a delivery that dies after claiming the event id, before enqueueing it (as a function killed
    # by its timeout would: nothing after the claim runs, the claim is not released)
    env.build()
    body = event_body("evt_dies")

    def killed(self: Runtime, body: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the function was killed here")

    monkeypatch.setattr(Runtime, "request_collection", killed)
    assert post(env, body, signature_headers(SECRET, body)).status_code == 500
    monkeypatch.undo()
    [claim] = state_items(env.deployment)
    assert "acceptedAt" not in claim and "claimToken" in claim

    # When Extend retries while that claim is pending, and again once it has expired
    early = post(env, body, signature_headers(SECRET, body))
    real_time = time.time
    later = SimpleNamespace(time=lambda: real_time() + CLAIM_PENDING_SECONDS + 1, sleep=time.sleep)
    monkeypatch.setattr(state_store, "time", later)
    late = post(env, body, signature_headers(SECRET, body))

    # Then the early retry is asked to come back later (a 200 would have lost the event), the late one
    # is accepted and enqueued once, and its claim is now a duplicate marker
    assert early.status_code == 409
    assert (late.status_code, late.json()) == (200, {"accepted": True})
    assert [r["eventId"] for r in queued_requests(env.deployment)] == ["evt_dies"]
    [claim] = state_items(env.deployment)
    assert "acceptedAt" in claim and "claimToken" not in claim
    duplicate = post(env, body, signature_headers(SECRET, body))
    assert (duplicate.status_code, duplicate.json()) == (200, {"duplicate": True})
    assert queued_requests(env.deployment) == []


def record_state_keys(pipeline: LocalPipeline, name: str) -> list[str]:
    """The partition key of every State table request the function makes from now on."""
    rt = pipeline.runtime(name)
    keys: list[str] = []

    def record(params: dict[str, Any], event_name: str, **_: Any) -> None:
        if params.get("TableName") == rt.resources.state_table:
            key = params.get("Key") or params.get("Item") or {}
            pk = key.get("pk", {}).get("S", "<no key>")
            # Results may also read the routes item (GetItem alone); the webhook may not.
            if not (name == "results" and pk == STATE_ROUTES_KEY and event_name.endswith(".GetItem")):
                keys.append(pk)

    rt.client("dynamodb").meta.events.register("provide-client-params.dynamodb.*", record)
    return keys


# -- webhooks driving collection ------------------------------------------------------------------------


def test_duplicate_and_reordered_webhooks_give_one_result_per_file_and_one_message_per_batch(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three batches whose webhooks are each delivered twice, out of order
    pipeline = env.build(maxBatchSize=40, webhookGraceMinutes=1)
    alerts = subscribe_queue_to_topic(env.deployment, f"{env.deployment.resources.drop_bucket}-alerts")
    env.sim.faults.webhook_duplicate_rate = 1.0
    env.sim.faults.webhook_reorder = True
    upload(env.deployment, [f"invoices/dup-{i:03d}.pdf" for i in range(120)])

    state_keys = {name: record_state_keys(pipeline, name) for name in ("webhook", "results")}

    # When the pipeline runs, then late duplicates come in (an SQS redelivery, a reconciler poll)
    pipeline.pump()
    batches = wait_until_finished(env.sim, batches=3)
    pipeline.pump()
    rt = pipeline.runtime("results")
    for batch in batches:
        rt.request_collection(CollectionRequest(batch["id"], source="redelivery"))
    later = timeutil.utc_now() + timedelta(minutes=2)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    assert pipeline.schedule("reconcile")["collectionRequested"] == []
    pipeline.pump()

    # Then every event was delivered twice but enqueued once
    delivered = Counter(d["eventId"] for d in deliveries(env.sim) if d["outcome"] == "delivered")
    assert sorted(delivered.values()) == [2, 2, 2]
    assert len(state_items(env.deployment)) == 3

    # And each file has one result, each batch one message
    files = assert_bucket_and_table_agree(pipeline, env.deployment)
    assert Counter(f["status"] for f in files) == {FileStatus.PROCESSED: 120}
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.COMPLETED] * 3
    messages = notifications(env.deployment, alerts)
    assert sorted(m["batchId"] for m, _ in messages) == sorted(b["id"] for b in batches)

    # And the webhook and results functions touched only the State items their roles allow
    # (dynamodb:LeadingKeys in stacks.functions; moto does not enforce IAM, so the code is checked here)
    for name, keys in state_keys.items():
        assert keys, name
        assert all(any(fnmatchcase(k, p) for p in STATE_LEADING_KEYS[name]) for k in keys), (name, keys)


def test_a_lost_webhook_is_completed_by_the_reconciler(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch whose webhook never arrives
    pipeline = env.build(webhookGraceMinutes=1)
    alerts = subscribe_queue_to_topic(env.deployment, f"{env.deployment.resources.drop_bucket}-alerts")
    env.sim.faults.webhook_drop_rate = 1.0
    upload(env.deployment, [f"invoices/lost-{i}.pdf" for i in range(20)])
    pipeline.pump()
    pipeline.runtime("intake").request_flush("invoices", reason="test", force=True)
    pipeline.pump()
    (batch,) = wait_until_finished(env.sim, batches=1)
    pipeline.pump()
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.SUBMITTED}
    assert pipeline.schedule("reconcile")["collectionRequested"] == []  # still within the grace period

    # When the grace period has passed and the reconciler runs
    later = timeutil.utc_now() + timedelta(minutes=2)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    result = pipeline.schedule("reconcile")
    pipeline.pump()

    # Then the batch was polled and collected, and announced once
    assert len(result["collectionRequested"]) == 1
    files = assert_bucket_and_table_agree(pipeline, env.deployment)
    assert {f["status"] for f in files} == {FileStatus.PROCESSED}
    assert [m["batchId"] for m, _ in notifications(env.deployment, alerts)] == [batch["id"]]
    assert pipeline.schedule("reconcile")["collectionRequested"] == []


def test_an_adopted_batch_without_its_id_and_without_a_webhook_is_collected_through_run_metadata(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch whose POST response was lost (adopted from its runs, batch id unknown) and whose
    # webhook never arrives
    pipeline = env.build(maxWaitSeconds=1, orphanGraceSeconds=1, webhookGraceMinutes=1)
    env.sim.faults.webhook_drop_rate = 1.0
    env.sim.faults.lose_post_response = 1
    upload(env.deployment, [f"invoices/adopted-{i}.pdf" for i in range(10)])
    pipeline.intake.drain()
    time.sleep(1.1)
    pipeline.submitter.drain()
    time.sleep(1.1)
    pipeline.schedule("sweep")
    pipeline.pump()
    (submission,) = submissions(pipeline)
    assert submission["state"] == BatchState.SUBMITTED and "batchId" not in submission
    wait_until_finished(env.sim, batches=1)

    # When the grace period has passed and the reconciler runs
    later = timeutil.utc_now() + timedelta(minutes=2)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    assert pipeline.schedule("reconcile")["collectionRequested"] == [submission["submissionId"]]
    pipeline.pump()

    # Then it was collected from the runs found by their metadata
    files = assert_bucket_and_table_agree(pipeline, env.deployment)
    assert {f["status"] for f in files} == {FileStatus.PROCESSED}
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.COMPLETED]
    assert len(sim_batches(env.sim)) == 1


def test_a_webhook_before_the_batch_is_recorded_is_resolved_through_run_metadata(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:

    # Given a submitter that crashes right after Extend accepted the batch, and webhooks that carry
    # the batch as a signed data URL
    pipeline = env.build(maxWaitSeconds=1)
    env.sim.faults.signed_url_payload = True
    upload(env.deployment, [f"invoices/early-{i}.pdf" for i in range(20)])
    pipeline.intake.drain()

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("simulated crash after the POST")

    monkeypatch.setattr(BatchStore, "link_batch_id", crash)
    time.sleep(1.1)
    pipeline.submitter.drain()
    monkeypatch.undo()
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.SUBMITTED}
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.SUBMITTING]

    # When the batch's webhook arrives and the results worker handles it
    (batch,) = wait_until_finished(env.sim, batches=1)
    pipeline.results.drain()

    # Then the batch was linked to its submission through the runs' metadata and collected
    files = assert_bucket_and_table_agree(pipeline, env.deployment)
    assert {(f["status"], f["batchId"]) for f in files} == {(FileStatus.PROCESSED, batch["id"])}
    (submission,) = submissions(pipeline)
    assert (submission["state"], submission["batchId"]) == (BatchState.COMPLETED, batch["id"])

    # And the submitter, when it runs again, sends nothing twice
    pipeline.runtime("submitter").request_flush("invoices", reason="test", force=True)
    pipeline.submitter.drain()
    assert len(sim_batches(env.sim)) == 1
