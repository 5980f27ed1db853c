"""Reading Extend's answers: which statuses are worth retrying, how long Extend asks us to wait, the typed
error of a failed call, and the model of a successful one."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from .errors import ExtendError, ExtendOutcomeUnknownError, ExtendRejectedError, ExtendRetryableError
from .models import ApiErrorBody

ModelT = TypeVar("ModelT", bound=BaseModel)
ErrorT = TypeVar("ErrorT", bound=ExtendError)


def is_retryable_status(status_code: int) -> bool:
    return status_code in (408, 429) or status_code >= 500


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, ``Retry-After`` (seconds or a date), or
    else ``x-ratelimit-reset`` (when the limit resets: epoch seconds, or seconds from now when small)."""
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return _reset_seconds(headers.get("x-ratelimit-reset"))
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _reset_seconds(value: str | None) -> float | None:
    try:
        reset = float(value) if value is not None else None
    except ValueError:
        return None
    if reset is None:
        return None
    # An epoch time is far larger than any wait a server would ask for in seconds.
    return max(reset - time.time(), 0.0) if reset > 1_000_000_000 else max(reset, 0.0)


def error_from_response(response: httpx.Response, error_class: type[ErrorT]) -> ErrorT:
    try:
        body = ApiErrorBody.model_validate(response.json())
    except ValueError:  # not JSON, or JSON that is not an error object
        body = ApiErrorBody()
    fields: dict[str, Any] = {
        "status_code": response.status_code,
        "code": body.code,
        "request_id": body.request_id or response.headers.get("x-extend-request-id"),
    }
    if issubclass(error_class, ExtendRetryableError):
        fields["retry_after"] = retry_after_seconds(response.headers)
    return error_class(body.message or response.reason_phrase or f"HTTP {response.status_code}", **fields)


def parse_body(response: httpx.Response, model: type[ModelT]) -> ModelT:
    """Raises ValueError when the 2xx body is not the expected JSON object."""
    return model.model_validate(response.json())


def created_result(response: httpx.Response, model: type[ModelT]) -> ModelT:
    """The result of a create POST that was not rate limited."""
    if response.is_success:
        try:
            return parse_body(response, model)
        except ValueError as exc:
            raise ExtendOutcomeUnknownError(
                "create call answered with an unreadable body", status_code=response.status_code
            ) from exc
    if is_retryable_status(response.status_code):
        raise error_from_response(response, ExtendOutcomeUnknownError)
    raise error_from_response(response, ExtendRejectedError)
