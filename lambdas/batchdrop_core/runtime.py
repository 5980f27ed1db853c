"""What a function needs at run time, built once per process: settings, AWS clients, stores, Extend.

Clients are created lazily (no network at import time) and can be injected, so tests and the sandbox
run the same code against moto server and the Extend simulator. Settings are the run-time reading of
``BATCHDROP_SETTINGS`` (``RunSettings``, no pydantic); code holding the validated model passes
``settings.to_run_settings()``, so every caller runs on what a function reads.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from batchdrop_core.budget import SharedBudget
from batchdrop_core.extend.ratelimit import RateLimiter
from batchdrop_core.messages import CollectionRequest, FlushRequest
from batchdrop_core.observability import logger
from batchdrop_core.runconfig import Resources, RunSettings
from batchdrop_core.tables import STATE_ROUTES_KEY
from batchdrop_core.tracking import BatchStore, FileStore, StateStore

if TYPE_CHECKING:
    from batchdrop_core.extend.client import ExtendClient
    from batchdrop_core.liveroutes import LiveRoutes
    from batchdrop_core.notifications import Notification

_BOTO_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=50)
# For a call that must give up within seconds (the webhook's enqueue, inside a 10 s function): at most
# 2 attempts x (1 s connect + 2 s read) plus one standard-mode backoff (under 1 s) = 7 s, where the
# defaults above (60 s reads, 5 attempts) could outlast the function and kill it mid-call.
QUICK_BOTO_CONFIG = Config(
    connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 2}
)
QUICK_CALL_MAX_SECONDS = 2 * (1 + 2) + 1


class Runtime:
    def __init__(
        self,
        settings: RunSettings,
        resources: Resources,
        session: Any = None,  # a boto3 Session; the default session when None
        extend_transport: Any = None,  # an httpx transport, for tests
    ) -> None:
        if not isinstance(settings, RunSettings):
            kind = type(settings).__name__
            raise TypeError(f"Runtime needs RunSettings, got {kind} (pass settings.to_run_settings())")
        self.deployed_settings = settings
        self.resources = resources
        self.session = session
        self.extend_transport = extend_transport
        self._lock = threading.RLock()
        self._live: tuple[str, LiveRoutes | None] | None = None  # (the item's value, read back)
        self._effective: tuple[str, RunSettings] | None = None  # (digest, settings with those routes)

    def __repr__(self) -> str:
        return f"Runtime(resources={self.resources!r})"

    @classmethod
    def from_env(cls) -> Runtime:
        return cls(settings=RunSettings.from_env(), resources=Resources.from_env())

    @property
    def settings(self) -> RunSettings:
        """The deployment's settings with the routes in effect: those applied to the State table
        (``batchdrop routes apply``), re-read at most every ``routesCacheSeconds``, or the deployment's
        own when it holds none (or the function has no State table)."""
        deployed = self.deployed_settings
        live = self.live_routes() if self.resources.state_table else None
        if live is None:
            return deployed
        with self._lock:
            if self._effective is None or self._effective[0] != live.digest:
                self._effective = (live.digest, dataclasses.replace(deployed, routes=live.routes))
            return self._effective[1]

    @settings.setter
    def settings(self, value: RunSettings) -> None:
        """Replace the deployment's settings (tests, the reliability runs); routes applied to the State
        table still replace their routes."""
        self.deployed_settings = value
        self._effective = None

    def retired_routes(self) -> tuple[str, ...]:
        """Routes of the deployment, or applied before, that the routes in effect no longer have."""
        live = self.live_routes() if self.resources.state_table else None
        if live is None:
            return ()
        current = {r.name for r in live.routes}
        known = [r.name for r in self.deployed_settings.routes] + list(live.retired)
        return tuple(name for name in dict.fromkeys(known) if name not in current)

    def live_routes(self) -> LiveRoutes | None:
        """The routes applied to the State table (cached ``routesCacheSeconds``); None when there are none.
        When the table cannot be read, the routes last read stay in effect."""
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        from batchdrop_core import liveroutes

        with self._lock:
            provider = self.__dict__.get("_routes_provider")
            if provider is None:
                table = self.resources.require("state_table")
                provider = self.__dict__["_routes_provider"] = liveroutes.RoutesProvider(
                    self.client("dynamodb"), table
                )
        try:
            raw = provider.get(STATE_ROUTES_KEY, max_age=self.deployed_settings.routes_cache_seconds)
        except GetParameterError as exc:
            if self._live is None:
                raise
            logger.warning("routes not re-read; the last read stay in effect", extra={"error": str(exc)})
            return self._live[1]
        with self._lock:
            if self._live is None or self._live[0] != raw:
                self._live = (str(raw), liveroutes.parse(str(raw)))
            return self._live[1]

    def client(self, service: str, *, quick: bool = False) -> Any:
        """A boto3 client; ``quick``: a separate one with short timeouts and two attempts
        (``QUICK_BOTO_CONFIG``), for a call that must fail fast rather than outlast its function."""
        with self._lock:
            cache = self.__dict__.setdefault("_clients", {})
            key = (service, quick)
            if key not in cache:
                session = self.session or boto3.session.Session()
                cache[key] = session.client(service, config=QUICK_BOTO_CONFIG if quick else _BOTO_CONFIG)
            return cache[key]

    @cached_property
    def files(self) -> FileStore:
        return FileStore(
            self.client("dynamodb"),
            self.resources.require("files_table"),
            queued_shards=self.settings.queued_index_shards,
        )

    @cached_property
    def batches(self) -> BatchStore:
        return BatchStore(self.client("dynamodb"), self.resources.require("batches_table"))

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.client("dynamodb"), self.resources.require("state_table"))

    def secret_value(self, field_name: str, *, force_fetch: bool = False) -> str:
        """A secret from Secrets Manager, cached for 5 minutes (Powertools Parameters)."""
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        with self._lock:
            provider = self.__dict__.get("_secrets")
            if provider is None:
                provider = self.__dict__["_secrets"] = SecretsProvider(
                    boto3_client=self.client("secretsmanager")
                )
        value = provider.get(self.resources.require(field_name), max_age=300, force_fetch=force_fetch)
        return str(value).strip()

    @cached_property
    def read_limiter(self) -> RateLimiter | SharedBudget:
        """Extend reads (GETs, lists) of the whole deployment, at ``readRateLimit``."""
        return self._budget("read", self.settings.read_rate_limit)

    @cached_property
    def write_limiter(self) -> RateLimiter | SharedBudget:
        """Extend writes (batch POSTs, uploads) of the whole deployment, at ``writeRateLimit``."""
        return self._budget("write", self.settings.write_rate_limit)

    def _budget(self, name: str, rate: float) -> RateLimiter | SharedBudget:
        if not self.resources.state_table:
            # Without a State table to share it through (a runtime for a one-off command), the budget is
            # this process's own.
            return RateLimiter(rate, burst=1)
        return SharedBudget(name, rate, self.state.lease_slots, self.state.hold_budget)

    def refreshed_secret_value(self, field_name: str, *, min_interval: float = 30.0) -> str | None:
        """The secret re-read from Secrets Manager (after a rotation), or None when it was re-read less
        than ``min_interval`` seconds ago: forged requests must not turn into a stream of reads."""
        with self._lock:
            last = self.__dict__.setdefault("_secret_refreshed_at", {})
            now = time.monotonic()
            if now - last.get(field_name, float("-inf")) < min_interval:
                return None
            last[field_name] = now
        return self.secret_value(field_name, force_fetch=True)

    @cached_property
    def extend(self) -> ExtendClient:
        return self.extend_client(lambda: self.secret_value("api_key_secret"))

    def extend_client(self, api_key: Callable[[], str]) -> ExtendClient:
        """An Extend client with the deployment's settings and budgets (``extend`` reads the stored key;
        the CLI's setup tries a key before storing it)."""
        # Imported here: httpx and the API models cost cold-start time that intake and webhook never use.
        from batchdrop_core.extend.client import ExtendClient

        return ExtendClient(
            api_key,
            base_url=self.settings.extend_base_url,
            api_version=self.settings.extend_api_version,
            workspace_id=self.settings.extend_workspace_id,
            read_limiter=self.read_limiter,
            write_limiter=self.write_limiter,
            transport=self.extend_transport,
        )

    def request_flush(self, route: str, *, reason: str, force: bool = False) -> None:
        """Ask the submitter to look at a route (FIFO: one submitter per route at a time)."""
        self.client("sqs").send_message(
            QueueUrl=self.resources.require("flush_queue_url"),
            MessageBody=FlushRequest(route, reason, force).to_body(),
            MessageGroupId=route,
            MessageDeduplicationId=uuid.uuid4().hex,
        )

    def request_collection(
        self, request: CollectionRequest, delay_seconds: int = 0, *, quick: bool = False
    ) -> None:
        """Ask the results worker to collect a batch (or to continue collecting it); ``quick``: through the
        fail-fast client (the webhook, which must answer Extend before its function times out)."""
        self.client("sqs", quick=quick).send_message(
            QueueUrl=self.resources.require("results_queue_url"),
            MessageBody=request.to_body(),
            DelaySeconds=delay_seconds,
        )

    def notify(self, notification: Notification) -> None:
        """Publish to the topic (``notifications`` builds every message); the attributes let subscriptions
        filter (eventType, route, status…)."""
        self.client("sns").publish(
            TopicArn=self.resources.require("topic_arn"),
            Subject=notification.subject[:100],
            Message=json.dumps(notification.message, default=str),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in notification.attributes.items() if v
            },
        )
