"""Signed webhook deliveries from a background thread, with retries and injectable faults.

Deliveries are signed the way Extend signs them, implemented here rather than borrowed from the product,
so the simulator stays an independent model: HMAC-SHA256 keyed with the signing secret's UTF-8 bytes as
they are (``wss_`` prefix included) over ``v0:{timestamp}:{raw body}``, sent as lowercase hex in
``x-extend-request-signature`` with the Unix-seconds timestamp in ``x-extend-request-timestamp``.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from sandbox.extend_sim.faults import Chance, Faults
from sandbox.extend_sim.model import iso, new_id
from sandbox.extend_sim.stats import Stats

TIMESTAMP_HEADER = "x-extend-request-timestamp"
SIGNATURE_HEADER = "x-extend-request-signature"
# Extend publishes no retry schedule; this one is quick enough for a demo and tests can shorten it.
DEFAULT_RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0)  # 8 attempts in all
# With the webhook_reorder fault, each delivery is held for a random time up to this many seconds.
REORDER_WINDOW_S = 1.0
# Gap between an event and its injected duplicate.
DUPLICATE_GAP_S = 0.05


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """Extend's webhook signature of ``body`` sent at ``timestamp`` (Unix seconds)."""
    message = b"v0:" + str(timestamp).encode("ascii") + b":" + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


@dataclass
class Target:
    url: str
    secret: str
    enabled_events: list[str] | None = None  # None: every event
    endpoint_id: str | None = None  # None: configured at start-up, survives /_sim/reset
    # POST /webhook_subscriptions: (resource type, resource id, events), e.g. one workflow's run events
    subscriptions: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)

    def wants(self, event_type: str, resources: dict[str, str] | None = None) -> bool:
        """Whether this endpoint gets an event: every event (a start-up target), an event it enabled, or
        an event of a resource (``resources``: type -> id of the event's resource) it subscribed to."""
        if not self.enabled_events or event_type in self.enabled_events:
            return True
        return any(
            event_type in events and (resources or {}).get(kind) == resource_id
            for kind, resource_id, events in self.subscriptions
        )


@dataclass
class Delivery:
    event_id: str
    event_type: str
    batch_id: str | None
    object_id: str  # the payload's id: the batch, or the run of a run event
    target: Target
    body: bytes  # sent exactly as signed
    attempt: int = 1
    duplicate: bool = False


@dataclass(order=True)
class _Scheduled:
    due: float
    seq: int
    delivery: Delivery = field(compare=False)


