"""The HTTP side: a stdlib ThreadingHTTPServer on loopback that routes to ``api`` handlers, applies auth,
rate limits and request-level faults, and records request stats.

Limits follow Extend's plans (``plan="payg"``: 80 files/min of processing across the workspace and 10
requests/s for reads and for writes; ``scale``, ``enterprise``), or are set one by one. By default
nothing is limited. README.md in this package describes the settings and the ``/_sim`` API.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sandbox.extend_sim import api
from sandbox.extend_sim.engine import Engine
from sandbox.extend_sim.faults import Chance, Faults
from sandbox.extend_sim.limits import TokenBucket
from sandbox.extend_sim.messages import ApiError, Request, Response, not_found
from sandbox.extend_sim.model import new_id
from sandbox.extend_sim.stats import Stats
from sandbox.extend_sim.webhooks import DEFAULT_RETRY_DELAYS, Target, WebhookSender

log = logging.getLogger(__name__)

# Extend's published limits per plan: (files per minute, GET requests/s, WRITE/RUN requests/s).
PLANS: dict[str, tuple[float, float, float]] = {
    "payg": (80, 10, 10),
    "scale": (120, 25, 25),
    "enterprise": (300, 75, 75),
    "unlimited": (0, 0, 0),
}
SORT_FIELDS = ("createdAt", "updatedAt")

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
        self._server: _Server | None = None
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
        self._server = _Server(self._address, _Handler)
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
    SETTINGS = (
        "api_key",
        "allowed_processors",
        "refused_processors",
        "plan",
        "files_per_minute",
        "read_rps",
        "write_rps",
        "missing_retry_after_share",
        "default_sort_by",
        "paused",
        "workflow_review_share",
        "parse_output_url",
        "output_url_ttl_seconds",
        "max_file_bytes",
    )

    def configure(self, **changes: Any) -> None:
        """Change settings while running (see ``SETTINGS``; None clears a key or the allowed list).

        ``plan`` sets files_per_minute, read_rps and write_rps from Extend's plan table; any of those
        given in the same call wins over the plan. Raises ValueError (nothing changes then)."""
        unknown = set(changes) - set(self.SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        if "plan" in changes:
            plan = changes.pop("plan")
            if plan not in PLANS:
                raise ValueError(f"plan must be one of {', '.join(PLANS)}")
            for name, value in zip(("files_per_minute", "read_rps", "write_rps"), PLANS[plan], strict=True):
                changes.setdefault(name, value)
        api_key = changes.get("api_key")
        if api_key is not None and not isinstance(api_key, str):
            raise ValueError("api_key must be a string or null")
        for name in ("allowed_processors", "refused_processors"):
            value = changes.get(name)
            if value is not None and (isinstance(value, str) or not all(isinstance(p, str) for p in value)):
                raise ValueError(f"{name} must be a list of ids")
        numbers = {}
        for name in ("files_per_minute", "read_rps", "write_rps", "output_url_ttl_seconds", "max_file_bytes"):
            if name in changes:
                numbers[name] = _number(name, changes[name], low=0)
        for name in ("missing_retry_after_share", "workflow_review_share"):
            if name in changes:
                numbers[name] = _number(name, changes[name], low=0, high=1)
        for name in ("paused", "parse_output_url"):
            if name in changes and not isinstance(changes[name], bool):
                raise ValueError(f"{name} must be true or false")
        if "default_sort_by" in changes and changes["default_sort_by"] not in SORT_FIELDS:
            raise ValueError(f"default_sort_by must be one of {', '.join(SORT_FIELDS)}")
        # Everything is valid: apply.
        with self.lock:
            if "api_key" in changes:
                self.api_key = api_key
            if "allowed_processors" in changes:
                allowed = changes["allowed_processors"]
                self.allowed_processors = None if allowed is None else set(allowed)
            if "refused_processors" in changes:
                self.refused_processors = set(changes["refused_processors"] or ())
            if "missing_retry_after_share" in numbers:
                self.missing_retry_after_share = numbers["missing_retry_after_share"]
            if "default_sort_by" in changes:
                self.default_sort_by = changes["default_sort_by"]
            if "workflow_review_share" in numbers:
                self.engine.review_share = numbers["workflow_review_share"]
            if "parse_output_url" in changes:
                self.parse_output_url = changes["parse_output_url"]
            if "output_url_ttl_seconds" in numbers:
                self.output_url_ttl_seconds = numbers["output_url_ttl_seconds"]
            if "max_file_bytes" in numbers:
                self.engine.max_file_bytes = int(numbers["max_file_bytes"])
        if "files_per_minute" in numbers:
            self.engine.set_files_per_minute(numbers["files_per_minute"])
        if "read_rps" in numbers:
            self.read_limit.configure(numbers["read_rps"])
        if "write_rps" in numbers:
            self.write_limit.configure(numbers["write_rps"])
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


def _number(name: str, value: Any, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if value < low or (high is not None and value > high):
        raise ValueError(
            f"{name} must be between {low} and {high}" if high is not None else f"{name} must be >= {low}"
        )
    return float(value)


def _error_body(err: ApiError, request_id: str) -> dict[str, Any]:
    return {"code": err.code, "message": err.message, "retryable": err.retryable, "requestId": request_id}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sim: ExtendSimulator

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def track(self, conn: socket.socket, alive: bool) -> None:
        with self._connections_lock:
            if alive:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        # Keep-alive connections would otherwise go on being served after stop().
        with self._connections_lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):  # already closed by the client
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real API behind a load balancer
    server_version = "ExtendSimulator/1.0"
    timeout = 60  # idle keep-alive connections are closed after this
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs add ~40 ms per request.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, alive=True)

    def finish(self) -> None:
        self.server.track(self.connection, alive=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path.rstrip("/") or "/",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        route, response = self.server.sim.handle(request)
        self.server.sim.stats.request(route, "lost" if response.abort else response.status)
        if response.abort:
            self._reset_connection()
            return
        data = json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            while self.rfile.readline().strip():  # optional trailers, then the blank line
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP reset, so the client gets no response at all."""
        self.close_connection = True
        # Linger 0 turns close() into a RST instead of an orderly FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
