"""The five functions: runtime, settings, environment, event source mappings and least-privilege IAM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from batchdrop_core.config import SETTINGS_ENV, Settings
from batchdrop_core.runconfig import RunSettings
from stacks.batchdrop_app import load_settings

HANDLERS = {
    "intake": "intake.handler.lambda_handler",
    "submitter": "submitter.handler.lambda_handler",
    "webhook": "webhook.handler.lambda_handler",
    "results": "results.handler.lambda_handler",
    "reconciler": "reconciler.handler.lambda_handler",
}
COMMON_ENV = {
    SETTINGS_ENV,
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
# The contract with the handler authors: which resource names each function gets, and nothing more.
RESOURCE_ENV = {
    "intake": {"FILES_TABLE", "STATE_TABLE", "DROP_BUCKET", "FLUSH_QUEUE_URL"},
    "submitter": {
        "FILES_TABLE", "BATCHES_TABLE", "STATE_TABLE", "DROP_BUCKET", "FLUSH_QUEUE_URL", "TOPIC_ARN",
        "EXTEND_API_KEY_SECRET",
    },
    "webhook": {"STATE_TABLE", "RESULTS_QUEUE_URL", "WEBHOOK_SECRET"},
    "results": {
        "FILES_TABLE", "BATCHES_TABLE", "STATE_TABLE", "RESULTS_BUCKET", "RESULTS_QUEUE_URL",
        "FLUSH_QUEUE_URL", "TOPIC_ARN", "EXTEND_API_KEY_SECRET",
    },
    "reconciler": {
        "FILES_TABLE", "BATCHES_TABLE", "STATE_TABLE", "FLUSH_QUEUE_URL", "RESULTS_QUEUE_URL", "TOPIC_ARN",
        "EXTEND_API_KEY_SECRET",
    },
}  # fmt: skip

LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}
XRAY = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
CONSUME = {
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
}  # fmt: skip
SEND = {"sqs:SendMessage"}
READ_OBJECTS = {"s3:GetObject", "s3:GetObjectVersion"}
SECRET = {"secretsmanager:GetSecretValue"}
PUBLISH = {"topic": {"sns:Publish"}, "topic_key": {"kms:Decrypt", "kms:GenerateDataKey"}}


def _ddb(*actions: str) -> set[str]:
    return {f"dynamodb:{action}" for action in actions}


# Every permission of every function, by resource. A missing entry means no access at all.
EXPECTED_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    "intake": {
        "logs": LOGS,
        "files": _ddb("GetItem", "PutItem", "UpdateItem"),
        "state": _ddb("GetItem"),  # the routes item alone (test_intake_reads_only_the_routes_item…)
        # ListBucket (on the bucket, limited to the routed prefixes) makes HeadObject say 404, not 403.
        "drop_objects": READ_OBJECTS | {"s3:ListBucket"},
        "flush_queue": SEND,
        "arrivals_queue": CONSUME,
    },
    "submitter": {
        "logs": LOGS,
        "files": _ddb("Query", "GetItem", "UpdateItem", "BatchGetItem"),
        "batches": _ddb("Query", "GetItem", "UpdateItem", "PutItem"),
        "state": _ddb("GetItem", "PutItem", "UpdateItem"),
        "drop_objects": READ_OBJECTS,
        "api_key": SECRET,
        **PUBLISH,
        "flush_queue": SEND | CONSUME,
    },
    "webhook": {
        "logs": LOGS,
        "state": _ddb("GetItem", "PutItem", "UpdateItem", "DeleteItem"),
        "webhook_secret": SECRET,
        "results_queue": SEND,
    },
    "results": {
        "logs": LOGS,
        "files": _ddb("Query", "GetItem", "UpdateItem", "BatchGetItem"),
        "batches": _ddb("Query", "GetItem", "UpdateItem"),
        "state": _ddb("GetItem", "PutItem", "UpdateItem"),
        "results_objects": {"s3:PutObject"},
        "api_key": SECRET,
        **PUBLISH,
        "results_queue": SEND | CONSUME,
        "flush_queue": SEND,
    },
    "reconciler": {
        "logs": LOGS,
        "files": _ddb("Query", "GetItem", "UpdateItem"),
        "batches": _ddb("Query", "GetItem", "UpdateItem"),
        "state": _ddb("GetItem", "PutItem", "UpdateItem"),
        "api_key": SECRET,
        **PUBLISH,
        "flush_queue": SEND,
        "results_queue": SEND,
    },
}


@pytest.fixture(scope="module")
def tokens(synthesized) -> dict[str, str]:
    """Text that identifies each resource inside a policy or env value (a logical id or export name)."""
    data, compute, lid = synthesized.stateful, synthesized.stateless, synthesized.logical_id
    return {
        "files": lid(data.tables.files),
        "batches": lid(data.tables.batches),
        "state": lid(data.tables.state),
        "drop_bucket": lid(data.storage.drop_bucket),
        "results_bucket": lid(data.storage.results_bucket),
        "drop_objects": data.drop_bucket_arn_export,
        "results_objects": data.results_bucket_arn_export,
        "arrivals_queue": lid(data.ingress.arrivals.queue),
        "flush_queue": lid(compute.flush.queue),
        "results_queue": lid(compute.results.queue),
        "topic": lid(data.alerts.topic),
        "topic_key": lid(data.alerts.key),
        "api_key": lid(data.secrets.api_key),
        "webhook_secret": lid(data.secrets.webhook_signing_secret),
    }


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    [props] = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"].get("Handler") == HANDLERS[name]
    ]
    return props


def _flatten(value: Any) -> str:
    """A policy resource as text: imports by export name, GetAtt as <Id.Attr>, Ref as <Id>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_flatten(part) for part in parts)
    if "Fn::ImportValue" in value:
        return _flatten(value["Fn::ImportValue"])
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    if "Ref" in value:
        return f"<{value['Ref']}>"
    raise AssertionError(f"unexpected intrinsic in a policy resource: {value}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of every policy attached to the function's role (inline and AWS::IAM::Policy)."""
    role_id = function["Role"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    assert not role.get("ManagedPolicyArns"), "function roles carry no managed policies"
    statements = [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"]["Roles"]:
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    return statements


def permissions_by_resource(
    statements: list[dict[str, Any]], tokens: dict[str, str], log_group_id: str
) -> dict[str, set[str]]:
    known = {**tokens, "logs": log_group_id}
    granted: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = set(_as_list(statement["Action"]))
        assert not [a for a in actions if "*" in a], f"wildcard action in {statement}"
        for resource in map(_flatten, _as_list(statement["Resource"])):
            if resource == "*":
                assert actions <= XRAY, f"only X-Ray may use Resource '*': {statement}"
                continue
            owners = [name for name, token in known.items() if token in resource]
            assert len(owners) == 1, f"{resource} is not one of this app's resources"
            granted.setdefault(owners[0], set()).update(actions)
    return granted


@pytest.mark.parametrize("name", HANDLERS)
def test_each_function_has_exactly_its_permissions(synthesized, stateless_template, tokens, name):
    # Given the synthesized function and its role's policies
    function = _function(stateless_template, name)
    statements = role_statements(stateless_template, function)
    # When they are grouped by the resource they grant access to
    granted = permissions_by_resource(statements, tokens, function["LoggingConfig"]["LogGroup"]["Ref"])
    # Then every function gets exactly what its handler needs, on its own resources only
    assert granted == EXPECTED_PERMISSIONS[name]


@pytest.mark.parametrize("name", HANDLERS)
def test_wildcard_resources_are_only_object_keys_and_xray(synthesized, stateless_template, name):
    settings = load_settings(synthesized.app)
    data = synthesized.stateful
    allowed = {f"{data.drop_bucket_arn_export}/{route.prefix}*" for route in settings.routes}
    allowed |= {f"{data.results_bucket_arn_export}/*", "*"}
    statements = role_statements(stateless_template, _function(stateless_template, name))
    wildcards = {
        resource
        for statement in statements
        for resource in map(_flatten, _as_list(statement["Resource"]))
        if "*" in resource
    }
    assert wildcards <= allowed


def test_webhook_function_reads_only_the_signing_secret(stateless_template, tokens):
    # Given every secret read by any function
    readers: dict[str, set[str]] = {}
    for name in HANDLERS:
        for statement in role_statements(stateless_template, _function(stateless_template, name)):
            if "secretsmanager:GetSecretValue" in _as_list(statement["Action"]):
                readers[name] = {_flatten(r) for r in _as_list(statement["Resource"])}
    # Then the webhook reads the signing secret and nothing else, and nobody else reads it
    webhook_reads = readers.pop("webhook")
    assert len(webhook_reads) == 1
    assert tokens["webhook_secret"] in webhook_reads.pop()
    assert all(tokens["webhook_secret"] not in r for resources in readers.values() for r in resources)
    assert all(tokens["api_key"] in r for resources in readers.values() for r in resources)


@pytest.mark.parametrize("name", HANDLERS)
def test_function_runtime_tracing_and_logs(stateless_template, name):
    function = _function(stateless_template, name)
    newest_python = max(
        (r.name for r in lambda_.Runtime.ALL if r.family == lambda_.RuntimeFamily.PYTHON),
        key=lambda runtime: tuple(int(part) for part in runtime.removeprefix("python").split(".")),
    )
    assert function["Runtime"] == newest_python
    assert function["Architectures"] == ["arm64"]
    assert function["TracingConfig"] == {"Mode": "Active"}
    log_group = stateless_template["Resources"][function["LoggingConfig"]["LogGroup"]["Ref"]]
    assert log_group["Properties"]["RetentionInDays"] == 30


@pytest.mark.parametrize("name", HANDLERS)
def test_function_environment_names_its_resources(synthesized, stateless_template, tokens, name):
    env = _function(stateless_template, name)["Environment"]["Variables"]
    assert set(env) == COMMON_ENV | RESOURCE_ENV[name]
    assert env["POWERTOOLS_SERVICE_NAME"] == "batchdrop"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Batchdrop"
    # The complete validated settings, which the function reads back without pydantic
    settings = load_settings(synthesized.app)
    assert Settings.from_env({SETTINGS_ENV: env[SETTINGS_ENV]}) == settings
    assert RunSettings.from_env({SETTINGS_ENV: env[SETTINGS_ENV]}) == settings.to_run_settings()
    resource_of = {
        "FILES_TABLE": "files", "BATCHES_TABLE": "batches", "STATE_TABLE": "state",
        "DROP_BUCKET": "drop_bucket", "RESULTS_BUCKET": "results_bucket", "FLUSH_QUEUE_URL": "flush_queue",
        "RESULTS_QUEUE_URL": "results_queue", "TOPIC_ARN": "topic", "EXTEND_API_KEY_SECRET": "api_key",
        "WEBHOOK_SECRET": "webhook_secret",
    }  # fmt: skip
    for variable in RESOURCE_ENV[name]:
        assert tokens[resource_of[variable]] in _flatten(env[variable]), variable


# The State items each function may touch (dynamodb:LeadingKeys), where it is limited: the webhook faces
# the internet and needs only its event ids; the results worker the ledger and the read budget. The
# submitter and the reconciler use every kind of item (routes, ledger, both budgets). Written out here
# as the spec; tests/integration/test_webhook.py checks the code touches no other item. Besides these,
# results reads (GetItem, nothing else) the routes item that `batchdrop routes apply` writes; the webhook
# uses no setting, so it may not.
STATE_LEADING_KEYS = {
    "webhook": ["WEBHOOK#*"],
    "results": ["EXTEND#outstanding", "RATE#read"],
    "submitter": None,
    "reconciler": None,
}
ROUTES_READ = {
    "Action": "dynamodb:GetItem",
    "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ROUTES"]}},
}


