"""`batchdrop export`: finished batches' files to a directory, one row per file, as JSON Lines or CSV.

One file per batch (``DIR/route=ROUTE/SUBMISSION.jsonl``), written whole or not at all, so an export
that stops resumes where it was: a batch already in DIR is skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import track

from batchdrop_cli import output
from batchdrop_cli.common import check_route, find_submission, result_location, target_of
from batchdrop_cli.targets import Target, UserError
from batchdrop_cli.views import JsonOption
from batchdrop_core.tracking import BatchState, Submission, TrackedFile

COLUMNS = (
    "fileId",
    "bucket",
    "key",
    "versionId",
    "route",
    "status",
    "submissionId",
    "batchId",
    "runId",
    "attempts",
    "completedAt",
    "resultUri",
    "failureReason",
    "failureMessage",
    "resultSummary",
)


class Format(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


def export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write (created if missing).")],
    batch: Annotated[str | None, typer.Option(help="Only this batch (bpr_… or sub_…).")] = None,
    route: Annotated[str | None, typer.Option("--route", "-r", help="Only batches of this route.")] = None,
    since: Annotated[str | None, typer.Option(help="Only batches finished at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only batches finished before (ISO 8601).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="jsonl (default) or csv.")] = Format.jsonl,
    force: Annotated[bool, typer.Option("--force", help="Write batches already in DIR again.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Write every file of finished batches to DIR, one row each: its status, run, result location,
    summary or failure. One file per batch under DIR/route=ROUTE/, so Athena or pandas read DIR as a
    table; a batch already in DIR is skipped, so an interrupted export resumes (--force rewrites).

    Example: batchdrop export ./out --route invoices --since 2026-12-01 --format csv
    """
    target = target_of(ctx)
    rt = target.runtime()
    if route:
        check_route(target, route)
    submissions = _chosen(target, batch, route, since, until)
    directory.mkdir(parents=True, exist_ok=True)
    written = skipped = rows = 0
    steps = (
        submissions
        if json_output
        else track(submissions, description="export", console=Console(stderr=True), transient=True)
    )
    for submission in steps:
        path = directory / f"route={submission.route}" / f"{submission.submission_id}.{fmt}"
        if path.exists() and not force:
            skipped += 1
            continue
        files = sorted(rt.files.of_submission(submission.submission_id), key=lambda f: f.key)
        _write_whole(path, [_row(target, submission, f) for f in files], fmt)
        written += 1
        rows += len(files)
    data = {
        "directory": str(directory),
        "format": str(fmt),
        "batches": len(submissions),
        "written": written,
        "skipped": skipped,
        "rows": rows,
    }
    if json_output:
        output.print_json(data)
        return
    note = f"; {skipped} already there (--force rewrites them)" if skipped else ""
    output.console().print(f"Wrote {rows} files of {written} batches to {directory}{note}.")


def _chosen(
    target: Target, batch: str | None, route: str | None, since: str | None, until: str | None
) -> list[Submission]:
    rt = target.runtime()
    if batch:
        submission = find_submission(rt, batch)
        if submission.state not in (BatchState.COMPLETED, BatchState.FAILED):
            raise UserError(f"batch {batch} is {submission.state}; export takes finished batches")
        return [submission]
    finished = rt.batches.finished(route, states=(BatchState.COMPLETED, BatchState.FAILED))
    chosen = [
        s
        for s in finished
        if (since is None or (s.completed_at or "") >= since)
        and (until is None or (s.completed_at or "") < until)
    ]
    return sorted(chosen, key=lambda s: (s.completed_at or "", s.submission_id))


def _row(target: Target, submission: Submission, tracked: TrackedFile) -> dict[str, Any]:
    location = result_location(target, tracked.result_key)
    return {
        "fileId": tracked.file_id,
        "bucket": tracked.bucket,
        "key": tracked.key,
        "versionId": tracked.version_id,
        "route": tracked.route,
        "status": tracked.status,
        "submissionId": submission.submission_id,
        "batchId": tracked.batch_id or submission.batch_id,
        "runId": tracked.run_id,
        "attempts": tracked.attempts,
        "completedAt": tracked.completed_at,
        "resultUri": f"s3://{location[0]}/{location[1]}" if location else None,
        "failureReason": tracked.failure_reason,
        "failureMessage": tracked.failure_message,
        "resultSummary": tracked.result_summary,
    }


def _write_whole(path: Path, rows: list[dict[str, Any]], fmt: Format) -> None:
    """The batch's file appears complete or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == Format.csv:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            summary = row["resultSummary"]
            writer.writerow({**row, "resultSummary": json.dumps(summary) if summary is not None else ""})
        text = buffer.getvalue()
    else:
        text = "".join(json.dumps(row, default=str) + "\n" for row in rows)
    temporary = path.with_name(f".{path.name}.partial")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
