"""Every module of the product, the sandbox and the benchmarks stays under 400 lines: one idea per module
(docs/architecture.md, "Packages"). Test modules are exempt: each tests one module or one flow."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("lambdas", "batchdrop_cli", "sandbox", "bench", "stacks")
MAX_LINES = 400


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
    }
    assert len(sizes) > 100
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}
