"""What a file costs in DynamoDB: its item stays under 1 KB and its life is six write units.

The writes are the Files store's own, against moto server; the units are worked out by the benchmark's
meter (bench/writeunits.py) from DynamoDB's billing rules, which this also pins.
"""

from __future__ import annotations

from typing import Any

import pytest

from batchdrop_core.tables import FILES
from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking import (
    MAX_HISTORY_ENTRIES,
    SUBMISSION_NOT_SENT,
    FileStatus,
    FileStore,
    TrackedFile,
)
from bench.request_counter import RequestCounter
from bench.writeunits import WriteUnitMeter, apply_update, item_size
from sandbox.aws import Deployment


@pytest.fixture
def metered(deployment: Deployment) -> tuple[FileStore, RequestCounter]:
    counter = RequestCounter()
    client = deployment.session.client("dynamodb")
    counter.hook(client, client)
    counter.name(client, "test")
    return FileStore(client, deployment.resources.files_table), counter


def new_file(key: str, route: str = "invoices") -> TrackedFile:
    at = now_iso()
    return TrackedFile(
        bucket="batchdrop-drop-bucket-of-a-real-account",
        key=key,
        version_id="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd9a",
        status=FileStatus.QUEUED,
        route=route,
        size=187_345,
        etag="9b2cf535f27731c974343645a3985328",
        arrived_at=at,
        queued_at=at,
    )


def units(counter: RequestCounter) -> int:
    return sum(counter.write_units.units.values())


def test_a_processed_file_costs_six_write_units_and_stays_under_1_kb(metered: Any) -> None:
    files, counter = metered
    key = "invoices/2026/acme-corporation/INV-2026-000123 final signed.pdf"

    # Given a file taken in by intake: the item and its entry in the queued index
    assert files.add(new_file(key))
    assert units(counter) == 2

    # When the submitter claims it: the item, its queued entry out, its bySubmission entry in
    (entry,) = files.oldest_queued("invoices", 10)
    (claimed,) = files.claim([entry], "sub_1764631625123a1b2c3d4e5f6")
    assert claimed.status == FileStatus.SUBMITTED and claimed.attempts == 1
    assert units(counter) == 5

    # And its outcome is recorded: the item alone (the indexes hold keys only)
    assert files.record_outcome(
        claimed,
        "sub_1764631625123a1b2c3d4e5f6",
        status=FileStatus.PROCESSED,
        run_id="exr_Xj8mK2pQ9rT4vW7yZ1aB3c",
        batch_id="bpr_Xj8mK2pQ9rT4vW7yZ1aB3c",
        result_key=f"results/{key}/3HL4kqtJlcpXroDTDmjVBH40Nrjfkd9a.json",
        result_summary={"fieldCount": 14},
    )

    # Then the file cost six units in all, and its item never reached 1 KB
    assert units(counter) == 6
    assert max(counter.write_units.item_sizes["files"]) < 1024
    stored = files.get(claimed.bucket, claimed.key, claimed.version_id)
    assert stored is not None and stored.status == FileStatus.PROCESSED


def test_a_submission_that_never_reached_extend_gives_the_attempt_back_and_the_item_stops_growing(
    metered: Any,
) -> None:
    # Given a claimed file whose submission is abandoned before the POST, many times over (a long outage)
    files, counter = metered
    files.add(new_file("invoices/a.pdf"))
    sizes = []
    for attempt in range(MAX_HISTORY_ENTRIES + 10):
        (entry,) = files.oldest_queued("invoices", 10)
        (claimed,) = files.claim([entry], f"sub_{attempt:02d}")
        assert files.release([claimed], f"sub_{attempt:02d}") == 1
        sizes.append(counter.write_units.item_sizes["files"][-1])

    # Then the file is back in its old place with no attempt used; its history names each submission
    # that held it, up to its cap, and then the item stops growing
    back = files.get("batchdrop-drop-bucket-of-a-real-account", "invoices/a.pdf", claimed.version_id)
    assert back is not None and (back.status, back.attempts) == (FileStatus.QUEUED, 0)
    assert back.queued_at == claimed.queued_at
    assert [h["submissionId"] for h in back.history] == [f"sub_{i:02d}" for i in range(MAX_HISTORY_ENTRIES)]
    assert {h["reason"] for h in back.history} == {SUBMISSION_NOT_SENT}
    assert len(set(sizes[MAX_HISTORY_ENTRIES - 1 :])) == 1


