"""batchdrop's configuration: one typed model, validated with clear messages.

The stacks load it from the ``batchdrop`` key of ``cdk.json`` context (``Settings.parse``), as do the CLI
and the sandbox: this model is the one place where settings are validated and where their defaults live.
The Lambdas get its complete dump (every field, defaults filled in, nulls left out) as JSON in the
``BATCHDROP_SETTINGS`` environment variable and read it back without pydantic (``runconfig.RunSettings``),
plus the names of the resources they use (``Resources.from_env``). Secrets never travel this way: only
the names of the Secrets Manager secrets that hold them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from batchdrop_core.extend.processors import PROCESSOR_TYPES, ProcessorType

# Shared with the run-time reader, which must not import this module (pydantic).
from batchdrop_core.runconfig import (  # noqa: F401 - re-exported
    SETTINGS_ENV,
    ConfigError,
    FileTransfer,
    Resources,
    RouteLookup,
    RunSettings,
    settings_document,
)

ROUTE_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
# cdk.json's example routes name processors with this in their ids: a deploy refuses them (stacks), and so
# does `batchdrop routes apply`, unless the deployment itself was a demo deployed with them.
PLACEHOLDER_MARK = "_placeholder_"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Route(_Model):
    """Objects created under ``prefix`` go to one Extend processor, workflow, or (parse) configuration.

    What a type takes is the processor-type table's: a processor or workflow id with its prefix, or for
    parse no id and ``overrideConfig`` as the ParseConfig applied to every run."""

    name: str
    prefix: str
    type: ProcessorType
    processor_id: str | None = Field(default=None, alias="processorId")
    version: str | None = None
    override_config: dict[str, Any] | None = Field(default=None, alias="overrideConfig")
    priority: int | None = Field(default=None, ge=1, le=100)
    # Send the object's user metadata (x-amz-meta-*) with each run. It costs a HeadObject per file at
    # intake (S3 notifications carry no metadata), so it is off unless a route asks for it.
    forward_user_metadata: bool = Field(default=False, alias="forwardUserMetadata")

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        if not ROUTE_NAME_PATTERN.match(value):
            raise ValueError(
                f"route name {value!r} must be 1-40 lowercase letters, digits or '-', starting with a "
                "letter or digit (it is used in resource names and DynamoDB keys)"
            )
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix_is_a_folder(cls, value: str) -> str:
        if not value or value.startswith("/"):
            raise ValueError(f"prefix {value!r} must be a non-empty S3 key prefix not starting with '/'")
        return value

    @model_validator(mode="after")
    def _reference_matches_type(self) -> Route:
        info = PROCESSOR_TYPES[self.type]
        if info.id_prefix is None:
            if self.processor_id is not None or self.version is not None:
                raise ValueError(
                    f"route {self.name!r}: {self.type} routes name no processor; leave processorId and "
                    f"version out (the {info.reference_key} applied to every run goes in overrideConfig)"
                )
            return self
        if not self.processor_id:
            raise ValueError(f"route {self.name!r}: processorId is required for {self.type} routes")
        if not self.processor_id.startswith(info.id_prefix):
            raise ValueError(
                f"route {self.name!r}: processorId {self.processor_id!r} does not look like a "
                f"{self.type} processor (ids for type {self.type!r} start with {info.id_prefix!r})"
            )
        if info.reference == "workflow" and self.override_config is not None:
            raise ValueError(
                f"route {self.name!r}: {self.type} routes take no overrideConfig (configure the workflow "
                "in Extend, and pin it with version)"
            )
        return self


class Settings(_Model, RouteLookup):
    """Every non-secret setting of a deployment (design §7)."""

    routes: list[Route] = Field(min_length=1)
    max_batch_size: int = Field(default=1000, ge=1, le=1000, alias="maxBatchSize")
    max_wait_seconds: int = Field(default=300, ge=1, le=86_400, alias="maxWaitSeconds")
    file_transfer: FileTransfer = Field(default="url", alias="fileTransfer")
    presigned_url_expiry_seconds: int = Field(
        default=3600, ge=60, le=604_800, alias="presignedUrlExpirySeconds"
    )
    max_file_size_bytes: int = Field(default=100 * 1024 * 1024, ge=1, alias="maxFileSizeBytes")
    extend_base_url: str = Field(default="https://api.extend.ai", alias="extendBaseUrl")
    extend_api_version: str = Field(default="2026-02-09", alias="extendApiVersion")
    extend_workspace_id: str | None = Field(default=None, alias="extendWorkspaceId")
    read_rate_limit: float = Field(default=8.0, gt=0, le=1000, alias="readRateLimit")
    write_rate_limit: float = Field(default=8.0, gt=0, le=1000, alias="writeRateLimit")
    # Extend's processing throughput (files per minute across the organisation, 80 on pay-as-you-go) and
    # the bound on files submitted and not yet terminal; by default half of what Extend gets through
    # while a presigned URL lives, so no URL expires before Extend reaches its file.
    extend_files_per_minute: float = Field(default=80.0, gt=0, le=1_000_000, alias="extendFilesPerMinute")
    max_files_at_extend: int | None = Field(default=None, ge=1, alias="maxFilesAtExtend")
    results_concurrency: int = Field(default=8, ge=1, le=64, alias="resultsConcurrency")
    max_attempts: int = Field(default=3, ge=1, le=10, alias="maxAttempts")
    # A download that failed because the URL had expired is retried whatever this says (and uses no
    # attempt); FAILED_TO_PROCESS_FILE with a valid URL means Extend could not read the file.
    retryable_failure_reasons: tuple[str, ...] = Field(
        default=("INTERNAL_ERROR",), alias="retryableFailureReasons"
    )
    per_file_notifications: bool = Field(default=False, alias="perFileNotifications")
    alarm_email: str | None = Field(default=None, alias="alarmEmail")
    webhook_grace_minutes: int = Field(default=30, ge=1, alias="webhookGraceMinutes")
    file_sla_minutes: int = Field(default=24 * 60, ge=1, alias="fileSlaMinutes")
    # A workflow run waiting for a person's review is not stuck; past this long it is alerted on its own.
    review_sla_minutes: int = Field(default=3 * 24 * 60, ge=1, alias="reviewSlaMinutes")
    queued_index_shards: int = Field(default=4, ge=1, le=64, alias="queuedIndexShards")
    # An ambiguous submission is searched for at Extend only after this long, so that a batch Extend did
    # accept has had time to list its runs.
    orphan_grace_seconds: int = Field(default=120, ge=0, le=3600, alias="orphanGraceSeconds")
    # A blocked route is probed, and a throttled route backs off, at this interval first, doubling up to
    # the maximum (the sandbox shortens both, as it shortens the sweep's minute).
    probe_interval_seconds: int = Field(default=60, ge=1, le=3600, alias="probeIntervalSeconds")
    probe_interval_max_seconds: int = Field(default=1800, ge=1, le=86400, alias="probeIntervalMaxSeconds")
    # Routes applied with `batchdrop routes apply` live in the State table; a function re-reads them at
    # most this often (0: at every use), so a change is in effect everywhere within this many seconds.
    routes_cache_seconds: int = Field(default=60, ge=0, le=3600, alias="routesCacheSeconds")

    @field_validator("extend_base_url")
    @classmethod
    def _base_url_is_http(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"extendBaseUrl {value!r} must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("alarm_email")
    @classmethod
    def _email_shape(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"alarmEmail {value!r} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _routes_are_distinct(self) -> Settings:
        names = [r.name for r in self.routes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique; repeated: {', '.join(duplicates)}")
        # S3 refuses two notification rules whose prefixes overlap, and a file must have one route.
        for i, a in enumerate(self.routes):
            for b in self.routes[i + 1 :]:
                if a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix):
                    raise ValueError(
                        f"routes {a.name!r} ({a.prefix!r}) and {b.name!r} ({b.prefix!r}) have overlapping "
                        "prefixes; give each route its own folder"
                    )
        return self

    @model_validator(mode="after")
    def _probe_intervals_grow(self) -> Settings:
        if self.probe_interval_max_seconds < self.probe_interval_seconds:
            raise ValueError(
                f"probeIntervalMaxSeconds ({self.probe_interval_max_seconds}) must be at least "
                f"probeIntervalSeconds ({self.probe_interval_seconds})"
            )
        return self

    @model_validator(mode="after")
    def _bound_holds_two_batches(self) -> Settings:
        bound, batches = self.files_at_extend_bound, 2 * self.max_batch_size
        if bound < batches:
            source = (
                f"maxFilesAtExtend is {bound}"
                if self.max_files_at_extend is not None
                else f"the bound on files at Extend is {bound} (half of what Extend processes while a URL "
                f"lives: extendFilesPerMinute {self.extend_files_per_minute:g} x presignedUrlExpirySeconds "
                f"{self.presigned_url_expiry_seconds} / 120)"
            )
            raise ValueError(
                f"{source}, less than two full batches (2 x maxBatchSize = {batches}): batches would wait "
                "for each other at Extend's door. Raise presignedUrlExpirySeconds (or extendFilesPerMinute, "
                "if your plan processes more), set maxFilesAtExtend, or lower maxBatchSize"
            )
        return self

    def to_env_json(self) -> str:
        """What ``RunSettings`` reads back: every field, defaults filled in; nulls are left out (an absent
        optional field reads as null), ~50 bytes a route of the 3,000 the environment variable may take."""
        return json.dumps(self.model_dump(by_alias=True, exclude_none=True), separators=(",", ":"))

    def to_run_settings(self) -> RunSettings:
        """These settings as a function reads them (through the same JSON)."""
        return RunSettings.from_document(json.loads(self.to_env_json()), "settings")

    @classmethod
    def parse(cls, data: Mapping[str, Any], source: str) -> Settings:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(_describe(exc, source)) from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """``BATCHDROP_SETTINGS`` validated (the functions themselves read it with ``RunSettings``)."""
        return cls.parse(settings_document(environ), SETTINGS_ENV)


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid batchdrop configuration in {source}:"]
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)
