"""The accumulator against moto server and the Extend simulator, over real HTTP (design §5 I1 to I3, I6)."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from batchdrop_core import timeutil
from batchdrop_core.intake import RejectReason
from batchdrop_core.tracking import BatchState, FileStatus
from sandbox.aws import Deployment, drain_notifications, subscribe_queue_to_topic
from sandbox.pipeline import LocalPipeline
from tests.helpers import (
    EXAMPLE_ROUTES,
    all_files,
    all_submissions,
    assert_each_file_in_exactly_one_batch,
    batch_file_ids,
    sim_batches,
    upload,
)


def sns_messages(deployment: Deployment, queue_url: str) -> list[dict[str, Any]]:
    return [n.message for n in drain_notifications(deployment, queue_url)]


# 2,800 files through moto take about two minutes on an idle 2-core machine; allow for a busy one.
@pytest.mark.timeout(900)
def test_routes_become_full_batches_and_the_remainder_waits_for_max_wait(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 2,500 files on one route and 300 on another, dropped together (maxWaitSeconds longer than the
    # slowest machine takes to get them through intake), and room at Extend for all of them (flow control
    # has its own tests)
    pipeline = pipeline_factory(maxWaitSeconds=3600, maxFilesAtExtend=5000)
    upload(deployment, [f"invoices/2026/inv-{i:05d}.pdf" for i in range(2500)])
    upload(deployment, [f"documents/doc-{i:04d}.txt" for i in range(300)])

    # When the pipeline runs before maxWaitSeconds has passed
    pipeline.pump()
    pipeline.schedule("sweep")
    pipeline.pump()

    # Then only full batches went out
    assert [b["runCount"] for b in sim_batches(extend_sim)] == [1000, 1000]
    queued = Counter(f["route"] for f in all_files(pipeline) if f["status"] == FileStatus.QUEUED)
    assert queued == {"invoices": 500, "documents": 300}

    # When maxWaitSeconds has passed (the clock moves on) and the schedule sweeps
    later = timeutil.utc_now() + timedelta(seconds=3601)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    assert set(pipeline.schedule("sweep")["flushed"]) == {"invoices", "documents"}
    pipeline.pump()

    # Then the remainders went out too: A 1000, 1000, 500 and B 300, never mixing routes
    batches = sim_batches(extend_sim)
    by_processor: dict[str, list[int]] = {}
    for batch in batches:
        by_processor.setdefault(batch["processor"]["id"], []).append(batch["runCount"])
        routes = {fid.split("/", 2)[1] for fid in batch_file_ids(batch)}
        assert len(routes) == 1, f"batch {batch['id']} mixes routes {routes}"
    assert sorted(by_processor["ex_invoices_test"]) == [500, 1000, 1000]
    assert by_processor["cl_doctype_test"] == [300]
    files = all_files(pipeline)
    assert len(files) == 2800
    assert_each_file_in_exactly_one_batch(batches, files)
    assert {f["status"] for f in files} == {FileStatus.SUBMITTED}
    # The submission records what its files share: Extend's batch id and when their URLs expire
    submissions = {s["submissionId"]: s for s in all_submissions(pipeline)}
    assert all(submissions[f["submissionId"]]["batchId"].startswith("bpr_") for f in files)
    assert all(submissions[f["submissionId"]]["urlExpiresAt"] for f in files)


def test_duplicate_notifications_make_one_item_and_a_new_version_makes_a_new_file(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given one object whose notification S3 delivers three times
    pipeline = pipeline_factory()
    sqs = deployment.session.client("sqs")
    upload(deployment, ["invoices/dup.pdf"], body=b"Invoice Number: 1")
    message = sqs.receive_message(QueueUrl=deployment.arrivals_queue_url, MaxNumberOfMessages=10)["Messages"]
    body = next(m for m in message if "Records" in m["Body"])["Body"]
    for m in message:
        sqs.change_message_visibility(
            QueueUrl=deployment.arrivals_queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    for _ in range(2):
        sqs.send_message(QueueUrl=deployment.arrivals_queue_url, MessageBody=body)

    # When intake runs and an operator flushes
    pipeline.pump()
    pipeline.runtime("intake").request_flush("invoices", reason="test", force=True)
    pipeline.pump()

    # Then there is one item and one submission
    files = all_files(pipeline)
    assert len(files) == 1
    assert len(sim_batches(extend_sim)) == 1

    # When a new version of the same key arrives
    upload(deployment, ["invoices/dup.pdf"], body=b"Invoice Number: 2")
    pipeline.pump()
    pipeline.runtime("intake").request_flush("invoices", reason="test", force=True)
    pipeline.pump()

    # Then it is a second file, in its own batch
    files = all_files(pipeline)
    assert len(files) == 2
    assert len({f["versionId"] for f in files}) == 2
    batches = sim_batches(extend_sim)
    assert len(batches) == 2
    assert_each_file_in_exactly_one_batch(batches, files)


def test_crash_after_post_before_recording_is_adopted_not_resubmitted(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a submitter that crashes right after Extend accepted the batch
    pipeline = pipeline_factory(maxWaitSeconds=1, orphanGraceSeconds=1)
    upload(deployment, [f"invoices/crash-{i}.pdf" for i in range(40)])
    pipeline.intake.drain()
    from batchdrop_core.tracking import BatchStore

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("simulated crash after the POST")

    monkeypatch.setattr(BatchStore, "link_batch_id", crash)
    time.sleep(1.1)
    pipeline.submitter.drain()
    assert len(sim_batches(extend_sim)) == 1
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.SUBMITTED}
    monkeypatch.undo()

    # When the grace period passes and the submitter runs again (redelivery / sweep)
    time.sleep(1.1)
    pipeline.schedule("sweep")
    time.sleep(5.2)  # the crashed flush request comes back after the local visibility timeout
    pipeline.pump()

    # Then the batch was adopted from the runs' metadata, and nothing was sent twice
    batches = sim_batches(extend_sim)
    files = all_files(pipeline)
    assert len(batches) == 1
    assert_each_file_in_exactly_one_batch(batches, files)
    assert {f["status"] for f in files} == {FileStatus.SUBMITTED}
    submissions = _submissions(pipeline)
    assert [s["state"] for s in submissions] == [BatchState.SUBMITTED]
    assert submissions[0]["adopted"] is True
    assert "40 runs found" in submissions[0]["note"]


def submit_with_lost_response(
    pipeline: LocalPipeline, deployment: Deployment, sim: Any, keys: list[str]
) -> None:
    """One batch of ``keys`` that Extend accepts but whose response is lost: its submission is UNKNOWN."""
    sim.faults.lose_post_response = 1
    upload(deployment, keys)
    pipeline.intake.drain()
    time.sleep(1.1)  # maxWaitSeconds
    pipeline.submitter.drain()
    assert [s["state"] for s in _submissions(pipeline)] == [BatchState.UNKNOWN]


def test_lost_post_response_is_resolved_through_run_metadata(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given Extend accepts the next batch but its response is lost
    pipeline = pipeline_factory(maxWaitSeconds=1, orphanGraceSeconds=1)
    submit_with_lost_response(pipeline, deployment, extend_sim, [f"invoices/lost-{i}.pdf" for i in range(25)])

    # When the grace period passes and the sweep asks again
    time.sleep(1.1)
    pipeline.schedule("sweep")
    pipeline.pump()

    # Then the one batch Extend has is adopted; no second batch exists
    batches = sim_batches(extend_sim)
    assert len(batches) == 1
    assert_each_file_in_exactly_one_batch(batches, all_files(pipeline))


def test_outcome_unknown_with_nothing_at_extend_resubmits_once(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a POST that fails ambiguously but never reached Extend
    from batchdrop_core.extend import ExtendClient, ExtendOutcomeUnknownError

    pipeline = pipeline_factory(maxWaitSeconds=1, orphanGraceSeconds=1)
    upload(deployment, [f"invoices/gone-{i}.pdf" for i in range(5)])
    pipeline.intake.drain()

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise ExtendOutcomeUnknownError("read timeout after sending")

    monkeypatch.setattr(ExtendClient, "create_batch", lost)
    time.sleep(1.1)
    pipeline.submitter.drain()
    monkeypatch.undo()

    # When it is resolved: two searches orphanGraceSeconds apart find nothing
    for _ in range(2):
        time.sleep(1.1)
        pipeline.schedule("sweep")
        pipeline.pump()

    # Then the files went out exactly once, in a new submission
    batches = sim_batches(extend_sim)
    assert len(batches) == 1
    assert_each_file_in_exactly_one_batch(batches, all_files(pipeline))
    states = sorted(s["state"] for s in _submissions(pipeline))
    assert states == [BatchState.ABANDONED, BatchState.SUBMITTED]


def advance_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """batchdrop's clock moves on by ``seconds`` (moto and the simulator keep theirs)."""
    later = timeutil.utc_now() + timedelta(seconds=seconds)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)


