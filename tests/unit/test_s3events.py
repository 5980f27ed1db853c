"""S3 notifications as SQS delivers them: real S3's shape, moto's thinner one, and what is not one."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchdrop_core.s3events import MalformedEventError, parse_notification

EVENTS = Path(__file__).resolve().parents[1] / "events"  # copies of shared/events


def record(key: str, **object_fields: object) -> dict:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "drop"}, "object": {"key": key, "size": 3, **object_fields}},
    }


def test_real_s3_event_is_decoded_with_version_and_sequencer() -> None:
    body = (EVENTS / "s3-object-created.json").read_text()
    [created] = parse_notification(body).objects
    assert created.key == "invoices/2026/ACME Corp invoice #1042+final.pdf"
    assert created.version_id == "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd9"
    assert created.sequencer == "0055AED6DCD90281E5"
    assert created.bucket == "batchdrop-drop-123456789012"


def test_test_event_is_skipped() -> None:
    parsed = parse_notification((EVENTS / "s3-test-event.json").read_text())
    assert parsed.objects == [] and parsed.skipped == "s3:TestEvent"


def test_moto_shape_without_version_or_sequencer_and_with_encoded_slash() -> None:
    body = json.dumps({"Records": [record("invoices%2Fa+b.pdf", eTag="e")]})
    [created] = parse_notification(body).objects
    assert (created.key, created.version_id, created.sequencer) == ("invoices/a b.pdf", None, None)


def test_removal_events_and_other_sources_need_no_work() -> None:
    removed = {**record("a.pdf"), "eventName": "ObjectRemoved:Delete"}
    other = {**record("b.pdf"), "eventSource": "aws:sqs"}
    parsed = parse_notification(json.dumps({"Records": [removed, other]}))
    assert parsed.objects == []
    assert "ObjectRemoved:Delete" in parsed.skipped


def test_folder_markers_are_recognised() -> None:
    [created] = parse_notification(json.dumps({"Records": [record("invoices/2026/", size=0)]})).objects
    created = created.__class__(**{**created.__dict__, "size": 0})
    assert created.is_folder_marker


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"Hello": 1}),
        json.dumps({"Records": ["x"]}),
        json.dumps({"Records": [{}]}),
    ],
)
def test_malformed_bodies_raise_a_specific_error(body: str) -> None:
    with pytest.raises(MalformedEventError):
        parse_notification(body)


def test_unsupported_event_version_is_refused() -> None:
    with pytest.raises(MalformedEventError, match="event version"):
        parse_notification(json.dumps({"Records": [{**record("a.pdf"), "eventVersion": "3.0"}]}))


@given(st.text(min_size=1, max_size=200).filter(lambda k: "\x00" not in k))
def test_any_key_round_trips_through_s3s_form_encoding(key: str) -> None:
    # S3 encodes keys as application/x-www-form-urlencoded; moto also encodes '/' as %2F.
    for encoded in (quote_plus(key, safe="/"), quote_plus(key, safe="")):
        [created] = parse_notification(json.dumps({"Records": [record(encoded)]})).objects
        assert created.key == key
