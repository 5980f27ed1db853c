"""EventBridge schedules that drive the reconciler: a frequent flush sweep and a slower reconciliation."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks import constants


class Schedules(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, reconciler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.sweep = self._build_schedule(
            "Sweep",
            "Requests flushes for routes whose oldest queued file waited maxWaitSeconds",
            constants.SWEEP_RATE,
            constants.SWEEP_INPUT,
            reconciler,
        )
        self.reconcile = self._build_schedule(
            "Reconcile",
            "Polls batches without a webhook, flags stuck files, publishes pipeline gauges",
            constants.RECONCILE_RATE,
            constants.RECONCILE_INPUT,
            reconciler,
        )

    def _build_schedule(
        self,
        construct_id: str,
        description: str,
        rate: Duration,
        task_input: dict,
        reconciler: lambda_.IFunction,
    ) -> events.Rule:
        # A missed tick is harmless (the next one does the same work), so no retries or target DLQ.
        return events.Rule(
            self,
            construct_id,
            description=description,
            schedule=events.Schedule.rate(rate),
            targets=[
                targets.LambdaFunction(
                    reconciler, event=events.RuleTargetInput.from_object(task_input), retry_attempts=0
                )
            ],
        )