def test_invalid_api_key_blocks_the_route_then_resumes(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Extend no longer accepts the stored key
    pipeline = pipeline_factory(maxWaitSeconds=1)
    alerts = subscribe_queue_to_topic(deployment, f"{deployment.resources.drop_bucket}-alerts")
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"api_key": "sk_test_rotated_key"}, timeout=5)
    upload(deployment, [f"invoices/key-{i}.pdf" for i in range(10)])
    pipeline.intake.drain()
    time.sleep(1.1)

    # When the submitter tries (twice)
    pipeline.submitter.drain()
    pipeline.schedule("sweep")
    pipeline.submitter.drain()

    # Then the files stay QUEUED, the route is blocked, and the operator was told once
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.QUEUED}
    state = pipeline.runtime("submitter").state.route_state("invoices")
    assert state["blocked"] is True and state["blockedReason"] == "EXTEND_AUTH"
    messages = sns_messages(deployment, alerts)
    assert [m["eventType"] for m in messages] == ["route.blocked"]
    assert "401" in messages[0]["message"]
    assert sim_batches(extend_sim) == []

    # When the key is fixed and the route's first probe is due (a minute after the block)
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"api_key": "sk_test_not_a_real_key"}, timeout=5)
    advance_clock(monkeypatch, 61)
    pipeline.schedule("sweep")
    pipeline.pump()

    # Then they go through and the route is unblocked
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.SUBMITTED}
    assert len(sim_batches(extend_sim)) == 1
    assert pipeline.runtime("submitter").state.route_state("invoices")["blocked"] is False
    assert [m["eventType"] for m in sns_messages(deployment, alerts)] == ["route.resumed"]


