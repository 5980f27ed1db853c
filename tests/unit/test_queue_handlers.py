"""What the queue consumers do with a body that is not their request (``batchdrop_core.messages``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from batchdrop_core.messages import MalformedMessage
from results import handler as results_handler
from sandbox.lambda_runtime import LambdaContext
from submitter import handler as submitter_handler


def record(body: str) -> Any:
    return {"messageId": "m-1", "body": body, "attributes": {}, "messageAttributes": {}}


def test_a_malformed_flush_request_is_logged_and_dropped_not_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A flush request is a nudge the sweep repeats; failing it would hold up its FIFO group (a route).
    with caplog.at_level(logging.ERROR):
        assert submitter_handler.record_handler(record('{"force": true}'), LambdaContext("submitter")) is None
    assert "malformed flush request dropped" in caplog.text


def test_a_malformed_collection_request_fails_so_it_is_retried_and_reaches_the_dlq() -> None:
    with pytest.raises(MalformedMessage, match="a batchId or a submissionId is required"):
        results_handler.record_handler(record('{"source": "webhook"}'), LambdaContext("results"))
