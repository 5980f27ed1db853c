"""One synthesis of the example app (cdk.json context, bundling skipped) shared by all infra tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack

from stacks.batchdrop_app import build_app
from stacks.stateful_stack import StatefulStack
from stacks.stateless_stack import StatelessStack

# No bundling (no wheels to download), and cdk.json's example routes as they ship, placeholders and all.
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": [], "allowPlaceholderProcessors": True}


@dataclass
class Synthesized:
    app: App
    outdir: Path
    stateful: StatefulStack
    stateless: StatelessStack

    def template(self, stack: Stack) -> dict[str, Any]:
        return json.loads((self.outdir / f"{stack.stack_name}.template.json").read_text())

    def logical_id(self, construct: Any) -> str:
        """Logical id of a construct's CloudFormation resource (the L2's default child)."""
        element = getattr(construct.node, "default_child", None) or construct
        return Stack.of(element).resolve(Stack.of(element).get_logical_id(element))


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(SKIP_BUNDLING, outdir=str(outdir))
    app.synth()  # runs cdk-nag too: unacknowledged findings fail here
    stacks = {type(child): child for child in app.node.children if isinstance(child, Stack)}
    return Synthesized(app, outdir, stacks[StatefulStack], stacks[StatelessStack])


@pytest.fixture(scope="session")
def stateful_template(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.template(synthesized.stateful)


@pytest.fixture(scope="session")
def stateless_template(synthesized: Synthesized) -> dict[str, Any]:
    return synthesized.template(synthesized.stateless)
