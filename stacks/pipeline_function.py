"""One pipeline Lambda: its own role (no managed policies), log group, tracing and settings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from batchdrop_core.config import Resources
from stacks import constants
from stacks.constants import FunctionSpec
from stacks.nag import acknowledge


class PipelineFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        spec: FunctionSpec,
        *,
        code: lambda_.Code,
        common_env: Mapping[str, str],
        resources: Resources,
    ) -> None:
        super().__init__(scope, spec.construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=constants.LOG_RETENTION)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"batchdrop {spec.construct_id} function: only what its handler uses",
        )
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=constants.RUNTIME,
            architecture=constants.ARCHITECTURE,
            code=code,
            handler=spec.handler,
            timeout=spec.timeout,
            memory_size=spec.memory_mb,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            environment={**common_env, **resources.to_env()},
        )
        # Written out instead of AWSLambdaBasicExecutionRole, which allows every log group.
        self.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [self.log_group.log_group_arn])
        acknowledge(
            self.role,
            "IAM5[Resource::*]",
            "X-Ray tracing: PutTraceSegments and PutTelemetryRecords support no resource-level scoping.",
        )

    def allow(
        self, actions: Sequence[str], resources: Sequence[str], conditions: dict[str, Any] | None = None
    ) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(actions=list(actions), resources=list(resources), conditions=conditions)
        )
