"""The State table: route health, webhook event dedupe and the deployment's Extend request budgets."""

from __future__ import annotations

import secrets
import time
from typing import Any

from botocore.exceptions import ClientError

from batchdrop_core.dynamo import (
    UpdateBuilder,
    conditional_write,
    from_item,
    serialize,
    to_item,
)
from batchdrop_core.redact import redact
from batchdrop_core.tables import (
    STATE_ROUTE_PREFIX,
    STATE_WEBHOOK_PREFIX,
    state_rate_key,
)
from batchdrop_core.timeutil import now_iso


def _event_key(event_id: str) -> dict[str, Any]:
    return {"pk": serialize(f"{STATE_WEBHOOK_PREFIX}{event_id}")}


def _route_key(route: str) -> dict[str, Any]:
    return {"pk": serialize(f"{STATE_ROUTE_PREFIX}{route}")}


# What StateStore.event_state says of a webhook event id.
EVENT_ACCEPTED = "accepted"  # enqueued: a later delivery is a duplicate
EVENT_PENDING = "pending"  # claimed by a delivery that may still be enqueueing it


class StateStore:
    """The State table: route health, webhook event dedupe and the deployment's Extend request budgets."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # -- webhook event dedupe (batchdrop_core.webhook) ---------------------------------------------------
    # One item per event id, ``WEBHOOK#<eventId>``. A delivery first takes a *pending* claim that expires
    # after ``pending_seconds`` (longer than the webhook function can live) and carries a random token;
    # only after the batch was enqueued is it confirmed (``acceptedAt``, kept ``ttl_seconds``). So a
    # process that dies between the claim and the enqueue leaves a claim that expires, and Extend's retry
    # goes through.
    def claim_event(self, event_id: str, pending_seconds: int) -> str | None:
        """A pending claim on an event id: its token, or None while the id is accepted or claimed by a
        delivery that may still be alive (an unexpired pending claim)."""
        now = int(time.time())
        token = secrets.token_hex(16)
        claimed = conditional_write(
            self.client.put_item,
            TableName=self.table,
            Item=to_item(
                {
                    "pk": f"{STATE_WEBHOOK_PREFIX}{event_id}",
                    "claimToken": token,
                    "expiresAt": now + pending_seconds,
                    "claimedAt": now_iso(),
                }
            ),
            # An expired claim is free: a pending one whose holder died, or an accepted one past its TTL
            # (TTL deletes lazily, so it may still be there).
            ConditionExpression="attribute_not_exists(pk) OR expiresAt < :now",
            ExpressionAttributeValues={":now": serialize(now)},
        )
        return token if claimed else None

    def confirm_event(self, event_id: str, token: str, ttl_seconds: int = 7 * 24 * 3600) -> bool:
        """The event was enqueued: keep its id as a duplicate marker. False when the claim is no longer
        ours (it expired and another delivery took it: that one enqueues too, which collection absorbs)."""
        until = int(time.time()) + ttl_seconds
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=_event_key(event_id),
            UpdateExpression="SET expiresAt = :until, acceptedAt = :at REMOVE claimToken",
            ConditionExpression="claimToken = :token",
            ExpressionAttributeValues={
                ":until": serialize(until),
                ":at": serialize(now_iso()),
                ":token": serialize(token),
            },
        )

    def release_event(self, event_id: str, token: str) -> bool:
        """Drop our pending claim (the enqueue failed), so Extend's retry is accepted at once; a claim
        that is no longer ours is left alone."""
        return conditional_write(
            self.client.delete_item,
            TableName=self.table,
            Key=_event_key(event_id),
            ConditionExpression="claimToken = :token",
            ExpressionAttributeValues={":token": serialize(token)},
        )

    def event_state(self, event_id: str) -> str | None:
        """``EVENT_ACCEPTED``, ``EVENT_PENDING`` (claimed, not expired, not confirmed) or None (free)."""
        key = _event_key(event_id)
        item = self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        values = from_item(item) if item else {}
        if not values or int(values.get("expiresAt", 0)) < int(time.time()):
            return None
        return EVENT_ACCEPTED if "acceptedAt" in values else EVENT_PENDING

    # -- request budgets (batchdrop_core.budget) ------------------------------------------------------
    def lease_slots(self, budget: str, duration_ms: int, now_ms: int) -> int:
        """Reserve the next ``duration_ms`` of a budget's schedule; the start of the lease (epoch ms).

        The schedule is one number, the time its next request may go (``nextSlotMs``): a lease moves it
        on by its duration, from where it is or from now, whichever is later. One conditional write, no
        read: the first form succeeds while the schedule runs ahead of now, the second once it has
        fallen behind; a race with another lease fails the condition and tries again."""
        key = {"pk": serialize(state_rate_key(budget))}
        duration, now = serialize(duration_ms), serialize(now_ms)
        for _ in range(20):
            try:
                response = self.client.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression="SET nextSlotMs = nextSlotMs + :duration",
                    ConditionExpression="nextSlotMs >= :now",
                    ExpressionAttributeValues={":duration": duration, ":now": now},
                    ReturnValues="UPDATED_OLD",
                )
                return int(from_item(response["Attributes"])["nextSlotMs"])
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise
            started = conditional_write(
                self.client.update_item,
                TableName=self.table,
                Key=key,
                UpdateExpression="SET nextSlotMs = :until",
                ConditionExpression="attribute_not_exists(nextSlotMs) OR nextSlotMs < :now",
                ExpressionAttributeValues={":until": serialize(now_ms + duration_ms), ":now": now},
            )
            if started:
                return now_ms
        raise RuntimeError(f"could not lease from request budget {budget!r}: too much contention")

    def hold_budget(self, budget: str, until_ms: int) -> None:
        """No lease of the budget starts before ``until_ms`` (Extend answered 429: everyone waits)."""
        conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key={"pk": serialize(state_rate_key(budget))},
            UpdateExpression="SET nextSlotMs = :until",
            ConditionExpression="attribute_not_exists(nextSlotMs) OR nextSlotMs < :until",
            ExpressionAttributeValues={":until": serialize(until_ms)},
        )

    def route_state(self, route: str) -> dict[str, Any]:
        item = self.client.get_item(TableName=self.table, Key=_route_key(route)).get("Item")
        return from_item(item) if item else {}

    def _route_key(self, route: str) -> dict[str, Any]:
        return _route_key(route)

    def block_route(self, route: str, reason: str, message: str, probe_at: str, probe_seconds: float) -> bool:
        """Mark a route blocked, its first probe at ``probe_at``; True when this is news (it was not
        blocked for the same reason). An old block is left as it is (its probe schedule runs on)."""
        update = (
            UpdateBuilder()
            .set("blocked", True)
            .set("blockedReason", reason)
            .set("blockedMessage", redact(message))
            .set("blockedAt", now_iso())
            .set("probeAt", probe_at)
            .set("probeSeconds", probe_seconds)
        )
        update.value("sameReason", reason)
        update.value("yes", True)
        condition = "attribute_not_exists(#blocked) OR #blocked <> :yes OR #blockedReason <> :sameReason"
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=self._route_key(route),
            **update.kwargs(condition),
        )

    def claim_probe(
        self, route: str, expected_at: str | None, next_at: str, interval: float, *, force: bool = False
    ) -> bool:
        """Move a blocked route's next probe to ``next_at`` (the probe about to go is this interval's):
        conditional on the probe time read (``expected_at``), so one probe goes per interval."""
        update = UpdateBuilder().set("probeAt", next_at).set("probeSeconds", interval)
        update.name("blocked")
        update.value("yes", True)
        condition = "#blocked = :yes"
        if not force:
            if expected_at is None:
                condition += " AND attribute_not_exists(#probeAt)"
            else:
                update.value("expectProbeAt", expected_at)
                condition += " AND #probeAt = :expectProbeAt"
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=self._route_key(route),
            **update.kwargs(condition),
        )

    def set_route_backoff(self, route: str, until: str, interval: float) -> None:
        """No batch of the route is submitted before ``until`` (ISO time); ``interval`` is the current
        backoff interval (it doubles while Extend keeps throttling)."""
        self.client.update_item(
            TableName=self.table,
            Key=self._route_key(route),
            **UpdateBuilder().set("backoffUntil", until).set("backoffSeconds", interval).kwargs(),
        )

    def reset_route_intervals(self, route: str) -> None:
        """Extend accepted a batch: the next backoff or block starts from the first interval again."""
        self.client.update_item(
            TableName=self.table,
            Key=self._route_key(route),
            **UpdateBuilder().remove("backoffSeconds").remove("probeSeconds").kwargs(),
        )

    def unblock_route(self, route: str) -> bool:
        """Clear a block; True when the route was blocked. ``probeSeconds`` stays until a batch is
        accepted, so a block that comes straight back (no credits) probes at the next interval."""
        update = UpdateBuilder().set("blocked", False).set("unblockedAt", now_iso()).remove("probeAt")
        update.value("yes", True)
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=_route_key(route),
            **update.kwargs("#blocked = :yes"),
        )
