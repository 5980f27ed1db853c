"""The SNS topic for batch notifications and operator alerts."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

_CLOUDWATCH = iam.ServicePrincipal("cloudwatch.amazonaws.com")


class AlertTopic(Construct):
    """A KMS-encrypted, SSL-only topic that CloudWatch alarms and the functions publish to.

    A customer-managed key, because the AWS-managed ``alias/aws/sns`` key policy cannot be changed to let
    CloudWatch alarms publish, and alarms are half of what this topic is for.
    """

    def __init__(self, scope: Construct, construct_id: str, *, alarm_email: str | None) -> None:
        super().__init__(scope, construct_id)
        account = Stack.of(self).account
        self.key = self._build_key(account)
        self.topic = sns.Topic(self, "Topic", master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarms",
                principals=[_CLOUDWATCH],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))

    def _build_key(self, account: str) -> kms.Key:
        key = kms.Key(self, "Key", description="Encrypts the batchdrop alert topic", enable_key_rotation=True)
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[_CLOUDWATCH],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": account}},
            )
        )
        return key
