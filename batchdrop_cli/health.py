"""`batchdrop doctor`: every check of a deployment's health, each problem with the command that fixes it;
and the checks of Extend (key, processors) that `batchdrop setup` shares."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.text import Text

from batchdrop_cli import output
from batchdrop_cli.common import target_of
from batchdrop_cli.targets import Target
from batchdrop_cli.views import JsonOption
from batchdrop_core.extend import ExtendError, ExtendRejectedError
from batchdrop_core.timeutil import age_seconds

API_KEY_PREFIX = "sk_"  # Extend's API keys; the stack's generated placeholder has no such prefix
SIGNING_SECRET_PREFIX = "wss_"  # noqa: S105 - the prefix of Extend's webhook signing secrets, not one
REQUIRED = (
    "drop_bucket",
    "results_bucket",
    "files_table",
    "batches_table",
    "state_table",
    "topic_arn",
    "api_key_secret",
    "webhook_secret",
    "flush_queue_url",
    "results_queue_url",
)
EXIT_UNHEALTHY = 3  # 1 is a usage or AWS error, as for every command


@dataclass
class Finding:
    check: str
    state: str  # ok, warn, fail, skip
    detail: str
    fix: str | None = None


def doctor(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Check the deployment end to end; exit 0 only when nothing failed (3 when something did).

    Checks the stacks' outputs, the Extend API key and the webhook signing secret (set, not the generated
    placeholders), every route's processor at Extend (the key works, the processor exists, its type
    matches), that the webhook answers and refuses an unsigned request, blocked routes, dead-letter
    queues, files waiting longer than half the file SLA, and (deployed stacks) the schedules.
    Each problem comes with the command or console step that fixes it.

    Example: batchdrop doctor --json | jq '.checks[] | select(.state != "ok")'
    """
    target = target_of(ctx)
    findings = list(_findings(target))
    healthy = not any(f.state == "fail" for f in findings)
    if json_output:
        output.print_json(
            {"target": target.description, "healthy": healthy, "checks": [asdict(f) for f in findings]}
        )
    else:
        _print(target, findings, healthy)
    if not healthy:
        raise typer.Exit(EXIT_UNHEALTHY)


def _findings(target: Target) -> Iterator[Finding]:
    missing = [name for name in REQUIRED if not getattr(target.resources, name)]
    if missing:
        yield Finding(
            "deployment", "fail", f"{target.description} lacks {', '.join(missing)}", target.missing_hint
        )
    else:
        yield Finding("deployment", "ok", target.description)
    key_ok = yield from _secret_checks(target)
    if key_ok:
        yield from check_processors(target, key_fix="batchdrop setup --replace-key")
    else:
        yield Finding("extend", "skip", "no API key to check Extend with")
    yield _webhook_reachable(target)
    for check in (_blocked_routes, _dead_letters, _waiting_files, _schedules):
        try:
            yield from check(target)
        except (BotoCoreError, ClientError) as exc:
            yield Finding(check.__name__.strip("_").replace("_", " "), "fail", f"could not check: {exc}")


def _secret_checks(target: Target) -> Iterator[Finding]:
    """The two Extend secrets; returns whether the API key looks set."""
    rt = target.runtime()
    key_ok = False
    for field_name, label, prefix, fix in (
        ("api_key_secret", "api key", API_KEY_PREFIX, "batchdrop setup (prompts for the key, hidden)"),
        (
            "webhook_secret",
            "webhook secret",
            SIGNING_SECRET_PREFIX,
            "batchdrop setup (registers the webhook with Extend and stores its signing secret)",
        ),
    ):
        secret_id = getattr(target.resources, field_name)
        if not secret_id:
            continue
        try:
            value = rt.secret_value(field_name, force_fetch=True)
        except Exception as exc:  # noqa: BLE001 - Powertools wraps every failure to read in its own error
            yield Finding(label, "fail", f"cannot read {secret_id}: {exc}", fix)
            continue
        if value.startswith(prefix):
            yield Finding(label, "ok", f"set in {secret_id}")
            key_ok = key_ok or field_name == "api_key_secret"
        else:
            yield Finding(label, "fail", f"{secret_id} holds no {prefix}… value (the placeholder?)", fix)
    return key_ok


