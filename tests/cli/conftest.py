"""A running sandbox for the CLI: moto deployment + local pipeline + Extend simulator + endpoints file."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from batchdrop_cli import app
from batchdrop_cli.targets import endpoints_document, load_sandbox
from batchdrop_core.config import Settings
from batchdrop_core.runtime import Runtime
from sandbox.aws import REGION, Deployment, MotoServer
from sandbox.pipeline import LocalPipeline
from tests.conftest import make_settings

runner = CliRunner()


def invoke(*args: str) -> Result:
    # A wide terminal, so tables print ids whole.
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@dataclass
class Sandbox:
    deployment: Deployment
    pipeline: LocalPipeline
    settings: Settings
    sim: Any
    path: Path

    def run(self, *args: str) -> Result:
        return invoke("--sandbox", str(self.path), *args)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def fails(self, *args: str) -> str:
        """Runs a command that must fail as a user error; returns its message."""
        result = self.run(*args)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        return result.stderr

    @property
    def rt(self) -> Runtime:
        return load_sandbox(self.path).runtime()

    @property
    def drop_bucket(self) -> str:
        return self.deployment.resources.drop_bucket or ""

    def upload(self, keys: Iterable[str], body: bytes | None = None) -> None:
        s3 = self.deployment.session.client("s3")
        for key in keys:
            s3.put_object(
                Bucket=self.drop_bucket, Key=key, Body=b"Invoice " + key.encode() if body is None else body
            )


@pytest.fixture
def sandbox(deployment: Deployment, extend_sim: Any, moto_server: MotoServer, tmp_path: Path) -> Sandbox:
    settings = make_settings(extend_sim.base_url)
    pipeline = LocalPipeline(settings, deployment, intake_window=0.2)
    document = endpoints_document(
        deployment, settings, aws_endpoint_url=moto_server.url, region=REGION, extend_url=extend_sim.base_url
    )
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(document))
    return Sandbox(deployment, pipeline, settings, extend_sim, path)
