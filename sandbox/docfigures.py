"""Figures that runs write into the docs, between a start and an end marker (the rest of the page is
prose, edited by hand)."""

from __future__ import annotations

from pathlib import Path


def replace_between(doc: Path, start: str, end: str, block: str) -> None:
    """Put ``block`` (which carries both markers) where the markers are in ``doc``; stop with a message
    naming the markers when the page has no such section."""
    text = doc.read_text(encoding="utf-8")
    if start not in text or end not in text:
        raise SystemExit(f"{doc} has no section for these figures ({start!r} … {end!r})")
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    doc.write_text(before + block + after, encoding="utf-8")
