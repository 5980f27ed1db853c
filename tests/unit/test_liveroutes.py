"""The routes item of the State table as a function reads it back (no pydantic): what `batchdrop routes
apply` writes reads back as the model's own run-time settings; anything else fails naming the item."""

from __future__ import annotations

import json

import pytest

from batchdrop_core import liveroutes
from batchdrop_core.config import ConfigError, Settings
from batchdrop_core.runconfig import route_digest
from tests.helpers import EXAMPLE_ROUTES

ROUTES = [
    *EXAMPLE_ROUTES,
    {"name": "forms", "prefix": "forms/", "type": "parse", "overrideConfig": {"target": "markdown"}},
    {"name": "claims", "prefix": "claims/", "type": "workflow", "processorId": "workflow_x", "version": "3"},
]


def value_of(item: dict) -> str:
    return liveroutes.document_of(item)


def test_what_apply_writes_reads_back_as_the_models_run_settings() -> None:
    settings = Settings.parse({"routes": ROUTES}, "test")
    dumped = json.loads(settings.to_env_json())["routes"]
    live = liveroutes.parse(value_of(liveroutes.item(dumped, "2026-01-01T00:00:00Z", ["gone"])))
    assert live is not None
    assert live.routes == settings.to_run_settings().routes
    assert (live.digest, live.applied_at, live.retired) == (
        liveroutes.digest(dumped),
        "2026-01-01T00:00:00Z",
        ("gone",),
    )


def test_no_item_reads_as_none() -> None:
    assert liveroutes.parse("") is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "is not a JSON object"),
        (json.dumps({"routes": []}), "routes: empty"),
        (json.dumps({"routes": [{**EXAMPLE_ROUTES[0], "type": "ocr"}]}), "routes.0.type: expected one of"),
        (json.dumps({"routes": [{**EXAMPLE_ROUTES[0], "colour": "red"}]}), "routes.0.colour: unknown"),
        (json.dumps({"routes": EXAMPLE_ROUTES, "retired": "x"}), "retired must be a list"),
    ],
)
def test_an_item_edited_by_hand_fails_naming_the_item(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        liveroutes.parse(value)
    assert message in str(raised.value) and "ROUTES item" in str(raised.value)


def test_a_routes_digest_is_the_same_from_the_model_and_from_the_run_time_reading() -> None:
    settings = Settings.parse({"routes": ROUTES}, "test")
    run = settings.to_run_settings()
    digests = {route_digest(r) for r in settings.routes}
    assert digests == {route_digest(r) for r in run.routes} and len(digests) == len(ROUTES)


def test_the_document_is_stored_compressed_and_plain_text_still_reads() -> None:
    schema = {"type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(3000)}}
    routes = [{**EXAMPLE_ROUTES[0], "overrideConfig": {"schema": schema}}]
    written = liveroutes.item(routes, "2026-01-01T00:00:00Z")
    stored = written[liveroutes.VALUE_ATTRIBUTE]["B"]
    plain = json.dumps(routes)
    assert len(stored) * 5 < len(plain)  # a schema compresses well: routes of MBs fit in 400 KB
    assert json.loads(liveroutes.document_of(written))["routes"] == routes
    assert liveroutes.document_of({liveroutes.VALUE_ATTRIBUTE: {"S": "{}"}}) == "{}"
    with pytest.raises(ConfigError, match="cannot be decompressed"):
        liveroutes.document_of({liveroutes.VALUE_ATTRIBUTE: {"B": b"not zlib"}})
