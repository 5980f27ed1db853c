"""``make demo``: the whole pipeline on this machine, end to end.

Starts the sandbox (moto server, Extend simulator, the real handlers), uploads realistic sample documents
to the drop bucket, shows progress until every file is terminal, and prints a summary. Exits 1 if any
file is left non-terminal. ``--keep`` leaves the sandbox running for the AWS CLI and ``batchdrop``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from batchdrop_core.dynamo import scan_all
from batchdrop_core.observability import SERVICE
from batchdrop_core.tracking import FileStatus, with_derived_names
from sandbox.documents import sample_files
from sandbox.local import Sandbox, SandboxOptions

EXAMPLE_ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_demo"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_demo"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_demo"},
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo ARGS=...", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2500, help="sample documents to drop (default 2500)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running until Ctrl-C")
    parser.add_argument("--endpoints", type=Path, help="with --keep: write the endpoints JSON here")
    parser.add_argument(
        "--max-wait", type=int, default=300, help="maxWaitSeconds: when a partial batch goes out"
    )
    parser.add_argument(
        "--log", type=Path, default=Path("demo-out/sandbox.log"), help="where the functions' logs go"
    )
    parser.add_argument("--json", type=Path, help="also write the summary as JSON to this path")
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    parser.add_argument("--extend-url", help="use a real Extend API instead of the simulator")
    parser.add_argument("--api-key", help="the Extend API key for --extend-url")
    args = parser.parse_args(argv)
    if bool(args.extend_url) != bool(args.api_key):
        parser.error("--extend-url and --api-key go together")
    if args.endpoints and not args.keep:
        parser.error("--endpoints needs --keep (the endpoints only exist while the sandbox runs)")
    if args.files < 0:
        parser.error("--files must be 0 or more")
    return args


def options_for(args: argparse.Namespace) -> SandboxOptions:
    # The simulator allows 50 reads/s (a Scale plan's budget is 25+); results collection uses 40 of them.
    settings: dict[str, Any] = {"maxWaitSeconds": args.max_wait, "orphanGraceSeconds": 5, "readRateLimit": 40}
    if args.extend_url:
        # A machine without a public address gets no webhooks: upload the bytes, and let the reconciler
        # poll batches after a minute.
        settings |= {"fileTransfer": "upload", "webhookGraceMinutes": 1}
    return SandboxOptions(
        routes=EXAMPLE_ROUTES,
        settings=settings,
        extend_url=args.extend_url,
        api_key=args.api_key,
        reconcile_interval=15.0,
        read_rps=50.0,
    )


def upload(sandbox: Sandbox, files: list[Any], progress: Progress, task: Any) -> None:
    s3 = sandbox.deployment.session.client("s3")
    bucket = sandbox.deployment.resources.drop_bucket

    def put(sample: Any) -> None:
        s3.put_object(Bucket=bucket, Key=sample.key, Body=sample.body)
        progress.advance(task)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, files))


def watch(sandbox: Sandbox, expected: int, timeout: float, console: Console, upload_files: list[Any]) -> bool:
    """Upload while showing progress; True once every expected file is terminal."""
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        uploaded = progress.add_task("uploaded", total=expected)
        queued = progress.add_task("queued", total=expected)
        submitted = progress.add_task("submitted", total=expected)
        done = progress.add_task("terminal", total=expected)
        with ThreadPoolExecutor(max_workers=1) as pool:
            uploading = pool.submit(upload, sandbox, upload_files, progress, uploaded)
            deadline = time.monotonic() + timeout
            flushed = False
            while time.monotonic() < deadline:
                counts = sandbox.count_files()
                tracked = sum(counts.values())
                sent = tracked - counts[FileStatus.QUEUED] - counts[FileStatus.REJECTED]
                terminal = sum(counts[s] for s in FileStatus.TERMINAL)
                # Each status is counted by its own scan, so a file moving between scans may count twice.
                progress.update(queued, completed=min(tracked, expected))
                progress.update(submitted, completed=min(sent + counts[FileStatus.REJECTED], expected))
                progress.update(done, completed=min(terminal, expected))
                if uploading.done() and terminal >= expected:
                    uploading.result()
                    return True
                if uploading.done() and tracked >= expected and not flushed:
                    # Everything has arrived: do what an operator would (`batchdrop flush`) rather than
                    # wait maxWaitSeconds for the last, partial batch of each route.
                    flush_all_routes(sandbox)
                    flushed = True
                time.sleep(1.0)
    return False


def flush_all_routes(sandbox: Sandbox) -> None:
    runtime = sandbox.pipeline.runtime("submitter")
    for route in sandbox.settings.routes:
        runtime.request_flush(route.name, reason="demo: every file has arrived", force=True)


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
    }


def _notifications(sandbox: Sandbox) -> list[dict[str, Any]]:
    sqs = sandbox.deployment.session.client("sqs")
    received = []
    while True:
        messages = sqs.receive_message(QueueUrl=sandbox.notifications_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return received
        for message in messages:
            envelope = json.loads(message["Body"])
            received.append({"subject": envelope.get("Subject"), "message": json.loads(envelope["Message"])})
            sqs.delete_message(
                QueueUrl=sandbox.notifications_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


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


def _stop_on_sigterm() -> None:
    # `kill` (SIGTERM) must stop the sandbox too, or the moto server process would outlive the demo.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _stop_on_sigterm()
    console = send_logs_to(args.log)
    files = sample_files(args.files) if args.files else []
    extend = f"Extend at {args.extend_url}" if args.extend_url else "the Extend simulator"
    console.print(f"Starting the sandbox (moto server, {extend})…")
    sandbox = Sandbox(options_for(args)).start()
    try:
        console.print(f"  AWS endpoint: {sandbox.moto.url}   Extend: {sandbox.settings.extend_base_url}")
        console.print(
            f"  webhook: {sandbox.webhook_url}   drop bucket: {sandbox.deployment.resources.drop_bucket}"
        )
        console.print(f"  function logs: {args.log}")
        started = time.monotonic()
        finished = watch(sandbox, len(files), args.timeout, console, files) if files else True
        summary = summarize(sandbox, time.monotonic() - started)
        print_summary(console, summary, sandbox)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2, default=str))
        if args.keep:
            endpoints = sandbox.endpoints()
            if args.endpoints:
                args.endpoints.write_text(json.dumps(endpoints, indent=2))
                console.print(f"endpoints written to {args.endpoints}")
            console.print(json.dumps(endpoints, indent=2))
            console.print("The sandbox keeps running; Ctrl-C stops it.")
            while True:
                time.sleep(3600)
        if not finished or summary["nonTerminal"]:
            console.print(f"[red]{summary['nonTerminal']} file(s) did not reach a terminal state[/red]")
            return 1
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        sandbox.stop()


if __name__ == "__main__":
    sys.exit(main())
