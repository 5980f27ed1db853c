"""Lambda packaging without Docker: locked runtime dependencies as Linux arm64 wheels, plus our packages.

``uv export`` turns ``uv.lock`` into pinned requirements (runtime dependencies only), ``uv pip install
--python-platform ... --only-binary :all:`` fetches the wheels built for the Lambda platform (it fails
loudly instead of shipping a host-OS binary), then the handler packages and ``batchdrop_core`` are copied
in. One asset serves all five functions.

When an interpreter of the runtime's Python version is at hand, the package is compiled to bytecode
(unchecked-hash .pyc files, valid whatever the zip's timestamps): Lambda's code directory is read-only,
so without them every cold start compiles every module it imports.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, ILocalBundling, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import constants

REPO_ROOT = Path(__file__).resolve().parents[1]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
LOCK_FILE = REPO_ROOT / "uv.lock"
_REPO_UV = REPO_ROOT / ".tools" / "bin" / "uv"  # installed by `make install`
# Never shipped: bytecode caches and tests. (The operator CLI is its own package, batchdrop_cli, outside
# lambdas/.)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "test_*.py")


class BundlingError(RuntimeError):
    """Packaging the Lambda code failed; the message says what to do."""


@jsii.implements(ILocalBundling)
class LocalBundler:
    """Builds the Lambda asset on this machine (CDK calls ``try_bundle`` before it would try Docker)."""

    def __init__(self, runtime: lambda_.Runtime = constants.RUNTIME, platform: str = constants.PIP_PLATFORM):
        self.python_version = runtime.name.removeprefix("python")
        self.platform = platform

    def try_bundle(self, output_dir: str, *args, **kwargs) -> bool:
        try:
            bundle(Path(output_dir), python_version=self.python_version, platform=self.platform)
        except BundlingError as exc:
            print(f"batchdrop: {exc}", file=sys.stderr)  # jsii re-raises it wrapped in a long trace
            raise
        return True


def bundle(output_dir: Path, *, python_version: str, platform: str, bytecode: bool = True) -> None:
    uv = _find_uv()
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        exported = _run(
            [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header"],
            "export the locked runtime requirements from uv.lock",
        )
        requirements.write_text(exported)
        _run(
            [
                uv, "pip", "install", "--requirement", str(requirements), "--target", str(output_dir),
                "--python-platform", platform, "--python-version", python_version,
                "--only-binary", ":all:", "--no-deps", "--quiet",
            ],
            f"install the runtime dependencies as {platform} wheels for Python {python_version}",
        )  # fmt: skip
    shutil.rmtree(output_dir / "bin", ignore_errors=True)  # console scripts with host paths; unused
    for package in (*constants.HANDLER_PACKAGES, constants.SHARED_PACKAGE):
        shutil.copytree(LAMBDAS_DIR / package, output_dir / package, ignore=_IGNORED, dirs_exist_ok=True)
    if not bytecode:
        return
    interpreter = target_interpreter(python_version)
    if interpreter is None:
        print(
            f"batchdrop: no Python {python_version} on this machine, so the Lambda package ships without "
            "bytecode (each cold start compiles what it imports); install it to build a faster package.",
            file=sys.stderr,
        )
        return
    _run(
        [
            interpreter,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(output_dir),
        ],
        f"compile the package to bytecode with Python {python_version}",
    )


def target_interpreter(python_version: str) -> str | None:
    """An interpreter of the target version (bytecode is specific to it), or None."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return sys.executable
    return shutil.which(f"python{python_version}")


def lambda_code(scope: Construct) -> lambda_.Code:
    """The shared code asset of all five functions (handler strings pick the package)."""
    if Stack.of(scope).bundling_required:
        _find_uv()  # fail before synthesis starts, with a plain message
    return lambda_.Code.from_asset(
        str(LAMBDAS_DIR),
        # The default hash covers lambdas/ only; ours adds uv.lock and the target: new pins, new asset.
        asset_hash=_source_hash(),
        bundling=BundlingOptions(
            image=constants.RUNTIME.bundling_image,
            command=["false"],  # never run: LocalBundler either bundles or raises a clear error
            local=LocalBundler(),
        ),
    )


def _source_hash() -> str:
    digest = hashlib.sha256()
    # With or without bytecode, the package is not the same asset.
    compiled = target_interpreter(constants.RUNTIME_PYTHON_VERSION) is not None
    digest.update(f"{constants.RUNTIME.name}|{constants.PIP_PLATFORM}|{compiled}|".encode())
    digest.update(LOCK_FILE.read_bytes())
    for path in sorted(LAMBDAS_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(LAMBDAS_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _find_uv() -> str:
    if _REPO_UV.exists():
        return str(_REPO_UV)
    found = shutil.which("uv")
    if found:
        return found
    raise BundlingError(
        "Lambda packaging needs uv (to export uv.lock and fetch Linux arm64 wheels); run `make install` "
        "or put uv on PATH. Tests skip bundling with the context 'aws:cdk:bundling-stacks': []."
    )


def _run(command: list[str], purpose: str) -> str:
    # Bundling must never download a Python interpreter; the wheels' tags choose the target Python.
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BundlingError(f"could not {purpose}: `{' '.join(command)}` failed:\n{result.stderr.strip()}")
    return result.stdout
