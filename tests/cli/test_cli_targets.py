"""How the CLI finds a deployment (stack outputs, endpoints file) and the advice it gives when it cannot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest

from batchdrop_cli import app
from sandbox.aws import REGION
from tests.helpers import CliSandbox, invoke, runner


def user_error(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.stderr


def test_bad_input_gets_advice_and_exit_code_1(sandbox: CliSandbox, tmp_path: Path) -> None:
    message = sandbox.fails("file", "invoices/never-dropped.pdf")
    assert f"no tracked file s3://{sandbox.drop_bucket}/invoices/never-dropped.pdf" in message
    assert "batchdrop backfill" in message

    assert "unknown route 'nope'" in sandbox.fails("flush", "nope")
    assert "invoices, documents, packets" in sandbox.fails("status", "--route", "nope")
    assert "no batch 'bpr_nope'" in sandbox.fails("batch", "bpr_nope")

    missing = tmp_path / "gone.json"
    message = user_error("--sandbox", str(missing), "status")
    assert f"no sandbox endpoints file at {missing}" in message and "make demo" in message
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"aws_endpoint_url": "http://127.0.0.1:9"}))
    assert "missing: drop_bucket" in user_error("--sandbox", str(partial), "status")


def test_a_missing_stack_says_how_to_deploy_or_where_else_to_look(moto_server: object) -> None:
    # moto's CloudFormation (the process's AWS endpoint in tests) has no stacks.
    message = user_error("--stack", "Nope", "--region", REGION, "status")
    assert f"no batchdrop stack named Nope in region {REGION}" in message
    assert "cdk deploy --all" in message and "--sandbox" in message


def test_a_deployed_stack_is_read_from_its_outputs_and_cdk_json(
    sandbox: CliSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the two stacks' outputs (as `cdk deploy` creates them) naming the sandbox's resources
    resources, dlqs = sandbox.deployment.resources, sandbox.deployment.dlq_urls
    prefix = f"Cli{resources.drop_bucket.split('-')[0]}"
    outputs = {
        f"{prefix}-Stateful": {
            "DropBucketName": resources.drop_bucket,
            "ResultsBucketName": resources.results_bucket,
            "FilesTableName": resources.files_table,
            "BatchesTableName": resources.batches_table,
            "StateTableName": resources.state_table,
            "ArrivalsQueueUrl": sandbox.deployment.arrivals_queue_url,
            "ArrivalsDlqUrl": dlqs["arrivals"],
            "TopicArn": resources.topic_arn,
            "ApiKeySecretArn": resources.api_key_secret,
            "WebhookSecretArn": resources.webhook_secret,
        },
        f"{prefix}-Stateless": {
            "FlushQueueUrl": resources.flush_queue_url,
            "FlushDlqUrl": dlqs["flush"],
            "ResultsQueueUrl": resources.results_queue_url,
            "ResultsDlqUrl": dlqs["results"],
            "WebhookUrl": "https://abc.execute-api.example/prod/webhooks/extend",
        },
    }
    cloudformation = boto3.session.Session(region_name=REGION).client("cloudformation")
    for name, values in outputs.items():
        template = {
            "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in values.items()},
        }
        cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    # and the project's cdk.json, with the settings the stacks were deployed with, in the working directory
    cdk_json = {"context": {"stackPrefix": prefix, "batchdrop": json.loads(sandbox.settings.to_env_json())}}
    (tmp_path / "cdk.json").write_text(json.dumps(cdk_json))
    monkeypatch.chdir(tmp_path)
    sandbox.upload(["invoices/s-1.pdf"])
    sandbox.pipeline.pump()

    # When the CLI runs with no target options, it finds the stacks through cdk.json's stackPrefix
    status = invoke("--region", REGION, "status", "--json")
    assert status.exit_code == 0, status.output
    body = json.loads(status.stdout)
    assert body["target"] == f"stack {prefix} in {REGION}"
    assert {r["name"]: r["counts"]["QUEUED"] for r in body["routes"]}["invoices"] == 1

    # Then commands that need the stateless stack's queues work too
    flushed = invoke("--region", REGION, "flush", "invoices", "--json")
    assert json.loads(flushed.stdout) == {"flushRequested": ["invoices"]}
    sandbox.pipeline.pump()
    shown = invoke("--region", REGION, "file", "invoices/s-1.pdf", "--json")
    (version,) = json.loads(shown.stdout)["versions"]
    assert version["status"] == "SUBMITTED"


def test_region_and_profile_are_chosen_as_the_aws_cli_chooses_them(
    moto_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AWS_REGION wins over AWS_DEFAULT_REGION (boto3 alone reads only the latter), --region over both
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert "in region eu-west-3" in user_error("--stack", "Nope", "status")
    assert "in region ap-south-1" in user_error("--stack", "Nope", "--region", "ap-south-1", "status")
    monkeypatch.delenv("AWS_REGION")
    assert "in region eu-west-1" in user_error("--stack", "Nope", "status")

    # --profile picks a named profile (and its region); an unknown one says where to look
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    config = tmp_path / "config"
    # (a named profile's own keys: the AWS CLI and boto3 then ignore the environment's)
    config.write_text(
        "[profile ops]\nregion = eu-north-1\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    assert "in region eu-north-1" in user_error("--profile", "ops", "--stack", "Nope", "status")
    message = user_error("--profile", "nobody", "status")
    assert "nobody" in message and "aws configure list-profiles" in message
    assert "no AWS region" in user_error("--stack", "Nope", "status")


def test_an_unreachable_aws_endpoint_names_the_network_and_region_not_the_sandbox(
    moto_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")
    message = user_error("--stack", "Nope", "--region", REGION, "status")
    assert "cannot reach http://127.0.0.1:9" in message and "--region" in message
    assert "sandbox" not in message


def test_errors_stay_on_one_line_when_piped_and_the_version_prints() -> None:
    # A pipe is 80 columns to Rich; the missing-sandbox advice is far longer than that.
    result = runner.invoke(app, ["--sandbox", "/nonexistent/endpoints.json", "status"], env={"COLUMNS": "80"})
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert len(line) > 80 and "\n" not in line and line.startswith("batchdrop: error: ")

    version = invoke("--version")
    assert version.exit_code == 0 and re.fullmatch(r"batchdrop \d+\.\d+\.\d+\S*\n", version.stdout)
