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
from batchdrop_core.tracking import IN_REVIEW, FileStatus, with_derived_names
from sandbox import aws
from sandbox.demo.observe import Census
from sandbox.demo.watch import Outcome
from sandbox.local import Sandbox


def summarize(sandbox: Sandbox, elapsed: float) -> dict[str, Any]:
    ddb = sandbox.deployment.session.client("dynamodb")
    resources = sandbox.deployment.resources
    files = [with_derived_names(v) for v in scan_all(ddb, TableName=resources.files_table)]
    batches = list(scan_all(ddb, TableName=resources.batches_table))
    types = {route.name: route.type for route in sandbox.settings.routes}
    routes: dict[str, Any] = defaultdict(
        lambda: {"files": 0, "statuses": Counter(), "batches": [], "inReview": 0, "reviewSince": None}
    )
    for item in files:
        route = routes[item.get("route") or "(no route)"]
        route["files"] += 1
        route["statuses"][item["status"]] += 1
        if waits_on_review(item):
            route["inReview"] += 1
            since = str(item["reviewSince"])
            route["reviewSince"] = min(since, route["reviewSince"] or since)
    for batch in sorted(batches, key=lambda b: b["createdAt"]):
        if batch["state"] != "ABANDONED":
            routes[batch["route"]]["batches"].append(batch["fileCount"])
    rejected = sorted(
        (item["key"], item.get("failureReason")) for item in files if item["status"] == FileStatus.REJECTED
    )
    non_terminal = [item for item in files if item["status"] not in FileStatus.TERMINAL]
    in_review = sum(1 for item in non_terminal if waits_on_review(item))
    return {
        "elapsedSeconds": round(elapsed, 1),
        "files": len(files),
        "nonTerminal": len(non_terminal),
        # Of the non-terminal files, those whose workflow run waits on a person's review at Extend (settled
        # for the demo), and the others (the demo failed to finish them).
        "waitingOnReview": in_review,
        "unsettled": len(non_terminal) - in_review,
        "routes": {
            name: {
                "type": types.get(name),
                "files": r["files"],
                "batches": r["batches"],
                "byStatus": dict(r["statuses"]),
                "waitingOnReview": r["inReview"],
                "oldestReviewSince": r["reviewSince"],
            }
            for name, r in sorted(routes.items())
        },
        "rejected": [{"key": k, "reason": r} for k, r in rejected],
        "notifications": _notifications(sandbox),
        "motoCpuSeconds": round(sandbox.moto.cpu_seconds(), 1),
    }


def waits_on_review(item: dict[str, Any]) -> bool:
    """SUBMITTED, its workflow run waiting in NEEDS_REVIEW for a person at Extend (``reviewSince``)."""
    return item["status"] == FileStatus.SUBMITTED and bool(item.get("reviewSince"))


def _notifications(sandbox: Sandbox) -> list[dict[str, Any]]:
    drained = aws.drain_notifications(sandbox.deployment, sandbox.notifications_queue_url)
    return [{"subject": n.subject, "message": n.message} for n in drained]


def print_summary(console: Console, summary: dict[str, Any], sandbox: Sandbox) -> None:
    table = Table(title="batchdrop demo: per route")
    rows = []
    for name, route in summary["routes"].items():
        by = route["byStatus"]
        counts = [by.get(s, 0) for s in ("PROCESSED", "FAILED", "REJECTED")] + [route["waitingOnReview"]]
        sizes = ", ".join(str(s) for s in route["batches"]) or "-"
        rows.append([name, route["files"], sizes, *counts, route["files"] - sum(counts)])
    # "other": neither terminal nor waiting on review, shown only when the demo left such files.
    other = any(row[-1] for row in rows)
    columns = ["route", "files", "batch sizes", "processed", "failed", "rejected", "in review", "other"]
    for column in columns[: None if other else -1]:
        table.add_column(column, justify="left" if column in ("route", "batch sizes") else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row[: None if other else -1]))
    console.print(table)
    console.print(f"elapsed: {summary['elapsedSeconds']} s, files tracked: {summary['files']}")
    _print_reviews(console, summary, sandbox)
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


def _print_reviews(console: Console, summary: dict[str, Any], sandbox: Sandbox) -> None:
    """The files waiting on review: a person decides them in Extend; the demo does not wait for that."""
    for name, route in summary["routes"].items():
        if route["waitingOnReview"]:
            since = route["oldestReviewSince"] or ""
            console.print(
                f"waiting on review: {route['waitingOnReview']} files of route {name} (the longest since "
                f"{since[11:19]} UTC)",
                highlight=False,
                soft_wrap=True,
            )
    if not summary["waitingOnReview"]:
        return
    console.print(
        "  Their workflow runs wait in NEEDS_REVIEW for a person in Extend: not stuck, not failed. Each "
        "ends PROCESSED once approved, or FAILED with reason REJECTED once rejected; until then the files "
        "stay SUBMITTED (`batchdrop status`: column IN_REVIEW, longest review) and their batch open.",
        highlight=False,
        soft_wrap=True,
    )
    if sandbox.simulator is not None:
        console.print(
            "  With --keep, decide them as a reviewer would: curl -X POST "
            f'{sandbox.settings.extend_base_url}/_sim/workflow_reviews -d \'{{"decision": "approve"}}\'',
            highlight=False,
            soft_wrap=True,
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
        if counts[IN_REVIEW]:
            left.append(f"of them waiting on review {counts[IN_REVIEW]:,}")
        if left:
            console.print(f"  {route}: {', '.join(left)}", highlight=False, soft_wrap=True)
    if outcome.stuck:
        console.print("it was waiting for:")
        for line in outcome.stuck:
            console.print(f"  {line}", highlight=False, soft_wrap=True)
