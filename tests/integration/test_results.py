"""Results collection against moto server and the Extend simulator, over real HTTP (design §5 I1, I4)."""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from batchdrop_core import timeutil
from batchdrop_core.collect import collect
from batchdrop_core.dynamo import to_item
from batchdrop_core.extend import BatchInput, FileRef, ProcessorRef
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.reconcile import reconcile
from batchdrop_core.runtime import Runtime
from batchdrop_core.tracking import BatchState, FileStatus, Submission, TrackedFile, new_submission_id
from sandbox.aws import Deployment, subscribe_queue_to_topic
from tests.helpers import (
    all_files,
    assert_bucket_and_table_agree,
    notifications,
    request_collection_of_all,
    sim_batches,
    submissions,
    upload,
    wait_until_finished,
)

INVOICE = "INVOICE\nInvoice Number: {n}\nTotal: {n}.50\n"


# -- helpers -----------------------------------------------------------------------------------------------


def sim_stats(sim: Any) -> dict[str, Any]:
    return httpx.get(f"{sim.base_url}/_sim/stats", timeout=10).json()


def ok_gets(stats: dict[str, Any], path: str) -> int:
    return stats["requests"].get(f"GET {path}", {}).get("200", 0)


def manifest_lines(deployment: Deployment, submission: dict[str, Any]) -> list[dict[str, Any]]:
    s3 = deployment.session.client("s3")
    body = s3.get_object(Bucket=deployment.resources.results_bucket, Key=submission["manifestKey"])["Body"]
    return [json.loads(line) for line in body.read().decode().splitlines()]


def seed_submitted_batch(rt: Runtime, route_name: str, texts: list[str]) -> Submission:
    """A submission as the submitter leaves it (Files SUBMITTED, Batches SUBMITTED, the batch at Extend),
    built directly so a 1,000-file test spends its time on collection. Inputs are text, so the
    simulator needs no downloads."""
    route = rt.settings.route(route_name)
    now = timeutil.now_iso()
    sid = new_submission_id()
    files = [
        TrackedFile(
            bucket=rt.resources.drop_bucket or "drop",
            key=f"{route.prefix}seed/doc-{i:04d}.txt",
            version_id=f"v{i:04d}",
            status=FileStatus.SUBMITTED,
            route=route.name,
            arrived_at=now,
            queued_at=now,
            submission_id=sid,
            attempts=1,
        )
        for i in range(len(texts))
    ]
    submission = Submission(sid, route.name, route.type, route.processor_id, BatchState.SUBMITTING, now)
    submission.file_count = len(files)
    rt.batches.create(submission)
    inputs = [
        BatchInput(
            file=FileRef.from_text(text, name=f.key.rsplit("/", 1)[-1]),
            metadata={"batchdrop": {"submissionId": sid, "fileId": f.file_id}},
        )
        for f, text in zip(files, texts, strict=True)
    ]
    batch = rt.extend.create_batch(route.type, ProcessorRef(id=route.processor_id), inputs)
    client = rt.client("dynamodb")

    def put(tracked: TrackedFile) -> None:
        client.put_item(TableName=rt.resources.files_table, Item=to_item(tracked.to_values()))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, files))
    rt.batches.link_batch_id(sid, batch.id)
    rt.batches.transition(sid, [BatchState.SUBMITTING], BatchState.SUBMITTED, submittedAt=now)
    submission.batch_id = batch.id
    return submission


# -- tests ----------------------------------------------------------------------------------------------


