"""The settings as a function reads them (``RunSettings``, no pydantic) against the model that validates
them at synth (``config.Settings``): one field set, one set of defaults, the same values."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from batchdrop_core.config import Route, Settings
from batchdrop_core.runconfig import SETTINGS_ENV, ConfigError, Resources, RunRoute, RunSettings, json_key
from batchdrop_core.runtime import Runtime

ROUTE = {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_abc"}
# Every field set, none to its default, every optional one to a value: each type goes through the reader.
EVERYTHING = {
    "routes": [
        {
            **ROUTE,
            "version": "3.1",
            "overrideConfig": {"rules": ["ISO dates"], "nested": {"keep": None}},
            "priority": 40,
            "forwardUserMetadata": True,
        },
        {"name": "docs", "prefix": "docs/", "type": "classify", "processorId": "cl_1"},
    ],
    "maxBatchSize": 250,
    "maxWaitSeconds": 60,
    "fileTransfer": "upload",
    "presignedUrlExpirySeconds": 600,
    "maxFileSizeBytes": 5_000_000,
    "extendBaseUrl": "http://127.0.0.1:8080",
    "extendApiVersion": "2025-01-01",
    "extendWorkspaceId": "ws_1",
    "readRateLimit": 3,  # an integer where a float is expected: the model makes it 3.0
    "writeRateLimit": 4.5,
    "extendFilesPerMinute": 120,
    "maxFilesAtExtend": 750,
    "resultsConcurrency": 4,
    "maxAttempts": 5,
    "retryableFailureReasons": ["INTERNAL_ERROR"],
    "perFileNotifications": True,
    "alarmEmail": "ops@example.com",
    "webhookGraceMinutes": 10,
    "fileSlaMinutes": 90,
    "queuedIndexShards": 8,
    "orphanGraceSeconds": 30,
    "probeIntervalSeconds": 30,
    "probeIntervalMaxSeconds": 600,
}


def _model_fields(model: type[Any]) -> set[tuple[str, str]]:
    return {(name, field.alias or name) for name, field in model.model_fields.items()}


def _reader_fields(cls: type[Any]) -> set[tuple[str, str]]:
    return {(field.name, json_key(field.name)) for field in dataclasses.fields(cls)}


@pytest.mark.parametrize(("model", "reader"), [(Settings, RunSettings), (Route, RunRoute)])
def test_the_model_and_the_reader_have_the_same_fields_and_json_names(model: Any, reader: Any) -> None:
    assert _reader_fields(reader) == _model_fields(model)


@pytest.mark.parametrize("reader", [RunSettings, RunRoute])
def test_defaults_live_only_in_the_model(reader: Any) -> None:
    assert [
        f.name
        for f in dataclasses.fields(reader)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    ] == []


def _same_values(model: Settings, read: RunSettings) -> None:
    for name in Settings.model_fields:
        expected, got = getattr(model, name), getattr(read, name)
        if name == "routes":
            assert len(got) == len(expected)
            for route, run_route in zip(expected, got, strict=True):
                assert isinstance(run_route, RunRoute)
                assert {n: getattr(run_route, n) for n in Route.model_fields} == dict(route)
        else:
            assert got == (tuple(expected) if isinstance(expected, list | tuple) else expected), name
            assert type(got) is type(expected), name


@pytest.mark.parametrize("data", [{"routes": [ROUTE]}, EVERYTHING], ids=["defaults", "everything-set"])
def test_settings_written_by_the_model_read_back_to_equal_values(data: dict[str, Any]) -> None:
    model = Settings.parse(data, "test")
    env = {SETTINGS_ENV: model.to_env_json()}
    read = RunSettings.from_env(env)
    _same_values(model, read)
    assert read == model.to_run_settings()
    assert read.route("invoices") == read.routes[0]
    assert read.route_for_key("invoices/2026/a.pdf") is read.routes[0]
    assert read.route_for_key("elsewhere/a.pdf") is None


def test_the_environment_holds_every_field_with_a_value_and_leaves_out_only_nulls() -> None:
    aliases = {alias for _name, alias in _model_fields(Settings)}
    route_aliases = {alias for _name, alias in _model_fields(Route)}
    # Given every field set, every field is written
    everything = json.loads(Settings.parse(EVERYTHING, "test").to_env_json())
    assert set(everything) == aliases
    assert set(everything["routes"][0]) == route_aliases
    # Given only a route, the defaults are written and only the unset optional fields are left out
    defaults = json.loads(Settings.parse({"routes": [ROUTE]}, "test").to_env_json())
    assert aliases - set(defaults) == {"extendWorkspaceId", "alarmEmail", "maxFilesAtExtend"}
    assert route_aliases - set(defaults["routes"][0]) == {"version", "overrideConfig", "priority"}
    assert (defaults["maxBatchSize"], defaults["readRateLimit"]) == (1000, 8.0)


def _complete() -> dict[str, Any]:
    return json.loads(Settings.parse(EVERYTHING, "test").to_env_json())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("maxWaitSeconds"), "  - maxWaitSeconds: missing"),
        (lambda d: d["routes"][1].pop("name"), "  - routes.1.name: missing"),
        (lambda d: d.update(maxBatchSize="1000"), '  - maxBatchSize: expected an integer, got "1000"'),
        (lambda d: d.update(maxBatchSize=True), "  - maxBatchSize: expected an integer, got true"),
        (lambda d: d.update(readRateLimit=None), "  - readRateLimit: expected a number, got null"),
        (lambda d: d["routes"][0].update(priority="high"), "  - routes.0.priority: expected an integer"),
        (lambda d: d.update(fileTransfer="ftp"), "  - fileTransfer: expected one of 'url', 'upload', got"),
        (lambda d: d["routes"][0].update(type="ocr"), "  - routes.0.type: expected one of 'extract'"),
        (lambda d: d.update(retryableFailureReasons="X"), "  - retryableFailureReasons: expected a list"),
        (lambda d: d.update(routes={}), "  - routes: expected a list, got {}"),
        (lambda d: d.update(maxWaitSecond=5), "  - maxWaitSecond: unknown setting"),
    ],
)
def test_a_bad_environment_value_names_the_variable_and_the_field(change: Any, message: str) -> None:
    data = _complete()
    change(data)
    with pytest.raises(ConfigError) as error:
        RunSettings.from_env({SETTINGS_ENV: json.dumps(data)})
    text = str(error.value)
    assert text.startswith(f"invalid batchdrop configuration in {SETTINGS_ENV}:\n")
    assert message in text
    assert "redeploy" in text


def test_a_missing_or_unreadable_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="environment variable BATCHDROP_SETTINGS is not set"):
        RunSettings.from_env({})
    with pytest.raises(ConfigError, match="BATCHDROP_SETTINGS is not valid JSON"):
        RunSettings.from_env({SETTINGS_ENV: "{nope"})
    with pytest.raises(ConfigError, match=r"\(top level\): expected an object, got \[1\]"):
        RunSettings.from_env({SETTINGS_ENV: "[1]"})


def test_a_runtime_takes_the_settings_a_function_reads() -> None:
    model = Settings.parse({"routes": [ROUTE]}, "test")
    with pytest.raises(TypeError, match="to_run_settings"):
        Runtime(settings=model, resources=Resources())  # type: ignore[arg-type]
    rt = Runtime(settings=model.to_run_settings(), resources=Resources())
    assert rt.settings.route("invoices").processor_id == "ex_abc"
