"""The DynamoDB tables, built from the same specs the sandbox uses (``batchdrop_core.tables``)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from batchdrop_core.tables import BATCHES, FILES, STATE, TableSpec


class Tables(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.files = self._build_table(FILES)
        self.batches = self._build_table(BATCHES)
        self.state = self._build_table(STATE)

    def _build_table(self, spec: TableSpec) -> dynamodb.Table:
        table = dynamodb.Table(
            self,
            spec.construct_id,
            partition_key=_string(spec.partition_key),
            sort_key=_string(spec.sort_key) if spec.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            removal_policy=RemovalPolicy.RETAIN,
        )
        for index in spec.indexes:
            table.add_global_secondary_index(
                index_name=index.name,
                partition_key=_string(index.partition_key),
                sort_key=_string(index.sort_key) if index.sort_key else None,
                projection_type=dynamodb.ProjectionType(index.projection_type),
                non_key_attributes=list(index.projection) if index.projection else None,
            )
        return table


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def index_arns(table: dynamodb.ITable, spec: TableSpec) -> list[str]:
    """The ARN of every index of ``table``, named one by one so no policy needs ``/index/*``."""
    return [f"{table.table_arn}/index/{index.name}" for index in spec.indexes]
