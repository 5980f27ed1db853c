"""Batches batchdrop did not submit, or submitted and gave up on: foreign batches are acknowledged and
counted, an ambiguous POST is abandoned only after two searches minutes apart, and a batch that turns up
after that has its results kept, each file recorded once (moto server, the Extend simulator, its signed
webhooks through a local API Gateway)."""

from __future__ import annotations

import json
import time
from collections import Counter
from types import SimpleNamespace

import httpx
import pytest

from batchdrop_core.collect import collect
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.observability import MetricName
from batchdrop_core.submit import flush_route
from batchdrop_core.tracking import BatchState, FileStatus
from sandbox.aws import subscribe_queue_to_topic
from sandbox.lambda_runtime import LambdaContext
from sandbox.pipeline import LocalPipeline
from tests.helpers import (
    EXAMPLE_ROUTES,
    all_files,
    assert_bucket_and_table_agree,
    notifications,
    sim_batches,
    submissions,
    upload,
    wait_until_finished,
)


def dlq_depth(env: SimpleNamespace, name: str) -> int:
    sqs = env.deployment.session.client("sqs")
    url = env.deployment.dlq_urls[name]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def recorded_metrics(pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Metrics the results handler emits from now on."""
    seen: Counter[str] = Counter()
    module = pipeline.modules["results"]
    monkeypatch.setattr(module.metrics, "add_metric", lambda name, unit, value: seen.update({name: value}))
    return seen


def drain_results(pipeline: LocalPipeline, env: SimpleNamespace) -> None:
    """Hand every queued collection request to the results handler, as its event source would."""
    sqs = env.deployment.session.client("sqs")
    url = env.deployment.resources.results_queue_url
    module = pipeline.modules["results"]
    for _ in range(20):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not messages:
            return
        for message in messages:
            module.record_handler({"body": message["Body"]}, LambdaContext("batchdrop-results", 300))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_foreign_batches_are_acknowledged_and_counted_never_retried(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment routing extract runs only, and other tools' batches in the workspace: extract
    # runs without batchdrop's metadata, and classify runs (a type no route submits)
    pipeline = env.build(routes=EXAMPLE_ROUTES[:1])
    metrics = recorded_metrics(pipeline, monkeypatch)
    for body in (
        {"type": "extract", "processorId": "ex_someone_else", "runs": 3, "metadata": {"team": "finance"}},
        {"type": "classify", "processorId": "cl_someone_else", "runs": 2},
        {
            "type": "extract",
            "runs": 1,
            "metadata": {"batchdrop": {"submissionId": "sub_of_another_deployment"}},
        },
    ):
        httpx.post(f"{env.sim.base_url}/_sim/foreign_batches", json=body, timeout=10).raise_for_status()
    batches = wait_until_finished(env.sim, batches=3)

    # When their webhooks are collected
    drain_results(pipeline, env)

    # Then each was acknowledged and counted as foreign, nothing was recorded, nothing waits to retry
    assert metrics[MetricName.FOREIGN_BATCHES] == 3
    assert all_files(pipeline) == [] and submissions(pipeline) == []
    assert dlq_depth(env, "results") == 0
    rt = pipeline.runtime("results")
    for batch in batches:
        assert collect(rt, CollectionRequest(batch["id"], source="test"), lambda: 300.0).result == "not_ours"


def lose_the_next_post(env: SimpleNamespace, delay: float) -> None:
    env.sim.faults.lose_post_response = 1
    env.sim.faults.lost_batch_delay_seconds = delay


def test_an_ambiguous_post_whose_batch_shows_late_is_adopted_at_the_second_search(
    env: SimpleNamespace,
) -> None:
    # Given a POST whose response was lost, its batch visible at Extend only 2.5 s later
    pipeline = env.build(maxWaitSeconds=1, orphanGraceSeconds=1)
    lose_the_next_post(env, 2.5)
    upload(env.deployment, [f"invoices/slow-{i}.pdf" for i in range(5)])
    pipeline.intake.drain()
    time.sleep(1.1)
    pipeline.submitter.drain()

    # When the first search comes (after orphanGraceSeconds) and finds nothing
    time.sleep(1.1)
    rt = pipeline.runtime("submitter")
    outcome = flush_route(rt, "invoices")
    assert outcome.counts["orphan_searched"] == 1
    # Then nothing is abandoned, and no search is repeated before orphanGraceSeconds has passed
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.UNKNOWN]
    assert flush_route(rt, "invoices").counts["orphan_waiting"] == 1

    # When the second search comes after the batch became visible
    time.sleep(1.5)
    outcome = flush_route(rt, "invoices")

    # Then the batch is adopted, and its files were sent once
    assert outcome.counts["adopted"] == 1
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.SUBMITTED]
    assert len(sim_batches(env.sim)) == 1


@pytest.mark.parametrize("resent", [False, True])
def test_a_batch_of_an_abandoned_submission_is_a_counted_duplicate_whose_results_are_kept_once(
    env: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, resent: bool
) -> None:
    # Given a POST whose response was lost and whose batch shows only after two searches gave up on it
    pipeline = env.build(maxWaitSeconds=1, orphanGraceSeconds=1)
    alerts = subscribe_queue_to_topic(env.deployment, f"{env.deployment.resources.drop_bucket}-alerts")
    metrics = recorded_metrics(pipeline, monkeypatch)
    lose_the_next_post(env, 4.0)
    upload(env.deployment, [f"invoices/late-{i}.pdf" for i in range(6)])
    pipeline.intake.drain()
    time.sleep(1.1)
    pipeline.submitter.drain()
    rt = pipeline.runtime("submitter")
    time.sleep(1.1)
    flush_route(rt, "invoices")
    time.sleep(1.1)
    # The second search abandons it; its files go back to the queue, and are sent again at once, or not
    # yet (the flush ran out of time right after the searches)
    flush_route(rt, "invoices", time_left=(lambda: 600.0) if resent else (lambda: 0.0))
    states = Counter(s["state"] for s in submissions(pipeline))
    assert states[BatchState.ABANDONED] == 1 and states[BatchState.SUBMITTED] == (1 if resent else 0)

    # When the late batch (and any resent one) finishes and the webhooks are collected, twice over
    wait_until_finished(env.sim, batches=2 if resent else 1)
    drain_results(pipeline, env)
    for batch in sim_batches(env.sim):
        rt.request_collection(CollectionRequest(batch["id"], source="test"))
    drain_results(pipeline, env)

    # Then every file was recorded once, with one result, from the late batch if it was still queued
    files = assert_bucket_and_table_agree(pipeline, env.deployment)
    assert Counter(f["status"] for f in files) == {FileStatus.PROCESSED: 6}
    abandoned = next(s for s in submissions(pipeline) if s["state"] == BatchState.ABANDONED)
    from_late = [f for f in files if f["submissionId"] == abandoned["submissionId"]]
    assert len(from_late) == (0 if resent else 6)
    # And the duplicate was counted once, announced once, and nothing went to a DLQ
    assert metrics[MetricName.LATE_DUPLICATE_BATCHES] == 1
    kinds = [m["eventType"] for m, _ in notifications(env.deployment, alerts)]
    assert kinds.count("batch.duplicate") == 1
    assert abandoned["lateBatchAt"] and abandoned["batchId"]
    assert dlq_depth(env, "results") == 0
    assert json.dumps(abandoned)  # the item reads back as plain values
