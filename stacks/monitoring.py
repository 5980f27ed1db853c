"""Alarms to the alert topic and one dashboard. Custom metrics come from ``batchdrop_core.observability``."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from batchdrop_core.config import Settings
from batchdrop_core.observability import METRICS_NAMESPACE, MetricName
from stacks import constants
from stacks.pipeline_function import PipelineFunction
from stacks.queues import QueueWithDlq

_GT = cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD


def custom_metric(
    service: str, name: str, statistic: str = "Sum", period: Duration = constants.ALARM_PERIOD
) -> cloudwatch.Metric:
    """A Powertools EMF metric: namespace Batchdrop, the single dimension service=<the deployment's>."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic=statistic,
        period=period,
    )


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        queues: Mapping[str, QueueWithDlq],
        functions: Mapping[str, PipelineFunction],
        topic: sns.ITopic,
        settings: Settings,
        webhook_stage: apigateway.Stage,
        service: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self._service = service
        self._action = actions.SnsAction(topic)
        self.alarms: list[cloudwatch.Alarm] = []
        self._build_dlq_alarms(queues)
        self._build_pipeline_alarms(settings)
        self._build_function_alarms(functions)
        self._build_webhook_api_alarms(webhook_stage)
        self.dashboard = self._build_dashboard(queues, functions, webhook_stage)

    def _build_dlq_alarms(self, queues: Mapping[str, QueueWithDlq]) -> None:
        for name, pair in queues.items():
            self._alarm(
                f"{name}DlqNotEmpty",
                f"Messages in the {name} DLQ: a message failed {constants.MAX_RECEIVE_COUNT} times "
                "(inspect it, fix the cause, then redrive with `batchdrop` or StartMessageMoveTask)",
                pair.dlq.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=Duration.minutes(1)
                ),
                threshold=0,
            )

    def _build_pipeline_alarms(self, settings: Settings) -> None:
        sla_seconds = settings.file_sla_minutes * 60
        # Half the SLA spent before even being submitted: the SLA will be missed unless someone acts.
        self._alarm(
            "OldestQueuedFileTooOld",
            f"A file has waited more than {sla_seconds // 2} s (half the file SLA) to be submitted to Extend "
            "(is a route blocked, or is Extend throttling?)",
            self._metric(MetricName.OLDEST_QUEUED_AGE, "Maximum"),
            threshold=sla_seconds // 2,
        )
        self._alarm(
            "OverdueBatches",
            f"Batches without an outcome {settings.webhook_grace_minutes} min after a webhook was due",
            self._metric(MetricName.OVERDUE_BATCHES, "Maximum"),
            threshold=0,
        )
        self._alarm(
            "StuckFiles",
            f"Files not in a terminal state after the file SLA ({settings.file_sla_minutes} min)",
            self._metric(MetricName.STUCK_FILES, "Maximum"),
            threshold=0,
        )
        self._alarm(
            "WebhooksRejected",
            f"More than {constants.WEBHOOKS_REJECTED_THRESHOLD} webhook requests rejected (bad signature or "
            "stale timestamp) in 5 minutes: a wrong signing secret, or someone probing the endpoint",
            self._metric(MetricName.WEBHOOKS_REJECTED),
            threshold=constants.WEBHOOKS_REJECTED_THRESHOLD,
        )
        self._alarm(
            "LateDuplicateBatches",
            "A batch of a submission batchdrop had abandoned (an ambiguous POST not found at Extend) "
            "turned up later: Extend processed those files twice. Results are kept, each file recorded "
            "once; see the batch.duplicate alert",
            self._metric(MetricName.LATE_DUPLICATE_BATCHES),
            threshold=0,
        )

    def _build_function_alarms(self, functions: Mapping[str, PipelineFunction]) -> None:
        # Handlers report per-record failures without raising; an error here is a crash or a timeout.
        for name, fn in functions.items():
            self._alarm(
                f"{name}Errors",
                f"The {name} function failed (unhandled error or timeout); see its log group",
                fn.function.metric_errors(statistic="Sum", period=constants.ALARM_PERIOD),
                threshold=0,
            )

    def _build_webhook_api_alarms(self, stage: apigateway.Stage) -> None:
        # The webhook function answers its own failures (a failed enqueue, an unexpected error) with a 500
        # and does not fail the invocation, so Lambda's Errors metric never sees them; API Gateway's 5XXError
        # counts those and its own (Lambda throttled, timed out or crashed: 502/504). Each is a delivery
        # Extend must retry, and a delivery lost if its retries run out.
        self._alarm(
            "WebhookApi5xx",
            "The webhook API answered 5xx (enqueue failed, function error, throttle or timeout): Extend "
            "retries, but a lasting cause loses webhooks until the reconciler polls; see the webhook's logs",
            stage.metric_server_error(statistic="Sum", period=constants.ALARM_PERIOD),
            threshold=0,
        )

    def _metric(self, name: str, statistic: str = "Sum") -> cloudwatch.Metric:
        return custom_metric(self._service, name, statistic)

    def _alarm(
        self, construct_id: str, description: str, metric: cloudwatch.Metric, threshold: float
    ) -> None:
        alarm = metric.create_alarm(
            self,
            construct_id,
            alarm_description=description,
            threshold=threshold,
            comparison_operator=_GT,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        self.alarms.append(alarm)

    def _build_dashboard(
        self,
        queues: Mapping[str, QueueWithDlq],
        functions: Mapping[str, PipelineFunction],
        webhook_stage: apigateway.Stage,
    ) -> cloudwatch.Dashboard:
        def graph(title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=8, height=6)

        def counts(*names: str) -> list[cloudwatch.IMetric]:
            return [self._metric(name) for name in names]

        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(6))
        dashboard.add_widgets(
            graph(
                "Files",
                counts(
                    MetricName.FILES_RECEIVED,
                    MetricName.FILES_REJECTED,
                    MetricName.DUPLICATE_NOTIFICATIONS,
                    MetricName.FILES_SUBMITTED,
                    MetricName.RESULTS_RECORDED,
                    MetricName.RUNS_FAILED,
                    MetricName.FILES_REQUEUED,
                ),
            ),
            graph(
                "Batches",
                [
                    *counts(
                        MetricName.BATCHES_SUBMITTED,
                        MetricName.BATCHES_COMPLETED,
                        MetricName.FOREIGN_BATCHES,
                        MetricName.LATE_DUPLICATE_BATCHES,
                    ),
                    self._metric(MetricName.OVERDUE_BATCHES, "Maximum"),
                ],
            ),
            graph(
                "Extend errors and throttling",
                counts(
                    MetricName.EXTEND_ERRORS,
                    MetricName.EXTEND_RATE_LIMITED,
                    MetricName.SUBMIT_ERRORS,
                    MetricName.ROUTE_BLOCKED,
                ),
            ),
        )
        dashboard.add_widgets(
            graph(
                "Queue depths (visible messages)",
                [
                    metric
                    for name, pair in queues.items()
                    for metric in (
                        pair.queue.metric_approximate_number_of_messages_visible(
                            statistic="Maximum", label=name
                        ),
                        pair.dlq.metric_approximate_number_of_messages_visible(
                            statistic="Maximum", label=f"{name} DLQ"
                        ),
                    )
                ],
            ),
            graph(
                "Waiting and stuck files",
                [
                    self._metric(MetricName.OLDEST_QUEUED_AGE, "Maximum"),
                    self._metric(MetricName.STUCK_FILES, "Maximum"),
                ],
            ),
            graph(
                "Webhooks",
                [
                    *counts(MetricName.WEBHOOKS_ACCEPTED, MetricName.WEBHOOKS_REJECTED),
                    webhook_stage.metric_server_error(statistic="Sum", label="API 5xx"),
                ],
            ),
        )
        dashboard.add_widgets(
            graph("Extend credits used (finished batches)", counts(MetricName.CREDITS_USED))
        )
        dashboard.add_widgets(
            graph(
                "Function errors",
                [fn.function.metric_errors(statistic="Sum", label=name) for name, fn in functions.items()],
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms, width=16, height=6),
        )
        return dashboard
