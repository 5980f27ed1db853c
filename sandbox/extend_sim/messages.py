"""What passes between the HTTP server and the endpoint handlers: Request, Response and ApiError."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.extend_sim.server import ExtendSimulator


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, retryable: bool = False, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.headers = headers or {}


def invalid(message: str, path: str | None = None) -> ApiError:
    # Extend names the offending field at the end of the message: "...; Path: schema.properties.name".
    return ApiError(400, "INVALID_REQUEST", f"{message}; Path: {path}" if path else message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", message)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # from the path template

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid(f"Body is not valid JSON: {exc}") from exc


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Reset the connection instead of answering (the lose_post_response fault).
    abort: bool = False


Handler = Callable[["ExtendSimulator", Request], Response]
