"""Extend webhooks: authenticate, dedupe, enqueue. Collection happens in the results worker (design §2).

Extend gives up on a delivery after 30 s, so this does no Extend call and no table scan: one signature
check, one conditional put for the event id, one SQS message. A request that is not validly signed and
fresh changes nothing (I5).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop_core.extend.signing import WebhookSignatureError, verify
from batchdrop_core.observability import logger
from batchdrop_core.runtime import Runtime

PATH = "/webhooks/extend"  # the API's one route: POST only (stacks.webhook_api)
MAX_BODY_BYTES = 256 * 1024  # batch events are a few hundred bytes; anything this big is not Extend's
BATCH_EVENTS = frozenset({"batch_processor_run.processed", "batch_processor_run.failed"})
MISMATCH = "signature does not match"


@dataclass
class WebhookReply:
    status: int
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def rejected(self) -> bool:
        return self.status in (400, 401, 413)


def _reject(status: int, message: str) -> WebhookReply:
    return WebhookReply(status, {"message": message})


def handle_webhook(rt: Runtime, headers: dict[str, str], body: bytes) -> WebhookReply:
    """The reply for one delivery; a batch event is enqueued for collection at most once per eventId."""
    if len(body) > MAX_BODY_BYTES:
        return _reject(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        verify_signature(rt, headers, body)
    except WebhookSignatureError as exc:
        return _reject(401, exc.reason)
    try:
        event = json.loads(body)
    except ValueError:
        return _reject(400, "body is not JSON")
    if not isinstance(event, dict):
        return _reject(400, "body is not a JSON object")
    event_id, event_type = event.get("eventId"), event.get("eventType")
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        return _reject(400, "eventId and eventType are required")
    ids = {"eventId": event_id, "eventType": event_type}
    if event_type not in BATCH_EVENTS:
        logger.info("webhook event type ignored", extra=ids)
        return WebhookReply(200, {"ignored": True})
    batch_id = batch_id_of(event.get("payload"))
    if not batch_id:
        return _reject(400, "payload.id (the batch id) is required")
    ids["batchId"] = batch_id
    if not rt.state.claim_event(event_id):
        logger.info("duplicate webhook event", extra=ids)
        return WebhookReply(200, {"duplicate": True})
    try:
        rt.request_collection({**ids, "source": "webhook"})
    except (BotoCoreError, ClientError):
        # Forget the event so Extend's retry is not taken for a duplicate.
        rt.state.release_event(event_id)
        logger.exception("could not enqueue the batch for collection", extra=ids)
        return WebhookReply(500, {"message": "could not accept the event; retry later"})
    logger.info("webhook accepted", extra=ids)
    return WebhookReply(200, {"accepted": True})


def verify_signature(rt: Runtime, headers: dict[str, str], body: bytes) -> None:
    """Check against the cached secret; on a mismatch re-read it once, in case it was rotated."""
    try:
        verify(rt.secret_value("webhook_secret"), headers, body)
    except WebhookSignatureError as exc:
        if exc.reason != MISMATCH:
            raise
        fresh = rt.refreshed_secret_value("webhook_secret")
        if fresh is None:
            raise
        verify(fresh, headers, body)


def batch_id_of(payload: Any) -> str | None:
    """The batch id of a batch event; the ``signed_data_url`` variant carries it as ``id`` too, so its
    URL (a credential) is never fetched nor logged here."""
    if not isinstance(payload, dict):
        return None
    batch_id = payload.get("id")
    return batch_id if isinstance(batch_id, str) and batch_id else None