def test_a_1000_run_batch_is_collected_completely_under_the_read_rate_through_a_429_storm(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given a finished 1,000-run batch: 940 processed, 50 failed for good, 10 failed retryably,
    # and Extend enforcing the deployment's read rate of 100 GET/s
    pipeline = pipeline_factory(readRateLimit=100)
    extend_sim.configure(read_rps=100)
    alerts = subscribe_queue_to_topic(deployment, f"{deployment.resources.drop_bucket}-alerts")
    texts = [INVOICE.format(n=i) for i in range(940)]
    texts += [f"SIMULATE_FAILURE:PARSING_ERROR doc {i}" for i in range(50)]
    texts += [f"SIMULATE_FAILURE:INTERNAL_ERROR doc {i}" for i in range(10)]
    submission = seed_submitted_batch(pipeline.runtime("results"), "invoices", texts)
    wait_until_finished(extend_sim, batches=1)

    # When the webhook's collection request is handled, and after 200 run GETs Extend answers the next
    # 16 GETs with 429
    storm = 16

    def start_storm() -> None:
        while ok_gets(sim_stats(extend_sim), "/extract_runs/{id}") < 200:
            time.sleep(0.05)
        extend_sim.faults.rate_limit_storm_requests = storm

    pipeline.runtime("results").request_collection(CollectionRequest(submission.batch_id, source="test"))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=1) as storm_thread:
        storm_started = storm_thread.submit(start_storm)
        pipeline.pump()
        storm_started.result(timeout=1)
    elapsed = time.monotonic() - started

    # Then only the processed runs were read, one GET each, never faster than the deployment's read rate
    stats = sim_stats(extend_sim)
    assert ok_gets(stats, "/extract_runs/{id}") == 940
    assert stats["counters"]["rate_limited"] == storm, "a GET went over the read rate"
    assert elapsed >= 940 / 100 * 0.9

    # And every file has its outcome: results stored, failures recorded, retryable ones queued again
    files = assert_bucket_and_table_agree(pipeline, deployment)
    assert Counter(f["status"] for f in files) == {"PROCESSED": 940, "FAILED": 50, "QUEUED": 10}
    failed = [f for f in files if f["status"] == FileStatus.FAILED]
    assert {f["failureReason"] for f in failed} == {"PARSING_ERROR"} and all(
        f["failureMessage"] for f in failed
    )
    requeued = [f for f in files if f["status"] == FileStatus.QUEUED]
    assert all(f["failureReason"] == "INTERNAL_ERROR" and f["attempts"] == 1 for f in requeued)
    processed = next(f for f in files if f["status"] == FileStatus.PROCESSED)
    assert processed["resultSummary"] == {"fieldCount": 2}

    # And the batch is complete, with a manifest line per file and one notification
    (record,) = submissions(pipeline)
    assert record["state"] == BatchState.COMPLETED
    assert (record["processedCount"], record["failedCount"], record["requeuedCount"]) == (940, 50, 10)
    lines = manifest_lines(deployment, record)
    assert len(lines) == 1000
    assert Counter(line["status"] for line in lines) == {"PROCESSED": 940, "FAILED": 50, "REQUEUED": 10}
    ((message, attributes),) = notifications(deployment, alerts)
    assert attributes == {
        "eventType": "batch.completed",
        "route": "invoices",
        "processorType": "extract",
        "status": "COMPLETED",
    }
    assert message["batchId"] == submission.batch_id
    assert (message["processedCount"], message["failedCount"], message["requeuedCount"]) == (940, 50, 10)
    assert len(message["failedFiles"]) == 50 and not message["failedFilesTruncated"]

    # And its credits are what Extend reported for its runs (processed runs only), on the item and message
    extend = pipeline.runtime("results").extend
    reported = [r.credits for r in extend.iter_runs("extract", batch_id=submission.batch_id) if r.credits]
    assert len(reported) == 940
    assert record["credits"] == message["credits"] == pytest.approx(sum(reported))


def test_an_exhausted_time_budget_continues_in_new_invocations_without_duplicates(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given a finished 120-run batch, a read rate of 20 GET/s (the reading worker has it all), and
    # invocations that have about 2.5 s before the 60 s reserve
    pipeline = pipeline_factory(readRateLimit=20)
    alerts = subscribe_queue_to_topic(deployment, f"{deployment.resources.drop_bucket}-alerts")
    submission = seed_submitted_batch(
        pipeline.runtime("results"), "invoices", [INVOICE.format(n=i) for i in range(120)]
    )
    wait_until_finished(extend_sim, batches=1)
    pipeline.results.timeout_seconds = 62.5

    # When the batch is collected, together with a duplicate request
    rt = pipeline.runtime("results")
    for _ in range(2):
        rt.request_collection(CollectionRequest(submission.batch_id, source="test"))
    pipeline.pump()

    # Then it took several invocations, each run was read once, and each result written once
    assert pipeline.results.invocations >= 4  # two requests, at least two continuations
    assert ok_gets(sim_stats(extend_sim), "/extract_runs/{id}") == 120
    files = assert_bucket_and_table_agree(pipeline, deployment)
    assert {f["status"] for f in files} == {FileStatus.PROCESSED}
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.COMPLETED]
    assert [m["eventType"] for m, _ in notifications(deployment, alerts)] == ["batch.completed"]


