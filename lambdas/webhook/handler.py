"""Webhook Lambda: API Gateway ``POST /webhooks/extend`` → verified, deduped batch events → results queue."""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit

from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.runtime import Runtime
from batchdrop_core.webhook import WebhookReply, handle_webhook

app = APIGatewayRestResolver()


@cache
def runtime() -> Runtime:
    return Runtime.from_env()


def _json(reply: WebhookReply) -> Response:
    return Response(status_code=reply.status, content_type="application/json", body=json.dumps(reply.body))


@app.post("/webhooks/extend")
def receive_extend_webhook() -> Response:
    event = app.current_event
    raw = event.body or ""
    # The signature covers the exact bytes Extend sent: API Gateway base64-encodes bodies it deems binary.
    try:
        body = base64.b64decode(raw, validate=True) if event.is_base64_encoded else raw.encode("utf-8")
    except (binascii.Error, ValueError):
        reply = WebhookReply(400, {"message": "body is not valid base64"})
    else:
        reply = handle_webhook(runtime(), dict(event.headers or {}), body)
    if reply.rejected:
        reason = reply.body.get("message")
        logger.warning("webhook rejected", extra={"status": reply.status, "reason": reason})
        metrics.add_metric(MetricName.WEBHOOKS_REJECTED, MetricUnit.Count, 1)
    elif reply.body.get("accepted"):
        metrics.add_metric(MetricName.WEBHOOKS_ACCEPTED, MetricUnit.Count, 1)
    return _json(reply)


@app.exception_handler(Exception)
def internal_error(exc: Exception) -> Response:
    # Extend retries a 5xx; the body says nothing about our internals.
    logger.exception("webhook failed")
    return _json(WebhookReply(500, {"message": "internal error; retry later"}))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
