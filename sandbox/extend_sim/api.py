"""Endpoint implementations: request validation and the JSON each endpoint answers with.

Public endpoints mirror Extend (processor, parse and workflow batches, batch and run reads, run lists,
file upload, webhook endpoints); ``/_sim/*`` endpoints are the simulator's own inspection and control
surface and need no auth.
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

from sandbox.extend_sim.kinds import KINDS, Kind
from sandbox.extend_sim.model import Batch, input_file_name, iso, new_id
from sandbox.extend_sim.multipart import parse_multipart
from sandbox.extend_sim.webhooks import Target

if TYPE_CHECKING:
    from sandbox.extend_sim.server import ExtendSimulator

MAX_INPUTS = 1000
MAX_METADATA_BYTES = 10 * 1024
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
WORKFLOW_PRIORITY_RANGE = (1, 100)
PARSE_CONFIG_CHOICES = {
    "target": ("markdown", "spatial"),
    "engine": ("parse_performance", "parse_light", "parse_auto"),
}
PARSE_CHUNKING = ("page", "document", "section")
PARSE_CONFIG_KEYS = {
    "target",
    "chunkingStrategy",
    "engine",
    "engineVersion",
    "blockOptions",
    "advancedOptions",
}


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


def invalid(message: str, path: str | None = None) -> ApiError:
    # Extend names the offending field at the end of the message: "...; Path: schema.properties.name".
    return ApiError(400, "INVALID_REQUEST", f"{message}; Path: {path}" if path else message)


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
    # The server's per-input schema is exactly {file, metadata?}; workflow inputs may add secrets.
    allowed = {"file", "metadata", "secrets"} if kind.family == "workflow" else {"file", "metadata"}
    for i, item in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"{where} must be an object")
        unknown = set(item) - allowed
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
        if "secrets" in item and not isinstance(item["secrets"], dict):
            raise invalid(f"{where}.secrets must be an object")
    return inputs


def _check_processor(kind: Kind, processor: Any) -> dict[str, Any]:
    key = str(kind.processor_key)
    if not isinstance(processor, dict) or not isinstance(processor.get("id"), str) or not processor["id"]:
        if kind.family == "workflow":
            raise invalid(f"{key}.id is required")
        raise invalid(f"{key}.id is required (inline config is not supported for batches)")
    fields = {"id", "version"} if kind.family == "workflow" else {"id", "version", "overrideConfig"}
    unknown = set(processor) - fields
    if unknown:
        raise invalid(f"{key} has unknown field(s): {', '.join(sorted(unknown))}")
    if not processor["id"].startswith(str(kind.processor_prefix)):
        raise invalid(f"{key}.id must start with {kind.processor_prefix!r}")
    if "version" in processor and not isinstance(processor["version"], str):
        raise invalid(f"{key}.version must be a string")
    if "overrideConfig" in processor and not isinstance(processor["overrideConfig"], dict):
        raise invalid(f"{key}.overrideConfig must be an object")
    return processor


def _check_parse_config(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise invalid("config must be an object")
    unknown = set(config) - PARSE_CONFIG_KEYS
    if unknown:
        raise invalid(f"config has unknown field(s): {', '.join(sorted(unknown))}")
    for key, choices in PARSE_CONFIG_CHOICES.items():
        if key in config and config[key] not in choices:
            raise invalid(f"config.{key} must be one of {', '.join(choices)}")
    chunking = config.get("chunkingStrategy")
    if chunking is not None and (
        not isinstance(chunking, dict) or chunking.get("type", "page") not in PARSE_CHUNKING
    ):
        raise invalid(f"config.chunkingStrategy.type must be one of {', '.join(PARSE_CHUNKING)}")
    return config


def _check_priority(kind: Kind, priority: Any) -> int | None:
    if priority is None:
        return None
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise invalid("priority must be an integer")
    low, high = WORKFLOW_PRIORITY_RANGE
    if kind.family == "workflow" and not low <= priority <= high:
        raise invalid(f"priority must be between {low} and {high}")
    return priority


def _refused_input(sim: ExtendSimulator, inputs: list[dict[str, Any]]) -> None:
    """The refuse_file_names fault: 400 naming the first input whose file name matches."""
    with sim.lock:
        refuse = sim.faults.refused_name
        for i, item in enumerate(inputs):
            ref = item["file"]
            name = input_file_name(ref)
            if name and refuse(name):
                sim.stats.incr("batches_refused")
                field_name = "name" if ref.get("name") else "url"
                raise invalid(f"File {name!r} cannot be processed", f"inputs[{i}].file.{field_name}")


def create_batch(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise invalid("Body must be a JSON object")
    top = (
        {"inputs", "priority", "config"}
        if kind.family == "parse"
        else {kind.processor_key, "inputs", "priority"}
    )
    unknown = set(body) - top
    if unknown:
        raise invalid(f"Unknown field(s): {', '.join(sorted(unknown))}")
    processor = _check_processor(kind, body.get(kind.processor_key)) if kind.processor_key else None
    config = _check_parse_config(body.get("config")) if kind.family == "parse" else None
    inputs = _check_inputs(kind, body.get("inputs"))
    priority = _check_priority(kind, body.get("priority"))
    if processor is not None and not sim.processor_exists(processor["id"]):
        raise not_found(f"{str(kind.processor_key).capitalize()} {processor['id']} not found")
    _refused_input(sim, inputs)
    with sim.lock:
        lose = sim.faults.lose_post_response > 0
        if lose:
            sim.faults.lose_post_response -= 1
        hidden_for = sim.faults.lost_batch_delay_seconds if lose else 0.0
    batch = sim.engine.create_batch(kind, processor, inputs, priority, config=config, hidden_for=hidden_for)
    if lose:
        with sim.lock:
            batch.response_lost = True
        sim.stats.incr("responses_lost")
        return Response(200, abort=True)
    return Response(200, batch.create_response())


# -- reads -------------------------------------------------------------------------------------------


def get_batch(sim: ExtendSimulator, req: Request) -> Response:
    with sim.lock:
        batch = sim.engine.visible_batch(req.params["id"])
        # Workflow batches are not BatchRuns: /batch_runs does not know them.
        if batch is None or batch.kind.family == "workflow":
            raise not_found(f"Batch run {req.params['id']} not found")
        return Response(200, batch.to_api())


def get_run(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    response_type = req.query.get("responseType")
    if kind.family == "parse" and response_type not in (None, "json", "url"):
        raise invalid("responseType must be json or url")
    with sim.lock:
        run = sim.engine.visible_run(req.params["id"], kind)
        if run is None:
            raise not_found(f"{kind.object} {req.params['id']} not found")
        output_url = None
        if kind.family == "parse" and (
            response_type == "url" or (response_type is None and sim.parse_output_url)
        ):
            expires = int(time.time() + sim.output_url_ttl_seconds)
            output_url = f"{sim.base_url}/_sim/outputs/{run.id}?expires={expires}"
        return Response(200, run.to_api(full=True, base_url=sim.base_url, output_url=output_url))


def get_processor(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    """GET /extractors|classifiers|splitters/{id}: the processor, if it exists (and is not refused)."""
    processor_id = req.params["id"]
    name = str(kind.processor_key)
    if not processor_id.startswith(str(kind.processor_prefix)) or not sim.processor_exists(processor_id):
        raise not_found(f"{name.capitalize()} {processor_id} not found")
    now = iso(time.time())
    return Response(
        200, {"object": name, "id": processor_id, "name": processor_id, "createdAt": now, "updatedAt": now}
    )


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


def _page_size(kind: Kind, query: dict[str, str]) -> int:
    # /parse_runs is documented with maxPageSize (SDK) and limit (Extend's CLI): take either.
    name = (
        "limit"
        if kind.family == "parse" and "maxPageSize" not in query and "limit" in query
        else "maxPageSize"
    )
    try:
        size = int(query.get(name, DEFAULT_PAGE_SIZE))
    except ValueError as exc:
        raise invalid(f"{name} must be an integer") from exc
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid(f"{name} must be between 1 and {MAX_PAGE_SIZE}")
    return size


def list_runs(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    q = req.query
    size = _page_size(kind, q)
    default_sort = sim.default_sort_by
    if kind.sortable:
        sort_by = q.get("sortBy", default_sort)
        sort_dir = q.get("sortDir", "desc")
    else:  # /parse_runs has no sortBy/sortDir: whatever is sent, the default order applies
        sort_by, sort_dir = default_sort, "desc"
    if sort_by not in ("createdAt", "updatedAt"):
        raise invalid("sortBy must be createdAt or updatedAt")
    if sort_dir not in ("asc", "desc"):
        raise invalid("sortDir must be asc or desc")
    if "status" in q and q["status"] not in kind.statuses:
        raise invalid(f"status must be one of {', '.join(sorted(kind.statuses))}")
    after = _decode_token(q["nextPageToken"], sort_by, sort_dir) if q.get("nextPageToken") else None
    names = ["batchId", "status", "fileNameContains", "source"]
    if kind.filter_param:
        names.append(kind.filter_param)
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
    name = part.filename or "file"
    with sim.lock:
        refused = sim.faults.refused_name(name)
    if refused:
        sim.stats.incr("uploads_refused")
        raise invalid(f"File {name!r} cannot be uploaded", "file")
    stored = sim.engine.add_file(name, part.data)
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


def _sim_batch(engine: Any, b: Batch) -> dict[str, Any]:
    processor = None
    if b.processor is not None:
        processor = {
            "id": b.processor["id"],
            "version": b.processor.get("version"),
            "overrideConfig": b.processor.get("overrideConfig"),
        }
    return {
        "id": b.id,
        "type": b.kind.name,
        "processor": processor,
        "config": b.config,
        "priority": b.priority,
        "createdAt": iso(b.created),
        "acceptedAt": iso(b.accepted),
        "visible": engine.visible(b),
        "status": b.status,
        "runCount": len(b.run_ids),
        "runIds": list(b.run_ids),
        "runStatuses": dict(Counter(engine.runs[r].status for r in b.run_ids)),
        # Where each run (in input order) came in the workspace's processing order; null: not started.
        "runStartOrder": [engine.runs[r].start_order for r in b.run_ids],
        "inputs": [{"file": i["file"], "metadata": i.get("metadata")} for i in b.inputs],
        "responseLost": b.response_lost,
        "foreign": b.foreign,
    }


def sim_batches(sim: ExtendSimulator, req: Request) -> Response:
    with sim.lock:
        engine = sim.engine
        ordered = sorted(engine.batches.values(), key=lambda b: (b.accepted, b.id))
        batches = [_sim_batch(engine, b) for b in ordered]
    return Response(200, {"batches": batches})


def sim_stats(sim: ExtendSimulator, req: Request) -> Response:
    body = sim.stats.snapshot()
    with sim.lock:
        body["runsByStatus"] = dict(Counter(run.status for run in sim.engine.runs.values()))
    body["webhooksPending"] = sim.webhooks.pending()
    body["backfill"] = sim.stats.backfill()
    return Response(200, body)


def sim_timeline(sim: ExtendSimulator, req: Request) -> Response:
    since = req.query.get("since")
    try:
        start = float(since) if since else None
    except ValueError as exc:
        raise invalid("since must be a Unix time in seconds") from exc
    return Response(200, sim.stats.timeline(start))


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


def sim_output(sim: ExtendSimulator, req: Request) -> Response:
    """Where a parse run's ``outputUrl`` points: the output JSON, until the URL expires (403 after)."""
    try:
        expires = float(req.query.get("expires", "0"))
    except ValueError:
        expires = 0.0
    if time.time() > expires:
        raise ApiError(403, "ACCESS_DENIED", "Request has expired")
    with sim.lock:
        run = sim.engine.runs.get(req.params["id"])
        if run is None or run.kind.family != "parse" or run.output is None:
            raise not_found(f"No output for run {req.params['id']}")
        return Response(200, run.output)