def test_intake_reads_only_the_routes_item_of_the_state_table(stateless_template, tokens):
    statements = [
        s
        for s in role_statements(stateless_template, _function(stateless_template, "intake"))
        if any(tokens["state"] in _flatten(r) for r in _as_list(s["Resource"]))
    ]
    assert [{k: s[k] for k in ROUTES_READ} for s in statements] == [ROUTES_READ]


@pytest.mark.parametrize("name", STATE_LEADING_KEYS)
def test_state_table_access_is_limited_to_each_functions_own_items(stateless_template, tokens, name):
    # Given the statements of the function's role that grant access to the State table
    statements = [
        s
        for s in role_statements(stateless_template, _function(stateless_template, name))
        if any(tokens["state"] in _flatten(r) for r in _as_list(s["Resource"]))
    ]
    assert statements
    expected = STATE_LEADING_KEYS[name]
    # Then results reads the routes item, and only reads it, in a statement of its own
    routes_reads = [s for s in statements if s.get("Condition") == ROUTES_READ["Condition"]]
    expected_reads = [ROUTES_READ] if name == "results" else []
    assert [{k: s[k] for k in ROUTES_READ} for s in routes_reads] == expected_reads
    for statement in statements:
        # And each names the State table alone and carries exactly the function's leading keys
        assert [tokens["state"] in _flatten(r) for r in _as_list(statement["Resource"])] == [True]
        if statement in routes_reads:
            continue
        if expected is None:
            assert "Condition" not in statement
        else:
            assert statement["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": expected}}


