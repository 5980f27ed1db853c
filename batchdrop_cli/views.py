"""Read-only commands: status, file, batch, results."""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import asdict
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from rich.json import JSON
from rich.panel import Panel
from rich.text import Text

from batchdrop_cli import output
from batchdrop_cli.common import (
    check_route,
    find_submission,
    object_versions,
    result_location,
    target_of,
)
from batchdrop_cli.targets import Target, UserError
from batchdrop_core.timeutil import age_seconds, utc_now
from batchdrop_core.tracking import UNROUTED, FileStatus, Submission, TrackedFile

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
VersionOption = Annotated[str | None, typer.Option("--version", "-v", help="One S3 version id.")]
BucketOption = Annotated[
    str | None, typer.Option("--bucket", help="Bucket of KEY (default: the drop bucket).")
]
KeyArgument = Annotated[str, typer.Argument(help="Object key in the drop bucket, or s3://bucket/key.")]


def submission_values(submission: Submission) -> dict[str, Any]:
    # camelCase, like the Files items, so scripts see one naming style.
    return {re.sub(r"_(\w)", lambda m: m.group(1).upper(), k): v for k, v in asdict(submission).items()}


def file_values(target: Target, tracked: TrackedFile) -> dict[str, Any]:
    """A file's item joined with its submission, which records what the submission's files share."""
    location = result_location(target, tracked.result_key)
    submission = target.runtime().batches.get(tracked.submission_id) if tracked.submission_id else None
    return {
        **tracked.to_values(),
        "fileId": tracked.file_id,
        "bucket": tracked.bucket,
        "key": tracked.key,
        "batchId": tracked.batch_id or (submission.batch_id if submission else None),
        "submissionState": submission.state if submission else None,
        "processorType": submission.processor_type if submission else None,
        "processorId": submission.processor_id if submission else None,
        "submittedAt": submission.submitted_at if submission else None,
        "urlExpiresAt": submission.url_expires_at if submission else None,
        "resultUri": f"s3://{location[0]}/{location[1]}" if location else None,
    }


