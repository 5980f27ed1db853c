"""The public Extend endpoints (batches, batch and run reads, run lists, processors, file upload, webhook
endpoints) and the routing table, which also maps the ``/_sim/*`` endpoints of ``control``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.extend_sim import control
from sandbox.extend_sim.kinds import KINDS, Kind
from sandbox.extend_sim.messages import Handler, Request, Response, invalid, not_found
from sandbox.extend_sim.model import input_file_name, iso, new_id
from sandbox.extend_sim.multipart import parse_multipart
from sandbox.extend_sim.validation import (
    check_inputs,
    check_parse_config,
    check_priority,
    check_processor,
    page_size,
)
from sandbox.extend_sim.webhooks import Target

if TYPE_CHECKING:
    from sandbox.extend_sim.server import ExtendSimulator


# -- batch create ------------------------------------------------------------------------------------


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
    processor = check_processor(kind, body.get(kind.processor_key)) if kind.processor_key else None
    config = check_parse_config(body.get("config")) if kind.family == "parse" else None
    inputs = check_inputs(kind, body.get("inputs"))
    priority = check_priority(kind, body.get("priority"))
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
    """GET /extractors|classifiers|splitters|workflows/{id}: the processor (or workflow), if it exists (and
    is not refused)."""
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


def list_runs(sim: ExtendSimulator, req: Request, kind: Kind) -> Response:
    q = req.query
    size = page_size(kind, q)
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
    scoped = [e for e in events if e.startswith(SUBSCRIPTION_ONLY_EVENT_PREFIX)]
    if scoped:
        # As at Extend: an endpoint's own events exclude workflow run events (WebhookEndpointEventType).
        raise invalid(
            f"{scoped[0]} is not an endpoint event; subscribe to a workflow's runs with "
            "POST /webhook_subscriptions; Path: enabledEvents"
        )
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


SUBSCRIPTION_ONLY_EVENT_PREFIX = "workflow_run."
SUBSCRIPTION_EVENTS = {
    "extractor": ("extract_run.", "batch_processor_run."),
    "classifier": ("classify_run.", "batch_processor_run."),
    "splitter": ("split_run.", "batch_processor_run."),
    "workflow": ("workflow_run.",),
}


def create_webhook_subscription(sim: ExtendSimulator, req: Request) -> Response:
    """POST /webhook_subscriptions: one resource's events (a workflow's runs) to a registered endpoint."""
    body = req.json()
    if not isinstance(body, dict):
        raise invalid("Body must be a JSON object")
    endpoint_id, kind, resource_id = (
        body.get(k) for k in ("webhookEndpointId", "resourceType", "resourceId")
    )
    if kind not in SUBSCRIPTION_EVENTS:
        raise invalid(f"resourceType must be one of {', '.join(SUBSCRIPTION_EVENTS)}; Path: resourceType")
    if not isinstance(resource_id, str) or not resource_id:
        raise invalid("resourceId is required; Path: resourceId")
    events = body.get("enabledEvents")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise invalid("enabledEvents must be a non-empty list of event types; Path: enabledEvents")
    wrong = [e for e in events if not e.startswith(SUBSCRIPTION_EVENTS[kind])]
    if wrong:
        raise invalid(f"{wrong[0]} is not an event of a {kind}; Path: enabledEvents")
    if not isinstance(endpoint_id, str) or not sim.webhooks.subscribe(endpoint_id, kind, resource_id, events):
        raise not_found(f"Webhook endpoint {endpoint_id} not found")
    now = iso(time.time())
    return Response(
        200,
        {
            "object": "webhook_subscription",
            "id": new_id("whs_"),
            "webhookEndpointId": endpoint_id,
            "resourceType": kind,
            "resourceId": resource_id,
            "enabledEvents": events,
            "createdAt": now,
            "updatedAt": now,
        },
    )


# -- routing -----------------------------------------------------------------------------------------


def _per_kind(func: Callable[[ExtendSimulator, Request, Kind], Response], kind: Kind) -> Handler:
    return lambda sim, req: func(sim, req, kind)


# (method, path template, handler). "{id}" matches one path segment.
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/batch_runs/{id}", get_batch),
    ("POST", "/files/upload", upload_file),
    ("POST", "/webhook_endpoints", create_webhook_endpoint),
    ("POST", "/webhook_subscriptions", create_webhook_subscription),
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
        if kind.family in ("processor", "workflow")  # GET /workflows/{id} reads a workflow
    ],
    ("GET", "/_sim/batches", control.sim_batches),
    ("POST", "/_sim/foreign_batches", control.sim_foreign_batches),
    ("POST", "/_sim/workflow_reviews", control.sim_workflow_reviews),
    ("GET", "/_sim/stats", control.sim_stats),
    ("GET", "/_sim/timeline", control.sim_timeline),
    ("GET", "/_sim/faults", control.sim_faults),
    ("POST", "/_sim/faults", control.sim_faults),
    ("GET", "/_sim/config", control.sim_config),
    ("POST", "/_sim/config", control.sim_config),
    ("GET", "/_sim/webhooks", control.sim_webhooks),
    ("GET", "/_sim/payloads/{id}", control.sim_payload),
    ("GET", "/_sim/outputs/{id}", control.sim_output),
    ("GET", "/_sim/runs/{id}", control.sim_run),
    ("POST", "/_sim/reset", control.sim_reset),
    ("GET", "/_sim/health", control.sim_health),
]
