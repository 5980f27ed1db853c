"""`batchdrop status`: files by status per route, the oldest QUEUED age, blocked routes, batches in
flight, recent outcomes and Extend credits per day; once, or redrawn with --watch."""

from __future__ import annotations

import time
from collections import Counter
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.text import Text

from batchdrop_cli import output
from batchdrop_cli.common import check_route, target_of
from batchdrop_cli.targets import Target, UserError
from batchdrop_cli.views import JsonOption, submission_values
from batchdrop_core.timeutil import age_seconds, utc_now
from batchdrop_core.tracking import IN_REVIEW, UNROUTED, FileStatus, Submission

# IN_REVIEW: of the SUBMITTED files, those whose workflow run waits on a person's review at Extend.
COLUMNS = (*FileStatus.ALL, IN_REVIEW)


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
    names = [check_route(target, route)] if route else [r.name for r in target.routes]
    counts, oldest_review = rt.files.census()
    configured = {r.name for r in target.routes}
    routes = []
    for name in names:
        config = target.route(name)
        oldest = rt.files.oldest_queued(name, 1)
        oldest_at = oldest[0].queued_at if oldest else None
        state = rt.state.route_state(name)
        routes.append(
            {
                "name": name,
                "prefix": config.prefix,
                "type": config.type,
                "processorId": config.processor_id,
                "counts": {s: counts.get(name, Counter())[s] for s in COLUMNS},
                # Workflow runs waiting on a person's review at Extend: counted in SUBMITTED, not stuck.
                "oldestReviewSince": oldest_review.get(name),
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
                *(str(r["counts"][s]) for s in COLUMNS),
                output.age(r["oldestQueuedAt"]),
                output.age(r["oldestReviewSince"]),
                health,
            ]
        )
    for name, counts in data["otherFiles"].items():
        label = "(no route)" if name == UNROUTED else f"{name} (not configured)"
        rows.append([label, *(str(counts.get(s, 0)) for s in COLUMNS), "-", "-", ""])
    headers = ["route", *COLUMNS, "oldest queued", "longest review", "route state"]
    out.print(output.table("Files", headers, rows))

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