def test_a_requeued_attempt_is_kept_in_the_history(metered: Any) -> None:
    files, _counter = metered
    files.add(new_file("invoices/b.pdf"))
    (entry,) = files.oldest_queued("invoices", 10)
    (claimed,) = files.claim([entry], "sub_first")

    assert files.requeue(claimed, "sub_first", "INTERNAL_ERROR", "try again", run_id="exr_1")

    again = files.get(claimed.bucket, claimed.key, claimed.version_id)
    assert again is not None and again.status == FileStatus.QUEUED and again.attempts == 1
    assert again.history == [
        {"at": again.queued_at, "status": "QUEUED", "submissionId": "sub_first", "runId": "exr_1",
         "reason": "INTERNAL_ERROR"}
    ]  # fmt: skip


def test_the_meter_follows_dynamodb_billing_rules() -> None:
    meter = WriteUnitMeter()
    key = {"fileKey": {"S": "b/k"}, "versionId": {"S": "v"}}
    big = {"S": "x" * 1500}
    # A put of a 1.5 KB item that enters the queued index (keys-only entry): 2 + 1
    meter.record("t", "PutItem", {"TableName": "p-files", "Item": {**key, "blob": big,
                 "queuedShard": {"S": "r#0"}, "queuedAt": {"S": "2026"}}}, {})  # fmt: skip
    assert meter.units[("t", "files")] == 3
    # A failed conditional write is charged the item's size
    meter.record("t", "UpdateItem", {"TableName": "p-files", "Key": key},
                 {"Error": {"Code": "ConditionalCheckFailedException"}})  # fmt: skip
    assert meter.units[("t", "files")] == 5
    # A write that changes an index key: delete + put; the item is billed at its larger image
    params = {
        "TableName": "p-files",
        "Key": key,
        "UpdateExpression": "SET #queuedShard = :queuedShard REMOVE #blob",
        "ExpressionAttributeNames": {"#queuedShard": "queuedShard", "#blob": "blob"},
        "ExpressionAttributeValues": {":queuedShard": {"S": "r#1"}},
    }
    meter.record("t", "UpdateItem", params, {})
    assert meter.units[("t", "files")] == 5 + 2 + 2
    assert item_size(apply_update({**key, "blob": big}, params)) < 100
    assert {i.name for i in FILES.indexes} == {"queued", "bySubmission", "problems"}


def test_the_benchmarks_request_counter_sees_every_client_a_runtime_makes(deployment: Deployment) -> None:
    # The webhook's enqueue asks for the fail-fast client (quick=True); a counting hook that dropped the
    # option made every webhook fail in the benchmark's pipeline run.
    from batchdrop_core.runtime import Runtime
    from bench.request_counter import count_runtime_requests
    from tests.helpers import make_settings

    counter = RequestCounter()
    rt = Runtime(
        make_settings("http://127.0.0.1:9").to_run_settings(), deployment.resources, deployment.session
    )
    with count_runtime_requests(counter):
        quick, normal = rt.client("sqs", quick=True), rt.client("sqs")
        counter.name(rt, "runtime")
        quick.get_queue_url(QueueName=deployment.resources.results_queue_url.rsplit("/", 1)[-1])
        normal.get_queue_url(QueueName=deployment.resources.results_queue_url.rsplit("/", 1)[-1])
    assert quick is not normal
    assert sum(counter.by_service("runtime").values()) == 2
