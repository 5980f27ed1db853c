"""The messages the functions send each other through SQS, typed: one place says what each carries.

- ``FlushRequest`` (flush queue, FIFO, message group = route): "look at this route", from intake, the sweep,
  the submitter itself (a continuation), the results worker (files sent round again), admission (room at
  Extend) and the CLI (operator flushes).
- ``CollectionRequest`` (results queue): "collect this batch", from the webhook, the reconciler and the
  results worker itself (a continuation, or a deferral while Extend is unavailable).

A body that does not parse raises ``MalformedMessage`` naming what is wrong. The results worker lets it
fail: the message is retried and ends in the results DLQ, whose alarm says so. The submitter logs it and
drops it: a flush request is only a nudge (the sweep asks again every minute), and a failing message would
hold up its whole FIFO message group, a route, until it reached the DLQ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any


class MalformedMessage(ValueError):
    """A queue message that is not the request its queue carries."""


def _parse(body: str, what: str) -> dict[str, Any]:
    try:
        values = json.loads(body)
    except ValueError as exc:
        raise MalformedMessage(f"{what}: the body is not JSON ({exc})") from None
    if not isinstance(values, dict):
        raise MalformedMessage(f"{what}: the body is not a JSON object")
    return values


def _text(values: dict[str, Any], name: str, what: str) -> str | None:
    value = values.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise MalformedMessage(f"{what}: {name} must be a non-empty string, not {value!r}")
    return value


def _count(values: dict[str, Any], name: str, what: str) -> int:
    value = values.get(name) or 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedMessage(f"{what}: {name} must be a count, not {value!r}")
    return value


@dataclass(frozen=True)
class FlushRequest:
    route: str
    reason: str = ""  # who asked and why, for the logs: arrivals, sweep, retry, operator, …
    force: bool = False  # send a partial batch now (an operator's flush), not only due ones

    def to_body(self) -> str:
        return json.dumps({"route": self.route, "force": self.force, "reason": self.reason})

    @classmethod
    def from_body(cls, body: str) -> FlushRequest:
        what = "flush request"
        values = _parse(body, what)
        route = _text(values, "route", what)
        if route is None:
            raise MalformedMessage(f"{what}: route is required")
        return cls(route=route, reason=str(values.get("reason") or ""), force=values.get("force") is True)


@dataclass(frozen=True)
class CollectionRequest:
    batch_id: str | None = None  # Extend's batch id (a webhook knows only this)
    submission_id: str | None = None  # ours, when the sender knows it
    source: str = ""  # webhook | reconciler | …, for the logs
    event_id: str | None = None  # the webhook event that asked (for the logs)
    event_type: str | None = None
    run_id: str | None = None  # a run event (workflows): record this run of the batch, not the batch
    continuation: int = 0  # how many invocations this collection has taken so far
    deferrals: int = 0  # how often it was put off while Extend was unavailable

    def __post_init__(self) -> None:
        if not self.batch_id and not self.submission_id:
            raise MalformedMessage("collection request: a batchId or a submissionId is required")

    def to_body(self) -> str:
        values = {
            "batchId": self.batch_id,
            "submissionId": self.submission_id,
            "source": self.source,
            "eventId": self.event_id,
            "eventType": self.event_type,
            "runId": self.run_id,
            "continuation": self.continuation,
            "deferrals": self.deferrals,
        }
        return json.dumps({name: value for name, value in values.items() if value})

    @classmethod
    def from_body(cls, body: str) -> CollectionRequest:
        what = "collection request"
        values = _parse(body, what)
        return cls(
            batch_id=_text(values, "batchId", what),
            submission_id=_text(values, "submissionId", what),
            source=str(values.get("source") or ""),
            event_id=_text(values, "eventId", what),
            event_type=_text(values, "eventType", what),
            run_id=_text(values, "runId", what),
            continuation=_count(values, "continuation", what),
            deferrals=_count(values, "deferrals", what),
        )

    def deferred(self) -> CollectionRequest:
        return replace(self, deferrals=self.deferrals + 1)

    def continued(self, submission_id: str) -> CollectionRequest:
        return replace(self, submission_id=submission_id, continuation=self.continuation + 1)
