"""Data and wiring resources: buckets, queues, tables, topic, secrets, API, schedules, alarms, outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from batchdrop_core.observability import METRICS_NAMESPACE, SERVICE, MetricName
from batchdrop_core.tables import ALL_TABLES, TableSpec
from stacks.batchdrop_app import load_settings

FOURTEEN_DAYS = 14 * 24 * 3600
DENY_INSECURE_TRANSPORT = Match.object_like(
    {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
)


def _resources(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def _policy_targets(template: dict[str, Any], policy_type: str, target_key: str) -> set[str]:
    """Logical ids of the resources whose policy denies requests without TLS."""
    targets = set()
    for policy in _resources(template, policy_type).values():
        props = policy["Properties"]
        if any(_denies_insecure_transport(s) for s in props["PolicyDocument"]["Statement"]):
            attached = props[target_key] if isinstance(props[target_key], list) else [props[target_key]]
            targets.update(json.dumps(target) for target in attached)
    return targets


def _denies_insecure_transport(statement: dict[str, Any]) -> bool:
    return statement["Effect"] == "Deny" and statement.get("Condition") == {
        "Bool": {"aws:SecureTransport": "false"}
    }


# --- buckets ------------------------------------------------------------------------------------------


def test_every_bucket_is_private_encrypted_retained_and_ssl_only(stateful_template):
    buckets = _resources(stateful_template, "AWS::S3::Bucket")
    assert len(buckets) == 3  # drop, results, access logs
    ssl_only = _policy_targets(stateful_template, "AWS::S3::BucketPolicy", "Bucket")
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert bucket["DeletionPolicy"] == "Retain"
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        [rule] = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        assert json.dumps({"Ref": logical_id}) in ssl_only


def test_drop_and_results_buckets_are_versioned_and_access_logged(synthesized, stateful_template):
    storage = synthesized.stateful.storage
    logs_bucket = synthesized.logical_id(storage.access_logs_bucket)
    for bucket in (storage.drop_bucket, storage.results_bucket):
        props = stateful_template["Resources"][synthesized.logical_id(bucket)]["Properties"]
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": logs_bucket}


def test_access_logs_are_versioned_and_expire(synthesized, stateful_template):
    # A log overwritten or deleted stays as a noncurrent version for 30 days; logs go after 90 days
    logs_bucket = synthesized.logical_id(synthesized.stateful.storage.access_logs_bucket)
    props = stateful_template["Resources"][logs_bucket]["Properties"]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    [rule] = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 90 and rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


def test_drop_bucket_notifies_arrivals_for_every_created_object(synthesized, stateful_template):
    arrivals = synthesized.logical_id(synthesized.stateful.ingress.arrivals.queue)
    [notifications] = _resources(stateful_template, "Custom::S3BucketNotifications").values()
    props = notifications["Properties"]
    assert props["BucketName"] == {"Ref": synthesized.logical_id(synthesized.stateful.storage.drop_bucket)}
    configs = props["NotificationConfiguration"]["QueueConfigurations"]
    assert all(c["Events"] == ["s3:ObjectCreated:*"] for c in configs)
    assert all(c["QueueArn"] == {"Fn::GetAtt": [arrivals, "Arn"]} for c in configs)
    # One rule without a filter: unrouted keys reach intake and are REJECTED with NO_ROUTE.
    assert len(configs) == 1 and "Filter" not in configs[0]


# --- queues -------------------------------------------------------------------------------------------


def test_every_queue_is_encrypted_ssl_only_and_has_a_dlq(stateful_template, stateless_template):
    for template in (stateful_template, stateless_template):
        queues = _resources(template, "AWS::SQS::Queue")
        ssl_only = _policy_targets(template, "AWS::SQS::QueuePolicy", "Queues")
        dlqs = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
                for q in queues.values() if "RedrivePolicy" in q["Properties"]}  # fmt: skip
        for logical_id, queue in queues.items():
            props = queue["Properties"]
            assert props["SqsManagedSseEnabled"] is True
            assert props["MessageRetentionPeriod"] == FOURTEEN_DAYS
            assert json.dumps({"Ref": logical_id}) in ssl_only
            if logical_id in dlqs:
                continue
            assert props["RedrivePolicy"]["maxReceiveCount"] >= 5
            dlq = template["Resources"][props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]
            assert dlq["Properties"].get("FifoQueue") == props.get("FifoQueue")
        assert len(dlqs) == len(queues) / 2


def test_flush_queue_is_fifo_with_content_based_deduplication(synthesized, stateless_template):
    flush = stateless_template["Resources"][synthesized.logical_id(synthesized.stateless.flush.queue)]
    assert flush["Properties"]["FifoQueue"] is True
    assert flush["Properties"]["ContentBasedDeduplication"] is True


# --- tables -------------------------------------------------------------------------------------------


def _key_schema(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in schema]


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda spec: spec.construct_id)
def test_tables_match_the_shared_specs(synthesized, stateful_template, spec: TableSpec):
    # Given what the sandbox creates from the same spec
    expected = spec.create_table_kwargs("any-name")
    # When we look at the deployed table
    tables = synthesized.stateful.tables
    construct = {"Files": tables.files, "Batches": tables.batches, "State": tables.state}[spec.construct_id]
    table = stateful_template["Resources"][synthesized.logical_id(construct)]
    props = table["Properties"]
    # Then keys, indexes and billing agree, and the data is protected
    assert table["DeletionPolicy"] == "Retain"
    assert props["BillingMode"] == expected["BillingMode"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert _key_schema(props["KeySchema"]) == _key_schema(expected["KeySchema"])
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(expected["AttributeDefinitions"], key=str)
    indexes = {
        i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"])
        for i in props.get("GlobalSecondaryIndexes", [])
    }
    assert indexes == {
        i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"])
        for i in expected.get("GlobalSecondaryIndexes", [])
    }
    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props


# --- topic and secrets --------------------------------------------------------------------------------


def test_topic_is_encrypted_ssl_only_and_accepts_cloudwatch_alarms(synthesized, stateful_template):
    alerts = synthesized.stateful.alerts
    template = Template.from_json(stateful_template)
    key = synthesized.logical_id(alerts.key)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key, "Arn"]}})
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                            }
                        )
                    ]
                )
            },
        },
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        DENY_INSECURE_TRANSPORT,
                        Match.object_like(
                            {"Principal": {"Service": "cloudwatch.amazonaws.com"}, "Action": "sns:Publish"}
                        ),
                    ]
                )
            }
        },
    )
    template.resource_count_is("AWS::SNS::Subscription", 0)  # the example sets no alarmEmail


def test_secrets_are_created_without_a_value(stateful_template):
    secrets = _resources(stateful_template, "AWS::SecretsManager::Secret")
    assert len(secrets) == 2
    for secret in secrets.values():
        assert "SecretString" not in secret["Properties"]
        assert "GenerateSecretString" in secret["Properties"]  # a placeholder for the operator to replace


# --- API ----------------------------------------------------------------------------------------------


def test_webhook_api_is_regional_throttled_and_logged(synthesized, stateless_template):
    template = Template.from_json(stateless_template)
    template.has_resource_properties(
        "AWS::ApiGateway::RestApi", {"EndpointConfiguration": {"Types": ["REGIONAL"]}}
    )
    access_logs = synthesized.logical_id(synthesized.stateless.webhook_api.access_logs)
    [stage] = _resources(stateless_template, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["MethodSettings"] == [
        {
            "HttpMethod": "*",
            "ResourcePath": "/*",
            "ThrottlingRateLimit": 50,
            "ThrottlingBurstLimit": 100,
            "LoggingLevel": "ERROR",
            "DataTraceEnabled": False,
            "MetricsEnabled": True,
        }
    ]
    assert access_logs in json.dumps(props["AccessLogSetting"]["DestinationArn"])
    access_log_fields = json.loads(props["AccessLogSetting"]["Format"])  # JSON lines
    assert {"requestId", "ip", "status", "resourcePath"} <= set(access_log_fields)
    assert stateless_template["Resources"][access_logs]["Properties"]["RetentionInDays"] == 30


def test_webhook_route_is_post_proxy_to_the_webhook_function(synthesized, stateless_template):
    template = Template.from_json(stateless_template)
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "webhooks"})
    template.has_resource_properties("AWS::ApiGateway::Resource", {"PathPart": "extend"})
    [method] = _resources(stateless_template, "AWS::ApiGateway::Method").values()
    assert method["Properties"]["HttpMethod"] == "POST"
    assert method["Properties"]["Integration"]["Type"] == "AWS_PROXY"
    webhook = synthesized.logical_id(synthesized.stateless.functions.webhook.function)
    assert webhook in json.dumps(method["Properties"]["Integration"]["Uri"])


# --- schedules ----------------------------------------------------------------------------------------


def test_reconciler_runs_a_sweep_every_minute_and_reconciles_every_five(synthesized, stateless_template):
    reconciler = synthesized.logical_id(synthesized.stateless.functions.reconciler.function)
    schedules = {
        r["Properties"]["ScheduleExpression"]: r["Properties"]["Targets"]
        for r in _resources(stateless_template, "AWS::Events::Rule").values()
    }
    assert set(schedules) == {"rate(1 minute)", "rate(5 minutes)"}
    for expression, task in (("rate(1 minute)", "sweep"), ("rate(5 minutes)", "reconcile")):
        [target] = schedules[expression]
        assert target["Arn"] == {"Fn::GetAtt": [reconciler, "Arn"]}
        assert json.loads(target["Input"]) == {"task": task}


# --- alarms and dashboard -----------------------------------------------------------------------------


def _alarms(template: dict[str, Any]) -> list[dict[str, Any]]:
    return [a["Properties"] for a in _resources(template, "AWS::CloudWatch::Alarm").values()]


def test_every_alarm_notifies_the_alert_topic(synthesized, stateless_template):
    topic = synthesized.logical_id(synthesized.stateful.alerts.topic)
    alarms = _alarms(stateless_template)
    assert alarms
    for alarm in alarms:
        [action] = alarm["AlarmActions"]
        assert topic in json.dumps(action)
        assert alarm["TreatMissingData"] == "notBreaching"


def test_each_dlq_alarms_on_its_first_message(synthesized, stateless_template):
    dlqs = [
        synthesized.stateful.ingress.arrivals.dlq,
        synthesized.stateless.flush.dlq,
        synthesized.stateless.results.dlq,
    ]
    depth_alarms = [
        json.dumps(a["Dimensions"])
        for a in _alarms(stateless_template)
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and a["Threshold"] == 0
        and a["ComparisonOperator"] == "GreaterThanThreshold"
    ]
    for dlq in dlqs:
        assert sum(synthesized.logical_id(dlq) in d for d in depth_alarms) == 1


def test_pipeline_metric_alarms(synthesized, stateless_template):
    settings = load_settings(synthesized.app)
    custom = {
        a["MetricName"]: a for a in _alarms(stateless_template) if a.get("Namespace") == METRICS_NAMESPACE
    }
    for alarm in custom.values():
        assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE}]
    assert custom[MetricName.OLDEST_QUEUED_AGE]["Threshold"] == settings.file_sla_minutes * 60 // 2
    assert custom[MetricName.OVERDUE_BATCHES]["Threshold"] == 0
    assert custom[MetricName.STUCK_FILES]["Threshold"] == 0
    late = custom[MetricName.LATE_DUPLICATE_BATCHES]
    assert (late["Statistic"], late["Threshold"], late["ComparisonOperator"]) == (
        "Sum",
        0,
        "GreaterThanThreshold",
    )
    # Foreign batches are normal in a shared workspace: counted on the dashboard, never alarmed
    assert MetricName.FOREIGN_BATCHES not in custom
    rejected = custom[MetricName.WEBHOOKS_REJECTED]
    assert (rejected["Statistic"], rejected["Period"], rejected["Threshold"]) == ("Sum", 300, 20)


def test_results_function_errors_alarm(synthesized, stateless_template):
    results = synthesized.logical_id(synthesized.stateless.functions.results.function)
    Template.from_json(stateless_template).has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": "Errors",
            "Namespace": "AWS/Lambda",
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": results}}],
            "Threshold": 0,
        },
    )


def test_webhook_api_5xx_alarm(synthesized, stateless_template):
    # The webhook answers its own failures with a 500 without failing the invocation, so only API
    # Gateway's 5XXError sees them (and its own 502/504s): any one in 5 minutes raises the alarm.
    api = synthesized.stateless.webhook_api.api
    [alarm] = [a for a in _alarms(stateless_template) if a["MetricName"] == "5XXError"]
    assert alarm["Namespace"] == "AWS/ApiGateway"
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert set(dimensions) == {"ApiName", "Stage"}
    assert synthesized.logical_id(api.deployment_stage) in json.dumps(dimensions["Stage"])
    assert (alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == ("Sum", 300, 0)
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_dashboard_shows_files_batches_queues_and_extend_errors(stateless_template):
    [dashboard] = _resources(stateless_template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        MetricName.FILES_RECEIVED,
        MetricName.FILES_REJECTED,
        MetricName.FILES_SUBMITTED,
        MetricName.BATCHES_SUBMITTED,
        MetricName.BATCHES_COMPLETED,
        MetricName.EXTEND_ERRORS,
        MetricName.EXTEND_RATE_LIMITED,
        "ApproximateNumberOfMessagesVisible",
    ):
        assert metric in body


# --- outputs ------------------------------------------------------------------------------------------

STATEFUL_OUTPUTS = {
    "DropBucketName", "ResultsBucketName", "FilesTableName", "BatchesTableName", "StateTableName",
    "ArrivalsQueueUrl", "ArrivalsDlqUrl", "TopicArn", "ApiKeySecretArn", "WebhookSecretArn",
}  # fmt: skip
STATELESS_OUTPUTS = {
    "FlushQueueUrl", "FlushDlqUrl", "ResultsQueueUrl", "ResultsDlqUrl", "WebhookUrl", "DashboardName",
    "SettingsJson",
}  # fmt: skip


def test_outputs_for_the_cli_have_no_export_names(stateful_template, stateless_template):
    for template, names in ((stateful_template, STATEFUL_OUTPUTS), (stateless_template, STATELESS_OUTPUTS)):
        outputs = template["Outputs"]
        assert names <= set(outputs)
        assert all("Export" not in outputs[name] for name in names)


def test_settings_output_is_the_validated_configuration(stateless_template):
    from batchdrop_core.config import Settings

    value = stateless_template["Outputs"]["SettingsJson"]["Value"]
    settings = Settings.from_env({"BATCHDROP_SETTINGS": value})
    assert [route.name for route in settings.routes] == ["invoices", "documents", "packets"]


def test_webhook_url_output_ends_with_the_route(stateless_template):
    _separator, parts = stateless_template["Outputs"]["WebhookUrl"]["Value"]["Fn::Join"]
    assert parts[0] == "https://"
    assert parts[-1] == "/webhooks/extend"
