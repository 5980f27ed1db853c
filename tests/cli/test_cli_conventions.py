"""CLI conventions: every command's --help shows an example, status --watch refreshes until Ctrl-C, and
the demo's --help names the command it was run as."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer

from batchdrop_cli import app, status
from tests.helpers import CliSandbox, invoke

REPO = Path(__file__).resolve().parents[2]


def test_every_command_has_help_with_an_example() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert len(commands) >= 15
    # A group's commands too (`batchdrop routes show`…)
    names = [(name,) for name in sorted(commands)] + [
        (name, sub) for name in sorted(commands) for sub in sorted(getattr(commands[name], "commands", {}))
    ]
    assert ("routes", "apply") in names
    for name in names:
        if name == ("demo",):
            continue  # its --help is the demo's own (below)
        result = invoke(*name, "--help")
        assert result.exit_code == 0, result.output
        assert "Example:" in result.stdout, f"`batchdrop {' '.join(name)} --help` shows no example"


def test_status_watch_refreshes_until_ctrl_c(sandbox: CliSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    refreshes: list[float] = []

    def pause(seconds: float) -> None:
        refreshes.append(seconds)
        if len(refreshes) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(status, "time", SimpleNamespace(sleep=pause))
    result = sandbox.run("status", "--watch", "5")
    assert result.exit_code == 0, result.output
    assert refreshes == [5.0, 5.0] and result.stdout.count("Ctrl-C to stop") == 2
    assert "for scripts, run --json in a loop" in sandbox.fails("status", "--watch", "5", "--json")


def test_the_demo_help_names_the_command_it_was_run_as() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", "from batchdrop_cli import main; main()", "demo", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith("usage: batchdrop demo")
