"""The package map of docs/architecture.md, enforced: no package imports one it may not (read from the
source with ``ast``, so an import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"batchdrop_core", "batchdrop_cli", "sandbox", "stacks", "bench", "tests"}
HANDLERS = ("intake", "submitter", "webhook", "results", "reconciler")
ALLOWED = {
    "lambdas/batchdrop_core": {"batchdrop_core"},
    **{f"lambdas/{name}": {"batchdrop_core"} for name in HANDLERS},
    "batchdrop_cli": {"batchdrop_cli", "batchdrop_core"},
    "stacks": {"stacks", "batchdrop_core"},
    "sandbox": {"sandbox", "batchdrop_core", "batchdrop_cli", *HANDLERS},
    "bench": {"bench", "sandbox", "batchdrop_core", *HANDLERS},
}
# The one exception the map names: the alarm judge synthesizes the app to read its alarms.
EXCEPTIONS = {("sandbox/alarms.py", "stacks")}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & (OURS | set(HANDLERS))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_what_the_map_allows(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for name in sorted(imported_packages(path) - ALLOWED[package])
        if (str(path.relative_to(ROOT)), name) not in EXCEPTIONS
    ]
    assert wrong == []
