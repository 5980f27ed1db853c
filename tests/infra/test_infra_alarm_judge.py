"""The sandbox judges every alarm the stack deploys: none is of a kind it cannot evaluate, and their names
are the ones the sandbox's signals are keyed by."""

from __future__ import annotations

from typing import Any

from sandbox.alarms import CUSTOM_NAMESPACE, alarms_of


def test_every_deployed_alarm_can_be_judged_in_the_sandbox(stateless_template: dict[str, Any]) -> None:
    alarms = alarms_of(stateless_template)
    names = {a.name for a in alarms}
    assert {"ArrivalsDlqNotEmpty", "FlushDlqNotEmpty", "ResultsDlqNotEmpty", "StuckFiles"} <= names
    assert {f"{fn}Errors" for fn in ("Intake", "Submitter", "Webhook", "Results", "Reconciler")} <= names
    for alarm in alarms:
        judged = (
            alarm.namespace == CUSTOM_NAMESPACE
            or (alarm.namespace == "AWS/SQS" and alarm.name.endswith("DlqNotEmpty"))
            or (alarm.namespace == "AWS/Lambda" and alarm.metric == "Errors")
            or (alarm.namespace == "AWS/ApiGateway" and alarm.metric == "5XXError")
        )
        assert judged, f"the sandbox cannot judge alarm {alarm.name} ({alarm.namespace} {alarm.metric})"
