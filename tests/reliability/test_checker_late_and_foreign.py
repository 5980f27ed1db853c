"""The invariant checker (``sandbox.reliability.check``) on small hand-made end states: a batch nobody here
submitted is not ours to check, and a late duplicate is tolerated only as often as the scenario forced it
and only when batchdrop detected it (the submission carries ``lateBatchAt``)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from batchdrop_core.config import Settings
from batchdrop_core.tracking import BatchState, FileStatus, with_derived_names
from sandbox.reliability import Expectations, State, check, result_key_for

BUCKET = "drop"
AT = "2026-12-01T10:00:00+00:00"
LATER = "2026-12-01T10:00:05+00:00"
SETTINGS = Settings.parse(
    {
        "routes": [{"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_1"}],
        "maxBatchSize": 2,
    },
    "test settings",
)


def processed_file(key: str, sid: str, run_id: str, history: list[dict[str, Any]] | None = None) -> dict:
    values = {
        "fileKey": f"{BUCKET}/{key}",
        "versionId": "v1",
        "route": "invoices",
        "status": FileStatus.PROCESSED,
        "arrivedAt": AT,
        "queuedAt": AT,
        "submissionId": sid,
        "runId": run_id,
        "attempts": 1,
        "history": history or [],
    }
    f = with_derived_names(values)
    f["resultKey"] = result_key_for(f)
    return f


def submission(sid: str, state: str, batch_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "submissionId": sid,
        "route": "invoices",
        "state": state,
        "batchId": batch_id,
        "createdAt": AT,
        "submittedAt": AT,
        "fileCount": 2,
        "processedCount": 2,
        **extra,
    }


def batch(batch_id: str, sid: str, files: list[dict[str, Any]], run_ids: list[str]) -> dict[str, Any]:
    return {
        "id": batch_id,
        "type": "extract",
        "processor": {"id": "ex_1"},
        "inputs": [{"metadata": {"batchdrop": {"submissionId": sid, "fileId": f["fileId"]}}} for f in files],
        "runIds": run_ids,
    }


def end_state(*, late_batch_at: str | None, foreign: bool) -> State:
    """Two files. The first submission's POST answer was lost and its searches found nothing, so it was
    abandoned and the files went into a second one; later the first batch turned up at Extend too."""
    released = [{"at": LATER, "status": "QUEUED", "submissionId": "sub-1", "reason": "SUBMISSION_NOT_SENT"}]
    a = processed_file("invoices/a.pdf", "sub-2", "run-2a", released)
    b = processed_file("invoices/b.pdf", "sub-2", "run-2b", released)
    extra = {"lateBatchAt": late_batch_at} if late_batch_at else {}
    subs = [
        submission("sub-1", BatchState.ABANDONED, "batch-1", **extra),
        submission("sub-2", BatchState.COMPLETED, "batch-2", manifestKey="manifests/sub-2.jsonl"),
    ]
    sim_batches = [batch("batch-2", "sub-2", [a, b], ["run-2a", "run-2b"])]
    sim_batches.append(batch("batch-1", "sub-1", [a, b], ["run-1a", "run-1b"]))
    if foreign:
        sim_batches.append(
            {
                "id": "batch-foreign",
                "type": "classify",
                "processor": {"id": "cl_someone_else"},
                "inputs": [{"metadata": {}}, {"metadata": {"team": "other"}}],
                "runIds": ["run-x", "run-y"],
            }
        )
    results = {
        f["resultKey"]: {"id": f["runId"], "batchdrop": {"fileId": f["fileId"], "submissionId": "sub-2"}}
        for f in (a, b)
    }
    return State(
        files=[a, b],
        submissions=subs,
        sim_batches=sim_batches,
        drop_versions=[{"Key": f["key"], "VersionId": "v1", "Size": 10} for f in (a, b)],
        result_versions=Counter(results.keys()),
        result_bodies=results,
        manifests={"manifests/sub-2.jsonl": [{}, {}]},
        notifications=[
            {
                "eventType": "batch.completed",
                "submissionId": "sub-2",
                "processedCount": 2,
                "failedCount": 0,
                "requeuedCount": 0,
            },
        ],
        dlq_bodies={},
    )


def violations(state: State, exp: Expectations) -> list[str]:
    return [found for group in check(state, exp, SETTINGS, BUCKET).values() for found in group]


def test_a_detected_late_duplicate_is_tolerated_when_the_run_forced_one() -> None:
    state = end_state(late_batch_at=LATER, foreign=False)
    assert violations(state, Expectations(late_duplicates_allowed=1)) == []


def test_a_late_duplicate_beyond_what_the_run_forced_is_an_i3_violation() -> None:
    state = end_state(late_batch_at=LATER, foreign=False)
    found = check(state, Expectations(), SETTINGS, BUCKET)
    assert any("duplicate submissions reached Extend" in v for v in found["I3"])


def test_an_undetected_late_batch_is_an_i3_violation_whatever_the_run_allows() -> None:
    state = end_state(late_batch_at=None, foreign=False)
    found = check(state, Expectations(late_duplicates_allowed=1), SETTINGS, BUCKET)
    assert any("is ABANDONED (files requeued) but Extend has it" in v for v in found["I3"])
    assert any("in 2 batches for 1 attempts" in v for v in found["I3"])


def test_a_batch_without_batchdrop_metadata_is_not_ours_to_check() -> None:
    state = end_state(late_batch_at=LATER, foreign=True)
    assert violations(state, Expectations(late_duplicates_allowed=1)) == []


def partial_batch_state(write_delay: float) -> State:
    """A partial batch of one file (``a``) cut while file ``b`` of the same route had been stamped queued
    4 s before the batch was created but, under load, became claimable only ``write_delay`` s after its
    stamp; ``b`` went out in the next batch."""
    t0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)

    def iso(seconds: float) -> str:
        return (t0 + timedelta(seconds=seconds)).isoformat()

    a = processed_file("invoices/a.pdf", "sub-1", "run-1a")
    b = processed_file("invoices/b.pdf", "sub-2", "run-2b")
    a["arrivedAt"] = a["queuedAt"] = iso(0)
    b["arrivedAt"] = b["queuedAt"] = iso(7)
    subs = [
        submission("sub-1", BatchState.COMPLETED, "batch-1", createdAt=iso(11), submittedAt=iso(11.2)),
        submission("sub-2", BatchState.COMPLETED, "batch-2", createdAt=iso(30), submittedAt=iso(30.2)),
    ]
    for s in subs:
        s.update(fileCount=1, processedCount=1, manifestKey=f"manifests/{s['submissionId']}.jsonl")
    results = {
        f["resultKey"]: {
            "id": f["runId"],
            "batchdrop": {"fileId": f["fileId"], "submissionId": f["submissionId"]},
        }
        for f in (a, b)
    }
    return State(
        files=[a, b],
        submissions=subs,
        sim_batches=[batch("batch-1", "sub-1", [a], ["run-1a"]), batch("batch-2", "sub-2", [b], ["run-2b"])],
        drop_versions=[{"Key": f["key"], "VersionId": "v1", "Size": 10} for f in (a, b)],
        result_versions=Counter(results.keys()),
        result_bodies=results,
        manifests={f"manifests/{sid}.jsonl": [{}] for sid in ("sub-1", "sub-2")},
        notifications=[
            {
                "eventType": "batch.completed",
                "submissionId": sid,
                "processedCount": 1,
                "failedCount": 0,
                "requeuedCount": 0,
            }
            for sid in ("sub-1", "sub-2")
        ],
        dlq_bodies={},
        write_times={
            a["fileId"]: [t0.timestamp() + 0.1],
            b["fileId"]: [t0.timestamp() + 7 + write_delay],
        },
    )


PARTIAL = Settings.parse({**SETTINGS.model_dump(by_alias=True), "maxBatchSize": 5, "maxWaitSeconds": 10}, "t")


def test_a_file_written_after_a_partial_batch_was_cut_was_not_left_waiting() -> None:
    found = check(partial_batch_state(write_delay=5.0), Expectations(), PARTIAL, BUCKET)
    assert found["I2"] == []


def test_a_file_claimable_before_a_partial_batch_was_cut_and_left_behind_is_an_i2_violation() -> None:
    found = check(partial_batch_state(write_delay=0.2), Expectations(), PARTIAL, BUCKET)
    assert any("left" in v and "waiting in the queue" in v for v in found["I2"])