def test_state_leading_keys_are_the_ones_the_code_declares():
    from batchdrop_core.tables import STATE_LEADING_KEYS as declared

    assert {k: list(v) for k, v in declared.items()} == {
        k: v for k, v in STATE_LEADING_KEYS.items() if v is not None
    }


def test_webhook_claims_outlive_the_function_and_its_enqueue_gives_up_inside_it(stateless_template):
    # A pending claim must outlive the delivery that took it (or a retry could overlap a live one), and
    # the quick enqueue must give up before the function is killed (or it dies holding the claim).
    from batchdrop_core.runtime import QUICK_BOTO_CONFIG, QUICK_CALL_MAX_SECONDS
    from batchdrop_core.webhook import CLAIM_PENDING_SECONDS

    timeout = _function(stateless_template, "webhook")["Timeout"]
    assert QUICK_CALL_MAX_SECONDS < timeout < CLAIM_PENDING_SECONDS
    assert (
        QUICK_BOTO_CONFIG.retries["total_max_attempts"]
        * (QUICK_BOTO_CONFIG.connect_timeout + QUICK_BOTO_CONFIG.read_timeout)
        < QUICK_CALL_MAX_SECONDS
    )


def test_secrets_reach_functions_only_by_arn(stateless_template):
    for name in HANDLERS:
        env = _function(stateless_template, name)["Environment"]["Variables"]
        for variable in ("EXTEND_API_KEY_SECRET", "WEBHOOK_SECRET"):
            if variable in env:
                assert "Ref" in env[variable] or "Fn::ImportValue" in env[variable]  # an ARN, never a value


