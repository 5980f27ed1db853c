"""The CLI's sandbox: the shared harness (``sandbox.local.Sandbox``) on the suite's moto server, driven by
hand, with the endpoints file the CLI reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.aws import MotoServer
from tests.helpers import CliSandbox, cli_sandbox


@pytest.fixture
def sandbox(moto_server: MotoServer, tmp_path: Path) -> Iterator[CliSandbox]:
    with cli_sandbox(moto_server, tmp_path) as harness:
        yield harness
