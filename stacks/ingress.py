"""Durable ingress: the arrivals queue that receives the drop bucket's ObjectCreated notifications.

It lives in the stateful stack next to the bucket. A bucket notification to a queue in another stack makes
the two stacks depend on each other (the bucket's notification config needs the queue ARN, the queue
policy needs the bucket ARN), and the queue holds not-yet-recorded arrivals, which is data too: a redeploy
of the stateless stack must not drop it.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from stacks import constants
from stacks.nag import acknowledge
from stacks.queues import QueueWithDlq

# The singleton Lambda behind CDK's Custom::S3BucketNotifications resource.
_NOTIFICATIONS_HANDLER_PREFIX = "BucketNotificationsHandler"


class Ingress(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        self.arrivals = QueueWithDlq(
            self,
            "Arrivals",
            visibility_timeout=constants.visibility_timeout(
                constants.INTAKE, constants.INTAKE_BATCHING_WINDOW
            ),
        )
        self._build_notifications(bucket)
        self._acknowledge_notifications_handler()

    def _build_notifications(self, bucket: s3.IBucket) -> None:
        # The whole bucket, not one rule per route: a file dropped outside every route is recorded as
        # REJECTED (NO_ROUTE) where its owner can see it, instead of silently never being processed.
        bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.SqsDestination(self.arrivals.queue))

    def _acknowledge_notifications_handler(self) -> None:
        stack = Stack.of(self)
        handler = next(c for c in stack.node.children if c.node.id.startswith(_NOTIFICATIONS_HANDLER_PREFIX))
        acknowledge(
            handler,
            "IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's bucket-notifications custom resource handler; it only writes its own logs.",
        )
