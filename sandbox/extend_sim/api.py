"""Endpoint implementations: request validation and the JSON each endpoint answers with.

Public endpoints mirror Extend (see docs in /work/shared/reference/extend-api.md); ``/_sim/*`` endpoints
are the simulator's own inspection and control surface and need no auth.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.extend_sim.model import KINDS, RUN_STATUSES, Kind, iso, new_id
from sandbox.extend_sim.multipart import parse_multipart
from sandbox.extend_sim.webhooks import Target

if TYPE_CHECKING:
    from sandbox.extend_sim.server import ExtendSimulator

MAX_INPUTS = 1000
MAX_METADATA_BYTES = 10 * 1024
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, retryable: bool = False, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_REQUEST", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the path template

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid(f"Body is not valid JSON: {exc}") from exc


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Reset the connection instead of answering (the lose_post_response fault).
    abort: bool = False


Handler = Callable[["ExtendSimulator", Request], Response]


# -- batch create ------------------------------------------------------------------------------------


def _check_file_ref(kind: Kind, ref: Any, where: str) -> None:
    if not isinstance(ref, dict):
        raise invalid(f"{where}.file must be an object with url, id or text")
    unknown = set(ref) - {"url", "id", "text", "name", "settings"}
    if unknown:
        raise invalid(f"{where}.file has unknown field(s): {', '.join(sorted(unknown))}")
    sources = [key for key in ("url", "id", "text") if key in ref]
    if len(sources) != 1:
        raise invalid(f"{where}.file needs exactly one of url, id or text")
    source = sources[0]
    if not isinstance(ref[source], str) or not ref[source]:
        raise invalid(f"{where}.file.{source} must be a non-empty string")
    if source == "text" and not kind.accepts_text:
        raise invalid(f"{where}.file: text inputs are not supported for {kind.name} runs; use url or id")
    if source == "url" and not re.match(r"https?://", ref["url"]):
        raise invalid(f"{where}.file.url must be an http(s) URL")
    if "name" in ref and not isinstance(ref["name"], str):
        raise invalid(f"{where}.file.name must be a string")


def _check_inputs(kind: Kind, inputs: Any) -> list[dict[str, Any]]:
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_INPUTS:
        count = len(inputs) if isinstance(inputs, list) else "no"
        raise invalid(f"inputs must hold 1 to {MAX_INPUTS} items (got {count})")
    for i, item in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"{where} must be an object")
        # The server's per-input schema is exactly {file, metadata?}.
        unknown = set(item) - {"file", "metadata"}
        if unknown:
            raise invalid(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
        _check_file_ref(kind, item.get("file"), where)
        metadata = item.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise invalid(f"{where}.metadata must be an object")
            size = len(json.dumps(metadata, separators=(",", ":")).encode("utf-8"))
            if size > MAX_METADATA_BYTES:
                raise invalid(f"{where}.metadata is {size} bytes; the maximum is {MAX_METADATA_BYTES}")
    return inputs


def _check_processor(kind: Kind, processor: Any) -> dict[str, Any]:
    key = kind.processor_key
    if not isinstance(processor, dict) or not isinstance(processor.get("id"), str) or not processor["id"]:
        raise invalid(f"{key}.id is required (inline config is not supported for batches)")
    unknown = set(processor) - {"id", "version", "overrideConfig"}
    if unknown:
        raise invalid(f"{key} has unknown field(s): {', '.join(sorted(unknown))}")
    if not processor["id"].startswith(kind.processor_prefix):
        raise invalid(f"{key}.id must start with {kind.processor_prefix!r}")
    if "version" in processor and not isinstance(processor["version"], str):
        raise invalid(f"{key}.version must be a string")
    if "overrideConfig" in processor and not isinstance(processor["overrideConfig"], dict):
        raise invalid(f"{key}.overrideConfig must be an object")
    return processor


def create_batch(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise invalid("Body must be a JSON object")
    unknown = set(body) - {kind.processor_key, "inputs", "priority"}
    if unknown:
        raise invalid(f"Unknown field(s): {', '.join(sorted(unknown))}")
    processor = _check_processor(kind, body.get(kind.processor_key))
    inputs = _check_inputs(kind, body.get("inputs"))
    priority = body.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        raise invalid("priority must be an integer")
    allowed = sim.allowed_processors
    if allowed is not None and processor["id"] not in allowed:
        raise not_found(f"{kind.processor_key.capitalize()} {processor['id']} not found")
    batch = sim.engine.create_batch(kind, processor, inputs, priority)
    with sim.lock:
        lose = sim.faults.lose_post_response > 0
        if lose:
            sim.faults.lose_post_response -= 1
            batch.response_lost = True
    if lose:
        sim.stats.incr("responses_lost")
        return Response(200, abort=True)
    return Response(200, batch.to_api())


# -- reads -------------------------------------------------------------------------------------------


def get_batch(sim: ExtendSimulator, req: Request) -> Response:
    with sim.lock:
        batch = sim.engine.batches.get(req.params["id"])
        if batch is None:
            raise not_found(f"Batch run {req.params['id']} not found")
        return Response(200, batch.to_api())


def get_run(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    with sim.lock:
        run = sim.engine.runs.get(req.params["id"])
        if run is None or run.kind is not kind:
            raise not_found(f"{kind.object} {req.params['id']} not found")
        return Response(200, run.to_api(full=True, base_url=sim.base_url))


def _encode_token(sort_by: str, sort_dir: str, key: tuple[float, int]) -> str:
    raw = json.dumps({"by": sort_by, "dir": sort_dir, "key": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, sort_by: str, sort_dir: str) -> tuple[float, int]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        value, seq = data["key"]
        by, direction = data["by"], data["dir"]
        key = (float(value), int(seq))
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise invalid("nextPageToken is not valid") from exc
    if (by, direction) != (sort_by, sort_dir):
        raise invalid("nextPageToken was issued for a different sortBy/sortDir")
    return key


def list_runs(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    q = req.query
    try:
        size = int(q.get("maxPageSize", DEFAULT_PAGE_SIZE))
    except ValueError as exc:
        raise invalid("maxPageSize must be an integer") from exc
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid(f"maxPageSize must be between 1 and {MAX_PAGE_SIZE}")
    sort_by = q.get("sortBy", "createdAt")
    sort_dir = q.get("sortDir", "desc")
    if sort_by not in ("createdAt", "updatedAt"):
        raise invalid("sortBy must be createdAt or updatedAt")
    if sort_dir not in ("asc", "desc"):
        raise invalid("sortDir must be asc or desc")
    if "status" in q and q["status"] not in RUN_STATUSES:
        raise invalid(f"status must be one of {', '.join(sorted(RUN_STATUSES))}")
    after = _decode_token(q["nextPageToken"], sort_by, sort_dir) if q.get("nextPageToken") else None
    names = ("batchId", kind.filter_param, "status", "fileNameContains", "source")
    filters = {name: q[name] for name in names if name in q}
    runs, next_key = sim.engine.list_runs(
        kind, filters=filters, sort_by=sort_by, descending=sort_dir == "desc", after=after, limit=size
    )
    with sim.lock:
        data = [run.to_api(full=False, base_url=sim.base_url) for run in runs]
    token = _encode_token(sort_by, sort_dir, next_key) if next_key else None
    return Response(200, {"object": "list", "data": data, "nextPageToken": token})


# -- files and webhook endpoints ---------------------------------------------------------------------


def upload_file(sim: ExtendSimulator, req: Request) -> Response:
    try:
        parts = parse_multipart(req.headers.get("content-type", ""), req.body)
    except ValueError as exc:
        raise invalid(str(exc)) from exc
    part = parts.get("file")
    if part is None:
        raise invalid("multipart field 'file' is required")
    stored = sim.engine.add_file(part.filename or "file", part.data)
    return Response(200, stored.to_api())


def create_webhook_endpoint(sim: ExtendSimulator, req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise invalid("Body must be a JSON object")
    url = body.get("url")
    if not isinstance(url, str) or not re.match(r"https?://", url):
        raise invalid("url must be an http(s) URL")
    events = body.get("enabledEvents")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise invalid("enabledEvents must be a non-empty list of event types")
    status = body.get("status", "enabled")
    if status not in ("enabled", "disabled"):
        raise invalid("status must be enabled or disabled")
    endpoint_id = new_id("whe_")
    secret = "wss_sim_" + secrets.token_hex(16)
    if status == "enabled":
        sim.webhooks.add_target(Target(url, secret, list(events), endpoint_id))
    now = iso(time.time())
    return Response(
        200,
        {
            "object": "webhook_endpoint",
            "id": endpoint_id,
            "url": url,
            "name": body.get("name"),
            "enabledEvents": events,
            "apiVersion": body.get("apiVersion"),
            "status": status,
            "advancedOptions": body.get("advancedOptions"),
            "signingSecret": secret,  # returned only once, as by Extend
            "createdAt": now,
            "updatedAt": now,
        },
    )


# -- /_sim -------------------------------------------------------------------------------------------


def sim_batches(sim: ExtendSimulator, req: Request) -> Response:
    with sim.lock:
        engine = sim.engine
        batches = [
            {
                "id": b.id,
                "type": b.kind.name,
                "processor": {
                    "id": b.processor["id"],
                    "version": b.processor.get("version"),
                    "overrideConfig": b.processor.get("overrideConfig"),
                },
                "priority": b.priority,
                "createdAt": iso(b.created),
                "status": b.status,
                "runCount": len(b.run_ids),
                "runIds": list(b.run_ids),
                "runStatuses": dict(Counter(engine.runs[r].status for r in b.run_ids)),
                "inputs": [{"file": i["file"], "metadata": i.get("metadata")} for i in b.inputs],
                "responseLost": b.response_lost,
            }
            for b in sorted(engine.batches.values(), key=lambda b: (b.created, b.id))
        ]
    return Response(200, {"batches": batches})


def sim_stats(sim: ExtendSimulator, req: Request) -> Response:
    body = sim.stats.snapshot()
    with sim.lock:
        body["runsByStatus"] = dict(Counter(run.status for run in sim.engine.runs.values()))
    body["webhooksPending"] = sim.webhooks.pending()
    return Response(200, body)


def sim_faults(sim: ExtendSimulator, req: Request) -> Response:
    if req.method == "POST":
        changes = req.json()
        if not isinstance(changes, dict):
            raise invalid("Body must be a JSON object of fault names to values")
        with sim.lock:
            try:
                sim.faults.update(changes)
            except ValueError as exc:
                raise invalid(str(exc)) from exc
    with sim.lock:
        return Response(200, sim.faults.as_dict())


def sim_config(sim: ExtendSimulator, req: Request) -> Response:
    if req.method == "POST":
        changes = req.json()
        if not isinstance(changes, dict):
            raise invalid("Body must be a JSON object")
        known = {"api_key", "allowed_processors", "files_per_minute", "read_rps"}
        unknown = set(changes) - known
        if unknown:
            raise invalid(f"unknown setting(s): {', '.join(sorted(unknown))}")
        try:
            sim.configure(**changes)
        except (TypeError, ValueError) as exc:
            raise invalid(str(exc)) from exc
    return Response(200, sim.config())


def sim_webhooks(sim: ExtendSimulator, req: Request) -> Response:
    return Response(200, {"deliveries": sim.webhooks.deliveries(), "pending": sim.webhooks.pending()})


def sim_payload(sim: ExtendSimulator, req: Request) -> Response:
    payload = sim.webhooks.payloads.get(req.params["id"])
    if payload is None:
        raise not_found(f"No payload for event {req.params['id']}")
    return Response(200, payload)


def sim_run(sim: ExtendSimulator, req: Request) -> Response:
    # Where a run's dashboardUrl points: the full run, without auth, for people debugging the demo.
    with sim.lock:
        run = sim.engine.runs.get(req.params["id"])
        if run is None:
            raise not_found(f"Run {req.params['id']} not found")
        return Response(200, run.to_api(full=True, base_url=sim.base_url))


def sim_reset(sim: ExtendSimulator, req: Request) -> Response:
    sim.reset()
    return Response(200, {"ok": True})


def sim_health(sim: ExtendSimulator, req: Request) -> Response:
    return Response(200, {"ok": True})


def _per_kind(func: Callable[[ExtendSimulator, Request, Kind], Response], kind: Kind) -> Handler:
    return lambda sim, req: func(sim, req, kind)


# (method, path template, handler). "{id}" matches one path segment.
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/batch_runs/{id}", get_batch),
    ("POST", "/files/upload", upload_file),
    ("POST", "/webhook_endpoints", create_webhook_endpoint),
    *[
        route
        for kind in KINDS.values()
        for route in (
            ("POST", f"/{kind.collection}/batch", _per_kind(create_batch, kind)),
            ("GET", f"/{kind.collection}", _per_kind(list_runs, kind)),
            ("GET", f"/{kind.collection}/{{id}}", _per_kind(get_run, kind)),
        )
    ],
    ("GET", "/_sim/batches", sim_batches),
    ("GET", "/_sim/stats", sim_stats),
    ("GET", "/_sim/faults", sim_faults),
    ("POST", "/_sim/faults", sim_faults),
    ("GET", "/_sim/config", sim_config),
    ("POST", "/_sim/config", sim_config),
    ("GET", "/_sim/webhooks", sim_webhooks),
    ("GET", "/_sim/payloads/{id}", sim_payload),
    ("GET", "/_sim/runs/{id}", sim_run),
    ("POST", "/_sim/reset", sim_reset),
    ("GET", "/_sim/health", sim_health),
]
