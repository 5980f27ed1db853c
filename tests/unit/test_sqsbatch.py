"""Partial batch responses: which messages go back to the queue, and when the whole invocation fails."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from batchdrop_core.sqsbatch import BatchFailed, process_records


def records(*bodies: str) -> list[dict[str, Any]]:
    return [{"messageId": f"m{i}", "body": body} for i, body in enumerate(bodies)]


def handler(record: dict[str, Any]) -> str:
    if record["body"].startswith("bad"):
        raise ValueError(record["body"])
    return record["body"].upper()


def test_failed_records_are_reported_and_the_others_handled() -> None:
    outcome = process_records(records("a", "bad", "c"), handler)
    assert outcome.results == ["A", "C"]
    assert outcome.response() == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert process_records(records("a"), handler).response() == {"batchItemFailures": []}


def test_when_every_record_fails_the_invocation_fails() -> None:
    with pytest.raises(BatchFailed, match="all 2 records") as error:
        process_records(records("bad 1", "bad 2"), handler)
    assert str(error.value.__cause__) == "bad 1"
    assert process_records([], handler).response() == {"batchItemFailures": []}


def test_a_fifo_batch_stops_at_the_first_failure_and_returns_the_rest_in_order() -> None:
    seen: list[str] = []

    def remember(record: dict[str, Any]) -> str:
        seen.append(record["body"])
        return handler(record)

    outcome = process_records(records("a", "bad", "c", "d"), remember, fifo=True)
    assert seen == ["a", "bad"]
    assert [f["itemIdentifier"] for f in outcome.response()["batchItemFailures"]] == ["m1", "m2", "m3"]
    with pytest.raises(BatchFailed):
        process_records(records("bad", "b"), handler, fifo=True)


def test_records_run_concurrently_on_an_executor_with_results_in_order() -> None:
    both_started = threading.Barrier(2, timeout=10)

    def together(record: dict[str, Any]) -> str:
        both_started.wait()  # only passes if the two records are handled at the same time
        return handler(record)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcome = process_records(records("a", "b"), together, executor=pool)
        assert outcome.results == ["A", "B"]
        failed = process_records(records("bad", "b", "c"), handler, executor=pool)
        assert (failed.results, failed.failed) == (["B", "C"], ["m0"])
