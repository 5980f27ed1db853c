"""Errors raised by the Extend client, split by what the caller may safely do next."""

from __future__ import annotations

from batchdrop_core.redact import redact


class ExtendError(Exception):
    """A failed Extend API call. ``message`` is Extend's own text when it sent one."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        # Extend's text may echo a presigned URL and has no length limit: redacted and cut here, at the
        # source, so every log line, note and notification built from the error is safe.
        self.message = redact(message)
        super().__init__(self.message)
        self.status_code = status_code
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"HTTP {self.status_code}"] if self.status_code else []
        if self.code:
            parts.append(self.code)
        text = f"Extend API error ({' '.join(parts)})" if parts else "Extend API error"
        text += f": {self.message}"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return redact(text)


class ExtendRetryableError(ExtendError):
    """Rate limited, a server error or a network failure: safe to try again later.

    For a POST this is raised only when nothing can have been created (a 429, or a failure before
    the request was sent).
    """

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, request_id=request_id)
        self.retry_after = retry_after


class ExtendRejectedError(ExtendError):
    """Extend refused the request (a 4xx other than 429/408); sending it again will not help."""

    @property
    def is_auth_problem(self) -> bool:
        return self.status_code in (401, 402, 403)

    @property
    def is_config_problem(self) -> bool:
        return self.status_code in (400, 404, 422)


class ExtendOutcomeUnknownError(ExtendError):
    """A create POST may or may not have reached Extend (timeout after sending, 5xx, dropped connection,
    unreadable 2xx body).

    Extend has no idempotency key, so resubmitting could create a duplicate: check Extend first.
    """


class ExtendInputError(ValueError):
    """The request was refused before sending because Extend would reject it."""
