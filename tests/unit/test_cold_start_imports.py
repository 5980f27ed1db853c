"""What a function's cold start imports beyond boto3 (docs/benchmarks.md, section 5, measures the time).

Each handler is imported in a bare interpreter (``-S``: only our code and the installed packages on the
path, as in the Lambda package) and must not load what it does not need before its first invocation:
pydantic (settings are validated at synth; the Extend API models load with the first call to Extend),
httpx, asyncio, and Powertools' event data classes and routers."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HANDLERS = ("intake", "submitter", "webhook", "results", "reconciler")
NEVER_AT_IMPORT = (
    "pydantic",
    "pydantic_core",
    "httpx",
    "asyncio",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.event_handler",
    "batchdrop_core.config",
    "batchdrop_core.extend.models",
    "batchdrop_core.extend.client",
)


def _modules_after_import(module: str) -> set[str]:
    probe = f"import json, sys\nimport {module}\nprint(json.dumps(sorted(sys.modules)))\n"
    path = [str(REPO / "lambdas"), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    env = {"PYTHONPATH": ":".join(path), "AWS_DEFAULT_REGION": "us-east-1", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(  # noqa: S603 - this interpreter importing our own module
        [sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("name", HANDLERS)
def test_a_handler_imports_none_of_what_its_cold_start_can_do_without(name: str) -> None:
    loaded = _modules_after_import(f"{name}.handler")
    assert "boto3" in loaded
    assert [m for m in sorted(loaded) if any(m == n or m.startswith(f"{n}.") for n in NEVER_AT_IMPORT)] == []
