"""Read-only commands: file, batch, results (status has its own module)."""

from __future__ import annotations

import json
import re
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
    find_submission,
    object_versions,
    result_location,
    target_of,
)
from batchdrop_cli.targets import Target, UserError
from batchdrop_core.tracking import Submission, TrackedFile

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
                # a workflow run waiting on a person's review at Extend (or reviewed, once it is over)
                "in review since": values.get("reviewSince"),
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
                    "route version": s.get("routeDigest"),
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
