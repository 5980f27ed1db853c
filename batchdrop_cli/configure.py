"""`batchdrop setup`: after `cdk deploy`, store the Extend API key, register the webhook and store its
signing secret, and check every route's processor with the key. Re-runnable: it says what it changed."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from batchdrop_cli import output
from batchdrop_cli.common import target_of
from batchdrop_cli.health import API_KEY_PREFIX, SIGNING_SECRET_PREFIX, check_processors
from batchdrop_cli.targets import Target, UserError
from batchdrop_cli.views import JsonOption
from batchdrop_cli.webhooks import create_webhook
from batchdrop_core.runtime import Runtime

EXIT_PROBLEMS = 3  # set up, but a route's processor is missing: the same code as doctor's


def setup(
    ctx: typer.Context,
    api_key_stdin: Annotated[
        bool, typer.Option("--api-key-stdin", help="Read the API key from stdin (scripts, CI).")
    ] = False,
    replace_key: Annotated[
        bool, typer.Option("--replace-key", help="Ask for a new API key even if one is stored.")
    ] = False,
    webhook_url: Annotated[
        str | None, typer.Option(help="Webhook URL to register (default: the stack's WebhookUrl).")
    ] = None,
    reregister_webhook: Annotated[
        bool,
        typer.Option(
            "--reregister-webhook", help="Create a new webhook endpoint even if a secret is stored."
        ),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Finish a deployment: the API key (hidden prompt, or --api-key-stdin; never echoed or logged), the
    webhook endpoint at Extend and its signing secret, and a check of every route's processor.

    What is set already is kept (run it again any time; it says what it changed). Exit 0 when every route's
    processor answered, 3 when one is missing at Extend, 1 when the key is refused (nothing is stored).

    Example: printf %s "$EXTEND_API_KEY" | batchdrop setup --api-key-stdin
    """
    target = target_of(ctx)
    rt = target.runtime()
    changes: list[str] = []

    stored_key = _stored(rt, "api_key_secret")
    key = stored_key if stored_key.startswith(API_KEY_PREFIX) and not (replace_key or api_key_stdin) else None
    if key is None:
        key = _ask_for_key(api_key_stdin)
    extend = rt.extend_client(lambda: key)
    findings = list(check_processors(target, key_fix="run setup again with the right key", client=extend))
    refused = [f for f in findings if f.check == "api key"]
    if refused:
        if key == stored_key:
            raise UserError(f"{refused[0].detail} (the stored key); run `batchdrop setup --replace-key`")
        raise UserError(f"{refused[0].detail}; nothing was stored")
    if key != stored_key:
        secret_id = target.require("api_key_secret")
        rt.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=key)
        changes.append(f"stored the API key in {secret_id}")

    stored_signing = _stored(rt, "webhook_secret")
    if reregister_webhook or not stored_signing.startswith(SIGNING_SECRET_PREFIX):
        url = webhook_url or target.webhook_url
        if not url:
            raise UserError(f"no webhook URL known for {target.description}; pass --webhook-url")
        endpoint_id, secret_id = create_webhook(target, extend, url, "batchdrop")
        changes.append(
            f"registered webhook endpoint {endpoint_id} for {url}; its signing secret is in {secret_id}"
        )

    missing = [f for f in findings if f.state == "fail"]
    data: dict[str, Any] = {
        "target": target.description,
        "changed": changes,
        "routes": [{"check": f.check, "state": f.state, "detail": f.detail} for f in findings],
        "ready": not missing,
    }
    if json_output:
        output.print_json(data)
    else:
        _print(target, data, missing)
    if missing:
        raise typer.Exit(EXIT_PROBLEMS)


def _stored(rt: Runtime, field_name: str) -> str:
    try:
        return rt.secret_value(field_name, force_fetch=True)
    except Exception:  # noqa: BLE001 - no value yet, or unreadable: either way, setup writes one
        return ""


def _ask_for_key(from_stdin: bool) -> str:
    if from_stdin:
        key = sys.stdin.read().strip()
    elif sys.stdin.isatty():
        key = typer.prompt("Extend API key", hide_input=True).strip()
    else:
        raise UserError("no API key stored and no terminal to ask on: pipe it in with --api-key-stdin")
    if not key.startswith(API_KEY_PREFIX):
        raise UserError(f"Extend API keys start with {API_KEY_PREFIX!r}; nothing was stored")
    return key


def _print(target: Target, data: dict[str, Any], missing: list[Any]) -> None:
    out = output.console()
    out.print(f"batchdrop setup: {target.description}")
    for change in data["changed"] or ["nothing to change: the key and the webhook were set already"]:
        out.print(f"  - {change}")
    for route in data["routes"]:
        out.print(f"  {route['state'].upper():4} {route['check']}: {route['detail']}")
    if missing:
        out.print(
            "A route's processor is missing at Extend: fix the route (cdk.json), deploy, run setup again."
        )
    else:
        out.print("Ready: drop files into the bucket. `batchdrop doctor` checks the whole deployment.")