def test_arrivals_mapping_batches_up_to_1000_with_partial_failures(stateless_template, tokens):
    Template.from_json(stateless_template).has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::ImportValue": Match.string_like_regexp(tokens["arrivals_queue"])},
            "BatchSize": 1000,
            "MaximumBatchingWindowInSeconds": 5,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {"MaximumConcurrency": 5},
        },
    )


def test_flush_mapping_takes_one_request_at_a_time(stateless_template, tokens):
    Template.from_json(stateless_template).has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [tokens["flush_queue"], "Arn"]},
            "BatchSize": 1,
            "MaximumBatchingWindowInSeconds": Match.absent(),
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_results_mapping_collects_one_batch_per_invocation_two_at_most(stateless_template, tokens):
    Template.from_json(stateless_template).has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [tokens["results_queue"], "Arn"]},
            "BatchSize": 1,
            "ScalingConfig": {"MaximumConcurrency": 2},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
        },
    )


def test_visibility_timeout_is_six_times_the_consumer_timeout(stateful_template, stateless_template):
    queues = {
        logical_id: resource["Properties"]
        for template in (stateful_template, stateless_template)
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::SQS::Queue"
    }
    mappings = [
        r["Properties"]
        for r in stateless_template["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert len(mappings) == 3
    for mapping in mappings:
        function = stateless_template["Resources"][mapping["FunctionName"]["Ref"]]["Properties"]
        source = _flatten(mapping["EventSourceArn"])
        [queue] = [props for logical_id, props in queues.items() if logical_id in source]
        minimum = 6 * function["Timeout"] + mapping.get("MaximumBatchingWindowInSeconds", 0)
        assert queue["VisibilityTimeout"] >= minimum, source


def test_intake_lists_the_drop_bucket_only_under_routed_prefixes(stateless_template, synthesized) -> None:
    statements = [
        statement
        for resource in stateless_template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
        if "s3:ListBucket"
        in (statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    ]
    assert len(statements) == 1
    prefixes = statements[0]["Condition"]["StringLike"]["s3:prefix"]
    routes = json.loads(Path("cdk.json").read_text())["context"]["batchdrop"]["routes"]
    assert sorted(prefixes) == sorted(f"{r['prefix']}*" for r in routes)