class WebhookSender:
    def __init__(
        self,
        *,
        faults: Faults,
        chance: Chance,
        stats: Stats,
        payload_url: Callable[[str], str],
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        timeout: float = 10.0,
    ) -> None:
        self._faults = faults
        self._chance = chance
        self._stats = stats
        self._payload_url = payload_url
        self.retry_delays = tuple(retry_delays)
        self._http = httpx.Client(timeout=timeout, trust_env=False)
        self._cond = threading.Condition()
        self._heap: list[_Scheduled] = []
        self._seq = itertools.count()
        self._in_flight = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.targets: list[Target] = []
        self.payloads: dict[str, dict[str, Any]] = {}  # eventId -> payload, for signed-URL payloads
        self.log: list[dict[str, Any]] = []

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="extend-sim-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=15)
        self._http.close()

    def reset(self) -> None:
        with self._cond:
            self._heap.clear()
            self.payloads.clear()
            self.log.clear()
            self.targets = [t for t in self.targets if t.endpoint_id is None]

    # -- API -------------------------------------------------------------------------------------
    def add_target(self, target: Target) -> None:
        with self._cond:
            self.targets.append(target)

    def subscribe(self, endpoint_id: str, kind: str, resource_id: str, events: list[str]) -> bool:
        """Add a resource subscription to an endpoint; False when no such endpoint is registered."""
        with self._cond:
            for target in self.targets:
                if target.endpoint_id == endpoint_id:
                    target.subscriptions.append((kind, resource_id, frozenset(events)))
                    return True
        return False

    def pending(self) -> int:
        """Deliveries not finished yet (queued, waiting for a retry, or being sent)."""
        with self._cond:
            return len(self._heap) + self._in_flight

    def deliveries(self) -> list[dict[str, Any]]:
        with self._cond:
            return list(self.log)

    def publish(self, event_type: str, payload: dict[str, Any]) -> None:
        """Send one event to every target that wants it. ``payload`` is the BatchRun of a batch event,
        or the full run of a run event (workflow runs)."""
        event_id = new_id("evt_")
        object_id = payload["id"]
        batch_id = object_id if payload.get("object") == "batch_run" else payload.get("batchId")
        sent: dict[str, Any] = payload
        if self._faults.signed_url_payload:
            with self._cond:
                self.payloads[event_id] = payload
            sent = {"object": "signed_data_url", "data": self._payload_url(event_id), "id": object_id}
            if payload.get("metadata"):
                sent["metadata"] = payload["metadata"]
        body = json.dumps({"eventId": event_id, "eventType": event_type, "payload": sent}).encode()
        workflow = payload.get("workflow")
        resources = {"workflow": workflow["id"]} if isinstance(workflow, dict) and "id" in workflow else {}
        with self._cond:
            targets = [t for t in self.targets if t.wants(event_type, resources)]
        for target in targets:
            delivery = Delivery(event_id, event_type, batch_id, object_id, target, body)
            if self._chance.hit(self._faults.webhook_drop_rate):
                self._stats.incr("webhooks_dropped")
                self._record(delivery, outcome="dropped")
                continue
            delay = self._chance.uniform(0, REORDER_WINDOW_S) if self._faults.webhook_reorder else 0.0
            self._schedule(delivery, delay)
            if self._chance.hit(self._faults.webhook_duplicate_rate):
                self._stats.incr("webhooks_duplicated")
                twin = Delivery(event_id, event_type, batch_id, object_id, target, body, duplicate=True)
                self._schedule(twin, delay + DUPLICATE_GAP_S)

    # -- internals -------------------------------------------------------------------------------
    def _schedule(self, delivery: Delivery, delay: float) -> None:
        with self._cond:
            heapq.heappush(self._heap, _Scheduled(time.monotonic() + delay, next(self._seq), delivery))
            self._cond.notify_all()

    def _record(
        self, delivery: Delivery, *, outcome: str, status: int | None = None, error: str = ""
    ) -> None:
        with self._cond:
            self.log.append(
                {
                    "eventId": delivery.event_id,
                    "eventType": delivery.event_type,
                    "batchId": delivery.batch_id,
                    "objectId": delivery.object_id,
                    "url": delivery.target.url,
                    "attempt": delivery.attempt,
                    "duplicate": delivery.duplicate,
                    "statusCode": status,
                    "error": error or None,
                    "outcome": outcome,  # delivered | retrying | failed | dropped
                    "at": iso(time.time()),
                }
            )

    def _next_due(self) -> Delivery | None:
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                if self._heap and self._heap[0].due <= now:
                    self._in_flight += 1
                    return heapq.heappop(self._heap).delivery
                self._cond.wait(self._heap[0].due - now if self._heap else None)
            return None

    def _loop(self) -> None:
        while (delivery := self._next_due()) is not None:
            try:
                self._send(delivery)
            finally:
                with self._cond:
                    self._in_flight -= 1

    def _send(self, delivery: Delivery) -> None:
        # Signed at send time, so a retry carries a fresh timestamp (as a real sender's would).
        headers = {
            "content-type": "application/json",
            "user-agent": "extend-simulator",
            **signature_headers(delivery.target.secret, delivery.body),
        }
        status: int | None = None
        error = ""
        try:
            status = self._http.post(delivery.target.url, content=delivery.body, headers=headers).status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._stats.incr("webhooks_sent")
        if status is not None and 200 <= status < 300:
            self._stats.incr("webhooks_delivered")
            self._record(delivery, outcome="delivered", status=status)
            return
        if delivery.attempt > len(self.retry_delays) or self._stop.is_set():
            self._stats.incr("webhooks_failed")
            self._record(delivery, outcome="failed", status=status, error=error)
            return
        self._record(delivery, outcome="retrying", status=status, error=error)
        delay = self.retry_delays[delivery.attempt - 1]
        delivery.attempt += 1
        self._schedule(delivery, delay)