def sim_run(sim: ExtendSimulator, req: Request) -> Response:
    # Where a run's dashboardUrl points: the full run, without auth, for people debugging the demo.
    with sim.lock:
        run = sim.engine.runs.get(req.params["id"])
        if run is None:
            raise not_found(f"Run {req.params['id']} not found")
        return Response(200, run.to_api(full=True, base_url=sim.base_url))


FOREIGN_PROCESSORS = {"extract": "ex_foreign", "classify": "cl_foreign", "split": "spl_foreign"}


def sim_foreign_batches(sim: ExtendSimulator, req: Request) -> Response:
    """Batches nobody here submitted (another tool sharing the workspace): they take their share of the
    throughput and their webhooks go to the registered endpoints like any others.

    Body (all optional): ``type`` (extract|classify|split|parse|workflow, default extract),
    ``processorId`` (or the workflow id; default ``ex_foreign``, ``cl_foreign``, ``spl_foreign``,
    ``workflow_foreign``), ``batches`` (default 1), ``runs`` per batch (default 1), ``metadata`` for every
    input (an object, or null for none: the default), ``priority``, ``text`` (the content of every file;
    default a small invoice), ``urls`` (file URLs instead of text, used in turn)."""
    body = req.json() or {}
    if not isinstance(body, dict):
        raise invalid("Body must be a JSON object")
    unknown = set(body) - {"type", "processorId", "batches", "runs", "metadata", "priority", "text", "urls"}
    if unknown:
        raise invalid(f"Unknown field(s): {', '.join(sorted(unknown))}")
    kind = next((k for k in KINDS.values() if k.name == body.get("type", "extract")), None)
    if kind is None:
        raise invalid("type must be one of " + ", ".join(k.name for k in KINDS.values()))
    count, runs = body.get("batches", 1), body.get("runs", 1)
    if not isinstance(count, int) or not isinstance(runs, int) or count < 1 or not 1 <= runs <= MAX_INPUTS:
        raise invalid(f"batches must be >= 1 and runs 1 to {MAX_INPUTS}")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid("metadata must be an object or null")
    urls = body.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise invalid("urls must be a list of URLs")
    text = body.get("text") or "INVOICE\nInvoice Number: FOREIGN-{n}\nTotal: 10.00\n"
    processor = None
    if kind.processor_key:
        default_id = "workflow_foreign" if kind.family == "workflow" else FOREIGN_PROCESSORS[kind.name]
        processor = {"id": body.get("processorId") or default_id}
    created = []
    for b in range(count):
        inputs = []
        for n in range(runs):
            file = {"url": urls[n % len(urls)]} if urls else {"text": str(text).replace("{n}", f"{b}-{n}")}
            if not urls and not kind.accepts_text:  # split takes no text: give it an uploaded file
                stored = sim.engine.add_file(f"foreign-{b}-{n}.txt", file["text"].encode("utf-8"))
                file = {"id": stored.id}
            inputs.append({"file": file, **({"metadata": metadata} if metadata is not None else {})})
        priority = _check_priority(kind, body.get("priority"))
        batch = sim.engine.create_batch(kind, processor, inputs, priority, foreign=True)
        created.append(batch.id)
    return Response(200, {"batchIds": created})


