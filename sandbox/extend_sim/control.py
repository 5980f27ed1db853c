"""The simulator's own ``/_sim/*`` endpoints: inspection and control, without auth."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from sandbox.extend_sim.kinds import KINDS
from sandbox.extend_sim.messages import ApiError, Request, Response, invalid, not_found
from sandbox.extend_sim.model import Batch, iso
from sandbox.extend_sim.validation import MAX_INPUTS, check_priority

if TYPE_CHECKING:
    from sandbox.extend_sim.server import ExtendSimulator


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
        priority = check_priority(kind, body.get("priority"))
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
