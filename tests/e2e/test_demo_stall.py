"""The demo gives up on a stalled pipeline, not a slow one, and says what was stuck (sandbox.demo.watch
against a real sandbox whose submitter does not run)."""

from __future__ import annotations

import io

from rich.console import Console

from sandbox.demo import Observer, Uploader, options_for, parse_args, print_stuck, watch
from sandbox.documents import DEMO_MIX, sample_files
from sandbox.local import Sandbox


def test_with_the_submitter_down_it_gives_up_after_the_stall_timeout_and_says_what_was_stuck() -> None:
    # Given a sandbox whose submitter takes no flush requests (a partial batch would wait 1 hour)
    sandbox = Sandbox(options_for(parse_args(["--max-wait", "3600"]))).start()
    try:
        sandbox.pipeline.submitter.stop()
        files = sample_files(40, mix=DEMO_MIX)
        out = io.StringIO()
        console = Console(file=out, width=200)

        # When the demo drops files and waits, giving up after 20 s without progress
        outcome = watch(sandbox, Uploader(sandbox, files), console, stall_timeout=20)
        print_stuck(console, outcome, Observer(sandbox).take_census(0.0))
    finally:
        sandbox.stop()

    # Then it gave up for want of progress, saying what it waited for and what was stuck where
    assert not outcome.finished
    assert outcome.reason.startswith("no progress for 2") and "--stall-timeout 20" in outcome.reason
    assert "18 files QUEUED on route invoices: flush requested, waiting for the submitter" in outcome.stuck
    assert any(line.startswith("submitter: ") and "flush request" in line for line in outcome.stuck)
    text = out.getvalue()
    assert "gave up: no progress for" in text
    assert "  invoices: QUEUED 18\n" in text and "  documents: QUEUED 8\n" in text, text
    assert "  packets: QUEUED 6\n" in text and "  pages: QUEUED 3\n" in text, text
    assert "  claims: QUEUED 2\n" in text, text
    # And a progress line was logged without a terminal (the console here is a StringIO)
    assert "waiting: uploading:" in text or "waiting: intake:" in text or "waiting: 18 files QUEUED" in text
