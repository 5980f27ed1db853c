"""`batchdrop reprocess`: send finished files through again (REJECTED after a route was added or a limit
raised, PROCESSED after a processor changed), as intake would take them today."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Annotated, Any

import typer

from batchdrop_cli import output
from batchdrop_cli.common import WORKERS, check_route, current_objects, locate, target_of
from batchdrop_cli.targets import Target, UserError
from batchdrop_cli.views import JsonOption
from batchdrop_core.intake import UNVERSIONED, describe_again
from batchdrop_core.runtime import Runtime
from batchdrop_core.tracking import UNROUTED, FileStatus, TrackedFile

OPERATOR_REPROCESS = "OPERATOR_REPROCESS"


class Finished(StrEnum):
    REJECTED = FileStatus.REJECTED
    PROCESSED = FileStatus.PROCESSED


def reprocess(
    ctx: typer.Context,
    keys: Annotated[
        list[str] | None, typer.Argument(help="Files (keys in the drop bucket, or s3:// URLs).")
    ] = None,
    status: Annotated[Finished, typer.Option(help="Which finished files to send again.")] = Finished.REJECTED,
    prefix: Annotated[str | None, typer.Option(help="Only keys under this prefix.")] = None,
    route: Annotated[
        str | None, typer.Option("--route", "-r", help="Only files that would go to this route now.")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Only REJECTED files with this reason (NO_ROUTE …).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would happen, change nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Send REJECTED (default) or PROCESSED files through again, each once, as a new file would go.

    Each chosen file is described again under the settings now: if it would be rejected again, it is left
    as it is and the reason is shown; otherwise it is QUEUED on its route with its attempts from zero, and
    the route is flushed. A file is only taken from the status it was read in, so a file in flight is never
    sent twice. REJECTED files are found through the problems index; PROCESSED files need KEYs or --prefix.

    Example: batchdrop reprocess --reason NO_ROUTE --dry-run   (after adding a route for them)
    """
    target = target_of(ctx)
    rt = target.runtime()
    if route:
        check_route(target, route)
    if status == Finished.PROCESSED and not keys and prefix is None:
        raise UserError("reprocessing PROCESSED files needs KEYs or --prefix (no index lists them all)")
    candidates = _candidates(target, rt, keys or [], status, prefix)
    chosen = [
        f
        for f in candidates
        if f.status == status
        and (prefix is None or f.key.startswith(prefix))
        and (reason is None or f.failure_reason == reason)
    ]
    rt.files  # noqa: B018 - build the store once, before the threads share it
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        fresh = list(pool.map(lambda f: describe_again(rt, f), chosen))
    plan = [(f, new) for f, new in zip(chosen, fresh, strict=True) if route is None or new.route == route]
    sendable = [(f, new) for f, new in plan if new.status == FileStatus.QUEUED]
    still_rejected = [(f, new) for f, new in plan if new.status != FileStatus.QUEUED]

    sent: list[tuple[TrackedFile, TrackedFile]] = []
    flushed: list[str] = []
    if sendable and not dry_run:
        target.require("flush_queue_url")

        def send(pair: tuple[TrackedFile, TrackedFile]) -> bool:
            old, new = pair
            was = f"{old.status} {old.failure_reason or ''}".strip()
            return rt.files.reopen(old, new, OPERATOR_REPROCESS, f"operator reprocess of a file {was}")

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            sent = [pair for pair, ok in zip(sendable, pool.map(send, sendable), strict=True) if ok]
        flushed = sorted({new.route for _, new in sent if new.route})
        for name in flushed:
            rt.request_flush(name, reason="operator reprocess", force=True)

    shown = sendable if dry_run else sent
    data: dict[str, Any] = {
        "dryRun": dry_run,
        "status": str(status),
        "matched": len(plan),
        "queued": 0 if dry_run else len(sent),
        "wouldQueue": len(sendable) if dry_run else None,
        "stillRejected": len(still_rejected),
        "byRoute": dict(Counter(new.route for _, new in shown)),
        "flushRequested": flushed,
        "files": [
            {"fileId": f.file_id, "route": new.route, "was": f.failure_reason or f.status} for f, new in shown
        ],
        "rejectedAgain": [
            {"fileId": f.file_id, "reason": new.failure_reason, "message": new.failure_message}
            for f, new in still_rejected
        ],
    }
    if json_output:
        output.print_json(data)
        return
    _print(data, dry_run, len(sendable) - len(sent))


def _candidates(
    target: Target, rt: Runtime, keys: list[str], status: Finished, prefix: str | None
) -> list[TrackedFile]:
    if keys:
        newest = []
        for key in keys:
            bucket, name = locate(target, key, None)
            versions = rt.files.versions(bucket, name)
            if not versions:
                raise UserError(
                    f"no tracked file s3://{bucket}/{name}; check the key, or run batchdrop backfill"
                )
            newest.append(versions[0])
        return newest
    if status == Finished.REJECTED:
        routes = [r.name for r in target.routes] + [UNROUTED]
        return [f for name in routes for f in rt.files.problems(name)]
    bucket = target.require("drop_bucket")
    objects = current_objects(rt.client("s3"), bucket, prefix or "")
    found = rt.files.batch_get([(o.bucket, o.key, o.version_id or UNVERSIONED) for o in objects])
    return list(found.values())


def _print(data: dict[str, Any], dry_run: bool, changed_meanwhile: int) -> None:
    out = output.console()
    if not data["matched"]:
        out.print(f"No {data['status']} files match.")
        return
    if data["files"]:
        verb = "would be queued" if dry_run else "queued again"
        out.print(
            output.table(
                f"{len(data['files'])} files {verb}",
                ["file", "route", "was"],
                [[f["fileId"], f["route"], f["was"]] for f in data["files"]],
            )
        )
    if data["rejectedAgain"]:
        out.print(
            output.table(
                f"{len(data['rejectedAgain'])} files would be rejected again (left as they are)",
                ["file", "reason", "why"],
                [[f["fileId"], f["reason"], f["message"]] for f in data["rejectedAgain"]],
            )
        )
    if not dry_run:
        note = f" ({changed_meanwhile} changed meanwhile and were left alone)" if changed_meanwhile else ""
        flushed = ", ".join(data["flushRequested"]) or "-"
        out.print(f"Queued {data['queued']} files again{note}; flush requested for {flushed}.")
