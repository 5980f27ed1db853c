"""The configuration as a function reads it at run time: plain frozen dataclasses, no pydantic.

The settings are validated once, where they are written: ``cdk synth``, the CLI and the sandbox parse
them with the pydantic model in ``batchdrop_core.config``, which holds every rule and every default. The
stacks put that model's complete dump into the ``BATCHDROP_SETTINGS`` environment variable: every field
with its value, defaults filled in; only a null is left out (an unset optional field, such as a route's
``version``), which keeps room for routes in the 3,000 bytes the variable may take. A function only reads
it back here: the dataclasses below declare the same fields with no defaults of their own; every field
must be present with a value of its type (an absent optional field is the null the writer left out),
and an unknown one is refused, so a variable edited by hand or written by another version of batchdrop
fails at cold start with a message naming the variable and the field. Ranges, patterns and cross-field
rules are the model's (``tests/unit/test_runconfig.py`` keeps the two field sets equal).

Importing pydantic and building the model cost a function's cold start more than everything else
batchdrop adds to boto3 (docs/benchmarks.md, section 5); reading a dataclass costs microseconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from typing import Any, ClassVar, Literal

from batchdrop_core.extend.processors import ProcessorType

SETTINGS_ENV = "BATCHDROP_SETTINGS"
FileTransfer = Literal["url", "upload"]


class ConfigError(ValueError):
    """The configuration is invalid; the message says which setting and why."""


class RouteLookup:
    """What the validated model and the run-time settings alike derive from their fields: finding routes,
    the bound on files at Extend."""

    @property
    def files_at_extend_bound(self) -> int:
        """Files submitted and not yet terminal, at most (batchdrop_core.admission): ``maxFilesAtExtend``,
        or half of what Extend processes while a presigned URL lives."""
        if self.max_files_at_extend is not None:
            return self.max_files_at_extend
        return int(self.extend_files_per_minute * self.presigned_url_expiry_seconds / 60 / 2)

    def route(self, name: str) -> Any:
        for candidate in self.routes:
            if candidate.name == name:
                return candidate
        raise KeyError(f"no route named {name!r}")

    def route_for_key(self, key: str) -> Any:
        """The route whose prefix is the longest match for ``key``, if any."""
        matches = [r for r in self.routes if key.startswith(r.prefix)]
        return max(matches, key=lambda r: len(r.prefix), default=None)


@dataclass(frozen=True)
class RunRoute:
    """One route of ``config.Route``, as validated at synth."""

    name: str
    prefix: str
    type: ProcessorType
    processor_id: str | None
    version: str | None
    override_config: dict[str, Any] | None
    priority: int | None
    forward_user_metadata: bool


@dataclass(frozen=True)
class RunSettings(RouteLookup):
    """``config.Settings`` as validated at synth: same attribute names, no defaults, no validation."""

    routes: tuple[RunRoute, ...]
    max_batch_size: int
    max_wait_seconds: int
    file_transfer: FileTransfer
    presigned_url_expiry_seconds: int
    max_file_size_bytes: int
    extend_base_url: str
    extend_api_version: str
    extend_workspace_id: str | None
    read_rate_limit: float
    write_rate_limit: float
    extend_files_per_minute: float
    max_files_at_extend: int | None
    results_concurrency: int
    max_attempts: int
    retryable_failure_reasons: tuple[str, ...]
    per_file_notifications: bool
    alarm_email: str | None
    webhook_grace_minutes: int
    file_sla_minutes: int
    review_sla_minutes: int
    queued_index_shards: int
    orphan_grace_seconds: int
    probe_interval_seconds: int
    probe_interval_max_seconds: int
    routes_cache_seconds: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RunSettings:
        return cls.from_document(settings_document(environ), SETTINGS_ENV)

    @classmethod
    def from_document(cls, data: Any, source: str) -> RunSettings:
        """Settings from the complete JSON document ``config.Settings.to_env_json`` writes."""
        return _read(cls, data, source)


def route_document(route: RunRoute) -> dict[str, Any]:
    """A route as the model dumps it (JSON keys, nulls left out)."""
    if not is_dataclass(route):  # the model's own route (code holding the validated settings)
        return typing.cast(Any, route).model_dump(by_alias=True, exclude_none=True)
    return {json_key(f.name): v for f in fields(route) if (v := getattr(route, f.name)) is not None}


def route_digest(route: RunRoute) -> str:
    """A short digest of one route's whole configuration (processor, version, overrideConfig…): which
    version of the route a submission was made with."""
    text = json.dumps(route_document(route), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_routes(data: Any, source: str) -> tuple[RunRoute, ...]:
    """A ``routes`` list as ``config.Settings`` dumps it (written by ``batchdrop routes apply``, validated
    there with the whole model), read back like the rest of the settings."""
    problems: list[str] = []
    routes = _value(tuple[RunRoute, ...], data, "routes", problems)
    if not problems and not routes:
        problems.append("routes: empty")
    if problems:
        lines = [f"invalid batchdrop routes in {source}:", *(f"  - {p}" for p in problems)]
        lines.append("(written, validated, by `batchdrop routes apply`: apply a valid file, do not edit it)")
        raise ConfigError("\n".join(lines))
    return routes


def settings_document(environ: Mapping[str, str] | None = None) -> Any:
    """The JSON document in ``BATCHDROP_SETTINGS``, parsed (not validated)."""
    env = os.environ if environ is None else environ
    raw = env.get(SETTINGS_ENV)
    if not raw:
        raise ConfigError(f"environment variable {SETTINGS_ENV} is not set")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{SETTINGS_ENV} is not valid JSON: {exc}") from None


def json_key(field_name: str) -> str:
    """The JSON spelling of a field (``max_batch_size`` → ``maxBatchSize``), as the model's aliases."""
    first, *rest = field_name.split("_")
    return first + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class Resources:
    """Names of the AWS resources a function uses; each function gets only the ones it needs."""

    files_table: str | None = None
    batches_table: str | None = None
    state_table: str | None = None
    drop_bucket: str | None = None
    results_bucket: str | None = None
    flush_queue_url: str | None = None
    results_queue_url: str | None = None
    topic_arn: str | None = None
    api_key_secret: str | None = None
    webhook_secret: str | None = None

    ENV_NAMES: ClassVar[dict[str, str]] = {
        "files_table": "FILES_TABLE",
        "batches_table": "BATCHES_TABLE",
        "state_table": "STATE_TABLE",
        "drop_bucket": "DROP_BUCKET",
        "results_bucket": "RESULTS_BUCKET",
        "flush_queue_url": "FLUSH_QUEUE_URL",
        "results_queue_url": "RESULTS_QUEUE_URL",
        "topic_arn": "TOPIC_ARN",
        "api_key_secret": "EXTEND_API_KEY_SECRET",
        "webhook_secret": "WEBHOOK_SECRET",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Resources:
        env = os.environ if environ is None else environ
        return cls(**{field: env[name] for field, name in cls.ENV_NAMES.items() if env.get(name)})

    def to_env(self) -> dict[str, str]:
        return {name: getattr(self, field) for field, name in self.ENV_NAMES.items() if getattr(self, field)}

    def require(self, field: str) -> str:
        value = getattr(self, field)
        if not value:
            raise ConfigError(f"environment variable {self.ENV_NAMES[field]} is not set")
        return value


# --- reading ------------------------------------------------------------------------------------------


def _read(cls: type, data: Any, source: str) -> Any:
    problems: list[str] = []
    value = _dataclass(cls, data, "", problems)
    if problems:
        lines = [f"invalid batchdrop configuration in {source}:", *(f"  - {p}" for p in problems)]
        if source == SETTINGS_ENV:
            lines.append(f"({source} is written, complete and validated, at synth: redeploy, do not edit it)")
        raise ConfigError("\n".join(lines))
    return value


@cache
def _layout(cls: type) -> tuple[tuple[str, str, Any], ...]:
    """(field name, JSON key, type) of each field; the types resolved once per class."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, json_key(f.name), hints[f.name]) for f in fields(cls))


def _dataclass(cls: type, data: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(data, dict):
        problems.append(f"{where or '(top level)'}: expected an object, got {_shown(data)}")
        return None
    layout = _layout(cls)
    known = {key for _name, key, _kind in layout}
    problems += [f"{_path(where, key)}: unknown setting" for key in data if key not in known]
    values = {}
    for name, key, kind in layout:
        if key in data:
            values[name] = _value(kind, data[key], _path(where, key), problems)
        elif _admits_null(kind):
            values[name] = None  # the writer leaves nulls out (config.Settings.to_env_json)
        else:
            problems.append(f"{_path(where, key)}: missing")
    return None if problems else cls(**values)


def _value(kind: Any, value: Any, where: str, problems: list[str]) -> Any:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if _admits_null(kind):  # X | None
        if value is None:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _value(inner, value, where, problems)
    if is_dataclass(kind):
        return _dataclass(kind, value, where, problems)
    if origin is tuple:  # tuple[X, ...]
        if isinstance(value, list):
            return tuple(_value(args[0], item, _path(where, i), problems) for i, item in enumerate(value))
        expected = "a list"
    elif origin is dict:
        if isinstance(value, dict):
            return value
        expected = "an object"
    elif origin is Literal:
        if value in args:
            return value
        expected = f"one of {', '.join(map(repr, args))}"
    elif kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        expected = "a number"
    else:  # str, int, bool (in Python, unlike JSON, true is an int)
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        expected = {int: "an integer", str: "a string", bool: "true or false"}[kind]
    problems.append(f"{where}: expected {expected}, got {_shown(value)}")
    return None


def _admits_null(kind: Any) -> bool:
    return typing.get_origin(kind) in (types.UnionType, typing.Union) and type(None) in typing.get_args(kind)


def _path(where: str, key: str | int) -> str:
    return f"{where}.{key}" if where else str(key)


def _shown(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
