"""The sandbox: batchdrop's whole deployment running on this machine.

moto server (its own process) stands in for AWS, the Extend simulator for Extend (or a real Extend API
when a URL and key are given), and the real handlers run under the local Lambda runtime: SQS event
source mappings with parallel pollers, an HTTP endpoint that plays API Gateway for the webhook, and the
two schedules. Used by ``make demo``, the end-to-end tests, the reliability runs and the benchmarks.
"""

from __future__ import annotations

import os
import secrets
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import boto3

from batchdrop_core.config import Settings
from batchdrop_core.tracking import FileStatus
from sandbox.aws import REGION, Deployment, MotoServer, provision, subscribe_queue_to_topic
from sandbox.pipeline import INTAKE_BATCHING_WINDOW_SECONDS, LocalPipeline

WEBHOOK_PATH = "/webhooks/extend"
SANDBOX_API_KEY = "sk_sandbox_not_a_real_key"


@dataclass
class SandboxOptions:
    routes: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)  # overrides of Settings fields (camelCase)
    extend_url: str | None = None  # a real Extend API instead of the simulator
    api_key: str | None = None
    files_per_minute: float = 0.0  # simulator throughput (0 = immediate)
    read_rps: float = 25.0  # simulator read limit
    processing_delay: float = 0.0
    sweep_interval: float = 2.0  # seconds between flush sweeps (every minute on AWS)
    reconcile_interval: float = 10.0  # seconds between reconciler runs (every 5 minutes on AWS)
    intake_pollers: int | None = None  # default: the mapping's maximum concurrency (as on AWS)
    results_pollers: int | None = None
    intake_window: float = INTAKE_BATCHING_WINDOW_SECONDS  # the pollers' batching window (the stack's)
    name_prefix: str = "batchdrop"


class Sandbox:
    def __init__(self, options: SandboxOptions) -> None:
        self.options = options
        self.moto = MotoServer()
        self.simulator: Any = None
        self.webhook_server: Any = None
        self.deployment: Deployment | None = None
        self.pipeline: LocalPipeline | None = None
        self.settings: Settings | None = None
        self.notifications_queue_url = ""
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        from sandbox.apigw import ApiGatewayServer
        from sandbox.extend_sim import ExtendSimulator

        # An invocation that had nothing to count (an idle sweep) is normal here; on AWS the warning
        # goes to the function's log, in the sandbox it would cover the terminal.
        warnings.filterwarnings("ignore", message="No application metrics to publish")

        opts = self.options
        self.moto.start()
        # Remember what the process pointed boto3 at before, so stop() can put it back (a test suite
        # runs a sandbox between tests that use their own moto server).
        self._saved_env = {name: os.environ.get(name) for name in self.moto.environment()}
        self.moto.use_in_this_process()
        # The webhook endpoint must exist before the simulator (which delivers to it), and the handler it
        # serves exists only once the pipeline has set the functions' environment: resolve it late.
        self.webhook_server = ApiGatewayServer(lambda event, context: self.pipeline.webhook(event, context))
        self.webhook_server.start()
        webhook_secret = f"wss_sandbox_{secrets.token_hex(12)}"
        api_key = opts.api_key or SANDBOX_API_KEY
        extend_url = opts.extend_url
        if extend_url is None:
            self.simulator = ExtendSimulator(
                api_key=api_key,
                webhook_url=self.webhook_url,
                webhook_secret=webhook_secret,
                files_per_minute=opts.files_per_minute,
                read_rps=opts.read_rps,
                processing_delay=opts.processing_delay,
            ).start()
            extend_url = self.simulator.base_url
        settings_data = {"routes": opts.routes, "extendBaseUrl": extend_url, **opts.settings}
        self.settings = Settings.parse(settings_data, "sandbox settings")
        self.deployment = provision(
            self.settings,
            name_prefix=opts.name_prefix,
            api_key=api_key,
            webhook_secret=webhook_secret,
            session=boto3.session.Session(region_name=REGION),
        )
        self.notifications_queue_url = subscribe_queue_to_topic(self.deployment, f"{opts.name_prefix}-inbox")
        self.pipeline = LocalPipeline(self.settings, self.deployment)
        # The stack's batching window: each intake invocation asks for a flush of every route it saw, and
        # with 0.5 s windows a 2,500-file upload made ~330 flush requests, handled one at a time per route.
        self.pipeline.intake.start(pollers=opts.intake_pollers, window=opts.intake_window)
        self.pipeline.submitter.start()  # one poller per route (message group)
        if self.pipeline.results:
            self.pipeline.results.start(pollers=opts.results_pollers)
        self._scheduler = threading.Thread(target=self._run_schedules, name="schedules", daemon=True)
        self._scheduler.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._scheduler:
            self._scheduler.join(timeout=30)
        if self.pipeline:
            for source in (self.pipeline.intake, self.pipeline.submitter, self.pipeline.results):
                if source:
                    source.stop()
        if self.simulator:
            self.simulator.stop()
        if self.webhook_server:
            self.webhook_server.stop()
        self.moto.stop()
        for name, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run_schedules(self) -> None:
        from batchdrop_core.observability import logger

        next_reconcile = self.options.reconcile_interval
        elapsed = 0.0
        while not self._stop.wait(self.options.sweep_interval):
            elapsed += self.options.sweep_interval
            tasks = ["sweep"]
            if elapsed >= next_reconcile:
                tasks.append("reconcile")
                next_reconcile += self.options.reconcile_interval
            for task in tasks:
                try:
                    self.pipeline.schedule(task)
                except Exception:  # noqa: BLE001 - a failed scheduled run is retried by the next tick, as on AWS
                    logger.exception("scheduled run failed", extra={"task": task})

    # -- what a user needs to reach it -----------------------------------------------------------------
    @property
    def webhook_url(self) -> str:
        return f"{self.webhook_server.url}{WEBHOOK_PATH}"

    def endpoints(self) -> dict[str, Any]:
        """The endpoints file the CLI reads with ``--sandbox PATH`` (format: batchdrop_core.cli.targets)."""
        from batchdrop_core.cli.targets import endpoints_document

        return endpoints_document(
            self.deployment,
            self.settings,
            aws_endpoint_url=self.moto.url,
            region=REGION,
            extend_url=self.settings.extend_base_url,
            webhook_url=self.webhook_url,
        )

    # -- observing it ----------------------------------------------------------------------------------
    def count_files(self) -> dict[str, int]:
        """Files by status, for progress displays (never used by the pipeline itself). Counted by the
        sandbox's moto server in its memory (``sandbox.moto_server.status_counts``): even one Scan
        projected to the status costs moto ~0.6 ms of CPU per item, and the demo asks every second."""
        counted = self.moto.status_counts(self.deployment.resources.files_table)
        return {status: counted.get(status, 0) for status in FileStatus.ALL}