def test_a_key_revoked_while_a_submission_is_ambiguous_blocks_the_route_and_fails_no_request(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch whose POST response was lost (the submission is UNKNOWN), then the key revoked
    # (found by the long reliability run: the orphan search's 401 failed flush requests into the DLQ)
    pipeline = pipeline_factory(maxWaitSeconds=1, orphanGraceSeconds=1)
    alerts = subscribe_queue_to_topic(deployment, f"{deployment.resources.drop_bucket}-alerts")
    submit_with_lost_response(
        pipeline, deployment, extend_sim, [f"invoices/revoked-{i}.pdf" for i in range(10)]
    )
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"api_key": "sk_test_rotated_key"}, timeout=5)

    # When the sweep asks the submitter to resolve it
    time.sleep(1.1)
    pipeline.schedule("sweep")
    pipeline.submitter.drain()

    # Then the request is done, not failed (failures end in the DLQ), the route is blocked, and the
    # submission waits, still unresolved
    assert pipeline.submitter.errors == 0
    state = pipeline.runtime("submitter").state.route_state("invoices")
    assert state["blocked"] is True and state["blockedReason"] == "EXTEND_AUTH"
    assert [s["state"] for s in _submissions(pipeline)] == [BatchState.UNKNOWN]

    # When the key is restored and the sweep asks again once the probe is due
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"api_key": "sk_test_not_a_real_key"}, timeout=5)
    advance_clock(monkeypatch, 61)
    pipeline.schedule("sweep")
    pipeline.pump()

    # Then the one batch Extend has is adopted, nothing was sent twice, and the route resumed
    batches = sim_batches(extend_sim)
    assert len(batches) == 1
    assert_each_file_in_exactly_one_batch(batches, all_files(pipeline))
    assert [s["state"] for s in _submissions(pipeline)] == [BatchState.SUBMITTED]
    assert pipeline.runtime("submitter").state.route_state("invoices")["blocked"] is False
    assert [m["eventType"] for m in sns_messages(deployment, alerts)] == ["route.blocked", "route.resumed"]


