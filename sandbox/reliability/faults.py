"""The faults a run injects and the schedule that applies them: crash points (``crashpoints``), Extend's
faults through the simulator, hostile webhooks.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from batchdrop_core.extend.signing import signature_headers
from sandbox.local import Sandbox
from sandbox.reliability.crashpoints import Seams, install_crash_points
from sandbox.reliability.observe import State
from sandbox.reliability.plan import (
    RARE_KINDS,
    ROUND_KINDS,
    TOKEN_KINDS,
    WINDOW_KINDS,
    RunOptions,
)

if TYPE_CHECKING:
    from sandbox.reliability.runner import Driver

REVOKED_KEY = "sk_revoked_by_the_reliability_run"


class FaultInjector:
    """Installs the crash points in the real code paths and runs the fault schedule."""

    def __init__(self, sandbox: Sandbox, options: RunOptions, webhook_secret: str) -> None:
        self.sandbox = sandbox
        self.sim = sandbox.simulator
        self.options = options
        self.webhook_secret = webhook_secret
        self.counts: Counter[str] = Counter()
        self.webhook_replies: list[tuple[str, int]] = []  # (case, status) of every forged request
        self.rounds: list[tuple[float, list[str]]] = []  # (seconds since start, kinds) of every round
        self.unconsumed: list[str] = []  # token kinds still pending when the schedule stopped
        self._tokens: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._seams = Seams()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._windows: dict[str, float] = {}  # kind -> monotonic end
        self._started = time.monotonic()
        self._api_key = sandbox.simulator.api_key

    # tokens
    def grant(self, kind: str) -> None:
        # At most one pending per kind: rounds that find nothing to hit must not pile faults up.
        with self._lock:
            self._tokens[kind] = 1

    def pending(self) -> list[str]:
        """Kinds granted that no event has consumed yet."""
        with self._lock:
            return sorted(kind for kind, count in self._tokens.items() if count > 0)

    def take(self, kind: str) -> bool:
        with self._lock:
            if self._tokens[kind] <= 0:
                return False
            self._tokens[kind] -= 1
            self.counts[kind] += 1
            return True

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def key_revoked(self) -> bool:
        """The api_key_revoked window is open: Extend refuses every request."""
        return "api_key_revoked" in self._windows

    # installation
    def install(self) -> None:
        install_crash_points(self, self._seams)
        injector = self

        def publish(original: Callable[..., None]) -> Callable[..., None]:
            def send(event_type: str, batch_run: dict[str, Any]) -> None:
                # Extend never sends this event (besides the share the simulator's own drop rate loses).
                if not injector.take("webhook_dropped"):
                    original(event_type, batch_run)

            return send

        self._seams.wrap(self.sim.webhooks, "publish", publish)

    # the schedule
    def start(self) -> None:
        faults = self.sim.faults
        faults.error_5xx_rate = self.options.error_5xx_rate
        faults.webhook_drop_rate = self.options.webhook_drop_rate
        faults.webhook_duplicate_rate = self.options.webhook_duplicate_rate
        faults.webhook_reorder = True
        self._thread = threading.Thread(target=self._run, name="fault-schedule", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Rounds start once Extend holds a batch, so each fault lands on a pipeline at work.
        while not self.sim.engine.batches and not self._stop.wait(0.2):
            pass
        round_number = applied = 0
        next_round = time.monotonic()
        batches_seen = 0
        calm_at = next_round + self.options.fault_seconds if self.options.fault_seconds is not None else None
        limit = self.options.fault_rounds
        while not self._stop.wait(0.2):
            now = time.monotonic()
            self._end_windows(now)
            if calm_at is not None and now >= calm_at:
                # The faulty period is over: the rest of the run shows the pipeline settles everything.
                self._calm_rates()
                limit = round_number
                calm_at = None
            drop_for = self.options.webhook_drop_seconds
            if drop_for is not None and now - self._started > drop_for:
                self.sim.faults.webhook_drop_rate = 0.0
            # One round per new batch at Extend (and at most one per fault_interval): the faults keep
            # pace with the pipeline however fast this machine is.
            batches_now = len(self.sim.engine.batches)
            if batches_now > batches_seen and now >= next_round and (limit is None or round_number < limit):
                batches_seen = batches_now
                kinds: list[str] = []
                for _ in range(self.options.kinds_per_round):
                    kind = ROUND_KINDS[applied % len(ROUND_KINDS)]
                    this_pass = applied // len(ROUND_KINDS)
                    applied += 1
                    try:
                        if kind not in RARE_KINDS or this_pass % self.options.rare_every == 0:
                            self._apply(kind)
                            kinds.append(kind)
                    except Exception as exc:  # noqa: BLE001 - a failed injection must not end the schedule
                        print(f"fault round failed: {exc!r}", file=sys.stderr)
                self.rounds.append((round(now - self._started, 1), kinds))
                round_number += 1
                next_round = now + self.options.fault_interval

    def _apply(self, kind: str) -> None:
        now = time.monotonic()
        if kind == "lost_post_response":
            with self.sim.lock:
                self.sim.faults.lose_post_response = 1
        elif kind == "batch_failed_by_extend":
            with self.sim.lock:
                self.sim.faults.fail_batches = 1
        elif kind in TOKEN_KINDS:
            self.grant(kind)
        elif kind in WINDOW_KINDS:
            if kind in self._windows:
                return
            self.counts[kind] += 1
            if kind == "rate_limit_storm":
                with self.sim.lock:  # every GET for a while, and at least the next few
                    self.sim.faults.rate_limit_storm_until = time.time() + self.options.storm_seconds
                    self.sim.faults.rate_limit_storm_requests = 5
                self._windows[kind] = now + self.options.storm_seconds
            elif kind == "api_key_revoked":
                self.sim.configure(api_key=REVOKED_KEY)
                self._windows[kind] = now + self.options.revoke_seconds
            else:
                self.sim.faults.signed_url_payload = True
                self._windows[kind] = now + 3 * self.options.fault_interval
        elif kind == "forged_webhooks":
            self.forge_webhooks()
        elif kind == "webhook_replay":
            self.replay_webhook()

    def _end_windows(self, now: float) -> None:
        for kind, until in list(self._windows.items()):
            if now < until:
                continue
            del self._windows[kind]
            if kind == "api_key_revoked":
                self.sim.configure(api_key=self._api_key)
            elif kind == "webhook_signed_url_payload":
                self.sim.faults.signed_url_payload = False

    def _calm_rates(self) -> None:
        with self.sim.lock:
            faults = self.sim.faults
            faults.error_5xx_rate = 0.0
            faults.webhook_drop_rate = 0.0
            faults.webhook_duplicate_rate = 0.0
            faults.webhook_reorder = False

    def stop(self) -> None:
        """End the schedule and every fault, so the pipeline can settle."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self._end_windows(float("inf"))
        self._calm_rates()
        with self.sim.lock:
            faults = self.sim.faults
            faults.rate_limit_storm_until = 0.0
            faults.rate_limit_storm_requests = 0
            faults.lose_post_response = 0
            faults.fail_batches = 0
            faults.signed_url_payload = False
        self.unconsumed = self.pending()  # granted too late for any event to hit
        with self._lock:
            self._tokens.clear()

    def uninstall(self) -> None:
        self._seams.undo()

    # webhooks an attacker, a broken sender or a replay could make
    def _post(self, case: str, body: bytes, headers: dict[str, str]) -> int:
        status = self._send(body, headers)
        self.webhook_replies.append((case, status))
        return status

    def _send(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            return httpx.post(
                self.sandbox.webhook_url,
                content=body,
                headers={"content-type": "application/json", **headers},
                timeout=15,
            ).status_code
        except httpx.HTTPError:
            return 0

    def forge_webhooks(self) -> None:
        batch_id = self._some_batch_id() or "bpr_forged"
        body = _event(f"evt_forged_{uuid.uuid4().hex[:12]}", batch_id)
        now = int(time.time())
        secret = self.webhook_secret
        cases = [
            ("no signature", body, {}),
            ("wrong secret", body, signature_headers("wss_attacker_guess", body)),
            ("tampered body", body.replace(b"processed", b"failed"), signature_headers(secret, body)),
            ("stale timestamp", body, signature_headers(secret, body, now - 600)),
            ("future timestamp", body, signature_headers(secret, body, now + 600)),
            ("not JSON", b"{not json", signature_headers(secret, b"{not json")),
            ("huge body", b"x" * 300_000, signature_headers(secret, b"x" * 300_000)),
        ]
        for case, content, headers in cases:
            self._post(case, content, headers)
            self.counts["forged_webhooks"] += 1
        unknown = json.dumps(
            {
                "eventId": f"evt_{uuid.uuid4().hex[:12]}",
                "eventType": "workflow_run.step_run.processed",
                "payload": {},
            }
        ).encode()
        self._post("unknown event type (validly signed)", unknown, signature_headers(secret, unknown))
        self.counts["webhook_unknown_event_type"] += 1

    def replay_webhook(self) -> None:
        """A validly signed batch event for a batch that exists, under a new event id: collection again."""
        batch_id = self._some_batch_id(finished=True)
        if not batch_id:
            return
        body = _event(f"evt_replay_{uuid.uuid4().hex[:12]}", batch_id)
        # Sent as Extend sends: a 5xx (an injected webhook crash may take this request) is retried, signed
        # anew, and the last answer is the one checked.
        for _ in range(3):
            status = self._send(body, signature_headers(self.webhook_secret, body))
            if status and status < 500:
                break
            time.sleep(1.0)
        self.webhook_replies.append(("replayed batch event", status))
        self.counts["webhook_replay"] += 1

    def _some_batch_id(self, finished: bool = False) -> str | None:
        with self.sim.lock:
            batches = [
                b.id for b in self.sim.engine.batches.values() if not finished or b.status != "PENDING"
            ]
        return random.choice(batches) if batches else None


def _event(event_id: str, batch_id: str, event_type: str = "batch_processor_run.processed") -> bytes:
    payload = {"object": "batch_run", "id": batch_id, "status": "PROCESSED", "runCount": 1}
    return json.dumps({"eventId": event_id, "eventType": event_type, "payload": payload}).encode()


def fault_counts(
    injector: FaultInjector | None, driver: Driver, stats: dict[str, Any], state: State
) -> dict[str, int]:
    counters = stats["counters"]
    requests = stats["requests"]
    posts_5xx = sum(codes.get("500", 0) for route, codes in requests.items() if route.endswith("/batch"))
    counts: dict[str, int] = {
        "http_5xx": counters["errors_injected"],
        "http_5xx_on_batch_post": posts_5xx,
        "lost_post_response": counters["responses_lost"],
        "http_429": counters["rate_limited"],
        "http_401_while_key_revoked": sum(codes.get("401", 0) for codes in requests.values()),
        "webhook_dropped": counters["webhooks_dropped"],
        "webhook_duplicated": counters["webhooks_duplicated"],
        "webhook_reordered": counters["webhooks_sent"] if injector else 0,
        "expired_url_downloads_refused": counters["downloads_failed"],
    }
    if injector:
        counts.update(
            (kind, count)
            for kind, count in sorted(injector.counts.items())
            if kind not in ("lost_post_response", "batch_failed_by_extend")
        )
        counts["webhook_dropped"] = counters["webhooks_dropped"] + injector.counts["webhook_dropped"]
    counts["batch_failed_by_extend"] = sum(1 for b in state.sim_batches if b["status"] == "FAILED")
    counts.update(driver.counts)
    return counts
