"""`batchdrop routes show|apply`: the routes in effect, and changing them without a redeploy.

Applied routes live in the State table's routes item (batchdrop_core.liveroutes); every function reads
them within ``routesCacheSeconds``. A routes file is validated with the whole settings model (the
deployment's other settings plus the new routes) before anything is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from batchdrop_cli import output
from batchdrop_cli.common import target_of
from batchdrop_cli.targets import Target, UserError
from batchdrop_cli.views import JsonOption
from batchdrop_core import liveroutes, timeutil
from batchdrop_core.config import PLACEHOLDER_MARK, ConfigError, Settings
from batchdrop_core.extend.processors import processor_type
from batchdrop_core.runconfig import route_document

MAX_ITEM_BYTES = 400 * 1024 - 1024  # DynamoDB's item limit, less room for the key and names

app = typer.Typer(
    help="Show the routes in effect, or apply a routes file without a redeploy.\n\n"
    "Example: batchdrop routes apply routes.json --dry-run",
    no_args_is_help=True,
)


@app.command()
def show(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The routes in effect and where they come from: the State table (`batchdrop routes apply`) or the
    deployment (cdk.json at synth).

    Example: batchdrop routes show --json
    """
    target = target_of(ctx)
    live = target.runtime().live_routes()
    routes = [route_document(r) for r in live.routes] if live else _dumped(target.settings)
    data: dict[str, Any] = {
        "target": target.description,
        "source": "table" if live else "deployment",
        "digest": live.digest if live else liveroutes.digest(routes),
        "appliedAt": live.applied_at if live else None,
        "routes": routes,
    }
    if json_output:
        output.print_json(data)
        return
    out = output.console()
    if live:
        out.print(f"Routes of {target.description}: applied {live.applied_at} (digest {live.digest})")
    else:
        out.print(f"Routes of {target.description}: the deployment's (cdk.json at synth); none applied")
    rows = [
        [
            r["name"],
            r["prefix"],
            r["type"],
            r.get("processorId", "-"),
            r.get("version", "-"),
            _size(r.get("overrideConfig")),
            r.get("priority", "-"),
        ]
        for r in routes
    ]
    columns = ["route", "prefix", "type", "processor", "version", "overrideConfig", "priority"]
    out.print(output.table(None, columns, rows))


