"""Commands that change something: flush, retry, redrive, backfill, register-webhook, demo (reprocess and
wait have modules of their own)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import track

from batchdrop_cli import output
from batchdrop_cli.common import WORKERS, check_route, current_objects, find_submission, target_of
from batchdrop_cli.targets import Target, UserError
from batchdrop_cli.views import JsonOption
from batchdrop_core.intake import UNVERSIONED, IntakeOutcome, ingest_object
from batchdrop_core.s3events import ObjectCreated
from batchdrop_core.tracking import FileStatus, TrackedFile, file_id

OPERATOR_RETRY = "OPERATOR_RETRY"
DEMO_PROG_ENV = "BATCHDROP_DEMO_PROG"  # the name the demo's --help gives itself


# -- flush ------------------------------------------------------------------------------------------------
def flush(
    ctx: typer.Context,
    route: Annotated[str | None, typer.Argument(help="Route to flush (default: every route).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Submit what is QUEUED now, partial batches included.

    Example: batchdrop flush invoices
    """
    target = target_of(ctx)
    names = [check_route(target, route)] if route else [r.name for r in target.routes]
    target.require("flush_queue_url")
    rt = target.runtime()
    for name in names:
        rt.request_flush(name, reason="operator", force=True)
    if json_output:
        output.print_json({"flushRequested": names})
        return
    output.console().print(
        f"Flush requested for {', '.join(names)}: the submitter sends their QUEUED files now."
    )


