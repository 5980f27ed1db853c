"""The webhook function's own handling of API Gateway's proxy event: its one route, the body's encoding,
the proxy response, and a 500 that says nothing about the failure (the accepted path is in
tests/integration/test_webhook.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox.apigw import proxy_event
from sandbox.lambda_runtime import LambdaContext
from webhook import handler

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = handler.lambda_handler(event, LambdaContext("batchdrop-webhook", 10))
    assert response["headers"] == {"Content-Type": "application/json"}
    assert response["isBase64Encoded"] is False
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(("method", "path"), [("GET", "/webhooks/extend"), ("POST", "/webhooks/other")])
def test_anything_but_its_route_is_not_found(method: str, path: str) -> None:
    assert invoke(proxy_event(method, path, {}, b"{}")) == (404, {"message": "not found"})


def test_a_body_that_is_not_valid_base64_is_refused() -> None:
    event = proxy_event("POST", "/webhooks/extend", {}, b"", base64=True) | {"body": "not base64!"}
    assert invoke(event) == (400, {"message": "body is not valid base64"})


def test_a_failure_answers_500_so_extend_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise RuntimeError("table name with internals")

    monkeypatch.setattr(handler, "runtime", broken)
    status, body = invoke(proxy_event("POST", "/webhooks/extend", {}, b"{}"))
    assert (status, body) == (500, {"message": "internal error; retry later"})


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [("²", "0" * 64), ("١٧٦٤٣٢٠٤٠٠", "0" * 64), ("1764320400", "é" * 64), ("1764320400", "٣" * 64)],
)
def test_crafted_headers_are_a_counted_401_not_a_500(
    monkeypatch: pytest.MonkeyPatch, timestamp: str, signature: str
) -> None:
    # Given headers that used to raise before authentication (int("²"), non-ASCII in sign/compare_digest)
    from tests.unit.test_webhook_handling import FakeRuntime

    monkeypatch.setattr(handler, "runtime", FakeRuntime)
    counted: list[str] = []
    monkeypatch.setattr(handler.metrics, "add_metric", lambda name, unit, value: counted.append(name))
    headers = {"x-extend-request-timestamp": timestamp, "x-extend-request-signature": signature}

    # When they reach the function through API Gateway
    status, body = invoke(proxy_event("POST", "/webhooks/extend", headers, b"{}"))

    # Then the answer is 401 and the rejection is counted for the WebhooksRejected alarm
    assert status == 401 and body["message"]
    assert counted == ["WebhooksRejected"]
