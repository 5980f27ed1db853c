"""The CLI's sandbox: the shared harness (``sandbox.local.Sandbox``) on the suite's moto server, driven by
hand, with the endpoints file the CLI reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.aws import MotoServer
from sandbox.local import Sandbox, SandboxOptions
from tests.helpers import (
    EXAMPLE_ROUTES,
    TEST_API_KEY,
    TEST_WEBHOOK_SECRET,
    CliSandbox,
    unique_prefix,
)


@pytest.fixture
def sandbox(moto_server: MotoServer, tmp_path: Path) -> Iterator[CliSandbox]:
    # Nothing runs by itself: the tests pump the pipeline (and the simulator sends no webhooks), so every
    # step happens when a test says.
    options = SandboxOptions(
        routes=EXAMPLE_ROUTES,
        settings={"maxWaitSeconds": 300},
        api_key=TEST_API_KEY,
        webhook_secret=TEST_WEBHOOK_SECRET,
        read_rps=0,  # no read limit, as the extend_sim fixture
        intake_window=0.2,
        name_prefix=unique_prefix(),
        background=False,
        webhooks=False,
        inbox=False,
    )
    with Sandbox(options, moto=moto_server) as harness:
        path = tmp_path / "endpoints.json"
        path.write_text(json.dumps(harness.endpoints()))
        yield CliSandbox(harness, path)
