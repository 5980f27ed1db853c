"""A small local Lambda runtime: it drives the real handlers the way AWS's event source mappings do.

An ``SqsEventSource`` receives up to ``batch_size`` messages (waiting at most ``window`` seconds to fill
the batch), builds the SQS event Lambda would build, calls the handler, and deletes the messages that
were not reported in ``batchItemFailures``. A handler that raises fails the whole batch. Failed messages
reappear after the queue's visibility timeout, and the queue's redrive policy moves them to the DLQ, as
on AWS. Its background pollers long-poll (20 s, as Lambda's do), so an idle queue costs moto nothing,
and run up to the function's concurrency at once: on a FIFO queue that is one batch per message group at
a time, groups in parallel, in order within a group (SQS delivers nothing of a group with messages in
flight).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from batchdrop_core.observability import logger

Handler = Callable[[dict[str, Any], Any], Any]

LONG_POLL_SECONDS = 20  # what Lambda's pollers ask for (the SQS maximum)

# Lambda runs each invocation in its own execution environment; here concurrent invocations of one function
# share the handler module, which keeps no per-invocation state (processors are made per invocation, the
# context is passed down). A function runs at most ``concurrency`` invocations at once (1 unless
# configured: the webhook's Powertools resolver holds the current request, so it takes turns).
_function_slots: dict[str, threading.BoundedSemaphore] = {}
_slots_guard = threading.Lock()


_function_concurrency: dict[str, int] = {}


def set_concurrency(function_name: str, concurrency: int) -> None:
    with _slots_guard:
        _function_slots[function_name] = threading.BoundedSemaphore(max(1, concurrency))
        _function_concurrency[function_name] = max(1, concurrency)


def invoke_function(function_name: str, handler: Handler, event: dict[str, Any], context: Any) -> Any:
    with _slots_guard:
        slots = _function_slots.setdefault(function_name, threading.BoundedSemaphore(1))
    with slots:
        return handler(event, context)


def wait_idle(function_name: str, timeout: float) -> bool:
    """Wait until no invocation of the function is running (False if one still is after ``timeout``)."""
    with _slots_guard:
        slots = _function_slots.get(function_name)
        count = _function_concurrency.get(function_name, 1)
    if slots is None:
        return True
    deadline = time.monotonic() + max(0.0, timeout)
    taken = 0
    try:
        while taken < count and slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            taken += 1
        return taken == count
    finally:
        for _ in range(taken):
            slots.release()


def share_metrics_safely(metrics: Any) -> None:
    """Powertools Metrics keeps one metric set per process, which concurrent invocations share: adding a
    metric while another invocation serializes the set fails with "dictionary changed size during
    iteration". One lock around each of its operations keeps it consistent; an invocation's flush may
    then carry metrics another one added meanwhile (every metric is still published exactly once)."""
    provider = metrics.provider
    if getattr(provider, "_sandbox_locked", False):
        return
    lock = threading.RLock()

    def locked(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return method(*args, **kwargs)

        return call

    for name in (
        "add_metric",
        "add_dimension",
        "add_metadata",
        "serialize_metric_set",
        "flush_metrics",
        "clear_metrics",
    ):
        setattr(provider, name, locked(getattr(provider, name)))
    provider._sandbox_locked = True


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
        concurrency: int = 1,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.batch_size = batch_size
        self.window = window
        self.timeout_seconds = timeout_seconds
        self.report_batch_item_failures = report_batch_item_failures
        self.concurrency = concurrency
        self.poll_window: float | None = None  # the background pollers' window, when not ``window``
        set_concurrency(function_name, concurrency)
        self.fifo = queue_url.endswith(".fifo")
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"]
        )["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.visibility_timeout = int(attributes.get("VisibilityTimeout", "30"))
        self.invocations = 0
        self.batch_sizes: list[int] = []
        self.errors = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counting = threading.Lock()
        self._invoking: set[int] = set()  # pollers (thread ids) in an invocation: stop() waits for those

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, count),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def receive_batch(self) -> list[dict[str, Any]]:
        """One batch for ``poll_once``/``drain`` (tests step the pipeline with them): short polls for at most
        ``window`` seconds, so an empty queue answers at once."""
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + self.window
        while len(messages) < self.batch_size:
            remaining = deadline - time.monotonic()
            received = self._receive(self.batch_size - len(messages), 0)
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
        with self._counting:
            self.invocations += 1
            self.batch_sizes.append(len(messages))
        try:
            with self._kept_invisible(messages):
                response = invoke_function(self.function_name, self.handler, event, context)
        except Exception:  # noqa: BLE001 - a failed invocation returns the whole batch to the queue, as on AWS
            with self._counting:
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

    @contextlib.contextmanager
    def _kept_invisible(self, messages: list[dict[str, Any]]) -> Iterator[None]:
        """While a small batch (a flush request, a collection request) is being handled, keep it hidden.

        The sandbox's queues hide a received message for a few seconds only, so a failed one comes back
        soon; the stack hides it for 6x the function's timeout, so a running invocation never sees its
        message delivered again. Without this, a flush taking longer than 5 s would let a second submitter
        take the same route's next request (the FIFO group is free again) and settle the first one's
        submission as an orphan. Intake's 1,000-message batches are not kept: a redelivered notification
        is recorded once (a conditional write) and costs only a duplicate read."""
        if len(messages) > 10 or self.visibility_timeout <= 0:
            yield
            return
        done = threading.Event()
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.visibility_timeout}
            for i, m in enumerate(messages)
        ]

        def keep() -> None:
            while not done.wait(self.visibility_timeout / 2):
                try:
                    self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
                except Exception:  # noqa: BLE001 - then the message may come back early, as it did before
                    logger.warning("could not extend visibility", extra={"function": self.function_name})

        keeper = threading.Thread(target=keep, name=f"{self.function_name}-visibility", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()

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
    def start(self, pollers: int | None = None, *, window: float | None = None) -> None:
        """Poll in the background: ``pollers`` threads (default: the function's concurrency), filling batches
        for ``window`` seconds (default: ``self.window``, which ``drain`` uses too)."""
        if window is not None:
            self.poll_window = window
        for i in range(pollers or self.concurrency):
            thread = threading.Thread(
                target=self._run, args=(self._stop,), name=f"{self.function_name}-poller-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def gather_batch(self, stop: threading.Event | None = None) -> list[dict[str, Any]]:
        """What a Lambda poller does: long-poll until messages arrive, then fill the batch for at most
        ``window`` seconds (from the first message) or until ``batch_size`` messages are in hand."""
        stop = stop or self._stop
        messages: list[dict[str, Any]] = []
        while not messages and not stop.is_set():
            messages = self._receive(self.batch_size, LONG_POLL_SECONDS)
        deadline = time.monotonic() + (self.window if self.poll_window is None else self.poll_window)
        while messages and len(messages) < self.batch_size and not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(LONG_POLL_SECONDS, int(remaining))  # whole seconds only; under a second: short polls
            received = self._receive(self.batch_size - len(messages), wait)
            messages.extend(received)
            if not received and not wait:
                stop.wait(min(0.05, remaining))
        return messages

    def _run(self, stop: threading.Event) -> None:
        me = threading.get_ident()
        while not stop.is_set():
            try:
                messages = self.gather_batch(stop)
                if stop.is_set():
                    self._release(messages)
                    return
                self._invoking.add(me)
                try:
                    self.invoke(messages)
                finally:
                    self._invoking.discard(me)
            except Exception:  # noqa: BLE001 - a poller must survive a transient failure, as AWS's does
                if stop.is_set():
                    return  # the sandbox is going away (its moto server may be gone already)
                logger.exception("poller error", extra={"function": self.function_name})
                stop.wait(0.5)

    def _release(self, messages: list[dict[str, Any]]) -> None:
        """Messages received after stop() go back to the queue at once instead of after their timeout."""
        for start in range(0, len(messages), 10):
            try:
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(messages[start : start + 10])
                    ],
                )
            except Exception:  # noqa: BLE001 - best effort: they come back after their visibility timeout
                return

    def request_stop(self) -> None:
        """Take no new work. A handler that watches its remaining time sees none left, and returns."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> list[str]:
        """Stop polling; the names of the pollers whose invocation was still running after ``timeout``
        seconds. Waits for invocations in progress, not for pollers waiting in a long poll: those end when
        it returns (with the messages, if any, released)."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            while thread.is_alive() and thread.ident in self._invoking and time.monotonic() < deadline:
                thread.join(0.05)
        busy = [t.name for t in self._threads if t.is_alive() and t.ident in self._invoking]
        self._threads.clear()
        self._stop = threading.Event()  # for a later start(); pollers still in a long poll keep the set one
        return busy
