"""Webhook Lambda: API Gateway ``POST /webhooks/extend`` → verified, deduped batch events → results queue.

The REST API sends this function that one method and path only, as a proxy event; the function answers
with the proxy response itself (a router such as Powertools' resolver would load more modules at each
cold start than the webhook has lines).
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from batchdrop_core.observability import MetricName, logger, metrics
from batchdrop_core.runtime import Runtime
from batchdrop_core.webhook import PATH, WebhookReply, handle_webhook


@cache
def runtime() -> Runtime:
    return Runtime.from_env()


def receive_extend_webhook(event: dict[str, Any]) -> WebhookReply:
    if (event.get("httpMethod"), event.get("resource")) != ("POST", PATH):
        return WebhookReply(404, {"message": "not found"})
    raw = event.get("body") or ""
    # The signature covers the exact bytes Extend sent: API Gateway base64-encodes bodies it deems binary.
    try:
        body = base64.b64decode(raw, validate=True) if event.get("isBase64Encoded") else raw.encode("utf-8")
    except (binascii.Error, ValueError):
        reply = WebhookReply(400, {"message": "body is not valid base64"})
    else:
        reply = handle_webhook(runtime(), dict(event.get("headers") or {}), body)
    if reply.rejected:
        reason = reply.body.get("message")
        logger.warning("webhook rejected", extra={"status": reply.status, "reason": reason})
        metrics.add_metric(MetricName.WEBHOOKS_REJECTED, MetricUnit.Count, 1)
    elif reply.body.get("accepted"):
        metrics.add_metric(MetricName.WEBHOOKS_ACCEPTED, MetricUnit.Count, 1)
    return reply


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        reply = receive_extend_webhook(event)
    except Exception:  # noqa: BLE001 - Extend retries a 5xx; the body says nothing about our internals
        logger.exception("webhook failed")
        reply = WebhookReply(500, {"message": "internal error; retry later"})
    return {
        "statusCode": reply.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(reply.body),
        "isBase64Encoded": False,
    }
