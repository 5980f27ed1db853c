"""What the demo prints: the summary by route at the end, or why it gave up; and the functions' logs sent
to a file, as they would go to CloudWatch."""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from batchdrop_core.dynamo import scan_all
from batchdrop_core.observability import SERVICE
from batchdrop_core.tracking import FileStatus, with_derived_names
from sandbox import aws
from sandbox.demo.observe import Census
from sandbox.demo.watch import Outcome
from sandbox.local import Sandbox


def summarize(sandbox: Sandbox, elapsed: float) -> dict[str, Any]:
    ddb = sandbox.deployment.session.client("dynamodb")
    resources = sandbox.deployment.resources
    files = [with_derived_names(v) for v in scan_all(ddb, TableName=resources.files_table)]
    batches = list(scan_all(ddb, TableName=resources.batches_table))
    routes: dict[str, Any] = defaultdict(lambda: {"files": 0, "statuses": Counter(), "batches": []})
    for item in files:
        route = routes[item.get("route") or "(no route)"]
        route["files"] += 1
        route["statuses"][item["status"]] += 1
    for batch in sorted(batches, key=lambda b: b["createdAt"]):
        if batch["state"] != "ABANDONED":
            routes[batch["route"]]["batches"].append(batch["fileCount"])
    rejected = sorted(
        (item["key"], item.get("failureReason")) for item in files if item["status"] == FileStatus.REJECTED
    )
    return {
        "elapsedSeconds": round(elapsed, 1),
        "files": len(files),
        "nonTerminal": sum(1 for item in files if item["status"] not in FileStatus.TERMINAL),
        "routes": {
            name: {"files": r["files"], "batches": r["batches"], "byStatus": dict(r["statuses"])}
            for name, r in sorted(routes.items())
        },
        "rejected": [{"key": k, "reason": r} for k, r in rejected],
        "notifications": _notifications(sandbox),
        "motoCpuSeconds": round(sandbox.moto.cpu_seconds(), 1),
    }


def _notifications(sandbox: Sandbox) -> list[dict[str, Any]]:
    drained = aws.drain_notifications(sandbox.deployment, sandbox.notifications_queue_url)
    return [{"subject": n.subject, "message": n.message} for n in drained]


def print_summary(console: Console, summary: dict[str, Any], sandbox: Sandbox) -> None:
    table = Table(title="batchdrop demo: per route")
    for column in ("route", "files", "batches (sizes)", "processed", "failed", "rejected", "other"):
        table.add_column(column, justify="right" if column not in ("route", "batches (sizes)") else "left")
    for name, route in summary["routes"].items():
        by = route["byStatus"]
        other = route["files"] - by.get("PROCESSED", 0) - by.get("FAILED", 0) - by.get("REJECTED", 0)
        sizes = ", ".join(str(s) for s in route["batches"]) or "-"
        table.add_row(
            name,
            str(route["files"]),
            f"{len(route['batches'])} ({sizes})",
            str(by.get("PROCESSED", 0)),
            str(by.get("FAILED", 0)),
            str(by.get("REJECTED", 0)),
            str(other),
        )
    console.print(table)
    console.print(f"elapsed: {summary['elapsedSeconds']} s, files tracked: {summary['files']}")
    for item in summary["rejected"]:
        console.print(f"  rejected: {item['key']!r}: {item['reason']}")
    console.print(f"SNS notifications received: {len(summary['notifications'])}")
    for note in summary["notifications"][:10]:
        message = note["message"]
        console.print(f"  {note['subject']}: {json.dumps(message, default=str)[:160]}")
    bucket = sandbox.deployment.resources.drop_bucket
    console.print("\nTry next (with --keep, the sandbox stays up):")
    console.print("  .venv/bin/batchdrop --sandbox sandbox-endpoints.json status")
    console.print(
        "  .venv/bin/batchdrop --sandbox sandbox-endpoints.json file invoices/2026/acme/INV-000000.pdf"
    )
    console.print(
        f"  AWS_ENDPOINT_URL={sandbox.moto.url} aws s3 ls s3://{bucket}/invoices/ --recursive | head"
    )


def send_logs_to(path: Path) -> Console:
    """The functions' output (JSON log lines, EMF metric blobs on stdout) goes to a file, as it would go
    to CloudWatch; the returned console writes to the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = path.open("w", encoding="utf-8", buffering=1)
    log = logging.getLogger(SERVICE)
    handler = logging.StreamHandler(to_file)
    for existing in list(log.handlers):
        handler.setFormatter(existing.formatter)
        log.removeHandler(existing)
    log.addHandler(handler)
    terminal = Console(file=sys.stdout)
    sys.stdout = to_file
    return terminal


def print_stuck(console: Console, outcome: Outcome, census: Census) -> None:
    """Why the demo gave up: the files not terminal by route and status, and what it was waiting for."""
    console.print(f"[red]gave up: {outcome.reason}[/red]")
    console.print("not terminal, by route and status:")
    for route, counts in sorted(census.by_route.items()):
        left = [f"{s} {counts[s]:,}" for s in FileStatus.ALL if s not in FileStatus.TERMINAL and counts[s]]
        if left:
            console.print(f"  {route}: {', '.join(left)}", highlight=False, soft_wrap=True)
    if outcome.stuck:
        console.print("it was waiting for:")
        for line in outcome.stuck:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