def test_unknown_processor_blocks_the_route_with_extends_message(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    pipeline = pipeline_factory(maxWaitSeconds=1)
    httpx.post(f"{extend_sim.base_url}/_sim/config", json={"allowed_processors": ["ex_other"]}, timeout=5)
    upload(deployment, ["invoices/a.pdf"])
    pipeline.intake.drain()
    time.sleep(1.1)
    pipeline.submitter.drain()
    state = pipeline.runtime("submitter").state.route_state("invoices")
    assert state["blockedReason"] == "EXTEND_REJECTED"
    assert "404" in state["blockedMessage"]
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.QUEUED}


@pytest.mark.parametrize("file_transfer", ["url", "upload"])
def test_awkward_keys_are_decoded_and_extend_reads_the_right_bytes(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any, file_transfer: str
) -> None:
    # Given keys with spaces, '+', '%', '#' and non-ASCII characters
    pipeline = pipeline_factory(fileTransfer=file_transfer)
    keys = [
        "invoices/ACME Corp invoice #1042+final.pdf",
        "invoices/100% done.pdf",
        "invoices/Ünïcödé façture 请求.pdf",
        "invoices/a+b=c&d.pdf",
    ]
    s3 = deployment.session.client("s3")
    for key in keys:
        s3.put_object(Bucket=deployment.resources.drop_bucket, Key=key, Body=f"content of {key}".encode())

    # When they are submitted
    pipeline.pump()
    pipeline.runtime("intake").request_flush("invoices", reason="test", force=True)
    pipeline.pump()

    # Then the items carry the decoded keys, and Extend got each file's own bytes
    files = all_files(pipeline)
    assert sorted(f["key"] for f in files) == sorted(keys)
    (batch,) = sim_batches(extend_sim)
    for item in batch["inputs"]:
        key = item["metadata"]["batchdrop"]["fileId"].split("/", 1)[1].rsplit("#", 1)[0]
        if file_transfer == "url":
            assert httpx.get(item["file"]["url"], timeout=10).content == f"content of {key}".encode()
        else:
            assert item["file"]["id"].startswith("file_")


