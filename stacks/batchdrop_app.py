"""Builds the CDK app: settings from context, the two stacks, and cdk-nag as a validation plugin."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from batchdrop_core.config import ConfigError, Settings
from stacks import constants
from stacks.stateful_stack import StatefulStack
from stacks.stateless_stack import StatelessStack

CDK_JSON = Path(__file__).resolve().parents[1] / "cdk.json"
SETTINGS_SOURCE = f"cdk.json context '{constants.CONTEXT_SETTINGS_KEY}'"


def build_app(overrides: Mapping[str, Any] | None = None, outdir: str | None = None) -> App:
    """The app with both stacks. ``overrides`` win over cdk.json and ``cdk -c`` (tests use them)."""
    # `python app.py` (make synth) does not read cdk.json by itself; the cdk CLI's context still wins.
    app = App(context=_cdk_json_context(), post_cli_context=dict(overrides or {}), outdir=outdir)
    settings = load_settings(app)
    _refuse_placeholders(app, settings)
    prefix = app.node.try_get_context(constants.CONTEXT_STACK_PREFIX_KEY) or constants.DEFAULT_STACK_PREFIX
    stateful = StatefulStack(
        app,
        stack_names(prefix)[0],
        settings=settings,
        description="batchdrop data: buckets, tables, arrivals queue, alert topic, Extend secrets",
    )
    stateless = StatelessStack(
        app,
        stack_names(prefix)[1],
        data=stateful,
        settings=settings,
        service=constants.service_name(prefix),
        description="batchdrop compute: queues, functions, webhook API, schedules, alarms, dashboard",
    )
    for stack in (stateful, stateless):
        Tags.of(stack).add(constants.TAG_APPLICATION, "batchdrop")
        Tags.of(stack).add(constants.TAG_DEPLOYMENT, prefix)
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app


def stack_names(prefix: str) -> tuple[str, str]:
    """(stateful, stateless) stack names for a stack prefix."""
    return (f"{prefix}-{constants.STATEFUL_STACK_SUFFIX}", f"{prefix}-{constants.STATELESS_STACK_SUFFIX}")


def load_settings(app: App) -> Settings:
    raw = app.node.try_get_context(constants.CONTEXT_SETTINGS_KEY)
    if isinstance(raw, str):  # `cdk deploy -c batchdrop='{...}'` passes a string
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"invalid batchdrop configuration in {SETTINGS_SOURCE}: not JSON ({exc})"
            ) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"missing batchdrop configuration: set the context key '{constants.CONTEXT_SETTINGS_KEY}' in "
            "cdk.json (see docs/deploy.md) or pass it with -c"
        )
    return Settings.parse(raw, SETTINGS_SOURCE)


def _refuse_placeholders(app: App, settings: Settings) -> None:
    allowed = app.node.try_get_context(constants.CONTEXT_ALLOW_PLACEHOLDERS_KEY)
    if allowed is True or str(allowed).lower() == "true":  # `-c key=true` passes a string
        return
    placeholders = [r for r in settings.routes if constants.PLACEHOLDER_MARK in (r.processor_id or "")]
    if placeholders:
        named = ", ".join(f"{r.name} ({r.processor_id})" for r in placeholders)
        raise ConfigError(
            f"routes with the example's placeholder processor ids: {named}; put your Extend processor ids "
            f"in {SETTINGS_SOURCE} (docs/deploy.md, step 2), or pass "
            f"-c {constants.CONTEXT_ALLOW_PLACEHOLDERS_KEY}=true to deploy a demo whose submissions fail"
        )


def _cdk_json_context() -> dict[str, Any]:
    if not CDK_JSON.exists():
        return {}
    return json.loads(CDK_JSON.read_text()).get("context", {})