@app.command()
def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON with a 'routes' list, as cdk.json's batchdrop.routes.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and show the changes; write nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Validate a routes file with every rule of a synth (the deployment's other settings plus these
    routes), show what it adds, changes and removes, then put it in effect: every function uses it within
    routesCacheSeconds. Nothing is written when the file is invalid, when nothing changes, or with
    --dry-run. A batch at Extend keeps the processor it was submitted with, whatever the change.

    Example: batchdrop routes apply routes.json --dry-run
    """
    target = target_of(ctx)
    new = validated_routes(target, file)
    rt = target.runtime()
    live = rt.live_routes()
    old = [route_document(r) for r in live.routes] if live else _dumped(target.settings)
    changes = diff(old, new)
    # An item's size: its attribute names and values (the key and names are a few bytes); the routes
    # document is stored compressed.
    value = liveroutes.item(new, timeutil.iso(timeutil.utc_now()))[liveroutes.VALUE_ATTRIBUTE]["B"]
    size = len(value)
    if size > MAX_ITEM_BYTES:
        raise UserError(
            f"{file}: the routes take {size:,} bytes compressed, more than the {MAX_ITEM_BYTES:,} a DynamoDB "
            "item holds; shorten the largest overrideConfig (or configure it in Extend and name the "
            "processor's version); nothing was written"
        )
    waiting = {name: rt.files.queue_depth(name, 1)[0] for name in changes["removed"]}
    # A workflow's runs report through a webhook subscription to that workflow, made at registration.
    before = {r["name"]: r for r in old}
    subscribe = [
        r["name"]
        for r in new
        if processor_type(r["type"]).subscription_resource
        and r.get("processorId") != before.get(r["name"], {}).get("processorId")
    ]
    write = any(changes.values()) and not dry_run
    if write:
        at = timeutil.iso(timeutil.utc_now())
        # Names removed, now or before, stay known: the reconciler still polls their batches at Extend.
        names = {r["name"] for r in new}
        retired = [n for n in dict.fromkeys([*rt.retired_routes(), *changes["removed"]]) if n not in names]
        item = liveroutes.item(new, at, retired)
        rt.client("dynamodb").put_item(TableName=target.require("state_table"), Item=item)
    data = {
        "target": target.description,
        "from": "table" if live else "deployment",
        **changes,
        "queuedInRemovedRoutes": {name: n for name, n in waiting.items() if n},
        "needSubscription": subscribe,
        "digest": liveroutes.digest(new),
        "written": write,
        "inEffectWithinSeconds": rt.deployed_settings.routes_cache_seconds if write else None,
    }
    if json_output:
        output.print_json(data)
        return
    _print_changes(data, dry_run)


def validated_routes(target: Target, file: Path) -> list[dict[str, Any]]:
    """The routes of ``file`` as the model dumps them, validated with the deployment's other settings."""
    try:
        document = json.loads(file.read_text())
    except OSError as exc:
        raise UserError(f"cannot read {file}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{file} is not valid JSON ({exc}); nothing was written") from None
    if not isinstance(document, dict) or not isinstance(document.get("routes"), list):
        raise UserError(
            f'{file} must be a JSON object with a "routes" list (as cdk.json\'s batchdrop.routes); '
            "nothing was written"
        )
    deployed = target.settings
    try:
        settings = Settings.parse({**_settings_json(deployed), "routes": document["routes"]}, str(file))
    except ConfigError as exc:
        raise UserError(f"{exc}; nothing was written") from None
    placeholders = [r for r in settings.routes if PLACEHOLDER_MARK in (r.processor_id or "")]
    if placeholders and not any(PLACEHOLDER_MARK in (d.processor_id or "") for d in deployed.routes):
        shown = ", ".join(f"{r.name} ({r.processor_id})" for r in placeholders)
        raise UserError(
            f"{file}: routes with the example's placeholder processor ids: {shown}; put your Extend "
            "processor ids in the file; nothing was written"
        )
    # The functions may read dropped objects under the deployed prefixes only (their IAM, set at deploy).
    outside = [r for r in settings.routes if not any(r.prefix.startswith(d.prefix) for d in deployed.routes)]
    if outside:
        shown = ", ".join(f"{r.name} ({r.prefix!r})" for r in outside)
        deployed_prefixes = ", ".join(repr(d.prefix) for d in deployed.routes)
        raise UserError(
            f"{file}: {shown} lies outside the deployed prefixes ({deployed_prefixes}), which alone the "
            "functions may read; add such a route to cdk.json and run `cdk deploy`; nothing was written"
        )
    return _dumped(settings)


def diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, list[str]]:
    before, after = {r["name"]: r for r in old}, {r["name"]: r for r in new}
    return {
        "added": [name for name in after if name not in before],
        "changed": [name for name in after if name in before and after[name] != before[name]],
        "removed": [name for name in before if name not in after],
    }


def _dumped(settings: Settings) -> list[dict[str, Any]]:
    return _settings_json(settings)["routes"]


def _settings_json(settings: Settings) -> dict[str, Any]:
    return json.loads(settings.to_env_json())


def _size(config: Any) -> str:
    return "-" if config is None else f"{len(json.dumps(config, separators=(',', ':'))):,} bytes"


def _print_changes(data: dict[str, Any], dry_run: bool) -> None:
    out = output.console()
    out.print(f"Routes of {data['target']} (in effect now: the {data['from']}'s)")
    for kind, mark in (("added", "+"), ("changed", "~"), ("removed", "-")):
        for name in data[kind]:
            out.print(f"  {mark} {name} ({kind})")
    for name, count in data["queuedInRemovedRoutes"].items():
        out.print(f"  ! {name}: {count}+ files queued; they wait until a route named {name} returns")
    for name in data["needSubscription"]:
        out.print(
            f"  ! {name}: its workflow's run events need a webhook subscription: run "
            "`batchdrop setup --reregister-webhook` once applied (until then the reconciler polls its "
            "batches)"
        )
    if not any(data[k] for k in ("added", "changed", "removed")):
        out.print("No change: nothing written.")
    elif dry_run:
        out.print("Dry run: nothing written.")
    else:
        seconds = data["inEffectWithinSeconds"]
        out.print(f"Applied (digest {data['digest']}): in effect everywhere within {seconds} s.")
