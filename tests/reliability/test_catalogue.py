"""Adversarial inputs from the catalogue in docs/reliability.md that no other test covers: hostile S3
keys, folder markers, S3/SQS events that are not batchdrop's work, malformed messages on their way to the
DLQ, webhooks for batches that are not batchdrop's, and a flood of forged webhooks."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from batchdrop_core.extend import BatchInput, ExtendClient, FileRef, ProcessorRef
from batchdrop_core.extend.signing import signature_headers
from batchdrop_core.outcomes import LONG_KEYS_FOLDER
from batchdrop_core.runtime import Runtime
from sandbox.apigw import ApiGatewayServer, proxy_event
from sandbox.aws import Deployment
from sandbox.lambda_runtime import LambdaContext, sqs_record
from sandbox.pipeline import LocalPipeline
from tests.helpers import (
    TEST_API_KEY,
    TEST_WEBHOOK_SECRET,
    all_files,
    make_settings,
    request_collection_of_all,
    result_objects,
    sim_batches,
    wait_until_finished,
)

API_KEY, SECRET = TEST_API_KEY, TEST_WEBHOOK_SECRET  # what the fixtures use


def exactly_1024_bytes(prefix: str, filler: str, suffix: str) -> str:
    room = 1024 - len(prefix.encode()) - len(suffix.encode())
    key = prefix + filler * (room // len(filler.encode())) + "x" * (room % len(filler.encode())) + suffix
    assert len(key.encode()) == 1024
    return key


@pytest.fixture
def pipeline(deployment: Deployment, extend_sim: Any) -> LocalPipeline:
    settings = make_settings(extend_sim.base_url, readRateLimit=200)
    return LocalPipeline(settings, deployment, intake_window=0.2)


def put(deployment: Deployment, key: str, body: bytes = b"%PDF-1.4 Invoice Number: 7") -> None:
    deployment.session.client("s3").put_object(Bucket=deployment.resources.drop_bucket, Key=key, Body=body)


# -- S3 keys and objects --------------------------------------------------------------------------------


def test_control_characters_and_1024_byte_keys_are_tracked_processed_and_stored(
    deployment: Deployment, extend_sim: Any, pipeline: LocalPipeline
) -> None:
    # Given keys S3 accepts but that are awkward everywhere else: control characters, and keys of exactly
    # 1,024 bytes (S3's limit; the sandbox's S3 refuses one more byte, as S3 does)
    keys = [
        "invoices/control \x01\x1f\t\x7f chars.pdf",
        exactly_1024_bytes("invoices/long/", "a", ".pdf"),
        exactly_1024_bytes("invoices/long/", "é", ".pdf"),  # two bytes a character
    ]
    with pytest.raises(ClientError, match="KeyTooLongError"):
        put(deployment, exactly_1024_bytes("invoices/long/", "b", ".pdf") + "x")
    for key in keys:
        put(deployment, key)

    # When they go through intake, a forced flush, Extend and collection
    pipeline.pump()
    pipeline.runtime("intake").request_flush("invoices", reason="test", force=True)
    pipeline.pump()
    wait_until_finished(extend_sim, batches=1)
    request_collection_of_all(pipeline, extend_sim)
    pipeline.pump()

    # Then each key has its item with the exact key, went to Extend once, and has its result stored once
    files = {f["key"]: f for f in all_files(pipeline)}
    assert set(files) == set(keys)
    assert {f["status"] for f in files.values()} == {"PROCESSED"}
    (batch,) = sim_batches(extend_sim)
    assert sorted(i["metadata"]["batchdrop"]["fileId"] for i in batch["inputs"]) == sorted(
        f["fileId"] for f in files.values()
    )
    stored = result_objects(deployment)
    for key, f in files.items():
        assert stored[f["resultKey"]]["_versions"] == 1
        assert stored[f["resultKey"]]["batchdrop"]["key"] == key
        assert len(f["resultKey"].encode()) <= 1024
    # A key too long to nest under results/ is stored under a digest of it
    assert files[keys[0]]["resultKey"] == f"results/{keys[0]}/{files[keys[0]]['versionId']}.json"
    assert files[keys[1]]["resultKey"].startswith(f"results/{LONG_KEYS_FOLDER}/")


def test_folder_markers_are_not_tracked_and_a_key_ending_in_a_slash_with_content_is_rejected(
    deployment: Deployment, pipeline: LocalPipeline
) -> None:
    # Given a folder created in the console (a zero-byte key ending in '/'), a file in it, and a key
    # ending in '/' that has content
    put(deployment, "invoices/2026/march/", b"")
    put(deployment, "invoices/2026/march/inv-1.pdf")
    put(deployment, "invoices/odd/", b"not a folder")

    # When intake runs
    pipeline.intake.drain()

    # Then the marker made no item, the file is queued, and the odd key is rejected with a reason
    files = {f["key"]: (f["status"], f.get("failureReason")) for f in all_files(pipeline)}
    assert files == {
        "invoices/2026/march/inv-1.pdf": ("QUEUED", None),
        "invoices/odd/": ("REJECTED", "UNSUPPORTED_TYPE"),
    }


# -- S3 and SQS events ----------------------------------------------------------------------------------


def s3_record(bucket: str, key: str, event_name: str = "ObjectCreated:Put", size: int = 10) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event_name,
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size}},
    }


def message(body: str, number: int) -> dict[str, Any]:
    return {"MessageId": f"m{number}", "ReceiptHandle": f"r{number}", "Body": body, "Attributes": {}}


def test_intake_skips_what_is_not_its_work_and_fails_only_the_malformed_messages(
    deployment: Deployment, pipeline: LocalPipeline
) -> None:
    # Given one intake invocation with every kind of message the arrivals queue can hold
    bucket = deployment.resources.drop_bucket
    put(deployment, "invoices/real.pdf")
    bodies = {
        "test event": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": bucket}),
        "removal": json.dumps({"Records": [s3_record(bucket, "invoices/real.pdf", "ObjectRemoved:Delete")]}),
        "foreign bucket": json.dumps({"Records": [s3_record("someone-elses-bucket", "invoices/x.pdf")]}),
        "not JSON": "this is not JSON",
        "not an S3 event": json.dumps({"Hello": "world"}),
        "no eventName": json.dumps({"Records": [{"eventSource": "aws:s3", "s3": {}}]}),
        "real": json.dumps({"Records": [s3_record(bucket, "invoices/real.pdf")]}),
    }
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{bucket}-arrivals"
    names = list(bodies)
    event = {"Records": [sqs_record(message(bodies[n], i), queue_arn) for i, n in enumerate(names)]}

    # When the intake function handles it
    handler = pipeline.modules["intake"].lambda_handler
    response = handler(event, LambdaContext("batchdrop-intake", 60))

    # Then only the malformed messages are reported failed (retried, then the DLQ); the others are
    # acknowledged, and only the real creation made an item
    failed = {names[int(f["itemIdentifier"][1:])] for f in response["batchItemFailures"]}
    assert failed == {"not JSON", "not an S3 event", "no eventName"}
    assert [(f["key"], f["status"]) for f in all_files(pipeline)] == [("invoices/real.pdf", "QUEUED")]


def test_a_malformed_message_ends_in_the_dlq_after_max_receive_count_and_blocks_nothing(
    deployment: Deployment, pipeline: LocalPipeline
) -> None:
    # Given a malformed message next to a real notification, and a visibility timeout of 1 s so that a
    # failed message comes back quickly
    sqs = deployment.session.client("sqs")
    queue = deployment.arrivals_queue_url
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})
    sqs.send_message(QueueUrl=queue, MessageBody="{broken")
    put(deployment, "invoices/fine.pdf")

    # When intake polls until the queue is empty (bounded: maxReceiveCount is 5)
    for _ in range(10):
        pipeline.intake.poll_once()
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}:
            break
        time.sleep(1.1)

    # Then the malformed message is in the DLQ (after maxReceiveCount tries) and the file was tracked once
    dlq = deployment.dlq_urls["arrivals"]
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [m["Body"] for m in dead] == ["{broken"]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= 5
    assert [f["key"] for f in all_files(pipeline)] == ["invoices/fine.pdf"]


# -- webhooks ------------------------------------------------------------------------------------------


def signed_event(event_id: str, batch_id: str) -> tuple[bytes, dict[str, str]]:
    payload = {"object": "batch_run", "id": batch_id, "status": "PROCESSED", "runCount": 1}
    body = json.dumps({"eventId": event_id, "eventType": "batch_processor_run.processed", "payload": payload})
    return body.encode(), signature_headers(SECRET, body.encode())


def test_validly_signed_webhooks_for_batches_that_are_not_batchdrops_record_nothing(
    deployment: Deployment, extend_sim: Any, pipeline: LocalPipeline
) -> None:
    # Given a batch another client of the same Extend workspace made (its runs carry no batchdrop ids)
    with ExtendClient(API_KEY, base_url=extend_sim.base_url) as client:
        inputs = [BatchInput(file=FileRef.from_text("Invoice Number: 1", name="a.txt"), metadata={"x": "1"})]
        foreign = client.create_batch("extract", ProcessorRef(id="ex_someone_else"), inputs)
    wait_until_finished(extend_sim, batches=1)

    # When Extend (validly signed) announces it, and the results worker handles the event
    webhook = pipeline.modules["webhook"].lambda_handler
    results = pipeline.results

    def announce(event_id: str, batch_id: str) -> None:
        body, headers = signed_event(event_id, batch_id)
        response = webhook(proxy_event("POST", "/webhooks/extend", headers, body), LambdaContext("w", 10))
        assert response["statusCode"] == 200
        assert results.poll_once() == 1

    announce("evt_foreign", foreign.id)

    # Then it is dropped as not batchdrop's (the message is acknowledged)
    assert results.errors == 0

    # When a batch that does not exist at Extend at all is announced
    announce("evt_unknown", "bpr_doesnotexist")

    # Then the request fails and goes back to the queue (its runs may not be listed yet); after
    # maxReceiveCount it ends in the results DLQ, whose alarm tells an operator
    assert results.errors == 1
    sqs = deployment.session.client("sqs")
    waiting = sqs.get_queue_attributes(
        QueueUrl=deployment.resources.results_queue_url,
        AttributeNames=["ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
    assert waiting == "1"
    # And nothing was recorded
    assert all_files(pipeline) == []
    ddb = deployment.session.client("dynamodb")
    assert ddb.scan(TableName=deployment.resources.batches_table)["Items"] == []
    assert result_objects(deployment) == {}


def test_a_flood_of_forged_webhooks_is_refused_changes_nothing_and_costs_one_secret_read(
    deployment: Deployment, pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:

    # Given the webhook endpoint (the sandbox's API Gateway has no throttle: in AWS the stage throttle
    # refuses a flood beyond its rate before the function runs, see docs/reliability.md), and a count of
    # Secrets Manager reads that bypass the cache
    forced_reads: list[str] = []
    secret_value = Runtime.secret_value

    def counting(self: Runtime, field_name: str, *, force_fetch: bool = False) -> str:
        if force_fetch:
            forced_reads.append(field_name)
        return secret_value(self, field_name, force_fetch=force_fetch)

    monkeypatch.setattr(Runtime, "secret_value", counting)
    body, _ = signed_event("evt_flood", "bpr_flood")
    now = int(time.time())
    forgeries = [
        {},
        signature_headers("wss_attacker_guess", body),
        signature_headers(SECRET, body, now - 3600),
        {"x-extend-request-timestamp": str(now), "x-extend-request-signature": "0" * 64},
    ]

    # When 300 forged requests arrive, six at a time
    with ApiGatewayServer(pipeline.webhook) as gateway:
        url = gateway.url + "/webhooks/extend"

        def send(i: int) -> int:
            return httpx.post(
                url, content=body, headers=forgeries[i % len(forgeries)], timeout=30
            ).status_code

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=6) as pool:
            statuses = list(pool.map(send, range(300)))
        elapsed = time.monotonic() - started

    # Then every one is refused, nothing was recorded or enqueued, and the secret was re-read at most once
    assert set(statuses) == {401}
    ddb = deployment.session.client("dynamodb")
    assert ddb.scan(TableName=deployment.resources.state_table)["Items"] == []
    sqs = deployment.session.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=deployment.resources.results_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"
    # (a re-read is allowed every 30 s: a flood that lasts longer on a busy machine may cause one more)
    assert len(forced_reads) <= 1 + int(elapsed // 30)
