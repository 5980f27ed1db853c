"""make reliability's scenario runner: progress on the console, the handlers' output in the log file, the
scenario's checks decide PASS or FAIL, figures go to the doc unless --no-doc."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox import reliability


def _scenario(problems: list[str], written: list[Any]) -> SimpleNamespace:
    return SimpleNamespace(
        check=lambda result: problems,
        write_figures=lambda result, found, doc: written.append((result, found)),
    )


@pytest.mark.parametrize(("problems", "passed"), [([], True), (["a file was FAILED"], False)])
def test_a_scenario_passes_only_when_its_checks_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problems: list[str], passed: bool
) -> None:
    written: list[Any] = []
    seen: list[str] = []
    args = argparse.Namespace(log=tmp_path / "run.log", no_doc=False)

    def run(say: Any, log_text: Any) -> dict[str, Any]:
        say("probe: halfway")
        print("a handler's log line")  # goes to the log file, not the console
        seen.append(log_text())
        return {"files": 3}

    ok = reliability.run_scenario(args, "probe", _scenario(problems, written), run)

    out = capsys.readouterr().out
    assert ok is passed
    assert "probe: halfway" in out and "a handler's log line" not in out
    assert "a handler's log line" in (tmp_path / "run.log").read_text() and "a handler's log line" in seen[0]
    assert written and written[0][1] == problems
    assert ("PASS: the probe run" in out) is passed and ("FAIL: the probe run" in out) is not passed
    for problem in problems:
        assert f"PROBE: {problem}" in out


def test_no_doc_leaves_the_doc_alone(tmp_path: Path) -> None:
    written: list[Any] = []
    args = argparse.Namespace(log=tmp_path / "run.log", no_doc=True)
    assert reliability.run_scenario(args, "probe", _scenario([], written), lambda say, log_text: {})
    assert written == []
