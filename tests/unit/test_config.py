"""Settings validation: every mistake gets a message that names the setting (design §7)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batchdrop_core.config import SETTINGS_ENV, ConfigError, Resources, Settings

ROUTE = {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_abc"}


def parse(**overrides: Any) -> Settings:
    return Settings.parse({"routes": [ROUTE], **overrides}, "test")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"routes": []}, "routes: List should have at least 1 item"),
        ({"routes": [{**ROUTE, "processorId": "cl_abc"}]}, "does not look like a extract processor"),
        ({"routes": [{**ROUTE, "type": "ocr"}]}, "routes.0.type"),
        ({"routes": [{**ROUTE, "type": "parse"}]}, "parse routes name no processor; leave processorId"),
        ({"routes": [{**ROUTE, "type": "workflow"}]}, "does not look like a workflow processor"),
        (
            {"routes": [{**ROUTE, "type": "workflow", "processorId": "workflow_1", "overrideConfig": {}}]},
            "workflow routes take no overrideConfig",
        ),
        ({"routes": [{**ROUTE, "processorId": None}]}, "processorId is required for extract routes"),
        ({"routes": [{**ROUTE, "name": "Invoices!"}]}, "must be 1-40 lowercase letters"),
        ({"routes": [{**ROUTE, "prefix": "/invoices"}]}, "must be a non-empty S3 key prefix"),
        ({"routes": [ROUTE, {**ROUTE, "name": "more", "prefix": "invoices/2026/"}]}, "overlapping prefixes"),
        ({"routes": [ROUTE, {**ROUTE, "prefix": "other/"}]}, "route names must be unique"),
        (
            {"routes": [ROUTE], "maxBatchSize": 1001},
            "maxBatchSize: Input should be less than or equal to 1000",
        ),
        ({"routes": [ROUTE], "maxBatchSize": 0}, "maxBatchSize"),
        ({"routes": [ROUTE], "extendBaseUrl": "ftp://x"}, "must be an http(s) URL"),
        ({"routes": [ROUTE], "alarmEmail": "nobody"}, "is not an e-mail address"),
        ({"routes": [ROUTE], "maxWaitSecond": 5}, "maxWaitSecond: Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_name_the_setting(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.parse(data, "cdk.json context 'batchdrop'")
    assert "cdk.json context 'batchdrop'" in str(error.value)
    assert message in str(error.value)


def test_defaults_and_round_trip_through_the_environment() -> None:
    settings = parse()
    assert (settings.max_batch_size, settings.max_wait_seconds, settings.file_transfer) == (1000, 300, "url")
    assert settings.extend_api_version == "2026-02-09"
    again = Settings.from_env({SETTINGS_ENV: settings.to_env_json()})
    assert again == settings


def test_longest_prefix_wins_and_unrouted_keys_have_no_route() -> None:
    settings = Settings.parse(
        {"routes": [ROUTE, {"name": "docs", "prefix": "docs/", "type": "classify", "processorId": "cl_1"}]},
        "t",
    )
    assert settings.route_for_key("invoices/a.pdf").name == "invoices"
    assert settings.route_for_key("docs/x/y.txt").name == "docs"
    assert settings.route_for_key("elsewhere/a.pdf") is None


def test_environment_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="BATCHDROP_SETTINGS is not set"):
        Settings.from_env({})
    with pytest.raises(ConfigError, match="is not valid JSON"):
        Settings.from_env({SETTINGS_ENV: "{nope"})
    with pytest.raises(ConfigError, match="FILES_TABLE is not set"):
        Resources.from_env({}).require("files_table")


def test_resources_round_trip_through_the_environment() -> None:
    resources = Resources(files_table="f", topic_arn="arn:aws:sns:us-east-1:1:t")
    assert Resources.from_env(resources.to_env()) == resources
    assert json.loads(parse().to_env_json())["routes"][0]["processorId"] == "ex_abc"
