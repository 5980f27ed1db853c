"""The whole pipeline on one machine: the real handlers, driven by the local Lambda runtime against a
provisioned moto deployment and an Extend endpoint (the simulator, or a real API)."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

from botocore.config import Config

from batchdrop_core import deployspec
from batchdrop_core.config import SETTINGS_ENV, Settings
from batchdrop_core.observability import METRICS_NAMESPACE, SERVICE, SERVICE_ENV, metrics
from sandbox.aws import Deployment
from sandbox.lambda_runtime import LambdaContext, SqsEventSource, share_metrics_safely

# The background pollers (Sandbox) use the stack's batching window; drain(), which tests call, a short one.
INTAKE_BATCHING_WINDOW_SECONDS = float(deployspec.INTAKE_TRIGGER.batching_window_seconds)


def handler_environment(settings: Settings, deployment: Deployment) -> dict[str, str]:
    return {
        SETTINGS_ENV: settings.to_env_json(),
        **deployment.resources.to_env(),
        SERVICE_ENV: SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
    }


@dataclass(frozen=True)
class FunctionWiring:
    """How the sandbox runs one function, read back from the objects that run it (for the test that holds
    it against the synthesized template)."""

    handler: str
    timeout_seconds: float
    batch_size: int | None = None
    batching_window_seconds: float | None = None
    max_concurrency: int | None = None


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
        self.modules = {spec.name: load_handler(spec.module) for spec in deployspec.FUNCTIONS}
        share_metrics_safely(metrics)  # concurrent invocations of one function share the handler's module
        # One client for every poller, each of which may hold a connection in a 20 s long poll.
        sqs = deployment.session.client("sqs", config=Config(max_pool_connections=50))
        self.sqs = sqs
        self.intake = self._event_source(
            deployspec.INTAKE, deployment.arrivals_queue_url, window=intake_window
        )
        # The submitter's mapping sets no maximum: on a FIFO queue Lambda then runs one invocation per message
        # group with messages (group = route), so its concurrency here is the number of routes.
        self.submitter = self._event_source(
            deployspec.SUBMITTER, deployment.resources.flush_queue_url, concurrency=len(settings.routes)
        )
        self.results = (
            self._event_source(deployspec.RESULTS, deployment.resources.results_queue_url)
            if self.modules.get("results")
            else None
        )

    def _event_source(
        self,
        spec: deployspec.FunctionSpec,
        queue_url: str,
        *,
        window: float | None = None,
        concurrency: int | None = None,
    ) -> SqsEventSource:
        trigger = spec.trigger
        assert trigger is not None, f"{spec.name} has no queue trigger"
        return SqsEventSource(
            self.sqs,
            queue_url,
            self.modules[spec.name].lambda_handler,
            function_name=spec.function_name,
            batch_size=trigger.batch_size,
            window=trigger.batching_window_seconds if window is None else window,
            timeout_seconds=spec.timeout_seconds,
            concurrency=concurrency or trigger.max_concurrency or 1,
        )

    def wiring(self) -> dict[str, FunctionWiring]:
        """Each function as this pipeline runs it (its handler module, the event source's settings)."""
        wired = {
            name: FunctionWiring(
                handler=f"{self.modules[name].__name__}.lambda_handler",
                timeout_seconds=source.timeout_seconds,
                batch_size=source.batch_size,
                batching_window_seconds=source.window,
                max_concurrency=source.concurrency,
            )
            for name, source in (
                ("intake", self.intake),
                ("submitter", self.submitter),
                ("results", self.results),
            )
            if source is not None
        }
        for name, context in (
            ("webhook", self._webhook_context()),
            ("reconciler", self._reconciler_context()),
        ):
            wired[name] = FunctionWiring(
                f"{self.modules[name].__name__}.lambda_handler", context.timeout_seconds
            )
        return wired

    @staticmethod
    def _webhook_context() -> LambdaContext:
        return LambdaContext(deployspec.WEBHOOK.function_name, deployspec.WEBHOOK.timeout_seconds)

    @staticmethod
    def _reconciler_context() -> LambdaContext:
        return LambdaContext(deployspec.RECONCILER.function_name, deployspec.RECONCILER.timeout_seconds)

    def runtime(self, name: str) -> Any:
        return self.modules[name].runtime()

    def webhook(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """What API Gateway does with a request to POST /webhooks/extend: invoke the webhook function."""
        return self.modules["webhook"].lambda_handler(event, context or self._webhook_context())

    def schedule(self, task: str) -> dict[str, Any]:
        """What the EventBridge schedule does: invoke the reconciler with ``{"task": …}``."""
        return self.modules["reconciler"].lambda_handler({"task": task}, self._reconciler_context())

    def pump(self, rounds: int = 50) -> None:
        """Drain intake, then flush requests, then results, until all three are idle."""
        for _ in range(rounds):
            handled = self.intake.drain() + self.submitter.drain()
            if self.results:
                handled += self.results.drain()
            if not handled:
                return
