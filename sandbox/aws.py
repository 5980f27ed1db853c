"""The sandbox's AWS: moto server on loopback, and the resources of a deployment created in it.

Tables come from ``batchdrop_core.tables`` (the specs the stacks deploy); queue, bucket and notification
settings mirror ``stacks`` so a local run behaves like ``cdk deploy``.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import httpx

from batchdrop_core.config import Resources, Settings
from batchdrop_core.tables import ALL_TABLES
from sandbox.machine import process_cpu_seconds

REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}  # moto accepts any
STATUS_COUNTS_PATH = "/_sandbox/status-counts"  # served by sandbox.moto_server, not an AWS API


class MotoServer:
    """moto server on 127.0.0.1, in its own process so it does not share the handlers' interpreter lock."""

    def __init__(self, port: int = 0) -> None:
        self.port = port or _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> MotoServer:
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter running moto's server module
            [sys.executable, "-m", "sandbox.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            # Its own process group: Ctrl-C in a terminal (SIGINT to the whole foreground group) or a
            # group's SIGTERM must reach only its parent, which stops it last, after its clients.
            process_group=0,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"moto server exited with code {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not start on port {self.port} within {timeout:.0f}s")

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def kill(self) -> None:
        """End the server at once, for a forced exit that leaves no time for ``stop``."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()

    def cpu_seconds(self) -> float:
        """CPU seconds moto has used so far (its cost per file limits the sandbox's speed); NaN if stopped."""
        return process_cpu_seconds(self._process.pid) if self._process else float("nan")

    def status_counts(self, table_name: str) -> dict[str, int]:
        """A table's items by their ``status`` (``sandbox.moto_server.status_counts``)."""
        response = httpx.get(f"{self.url}{STATUS_COUNTS_PATH}", params={"table": table_name}, timeout=30)
        return response.raise_for_status().json()

    def environment(self) -> dict[str, str]:
        """Variables that point boto3 (and the AWS CLI) at this server."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }

    def use_in_this_process(self) -> None:
        os.environ.update(self.environment())
        os.environ.pop("AWS_PROFILE", None)


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when whatever started it dies, killed or not (strictly: the starting
    thread, so start it from a thread that lives as long as the server)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Deployment:
    """What ``provision`` created: the function-facing names plus the queues the local runtime polls."""

    resources: Resources
    arrivals_queue_url: str
    dlq_urls: dict[str, str] = field(default_factory=dict)
    session: Any = None

    def endpoints(self) -> dict[str, str]:
        return {
            "drop_bucket": self.resources.drop_bucket or "",
            "results_bucket": self.resources.results_bucket or "",
            "files_table": self.resources.files_table or "",
            "batches_table": self.resources.batches_table or "",
            "state_table": self.resources.state_table or "",
            "topic_arn": self.resources.topic_arn or "",
            "arrivals_queue_url": self.arrivals_queue_url,
            "flush_queue_url": self.resources.flush_queue_url or "",
            "results_queue_url": self.resources.results_queue_url or "",
            **{f"{name}_dlq_url": url for name, url in self.dlq_urls.items()},
        }


# Visibility timeouts here are short so a failed message comes back quickly in a local run; the stack
# uses 6x each function's timeout (see stacks/constants.py).
LOCAL_VISIBILITY_SECONDS = {"arrivals": 5, "flush": 5, "results": 10}
MAX_RECEIVE_COUNT = 5


def provision(
    settings: Settings,
    *,
    name_prefix: str = "batchdrop",
    api_key: str = "sk_sandbox_not_a_real_key",
    webhook_secret: str = "wss_sandbox_not_a_real_secret",
    session: Any = None,
    visibility_seconds: Mapping[str, int] | None = None,
) -> Deployment:
    """Create buckets, queues (+DLQs), tables, topic and secrets, wired like the stacks wire them.
    ``visibility_seconds`` overrides ``LOCAL_VISIBILITY_SECONDS`` by queue (benchmarks use the stack's)."""
    session = session or boto3.session.Session(region_name=REGION)
    visibility = {**LOCAL_VISIBILITY_SECONDS, **(visibility_seconds or {})}
    s3 = session.client("s3")
    sqs = session.client("sqs")
    ddb = session.client("dynamodb")

    drop_bucket = f"{name_prefix}-drop"
    results_bucket = f"{name_prefix}-results"
    for bucket in (drop_bucket, results_bucket):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    dlq_urls: dict[str, str] = {}

    def queue(name: str, fifo: bool = False) -> str:
        suffix = ".fifo" if fifo else ""
        attributes = {"MessageRetentionPeriod": str(14 * 24 * 3600)}
        if fifo:
            attributes["FifoQueue"] = "true"
        dlq_url = sqs.create_queue(QueueName=f"{name_prefix}-{name}-dlq{suffix}", Attributes=attributes)[
            "QueueUrl"
        ]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        dlq_urls[name] = dlq_url
        attributes = {
            "VisibilityTimeout": str(visibility[name]),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        }
        if fifo:
            attributes["FifoQueue"] = "true"
        return sqs.create_queue(QueueName=f"{name_prefix}-{name}{suffix}", Attributes=attributes)["QueueUrl"]

    arrivals_url = queue("arrivals")
    flush_url = queue("flush", fifo=True)
    results_url = queue("results")
    arrivals_arn = sqs.get_queue_attributes(QueueUrl=arrivals_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # One rule for the whole bucket, as the stack configures it: unrouted keys are REJECTED, not ignored.
    s3.put_bucket_notification_configuration(
        Bucket=drop_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {"Id": "arrivals", "QueueArn": arrivals_arn, "Events": ["s3:ObjectCreated:*"]}
            ]
        },
    )

    table_names = {}
    for spec in ALL_TABLES:
        name = f"{name_prefix}-{spec.construct_id.lower()}"
        ddb.create_table(**spec.create_table_kwargs(name))
        if spec.ttl_attribute:
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute}
            )
        table_names[spec.construct_id] = name

    topic_arn = session.client("sns").create_topic(Name=f"{name_prefix}-notifications")["TopicArn"]
    secrets = session.client("secretsmanager")
    api_key_arn = secrets.create_secret(Name=f"{name_prefix}/extend-api-key", SecretString=api_key)["ARN"]
    webhook_arn = secrets.create_secret(
        Name=f"{name_prefix}/extend-webhook-secret", SecretString=webhook_secret
    )["ARN"]
    resources = Resources(
        files_table=table_names["Files"],
        batches_table=table_names["Batches"],
        state_table=table_names["State"],
        drop_bucket=drop_bucket,
        results_bucket=results_bucket,
        flush_queue_url=flush_url,
        results_queue_url=results_url,
        topic_arn=topic_arn,
        api_key_secret=api_key_arn,
        webhook_secret=webhook_arn,
    )
    return Deployment(
        resources=resources, arrivals_queue_url=arrivals_url, dlq_urls=dlq_urls, session=session
    )


def subscribe_queue_to_topic(deployment: Deployment, queue_name: str) -> str:
    """A queue that receives every SNS message (how the sandbox shows notifications)."""
    session = deployment.session
    sqs = session.client("sqs")
    url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    session.client("sns").subscribe(
        TopicArn=deployment.resources.topic_arn,
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    return url


@dataclass(frozen=True)
class Notification:
    """One SNS message as a subscribed queue received it."""

    subject: str | None
    message: dict[str, Any]
    attributes: dict[str, str]


def drain_notifications(deployment: Deployment, queue_url: str) -> list[Notification]:
    """Every SNS message the subscribed queue holds (``subscribe_queue_to_topic``), deleted as read."""
    sqs = deployment.session.client("sqs")
    received: list[Notification] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for m in messages:
            envelope = json.loads(m["Body"])
            attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
            received.append(
                Notification(envelope.get("Subject"), json.loads(envelope["Message"]), attributes)
            )
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
    return received


def queue_depth(sqs: Any, url: str) -> int:
    """Messages in a queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
