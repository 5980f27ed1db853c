"""Ctrl-C and SIGTERM in the sandbox's runs (sandbox.interrupt): the first signal unwinds the run, a stop
under way is not cut short, a second signal forces exit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import interrupt
from sandbox.interrupt import Interrupted


@pytest.fixture
def installed() -> Iterator[None]:
    saved = {signum: signal.getsignal(signum) for signum in interrupt.SIGNALS}
    interrupt.reset()
    interrupt.install()
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)
    interrupt.reset()


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_the_first_signal_raises_interrupted_with_the_shells_exit_code(signum: int, code: int) -> None:
    with pytest.raises(Interrupted) as raised:
        signal.raise_signal(signum)
    assert raised.value.exit_code == code
    assert isinstance(raised.value, KeyboardInterrupt)  # `except Exception` handlers let it through
    assert interrupt.received()


@pytest.mark.usefixtures("installed")
def test_a_stop_under_way_is_not_cut_short_by_a_first_signal(capfd: pytest.CaptureFixture[str]) -> None:
    with interrupt.shielded():
        signal.raise_signal(signal.SIGTERM)  # no exception: the stop goes on
    assert interrupt.received()
    assert "already stopping" in capfd.readouterr().err


@pytest.mark.usefixtures("installed")
def test_notes_make_one_line() -> None:
    assert interrupt.summary() == "stopped: interrupted before the sandbox was up"
    interrupt.note("12 of 300 tracked files not terminal (QUEUED 12)")
    interrupt.note("288 of 300 files never dropped", first=True)
    assert interrupt.summary() == (
        "stopped: 288 of 300 files never dropped; 12 of 300 tracked files not terminal (QUEUED 12)"
    )


def test_a_second_signal_forces_exit_and_runs_the_force_actions(tmp_path: Path) -> None:
    marker = tmp_path / "killed"
    script = textwrap.dedent(
        f"""
        import signal
        from pathlib import Path
        from sandbox import interrupt

        interrupt.install()
        interrupt.on_force(lambda: Path({str(marker)!r}).write_text("moto killed"))
        with interrupt.shielded():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)
        print("not reached")
        """
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 130
    assert "not reached" not in done.stdout
    assert "forced exit" in done.stderr
    assert marker.read_text() == "moto killed"
