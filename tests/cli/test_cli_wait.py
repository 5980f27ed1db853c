"""`batchdrop wait`: exit 0 once files, a batch or routes are done, 2 on timeout, with what it waited for."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from batchdrop_cli import waiting
from batchdrop_core.tracking import BatchState, FileStatus
from tests.helpers import CliSandbox

QUICK = ("--timeout", "0.3", "--interval", "0.1")


def test_wait_exits_2_naming_what_is_pending_then_0_once_it_is_done(
    sandbox: CliSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "invoices/w-1.pdf"
    sandbox.upload([key])

    # A file intake has not recorded yet is waited for (not an error), and so is its route
    not_yet = sandbox.run("wait", key, *QUICK)
    assert not_yet.exit_code == 2 and f"{key} (not tracked yet)" in not_yet.stderr
    arrivals = sandbox.run("wait", "--route", "invoices", *QUICK)
    assert arrivals.exit_code == 2 and "arrival notification(s) not yet handled" in arrivals.stderr

    # Recorded, the file waits in its route's queue; other routes are done already
    sandbox.pipeline.pump()
    queued = sandbox.run("wait", "--route", "invoices", *QUICK, "--json")
    assert queued.exit_code == 2
    report = json.loads(queued.stdout)
    assert (report["done"], report["pending"]) == (False, ["route invoices has files QUEUED"])
    assert sandbox.run("wait", "--route", "documents", *QUICK).exit_code == 0

    # Submitted, it is in a batch in flight
    sandbox.json("flush", "invoices")
    sandbox.pipeline.pump()
    rt = sandbox.rt
    (tracked,) = rt.files.versions(sandbox.drop_bucket, key)
    assert tracked.status == FileStatus.SUBMITTED and tracked.submission_id
    in_flight = sandbox.run("wait", "--batch", tracked.submission_id, key, *QUICK)
    assert in_flight.exit_code == 2
    assert (
        f"batch {tracked.submission_id} (SUBMITTED)" in in_flight.stderr
        and f"{key} (SUBMITTED)" in in_flight.stderr
    )

    # When the run is recorded and the batch completes while `wait` polls (at its first pause, whatever the
    # machine's speed), it returns 0
    def finish() -> None:
        assert rt.files.record_outcome(
            tracked, tracked.submission_id or "", status=FileStatus.PROCESSED, run_id="run_w1"
        )
        assert rt.batches.transition(tracked.submission_id or "", BatchState.OPEN, BatchState.COMPLETED)

    pauses: list[float] = []

    def pause(seconds: float) -> None:
        if not pauses:
            finish()
        pauses.append(seconds)

    monkeypatch.setattr(waiting, "time", SimpleNamespace(monotonic=time.monotonic, sleep=pause))
    done = sandbox.run("wait", key, "--batch", tracked.submission_id, "--timeout", "30", "--interval", "0.1")
    assert done.exit_code == 0, done.output
    assert "waiting for:" in done.stdout and "Done after" in done.stdout and pauses == [0.1]
    assert sandbox.json("wait", *QUICK)["done"] is True  # every route: nothing queued or in flight


def test_wait_refuses_an_unknown_route_or_batch(sandbox: CliSandbox) -> None:
    assert "unknown route 'nope'" in sandbox.fails("wait", "--route", "nope")
    assert "no batch 'bpr_nope'" in sandbox.fails("wait", "--batch", "bpr_nope")
