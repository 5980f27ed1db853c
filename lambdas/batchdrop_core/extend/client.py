"""A small synchronous client for the parts of the Extend REST API that batchdrop uses.

Retry rules follow from Extend having no idempotency key: reads retry freely; a POST that creates
something retries only when it certainly created nothing (429, or a failure before the request was
sent). Any other failure of such a POST raises ``ExtendOutcomeUnknownError`` so the caller checks
Extend before resubmitting (design §5 I3).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from .errors import (
    ExtendInputError,
    ExtendOutcomeUnknownError,
    ExtendRejectedError,
    ExtendRetryableError,
)
from .models import (
    ENDPOINT_EVENTS,
    BatchCreated,
    BatchInput,
    BatchRun,
    BatchStatus,
    ExtendFile,
    Processor,
    ProcessorRef,
    Run,
    RunPage,
    RunSummary,
    WebhookEndpoint,
    WebhookSubscription,
)
from .ratelimit import RateLimiter
from .request_parts import batch_reference, path_id, type_info, user_agent
from .responses import (
    ModelT,
    created_result,
    error_from_response,
    is_retryable_status,
    parse_body,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.extend.ai"
DEFAULT_API_VERSION = "2026-02-09"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# The events an endpoint takes itself (processors.py); workflows' come through subscriptions.
DEFAULT_WEBHOOK_EVENTS = ENDPOINT_EVENTS
MAX_BATCH_INPUTS = 1000
MAX_RETRY_AFTER_SECONDS = 60.0
# A create POST waits out a 429 in place only when Extend asks for a short wait; a longer one is the
# caller's to handle (the submitter backs the route off instead of holding its files for minutes).
MAX_INLINE_POST_WAIT_SECONDS = 10.0

# Failures that happen before any byte of the request reaches Extend, so a POST can safely be resent.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ExtendClient:
    """Thread-safe; share one instance between worker threads so they share its connection pool."""

    def __init__(
        self,
        api_key: str | Callable[[], str],
        *,
        base_url: str = DEFAULT_BASE_URL,
        api_version: str = DEFAULT_API_VERSION,
        workspace_id: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        read_limiter: RateLimiter | None = None,
        write_limiter: RateLimiter | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._api_key = api_key
        self._api_version = api_version
        self._max_retries = max_retries
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._read_limiter = read_limiter
        self._write_limiter = write_limiter
        self._sleep = sleep
        headers = {"x-extend-api-version": api_version, "User-Agent": user_agent()}
        # Org-scoped keys need the workspace on every request, creates included.
        if workspace_id:
            headers["x-extend-workspace-id"] = workspace_id
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        self._stats_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0, "rate_limited": 0}

    def __enter__(self) -> ExtendClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ----- batches and runs -----

    def create_batch(
        self,
        processor_type: str,
        processor: ProcessorRef | None,
        inputs: Sequence[BatchInput],
        priority: int | None = None,
    ) -> BatchRun:
        """Submit up to 1,000 inputs as one batch. See the module docstring for what each error means.

        ``processor`` names what runs the inputs: a processor (its version and overrideConfig), a workflow
        (id and version), or for types configured instead (parse) its ``override_config`` is the config
        applied to every run (None: Extend's defaults). A type whose create call answers ``{batchId}``
        only comes back as a BatchRun with that id, PENDING."""
        info = type_info(processor_type)
        if not 1 <= len(inputs) <= MAX_BATCH_INPUTS:
            raise ExtendInputError(f"a batch needs 1 to {MAX_BATCH_INPUTS} inputs, got {len(inputs)}")
        if not info.accepts_text and any(item.file.text is not None for item in inputs):
            raise ExtendInputError(f"{processor_type} does not accept text inputs; send a url or file id")
        body: dict[str, Any] = {"inputs": [item.to_wire() for item in inputs]}
        body.update(batch_reference(info, processor))
        if priority is not None:
            body["priority"] = priority
        path = f"{info.runs_path}/batch"
        if info.batch_readable:
            return self._create(path, BatchRun, json=body)
        created = self._create(path, BatchCreated, json=body)
        return BatchRun(object="batch_run", id=created.batch_id, status=BatchStatus.PENDING)

    def get_batch_run(self, batch_id: str) -> BatchRun:
        return self._repeatable("GET", f"/batch_runs/{path_id(batch_id)}", BatchRun, self._read_limiter)

    def get_processor(
        self, processor_type: str, processor_id: str, *, retries: int | None = None
    ) -> Processor:
        """Read a processor (or workflow): the cheapest request that exercises the key and the processor
        both (a blocked route's probe sends it with ``retries=0``, one request)."""
        info = type_info(processor_type)
        if info.processors_path is None:
            raise ExtendInputError(f"{processor_type} routes name no processor to read")
        path = f"{info.processors_path}/{path_id(processor_id)}"
        return self._repeatable("GET", path, Processor, self._read_limiter, max_retries=retries)

    def check_route(
        self, processor_type: str, processor_id: str | None, *, retries: int | None = None
    ) -> None:
        """One read that fails as a submission of this route would for its key or processor: the processor
        read, or for a type that names none (parse) one run of the list."""
        info = type_info(processor_type)
        if info.has_processor:
            self.get_processor(processor_type, processor_id or "", retries=retries)
            return
        params = {name: 1 for name in info.page_size_params}
        self._repeatable(
            "GET", info.runs_path, RunPage, self._read_limiter, max_retries=retries, params=params
        )

    def get_run(self, processor_type: str, run_id: str) -> Run:
        info = type_info(processor_type)
        path = f"{info.runs_path}/{path_id(run_id)}"
        run = self._repeatable("GET", path, Run, self._read_limiter, params=dict(info.get_run_params))
        output_url = getattr(run, "output_url", None)
        if run.output is None and isinstance(output_url, str) and output_url:
            run.output = self._download_output(output_url)  # the output behind a URL instead of inline
        return run

    def _download_output(self, url: str) -> Any:
        """A plain GET of a presigned output URL (no auth header: it carries its own credential)."""
        response = httpx.get(url, timeout=DEFAULT_TIMEOUT)
        if not response.is_success:
            raise ExtendRetryableError(
                f"output URL answered HTTP {response.status_code}", status_code=response.status_code
            )
        return response.json()

    def list_runs_page(
        self,
        processor_type: str,
        *,
        batch_id: str | None = None,
        processor_id: str | None = None,
        status: str | None = None,
        sort_by: str | None = None,
        sort_dir: str | None = None,
        max_page_size: int = 1000,
        page_token: str | None = None,
    ) -> RunPage:
        """One page of run summaries (no outputs; use ``get_run`` for those). A type whose list takes no
        sort (parse) is listed in its default order whatever ``sort_by`` says."""
        info = type_info(processor_type)
        params: dict[str, Any] = {"batchId": batch_id, "status": status, "nextPageToken": page_token}
        if info.filter_param:
            params[info.filter_param] = processor_id
        if info.sortable:
            params.update(sortBy=sort_by, sortDir=sort_dir)
        params.update({name: max_page_size for name in info.page_size_params})
        params = {key: value for key, value in params.items() if value is not None}
        return self._repeatable("GET", info.runs_path, RunPage, self._read_limiter, params=params)

    def iter_runs(
        self,
        processor_type: str,
        *,
        batch_id: str | None = None,
        processor_id: str | None = None,
        status: str | None = None,
        sort_by: str | None = None,
        sort_dir: str | None = None,
        max_page_size: int = 1000,
    ) -> Iterator[RunSummary]:
        """Every matching run summary, following ``nextPageToken`` to the last page."""
        page_token = None
        while True:
            page = self.list_runs_page(
                processor_type,
                batch_id=batch_id,
                processor_id=processor_id,
                status=status,
                sort_by=sort_by,
                sort_dir=sort_dir,
                max_page_size=max_page_size,
                page_token=page_token,
            )
            yield from page.data
            if not page.next_page_token:
                return
            page_token = page.next_page_token

    # ----- files and webhooks -----

    def upload_file(
        self, name: str, content: bytes | Callable[[], Any], content_type: str | None = None
    ) -> ExtendFile:
        """Upload a file; ``content`` is its bytes, or a function that opens it as a stream for each try
        (streamed in chunks: memory stays bounded whatever the file's size). Retried like a read: a
        duplicate upload only leaves an unused file behind, it starts no run. It spends the write budget."""
        return self._repeatable(
            "POST",
            "/files/upload",
            ExtendFile,
            self._write_limiter,
            files=lambda: {"file": (name, content() if callable(content) else content, content_type)},
        )

    def create_webhook_endpoint(
        self,
        url: str,
        *,
        name: str,
        enabled_events: Sequence[str] = DEFAULT_WEBHOOK_EVENTS,
        api_version: str | None = None,
    ) -> WebhookEndpoint:
        """Register a webhook endpoint. Keep the returned ``signing_secret``: Extend shows it only once."""
        body = {
            "url": url,
            "name": name,
            "enabledEvents": list(enabled_events),
            "apiVersion": api_version or self._api_version,
        }
        return self._create("/webhook_endpoints", WebhookEndpoint, json=body)

    def create_webhook_subscription(
        self, endpoint_id: str, resource_type: str, resource_id: str, enabled_events: Sequence[str]
    ) -> WebhookSubscription:
        """Send one resource's events (a workflow's runs) to an endpoint."""
        body = {
            "webhookEndpointId": endpoint_id,
            "resourceType": resource_type,
            "resourceId": resource_id,
            "enabledEvents": list(enabled_events),
        }
        return self._create("/webhook_subscriptions", WebhookSubscription, json=body)

    # ----- transport -----

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # Resolved per request so a rotated key is picked up; never logged.
        api_key = self._api_key() if callable(self._api_key) else self._api_key
        if callable(kwargs.get("files")):
            kwargs["files"] = kwargs["files"]()  # a fresh stream for each try
        self._count("requests")
        response = self._http.request(method, path, headers={"Authorization": f"Bearer {api_key}"}, **kwargs)
        if response.status_code == 429:
            self._count("rate_limited")
        return response

    def _back_off(
        self, method: str, path: str, attempt: int, error: ExtendRetryableError, limiter: RateLimiter | None
    ) -> None:
        if error.retry_after is not None:
            delay = min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
        else:
            delay = random.uniform(0, min(self._backoff_cap, self._backoff_base * 2**attempt))
        if limiter is not None and error.status_code == 429:
            limiter.penalize(delay)  # the other threads share the budget, so they back off too
        logger.warning(
            "Extend %s %s failed (%s); retry %d/%d in %.2fs",
            method,
            path,
            error,
            attempt + 1,
            self._max_retries,
            delay,
        )
        self._count("retries")
        self._sleep(delay)

    def _repeatable(
        self,
        method: str,
        path: str,
        model: type[ModelT],
        limiter: RateLimiter | None,
        max_retries: int | None = None,
        **kwargs: Any,
    ) -> ModelT:
        """A request that is safe to repeat: retry 408/429/5xx, network errors and unreadable 2xx bodies."""
        retries = self._max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            if limiter is not None:
                limiter.acquire()  # before every attempt: retries spend the read budget too
            try:
                return self._repeatable_attempt(method, path, model, **kwargs)
            except ExtendRetryableError as error:
                if attempt >= retries:
                    raise
                self._back_off(method, path, attempt, error, limiter)
            attempt += 1

    def _repeatable_attempt(self, method: str, path: str, model: type[ModelT], **kwargs: Any) -> ModelT:
        try:
            response = self._send(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ExtendRetryableError(f"{type(exc).__name__}: {exc}") from exc
        if response.is_success:
            try:
                return parse_body(response, model)
            except ValueError as exc:
                status_code = response.status_code
                raise ExtendRetryableError("unreadable response body", status_code=status_code) from exc
        if is_retryable_status(response.status_code):
            raise error_from_response(response, ExtendRetryableError)
        raise error_from_response(response, ExtendRejectedError)

    def _create(self, path: str, model: type[ModelT], **kwargs: Any) -> ModelT:
        """A POST that creates something: resend only when it certainly created nothing."""
        attempt = 0
        while True:
            if self._write_limiter is not None:
                self._write_limiter.acquire()  # before every try: a refused one spent the budget too
            try:
                response = self._send("POST", path, **kwargs)
            except _NOT_SENT_ERRORS as exc:
                error = ExtendRetryableError(f"{type(exc).__name__}: {exc}")
            except httpx.TransportError as exc:
                raise ExtendOutcomeUnknownError(f"{type(exc).__name__} after sending: {exc}") from exc
            else:
                if response.status_code != 429:
                    return created_result(response, model)
                error = error_from_response(response, ExtendRetryableError)
                if (error.retry_after or 0) > MAX_INLINE_POST_WAIT_SECONDS:
                    if self._write_limiter is not None:
                        self._write_limiter.penalize(min(error.retry_after or 0, MAX_RETRY_AFTER_SECONDS))
                    raise error
            if attempt >= self._max_retries:
                raise error
            self._back_off("POST", path, attempt, error, self._write_limiter)
            attempt += 1
