"""A small local Lambda runtime: it drives the real handlers the way AWS's event source mappings do.

An ``SqsEventSource`` receives up to ``batch_size`` messages (waiting at most ``window`` seconds to fill
the batch), builds the SQS event Lambda would build, calls the handler, and deletes the messages that
were not reported in ``batchItemFailures``. A handler that raises fails the whole batch. Failed messages
reappear after the queue's visibility timeout, and the queue's redrive policy moves them to the DLQ, as
on AWS. Several pollers may run in parallel, as AWS runs several.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from batchdrop_core.observability import logger

Handler = Callable[[dict[str, Any], Any], Any]

# One execution environment per function: Lambda never runs two invocations in one process at once, and
# the handlers keep per-invocation state at module level (Powertools processors and resolvers), so
# concurrent pollers of one function take turns. Different functions still run side by side.
_function_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def invoke_function(function_name: str, handler: Handler, event: dict[str, Any], context: Any) -> Any:
    with _locks_guard:
        lock = _function_locks.setdefault(function_name, threading.Lock())
    with lock:
        return handler(event, context)


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools use."""

    function_name: str
    timeout_seconds: float = 900.0
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    stopping: threading.Event | None = None  # once set, no time is left: the runtime is shutting down
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local"

    def get_remaining_time_in_millis(self) -> int:
        if self.stopping is not None and self.stopping.is_set():
            return 0
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    attributes = dict(message.get("Attributes", {}))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1",
    }


class SqsEventSource:
    """One event source mapping: a queue feeding a handler."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        function_name: str,
        batch_size: int = 10,
        window: float = 0.0,
        timeout_seconds: float = 60.0,
        report_batch_item_failures: bool = True,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.batch_size = batch_size
        self.window = window
        self.timeout_seconds = timeout_seconds
        self.report_batch_item_failures = report_batch_item_failures
        self.fifo = queue_url.endswith(".fifo")
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.invocations = 0
        self.batch_sizes: list[int] = []
        self.errors = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def receive_batch(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.window
        while len(messages) < self.batch_size:
            remaining = deadline - time.monotonic()
            response = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                WaitTimeSeconds=0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            received = response.get("Messages", [])
            messages.extend(received)
            if not received:
                if remaining <= 0:
                    break
                time.sleep(min(0.05, max(remaining, 0)))
            elif remaining <= 0:
                break
        return messages

    def invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [sqs_record(m, self.queue_arn) for m in messages]}
        context = LambdaContext(self.function_name, timeout_seconds=self.timeout_seconds, stopping=self._stop)
        self.invocations += 1
        self.batch_sizes.append(len(messages))
        try:
            response = invoke_function(self.function_name, self.handler, event, context)
        except Exception:  # noqa: BLE001 - a failed invocation returns the whole batch to the queue, as on AWS
            self.errors += 1
            logger.exception("local invocation failed", extra={"function": self.function_name})
            return
        failed = set()
        if self.report_batch_item_failures and isinstance(response, dict):
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(done[start : start + 10])
                ],
            )

    def poll_once(self) -> int:
        """Receive one batch and invoke the handler with it; the number of messages handled."""
        messages = self.receive_batch()
        if messages and not self._stop.is_set():  # once stopping, received messages simply reappear
            self.invoke(messages)
        return len(messages)

    def drain(self, max_rounds: int = 10_000) -> int:
        """Poll until the queue gives nothing; the number of messages handled."""
        total = 0
        for _ in range(max_rounds):
            handled = self.poll_once()
            if not handled:
                return total
            total += handled
        return total

    # -- background pollers (the demo) -----------------------------------------------------------------
    def start(self, pollers: int = 1) -> None:
        for i in range(pollers):
            thread = threading.Thread(target=self._run, name=f"{self.function_name}-poller-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self._stop.wait(0.1)
            except Exception:  # noqa: BLE001 - a poller must survive a transient failure, as AWS's does
                logger.exception("poller error", extra={"function": self.function_name})
                self._stop.wait(0.5)

    def request_stop(self) -> None:
        """Take no new work. A handler that watches its remaining time sees none left, and returns."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop the pollers, waiting up to ``timeout`` seconds in all; the names of those still busy."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        busy = [thread.name for thread in self._threads if thread.is_alive()]
        self._threads.clear()
        if not busy:  # a poller still busy must find the flag set when its invocation returns
            self._stop.clear()
        return busy


def wait_idle(function_name: str, timeout: float) -> bool:
    """Wait until no invocation of the function is running (False if one still is after ``timeout``)."""
    with _locks_guard:
        lock = _function_locks.get(function_name)
    if lock is None or not lock.acquire(timeout=max(0.0, timeout)):
        return lock is None
    lock.release()
    return True
