"""Where the CLI finds a deployment: a CloudFormation stack pair, or a running sandbox's endpoints file.

This module is the one place that reads either kind of target into a ``Runtime`` (the same settings,
stores and Extend client the Lambdas use), so the commands never need to know which one they talk to.

Sandbox endpoints file (written by ``make demo ARGS="--keep --endpoints PATH"``), one JSON object:

    aws_endpoint_url, region                    moto server that holds the sandbox's AWS resources
    extend_url, webhook_url                     the Extend simulator (or real API) and the local webhook
    drop_bucket, results_bucket                 bucket names
    files_table, batches_table, state_table     table names
    topic_arn                                   the notification topic
    arrivals_queue_url, flush_queue_url, results_queue_url
    arrivals_dlq_url, flush_dlq_url, results_dlq_url
    api_key_secret, webhook_secret              Secrets Manager ids (ARN or name)
    settings                                    Settings as ``Settings.to_env_json()`` writes it (object
                                                or JSON string); optional when routes + extend_url exist
    routes                                      [{name, prefix, type, processorId}, ...]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError, ProfileNotFound

from batchdrop_core.config import ConfigError, Resources, Settings
from batchdrop_core.runconfig import RunRoute
from batchdrop_core.runtime import Runtime

DEFAULT_STACK_PREFIX = "Batchdrop"
SETTINGS_CONTEXT_KEY = "batchdrop"
STACK_PREFIX_CONTEXT_KEY = "stackPrefix"
SANDBOX_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto takes any
QUEUE_NAMES = ("arrivals", "flush", "results")

# Stack output → Resources field. The names are the CfnOutputs of stacks/stateful_stack.py and
# stacks/stateless_stack.py.
STACK_OUTPUTS = {
    "DropBucketName": "drop_bucket",
    "ResultsBucketName": "results_bucket",
    "FilesTableName": "files_table",
    "BatchesTableName": "batches_table",
    "StateTableName": "state_table",
    "TopicArn": "topic_arn",
    "ApiKeySecretArn": "api_key_secret",
    "WebhookSecretArn": "webhook_secret",
    "FlushQueueUrl": "flush_queue_url",
    "ResultsQueueUrl": "results_queue_url",
}
STACK_QUEUE_OUTPUTS = {
    "arrivals": ("ArrivalsQueueUrl", "ArrivalsDlqUrl"),
    "flush": ("FlushQueueUrl", "FlushDlqUrl"),
    "results": ("ResultsQueueUrl", "ResultsDlqUrl"),
}
SETTINGS_OUTPUT = "SettingsJson"  # not deployed yet; read when a stack has it
SANDBOX_REQUIRED = (
    "aws_endpoint_url",
    "drop_bucket",
    "results_bucket",
    "files_table",
    "batches_table",
    "state_table",
)


class UserError(Exception):
    """Something the operator can fix; the message says how. The CLI prints it and exits 1."""


@dataclass(frozen=True)
class Queue:
    name: str
    url: str | None
    dlq_url: str | None


@dataclass
class Target:
    """One deployment the CLI can talk to."""

    description: str  # for messages: "stack Batchdrop in eu-west-1", "sandbox /tmp/endpoints.json"
    settings: Settings
    resources: Resources
    session: Any
    queues: dict[str, Queue] = field(default_factory=dict)
    webhook_url: str | None = None
    is_sandbox: bool = False
    stacks: tuple[str, ...] = ()  # (stateful, stateless) names of a deployed stack pair
    missing_hint: str = ""  # what to do when a resource is not there
    _runtime: Runtime | None = field(default=None, repr=False)

    def runtime(self) -> Runtime:
        # One per target, so commands share its clients.
        if self._runtime is None:
            self._runtime = Runtime(
                settings=self.settings.to_run_settings(), resources=self.resources, session=self.session
            )
        return self._runtime

    @property
    def routes(self) -> tuple[RunRoute, ...]:
        """The routes in effect: those applied to the State table (`batchdrop routes apply`), or the
        deployment's (``settings``, from synth) when none were applied."""
        return self.runtime().settings.routes

    def route(self, name: str) -> RunRoute:
        return self.runtime().settings.route(name)

    def require(self, field_name: str) -> str:
        value = getattr(self.resources, field_name)
        if not value:
            raise UserError(f"{self.description} has no {field_name.replace('_', ' ')}; {self.missing_hint}")
        return value


class SandboxSession:
    """A boto3 session whose clients all talk to the sandbox's moto server, with fake credentials.

    Passing ``endpoint_url`` per client (instead of setting AWS_ENDPOINT_URL) leaves the caller's
    environment alone.
    """

    def __init__(self, endpoint_url: str, region: str) -> None:
        self.endpoint_url = endpoint_url
        self._session = boto3.session.Session(region_name=region, **SANDBOX_CREDENTIALS)

    def client(self, service: str, **kwargs: Any) -> Any:
        return self._session.client(service, endpoint_url=self.endpoint_url, **kwargs)


def resolve(
    *, sandbox: Path | None, stack: str | None, region: str | None, profile: str | None = None
) -> Target:
    """The target the global options name: ``--sandbox`` wins; otherwise a deployed stack."""
    if sandbox is not None:
        return load_sandbox(sandbox)
    prefix = stack or _cdk_context().get(STACK_PREFIX_CONTEXT_KEY) or DEFAULT_STACK_PREFIX
    return load_stack(prefix, region, profile)


