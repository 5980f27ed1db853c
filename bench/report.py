"""docs/benchmarks.md: the sections the metrics report (figures, tables, notes), and the page written from
the sections of one run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / "docs" / "benchmarks.md"


@dataclass
class Row:
    figure: str
    value: str
    baseline: str = "—"
    ratio: str = "—"
    target: str = "—"
    met: str = "—"


@dataclass
class Table:
    caption: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    key: str
    title: str
    setup: str = ""
    rows: list[Row] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)  # what later metrics (the cost model) reuse
    seconds: float = 0.0


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def fmt_seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _rows(rows: list[Row]) -> list[str]:
    return _table(
        ["figure", "measured", "baseline", "ratio", "target", "met?"],
        [[r.figure, r.value, r.baseline, r.ratio, r.target, r.met] for r in rows],
    )


def _extra(table: Table) -> list[str]:
    return [f"*{table.caption}*", "", *_table(table.headers, table.rows), ""]


def write(
    sections: list[Section],
    *,
    quick: bool,
    started: datetime,
    seconds: float,
    info: dict[str, str],
    summary: list[str],
    path: Path = DOC,
) -> Path:
    lines = [
        "# batchdrop benchmarks"
        + (" — QUICK RUN (reduced sizes; not the reference figures)" if quick else ""),
        "",
        "Written by `make bench` (`python -m bench"
        + (" --quick" if quick else "")
        + "`); every figure below comes from the run described here. Rerun it to refresh the page.",
        "Everything ran on loopback: moto server (its own process) for AWS, the Extend simulator, and the",
        "real handlers under the sandbox's Lambda runtime (event source emulation with parallel pollers).",
        "Ratios compare with a baseline measured in the same process during the same run; repeated",
        "measurements are given as median (min-max, n=runs).",
        "",
        "## Run",
        "",
        *_table(
            ["", ""],
            [
                ["date (UTC)", started.strftime("%Y-%m-%d %H:%M")],
                ["mode", "quick (`--quick`)" if quick else "full"],
                ["duration", f"{seconds / 60:.1f} min"],
                *[[k, v] for k, v in info.items()],
            ],
        ),
        "",
        "## Summary",
        "",
        *summary,
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", ""]
        if section.setup:
            lines += [f"Setup: {section.setup}", ""]
        if section.rows:
            lines += [*_rows(section.rows), ""]
        for table in section.tables:
            lines += _extra(table)
        if section.notes:
            lines += ["Notes:", ""]
            lines += [f"- {note}" for note in section.notes]
            lines.append("")
        lines += [f"<sub>section took {section.seconds:.0f} s</sub>", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
    return path


def now() -> datetime:
    return datetime.now(UTC)
