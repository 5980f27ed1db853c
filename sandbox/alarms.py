"""The deployment's CloudWatch alarms, judged on what a sandbox run emitted.

The sandbox has no CloudWatch. To say which alarms a scenario would have fired, this reads the alarms
from the synthesized stateless template (so it judges what ``cdk deploy`` would create, thresholds
included) and evaluates each on the run's own signals:

* custom metrics (the ``Batchdrop`` namespace): the EMF blobs the handlers printed, bucketed into the
  alarm's period and reduced with its statistic;
* ``AWS/SQS`` depth of a dead-letter queue: the depths the scenario sampled, by queue;
* ``AWS/Lambda`` ``Errors``: invocations that raised, by function (the sandbox's event sources count them);
* ``AWS/ApiGateway`` ``5XXError``: the webhook's 5xx answers (the API Gateway stand-in counts them).

Every alarm in the template compares with ``GreaterThanThreshold`` over one evaluation period."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CUSTOM_NAMESPACE = "Batchdrop"


@dataclass(frozen=True)
class AlarmSpec:
    logical_id: str
    namespace: str
    metric: str
    statistic: str
    period: int
    threshold: float
    comparison: str
    name: str = (
        ""  # its construct id in the stack (``ArrivalsDlqNotEmpty``, ``IntakeErrors``, ``StuckFiles``)
    )

    def breached(self, value: float) -> bool:
        if self.comparison == "GreaterThanThreshold":
            return value > self.threshold
        if self.comparison == "GreaterThanOrEqualToThreshold":
            return value >= self.threshold
        if self.comparison == "LessThanThreshold":
            return value < self.threshold
        return value <= self.threshold


def _construct_id(logical_id: str) -> str:
    """``MonitoringIntakeErrors1A2B3C4D`` → ``IntakeErrors``: CDK's logical id is the construct path
    (``Monitoring/IntakeErrors``) plus an 8-character hash."""
    return logical_id.removeprefix("Monitoring")[:-8]


def alarms_of(template: Mapping[str, Any]) -> list[AlarmSpec]:
    """Every single-metric alarm of a CloudFormation template."""
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        found.append(
            AlarmSpec(
                logical_id=logical_id,
                namespace=props["Namespace"],
                metric=props["MetricName"],
                statistic=props.get("Statistic", "Average"),
                period=int(props.get("Period", 60)),
                threshold=float(props["Threshold"]),
                comparison=props["ComparisonOperator"],
                name=_construct_id(logical_id),
            )
        )
    return sorted(found, key=lambda a: a.logical_id)


def synthesized_alarms() -> list[AlarmSpec]:
    """The alarms of the stateless stack as the example app synthesizes it (bundling skipped)."""
    import tempfile
    from pathlib import Path

    from stacks.batchdrop_app import build_app
    from stacks.stateless_stack import StatelessStack

    with tempfile.TemporaryDirectory(prefix="batchdrop-alarms-") as outdir:
        app = build_app({"aws:cdk:bundling-stacks": [], "allowPlaceholderProcessors": True}, outdir=outdir)
        app.synth()
        stack = next(c for c in app.node.children if isinstance(c, StatelessStack))
        template = json.loads((Path(outdir) / f"{stack.stack_name}.template.json").read_text())
    return alarms_of(template)


def emf_points(log_text: str) -> list[tuple[float, str, float]]:
    """(unix seconds, metric name, value) for every value in the EMF blobs of a captured log."""
    points = []
    for line in log_text.splitlines():
        if not line.startswith('{"_aws"'):
            continue
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        meta = blob["_aws"]
        at = meta["Timestamp"] / 1000
        for directive in meta.get("CloudWatchMetrics", []):
            if directive.get("Namespace") != CUSTOM_NAMESPACE:
                continue
            for metric in directive.get("Metrics", []):
                values = blob.get(metric["Name"], [])
                for value in values if isinstance(values, list) else [values]:
                    points.append((at, metric["Name"], float(value)))
    return points


def _reduce(statistic: str, values: list[float]) -> float:
    if statistic == "Sum":
        return sum(values)
    if statistic == "Maximum":
        return max(values)
    if statistic == "Minimum":
        return min(values)
    if statistic == "SampleCount":
        return float(len(values))
    return sum(values) / len(values)


@dataclass
class Signals:
    """What a run emitted, in the shape the alarms read."""

    custom: list[tuple[float, str, float]] = field(default_factory=list)  # EMF points
    dlq_depths: dict[str, list[tuple[float, int]]] = field(default_factory=dict)  # Arrivals|Flush|Results
    function_errors: dict[str, int] = field(default_factory=dict)  # by function: Intake, Submitter, …
    api_5xx: int = 0


@dataclass(frozen=True)
class Fired:
    alarm: str  # its construct id
    metric: str
    value: float
    threshold: float
    at: float | None

    def describe(self) -> str:
        return f"{self.alarm} ({self.metric} {self.value:g} > {self.threshold:g})"


def evaluate(alarms: Iterable[AlarmSpec], signals: Signals) -> list[Fired]:
    """The alarms that would have gone to ALARM at least once during the run."""
    by_metric: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for at, name, value in signals.custom:
        by_metric[name].append((at, value))
    fired = []
    for alarm in alarms:
        if alarm.namespace == CUSTOM_NAMESPACE:
            periods: dict[int, list[float]] = defaultdict(list)
            for at, value in by_metric.get(alarm.metric, []):
                periods[math.floor(at / alarm.period)].append(value)
            for start in sorted(periods):
                value = _reduce(alarm.statistic, periods[start])
                if alarm.breached(value):
                    fired.append(
                        Fired(alarm.name, alarm.metric, value, alarm.threshold, start * alarm.period)
                    )
                    break
        elif alarm.namespace == "AWS/SQS":
            for at, depth in signals.dlq_depths.get(alarm.name.removesuffix("DlqNotEmpty"), []):
                if alarm.breached(depth):
                    fired.append(Fired(alarm.name, alarm.metric, depth, alarm.threshold, at))
                    break
        elif alarm.namespace == "AWS/Lambda" and alarm.metric == "Errors":
            errors = signals.function_errors.get(alarm.name.removesuffix("Errors"), 0)
            if alarm.breached(errors):
                fired.append(Fired(alarm.name, alarm.metric, errors, alarm.threshold, None))
        elif alarm.namespace == "AWS/ApiGateway" and alarm.breached(signals.api_5xx):
            fired.append(Fired(alarm.name, alarm.metric, signals.api_5xx, alarm.threshold, None))
    return fired
