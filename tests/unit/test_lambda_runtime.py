"""The local Lambda runtime's SQS event sources: FIFO message groups in parallel, in order within a group,
long polling while idle."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from botocore.config import Config

from sandbox.lambda_runtime import SqsEventSource


def _flush_request(sqs: Any, url: str, route: str, n: int) -> None:
    body = json.dumps({"route": route, "n": n})
    sqs.send_message(
        QueueUrl=url, MessageBody=body, MessageGroupId=route, MessageDeduplicationId=f"{route}-{n}"
    )


def _wait_until(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_long_invocation_for_one_group_does_not_hold_another_group(deployment: Any) -> None:
    sqs = deployment.session.client("sqs", config=Config(max_pool_connections=20))
    name = deployment.resources.flush_queue_url.rsplit("/", 1)[1].replace(".fifo", "-groups.fifo")
    # A visibility timeout shorter than the invocation (as the sandbox's): the runtime keeps it hidden.
    url = sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true", "VisibilityTimeout": "2"})[
        "QueueUrl"
    ]
    release_invoices = threading.Event()
    handled: list[tuple[str, int]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for record in event["Records"]:
            request = json.loads(record["body"])
            if request["route"] == "invoices" and request["n"] == 1:
                assert release_invoices.wait(30)  # a 1,000-file claim and POST, say
            handled.append((request["route"], request["n"]))
        return {"batchItemFailures": []}

    source = SqsEventSource(sqs, url, handler, function_name="test-submitter", batch_size=1, concurrency=3)
    source.start()
    try:
        _flush_request(sqs, url, "invoices", 1)
        _flush_request(sqs, url, "invoices", 2)
        _wait_until(lambda: len(source._invoking) == 1)  # invoices 1 is being handled
        _flush_request(sqs, url, "documents", 1)
        _flush_request(sqs, url, "documents", 2)
        # The documents route is served while the invoices invocation is still running...
        _wait_until(
            lambda: [h for h in handled if h[0] == "documents"] == [("documents", 1), ("documents", 2)]
        )
        # ...and the second invoices request waits for the first (one batch per group at a time), which is
        # not delivered again while it runs past the visibility timeout.
        time.sleep(3)
        assert ("invoices", 2) not in handled
        assert len(source._invoking) == 1
        release_invoices.set()
        _wait_until(lambda: len(handled) == 4)
        assert [h for h in handled if h[0] == "invoices"] == [("invoices", 1), ("invoices", 2)]
        assert source.invocations == 4
    finally:
        release_invoices.set()
        source.stop()


def test_idle_pollers_long_poll(deployment: Any) -> None:
    sqs = deployment.session.client("sqs", config=Config(max_pool_connections=20))
    receives: list[int] = []
    sqs.meta.events.register("before-call.sqs.ReceiveMessage", lambda **_: receives.append(1))
    batches: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        batches.append(len(event["Records"]))
        return {"batchItemFailures": []}

    url = sqs.create_queue(QueueName=f"{deployment.resources.flush_queue_url.rsplit('/', 1)[1][:-5]}-idle")[
        "QueueUrl"
    ]
    source = SqsEventSource(
        sqs, url, handler, function_name="test-intake", batch_size=50, window=1.0, concurrency=2
    )
    source.start()
    try:
        time.sleep(2.0)  # idle: each poller sits in one 20 s long poll
        assert len(receives) <= 2
        for start in range(0, 30, 10):
            sqs.send_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)]
            )
        _wait_until(lambda: sum(batches) == 30)
        assert max(batches) > 1  # the window gathered messages into batches
    finally:
        source.stop()
    assert (
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )
