"""Parse and workflow routes end to end, over real HTTP: moto server, the Extend simulator's parse and
workflow batches, signed webhooks through a local API Gateway (batch events for parse, one event per run
for workflows), the results bucket and the tracking tables."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from batchdrop_core import timeutil
from batchdrop_core.tracking import BatchState, FileStatus
from sandbox.aws import subscribe_queue_to_topic
from tests.helpers import (
    all_files,
    assert_bucket_and_table_agree,
    deliveries,
    notifications,
    submissions,
    upload,
)
from tests.integration.extend_sim_support import wait_for

ROUTES = [
    {
        "name": "pages",
        "prefix": "pages/",
        "type": "parse",
        "overrideConfig": {"chunkingStrategy": {"type": "page"}},
    },
    {"name": "claims", "prefix": "claims/", "type": "workflow", "processorId": "workflow_claims_test"},
]


def build(env: SimpleNamespace, **overrides: Any) -> Any:
    return env.build(routes=ROUTES, **overrides)


def sim_run_statuses(env: SimpleNamespace) -> Counter[str]:
    """The statuses of every run the simulator holds, over all its batches."""
    batches = httpx.get(f"{env.sim.base_url}/_sim/batches", timeout=10).json()["batches"]
    return sum((Counter(b["runStatuses"]) for b in batches), Counter())


def settle_deliveries(env: SimpleNamespace) -> None:
    wait_for(
        lambda: httpx.get(f"{env.sim.base_url}/_sim/stats").json()["webhooksPending"] == 0,
        timeout=60.0,
    )


def pump_until(pipeline: Any, env: SimpleNamespace, done: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline.pump()
        settle_deliveries(env)
        pipeline.pump()
        if done():
            return
        time.sleep(0.2)
    raise AssertionError("the pipeline did not get there in time")


def statuses(pipeline: Any, route: str) -> Counter[str]:
    return Counter(f["status"] for f in all_files(pipeline) if f.get("route") == route)


# -- parse ---------------------------------------------------------------------------------------------


def test_a_parse_route_sends_full_batches_with_its_config_and_records_every_file(
    env: SimpleNamespace,
) -> None:
    # Given a parse route and 25 files, batches of 10
    pipeline = build(env, maxBatchSize=10)
    alerts = subscribe_queue_to_topic(env.deployment, f"{env.deployment.resources.drop_bucket}-alerts")
    upload(env.deployment, [f"pages/doc-{i:02d}.txt" for i in range(25)])

    # When the pipeline runs (the last partial batch forced)
    pipeline.pump()
    pipeline.runtime("intake").request_flush("pages", reason="test", force=True)
    pump_until(pipeline, env, lambda: statuses(pipeline, "pages")[FileStatus.PROCESSED] == 25)

    # Then every batch went to /parse_runs/batch with the route's config, full but the last
    batches = httpx.get(f"{env.sim.base_url}/_sim/batches").json()["batches"]
    assert sorted(b["runCount"] for b in batches) == [5, 10, 10]
    assert all(b["id"].startswith("bpar_") for b in batches)
    # And each file has one result (a parse run with its chunks), summarised on the Files item
    files = assert_bucket_and_table_agree(pipeline, env.deployment)
    assert {f["status"] for f in files} == {FileStatus.PROCESSED}
    assert all(f["resultSummary"]["chunkCount"] >= 1 for f in files)
    s3 = env.deployment.session.client("s3")
    result = json.loads(
        s3.get_object(Bucket=env.deployment.resources.results_bucket, Key=files[0]["resultKey"])[
            "Body"
        ].read()
    )
    assert result["object"] == "parse_run" and result["output"]["chunks"]
    # And one announcement per batch, each batch COMPLETED
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.COMPLETED] * 3
    events = [d["eventType"] for d in deliveries(env.sim)]
    assert set(events) == {"batch_parse_run.processed"}
    assert len(notifications(env.deployment, alerts)) == 3


# -- workflows -----------------------------------------------------------------------------------------


def test_workflow_runs_are_recorded_one_by_one_and_reviews_wait_without_alerts(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a workflow route whose runs report one by one, every event delivered twice and out of order,
    # and two documents that stop for a person's review
    pipeline = build(env, maxBatchSize=10, fileSlaMinutes=1, reviewSlaMinutes=60, webhookGraceMinutes=1)
    alerts = subscribe_queue_to_topic(env.deployment, f"{env.deployment.resources.drop_bucket}-alerts")
    env.sim.faults.webhook_duplicate_rate = 1.0
    env.sim.faults.webhook_reorder = True
    upload(env.deployment, [f"claims/c-{i:02d}.txt" for i in range(8)])
    upload(env.deployment, ["claims/review-a.txt", "claims/review-b.txt"], body=b"Claim SIMULATE_REVIEW")

    # When the pipeline runs
    pump_until(
        pipeline,
        env,
        lambda: (
            statuses(pipeline, "claims")[FileStatus.PROCESSED] == 8
            and sum(1 for f in all_files(pipeline) if f.get("reviewSince")) == 2
        ),
    )

    # Then one full batch went to /workflow_runs/batch, and 8 files are recorded from their run events
    (submission,) = submissions(pipeline)
    assert submission["batchId"].startswith("batch_") and submission["fileCount"] == 10
    assert submission["state"] == BatchState.SUBMITTED  # two runs wait on review
    assert (submission["runsSettled"], submission["runsOutOfProcessing"]) == (8, 10)
    waiting = [f for f in all_files(pipeline) if f["status"] == FileStatus.SUBMITTED]
    assert sorted(f["key"] for f in waiting) == ["claims/review-a.txt", "claims/review-b.txt"]
    assert all(f["reviewSince"] and f["runId"] for f in waiting)
    # And every event came twice, each recorded once; no announcement yet
    delivered = Counter(d["eventId"] for d in deliveries(env.sim) if d["outcome"] == "delivered")
    assert set(delivered.values()) == {2}
    assert notifications(env.deployment, alerts) == []
    # And the room at Extend went back, though the batch is open (a review holds no processing)
    rt = pipeline.runtime("results")
    from batchdrop_core import admission

    assert submission["submissionId"] not in admission.read_ledger(rt).held

    # When the SLA for files has passed but not the one for reviews, the reconciler finds nothing stuck
    later = timeutil.utc_now() + timedelta(minutes=5)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    result = pipeline.schedule("reconcile")
    assert (result["stuckFiles"], result["inReview"], result["reviewOverdue"]) == (0, 2, 0)
    assert result["collectionRequested"] == []  # the counters agree with Extend's list

    # When the reviews have waited past their SLA, one alert names them, apart from stuck files
    much_later = timeutil.utc_now() + timedelta(minutes=90)
    monkeypatch.setattr(timeutil, "utc_now", lambda: much_later)
    result = pipeline.schedule("reconcile")
    assert (result["stuckFiles"], result["reviewOverdue"]) == (0, 2)
    pipeline.pump()
    kinds = [m.get("eventType") for m, _ in notifications(env.deployment, alerts)]
    assert kinds == ["files.review_overdue"]

    # When a reviewer approves one and rejects the other
    review_ids = {f["key"]: f["runId"] for f in waiting}
    for key, decision in (("claims/review-a.txt", "approve"), ("claims/review-b.txt", "reject")):
        response = httpx.post(
            f"{env.sim.base_url}/_sim/workflow_reviews",
            json={"runIds": [review_ids[key]], "decision": decision, "note": "not a claim"},
        )
        assert response.status_code == 200
    pump_until(pipeline, env, lambda: submissions(pipeline)[0]["state"] == BatchState.COMPLETED)

    # Then the approved one is PROCESSED, the rejected one FAILED with reason REJECTED, terminal
    files = {f["key"]: f for f in assert_bucket_and_table_agree(pipeline, env.deployment)}
    assert files["claims/review-a.txt"]["status"] == FileStatus.PROCESSED
    rejected = files["claims/review-b.txt"]
    assert (rejected["status"], rejected["failureReason"]) == (FileStatus.FAILED, "REJECTED")
    assert "not a claim" in rejected["failureMessage"]
    assert Counter(f["status"] for f in files.values()) == {FileStatus.PROCESSED: 9, FileStatus.FAILED: 1}
    # And the batch is announced once, with its counts
    (done,) = submissions(pipeline)
    assert (done["processedCount"], done["failedCount"]) == (9, 1)
    batch_messages = [m for m, _ in notifications(env.deployment, alerts) if m.get("batchId")]
    assert [m["batchId"] for m in batch_messages] == [done["batchId"]]


def test_lost_run_events_are_found_by_the_reconciler(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a workflow batch none of whose run events arrive
    pipeline = build(env, maxBatchSize=6, webhookGraceMinutes=1)
    env.sim.faults.webhook_drop_rate = 1.0
    upload(env.deployment, [f"claims/lost-{i}.txt" for i in range(5)])
    upload(env.deployment, ["claims/lost-review.txt"], body=b"Claim SIMULATE_REVIEW")
    pump_until(
        pipeline,
        env,
        lambda: sim_run_statuses(env) == {"PROCESSED": 5, "NEEDS_REVIEW": 1},
    )
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.SUBMITTED}

    # When the grace period has passed and the reconciler runs
    later = timeutil.utc_now() + timedelta(minutes=2)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    result = pipeline.schedule("reconcile")
    pipeline.pump()

    # Then it listed the batch's runs, saw runs the counters had not, and a sweep recorded them
    assert len(result["collectionRequested"]) == 1
    files = {f["key"]: f for f in all_files(pipeline)}
    assert Counter(f["status"] for f in files.values()) == {FileStatus.PROCESSED: 5, FileStatus.SUBMITTED: 1}
    assert files["claims/lost-review.txt"]["reviewSince"]
    (submission,) = submissions(pipeline)
    assert (submission["runsSettled"], submission["runsOutOfProcessing"]) == (5, 6)
    # And the next reconciler run finds nothing new
    assert pipeline.schedule("reconcile")["collectionRequested"] == []

    # When the review is approved (its event lost too), the reconciler finishes the batch
    httpx.post(f"{env.sim.base_url}/_sim/workflow_reviews", json={"decision": "approve"})
    pipeline.schedule("reconcile")
    pipeline.pump()
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.PROCESSED}
    assert submissions(pipeline)[0]["state"] == BatchState.COMPLETED


def test_a_crash_between_a_run_record_and_its_count_records_nothing_twice(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a workflow batch of three finished runs whose events we deliver by hand
    pipeline = build(env, maxBatchSize=3, webhookGraceMinutes=1)
    alerts = subscribe_queue_to_topic(env.deployment, f"{env.deployment.resources.drop_bucket}-alerts")
    env.sim.faults.webhook_drop_rate = 1.0
    upload(env.deployment, [f"claims/crash-{i}.txt" for i in range(3)])
    pump_until(pipeline, env, lambda: sim_run_statuses(env) == {"PROCESSED": 3})
    (batch,) = httpx.get(f"{env.sim.base_url}/_sim/batches", timeout=10).json()["batches"]
    rt = pipeline.runtime("results")
    from batchdrop_core.collect import collect
    from batchdrop_core.messages import CollectionRequest

    def event(run_id: str) -> CollectionRequest:
        return CollectionRequest(
            batch["id"], source="webhook", event_type="workflow_run.completed", run_id=run_id
        )

    # When the first run's event dies after its file was recorded and before it was counted
    count_runs = rt.batches.count_runs

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the function timed out here")

    monkeypatch.setattr(rt.batches, "count_runs", crash)
    with pytest.raises(RuntimeError):
        collect(rt, event(batch["runIds"][0]), lambda: 900.0)
    monkeypatch.setattr(rt.batches, "count_runs", count_runs)
    # ... and SQS delivers it again, then the other two events arrive
    for run_id in batch["runIds"]:
        collect(rt, event(run_id), lambda: 900.0)

    # Then each file is recorded once, and the count is one short: the batch is not finished yet
    files = assert_bucket_and_table_agree(pipeline, env.deployment)
    assert {f["status"] for f in files} == {FileStatus.PROCESSED}
    (submission,) = submissions(pipeline)
    assert (submission["state"], submission["runsSettled"]) == (BatchState.SUBMITTED, 2)

    # When the reconciler compares the counters with Extend's list after the grace period
    later = timeutil.utc_now() + timedelta(minutes=2)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    assert len(pipeline.schedule("reconcile")["collectionRequested"]) == 1
    pipeline.pump()

    # Then a sweep finishes the batch: recorded once, announced once, the counters set right
    (done,) = submissions(pipeline)
    assert (done["state"], done["runsSettled"], done["processedCount"]) == (BatchState.COMPLETED, 3, 3)
    assert [m["batchId"] for m, _ in notifications(env.deployment, alerts)] == [batch["id"]]
    assert len(assert_bucket_and_table_agree(pipeline, env.deployment)) == 3