def check_processors(target: Target, *, key_fix: str, client: Any = None) -> Iterator[Finding]:
    """Every route's processor read at Extend: the key works, the processor exists, its type matches."""
    extend = client or target.runtime().extend
    for route in target.routes:
        name = f"route {route.name}"
        what = f"{route.type} processor {route.processor_id}" if route.processor_id else f"{route.type} runs"
        try:
            extend.check_route(route.type, route.processor_id, retries=0)
        except ExtendRejectedError as exc:
            if exc.is_auth_problem:
                yield Finding(
                    "api key",
                    "fail",
                    f"Extend refused the API key ({exc})",
                    f"store a valid key: {key_fix}",
                )
                return
            yield Finding(
                name,
                "fail",
                f"no {what} at Extend ({exc})",
                "put the right processor id in the route (cdk.json) and deploy; it must be in the key's "
                "workspace",
            )
        except ExtendError as exc:
            yield Finding(name, "warn", f"Extend did not answer reading {what}: {exc}", "try again")
        else:
            yield Finding(name, "ok", f"{what} readable" if not route.processor_id else f"{what} exists")


def _webhook_reachable(target: Target) -> Finding:
    if not target.webhook_url:
        return Finding("webhook", "fail", "no webhook URL known", target.missing_hint)
    try:
        status = httpx.post(target.webhook_url, content=b"{}", timeout=10).status_code
    except httpx.HTTPError as exc:
        return Finding(
            "webhook", "fail", f"{target.webhook_url} unreachable ({exc})", "check the webhook API"
        )
    if status == 401:
        return Finding("webhook", "ok", f"{target.webhook_url} answers and refuses an unsigned request")
    return Finding(
        "webhook",
        "fail",
        f"{target.webhook_url} answered {status} to an unsigned request (expected 401)",
        "see the webhook function's log group",
    )


def _blocked_routes(target: Target) -> Iterator[Finding]:
    rt = target.runtime()
    for route in target.routes:
        state = rt.state.route_state(route.name)
        if state.get("blocked"):
            yield Finding(
                f"route {route.name}",
                "fail",
                f"blocked: {state.get('blockedReason')}: {state.get('blockedMessage')}",
                "fix the cause at Extend (key, processor, credits); the route resumes at its next probe, "
                f"or at once with `batchdrop flush {route.name}`",
            )


def _dead_letters(target: Target) -> Iterator[Finding]:
    sqs = target.runtime().client("sqs")
    for queue in target.queues.values():
        if not queue.dlq_url:
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue.dlq_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        count = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        if count:
            yield Finding(
                f"{queue.name} DLQ",
                "fail",
                f"{count} message(s) failed {queue.name} five times",
                f"inspect them, fix the cause, then `batchdrop redrive --queue {queue.name}`",
            )
        else:
            yield Finding(f"{queue.name} DLQ", "ok", "empty")


def _waiting_files(target: Target) -> Iterator[Finding]:
    rt = target.runtime()
    limit = target.settings.file_sla_minutes * 60 / 2
    for route in target.routes:
        oldest = rt.files.oldest_queued(route.name, 1)
        waited = age_seconds(oldest[0].queued_at) if oldest else 0.0
        if waited > limit:
            yield Finding(
                f"route {route.name}",
                "warn",
                f"a file has waited {waited / 60:.0f} min to be submitted (half the file SLA is "
                f"{limit / 60:.0f})",
                f"`batchdrop status --route {route.name}` says why (blocked, backing off, Extend's limits)",
            )


def _schedules(target: Target) -> Iterator[Finding]:
    stateless = target.stacks[1] if len(target.stacks) > 1 else None
    if stateless is None:
        yield Finding("schedules", "skip", "the sandbox runs the schedules itself")
        return
    cloudformation, events = target.session.client("cloudformation"), target.session.client("events")
    resources = cloudformation.describe_stack_resources(StackName=stateless)["StackResources"]
    rules = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Events::Rule"]
    disabled = [rule for rule in rules if events.describe_rule(Name=rule).get("State") != "ENABLED"]
    if disabled:
        yield Finding(
            "schedules",
            "fail",
            f"disabled: {', '.join(disabled)} (no sweeps or reconciles: partial batches wait, lost "
            "webhooks stay lost)",
            "aws events enable-rule --name RULE, or redeploy the stateless stack",
        )
    else:
        yield Finding("schedules", "ok", f"{len(rules)} rules enabled")


STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def _print(target: Target, findings: list[Finding], healthy: bool) -> None:
    rows: list[list[Any]] = []
    for f in findings:
        rows.append([Text(f.state.upper(), style=STYLE[f.state]), f.check, f.detail, f.fix or ""])
    out = output.console()
    out.print(output.table(f"batchdrop doctor: {target.description}", ["", "check", "found", "fix"], rows))
    failed = sum(1 for f in findings if f.state == "fail")
    out.print("Healthy." if healthy else f"{failed} problem(s): see the fix column.")