# -- status -----------------------------------------------------------------------------------------------
def status(
    ctx: typer.Context,
    route: Annotated[str | None, typer.Option("--route", "-r", help="Only this route.")] = None,
    recent: Annotated[int, typer.Option(help="How many finished batches to list.")] = 5,
    watch: Annotated[
        float | None, typer.Option(help="Refresh every this many seconds until Ctrl-C.", min=1.0)
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Files by status per route, oldest QUEUED age, blocked routes, batches in flight, recent outcomes,
    Extend credits per route per day.

    Example: batchdrop status --route invoices --watch 10
    """
    target = target_of(ctx)
    if route:
        check_route(target, route)
    if watch is None:
        data = _status_data(target, route, recent)
        if json_output:
            output.print_json(data)
        else:
            _print_status(data)
        return
    if json_output:
        raise UserError("--watch refreshes a screen for people; for scripts, run --json in a loop")
    out = output.console()
    try:
        while True:
            data = _status_data(target, route, recent)
            out.clear()
            _print_status(data)
            out.print(Text(f"every {watch:g} s · {utc_now():%H:%M:%S} UTC · Ctrl-C to stop", style="dim"))
            time.sleep(watch)
    except KeyboardInterrupt:
        return


def _status_data(target: Target, route: str | None, recent: int) -> dict[str, Any]:
    rt = target.runtime()
    names = [check_route(target, route)] if route else [r.name for r in target.settings.routes]
    counts = rt.files.count_by_route_and_status()
    configured = {r.name for r in target.settings.routes}
    routes = []
    for name in names:
        config = target.settings.route(name)
        oldest = rt.files.oldest_queued(name, 1)
        oldest_at = oldest[0].queued_at if oldest else None
        state = rt.state.route_state(name)
        routes.append(
            {
                "name": name,
                "prefix": config.prefix,
                "type": config.type,
                "processorId": config.processor_id,
                "counts": {s: counts.get(name, Counter())[s] for s in FileStatus.ALL},
                "oldestQueuedAt": oldest_at,
                "oldestQueuedAgeSeconds": round(age_seconds(oldest_at), 1) if oldest_at else None,
                "blocked": bool(state.get("blocked")),
                "blockedReason": state.get("blockedReason") if state.get("blocked") else None,
                "blockedMessage": state.get("blockedMessage") if state.get("blocked") else None,
                "inFlight": [submission_values(s) for s in rt.batches.open_submissions(name)],
            }
        )
    finished = rt.batches.finished(route)
    recent_finished = sorted(finished, key=lambda s: s.completed_at or s.created_at, reverse=True)[:recent]
    data = {
        "target": target.description,
        "routes": routes,
        # Files under no route (or under a route removed from the settings since).
        "otherFiles": {r: dict(c) for r, c in counts.items() if r not in configured},
        "recent": [submission_values(s) for s in recent_finished],
        "creditsByDay": credits_by_day(finished),
    }
    return data


def credits_by_day(finished: list[Submission], days: int = 7) -> dict[str, dict[str, float]]:
    """Extend credits of finished batches per route per UTC day (the last ``days`` days with any)."""
    totals: dict[str, dict[str, float]] = {}
    for s in finished:
        if s.credits and s.completed_at:
            day = totals.setdefault(s.completed_at[:10], {})
            day[s.route] = round(day.get(s.route, 0.0) + s.credits, 6)
    return dict(sorted(totals.items(), reverse=True)[:days])


def _print_status(data: dict[str, Any]) -> None:
    out = output.console()
    out.print(Text(f"batchdrop · {data['target']}", style="bold"))
    rows = []
    for r in data["routes"]:
        health = Text(f"BLOCKED: {r['blockedReason']}", style="bold red") if r["blocked"] else Text("ok")
        rows.append(
            [
                r["name"],
                *(str(r["counts"][s]) for s in FileStatus.ALL),
                output.age(r["oldestQueuedAt"]),
                health,
            ]
        )
    for name, counts in data["otherFiles"].items():
        label = "(no route)" if name == UNROUTED else f"{name} (not configured)"
        rows.append([label, *(str(counts.get(s, 0)) for s in FileStatus.ALL), "-", ""])
    out.print(output.table("Files", ["route", *FileStatus.ALL, "oldest queued", "route state"], rows))

    for r in data["routes"]:
        if r["blocked"]:
            out.print(
                Panel(
                    Text(r["blockedMessage"] or ""),
                    title=f"route {r['name']} is blocked: {r['blockedReason']}",
                    border_style="red",
                    expand=False,
                )
            )

    in_flight = [s for r in data["routes"] for s in r["inFlight"]]
    if in_flight:
        out.print(
            output.table(
                "Batches in flight",
                ["route", "batch", "state", "files", "age"],
                [
                    [
                        s["route"],
                        s["batchId"] or s["submissionId"],
                        output.status_text(s["state"]),
                        s["fileCount"],
                        output.age(s["createdAt"]),
                    ]
                    for s in in_flight
                ],
            )
        )
    else:
        out.print("No batches in flight.")
    if data["creditsByDay"]:
        names = sorted({name for day in data["creditsByDay"].values() for name in day})
        out.print(
            output.table(
                "Extend credits used (finished batches, UTC days)",
                ["day", *names],
                [
                    [day, *(f"{by_route.get(n, 0):g}" for n in names)]
                    for day, by_route in data["creditsByDay"].items()
                ],
            )
        )
    if data["recent"]:
        out.print(
            output.table(
                "Recent outcomes",
                ["route", "batch", "state", "files", "processed", "failed", "finished"],
                [
                    [
                        s["route"],
                        s["batchId"] or s["submissionId"],
                        output.status_text(s["state"]),
                        s["fileCount"],
                        s["processedCount"],
                        s["failedCount"],
                        f"{output.age(s['completedAt'])} ago" if s["completedAt"] else "-",
                    ]
                    for s in data["recent"]
                ],
            )
        )


# -- file -------------------------------------------------------------------------------------------------
def file(
    ctx: typer.Context,
    key: KeyArgument,
    version: VersionOption = None,
    bucket: BucketOption = None,
    json_output: JsonOption = False,
) -> None:
    """Every tracked version of an object: status, route, batch, run, result location, failure, history.

    Example: batchdrop file invoices/2026/acme-1042.pdf
    """
    target, bucket, key, versions = object_versions(ctx, key, version, bucket)
    data = {"bucket": bucket, "key": key, "versions": [file_values(target, f) for f in versions]}
    if json_output:
        output.print_json(data)
        return
    out = output.console()
    for values in data["versions"]:
        failure = values["failureReason"]
        if failure and values["failureMessage"]:
            failure = f"{failure}: {values['failureMessage']}"
        grid = output.fields(
            {
                "status": output.status_text(values["status"]),
                "submission state": values["submissionState"],
                "route": values["route"],
                "processor": values["processorId"],
                "size": values["size"],
                "arrived": values["arrivedAt"],
                "submitted": values["submittedAt"],
                "completed": values["completedAt"],
                "submission": values["submissionId"],
                "batch": values["batchId"],
                "run": values["runId"],
                "attempts": values["attempts"],
                "result": values["resultUri"],
                "summary": values["resultSummary"],
                "failure": failure,
            }
        )
        out.print(
            Panel(
                grid,
                title=f"s3://{bucket}/{key}  version {values['versionId']}",
                title_align="left",
                expand=False,
            )
        )
        history = values["history"] or []
        if not history:
            continue
        out.print(
            output.table(
                "earlier attempts",
                ["at", "status", "details"],
                [
                    [
                        h.get("at"),
                        output.status_text(h.get("status")),
                        ", ".join(f"{k}={v}" for k, v in h.items() if k not in ("at", "status")),
                    ]
                    for h in history
                ],
            )
        )


# -- batch ------------------------------------------------------------------------------------------------
def batch(
    ctx: typer.Context,
    batch_id: Annotated[str, typer.Argument(metavar="ID", help="Extend's batch id (bpr_…) or ours (sub_…).")],
    limit: Annotated[int, typer.Option(help="Files to list in the table (--json lists all).")] = 20,
    json_output: JsonOption = False,
) -> None:
    """A batch submission: its state, counts, credits and files.

    Example: batchdrop batch bpr_Xj2kP9 --limit 50
    """
    target = target_of(ctx)
    rt = target.runtime()
    submission = find_submission(rt, batch_id)
    # Files leave a submission when they are requeued, so these are the ones it still accounts for.
    files = sorted(rt.files.of_submission(submission.submission_id), key=lambda f: f.key)
    data = {
        "submission": submission_values(submission),
        "counts": dict(Counter(f.status for f in files)),
        "files": [
            {
                "bucket": f.bucket,
                "key": f.key,
                "versionId": f.version_id,
                "status": f.status,
                "runId": f.run_id,
                "attempts": f.attempts,
                "resultKey": f.result_key,
                "failureReason": f.failure_reason,
                "failureMessage": f.failure_message,
            }
            for f in files
        ],
    }
    if json_output:
        output.print_json(data)
        return
    out = output.console()
    s = data["submission"]
    out.print(
        Panel(
            output.fields(
                {
                    "route": s["route"],
                    "processor": f"{s['processorType']} {s['processorId']}",
                    "state": output.status_text(s["state"]),
                    "extend status": s["extendStatus"],
                    "files": s["fileCount"],
                    "processed": s["processedCount"],
                    "failed": s["failedCount"],
                    "requeued": s["requeuedCount"],
                    "credits": s["credits"],
                    "created": s["createdAt"],
                    "submitted": s["submittedAt"],
                    "completed": s["completedAt"],
                    "note": s["note"],
                }
            ),
            title=f"batch {s['batchId'] or '(no Extend id yet)'}  submission {s['submissionId']}",
            title_align="left",
            expand=False,
        )
    )
    out.print("  ".join(f"{status}: {count}" for status, count in sorted(data["counts"].items())))
    shown = data["files"][:limit]
    out.print(
        output.table(
            None,
            ["key", "version", "status", "run", "failure"],
            [
                [f["key"], f["versionId"], output.status_text(f["status"]), f["runId"], f["failureReason"]]
                for f in shown
            ],
        )
    )
    if len(data["files"]) > len(shown):
        out.print(f"… {len(data['files']) - len(shown)} more (raise --limit, or use --json)")


# -- results ----------------------------------------------------------------------------------------------
def results(
    ctx: typer.Context,
    key: KeyArgument,
    version: VersionOption = None,
    bucket: BucketOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the stored result of a file (its newest tracked version unless --version).

    Example: batchdrop results invoices/2026/acme-1042.pdf --json | jq .run.output
    """
    target, bucket, key, versions = object_versions(ctx, key, version, bucket)
    tracked = versions[0]
    location = result_location(target, tracked.result_key)
    if location is None:
        hint = ""
        with_result = [f.version_id for f in versions if f.result_key]
        if with_result:
            hint = f"; version {with_result[0]} has one (--version {with_result[0]})"
        reason = f" ({tracked.failure_reason})" if tracked.failure_reason else ""
        raise UserError(
            f"s3://{bucket}/{key} version {tracked.version_id} has no stored result: it is "
            f"{tracked.status}{reason}{hint}"
        )
    try:
        body = target.runtime().client("s3").get_object(Bucket=location[0], Key=location[1])["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise UserError(f"the result object s3://{location[0]}/{location[1]} is missing") from None
        raise
    text = body.decode("utf-8")
    if json_output:
        print(text)
        return
    out = output.console()
    # soft_wrap: long values stay on one line, so the printed JSON can still be copied or piped.
    out.print(Text(f"s3://{location[0]}/{location[1]}", style="bold"), soft_wrap=True)
    try:
        out.print(JSON(text), soft_wrap=True)
    except json.JSONDecodeError:
        out.print(text, markup=False, soft_wrap=True)
