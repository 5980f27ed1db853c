"""Client for the Extend (extend.ai) REST API: models, errors, rate limiting and the HTTP client.

Names load on first use (PEP 562): importing ``batchdrop_core.extend.processors`` or ``.signing``, or the
statuses and errors, must not pull in httpx and build the pydantic models, which a function needs only
when it calls Extend (and loads then).
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "DEFAULT_API_VERSION": "client",
    "DEFAULT_BASE_URL": "client",
    "MAX_BATCH_INPUTS": "client",
    "ExtendClient": "client",
    "ExtendError": "errors",
    "ExtendInputError": "errors",
    "ExtendOutcomeUnknownError": "errors",
    "ExtendRejectedError": "errors",
    "ExtendRetryableError": "errors",
    "RateLimiter": "ratelimit",
    "PROCESSOR_TYPES": "processors",
    "ProcessorType": "processors",
    "ProcessorTypeInfo": "processors",
    "WEBHOOK_EVENTS": "processors",
    "ENDPOINT_EVENTS": "processors",
    "processor_type": "processors",
    "BatchStatus": "statuses",
    "RunStatus": "statuses",
    "TERMINAL_BATCH_STATUSES": "statuses",
    "TERMINAL_RUN_STATUSES": "statuses",
}


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_HOMES.get(name, 'models')}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_API_VERSION",
    "DEFAULT_BASE_URL",
    "ENDPOINT_EVENTS",
    "MAX_BATCH_INPUTS",
    "PROCESSOR_TYPES",
    "TERMINAL_BATCH_STATUSES",
    "TERMINAL_RUN_STATUSES",
    "WEBHOOK_EVENTS",
    "ApiErrorBody",
    "BatchCreated",
    "BatchInput",
    "BatchRun",
    "BatchStatus",
    "ExtendClient",
    "ExtendError",
    "ExtendFile",
    "ExtendInputError",
    "ExtendOutcomeUnknownError",
    "ExtendRejectedError",
    "ExtendRetryableError",
    "FileRef",
    "Processor",
    "ProcessorRef",
    "ProcessorType",
    "ProcessorTypeInfo",
    "RateLimiter",
    "Run",
    "RunPage",
    "RunStatus",
    "RunSummary",
    "WebhookEndpoint",
    "WebhookSubscription",
    "processor_type",
]
