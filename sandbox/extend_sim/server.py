"""``ExtendSimulator``: wires the engine, webhooks, limits and faults together, holds the settings, and
answers each request: auth, rate limits and request-level faults, then the ``api`` handler of its route.
The HTTP plumbing is in ``http_server``.

Limits follow Extend's plans (``plan="payg"``: 80 files/min of processing across the workspace and 10
requests/s for reads and for writes; ``scale``, ``enterprise``), or are set one by one. By default
nothing is limited. README.md in this package describes the settings and the ``/_sim`` API.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sandbox.extend_sim import api
from sandbox.extend_sim.engine import Engine
from sandbox.extend_sim.faults import Chance, Faults
from sandbox.extend_sim.http_server import SimHTTPServer, SimRequestHandler
from sandbox.extend_sim.limits import TokenBucket
from sandbox.extend_sim.messages import ApiError, Request, Response, not_found
from sandbox.extend_sim.model import new_id
from sandbox.extend_sim.settings import PLANS, SETTING_NAMES, checked_changes
from sandbox.extend_sim.stats import Stats
from sandbox.extend_sim.webhooks import DEFAULT_RETRY_DELAYS, Target, WebhookSender

log = logging.getLogger(__name__)

_COMPILED_ROUTES = [
    (method, template, re.compile("^" + template.replace("{id}", "(?P<id>[^/]+)") + "$"), handler)
    for method, template, handler in api.ROUTES
]


class ExtendSimulator:
    """A fake Extend API on a local port. ``start()`` serves from background threads; ``stop()`` ends them."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        plan: str | None = None,
        files_per_minute: float | None = None,
        read_rps: float | None = None,
        write_rps: float | None = None,
        missing_retry_after_share: float = 0.0,
        default_sort_by: str = "updatedAt",
        allowed_processors: Iterable[str] | None = None,
        refused_processors: Iterable[str] = (),
        workflow_review_share: float = 0.0,
        parse_output_url: bool = False,
        output_url_ttl_seconds: float = 900.0,
        max_file_bytes: int = 0,
        seed: int = 0,
        faults: Faults | None = None,
        workers: int = 4,
        processing_delay: float = 0.0,
        webhook_retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
    ) -> None:
        """``plan`` sets the three limits from Extend's plan table; ``files_per_minute``, ``read_rps``
        and ``write_rps`` override it one by one (0: unlimited). Without either, nothing is limited."""
        if webhook_url and not webhook_secret:
            raise ValueError("webhook_url needs a webhook_secret to sign deliveries with")
        self._address = (host, port)
        self.faults = faults or Faults()
        self.stats = Stats()
        self.chance = Chance(seed)
        self.api_key = api_key
        self.allowed_processors = set(allowed_processors) if allowed_processors is not None else None
        self.refused_processors: set[str] = set()
        self.missing_retry_after_share = 0.0
        self.default_sort_by = "updatedAt"
        self.parse_output_url = False
        self.output_url_ttl_seconds = 900.0
        self.read_limit = TokenBucket(0)
        self.write_limit = TokenBucket(0)
        self.webhooks = WebhookSender(
            faults=self.faults,
            chance=self.chance,
            stats=self.stats,
            payload_url=lambda event_id: f"{self.base_url}/_sim/payloads/{event_id}",
            retry_delays=webhook_retry_delays,
        )
        if webhook_url and webhook_secret:
            self.webhooks.add_target(Target(webhook_url, webhook_secret))
        self.engine = Engine(
            faults=self.faults,
            stats=self.stats,
            webhooks=self.webhooks,
            chance=self.chance,
            base_url=lambda: self.base_url,
            files_per_minute=0,
            workers=workers,
            processing_delay=processing_delay,
        )
        # The engine and the API share one lock, so batch/run state and fault counters change together.
        self.lock = self.engine.lock
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None
        settings: dict[str, Any] = {
            "refused_processors": list(refused_processors),
            "missing_retry_after_share": missing_retry_after_share,
            "default_sort_by": default_sort_by,
            "workflow_review_share": workflow_review_share,
            "parse_output_url": parse_output_url,
            "output_url_ttl_seconds": output_url_ttl_seconds,
            "max_file_bytes": max_file_bytes,
        }
        if plan is not None:
            settings["plan"] = plan
        for name, value in (
            ("files_per_minute", files_per_minute),
            ("read_rps", read_rps),
            ("write_rps", write_rps),
        ):
            if value is not None:
                settings[name] = value
        self.configure(**settings)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> ExtendSimulator:
        self._server = SimHTTPServer(self._address, SimRequestHandler)
        self._server.sim = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="extend-sim-http",
            daemon=True,
        )
        self._thread.start()
        self.engine.start()
        self.webhooks.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._server = None
        self.engine.stop()
        self.webhooks.stop()

    def __enter__(self) -> ExtendSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- runtime configuration -------------------------------------------------------------------
    SETTINGS = SETTING_NAMES

    def configure(self, **changes: Any) -> None:
        """Change settings while running (see ``SETTINGS``; None clears a key or the allowed list).

        ``plan`` sets files_per_minute, read_rps and write_rps from Extend's plan table; any of those
        given in the same call wins over the plan. Raises ValueError (nothing changes then)."""
        changes = checked_changes(changes)
        # Everything is valid: apply.
        with self.lock:
            if "api_key" in changes:
                self.api_key = changes["api_key"]
            if "allowed_processors" in changes:
                allowed = changes["allowed_processors"]
                self.allowed_processors = None if allowed is None else set(allowed)
            if "refused_processors" in changes:
                self.refused_processors = set(changes["refused_processors"] or ())
            if "missing_retry_after_share" in changes:
                self.missing_retry_after_share = changes["missing_retry_after_share"]
            if "default_sort_by" in changes:
                self.default_sort_by = changes["default_sort_by"]
            if "workflow_review_share" in changes:
                self.engine.review_share = changes["workflow_review_share"]
            if "parse_output_url" in changes:
                self.parse_output_url = changes["parse_output_url"]
            if "output_url_ttl_seconds" in changes:
                self.output_url_ttl_seconds = changes["output_url_ttl_seconds"]
            if "max_file_bytes" in changes:
                self.engine.max_file_bytes = int(changes["max_file_bytes"])
        if "files_per_minute" in changes:
            self.engine.set_files_per_minute(changes["files_per_minute"])
        if "read_rps" in changes:
            self.read_limit.configure(changes["read_rps"])
        if "write_rps" in changes:
            self.write_limit.configure(changes["write_rps"])
        if "paused" in changes:
            self.engine.set_paused(changes["paused"])

    def config(self) -> dict[str, Any]:
        with self.lock:
            limits = (self.engine.throughput.rate * 60, self.read_limit.rate, self.write_limit.rate)
            plan = next((name for name, values in PLANS.items() if values == limits), "custom")
            return {
                "api_key": self.api_key,
                "allowed_processors": sorted(self.allowed_processors)
                if self.allowed_processors is not None
                else None,
                "refused_processors": sorted(self.refused_processors),
                "plan": plan,
                "files_per_minute": limits[0],
                "read_rps": limits[1],
                "write_rps": limits[2],
                "missing_retry_after_share": self.missing_retry_after_share,
                "default_sort_by": self.default_sort_by,
                "paused": self.engine.paused,
                "workflow_review_share": self.engine.review_share,
                "parse_output_url": self.parse_output_url,
                "output_url_ttl_seconds": self.output_url_ttl_seconds,
                "max_file_bytes": self.engine.max_file_bytes,
            }

    def processor_exists(self, processor_id: str) -> bool:
        with self.lock:
            if processor_id in self.refused_processors:
                return False
            return self.allowed_processors is None or processor_id in self.allowed_processors

    def reset(self) -> None:
        """Forget batches, runs, files, deliveries, API-registered webhook endpoints, stats and faults."""
        self.engine.reset()
        self.webhooks.reset()
        self.stats.reset()
        self.chance.reseed()
        with self.lock:
            self.faults.update(Faults().as_dict())
        self.read_limit.configure(self.read_limit.rate)
        self.write_limit.configure(self.write_limit.rate)

    # -- request handling ------------------------------------------------------------------------
    def handle(self, request: Request) -> tuple[str, Response]:
        """(route template for stats, response) for one request."""
        request_id = new_id("req_")
        route_name, handler = "unmatched", None
        for method, template, pattern, candidate in _COMPILED_ROUTES:
            match = pattern.match(request.path)
            if match and method == request.method:
                route_name, handler = template, candidate
                request.params = match.groupdict()
                break
        try:
            if not request.path.startswith("/_sim/"):
                self._before_api_call(request)
            if handler is None:
                raise not_found(f"No route for {request.method} {request.path}")
            response = handler(self, request)
        except ApiError as err:
            response = Response(err.status, _error_body(err, request_id), dict(err.headers))
        except Exception:  # a simulator bug answers 500, as a real server would
            log.exception("unhandled error for %s %s", request.method, request.path)
            error = ApiError(500, "INTERNAL_ERROR", "simulator error", retryable=True)
            response = Response(500, _error_body(error, request_id))
        response.headers.setdefault("x-extend-request-id", request_id)
        return f"{request.method} {route_name}", response

    def _before_api_call(self, request: Request) -> None:
        """Latency, auth, read rate limit and injected 5xx for the public API, in that order."""
        if self.faults.latency_ms > 0:
            time.sleep(self.faults.latency_ms / 1000)
        authorization = request.headers.get("authorization", "")
        if not authorization.startswith("Bearer ") or not authorization[7:].strip():
            raise ApiError(401, "UNAUTHORIZED", "Missing bearer token in the Authorization header")
        with self.lock:
            expected = self.api_key
        if expected is not None and authorization[7:].strip() != expected:
            raise ApiError(401, "UNAUTHORIZED", "Invalid API key")
        if not request.headers.get("x-extend-api-version"):
            raise ApiError(400, "INVALID_REQUEST", "The x-extend-api-version header is required")
        # Reads (GET) and writes (every other method: batch POSTs, uploads) have a budget each.
        request_class = "read" if request.method == "GET" else "write"
        wait = self._read_wait() if request_class == "read" else self.write_limit.try_take()
        if wait:
            raise self._rate_limited(request_class, wait)
        if self.chance.hit(self.faults.error_5xx_rate):
            self.stats.incr("errors_injected")
            raise ApiError(500, "INTERNAL_ERROR", "Simulated internal error", retryable=True)

    def _rate_limited(self, request_class: str, wait: float) -> ApiError:
        """The 429 for a request that must wait ``wait`` seconds. ``x-ratelimit-reset`` (Unix seconds
        when the budget allows the request again, as the SDK reads it) is always sent; ``Retry-After``
        (seconds) is left out of the ``missing_retry_after_share`` of answers."""
        retry_after = not self.chance.hit(self.missing_retry_after_share)
        headers = {"x-ratelimit-reset": str(math.ceil(time.time() + wait))}
        if retry_after:
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        self.stats.rate_limited(request_class, retry_after=retry_after)
        kind = "GET" if request_class == "read" else "write"
        return ApiError(
            429,
            "RATE_LIMIT_EXCEEDED",
            f"Rate limit exceeded for {kind} requests. Please retry after some time.",
            retryable=True,
            headers=headers,
        )

    def _read_wait(self) -> float:
        """Seconds the caller must wait before this GET is allowed (0: allowed now)."""
        with self.lock:
            storm_left = self.faults.rate_limit_storm_until - time.time()
            if storm_left > 0:
                return storm_left
            if self.faults.rate_limit_storm_requests > 0:
                self.faults.rate_limit_storm_requests -= 1
                return 1.0
        return self.read_limit.try_take()


def _error_body(err: ApiError, request_id: str) -> dict[str, Any]:
    return {"code": err.code, "message": err.message, "retryable": err.retryable, "requestId": request_id}
