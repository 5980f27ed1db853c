"""The sandbox: batchdrop's whole deployment running on this machine.

moto server (its own process) stands in for AWS, the Extend simulator for Extend (or a real Extend API
when a URL and key are given), and the real handlers run under the local Lambda runtime: SQS event
source mappings with parallel pollers, an HTTP endpoint that plays API Gateway for the webhook, and the
two schedules. Used by ``make demo``, the end-to-end and CLI tests, the reliability runs and the
benchmarks; the CLI tests and most benchmarks turn its background work off and drive the pipeline by hand.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import boto3

from batchdrop_core.config import Settings
from batchdrop_core.tracking import FileStatus
from sandbox import interrupt
from sandbox.aws import REGION, Deployment, MotoServer, provision, queue_depth, subscribe_queue_to_topic
from sandbox.lambda_runtime import wait_idle
from sandbox.pipeline import INTAKE_BATCHING_WINDOW_SECONDS, LocalPipeline

WEBHOOK_PATH = "/webhooks/extend"
SANDBOX_API_KEY = "sk_sandbox_not_a_real_key"
# How long a stop waits for the invocations in hand (pollers, schedules, a webhook) before it abandons
# them; the results and submitter handlers see no time left once stopping, and return within seconds.
STOP_GRACE_SECONDS = 30.0


@dataclass
class SandboxOptions:
    routes: list[dict[str, Any]]
    settings: dict[str, Any] = field(default_factory=dict)  # overrides of Settings fields (camelCase)
    extend_url: str | None = None  # a real Extend API instead of the simulator
    api_key: str | None = None
    files_per_minute: float = 0.0  # simulator throughput (0 = immediate)
    read_rps: float = 25.0  # simulator read limit
    processing_delay: float = 0.0
    # Any other simulator setting (sandbox.extend_sim.ExtendSimulator.SETTINGS), applied once it runs
    sim: dict[str, Any] = field(default_factory=dict)
    sweep_interval: float = 2.0  # seconds between flush sweeps (every minute on AWS)
    reconcile_interval: float = 10.0  # seconds between reconciler runs (every 5 minutes on AWS)
    intake_pollers: int | None = None  # default: the mapping's maximum concurrency (as on AWS)
    results_pollers: int | None = None
    # Intake's batching window (the stack's): its pollers', or drain()'s when the pipeline is driven by hand
    intake_window: float = INTAKE_BATCHING_WINDOW_SECONDS
    name_prefix: str = "batchdrop"
    webhook_secret: str | None = None  # default: a fresh one each run
    queue_visibility: dict[str, int] = field(default_factory=dict)  # seconds by queue (sandbox.aws.provision)
    # What runs by itself. Whoever drives the pipeline by hand (drain(), pump(), pollers of its own), as the
    # CLI tests and most benchmarks do, turns these off so that nothing else is at work meanwhile.
    background: bool = True  # the pollers and the schedules
    webhooks: bool = True  # the API Gateway stand-in, and the simulator delivering webhooks to it
    inbox: bool = True  # a queue subscribed to the topic (notifications_queue_url)


class Sandbox:
    def __init__(self, options: SandboxOptions, moto: MotoServer | None = None) -> None:
        """``moto``: a running server to provision in (a test suite shares one), left running at stop."""
        self.options = options
        self.moto = moto or MotoServer()
        self._owns_moto = moto is None
        self.simulator: Any = None
        self.webhook_server: Any = None
        self.deployment: Deployment | None = None
        self.pipeline: LocalPipeline | None = None
        self.settings: Settings | None = None
        self.notifications_queue_url = ""
        self._stop = threading.Event()
        self._scheduler: threading.Thread | None = None
        self._stopped: StopReport | None = None
        self._forget_moto: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Start everything; if that fails or is interrupted part way, what was started is stopped."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Sandbox:
        from sandbox.apigw import ApiGatewayServer
        from sandbox.extend_sim import ExtendSimulator

        # An invocation that had nothing to count (an idle sweep) is normal here; on AWS the warning
        # goes to the function's log, in the sandbox it would cover the terminal.
        warnings.filterwarnings("ignore", message="No application metrics to publish")

        opts = self.options
        if self._owns_moto:
            self.moto.start()
            self._forget_moto = interrupt.on_force(self.moto.kill)
        # Remember what the process pointed boto3 at before, so stop() can put it back (a test suite
        # runs a sandbox between tests that use their own moto server).
        self._saved_env = {name: os.environ.get(name) for name in self.moto.environment()}
        self.moto.use_in_this_process()
        # The webhook endpoint must exist before the simulator (which delivers to it), and the handler it
        # serves exists only once the pipeline has set the functions' environment: resolve it late.
        if opts.webhooks:
            self.webhook_server = ApiGatewayServer(
                lambda event, context: self.pipeline.webhook(event, context)
            ).start()
        webhook_secret = opts.webhook_secret or f"wss_sandbox_{secrets.token_hex(12)}"
        api_key = opts.api_key or SANDBOX_API_KEY
        extend_url = opts.extend_url
        if extend_url is None:
            self.simulator = ExtendSimulator(
                api_key=api_key,
                webhook_url=self.webhook_url,  # None: no deliveries
                webhook_secret=webhook_secret,
                files_per_minute=opts.files_per_minute,
                read_rps=opts.read_rps,
                processing_delay=opts.processing_delay,
            ).start()
            if opts.sim:
                self.simulator.configure(**opts.sim)
            extend_url = self.simulator.base_url
        settings_data = {"routes": opts.routes, "extendBaseUrl": extend_url, **opts.settings}
        self.settings = Settings.parse(settings_data, "sandbox settings")
        self.deployment = provision(
            self.settings,
            name_prefix=opts.name_prefix,
            api_key=api_key,
            webhook_secret=webhook_secret,
            session=boto3.session.Session(region_name=REGION),
            visibility_seconds=opts.queue_visibility,
        )
        if opts.inbox:
            self.notifications_queue_url = subscribe_queue_to_topic(
                self.deployment, f"{opts.name_prefix}-inbox"
            )
        self.pipeline = LocalPipeline(self.settings, self.deployment, intake_window=opts.intake_window)
        if opts.background:
            self._run_in_background()
        return self

    def _run_in_background(self) -> None:
        """The event sources' pollers and the schedules, as Lambda and EventBridge run them on AWS."""
        opts = self.options
        # The stack's batching window: each intake invocation asks for a flush of every route it saw, and
        # with 0.5 s windows a 2,500-file upload made ~330 flush requests, handled one at a time per route.
        self.pipeline.intake.start(pollers=opts.intake_pollers, window=opts.intake_window)
        self.pipeline.submitter.start()  # one poller per route (message group)
        if self.pipeline.results:
            self.pipeline.results.start(pollers=opts.results_pollers)
        self._scheduler = threading.Thread(target=self._run_schedules, name="schedules", daemon=True)
        self._scheduler.start()

    def stop(self, grace: float = STOP_GRACE_SECONDS, *, survey: bool | None = None) -> StopReport:
        """Stop in order: the pollers and schedules take no new work and get ``grace`` seconds (in all) to
        finish the invocations in hand, then the API Gateway stand-in and the simulator stop, moto server
        last. ``survey`` (default: when the run was interrupted) counts what was left unfinished first; an
        interrupted run's report is noted for ``interrupt.summary``. Calling it again does nothing."""
        if self._stopped is not None:
            return self._stopped
        survey = interrupt.received() if survey is None else survey
        with interrupt.shielded():
            report = self._stop_in_order(grace, survey)
        self._stopped = report
        if interrupt.received():
            interrupt.note(report.describe(), abandoned=bool(report.abandoned))
        return report

    def _stop_in_order(self, grace: float, survey: bool) -> StopReport:
        report = StopReport()
        deadline = time.monotonic() + grace
        self._stop.set()
        pipeline = self.pipeline
        sources = (
            [s for s in (pipeline.intake, pipeline.submitter, pipeline.results) if s] if pipeline else []
        )
        for source in sources:
            source.request_stop()
        if self._scheduler and self._scheduler.is_alive():
            self._scheduler.join(timeout=max(0.0, deadline - time.monotonic()))
            if self._scheduler.is_alive():
                report.abandoned.append(self._scheduler.name)
        for source in sources:
            report.abandoned += source.stop(timeout=max(0.0, deadline - time.monotonic()))
        if self.webhook_server:
            with contextlib.suppress(Exception):
                self.webhook_server.stop()
            if not wait_idle("batchdrop-webhook", max(0.0, deadline - time.monotonic())):
                report.abandoned.append("webhook")
        if survey and self.deployment:
            self._survey(report)
        if self.simulator:
            self.simulator.stop()
        if self._forget_moto:
            self._forget_moto()
        if self._owns_moto:
            self.moto.stop()
        for name, value in getattr(self, "_saved_env", {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        return report

    def _survey(self, report: StopReport) -> None:
        """What is left: files not terminal, messages in the queues, webhooks Extend has yet to deliver."""
        try:
            session = self.deployment.session
            report.files = Counter({s: n for s, n in self.count_files().items() if n})
            sqs = session.client("sqs")
            queues = {
                "arrivals": self.deployment.arrivals_queue_url,
                "flush": self.deployment.resources.flush_queue_url,
                "results": self.deployment.resources.results_queue_url,
            }
            report.messages = {name: queue_depth(sqs, url) for name, url in queues.items() if url}
            if self.simulator:
                report.webhooks_pending = self.simulator.webhooks.pending()
        except Exception as exc:  # noqa: BLE001 - a stop must go on; the report says what it could not count
            report.survey_error = f"{type(exc).__name__}: {exc}"[:200]

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
    def webhook_url(self) -> str | None:
        """Where Extend delivers webhooks; None when this sandbox serves none (``webhooks=False``)."""
        return f"{self.webhook_server.url}{WEBHOOK_PATH}" if self.webhook_server is not None else None

    def endpoints(self) -> dict[str, Any]:
        """The endpoints file the CLI reads with ``--sandbox PATH`` (format: batchdrop_cli.targets)."""
        from batchdrop_cli.targets import endpoints_document

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
        counts = self.moto.status_counts(self.deployment.resources.files_table)
        return {status: counts.get(status, 0) for status in FileStatus.ALL}


def counted(count: int, noun: str) -> str:
    """``1 message``, ``2,500 messages``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


@dataclass
class StopReport:
    """What ``Sandbox.stop`` left unfinished (the counts only when it surveyed)."""

    files: Counter[str] | None = None  # every tracked file by status
    messages: dict[str, int] = field(default_factory=dict)  # by queue, visible or in flight
    webhooks_pending: int = 0
    abandoned: list[str] = field(default_factory=list)  # threads still busy when the grace ran out
    survey_error: str | None = None

    def describe(self) -> str:
        parts = []
        if self.files is not None:
            left = {s: n for s, n in self.files.items() if s not in FileStatus.TERMINAL and n}
            total = sum(self.files.values())
            if left:
                shown = ", ".join(f"{s} {left[s]:,}" for s in FileStatus.ALL if s in left)
                parts.append(f"{sum(left.values()):,} of {total:,} tracked files not terminal ({shown})")
            else:
                parts.append(f"all {total:,} tracked files terminal" if total else "no files tracked")
            waiting = {name: n for name, n in self.messages.items() if n}
            if waiting:
                shown = ", ".join(f"{name} {n:,}" for name, n in waiting.items())
                parts.append(f"{counted(sum(waiting.values()), 'message')} left in queues ({shown})")
            else:
                parts.append("no messages left in queues")
            if self.webhooks_pending:
                parts.append(f"{counted(self.webhooks_pending, 'webhook')} not delivered")
        if self.survey_error:
            parts.append(f"could not count what was left ({self.survey_error})")
        if self.abandoned:
            parts.append(f"abandoned busy: {', '.join(self.abandoned)}")
        return "; ".join(parts) or "sandbox stopped"
