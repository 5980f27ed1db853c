"""Extend webhooks: authenticate, dedupe, enqueue. Collection happens in the results worker (design §2).

Extend gives up on a delivery after 30 s, so this does no Extend call and no table scan: one signature
check, one conditional put for the event id, one SQS message, one update. A request that is not validly
signed and fresh changes nothing (I5).

Claim, enqueue, confirm. The event id is claimed with a *pending* marker that expires after
``CLAIM_PENDING_SECONDS`` (longer than the function may run), the batch is enqueued with a client that
gives up within seconds, and only then is the claim confirmed as a duplicate marker. So:

- an enqueue that fails or times out releases the claim and answers 500: Extend's retry is accepted;
- a delivery that dies between the claim and the enqueue (a timeout, a crash) leaves a claim that expires:
  a retry that finds it still pending is answered 409 (retry later), never 200, and once it has expired
  the retry is accepted and enqueued;
- a retry after a successful enqueue finds the confirmed claim: 200, no second message.

The other way round (enqueue first, dedupe in the results worker) would not lose events either, since
collection does nothing twice, but every duplicate delivery would then cost a collection: listing the
batch's runs at Extend under the shared read budget. Here a duplicate costs one DynamoDB read, and a
second message can only come from a confirm that failed after its enqueue, which collection absorbs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from batchdrop_core.extend.processors import BATCH_EVENT_TYPES, RUN_EVENT_TYPES
from batchdrop_core.extend.signing import WebhookSignatureError, verify
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.observability import logger
from batchdrop_core.runtime import Runtime
from batchdrop_core.tracking import EVENT_ACCEPTED

PATH = "/webhooks/extend"  # the API's one route: POST only (stacks.webhook_api)
MAX_BODY_BYTES = 256 * 1024  # batch events are a few hundred bytes; anything this big is not Extend's
MISMATCH = "signature does not match"
MAX_EVENT_ID_CHARS = 256  # Extend's ids are short; the claim's key must stay far below DynamoDB's 2 KB
# A pending claim outlives the delivery that took it: the function runs at most 10 s
# (stacks.constants.WEBHOOK, checked by tests/infra), and its enqueue gives up well within that.
CLAIM_PENDING_SECONDS = 20


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
    if len(event_id) > MAX_EVENT_ID_CHARS:
        return _reject(400, f"eventId longer than {MAX_EVENT_ID_CHARS} characters")
    ids = {"eventId": event_id, "eventType": event_type}
    if event_type not in BATCH_EVENT_TYPES and event_type not in RUN_EVENT_TYPES:
        logger.info("webhook event type ignored", extra=ids)
        return WebhookReply(200, {"ignored": True})
    request = collection_request(event_id, event_type, event.get("payload"))
    if isinstance(request, WebhookReply):
        return request
    ids.update({k: v for k, v in (("batchId", request.batch_id), ("runId", request.run_id)) if v})
    token = rt.state.claim_event(event_id, CLAIM_PENDING_SECONDS)
    if token is None:
        if rt.state.event_state(event_id) == EVENT_ACCEPTED:
            logger.info("duplicate webhook event", extra=ids)
            return WebhookReply(200, {"duplicate": True})
        # Another delivery of this event holds a pending claim: it is enqueueing it, or it died and its
        # claim expires within CLAIM_PENDING_SECONDS. A 200 here would lose the event in the second case.
        logger.info("webhook event held by another delivery; asked to retry", extra=ids)
        return WebhookReply(409, {"message": "this event is being accepted; retry later"})
    try:
        rt.request_collection(request, quick=True)
    except (BotoCoreError, ClientError):
        logger.exception("could not enqueue the batch for collection", extra=ids)
        _release(rt, event_id, token, ids)
        return WebhookReply(500, {"message": "could not accept the event; retry later"})
    try:
        if not rt.state.confirm_event(event_id, token):
            logger.warning("webhook claim expired before it was confirmed", extra=ids)
    except (BotoCoreError, ClientError):
        # The batch is queued, which is what counts. The claim stays pending and expires, so a retry of
        # this event would be enqueued a second time: the results worker does nothing twice.
        logger.exception("could not confirm the webhook claim; the event is queued", extra=ids)
    logger.info("webhook accepted", extra=ids)
    return WebhookReply(200, {"accepted": True})


def _release(rt: Runtime, event_id: str, token: str, ids: dict[str, str]) -> None:
    """Give the claim back so Extend's retry is accepted at once; if even that fails, it expires."""
    try:
        rt.state.release_event(event_id, token)
    except (BotoCoreError, ClientError):
        logger.exception("could not release the webhook claim; it expires", extra=ids)


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


def collection_request(event_id: str, event_type: str, payload: Any) -> CollectionRequest | WebhookReply:
    """What to collect for an event of the processor-type table: a batch event names its batch (the
    payload is the BatchRun); a run event (workflows) names its run, with the batch and our submission
    from the run's ``batchId`` and metadata. The ``signed_data_url`` variant carries the id (and the
    metadata) too, so its URL (a credential) is never fetched nor logged here."""
    if not isinstance(payload, dict):
        return _reject(400, "payload is required")
    if event_type in BATCH_EVENT_TYPES:
        batch_id = _text(payload.get("id"))
        if not batch_id:
            return _reject(400, "payload.id (the batch id) is required")
        return CollectionRequest(batch_id, source="webhook", event_id=event_id, event_type=event_type)
    run_id = _text(payload.get("id"))
    metadata = payload.get("metadata")
    ours = metadata.get("batchdrop") if isinstance(metadata, dict) else None
    submission_id = _text(ours.get("submissionId")) if isinstance(ours, dict) else None
    batch_id = _text(payload.get("batchId"))
    if not run_id or not (batch_id or submission_id):
        return _reject(400, "payload.id (the run id) and its batchId or metadata are required")
    return CollectionRequest(
        batch_id,
        submission_id,
        source="webhook",
        event_id=event_id,
        event_type=event_type,
        run_id=run_id,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