def _submissions(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    from batchdrop_core.dynamo import from_item

    rt = pipeline.runtime("submitter")
    page = rt.client("dynamodb").scan(TableName=rt.resources.batches_table)
    return [from_item(i) for i in page["Items"]]


def test_every_rejection_reason_is_recorded(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # A route that forwards user metadata reads each object (HeadObject): it can find metadata too large
    # for Extend, and an object deleted before intake read it.
    routes = [{**r, "forwardUserMetadata": r["name"] == "invoices"} for r in EXAMPLE_ROUTES]
    pipeline = pipeline_factory(maxFileSizeBytes=1000, routes=routes)
    s3 = deployment.session.client("s3")
    bucket = deployment.resources.drop_bucket
    s3.put_object(Bucket=bucket, Key="invoices/empty.pdf", Body=b"")
    s3.put_object(Bucket=bucket, Key="invoices/huge.pdf", Body=b"x" * 1001)
    s3.put_object(Bucket=bucket, Key="invoices/program.exe", Body=b"MZ")
    s3.put_object(Bucket=bucket, Key="invoices/meta.pdf", Body=b"%PDF", Metadata={"note": "n" * 9500})
    s3.put_object(Bucket=bucket, Key="invoices/fine.pdf", Body=b"%PDF")
    s3.put_object(Bucket=bucket, Key="elsewhere/x.pdf", Body=b"%PDF")
    # An object deleted before intake reads it, as S3 would have notified it
    sqs = deployment.session.client("sqs")
    for key, size in (("invoices/deleted.pdf", 10),):
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "versionId": "v1"}},
        }
        sqs.send_message(
            QueueUrl=deployment.arrivals_queue_url, MessageBody=json.dumps({"Records": [record]})
        )

    pipeline.intake.drain()

    reasons = {f["key"]: f.get("failureReason") for f in all_files(pipeline)}
    assert reasons == {
        "invoices/empty.pdf": RejectReason.EMPTY_FILE,
        "invoices/huge.pdf": RejectReason.FILE_TOO_LARGE,
        "invoices/program.exe": RejectReason.UNSUPPORTED_TYPE,
        "invoices/meta.pdf": RejectReason.METADATA_TOO_LARGE,
        "elsewhere/x.pdf": RejectReason.NO_ROUTE,
        "invoices/deleted.pdf": RejectReason.OBJECT_NOT_FOUND,
        "invoices/fine.pdf": None,
    }
    rejected = [f for f in all_files(pipeline) if f["status"] == FileStatus.REJECTED]
    assert len(rejected) == 6 and all(f["failureMessage"] for f in rejected)
    problems = {f.key for f in pipeline.runtime("intake").files.problems("invoices")}
    assert problems == {k for k, r in reasons.items() if r and k.startswith("invoices/")}
    assert {f.key for f in pipeline.runtime("intake").files.problems("-")} == {"elsewhere/x.pdf"}


def test_intake_reads_nothing_from_s3_unless_a_route_forwards_user_metadata(
    deployment: Deployment, extend_sim: Any, pipeline_factory: Any
) -> None:
    # Given one route that forwards the objects' user metadata and two that do not
    routes = [{**r, "forwardUserMetadata": r["name"] == "documents"} for r in EXAMPLE_ROUTES]
    pipeline = pipeline_factory(routes=routes, maxWaitSeconds=1)
    s3_calls: list[str] = []
    intake_s3 = pipeline.runtime("intake").client("s3")
    intake_s3.meta.events.register("before-call.s3", lambda model, **_: s3_calls.append(model.name))
    s3 = deployment.session.client("s3")
    bucket = deployment.resources.drop_bucket
    put = {
        key: s3.put_object(Bucket=bucket, Key=key, Body=b"%PDF-1.7 test", Metadata={"customer": "acme"})
        for key in ("invoices/a.pdf", "packets/b.pdf", "documents/c.pdf")
    }

    # When intake takes the notifications in
    pipeline.intake.drain()

    # Then only the forwarding route's file was read (S3 names the version in each notification), every
    # item is keyed by the version S3 created, and only that file carries the metadata
    assert s3_calls == ["HeadObject"]
    files = {f["key"]: f for f in all_files(pipeline)}
    assert {k: f["versionId"] for k, f in files.items()} == {k: r["VersionId"] for k, r in put.items()}
    assert files["documents/c.pdf"]["userMetadata"] == {"customer": "acme"}
    assert "userMetadata" not in files["invoices/a.pdf"] and "userMetadata" not in files["packets/b.pdf"]

    # And Extend gets the forwarded metadata beside batchdrop's own ids
    time.sleep(1.1)
    pipeline.pump()
    inputs = {
        i["metadata"]["batchdrop"]["fileId"].rsplit("#", 1)[0].split("/", 1)[1]: i["metadata"]
        for b in sim_batches(extend_sim)
        for i in b["inputs"]
    }
    assert inputs["documents/c.pdf"]["customer"] == "acme"
    assert set(inputs["invoices/a.pdf"]) == {"batchdrop"}
