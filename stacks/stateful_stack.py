"""Everything whose loss loses data or configuration: buckets, tables, the arrivals queue, topic, secrets.

It never refers to the stateless stack, so the stateless stack can be destroyed and redeployed freely.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from batchdrop_core.config import Settings
from stacks.alerts import AlertTopic
from stacks.ingress import Ingress
from stacks.secrets import ExtendSecrets
from stacks.storage import Storage
from stacks.tables import Tables


class StatefulStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.storage = Storage(self, "Storage")
        self.tables = Tables(self, "Tables")
        self.ingress = Ingress(self, "Ingress", bucket=self.storage.drop_bucket)
        self.alerts = AlertTopic(self, "Alerts", alarm_email=settings.alarm_email)
        self.secrets = ExtendSecrets(self, "Secrets")
        self._export_bucket_arns()
        self._build_outputs()

    def _export_bucket_arns(self) -> None:
        # Named exports give the stateless stack's object-level IAM resources (``<arn>/prefix*``) a stable
        # text, so their cdk-nag acknowledgements can name them exactly.
        self.drop_bucket_arn_export = f"{self.stack_name}-DropBucketArn"
        self.results_bucket_arn_export = f"{self.stack_name}-ResultsBucketArn"
        self.drop_bucket_arn = self.export_value(
            self.storage.drop_bucket.bucket_arn, name=self.drop_bucket_arn_export
        )
        self.results_bucket_arn = self.export_value(
            self.storage.results_bucket.bucket_arn, name=self.results_bucket_arn_export
        )

    def _build_outputs(self) -> None:
        outputs = {
            "DropBucketName": self.storage.drop_bucket.bucket_name,
            "ResultsBucketName": self.storage.results_bucket.bucket_name,
            "FilesTableName": self.tables.files.table_name,
            "BatchesTableName": self.tables.batches.table_name,
            "StateTableName": self.tables.state.table_name,
            "ArrivalsQueueUrl": self.ingress.arrivals.queue.queue_url,
            "ArrivalsDlqUrl": self.ingress.arrivals.dlq.queue_url,
            "TopicArn": self.alerts.topic.topic_arn,
            "ApiKeySecretArn": self.secrets.api_key.secret_arn,
            "WebhookSecretArn": self.secrets.webhook_signing_secret.secret_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
