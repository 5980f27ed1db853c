"""An SQS queue with its dead-letter queue, both encrypted, SSL-only and keeping messages 14 days."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks import constants


class QueueWithDlq(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, visibility_timeout: Duration, fifo: bool = False
    ):
        super().__init__(scope, construct_id)
        # A DLQ message's age counts from its first enqueue, so the DLQ keeps messages as long as SQS allows.
        self.dlq = sqs.Queue(self, "Dlq", fifo=fifo or None, **_secure_queue_props())
        self.queue = sqs.Queue(
            self,
            "Queue",
            fifo=fifo or None,
            content_based_deduplication=fifo or None,
            visibility_timeout=visibility_timeout,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=constants.MAX_RECEIVE_COUNT, queue=self.dlq
            ),
            **_secure_queue_props(),
        )


def _secure_queue_props() -> dict:
    # SSE-SQS rather than the AWS-managed aws/sqs key: S3 can publish to it without key-policy changes.
    return {
        "encryption": sqs.QueueEncryption.SQS_MANAGED,
        "enforce_ssl": True,
        "retention_period": constants.RETENTION,
    }
