"""The Docker-free Lambda bundle: our packages plus Linux arm64 wheels for the Lambda Python version."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from stacks import constants
from stacks.packaging import LAMBDAS_DIR, LocalBundler, bundle, target_interpreter


def _python_files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*.py") if "__pycache__" not in p.parts}


def _is_test(path: Path) -> bool:
    """Tests never ship."""
    return path.name.startswith("test_") or "tests" in path.parts


def test_local_bundler_builds_an_arm64_package_without_docker(tmp_path):
    # When the bundler CDK calls before Docker runs into an empty output directory
    bundled = LocalBundler().try_bundle(str(tmp_path))
    # Then it did the job itself
    assert bundled is True
    for package in (*constants.HANDLER_PACKAGES, constants.SHARED_PACKAGE):
        source = LAMBDAS_DIR / package
        shipped = _python_files(tmp_path / package)
        assert shipped == {p for p in _python_files(source) if not _is_test(p)}, package
        # Bytecode only from an interpreter of the runtime's version (none on most build machines)
        compiled = list((tmp_path / package).rglob("*.pyc"))
        assert bool(compiled) == (target_interpreter(constants.RUNTIME_PYTHON_VERSION) is not None)
    # And the operator CLI, a package of its own outside lambdas/, is not in it
    assert (
        not (tmp_path / "batchdrop_cli").exists()
        and not (tmp_path / constants.SHARED_PACKAGE / "cli").exists()
    )
    # And compiled dependencies are the Linux arm64 builds for the runtime's Python
    version = constants.RUNTIME_PYTHON_VERSION.replace(".", "")
    binaries = [p.name for p in (tmp_path / "pydantic_core").glob("_pydantic_core*.so")]
    assert binaries == [f"_pydantic_core.cpython-{version}-aarch64-linux-gnu.so"]
    assert (tmp_path / "aws_lambda_powertools").is_dir()
    assert not (tmp_path / "aws_xray_sdk").exists()  # no tracer: Lambda's active tracing needs no SDK
    assert not (tmp_path / "bin").exists()


def test_a_package_for_an_interpreter_at_hand_ships_bytecode_that_ignores_timestamps(tmp_path):
    # Given a target this machine can run (its own Python)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    # When the bundler builds for it
    bundle(tmp_path, python_version=version, platform="x86_64-manylinux2014")
    # Then every module of ours has bytecode, and it is unchecked-hash based: valid whatever timestamps
    # the asset zip gives the sources (pyc flags word: bit 0 hash-based, bit 1 check the source)
    ours = [p for p in (tmp_path / constants.SHARED_PACKAGE).rglob("*.py")]
    for source in ours:
        cached = importlib.util.cache_from_source(str(source))
        flags = int.from_bytes(Path(cached).read_bytes()[4:8], "little")
        assert flags == 0b01, source
    # And the handler imports from the package alone, reading that bytecode, never writing any, and
    # without the HTTP client nor pydantic (intake never calls Extend; settings were validated at synth)
    probe = (
        "import sys, intake.handler\n"
        "print(sys.modules['batchdrop_core.runconfig'].__cached__)\n"
        "print('httpx' in sys.modules, 'pydantic' in sys.modules)\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-S", "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    cached, httpx_loaded, pydantic_loaded = result.stdout.split()
    assert Path(cached).is_file()
    assert (httpx_loaded, pydantic_loaded) == ("False", "False")


def test_the_cold_start_benchmark_names_the_runtime_the_stack_deploys():
    # bench/coldstart.py cannot import the stack's constants (they load aws_cdk) and repeats the version
    from bench.coldstart import RUNTIME_PYTHON

    assert RUNTIME_PYTHON == constants.RUNTIME_PYTHON_VERSION