# -- retry ------------------------------------------------------------------------------------------------
def retry(
    ctx: typer.Context,
    route: Annotated[str | None, typer.Option("--route", "-r", help="Only files of this route.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only files that failed with this reason.")] = None,
    batch: Annotated[str | None, typer.Option(help="Only files of this batch (bpr_… or sub_…).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the files, change nothing.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Requeue FAILED files, then ask for a flush of each route that got files back.

    Example: batchdrop retry --reason INTERNAL_ERROR --dry-run
    """
    target = target_of(ctx)
    rt = target.runtime()
    if route:
        check_route(target, route)
    if batch:
        candidates = rt.files.of_submission(find_submission(rt, batch).submission_id)
    else:
        routes = [route] if route else [r.name for r in target.routes]
        candidates = [f for name in routes for f in rt.files.problems(name)]
    chosen = [
        f
        for f in candidates
        if f.status == FileStatus.FAILED
        and (route is None or f.route == route)
        and (reason is None or f.failure_reason == reason)
    ]
    requeued: list[TrackedFile] = []
    flushed: list[str] = []
    if not dry_run and chosen:
        target.require("flush_queue_url")

        def requeue(tracked: TrackedFile) -> bool:
            # The old reason stays readable in the message (and in the file's history).
            message = f"operator retry after {tracked.failure_reason}: {tracked.failure_message or ''}"
            return rt.files.requeue(tracked, None, reason=OPERATOR_RETRY, message=message[:1000])

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            requeued = [f for f, ok in zip(chosen, pool.map(requeue, chosen), strict=True) if ok]
        flushed = sorted({f.route for f in requeued if f.route})
        for name in flushed:
            rt.request_flush(name, reason="operator retry", force=True)

    data = {
        "dryRun": dry_run,
        "matched": len(chosen),
        "requeued": len(requeued),
        "byRoute": dict(Counter(f.route for f in (chosen if dry_run else requeued))),
        "flushRequested": flushed,
        "files": [
            {"fileId": f.file_id, "route": f.route, "failureReason": f.failure_reason}
            for f in (chosen if dry_run else requeued)
        ],
    }
    if json_output:
        output.print_json(data)
        return
    out = output.console()
    if not chosen:
        out.print("No FAILED files match.")
        return
    if dry_run:
        out.print(
            output.table(
                f"{len(chosen)} FAILED files would be requeued",
                ["file", "route", "reason"],
                [[f.file_id, f.route, f.failure_reason] for f in chosen],
            )
        )
        return
    skipped = len(chosen) - len(requeued)
    note = f" ({skipped} changed meanwhile and were left alone)" if skipped else ""
    out.print(
        f"Requeued {len(requeued)} FAILED files{note}; flush requested for {', '.join(flushed) or '-'}."
    )


# -- redrive ----------------------------------------------------------------------------------------------
class QueueChoice(StrEnum):
    arrivals = "arrivals"
    flush = "flush"
    results = "results"
    all = "all"


def redrive(
    ctx: typer.Context,
    queue: Annotated[
        QueueChoice, typer.Option(help="Which dead-letter queue to move back.")
    ] = QueueChoice.all,
    json_output: JsonOption = False,
) -> None:
    """Move messages from dead-letter queues back to their source queues.

    Example: batchdrop redrive --queue results
    """
    target = target_of(ctx)
    sqs = target.runtime().client("sqs")
    names = list(target.queues) if queue is QueueChoice.all else [queue.value]
    moved = []
    for name in names:
        pair = target.queues.get(name)
        if pair is None or not pair.url or not pair.dlq_url:
            if queue is not QueueChoice.all:
                raise UserError(f"{target.description} has no {name} queue with a DLQ; {target.missing_hint}")
            continue
        waiting = int(
            sqs.get_queue_attributes(QueueUrl=pair.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
        )
        entry: dict[str, Any] = {"queue": name, "messages": waiting, "method": None, "taskHandle": None}
        if target.is_sandbox:
            # moto has no StartMessageMoveTask: move the messages one by one instead.
            entry["method"] = "receive-send-delete"
            entry["messages"] = _move_messages(sqs, pair.dlq_url, pair.url)
        elif waiting:
            entry["method"] = "StartMessageMoveTask"
            dlq_arn = sqs.get_queue_attributes(QueueUrl=pair.dlq_url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            # Without a DestinationArn, SQS returns each message to the queue it came from.
            entry["taskHandle"] = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
        moved.append(entry)
    if json_output:
        output.print_json({"queues": moved})
        return
    out = output.console()
    for entry in moved:
        if not entry["messages"]:
            out.print(f"{entry['queue']}: DLQ empty")
        elif entry["taskHandle"]:
            out.print(
                f"{entry['queue']}: moving about {entry['messages']} messages back (SQS move task started)"
            )
        else:
            out.print(f"{entry['queue']}: moved {entry['messages']} messages back")


def _move_messages(sqs: Any, dlq_url: str, source_url: str) -> int:
    """Receive, send to the source, then delete: a message is never lost, at worst sent twice."""
    fifo = source_url.endswith(".fifo")
    moved = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=60,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["MessageGroupId"],
        ).get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            send: dict[str, Any] = {"QueueUrl": source_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                send["MessageAttributes"] = message["MessageAttributes"]
            if fifo:
                send["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "redrive")
                # A fresh id: the original one may still be inside the queue's 5-minute dedupe window.
                send["MessageDeduplicationId"] = uuid.uuid4().hex
            sqs.send_message(**send)
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1


# -- backfill ---------------------------------------------------------------------------------------------
def backfill(
    ctx: typer.Context,
    prefix: Annotated[
        str | None, typer.Argument(help="Only keys under this prefix (default: every route).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count new objects, change nothing.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Send objects already in the drop bucket through intake (with its dedupe), then request flushes.

    Example: batchdrop backfill invoices/2026/ --dry-run
    """
    target = target_of(ctx)
    rt = target.runtime()
    bucket = target.require("drop_bucket")
    prefixes = _listing_prefixes(target, prefix)
    objects = [o for p in prefixes for o in current_objects(rt.client("s3"), bucket, p)]
    data: dict[str, Any] = {
        "bucket": bucket,
        "prefixes": prefixes,
        "objects": len(objects),
        "dryRun": dry_run,
    }

    if dry_run:
        known = rt.files.batch_get([(o.bucket, o.key, o.version_id or UNVERSIONED) for o in objects])
        data["new"] = sum(
            1 for o in objects if file_id(o.bucket, o.key, o.version_id or UNVERSIONED) not in known
        )
        data["alreadyTracked"] = len(objects) - data["new"]
    else:
        target.require("flush_queue_url")
        outcome = IntakeOutcome()
        rt.files  # noqa: B018 - build the store once, before the threads share it

        def ingest(created: ObjectCreated) -> IntakeOutcome:
            single = IntakeOutcome()
            ingest_object(rt, created, single)
            return single

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            results = pool.map(ingest, objects)
            if not json_output:
                results = track(
                    results,
                    total=len(objects),
                    description="backfill",
                    console=Console(stderr=True),
                    transient=True,
                )
            for single in results:
                outcome.merge(single)
        flushed = sorted(r for r in outcome.queued_routes if r)
        for name in flushed:
            # Not forced: full batches go now, a remainder waits maxWaitSeconds like any other arrival.
            rt.request_flush(name, reason="backfill")
        counts = outcome.counts
        data.update(
            {
                "created": counts["queued"] + counts["rejected"],
                "queued": counts["queued"],
                "rejected": counts["rejected"],
                "duplicates": counts["duplicate"],
                "skipped": counts["folder_marker"] + counts["foreign_bucket"],
                "flushRequested": flushed,
            }
        )
    if json_output:
        output.print_json(data)
        return
    out = output.console()
    where = ", ".join(f"s3://{bucket}/{p}" for p in prefixes)
    if dry_run:
        out.print(
            f"{data['objects']} objects under {where}: {data['new']} new, {data['alreadyTracked']} tracked."
        )
        return
    flushed = ", ".join(data["flushRequested"]) or "-"
    out.print(
        f"{data['objects']} objects under {where}: {data['queued']} queued, {data['rejected']} rejected, "
        f"{data['duplicates']} already tracked; flush requested for {flushed}."
    )


def _listing_prefixes(target: Target, prefix: str | None) -> list[str]:
    """What to list: each route prefix, narrowed to ``prefix``; only routed keys get notifications."""
    route_prefixes = [r.prefix for r in target.routes]
    if prefix is None:
        return route_prefixes
    inside = [prefix for p in route_prefixes if prefix.startswith(p)]
    covering = [p for p in route_prefixes if p.startswith(prefix)]
    if not inside and not covering:
        raise UserError(
            f"{prefix!r} is under no route, so its objects would all be REJECTED; route prefixes: "
            f"{', '.join(route_prefixes)}"
        )
    return inside or covering


# -- demo -------------------------------------------------------------------------------------------------
def demo(ctx: typer.Context) -> None:
    """Run the local demo (`python -m sandbox.demo`); every argument is passed on (try `demo --help`).

    Example: batchdrop demo --files 500 --keep --endpoints /tmp/sandbox.json
    """
    try:
        found = importlib.util.find_spec("sandbox.demo") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise UserError("the demo is not installed here (no sandbox.demo module); run `make demo` in a clone")
    # The demo's own --help then names this command rather than `make demo`.
    env = {**os.environ, DEMO_PROG_ENV: "batchdrop demo"}
    code = subprocess.call([sys.executable, "-m", "sandbox.demo", *ctx.args], env=env)  # noqa: S603 - ours
    raise typer.Exit(code)
