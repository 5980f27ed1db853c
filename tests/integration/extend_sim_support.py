"""What the Extend simulator's tests share: a loopback file/webhook server, simulators on free ports, and
small clients of the simulator's API (plain httpx, not batchdrop's client)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.extend_simulator import ExtendSimulator

HEADERS = {"Authorization": "Bearer sk_test", "x-extend-api-version": "2026-02-09"}
SECRET = "wss_test_secret"
INVOICE = "INVOICE\nInvoice Number: INV-1042\nTotal: 1250.50\nDate: 2026-11-01\n"
# What S3 answers for a presigned URL past its expiry.
S3_EXPIRED = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
REPO_ROOT = Path(__file__).resolve().parents[2]


# -- a loopback server that serves files and records webhook POSTs -------------------------------------


class LocalServer:
    """Serves ``files`` (path -> (status, bytes)) on GET and records POSTs, answering them with the
    statuses in ``post_statuses`` first (then 200). A path in ``expires`` (path -> epoch seconds) is
    refused after that time as S3 refuses an expired presigned URL (403 AccessDenied, "Request has
    expired")."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[int, bytes]] = {}
        self.expires: dict[str, float] = {}
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.post_statuses: list[int] = []
        self.cond = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if time.time() > owner.expires.get(path, float("inf")):
                    expired = (
                        b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
                    )
                    self._answer(403, expired)
                    return
                status, body = owner.files.get(path, (404, b"not found"))
                self._answer(status, body)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner.cond:
                    owner.posts.append((dict(self.headers.items()), body))
                    status = owner.post_statuses.pop(0) if owner.post_statuses else 200
                    owner.cond.notify_all()
                self._answer(status, b"{}")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def wait_posts(self, count: int, timeout: float = 5.0) -> list[tuple[dict[str, str], bytes]]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.posts) >= count, timeout), self.posts
            return list(self.posts)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def local() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def make_sim() -> Iterator[Callable[..., ExtendSimulator]]:
    """Start simulators on free loopback ports (fast webhook retries) and stop them afterwards."""
    started: list[ExtendSimulator] = []

    def make(**kwargs: Any) -> ExtendSimulator:
        kwargs.setdefault("webhook_retry_delays", (0.05, 0.1, 0.2))
        sim = ExtendSimulator(port=0, **kwargs).start()
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., ExtendSimulator]) -> ExtendSimulator:
    return make_sim()


def client(sim: ExtendSimulator, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=sim.base_url, headers={**HEADERS, **headers}, timeout=5)


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


PROCESSOR_KEYS = {
    "extract": "extractor",
    "classify": "classifier",
    "split": "splitter",
    "workflow": "workflow",
}


def submit(api: httpx.Client, kind: str, processor_id: str | None, files: list[dict], **extra: Any) -> dict:
    """POST a batch of ``files`` (parse: ``processor_id`` None); the answer must be 200."""
    body = {"inputs": [{"file": f} for f in files], **extra}
    if kind != "parse":
        body[PROCESSOR_KEYS[kind]] = {"id": processor_id}
    response = api.post(f"/{kind}_runs/batch", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def wait_batch(api: httpx.Client, batch_id: str, timeout: float = 5.0) -> dict:
    def done() -> dict | None:
        batch = api.get(f"/batch_runs/{batch_id}").json()
        return batch if batch["status"] in ("PROCESSED", "FAILED") else None

    return wait_for(done, timeout)


def batch_runs(api: httpx.Client, kind: str, batch_id: str) -> list[dict]:
    """Full runs of a batch, in input order."""
    sim_batches = httpx.get(f"{api.base_url}/_sim/batches").json()["batches"]
    run_ids = next(b["runIds"] for b in sim_batches if b["id"] == batch_id)
    return [api.get(f"/{kind}_runs/{run_id}").json() for run_id in run_ids]


def counters(sim: ExtendSimulator) -> dict[str, int]:
    return httpx.get(sim.base_url + "/_sim/stats").json()["counters"]


def batch_runs_ids(sim: ExtendSimulator, batch_id: str) -> list[str]:
    batches = httpx.get(sim.base_url + "/_sim/batches").json()["batches"]
    return next(b["runIds"] for b in batches if b["id"] == batch_id)


def sim_get(sim: ExtendSimulator, path: str) -> Any:
    return httpx.get(sim.base_url + path, timeout=5).json()


def sim_post(sim: ExtendSimulator, path: str, body: Any) -> httpx.Response:
    return httpx.post(sim.base_url + path, json=body, timeout=5)


def events(posts: list[tuple[dict[str, str], bytes]]) -> list[dict]:
    return [json.loads(body) for _, body in posts]
