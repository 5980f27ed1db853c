"""`batchdrop wait`: block until files, a batch or routes are done, for scripts and CI."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import typer

from batchdrop_cli import output
from batchdrop_cli.common import check_route, find_submission, locate, target_of
from batchdrop_cli.targets import Target
from batchdrop_cli.views import JsonOption
from batchdrop_core.runtime import Runtime
from batchdrop_core.tracking import BatchState, FileStatus

EXIT_TIMED_OUT = 2  # 1 is a usage or AWS error, as for every command


def wait(
    ctx: typer.Context,
    keys: Annotated[
        list[str] | None, typer.Argument(help="Files (keys in the drop bucket, or s3:// URLs) to wait for.")
    ] = None,
    batch: Annotated[str | None, typer.Option(help="Wait for this batch (bpr_… or sub_…).")] = None,
    route: Annotated[
        list[str] | None,
        typer.Option("--route", "-r", help="Wait until this route holds nothing queued or in flight."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many seconds (exit code 2).")] = 3600.0,
    interval: Annotated[float, typer.Option(help="Seconds between checks.")] = 10.0,
    json_output: JsonOption = False,
) -> None:
    """Wait until the given files, a batch, or routes are done; exit 0 when they are, 2 on timeout.

    With no files, batch or route: every route. A file counts as done when its newest tracked version is
    PROCESSED, FAILED or REJECTED (a file intake has not recorded yet is still waited for); a route when
    the arrivals queue is empty and the route has nothing QUEUED and no batch in flight.

    Example: aws s3 cp a.pdf s3://BUCKET/invoices/a.pdf && batchdrop wait invoices/a.pdf --timeout 900
    """
    target = target_of(ctx)
    rt = target.runtime()
    checks = _checks(target, rt, keys or [], batch, route or [])
    started = time.monotonic()
    last: list[str] = []
    while True:
        pending = [reason for check in checks for reason in check()]
        waited = round(time.monotonic() - started, 1)
        if not pending or waited >= timeout:
            break
        if pending != last and not json_output:
            output.console().print(f"[{waited:.0f}s] waiting for: {'; '.join(pending[:5])}", soft_wrap=True)
        last = pending
        time.sleep(min(interval, max(0.0, timeout - waited)))
    if json_output:
        output.print_json({"done": not pending, "waitedSeconds": waited, "pending": pending})
    elif pending:
        output.error(f"still waiting after {waited:.0f} s for: {'; '.join(pending[:5])}")
    else:
        output.console().print(f"Done after {waited:.0f} s.")
    if pending:
        raise typer.Exit(EXIT_TIMED_OUT)


Check = Callable[[], list[str]]  # what is still pending, one short reason each; empty when done


def _checks(
    target: Target, rt: Runtime, keys: list[str], batch: str | None, routes: list[str]
) -> list[Check]:
    for name in routes:
        check_route(target, name)
    checks = [_file_check(rt, *locate(target, key, None)) for key in keys]
    if batch:
        checks.append(_batch_check(rt, find_submission(rt, batch).submission_id))
    if routes or not checks:
        names = routes or [r.name for r in target.routes]
        checks.append(_arrivals_check(target, rt))
        checks.extend(_route_check(rt, name) for name in names)
    return checks


def _file_check(rt: Runtime, bucket: str, key: str) -> Check:
    def pending() -> list[str]:
        versions = rt.files.versions(bucket, key)
        if not versions:
            return [f"{key} (not tracked yet)"]
        newest = versions[0]
        if newest.status in FileStatus.TERMINAL:
            return []
        if newest.review_since:  # a workflow run waiting for a person in Extend's dashboard
            return [f"{key} ({newest.status}, waiting on review at Extend since {newest.review_since})"]
        return [f"{key} ({newest.status})"]

    return pending


def _batch_check(rt: Runtime, submission_id: str) -> Check:
    def pending() -> list[str]:
        submission = rt.batches.get(submission_id)
        state = submission.state if submission else "gone"
        return [] if state in BatchState.TERMINAL else [f"batch {submission_id} ({state})"]

    return pending


def _route_check(rt: Runtime, route: str) -> Check:
    def pending() -> list[str]:
        queued, _ = rt.files.queue_depth(route, 1)
        in_flight = rt.batches.open_submissions(route)
        reasons = [f"route {route} has files QUEUED"] if queued else []
        if in_flight:
            reasons.append(f"route {route} has {len(in_flight)} batch(es) in flight")
        return reasons

    return pending


def _arrivals_check(target: Target, rt: Runtime) -> Check:
    """Notifications intake has not handled yet: files that are about to be QUEUED."""
    arrivals = target.queues.get("arrivals")
    if arrivals is None or not arrivals.url:
        return list  # a deployment without the queue's output: the route checks alone decide
    sqs, url = rt.client("sqs"), arrivals.url

    def pending() -> list[str]:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = sum(int(value) for value in attributes.values())
        return [f"{waiting} arrival notification(s) not yet handled"] if waiting else []

    return pending
