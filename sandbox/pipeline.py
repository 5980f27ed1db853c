"""The whole pipeline on one machine: the real handlers, driven by the local Lambda runtime against a
provisioned moto deployment and an Extend endpoint (the simulator, or a real API)."""

from __future__ import annotations

import importlib
import os
from typing import Any

from botocore.config import Config

from batchdrop_core.config import SETTINGS_ENV, Settings
from batchdrop_core.observability import metrics
from sandbox.aws import Deployment
from sandbox.lambda_runtime import LambdaContext, SqsEventSource, share_metrics_safely

# Event source settings as the stacks configure them (stacks/constants.py, which imports the CDK; a test
# keeps the two equal), with a shorter intake window.
INTAKE_BATCH_SIZE = 1000
# The background pollers (Sandbox) use the stack's window; drain(), which tests call, a short one.
INTAKE_BATCHING_WINDOW_SECONDS = 5.0
INTAKE_MAX_CONCURRENCY = 5
SUBMITTER_BATCH_SIZE = 1
RESULTS_BATCH_SIZE = 1
RESULTS_MAX_CONCURRENCY = 2
# The submitter's mapping sets no maximum: on a FIFO queue Lambda then runs one invocation per message
# group with messages (group = route), so its concurrency here is the number of routes.

HANDLER_MODULES = (
    "intake.handler",
    "submitter.handler",
    "webhook.handler",
    "results.handler",
    "reconciler.handler",
)


def handler_environment(settings: Settings, deployment: Deployment) -> dict[str, str]:
    return {
        SETTINGS_ENV: settings.to_env_json(),
        **deployment.resources.to_env(),
        "POWERTOOLS_SERVICE_NAME": "batchdrop",
        "POWERTOOLS_METRICS_NAMESPACE": "Batchdrop",
    }


def load_handler(module_name: str) -> Any | None:
    """A handler module with a fresh runtime (its cached clients and settings are dropped)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in (module_name, module_name.split(".")[0]):
            return None
        raise
    if hasattr(module, "runtime"):
        module.runtime.cache_clear()
    return module


class LocalPipeline:
    def __init__(self, settings: Settings, deployment: Deployment, *, intake_window: float = 0.5) -> None:
        self.settings = settings
        self.deployment = deployment
        os.environ.update(handler_environment(settings, deployment))
        self.modules = {name.split(".")[0]: load_handler(name) for name in HANDLER_MODULES}
        share_metrics_safely(metrics)  # concurrent invocations of one function share the handler's module
        # One client for every poller, each of which may hold a connection in a 20 s long poll.
        sqs = deployment.session.client("sqs", config=Config(max_pool_connections=50))
        self.sqs = sqs
        self.intake = SqsEventSource(
            sqs,
            deployment.arrivals_queue_url,
            self.modules["intake"].lambda_handler,
            function_name="batchdrop-intake",
            batch_size=INTAKE_BATCH_SIZE,
            window=intake_window,
            timeout_seconds=60,
            concurrency=INTAKE_MAX_CONCURRENCY,
        )
        self.submitter = SqsEventSource(
            sqs,
            deployment.resources.flush_queue_url,
            self.modules["submitter"].lambda_handler,
            function_name="batchdrop-submitter",
            batch_size=SUBMITTER_BATCH_SIZE,
            timeout_seconds=300,
            concurrency=len(settings.routes),
        )
        results = self.modules.get("results")
        self.results = (
            SqsEventSource(
                sqs,
                deployment.resources.results_queue_url,
                results.lambda_handler,
                function_name="batchdrop-results",
                batch_size=RESULTS_BATCH_SIZE,
                timeout_seconds=900,
                concurrency=RESULTS_MAX_CONCURRENCY,
            )
            if results
            else None
        )

    def runtime(self, name: str) -> Any:
        return self.modules[name].runtime()

    def webhook(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """What API Gateway does with a request to POST /webhooks/extend: invoke the webhook function."""
        return self.modules["webhook"].lambda_handler(
            event, context or LambdaContext("batchdrop-webhook", 10)
        )

    def schedule(self, task: str) -> dict[str, Any]:
        """What the EventBridge schedule does: invoke the reconciler with ``{"task": …}``."""
        return self.modules["reconciler"].lambda_handler(
            {"task": task}, LambdaContext("batchdrop-reconciler", 300)
        )

    def pump(self, rounds: int = 50) -> None:
        """Drain intake, then flush requests, then results, until all three are idle."""
        for _ in range(rounds):
            handled = self.intake.drain() + self.submitter.drain()
            if self.results:
                handled += self.results.drain()
            if not handled:
                return
