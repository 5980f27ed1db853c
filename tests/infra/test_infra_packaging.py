"""The Docker-free Lambda bundle: our packages plus Linux arm64 wheels for the Lambda Python version."""

from __future__ import annotations

from pathlib import Path

from stacks import constants
from stacks.packaging import LAMBDAS_DIR, LocalBundler


def _python_files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*.py") if "__pycache__" not in p.parts}


def _is_cli_or_test(path: Path) -> bool:
    """The operator CLI (cli.py, cli/, cli_*.py) and tests never ship; client.py of course does."""
    name = path.name
    return (
        name == "cli.py" or name.startswith(("cli_", "test_")) or "cli" in path.parts or "tests" in path.parts
    )


def test_local_bundler_builds_an_arm64_package_without_docker(tmp_path):
    # When the bundler CDK calls before Docker runs into an empty output directory
    bundled = LocalBundler().try_bundle(str(tmp_path))
    # Then it did the job itself
    assert bundled is True
    for package in (*constants.HANDLER_PACKAGES, constants.SHARED_PACKAGE):
        source = LAMBDAS_DIR / package
        shipped = _python_files(tmp_path / package)
        assert shipped == {p for p in _python_files(source) if not _is_cli_or_test(p)}, package
        assert not list((tmp_path / package).rglob("__pycache__")), package
    # And compiled dependencies are the Linux arm64 builds for the runtime's Python
    version = constants.RUNTIME.name.removeprefix("python").replace(".", "")
    binaries = [p.name for p in (tmp_path / "pydantic_core").glob("_pydantic_core*.so")]
    assert binaries == [f"_pydantic_core.cpython-{version}-aarch64-linux-gnu.so"]
    assert (tmp_path / "aws_lambda_powertools").is_dir()
    assert (tmp_path / "aws_xray_sdk").is_dir()  # the [tracer] extra of powertools
    assert not (tmp_path / "bin").exists()
