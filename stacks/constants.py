"""Names, sizes and timeouts of the deployed resources, in one place.

Queue visibility timeouts are derived from their consumer's timeout here, so the two cannot drift
(Lambda needs the visibility timeout to be at least 6x the function timeout, aws-notes §1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs

from batchdrop_core import collect, webhook

# --- app ----------------------------------------------------------------------------------------------
CONTEXT_SETTINGS_KEY = "batchdrop"
CONTEXT_STACK_PREFIX_KEY = "stackPrefix"
DEFAULT_STACK_PREFIX = "Batchdrop"
STATEFUL_STACK_SUFFIX = "Stateful"
STATELESS_STACK_SUFFIX = "Stateless"

# --- Lambda -------------------------------------------------------------------------------------------
RUNTIME = lambda_.Runtime.PYTHON_3_14
RUNTIME_PYTHON_VERSION = RUNTIME.name.removeprefix("python")  # "3.14": wheels and bytecode target it
ARCHITECTURE = lambda_.Architecture.ARM_64
PIP_PLATFORM = "aarch64-manylinux2014"  # must match ARCHITECTURE
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
LOG_LEVEL = "INFO"
# Lambda caps all environment variables of a function at 4 KB together; keep room for the rest.
MAX_SETTINGS_ENV_BYTES = 3000
HANDLER_PACKAGES = ("intake", "submitter", "webhook", "results", "reconciler")
SHARED_PACKAGE = "batchdrop_core"


@dataclass(frozen=True)
class FunctionSpec:
    construct_id: str
    handler: str
    timeout: Duration
    memory_mb: int


INTAKE = FunctionSpec("Intake", "intake.handler.lambda_handler", Duration.seconds(60), 256)
SUBMITTER = FunctionSpec("Submitter", "submitter.handler.lambda_handler", Duration.minutes(5), 512)
WEBHOOK = FunctionSpec("Webhook", "webhook.handler.lambda_handler", Duration.seconds(10), 256)
RESULTS = FunctionSpec("Results", "results.handler.lambda_handler", Duration.minutes(15), 1024)
RECONCILER = FunctionSpec("Reconciler", "reconciler.handler.lambda_handler", Duration.minutes(5), 512)

# --- event source mappings ----------------------------------------------------------------------------
INTAKE_BATCH_SIZE = 1000
INTAKE_BATCHING_WINDOW = Duration.seconds(5)
INTAKE_MAX_CONCURRENCY = 5
SUBMITTER_BATCH_SIZE = 1  # one flush request (one route) per invocation
RESULTS_BATCH_SIZE = 1  # one batch collection per invocation
# The ESM minimum; each collector takes 1/RESULTS_MAX_CONCURRENCY of the read rate (batchdrop_core.collect).
RESULTS_MAX_CONCURRENCY = collect.RESULTS_MAX_CONCURRENCY

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
SWEEP_RATE = Duration.minutes(1)
RECONCILE_RATE = Duration.minutes(5)
SWEEP_INPUT = {"task": "sweep"}
RECONCILE_INPUT = {"task": "reconcile"}

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
