"""The sandbox's moto patches (sandbox.moto_speed) answer exactly as moto itself does.

Each case runs the same calls against moto's in-process backend twice: with the patches, and with moto as
shipped (``moto_as_shipped``), and compares the answers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sandbox.moto_speed import moto_as_shipped

TABLE = "files"


def make_files_table(client: Any, name: str = TABLE) -> None:
    """A Files-like table (GSIs with ALL and KEYS_ONLY projections, one without sort key, a numeric one)
    holding 60 items over 20 partitions; the sparse index holds 40 of them, with equal sort keys (ties)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": kind}
            for name, kind in [
                ("fileKey", "S"),
                ("versionId", "S"),
                ("queuedShard", "S"),
                ("queuedAt", "S"),
                ("submissionId", "S"),
                ("priority", "N"),
            ]
        ],
        KeySchema=[
            {"AttributeName": "fileKey", "KeyType": "HASH"},
            {"AttributeName": "versionId", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "queued",
                "KeySchema": [
                    {"AttributeName": "queuedShard", "KeyType": "HASH"},
                    {"AttributeName": "queuedAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "queuedKeys",
                "KeySchema": [
                    {"AttributeName": "queuedShard", "KeyType": "HASH"},
                    {"AttributeName": "queuedAt", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
            {
                "IndexName": "bySubmission",
                "KeySchema": [{"AttributeName": "submissionId", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "byPriority",
                "KeySchema": [{"AttributeName": "priority", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
    )
    for i in range(60):
        item: dict[str, Any] = {
            "fileKey": {"S": f"bucket/doc-{i % 20:02d}.pdf"},
            "versionId": {"S": f"v{i:03d}"},
            "status": {"S": "QUEUED" if i % 3 else "PROCESSED"},
            "history": {"L": [{"M": {"at": {"S": f"2026-01-01T00:00:{i % 60:02d}Z"}}}]},
            "size": {"N": str(i * 10)},
        }
        if i % 3:  # sparse index: only QUEUED files; equal sort keys on purpose (ties)
            item["queuedShard"] = {"S": f"invoices#{i % 4}"}
            item["queuedAt"] = {"S": f"2026-01-01T00:00:{i // 8:02d}Z"}
        if i % 5 == 0:
            item["submissionId"] = {"S": f"sub_{i % 2}"}
        if i % 7 == 0:
            item["priority"] = {"N": "1.0" if i % 14 else "1"}  # equal as numbers, not as strings
        client.put_item(TableName=name, Item=item)


@pytest.fixture
def ddb(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # in-process moto, not a server
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_files_table(client)
        yield client


def same_answers(call: Callable[[], Any]) -> Any:
    ours = call()
    with moto_as_shipped():
        shipped = call()
    assert ours == shipped
    return ours


def pages(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of a Query, each without its request metadata."""
    out = []
    while True:
        page = client.query(TableName=TABLE, **kwargs)
        page.pop("ResponseMetadata")
        out.append(page)
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


SHARD = {":s": {"S": "invoices#1"}}


@pytest.mark.parametrize(
    "query",
    [
        {
            "KeyConditionExpression": "fileKey = :k",
            "ExpressionAttributeValues": {":k": {"S": "bucket/doc-03.pdf"}},
        },
        {
            "KeyConditionExpression": "fileKey = :k AND versionId > :v",
            "ExpressionAttributeValues": {":k": {"S": "bucket/doc-03.pdf"}, ":v": {"S": "v010"}},
            "ScanIndexForward": False,
            "Limit": 1,
        },
        {"KeyConditionExpression": "fileKey = :k", "ExpressionAttributeValues": {":k": {"S": "bucket/none"}}},
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": SHARD,
        },
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": SHARD,
            "Limit": 2,
        },
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": SHARD,
            "Limit": 3,
            "ScanIndexForward": False,
        },
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s AND queuedAt < :t",
            "ExpressionAttributeValues": {**SHARD, ":t": {"S": "2026-01-01T00:00:04Z"}},
            "Limit": 2,
        },
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": SHARD,
            "Select": "COUNT",
        },
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": SHARD,
            "Limit": 1,
            "ProjectionExpression": "queuedAt",
        },
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": {**SHARD, ":big": {"N": "100"}},
            "FilterExpression": "#z > :big",
            "ExpressionAttributeNames": {"#z": "size"},
        },
        {
            "IndexName": "queuedKeys",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": SHARD,
            "Limit": 4,
        },
        {
            "IndexName": "bySubmission",
            "KeyConditionExpression": "submissionId = :u",
            "ExpressionAttributeValues": {":u": {"S": "sub_0"}},
            "Limit": 2,
        },
        {
            "IndexName": "byPriority",
            "KeyConditionExpression": "priority = :p",
            "ExpressionAttributeValues": {":p": {"N": "1"}},
        },
        {
            "IndexName": "queued",
            "KeyConditionExpression": "queuedShard = :s",
            "ExpressionAttributeValues": {":s": {"S": "none#0"}},
        },
    ],
)
def test_query_answers_as_moto_does(ddb: Any, query: dict[str, Any]) -> None:
    same_answers(lambda: pages(ddb, **dict(query)))


def test_query_sees_writes_between_queries(ddb: Any) -> None:
    query = {
        "IndexName": "queued",
        "KeyConditionExpression": "queuedShard = :s",
        "ExpressionAttributeValues": SHARD,
    }
    before = same_answers(lambda: pages(ddb, **query))
    first = before[0]["Items"][0]
    ddb.update_item(
        TableName=TABLE,
        Key={"fileKey": first["fileKey"], "versionId": first["versionId"]},
        UpdateExpression="REMOVE queuedShard, queuedAt SET #s = :x",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":x": {"S": "SUBMITTING"}},
    )
    after = same_answers(lambda: pages(ddb, **query))
    assert after[0]["Count"] == before[0]["Count"] - 1


def test_status_counts_agree_with_a_scan(moto_server: Any, deployment: Any) -> None:
    """The sandbox server's status counter (what the demo's progress bars read) counts what a Scan sees."""
    client = deployment.session.client("dynamodb")
    table = deployment.resources.files_table
    statuses = ["QUEUED"] * 5 + ["PROCESSED"] * 3 + ["REJECTED"]
    for i, status in enumerate(statuses):
        client.put_item(
            TableName=table,
            Item={"fileKey": {"S": f"b/k{i % 4}"}, "versionId": {"S": f"v{i}"}, "status": {"S": status}},
        )
    client.put_item(TableName=table, Item={"fileKey": {"S": "b/no-status"}, "versionId": {"S": "v"}})
    scanned: dict[str, int] = {}
    for item in client.scan(TableName=table)["Items"]:
        if "status" in item:
            scanned[item["status"]["S"]] = scanned.get(item["status"]["S"], 0) + 1
    assert moto_server.status_counts(table) == scanned == {"QUEUED": 5, "PROCESSED": 3, "REJECTED": 1}
    with pytest.raises(Exception, match="404"):
        moto_server.status_counts("no-such-table")


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def _deletes(sqs: Any) -> list[Any]:
    """Deletes by current, old, repeated, foreign and made-up receipt handles; what each answered."""
    a = sqs.create_queue(QueueName="a")["QueueUrl"]
    b = sqs.create_queue(QueueName="b")["QueueUrl"]
    for i in range(6):
        sqs.send_message(QueueUrl=a, MessageBody=f"m{i}")
    sqs.send_message(QueueUrl=b, MessageBody="other")
    first = sqs.receive_message(QueueUrl=a, MaxNumberOfMessages=3, VisibilityTimeout=0)["Messages"]
    again = sqs.receive_message(QueueUrl=a, MaxNumberOfMessages=6, VisibilityTimeout=30)["Messages"]
    foreign = sqs.receive_message(QueueUrl=b)["Messages"][0]["ReceiptHandle"]
    outcomes: list[Any] = []
    handles = [
        first[0]["ReceiptHandle"],
        again[1]["ReceiptHandle"],
        again[1]["ReceiptHandle"],
        foreign,
        "bogus",
    ]
    for handle in handles:
        try:
            sqs.delete_message(QueueUrl=a, ReceiptHandle=handle)
            outcomes.append("deleted")
        except sqs.exceptions.ClientError as error:
            outcomes.append(error.response["Error"]["Code"])
    batch = sqs.delete_message_batch(
        QueueUrl=a, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(again)]
    )
    outcomes.append(sorted(entry["Id"] for entry in batch.get("Successful", [])))
    outcomes.append(sorted(entry["Id"] for entry in batch.get("Failed", [])))
    attributes = sqs.get_queue_attributes(QueueUrl=a, AttributeNames=["All"])["Attributes"]
    outcomes.append(
        (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"])
    )
    outcomes.append(
        sorted(m["Body"] for m in sqs.receive_message(QueueUrl=a, MaxNumberOfMessages=10).get("Messages", []))
    )
    return outcomes


def test_sqs_deletes_answer_as_moto_does(sqs: Any) -> None:
    ours = _deletes(sqs)
    with moto_as_shipped(), mock_aws():
        shipped = _deletes(boto3.client("sqs", region_name="us-east-1"))
    assert ours == shipped
    assert ours[:5] == ["deleted", "deleted", "deleted", "ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid"]


def test_fifo_long_poll_waits_without_spinning_while_the_only_group_is_busy(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="flush.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "30"}
    )["QueueUrl"]

    def send(group: str, body: str) -> None:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=body)

    for i in range(300):
        send("invoices", f"i{i}")
    first = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert [m["Body"] for m in first] == ["i0"]
    # i1..i299 are visible, but i0 of their group is in flight: nothing can be delivered. moto as shipped
    # re-scans the queue in a loop for the whole second (~1 s of CPU); a wait costs next to nothing.
    cpu = time.thread_time()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []) == []
    assert time.thread_time() - cpu < 0.1

    # Another group's message ends the wait; the busy group still delivers nothing.
    threading.Timer(0.3, send, args=("documents", "d1")).start()
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["d1"]
    # Once i0 is deleted, the group goes on, in order.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=3)["Messages"]
    assert [m["Body"] for m in got] == ["i1", "i2", "i3"]


def _concurrent_fifo_receives(sqs: Any, rounds: int) -> list[list[str]]:
    """Per round: two long polls wait on a FIFO queue, two messages of one group arrive; what they got."""
    outcomes = []
    for r in range(rounds):
        url = sqs.create_queue(
            QueueName=f"race-{r}.fifo", Attributes={"FifoQueue": "true", "VisibilityTimeout": "60"}
        )["QueueUrl"]
        got: list[str] = []

        def poll(url: str = url, got: list[str] = got) -> None:
            messages = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=2).get("Messages", [])
            got.extend(m["Body"] for m in messages)  # kept in flight: the group stays busy

        pollers = [threading.Thread(target=poll) for _ in range(2)]
        for poller in pollers:
            poller.start()
        time.sleep(0.1)
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(i),
                    "MessageBody": f"{r}-{i}",
                    "MessageGroupId": "g",
                    "MessageDeduplicationId": f"{r}-{i}",
                }
                for i in range(2)
            ],
        )
        for poller in pollers:
            poller.join()
        outcomes.append(sorted(got))
    return outcomes


def test_concurrent_long_polls_on_a_fifo_queue_take_one_group_message_at_a_time(sqs: Any) -> None:
    # While the group's first message is in flight, its second is delivered to no one; moto as shipped
    # often hands it to the other waiting poll.
    assert _concurrent_fifo_receives(sqs, 5) == [[f"{r}-0"] for r in range(5)]


@pytest.mark.parametrize(
    "scan",
    [
        {},
        {"Limit": 7},
        {"ProjectionExpression": "#s", "ExpressionAttributeNames": {"#s": "status"}},
        {
            "Select": "COUNT",
            "FilterExpression": "#s = :q",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":q": {"S": "QUEUED"}},
        },
        {"IndexName": "queuedKeys", "Limit": 5},
    ],
)
def test_scan_answers_as_moto_does(ddb: Any, scan: dict[str, Any]) -> None:
    def pages() -> list[dict[str, Any]]:
        out, kwargs = [], dict(scan)
        while True:
            page = ddb.scan(TableName=TABLE, **kwargs)
            page.pop("ResponseMetadata")
            out.append(page)
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    same_answers(pages)


def _updates(client: Any, table: str) -> list[Any]:
    """Updates as the pipeline makes them (conditional status moves, appended history, removed index keys),
    with every kind of ReturnValues; what each answered, then the whole table."""
    key = {"fileKey": {"S": "bucket/doc-01.pdf"}, "versionId": {"S": "v001"}}
    answers: list[Any] = []
    for return_values in ("NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"):
        answer = client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #s = :s, history = list_append(history, :h) REMOVE queuedShard",
            ConditionExpression="attribute_exists(fileKey)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": return_values},
                ":h": {"L": [{"M": {"s": {"S": return_values}}}]},
            },
            ReturnValues=return_values,
        )
        answer.pop("ResponseMetadata")
        answers.append(answer)
    try:
        client.update_item(
            TableName=table,
            Key=key,
            UpdateExpression="SET #s = :s",
            ConditionExpression="#s = :other",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "X"}, ":other": {"S": "QUEUED"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as failed:
        answers.append(failed.response.get("Item"))
    new_key = {"fileKey": {"S": "bucket/new.pdf"}, "versionId": {"S": "v"}}
    answer = client.update_item(
        TableName=table,
        Key=new_key,
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    answer.pop("ResponseMetadata")
    answers.append(answer)
    answers.append(
        sorted(client.scan(TableName=table)["Items"], key=lambda i: (i["fileKey"]["S"], i["versionId"]["S"]))
    )
    return json.loads(json.dumps(answers).replace(json.dumps(table), json.dumps("TABLE")))


def test_update_item_answers_as_moto_does(ddb: Any) -> None:
    ours = _updates(ddb, TABLE)
    with moto_as_shipped():
        make_files_table(ddb, "files-shipped")
        shipped = _updates(ddb, "files-shipped")
    assert ours == shipped


def test_read_items_are_not_changed_by_what_reads_them(ddb: Any) -> None:
    """Without the copies, a Query or Scan hands moto's own items to projection and serialization."""
    before = sorted(
        ddb.scan(TableName=TABLE)["Items"], key=lambda i: (i["fileKey"]["S"], i["versionId"]["S"])
    )
    ddb.query(
        TableName=TABLE,
        IndexName="queuedKeys",
        KeyConditionExpression="queuedShard = :s",
        ExpressionAttributeValues=SHARD,
    )
    ddb.query(
        TableName=TABLE,
        IndexName="queued",
        KeyConditionExpression="queuedShard = :s",
        ExpressionAttributeValues=SHARD,
        ProjectionExpression="queuedAt",
    )
    ddb.scan(TableName=TABLE, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"})
    ddb.scan(TableName=TABLE, IndexName="queuedKeys")
    after = sorted(ddb.scan(TableName=TABLE)["Items"], key=lambda i: (i["fileKey"]["S"], i["versionId"]["S"]))
    assert after == before
