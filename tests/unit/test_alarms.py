"""The sandbox's judge of the stack's alarms: periods, statistics, thresholds as CloudWatch applies them."""

from __future__ import annotations

import json

from sandbox.alarms import AlarmSpec, Signals, alarms_of, emf_points, evaluate


def _alarm(logical_id: str, namespace: str, metric: str, statistic: str, threshold: float) -> dict:
    return {
        logical_id: {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "Namespace": namespace,
                "MetricName": metric,
                "Statistic": statistic,
                "Period": 300,
                "Threshold": threshold,
                "ComparisonOperator": "GreaterThanThreshold",
                "EvaluationPeriods": 1,
            },
        }
    }


TEMPLATE = {
    "Resources": {
        **_alarm("MonitoringWebhooksRejectedAB12CD34", "Batchdrop", "WebhooksRejected", "Sum", 20),
        **_alarm("MonitoringStuckFilesAB12CD34", "Batchdrop", "StuckFiles", "Maximum", 0),
        **_alarm(
            "MonitoringResultsDlqNotEmptyAB12CD34",
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
            0,
        ),
        **_alarm("MonitoringIntakeErrorsAB12CD34", "AWS/Lambda", "Errors", "Sum", 0),
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {}},
    }
}


def _emf(at: float, **values: float) -> str:
    return json.dumps(
        {
            "_aws": {
                "Timestamp": int(at * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": "Batchdrop",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": n} for n in values],
                    }
                ],
            },
            "service": "batchdrop",
            **{name: [value] for name, value in values.items()},
        }
    )


def test_alarms_are_read_with_their_construct_names() -> None:
    names = {a.name for a in alarms_of(TEMPLATE)}
    assert names == {"WebhooksRejected", "StuckFiles", "ResultsDlqNotEmpty", "IntakeErrors"}


def test_a_sum_fires_only_when_one_period_adds_up_past_the_threshold() -> None:
    alarms = [a for a in alarms_of(TEMPLATE) if a.metric == "WebhooksRejected"]
    # 15 + 15 rejections two seconds apart, but on both sides of a period's start: 15 in each, not over 20
    spread = Signals(custom=[(299.0, "WebhooksRejected", 15.0), (301.0, "WebhooksRejected", 15.0)])
    assert evaluate(alarms, spread) == []
    together = Signals(custom=[(301.0, "WebhooksRejected", 15.0), (350.0, "WebhooksRejected", 15.0)])
    (fired,) = evaluate(alarms, together)
    assert (fired.alarm, fired.value, fired.threshold) == ("WebhooksRejected", 30.0, 20.0)


def test_a_maximum_fires_on_one_value_over_the_threshold_and_not_on_zero() -> None:
    alarms = [a for a in alarms_of(TEMPLATE) if a.metric == "StuckFiles"]
    log = "\n".join(["not json", _emf(100.0, StuckFiles=0), '{"level":"INFO"}'])
    assert evaluate(alarms, Signals(custom=emf_points(log))) == []
    log += "\n" + _emf(200.0, StuckFiles=3)
    (fired,) = evaluate(alarms, Signals(custom=emf_points(log)))
    assert fired.value == 3.0 and fired.at == 0.0


def test_queue_and_function_alarms_read_their_own_signals() -> None:
    alarms = alarms_of(TEMPLATE)
    quiet = Signals(
        dlq_depths={"Results": [(1.0, 0)], "Arrivals": [(1.0, 4)]}, function_errors={"Submitter": 2}
    )
    assert evaluate(alarms, quiet) == []  # the arrivals DLQ and the submitter have no alarm in this template
    loud = Signals(dlq_depths={"Results": [(1.0, 0), (2.0, 1)]}, function_errors={"Intake": 1})
    assert sorted(f.alarm for f in evaluate(alarms, loud)) == ["IntakeErrors", "ResultsDlqNotEmpty"]


def test_comparisons() -> None:
    spec = AlarmSpec("X", "Batchdrop", "M", "Sum", 60, 5, "GreaterThanOrEqualToThreshold", "M")
    assert spec.breached(5) and not spec.breached(4.9)
