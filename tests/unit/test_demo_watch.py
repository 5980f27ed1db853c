"""What the demo says it is waiting for, when it calls the pipeline stalled, and the line a stop prints
(sandbox.demo, sandbox.local.StopReport): no sandbox needed."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sandbox.demo import EXAMPLE_ROUTES, Census, Pulse, Stall, waiting_for
from sandbox.local import StopReport

NOW = 1_800_000_000.0  # wall clock
ROUTES = [r["name"] for r in EXAMPLE_ROUTES]  # the demo's five: invoices … claims


def iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def batch(route: str, state: str, count: int, batch_id: str | None = None, created: float = NOW - 60) -> dict:
    return {
        "submissionId": f"sub_{route}_{state}",
        "route": route,
        "state": state,
        "fileCount": count,
        "batchId": batch_id,
        "createdAt": iso(created),
    }


def census(**by_route: dict[str, int]) -> Census:
    return Census(by_route={route: Counter(counts) for route, counts in by_route.items()}, seconds=0.5)


def lines(pulse: Pulse, found: Census | None, **kwargs: Any) -> list[str]:
    options = {"routes": ROUTES, "max_wait": 300, "max_batch": 1000, "flushed": False, "uploading": None}
    return waiting_for(pulse, found, now=NOW, **{**options, **kwargs})


def test_it_says_which_batch_at_extend_it_waits_for_and_how_far_extend_is() -> None:
    pulse = Pulse(
        tracked=2500,
        batches=[batch("documents", "SUBMITTED", 749, "bpr_doc")],
        extend_runs={"bpr_doc": Counter(PROCESSED=500, PROCESSING=4, PENDING=245)},
    )
    assert lines(pulse, None) == [
        "749 files of route documents submitted in batch bpr_doc at Extend: 500 of 749 runs done"
    ]
    pulse.extend_runs = {"bpr_doc": Counter(PROCESSED=747, FAILED=2)}
    pulse.webhooks_pending = 1
    assert lines(pulse, None) == [
        "749 files of route documents submitted in batch bpr_doc at Extend: every run done, results being "
        "collected (1 webhook on the way)"
    ]
    pulse.extend_runs = None  # a real Extend API shows nothing until the batch completes
    assert lines(pulse, None) == ["749 files of route documents submitted in batch bpr_doc at Extend"]


def test_runs_waiting_on_review_are_told_apart_from_runs_at_work() -> None:
    pulse = Pulse(
        tracked=250,
        batches=[batch("claims", "SUBMITTED", 250, "batch_claims")],
        extend_runs={"batch_claims": Counter(PROCESSED=200, PROCESSING=38, NEEDS_REVIEW=12)},
    )
    head = "250 files of route claims submitted in batch batch_claims at Extend"
    assert lines(pulse, None) == [f"{head}: 200 of 250 runs done, 12 waiting on review"]
    assert pulse.at_work("claims") == pulse.batches
    # Every run over or waiting on a person: the batch stays open at batchdrop, but nothing is at work
    pulse.extend_runs = {"batch_claims": Counter(PROCESSED=236, REJECTED=1, FAILED=1, NEEDS_REVIEW=12)}
    assert lines(pulse, None) == [f"{head}: every run done or waiting on review, results being collected"]
    assert pulse.at_work("claims") == []
    pulse.webhooks_pending = 3  # ... unless their events are still on the way
    assert pulse.at_work("claims") == pulse.batches


def test_files_waiting_on_review_are_settled_for_the_demo_and_said_to_be_no_stall() -> None:
    # Given 12 claims SUBMITTED whose workflow runs wait on a person (counted again under IN_REVIEW)
    found = census(
        claims={"PROCESSED": 236, "FAILED": 2, "SUBMITTED": 12, "IN_REVIEW": 12},
        invoices={"PROCESSED": 99, "REJECTED": 1},
    )
    found.oldest_review["claims"] = "2027-01-15T08:30:05.123456Z"

    # Then they are tracked once, not terminal, and settled for the demo's purpose
    assert (found.tracked, found.terminal, found.in_review, found.settled) == (350, 338, 12, 350)
    pulse = Pulse(tracked=350, batches=[])
    assert lines(pulse, found, routes=["invoices", "claims"]) == [
        "12 files of route claims waiting on review at Extend since 08:30:05 UTC: a person decides; not stuck"
    ]


def test_it_says_when_a_partial_batch_goes_out_and_that_a_flush_was_asked_for() -> None:
    found = census(packets={"QUEUED": 250, "PROCESSED": 10}, invoices={"QUEUED": 1000})
    found.oldest_queued["packets"] = NOW - 260
    pulse = Pulse(tracked=1260, batches=[])
    assert lines(pulse, found) == [
        "1,000 files QUEUED on route invoices: a full batch, waiting for the submitter",
        "250 files QUEUED on route packets until maxWaitSeconds (in 40 s) or flush",
    ]
    assert lines(pulse, found, flushed=True)[1] == (
        "250 files QUEUED on route packets: flush requested, waiting for the submitter"
    )
    found.blocked["packets"] = "INVALID_API_KEY: Unauthorized"
    assert "the route is blocked (INVALID_API_KEY: Unauthorized)" in lines(pulse, found)[1]


def test_files_that_went_into_a_batch_since_the_census_are_not_shown_queued_twice() -> None:
    found = census(invoices={"QUEUED": 300})
    pulse = Pulse(tracked=300, batches=[batch("invoices", "SUBMITTING", 300, created=NOW - 5)])
    assert lines(pulse, found, flushed=True) == [
        "300 files of route invoices being submitted to Extend (sub_invoices_SUBMITTING)"
    ]
    later = census(invoices={"QUEUED": 50, "SUBMITTED": 300})  # a census taken after the claim
    assert (
        lines(pulse, later, flushed=True)[0]
        == "50 files QUEUED on route invoices: flush requested, waiting for the submitter"
    )
    pulse.batches[0]["fileCount"] = 0  # the submission is recorded before its files are claimed
    assert lines(pulse, found, flushed=True) == [
        "300 files QUEUED on route invoices: flush requested, waiting for the submitter",
        "a batch of route invoices (claiming its files) being submitted to Extend (sub_invoices_SUBMITTING)",
    ]


def test_it_says_what_intake_and_the_queues_hold_and_how_far_the_upload_is() -> None:
    pulse = Pulse(
        tracked=900,
        batches=[],
        arrivals_visible=300,
        arrivals_in_flight=40,
        flush_requests=3,
        collection_requests=2,
    )
    assert lines(pulse, None, uploading=(1200, 2500)) == [
        "uploading: 1,200 of 2,500 files put in the drop bucket",
        "intake: 300 S3 notifications not yet read, 40 being read",
        "submitter: 3 flush requests queued",
        "results: 2 collection requests queued",
    ]


def test_a_slow_pipeline_is_not_stalled_a_quiet_one_is() -> None:
    stall = Stall(timeout=180, now=0.0)
    for second in range(0, 1000, 60):  # something moves every minute, however slowly
        stall.observe(("terminal", second), now=float(second))
        assert not stall.stalled(second + 59.0)
    stall.observe(("terminal", 960), now=1000.0)  # the same as before: nothing moved
    assert stall.quiet_for(1139.0) == 179.0 and not stall.stalled(1139.0)
    assert stall.stalled(1140.0)


def test_waiting_for_max_wait_seconds_does_not_count_as_a_stall() -> None:
    stall = Stall(timeout=180, now=0.0)
    stall.observe("same", now=0.0)
    for second in range(1, 400):  # a partial batch is due at 300 s
        stall.observe("same", now=float(second), quiet_until=300.0)
    assert stall.quiet_for(400.0) == 100.0 and not stall.stalled(400.0)
    assert stall.stalled(480.0)


def test_the_census_counts_by_route_and_status() -> None:
    found = census(invoices={"QUEUED": 5, "SUBMITTED": 10, "PROCESSED": 80}, documents={"REJECTED": 1})
    assert (found.tracked, found.submitted, found.terminal) == (96, 91, 81)
    assert found.count(["QUEUED"], "invoices") == 5 and found.count(["QUEUED"], "packets") == 0


def test_the_stop_line_says_what_was_left_unfinished() -> None:
    report = StopReport(
        files=Counter(QUEUED=800, SUBMITTED=434, PROCESSED=1266),
        messages={"arrivals": 2, "flush": 0, "results": 1},
        webhooks_pending=1,
    )
    assert report.describe() == (
        "1,234 of 2,500 tracked files not terminal (QUEUED 800, SUBMITTED 434); "
        "3 messages left in queues (arrivals 2, results 1); 1 webhook not delivered"
    )
    done = StopReport(
        files=Counter(PROCESSED=10), messages={"arrivals": 0}, abandoned=["batchdrop-intake-poller-0"]
    )
    assert done.describe() == (
        "all 10 tracked files terminal; no messages left in queues; abandoned busy: batchdrop-intake-poller-0"
    )
    assert StopReport(files=Counter()).describe() == "no files tracked; no messages left in queues"
