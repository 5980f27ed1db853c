"""Names, sizes and timeouts of the deployed resources, in one place.

Queue visibility timeouts are derived from their consumer's timeout here, so the two cannot drift
(Lambda needs the visibility timeout to be at least 6x the function timeout, aws-notes §1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from batchdrop_core import config, deployspec, observability, webhook

# --- app ----------------------------------------------------------------------------------------------
CONTEXT_SETTINGS_KEY = "batchdrop"
CONTEXT_STACK_PREFIX_KEY = "stackPrefix"
# cdk.json ships example routes whose processor ids contain PLACEHOLDER_MARK: a deploy refuses them (every
# submission would fail) unless this context key is true (a demo or a synth that is not deployed).
CONTEXT_ALLOW_PLACEHOLDERS_KEY = "allowPlaceholderProcessors"
PLACEHOLDER_MARK = config.PLACEHOLDER_MARK
DEFAULT_STACK_PREFIX = "Batchdrop"
STATEFUL_STACK_SUFFIX = "Stateful"
STATELESS_STACK_SUFFIX = "Stateless"
# Cost allocation tags on every stack (activate them once in the Billing console to see cost per deployment).
TAG_APPLICATION = "batchdrop:application"
TAG_DEPLOYMENT = "batchdrop:deployment"


def service_name(stack_prefix: str) -> str:
    """One deployment's service name: the one dimension of its metrics and alarms, the "service" of its logs,
    so that two deployments in an account keep them apart (``batchdrop`` for the default prefix)."""
    if stack_prefix == DEFAULT_STACK_PREFIX:
        return observability.SERVICE
    return f"{observability.SERVICE}-{stack_prefix}"


# --- Lambda -------------------------------------------------------------------------------------------
RUNTIME = lambda_.Runtime.PYTHON_3_14
RUNTIME_PYTHON_VERSION = RUNTIME.name.removeprefix("python")  # "3.14": wheels and bytecode target it
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "aarch64-manylinux2014"  # must match ARCHITECTURE
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
LOG_LEVEL = "INFO"
# Lambda caps all environment variables of a function at 4 KB together; keep room for the rest.
MAX_SETTINGS_ENV_BYTES = 3000
HANDLER_PACKAGES = tuple(f.name for f in deployspec.FUNCTIONS)
SHARED_PACKAGE = "batchdrop_core"


@dataclass(frozen=True)
class FunctionSpec:
    """A function of ``batchdrop_core.deployspec`` in CDK types."""

    construct_id: str
    handler: str
    timeout: Duration
    memory_mb: int

    @classmethod
    def of(cls, spec: deployspec.FunctionSpec) -> FunctionSpec:
        return cls(spec.construct_id, spec.handler, Duration.seconds(spec.timeout_seconds), spec.memory_mb)


INTAKE = FunctionSpec.of(deployspec.INTAKE)
SUBMITTER = FunctionSpec.of(deployspec.SUBMITTER)
WEBHOOK = FunctionSpec.of(deployspec.WEBHOOK)
RESULTS = FunctionSpec.of(deployspec.RESULTS)
RECONCILER = FunctionSpec.of(deployspec.RECONCILER)

# --- event source mappings (deployspec) ---------------------------------------------------------------
INTAKE_BATCH_SIZE = deployspec.INTAKE_TRIGGER.batch_size
INTAKE_BATCHING_WINDOW = Duration.seconds(deployspec.INTAKE_TRIGGER.batching_window_seconds)
INTAKE_MAX_CONCURRENCY = deployspec.INTAKE_TRIGGER.max_concurrency
SUBMITTER_BATCH_SIZE = deployspec.SUBMITTER_TRIGGER.batch_size
RESULTS_BATCH_SIZE = deployspec.RESULTS_TRIGGER.batch_size
RESULTS_MAX_CONCURRENCY = deployspec.RESULTS_TRIGGER.max_concurrency

# --- queues -------------------------------------------------------------------------------------------
VISIBILITY_TIMEOUT_FACTOR = 6
MAX_RECEIVE_COUNT = 5
RETENTION = Duration.days(14)  # the SQS maximum, for source queues and DLQs alike


def visibility_timeout(consumer: FunctionSpec, batching_window: Duration | None = None) -> Duration:
    """6x the consumer's timeout, plus the batching window during which messages are already in flight."""
    seconds = VISIBILITY_TIMEOUT_FACTOR * consumer.timeout.to_seconds()
    if batching_window is not None:
        seconds += batching_window.to_seconds()
    return Duration.seconds(seconds)


# --- schedules ----------------------------------------------------------------------------------------
SWEEP_RATE = Duration.seconds(deployspec.SWEEP.rate_seconds)
RECONCILE_RATE = Duration.seconds(deployspec.RECONCILE.rate_seconds)
SWEEP_INPUT = {"task": deployspec.SWEEP.task}
RECONCILE_INPUT = {"task": deployspec.RECONCILE.task}

# --- API Gateway --------------------------------------------------------------------------------------
API_STAGE = "prod"
WEBHOOK_PATH = tuple(webhook.PATH.strip("/").split("/"))  # ("webhooks", "extend")
API_RATE_LIMIT = 50  # requests per second, steady state
API_BURST_LIMIT = 100

# --- buckets ------------------------------------------------------------------------------------------
ACCESS_LOGS_EXPIRATION = Duration.days(90)
# Access logs are versioned so a log cannot be overwritten or deleted unseen: a replaced or deleted
# log stays this long as a noncurrent version.
ACCESS_LOGS_NONCURRENT_EXPIRATION = Duration.days(30)

# --- monitoring ---------------------------------------------------------------------------------------
ALARM_PERIOD = Duration.minutes(5)
WEBHOOKS_REJECTED_THRESHOLD = 20  # per ALARM_PERIOD; a few bad requests are noise, a burst is an attack
