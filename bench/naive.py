"""The naive design metric 1 compares with: every SQS-triggered invocation submits what it received. It is
fed the very same S3 notifications as batchdrop and driven by the same event-source emulation."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from batchdrop_core.s3events import parse_notification
from bench.harness import ESM_BATCH_SIZE, ESM_POLLERS, ESM_WINDOW_SECONDS
from sandbox.lambda_runtime import SqsEventSource


class NaiveSubmitter:
    """The naive design's handler: every SQS-triggered invocation submits what it received, one batch per
    route (routes never mix), split at 1,000. It counts and sizes those batches; it does not POST them,
    so Extend's behaviour cannot change what is counted."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.batches: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        by_route: Counter[str] = Counter()
        for record in event["Records"]:
            for created in parse_notification(record["body"]).objects:
                route = self.settings.route_for_key(created.key)
                if route is not None:
                    by_route[route.name] += 1
        with self._lock:
            for route, count in by_route.items():
                for start in range(0, count, ESM_BATCH_SIZE):
                    self.batches.append((route, min(ESM_BATCH_SIZE, count - start)))
        return {"batchItemFailures": []}


def add_naive_queue(deployment: Any) -> str:
    """A second queue that S3 notifies of every object created in the drop bucket (moto delivers each
    notification to both queues, so both designs see the same arrivals at the same moment)."""
    session = deployment.session
    sqs, s3 = session.client("sqs"), session.client("s3")
    url = sqs.create_queue(QueueName="bench-naive-arrivals", Attributes={"VisibilityTimeout": "60"})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bucket = deployment.resources.drop_bucket
    config = s3.get_bucket_notification_configuration(Bucket=bucket)
    config.pop("ResponseMetadata", None)
    config.setdefault("QueueConfigurations", []).append(
        {"Id": "naive", "QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}
    )
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=config)
    return url


def start_naive(deployment: Any, settings: Any) -> tuple[NaiveSubmitter, SqsEventSource, str]:
    """The naive design running beside the sandbox, with the stack's event source settings for intake: its
    handler, its event source (polling) and its queue's URL."""
    url = add_naive_queue(deployment)
    naive = NaiveSubmitter(settings)
    source = SqsEventSource(
        deployment.session.client("sqs"),
        url,
        naive,
        function_name="bench-naive-submitter",
        batch_size=ESM_BATCH_SIZE,
        window=ESM_WINDOW_SECONDS,
    )
    source.start(pollers=ESM_POLLERS)
    return naive, source, url
