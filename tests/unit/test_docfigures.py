"""Runs write their figures between markers; the prose around them is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox.docfigures import replace_between

START, END = "<!-- x:start -->", "<!-- x:end -->"


def test_the_block_replaces_the_old_figures_and_keeps_the_prose(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nProse.\n\n{START}\nold\n{END}\n\nMore prose.\n", encoding="utf-8")
    replace_between(doc, START, END, f"{START}\nnew | 1\n{END}")
    assert doc.read_text(encoding="utf-8") == f"# Title\n\nProse.\n\n{START}\nnew | 1\n{END}\n\nMore prose.\n"


def test_a_page_without_the_section_says_which_markers_are_missing(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="x:start"):
        replace_between(doc, START, END, f"{START}\n{END}")
    assert doc.read_text(encoding="utf-8") == "# Title\n"
