"""Compute and wiring: work queues, the five functions, the webhook API, schedules, alarms, dashboard.

Safe to destroy and redeploy: it holds nothing but messages in flight between functions. It refers to the
stateful stack (one direction only), never the other way round.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from batchdrop_core.config import Settings
from stacks import constants
from stacks.functions import Functions
from stacks.monitoring import Monitoring
from stacks.queues import QueueWithDlq
from stacks.schedules import Schedules
from stacks.stateful_stack import StatefulStack
from stacks.webhook_api import WebhookApi


class StatelessStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: StatefulStack,
        settings: Settings,
        service: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._settings = settings
        self.flush = QueueWithDlq(
            self, "Flush", visibility_timeout=constants.visibility_timeout(constants.SUBMITTER), fifo=True
        )
        self.results = QueueWithDlq(
            self, "Results", visibility_timeout=constants.visibility_timeout(constants.RESULTS)
        )
        self.functions = Functions(
            self,
            "Functions",
            data=data,
            flush=self.flush,
            results=self.results,
            settings=settings,
            service=service,
        )
        self.webhook_api = WebhookApi(self, "WebhookApi", handler=self.functions.webhook.function)
        self.schedules = Schedules(self, "Schedules", reconciler=self.functions.reconciler.function)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            queues={"Arrivals": data.ingress.arrivals, "Flush": self.flush, "Results": self.results},
            functions=self.functions.by_name,
            topic=data.alerts.topic,
            settings=settings,
            webhook_stage=self.webhook_api.api.deployment_stage,
            service=service,
        )
        self._build_outputs()

    def _build_outputs(self) -> None:
        outputs = {
            "FlushQueueUrl": self.flush.queue.queue_url,
            "FlushDlqUrl": self.flush.dlq.queue_url,
            "ResultsQueueUrl": self.results.queue.queue_url,
            "ResultsDlqUrl": self.results.dlq.queue_url,
            "WebhookUrl": self.webhook_api.url,
            "DashboardName": self.monitoring.dashboard.dashboard_name,
            # The deployed settings, so the CLI works from anywhere, whatever `-c batchdrop=…` said.
            "SettingsJson": self._settings.to_env_json(),
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
