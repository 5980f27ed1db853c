"""The queue messages (``batchdrop_core.messages``): what each body carries, and a clear error for a body
that is not one."""

from __future__ import annotations

import json

import pytest

from batchdrop_core.messages import CollectionRequest, FlushRequest, MalformedMessage


def test_a_flush_request_round_trips_and_its_body_is_what_the_submitter_reads() -> None:
    request = FlushRequest("invoices", reason="sweep", force=True)
    assert json.loads(request.to_body()) == {"route": "invoices", "force": True, "reason": "sweep"}
    assert FlushRequest.from_body(request.to_body()) == request
    assert FlushRequest.from_body('{"route": "packets"}') == FlushRequest("packets")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ("{}", "route is required"),
        ('{"route": 7}', "route must be a non-empty string"),
    ],
)
def test_a_malformed_flush_request_says_what_is_wrong(body: str, says: str) -> None:
    with pytest.raises(MalformedMessage, match=says):
        FlushRequest.from_body(body)


def test_a_collection_request_round_trips_with_only_what_it_carries() -> None:
    request = CollectionRequest("bpr_1", source="webhook", event_id="evt_1", event_type="x.processed")
    assert json.loads(request.to_body()) == {
        "batchId": "bpr_1",
        "source": "webhook",
        "eventId": "evt_1",
        "eventType": "x.processed",
    }
    assert CollectionRequest.from_body(request.to_body()) == request


def test_a_continuation_and_a_deferral_count_up_and_keep_the_rest() -> None:
    request = CollectionRequest("bpr_1", source="webhook")
    continued = request.continued("sub_1").continued("sub_1")
    assert (continued.submission_id, continued.continuation, continued.batch_id) == ("sub_1", 2, "bpr_1")
    assert request.deferred().deferred().deferrals == 2
    assert CollectionRequest.from_body(continued.to_body()) == continued


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ('{"source": "webhook"}', "a batchId or a submissionId is required"),
        ('{"batchId": ""}', "batchId must be a non-empty string"),
        ('{"batchId": "bpr_1", "deferrals": -1}', "deferrals must be a count"),
        ('{"batchId": "bpr_1", "continuation": "2"}', "continuation must be a count"),
    ],
)
def test_a_malformed_collection_request_says_what_is_wrong(body: str, says: str) -> None:
    with pytest.raises(MalformedMessage, match=says):
        CollectionRequest.from_body(body)
