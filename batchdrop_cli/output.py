"""Printing: every command builds plain data once, then prints it as JSON (``--json``) or with Rich."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchdrop_core.timeutil import age_seconds

STATUS_STYLES = {
    "QUEUED": "cyan",
    "SUBMITTING": "yellow",
    "SUBMITTED": "blue",
    "PROCESSED": "green",
    "FAILED": "red",
    "REJECTED": "magenta",
    "COMPLETED": "green",
    "ABANDONED": "magenta",
    "UNKNOWN": "yellow",
}


def console() -> Console:
    # Made per call so it writes to whatever sys.stdout is now (Typer's test runner swaps it).
    return Console(highlight=False)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def error(message: str) -> None:
    # One line whatever the width (a pipe or a log is 80 columns to Rich): scripts grep it.
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        Text("batchdrop: error: ", style="bold red") + Text(" ".join(message.split()))
    )


def status_text(status: str | None) -> Text:
    return Text(status or "-", style=STATUS_STYLES.get(status or "", ""))


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> Table:
    grid = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*(cell if isinstance(cell, Text) else Text(_cell(cell)) for cell in row))
    return grid


def fields(values: Mapping[str, Any]) -> Table:
    """A two-column name/value grid; empty values are left out."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for name, value in values.items():
        if value not in (None, "", [], {}):
            grid.add_row(name, value if isinstance(value, Text) else Text(_cell(value)))
    return grid


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def age(timestamp: str | None) -> str:
    return duration(age_seconds(timestamp)) if timestamp else "-"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)