def test_retryable_failures_are_retried_with_a_fresh_url_up_to_max_attempts_then_failed(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given files that always fail with a retryable reason, files that fail for good, and good files
    pipeline = pipeline_factory(maxAttempts=3, maxWaitSeconds=1)
    alerts = subscribe_queue_to_topic(deployment, f"{deployment.resources.drop_bucket}-alerts")
    upload(deployment, [f"invoices/good-{i}.pdf" for i in range(6)])
    upload(deployment, [f"invoices/flaky-{i}.pdf" for i in range(3)], body=b"SIMULATE_FAILURE:INTERNAL_ERROR")
    upload(
        deployment,
        [f"invoices/bad-{i}.pdf" for i in range(3)],
        body=b"SIMULATE_FAILURE:INVALID_CONFIGURATION",
    )

    # When the pipeline submits, collects, and submits what came back, until nothing is left
    pipeline.pump()
    for _ in range(4):
        time.sleep(1.1)  # the requeued files wait maxWaitSeconds, like any other
        pipeline.schedule("sweep")
        pipeline.pump()
        wait_until_finished(extend_sim)
        request_collection_of_all(pipeline, extend_sim)
        pipeline.pump()

    # Then the retryable files went round three times, each time with a fresh presigned URL
    batches = sim_batches(extend_sim)
    assert [b["runCount"] for b in batches] == [12, 3, 3]
    urls = {i["file"]["url"] for b in batches for i in b["inputs"] if "flaky-0" in i["file"]["url"]}
    assert len(urls) == 3
    files = {f["key"]: f for f in assert_bucket_and_table_agree(pipeline, deployment)}
    for i in range(3):
        flaky = files[f"invoices/flaky-{i}.pdf"]
        assert (flaky["status"], flaky["attempts"], flaky["failureReason"]) == ("FAILED", 3, "INTERNAL_ERROR")
        # Its history holds the two attempts that went round again, each with its submission and run
        assert [(h["status"], h["reason"]) for h in flaky["history"]] == [("QUEUED", "INTERNAL_ERROR")] * 2
        earlier = [h["submissionId"] for h in flaky["history"]]
        assert len({*earlier, flaky["submissionId"]}) == 3 and all(h["runId"] for h in flaky["history"])
        bad = files[f"invoices/bad-{i}.pdf"]
        assert (bad["status"], bad["attempts"], bad["failureReason"]) == (
            "FAILED",
            1,
            "INVALID_CONFIGURATION",
        )
        assert files[f"invoices/good-{i}.pdf"]["status"] == FileStatus.PROCESSED

    # And each batch was announced once, with what went round again
    messages = sorted(notifications(deployment, alerts), key=lambda m: m[0]["completedAt"])
    assert [(m["requeuedCount"], m["failedCount"]) for m, _ in messages] == [(3, 3), (3, 0), (0, 3)]


def test_the_reconciler_flags_files_beyond_the_sla_once_per_run(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given three files that stay QUEUED (their route waits for more)
    pipeline = pipeline_factory(fileSlaMinutes=5)
    alerts = subscribe_queue_to_topic(deployment, f"{deployment.resources.drop_bucket}-alerts")
    upload(deployment, [f"invoices/slow-{i}.pdf" for i in range(3)])
    pipeline.intake.drain()
    assert pipeline.schedule("reconcile")["stuckFiles"] == 0

    # When the SLA has passed and the reconciler runs
    later = timeutil.utc_now() + timedelta(minutes=6)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    result = pipeline.schedule("reconcile")

    # Then they are flagged, with one operator alert
    assert (result["stuckFiles"], result["alerted"]) == (3, True)
    ((message, attributes),) = notifications(deployment, alerts)
    assert attributes["eventType"] == "files.stuck" and attributes["route"] == "invoices"
    assert message["routes"]["invoices"]["queuedOverSla"] == 3
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.QUEUED}


def test_collectors_and_the_reconciler_share_one_read_budget_and_never_exceed_it(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given two finished 40-run batches and Extend's read limit equal to the deployment's (20 GET/s)
    pipeline = pipeline_factory(readRateLimit=20, webhookGraceMinutes=1)
    extend_sim.configure(read_rps=20)
    rt = pipeline.runtime("results")
    seeded = [
        seed_submitted_batch(rt, route, [INVOICE.format(n=i) for i in range(40)])
        for route in ("invoices", "documents")
    ]
    wait_until_finished(extend_sim, batches=2)
    run_paths = ("/extract_runs/{id}", "/classify_runs/{id}")

    # When two collectors (two Lambda copies: their own clients and budgets) collect both batches while
    # the reconciler polls every batch it thinks lost its webhook, all at the same time
    copies = [Runtime.from_env() for _ in range(2)]
    later = timeutil.utc_now() + timedelta(minutes=2)

    def poll() -> int:
        return sum(reconcile(pipeline.runtime("reconciler"), now=later).polled for _ in range(5))

    with ThreadPoolExecutor(max_workers=3) as pool:
        polling = pool.submit(poll)
        outcomes = list(
            pool.map(
                lambda pair: collect(
                    pair[0], CollectionRequest(pair[1].batch_id, source="test"), lambda: 900.0
                ),
                zip(copies, seeded, strict=True),
            )
        )
        polled = polling.result()

    # Then together they never went over Extend's limit (no 429 on any read), every run was read once and
    # recorded, and each copy leased its share of the budget a few seconds at a time
    assert {o.result for o in outcomes} == {"completed"}
    stats = sim_stats(extend_sim)
    assert sum(c.get("429", 0) for r, c in stats["requests"].items() if r.startswith("GET ")) == 0
    assert sum(ok_gets(stats, path) for path in run_paths) == 80
    # (the reconciler polls a batch until its collector has finished it; each collector reads it once)
    assert polled >= 1 and stats["requests"]["GET /batch_runs/{id}"] == {"200": polled + 2}
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.PROCESSED}
    assert [s["state"] for s in submissions(pipeline)] == [BatchState.COMPLETED] * 2
    assert all(copy.read_limiter.leases < 40 for copy in copies)


def test_a_revoked_key_or_an_unavailable_extend_defers_collection_instead_of_failing_it(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given a finished batch, and Extend refusing the API key
    # (found by the long reliability run: collections failed into the results DLQ while the key was revoked)
    pipeline = pipeline_factory()
    rt = pipeline.runtime("results")
    submission = seed_submitted_batch(rt, "invoices", [INVOICE.format(n=i) for i in range(5)])
    wait_until_finished(extend_sim, batches=1)
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"api_key": "sk_test_rotated_key"}, timeout=5)

    # When the collection request is handled
    rt.request_collection(CollectionRequest(submission.batch_id, source="test"))
    pipeline.results.drain()

    # Then the invocation did not fail: the request is back in the queue, delayed 30 s, counted
    assert pipeline.results.errors == 0
    sqs = deployment.session.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=deployment.resources.results_queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.SUBMITTED}

    # When the key is restored and the deferred request comes back (as a second deferral would)
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"api_key": "sk_test_not_a_real_key"}, timeout=5)
    outcome = collect(rt, CollectionRequest(submission.batch_id, source="test", deferrals=1), lambda: 900.0)

    # Then the batch is collected
    assert outcome.result == "completed"
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.PROCESSED}

    # And an Extend that keeps failing (5xx beyond the client's retries) defers the same way, with a longer
    # delay each time, until the last deferral lets the error through to the DLQ
    from batchdrop_core import collect as collect_module
    from batchdrop_core.extend import ExtendRetryableError

    second = seed_submitted_batch(rt, "documents", [INVOICE.format(n=i) for i in range(3)])
    wait_until_finished(extend_sim, batches=2)
    extend_sim.faults.error_5xx_rate = 1.0
    deferred = collect(rt, CollectionRequest(second.batch_id, deferrals=2), lambda: 900.0)
    assert deferred.result == "deferred"
    with pytest.raises(ExtendRetryableError):
        collect(rt, CollectionRequest(second.batch_id, deferrals=collect_module.MAX_DEFERRALS), lambda: 900.0)
    extend_sim.faults.error_5xx_rate = 0.0
