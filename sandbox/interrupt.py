"""Ctrl-C and SIGTERM for the sandbox's command-line runs: the demo, the reliability run, the benchmarks.

``install()`` makes the first SIGINT or SIGTERM raise ``Interrupted`` in the main thread: the run unwinds
through its ``finally`` blocks, which stop the sandbox in order (``Sandbox.stop``: pollers and schedules,
then the API Gateway stand-in and the simulator, moto server last). A stop already under way
(``shielded()``) is not cut short by a first signal. A second signal ends the process at once; moto
server, which gets SIGTERM when its parent dies (PR_SET_PDEATHSIG), goes with it.

What a stop left unfinished is noted here (``note``) and printed by the run as one line (``summary``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by the first SIGINT or SIGTERM (a KeyboardInterrupt, so ``except
    Exception`` handlers let it through)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for Ctrl-C, 143 for SIGTERM


class _State:
    def __init__(self) -> None:
        self.received: list[int] = []
        self.shield_depth = 0
        self.notes: list[str] = []
        self.on_force: list[Callable[[], None]] = []
        self.abandoned = False
        self.announce = False
        self.lock = threading.Lock()


_state = _State()


def install(*, announce: bool = False) -> None:
    """Handle SIGINT and SIGTERM as described above (call from the main thread, once per process).
    ``announce``: say on stderr at once that the run is stopping (else the run says it)."""
    _state.announce = announce
    for signum in SIGNALS:
        signal.signal(signum, _handle)


def _handle(signum: int, frame: object) -> None:
    _state.received.append(signum)
    if len(_state.received) == 1:
        if _state.shield_depth:
            _write(f"\n{signal.Signals(signum).name}: already stopping; press Ctrl-C again to force exit\n")
            return
        if _state.announce:
            _write(f"\n{signal.Signals(signum).name}: stopping (Ctrl-C again to force exit)…\n")
        raise Interrupted(signum)
    _write(f"\n{signal.Signals(signum).name} again: forced exit, the sandbox was not stopped in order\n")
    for action in list(_state.on_force):
        with contextlib.suppress(Exception):
            action()
    os._exit(128 + signum)


def _write(text: str) -> None:
    stream = sys.__stderr__
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.write(text)
            stream.flush()


def received() -> bool:
    """True once a SIGINT or SIGTERM has arrived (a stop then says what it left unfinished)."""
    return bool(_state.received)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """While inside, a first signal does not interrupt (a second still forces exit)."""
    with _state.lock:
        _state.shield_depth += 1
    try:
        yield
    finally:
        with _state.lock:
            _state.shield_depth -= 1


def on_force(action: Callable[[], None]) -> Callable[[], None]:
    """Run ``action`` (kill a child process) before a forced exit; returns a function that unregisters it."""
    _state.on_force.append(action)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _state.on_force.remove(action)

    return remove


def note(text: str, *, abandoned: bool = False, first: bool = False) -> None:
    """Record what a stop left unfinished; ``abandoned`` when a thread was still busy after the grace."""
    _state.notes.insert(0 if first else len(_state.notes), text)
    _state.abandoned = _state.abandoned or abandoned


def summary(default: str = "interrupted before the sandbox was up") -> str:
    """The one line a run prints after being interrupted."""
    return "stopped: " + ("; ".join(_state.notes) if _state.notes else default)


def finish(code: int) -> int:
    """The exit code to return from ``main``; if a stop had to abandon a busy thread, end the process
    here (streams flushed), so that thread cannot write to the console while the interpreter shuts down."""
    if _state.abandoned:
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code


def reset() -> None:
    """Forget signals and notes (tests)."""
    global _state
    _state = _State()
