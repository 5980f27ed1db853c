"""cdk-nag, cfn-lint, the example configuration in cdk.json, and the app's configuration errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import Stack, Validations
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint_file

from batchdrop_core.config import ConfigError, Route, Settings
from batchdrop_core.observability import METRICS_NAMESPACE, SERVICE, SERVICE_ENV
from stacks.batchdrop_app import CDK_JSON, build_app
from stacks.stateful_stack import StatefulStack

REPO_ROOT = Path(__file__).resolve().parents[2]
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": [], "allowPlaceholderProcessors": True}


def _example_settings() -> dict:
    return json.loads(CDK_JSON.read_text())["context"]["batchdrop"]


# --- cdk-nag ------------------------------------------------------------------------------------------


def test_synth_validation_report_has_no_findings(synthesized):
    # The synth in the fixture would have failed on an error; warnings must not be left either.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    assert [v for plugin in report["pluginReports"] for v in plugin["violations"]] == []


def test_aws_solutions_checks_find_nothing_unacknowledged(synthesized):
    # Run the pack directly too, so a plugin that silently did not run cannot pass the test above.
    result = AwsSolutionsChecks(synthesized.app).validate_scope(synthesized.app)
    assert [(v.rule_name, [r.construct_path for r in v.violating_resources]) for v in result.violations] == []
    assert result.success


def test_every_acknowledgement_names_a_finding_and_gives_a_reason(synthesized):
    acknowledgements = {
        rule: reason
        for construct in synthesized.app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY
        for rule, reason in entry.data.items()
    }
    assert acknowledgements
    for rule, reason in acknowledgements.items():
        assert "AwsSolutions-" in rule
        assert len(reason) > 40, f"{rule}: say why"


# --- cfn-lint -----------------------------------------------------------------------------------------


def test_cfn_lint_finds_no_errors(synthesized):
    templates = sorted(synthesized.outdir.glob("*.template.json"))
    assert len(templates) == 2
    errors = [
        str(match) for template in templates for match in lint_file(template) if match.rule.id[0] == "E"
    ]
    assert errors == []


# --- checkov ------------------------------------------------------------------------------------------

CHECKOV_CONFIG = REPO_ROOT / ".checkov.yaml"


def test_checkov_finds_nothing_that_is_not_skipped_with_a_reason(synthesized):
    # Given the synthesized templates, scanned with the checked-in configuration (offline, ~10 s)
    checkov = Path(sys.executable).parent / "checkov"
    result = subprocess.run(  # noqa: S603 - the venv's checkov on our own templates
        [str(checkov), "--config-file", str(CHECKOV_CONFIG), "-d", str(synthesized.outdir), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Then no check failed (the JSON lists only failures: the configuration says compact and quiet)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout or "[]")
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{f['check_id']} {f['check_name']}: {f['resource']}"
        for report in reports
        for f in report.get("results", {}).get("failed_checks", [])
    ]
    assert failed == []
    assert result.returncode == 0, result.stderr[-2000:]
    # And it did scan both templates
    assert {r.get("check_type") for r in reports} == {"cloudformation"}
    assert sum(r["summary"]["resource_count"] for r in reports) > 50


def test_every_checkov_skip_gives_a_reason():
    # Checks skipped for every resource: each `- CKV_…` line in .checkov.yaml follows its reason
    lines = CHECKOV_CONFIG.read_text().splitlines()
    skipped, reason = {}, []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            reason.append(stripped.lstrip("# "))
        elif stripped.startswith("- CKV"):
            skipped[stripped[2:]] = " ".join(reason)
            reason = []
        else:
            reason = []
    assert skipped
    for check, why in skipped.items():
        assert why.startswith(f"{check} (") and len(why) > 80, f"{check}: say why"


def test_every_checkov_skip_on_one_resource_gives_a_reason(stateful_template, stateless_template):
    skips = [
        skip
        for template in (stateful_template, stateless_template)
        for resource in template["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips  # the access logs bucket's own access logging
    for skip in skips:
        assert skip["id"].startswith("CKV_") and len(skip["comment"]) > 40, skip


# --- configuration ------------------------------------------------------------------------------------


def test_cdk_json_shows_every_setting_and_one_route_per_type():
    example = _example_settings()
    aliases = {field.alias or name for name, field in Settings.model_fields.items()}
    assert set(example) == aliases
    assert {route["type"] for route in example["routes"]} == {"extract", "classify", "split"}
    route_fields = {field.alias or name for name, field in Route.model_fields.items()}
    assert set().union(*(route.keys() for route in example["routes"])) == route_fields
    Settings.parse(example, "cdk.json")


def test_cdk_json_runs_the_app_from_the_venv():
    config = json.loads(CDK_JSON.read_text())
    assert config["app"] == ".venv/bin/python app.py"
    assert config["context"]["stackPrefix"] == "Batchdrop"


def test_invalid_settings_fail_with_a_clear_message():
    bad = {**_example_settings(), "maxBatchSize": 5000}
    with pytest.raises(ConfigError, match=r"cdk.json context 'batchdrop'[\s\S]*maxBatchSize"):
        build_app({**SKIP_BUNDLING, "batchdrop": bad})


def test_settings_passed_with_dash_c_are_parsed_from_json():
    settings = {**_example_settings(), "maxWaitSeconds": 60}
    app = build_app({**SKIP_BUNDLING, "batchdrop": json.dumps(settings)})
    assert {child.node.id for child in app.node.children} >= {"Batchdrop-Stateful", "Batchdrop-Stateless"}


def test_settings_too_large_for_the_lambda_environment_are_refused():
    example = _example_settings()
    example["routes"][0]["overrideConfig"] = {"fields": ["x" * 100] * 40}
    with pytest.raises(ConfigError, match="Lambda environment"):
        build_app({**SKIP_BUNDLING, "batchdrop": example})


def test_stack_prefix_names_both_stacks():
    app = build_app({**SKIP_BUNDLING, "stackPrefix": "Acme"})
    assert {c.node.id for c in app.node.children if isinstance(c, Stack)} == {
        "Acme-Stateful",
        "Acme-Stateless",
    }


def test_alarm_email_subscribes_to_the_topic():
    app = build_app({**SKIP_BUNDLING, "batchdrop": {**_example_settings(), "alarmEmail": "ops@example.com"}})
    [stateful] = [c for c in app.node.children if isinstance(c, StatefulStack)]
    Template.from_stack(stateful).has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ops@example.com"}
    )


def test_app_py_exits_with_the_configuration_error(tmp_path):
    # Given the CLI's context (cdk -c) carrying a route whose processor id does not match its type
    bad = {"routes": [{"name": "x", "prefix": "x/", "type": "split", "processorId": "ex_wrong"}]}
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"batchdrop": bad}), "CDK_OUTDIR": str(tmp_path)}
    # When the app runs as `cdk synth` would run it
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    # Then it stops with the validation message, not a stack trace
    assert result.returncode == 1
    assert "invalid batchdrop configuration" in result.stderr
    assert "does not look like a split processor" in result.stderr
    assert "Traceback" not in result.stderr


def test_placeholder_processor_ids_are_refused_unless_a_demo_allows_them():
    # cdk.json ships example routes; deployed unedited, every submission would fail at Extend
    with pytest.raises(ConfigError, match=r"placeholder processor ids: invoices \(ex_placeholder_invoices\)"):
        build_app({"aws:cdk:bundling-stacks": []})
    # `cdk deploy -c allowPlaceholderProcessors=true` passes a string
    app = build_app({"aws:cdk:bundling-stacks": [], "allowPlaceholderProcessors": "true"})
    assert {c.node.id for c in app.node.children if isinstance(c, Stack)} >= {"Batchdrop-Stateless"}
    # real ids need no flag
    real = _example_settings()
    for route, processor in zip(real["routes"], ("ex_9f3a", "cl_4b2c", "spl_77de"), strict=True):
        route["processorId"] = processor
    build_app({"aws:cdk:bundling-stacks": [], "batchdrop": real})


def _deployment(prefix: str) -> tuple[list[dict], dict[str, dict], dict[str, str]]:
    """(custom-metric alarms, function environments, the data stack's table tags) of one deployment."""
    app = build_app({**SKIP_BUNDLING, "stackPrefix": prefix})
    stacks = {c.node.id: Template.from_stack(c).to_json() for c in app.node.children if isinstance(c, Stack)}
    stateless, stateful = stacks[f"{prefix}-Stateless"], stacks[f"{prefix}-Stateful"]
    resources = stateless["Resources"].values()
    alarms = [
        r["Properties"]
        for r in resources
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == METRICS_NAMESPACE
    ]
    environments = {
        name: r["Properties"]["Environment"]["Variables"]
        for name, r in stateless["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function" and "Environment" in r["Properties"]
    }
    table = next(r for r in stateful["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table")
    return alarms, environments, {t["Key"]: t["Value"] for t in table["Properties"]["Tags"]}


def test_two_deployments_keep_their_metrics_and_alarms_apart_and_are_tagged_for_cost():
    for prefix, service in (("Batchdrop", SERVICE), ("Staging", f"{SERVICE}-Staging")):
        alarms, environments, tags = _deployment(prefix)
        # Every custom-metric alarm watches this deployment's service only, and its functions emit under it
        assert alarms and {a["Dimensions"][0]["Value"] for a in alarms} == {service}
        assert len(environments) == 5 and {env[SERVICE_ENV] for env in environments.values()} == {service}
        assert tags == {"batchdrop:application": "batchdrop", "batchdrop:deployment": prefix}