def sim_workflow_reviews(sim: ExtendSimulator, req: Request) -> Response:
    """Finish the review of workflow runs waiting in NEEDS_REVIEW. Body: ``decision`` (approve: the run
    is PROCESSED and sends workflow_run.completed; reject: REJECTED, terminal, workflow_run.rejected),
    ``runIds`` or ``batchId`` (default: every run waiting), ``note`` (the rejection note)."""
    body = req.json()
    if not isinstance(body, dict) or body.get("decision") not in ("approve", "reject"):
        raise invalid("Body must be an object with decision approve or reject")
    run_ids = body.get("runIds")
    if run_ids is not None and (
        not isinstance(run_ids, list) or not all(isinstance(r, str) for r in run_ids)
    ):
        raise invalid("runIds must be a list of workflow run ids")
    if run_ids is None:
        run_ids = sim.engine.waiting_for_review(body.get("batchId"))
    note = body.get("note")
    reviewed = sim.engine.review(run_ids, approve=body["decision"] == "approve", note=note)
    return Response(200, {"reviewed": reviewed})


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
    *[
        ("GET", f"/{kind.processor_key}s/{{id}}", _per_kind(get_processor, kind))
        for kind in KINDS.values()
        if kind.family == "processor"
    ],
    ("GET", "/_sim/batches", sim_batches),
    ("POST", "/_sim/foreign_batches", sim_foreign_batches),
    ("POST", "/_sim/workflow_reviews", sim_workflow_reviews),
    ("GET", "/_sim/stats", sim_stats),
    ("GET", "/_sim/timeline", sim_timeline),
    ("GET", "/_sim/faults", sim_faults),
    ("POST", "/_sim/faults", sim_faults),
    ("GET", "/_sim/config", sim_config),
    ("POST", "/_sim/config", sim_config),
    ("GET", "/_sim/webhooks", sim_webhooks),
    ("GET", "/_sim/payloads/{id}", sim_payload),
    ("GET", "/_sim/outputs/{id}", sim_output),
    ("GET", "/_sim/runs/{id}", sim_run),
    ("POST", "/_sim/reset", sim_reset),
    ("GET", "/_sim/health", sim_health),
]