# -- sandbox ----------------------------------------------------------------------------------------------
def load_sandbox(path: Path) -> Target:
    start_hint = f'start one with `make demo ARGS="--files 0 --keep --endpoints {path}"`'
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"no sandbox endpoints file at {path}; {start_hint}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read the sandbox endpoints file {path}: {exc}") from None
    if not isinstance(document, dict):
        raise UserError(f"{path} is not a sandbox endpoints file (expected a JSON object)")
    missing = [key for key in SANDBOX_REQUIRED if not document.get(key)]
    if missing:
        raise UserError(f"{path} is not a complete sandbox endpoints file; missing: {', '.join(missing)}")

    settings = _sandbox_settings(document, path)
    region = document.get("region") or "us-east-1"
    resources = Resources(**{name: document.get(name) or None for name in Resources.ENV_NAMES})
    queues = {
        name: Queue(name, document.get(f"{name}_queue_url"), document.get(f"{name}_dlq_url"))
        for name in QUEUE_NAMES
    }
    return Target(
        description=f"sandbox {path}",
        settings=settings,
        resources=resources,
        session=SandboxSession(document["aws_endpoint_url"], region),
        queues=queues,
        webhook_url=document.get("webhook_url"),
        is_sandbox=True,
        missing_hint=f"the endpoints file {path} does not name it",
    )


def _sandbox_settings(document: dict[str, Any], path: Path) -> Settings:
    raw = document.get("settings")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path}: 'settings' is not valid JSON: {exc}") from None
    if not raw:
        if not document.get("routes"):
            raise UserError(f"{path} has neither 'settings' nor 'routes'")
        raw = {"routes": document["routes"]}
        if document.get("extend_url"):
            raw["extendBaseUrl"] = document["extend_url"]
    try:
        return Settings.parse(raw, str(path))
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def endpoints_document(
    deployment: Any,
    settings: Settings,
    *,
    aws_endpoint_url: str,
    region: str,
    extend_url: str,
    webhook_url: str | None = None,
) -> dict[str, Any]:
    """The endpoints file for a sandbox ``Deployment`` (what the demo writes with ``--endpoints``)."""
    return {
        "aws_endpoint_url": aws_endpoint_url,
        "region": region,
        "extend_url": extend_url,
        "webhook_url": webhook_url,
        **deployment.endpoints(),
        "api_key_secret": deployment.resources.api_key_secret,
        "webhook_secret": deployment.resources.webhook_secret,
        "settings": json.loads(settings.to_env_json()),
        "routes": [
            {"name": r.name, "prefix": r.prefix, "type": r.type, "processorId": r.processor_id}
            for r in settings.routes
        ],
    }


# -- deployed stacks --------------------------------------------------------------------------------------
def aws_session(region: str | None, profile: str | None) -> boto3.session.Session:
    """A session chosen as the AWS CLI chooses: --profile, then AWS_PROFILE; --region, then AWS_REGION,
    then AWS_DEFAULT_REGION, then the profile's region (boto3 alone does not read AWS_REGION)."""
    region = region or os.environ.get("AWS_REGION") or None
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except ProfileNotFound as exc:
        raise UserError(
            f"{exc}: check --profile or AWS_PROFILE against `aws configure list-profiles`"
        ) from None
    if not session.region_name:
        raise UserError("no AWS region: pass --region, or set AWS_REGION (or a region in your AWS profile)")
    return session


def load_stack(prefix: str, region: str | None, profile: str | None = None) -> Target:
    session = aws_session(region, profile)
    region = session.region_name
    cloudformation = session.client("cloudformation")
    stateful_name, stateless_name = f"{prefix}-Stateful", f"{prefix}-Stateless"
    outputs = _stack_outputs(cloudformation, stateful_name)
    if outputs is None:
        raise UserError(
            f"no batchdrop stack named {prefix} in region {region} (looked for {stateful_name}); deploy with "
            "`cdk deploy --all`, or pass --stack/--region, or --sandbox PATH for a local sandbox"
        )
    # The stateless stack can be destroyed and redeployed on its own; without it, reads still work.
    outputs.update(_stack_outputs(cloudformation, stateless_name) or {})

    resources = Resources(**{field: outputs.get(name) for name, field in STACK_OUTPUTS.items()})
    queues = {
        name: Queue(name, outputs.get(url), outputs.get(dlq))
        for name, (url, dlq) in STACK_QUEUE_OUTPUTS.items()
    }
    return Target(
        description=f"stack {prefix} in {region}",
        settings=_stack_settings(outputs),
        resources=resources,
        session=session,
        queues=queues,
        webhook_url=outputs.get("WebhookUrl"),
        stacks=(stateful_name, stateless_name),
        missing_hint=f"deploy both stacks ({stateful_name}, {stateless_name}) with `cdk deploy --all`",
    )


def _stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        # CloudFormation answers a missing stack with a ValidationError that says "does not exist".
        if exc.response.get("Error", {}).get("Code") == "ValidationError":
            return None
        raise
    if not stacks or stacks[0].get("StackStatus", "").startswith("DELETE_"):
        return None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def _stack_settings(outputs: dict[str, str]) -> Settings:
    """The deployed settings: the stack's SettingsJson output when it has one, else cdk.json here."""
    if outputs.get(SETTINGS_OUTPUT):
        try:
            return Settings.parse(json.loads(outputs[SETTINGS_OUTPUT]), f"stack output {SETTINGS_OUTPUT}")
        except (ConfigError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read the stack's settings: {exc}") from None
    raw = _cdk_context().get(SETTINGS_CONTEXT_KEY)
    if not isinstance(raw, dict):
        raise UserError(
            "cannot find the deployment's settings (routes): run batchdrop in the project directory, "
            f"whose cdk.json has the '{SETTINGS_CONTEXT_KEY}' context the stacks were deployed with"
        )
    try:
        return Settings.parse(raw, f"cdk.json context '{SETTINGS_CONTEXT_KEY}'")
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _cdk_context() -> dict[str, Any]:
    path = Path("cdk.json")
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("context", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
