"""The S3 buckets: where users drop documents, where results land, and their access logs."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks import constants
from stacks.nag import acknowledge, skip_checkov


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.access_logs_bucket = self._build_access_logs_bucket()
        self.drop_bucket = self._build_data_bucket("DropBucket", "drop/")
        self.results_bucket = self._build_data_bucket("ResultsBucket", "results/")

    def _build_access_logs_bucket(self) -> s3.Bucket:
        bucket = s3.Bucket(
            self,
            "AccessLogsBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,  # S3 server access logging cannot write to SSE-KMS
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,  # a log overwritten or deleted is still there (checkov CKV_AWS_21)
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=constants.ACCESS_LOGS_EXPIRATION,
                    noncurrent_version_expiration=constants.ACCESS_LOGS_NONCURRENT_EXPIRATION,
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            bucket,
            "S1",
            "This is the server access log bucket; logging its own access would log the log deliveries.",
        )
        skip_checkov(
            bucket,
            "CKV_AWS_18",
            "This is the server access log bucket; logging its own access would log the log deliveries.",
        )
        return bucket

    def _build_data_bucket(self, construct_id: str, log_prefix: str) -> s3.Bucket:
        # Versioned so every write is its own object version: one Files item and one S3 event per write.
        return s3.Bucket(
            self,
            construct_id,
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix=log_prefix,
            removal_policy=RemovalPolicy.RETAIN,
        )
