"""`batchdrop setup` and `batchdrop doctor` against the sandbox: a deployment finished in one command,
checked end to end, each problem named with its fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from batchdrop_cli import app
from sandbox.apigw import ApiGatewayServer
from sandbox.local import WEBHOOK_PATH
from tests.helpers import CliSandbox, runner

GENERATED_PLACEHOLDER = "Q2v9kLr0yTz3PaX8mWn5bCe1"  # what a CDK-generated secret holds before setup


@pytest.fixture
def deployed(sandbox: CliSandbox) -> Iterator[CliSandbox]:
    """The sandbox as `cdk deploy` leaves it: a webhook API that answers, secrets still placeholders."""
    with ApiGatewayServer(sandbox.pipeline.webhook).start() as gateway:
        document = json.loads(sandbox.path.read_text())
        document["webhook_url"] = f"{gateway.url}{WEBHOOK_PATH}"
        sandbox.path.write_text(json.dumps(document))
        secrets = sandbox.rt.client("secretsmanager")
        for secret in (
            sandbox.deployment.resources.api_key_secret,
            sandbox.deployment.resources.webhook_secret,
        ):
            secrets.put_secret_value(SecretId=secret, SecretString=GENERATED_PLACEHOLDER)
        yield sandbox


def run(sandbox: CliSandbox, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, ["--sandbox", str(sandbox.path), *args], input=stdin, env={"COLUMNS": "200"})


def document(result: Any) -> Any:
    # The webhook function runs in this process here, and its metrics (EMF, one line each) reach stdout too.
    return json.loads(result.stdout[result.stdout.index("{\n") :])


def checks(result: Any) -> dict[str, list[dict[str, Any]]]:
    by_check: dict[str, list[dict[str, Any]]] = {}
    for finding in document(result)["checks"]:
        by_check.setdefault(finding["check"], []).append(finding)
    return by_check


def test_setup_then_doctor_is_healthy_and_a_revoked_key_is_named(deployed: CliSandbox) -> None:
    # Before setup, doctor names both secrets and the command that sets them
    before = run(deployed, "doctor", "--json")
    assert before.exit_code == 3
    found = checks(before)
    assert found["api key"][0]["state"] == "fail" and "batchdrop setup" in found["api key"][0]["fix"]
    assert found["webhook secret"][0]["state"] == "fail"

    # A key Extend refuses is not stored
    refused = run(deployed, "setup", "--api-key-stdin", stdin="sk_test_wrong_key\n")
    assert refused.exit_code == 1 and "Extend refused the API key" in refused.stderr
    assert "nothing was stored" in refused.stderr

    # setup stores the key (from stdin, never echoed), registers the webhook, checks every route
    key = deployed.sim.api_key
    done = run(deployed, "setup", "--api-key-stdin", "--json", stdin=f"{key}\n")
    assert done.exit_code == 0, done.output
    report = document(done)
    assert report["ready"] is True and len(report["changed"]) == 2
    assert (
        "stored the API key" in report["changed"][0] and "registered webhook endpoint" in report["changed"][1]
    )
    assert key not in done.stdout + done.stderr
    assert deployed.rt.secret_value("webhook_secret", force_fetch=True).startswith("wss_")
    assert {r["check"] for r in report["routes"]} == {"route invoices", "route documents", "route packets"}

    # Re-run: nothing to change
    again = run(deployed, "setup", "--json")
    assert again.exit_code == 0 and document(again)["changed"] == []

    # doctor is healthy: every check ok (or not applicable to a sandbox)
    healthy = run(deployed, "doctor", "--json")
    assert healthy.exit_code == 0, healthy.stdout
    states = {f["check"]: f["state"] for f in document(healthy)["checks"]}
    assert states.pop("schedules") == "skip"
    assert set(states.values()) == {"ok"}, states
    assert "webhook" in states and "arrivals DLQ" in states

    # The key revoked at Extend: doctor fails and names the key
    deployed.sim.configure(api_key="sk_test_rotated_elsewhere")
    revoked = run(deployed, "doctor")
    assert revoked.exit_code == 3
    assert "Extend refused the API key" in revoked.stdout and "setup --replace-key" in revoked.stdout
    stale = run(deployed, "setup")
    assert stale.exit_code == 1 and "the stored key" in stale.stderr and "--replace-key" in stale.stderr


def test_doctor_names_a_missing_processor_a_blocked_route_and_dead_letters(deployed: CliSandbox) -> None:
    assert run(deployed, "setup", "--api-key-stdin", stdin=f"{deployed.sim.api_key}\n").exit_code == 0
    deployed.sim.configure(refused_processors=["cl_doctype_test"])
    rt = deployed.rt
    rt.state.block_route(
        "packets", "API_KEY_REJECTED", "Extend said: invalid key", "2099-01-01T00:00:00Z", 60
    )
    arrivals_dlq = deployed.deployment.dlq_urls["arrivals"]
    rt.client("sqs").send_message(QueueUrl=arrivals_dlq, MessageBody="{}")

    result = run(deployed, "doctor", "--json")
    assert result.exit_code == 3
    found = checks(result)
    assert any("no classify processor cl_doctype_test" in f["detail"] for f in found["route documents"])
    blocked = [f for f in found["route packets"] if f["state"] == "fail"]
    assert blocked and "API_KEY_REJECTED" in blocked[0]["detail"] and "flush packets" in blocked[0]["fix"]
    assert found["arrivals DLQ"][0]["state"] == "fail"
    assert "batchdrop redrive --queue arrivals" in found["arrivals DLQ"][0]["fix"]


def test_setup_without_a_terminal_or_stdin_says_how_to_pass_the_key(deployed: CliSandbox) -> None:
    result = run(deployed, "setup")  # the test runner's stdin is not a terminal
    assert result.exit_code == 1 and "--api-key-stdin" in result.stderr
    assert "start with 'sk_'" in run(deployed, "setup", "--api-key-stdin", stdin="not-a-key").stderr
