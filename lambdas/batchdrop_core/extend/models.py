"""Extend API objects as pydantic models (the table of processor types is in ``processors``).

Extend adds fields and enum values over time, so every model keeps unknown fields (``extra="allow"``)
and status / failure-reason fields are plain strings compared against the constants in ``statuses``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

# Defined without pydantic (settings and the functions use them before any model); re-exported here.
from batchdrop_core.extend.processors import (  # noqa: F401
    ENDPOINT_EVENTS,
    PROCESSOR_TYPES,
    WEBHOOK_EVENTS,
    ProcessorType,
    ProcessorTypeInfo,
)
from batchdrop_core.extend.statuses import (  # noqa: F401
    TERMINAL_BATCH_STATUSES,
    TERMINAL_RUN_STATUSES,
    BatchStatus,
    RunStatus,
)


class ExtendModel(BaseModel):
    """Snake_case in Python, camelCase on the wire; unknown fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, alias_generator=to_camel)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ProcessorRef(ExtendModel):
    """What runs a batch's inputs: a processor or workflow (id, version), and for processors an
    overrideConfig; for a type configured instead of named (parse), ``override_config`` is that config."""

    id: str | None = None
    version: str | None = None
    override_config: dict[str, Any] | None = None


class FileRef(ExtendModel):
    """A batch input's file: exactly one of a URL Extend can fetch, an uploaded file id, or raw text."""

    url: str | None = None
    id: str | None = None
    text: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> FileRef:
        if sum(value is not None for value in (self.url, self.id, self.text)) != 1:
            raise ValueError("a file reference needs exactly one of url, id or text")
        return self

    @classmethod
    def from_url(cls, url: str, name: str | None = None) -> FileRef:
        return cls(url=url, name=name)

    @classmethod
    def from_id(cls, id: str) -> FileRef:
        return cls(id=id)

    @classmethod
    def from_text(cls, text: str, name: str | None = None) -> FileRef:
        return cls(text=text, name=name)


class BatchInput(ExtendModel):
    file: FileRef
    metadata: dict[str, Any] | None = None


class Processor(ExtendModel):
    """A processor or workflow as ``GET {processors_path}/{id}`` returns it (``processors.py``)."""

    object: str | None = None
    id: str
    name: str | None = None


class BatchRun(ExtendModel):
    object: str | None = None
    id: str
    status: str
    run_count: int | None = None
    created_at: str | None = None


class BatchCreated(ExtendModel):
    """The answer of a create call that makes no BatchRun (workflow batches): the batch id only."""

    batch_id: str


class RunSummary(ExtendModel):
    """A run as the list endpoints return it: no output, no config (workflow summaries: no metadata)."""

    object: str | None = None
    id: str
    status: str
    batch_id: str | None = None  # parse and workflow runs say which batch made them
    failure_reason: str | None = None
    failure_message: str | None = None
    metadata: dict[str, Any] | None = None
    file: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    usage: dict[str, Any] | None = None  # {credits, totalCredits?}: present once a run is PROCESSED

    @property
    def credits(self) -> float | None:
        """The credits Extend charged for this run, when it says."""
        value = (self.usage or {}).get("credits")
        return float(value) if isinstance(value, int | float) else None

    @property
    def batchdrop_metadata(self) -> dict[str, Any]:
        """Our own correlation keys, which we put under ``metadata.batchdrop`` for every input."""
        value = (self.metadata or {}).get("batchdrop")
        return value if isinstance(value, dict) else {}


class Run(RunSummary):
    """A run read by id: adds the output (present when PROCESSED) and the effective config."""

    output: Any = None
    output_url: str | None = None  # parse runs asked for responseType=url: the output is behind it
    config: Any = None


class RunPage(ExtendModel):
    data: list[RunSummary] = Field(default_factory=list)
    next_page_token: str | None = None


class ExtendFile(ExtendModel):
    object: str | None = None
    id: str
    name: str | None = None
    type: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None


class WebhookEndpoint(ExtendModel):
    id: str
    url: str | None = None
    name: str | None = None
    enabled_events: list[str] = Field(default_factory=list)
    # Returned only by the create call, and only once.
    signing_secret: str | None = None


class WebhookSubscription(ExtendModel):
    """Events of one resource (a workflow) sent to an endpoint: ``POST /webhook_subscriptions``."""

    id: str
    webhook_endpoint_id: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    enabled_events: list[str] = Field(default_factory=list)


class ApiErrorBody(ExtendModel):
    code: str | None = None
    message: str | None = None
    retryable: bool = False
    request_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap_error_envelope(cls, data: Any) -> Any:
        # Extend's CLI accepts the same body wrapped as {"error": {...}}, so accept both.
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            return data["error"]
        return data
