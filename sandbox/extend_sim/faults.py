"""Switchable faults. Mutate an instance at run time (attribute or ``POST /_sim/faults``)."""

from __future__ import annotations

import dataclasses
import random
import re
import threading
from dataclasses import dataclass
from typing import Any


@dataclass
class Faults:
    # Share (0..1) of API requests (not /_sim) answered 500 INTERNAL_ERROR, retryable.
    error_5xx_rate: float = 0.0
    # Every API GET is answered 429 until this epoch time (seconds).
    rate_limit_storm_until: float = 0.0
    # The next N API GETs are answered 429.
    rate_limit_storm_requests: int = 0
    # Added to every API request before it is handled.
    latency_ms: int = 0
    # Share of webhook events never sent (no retries either).
    webhook_drop_rate: float = 0.0
    # Share of webhook events sent twice with the same eventId.
    webhook_duplicate_rate: float = 0.0
    # Hold each webhook delivery for a random time so events arrive out of order.
    webhook_reorder: bool = False
    # The next N batch POSTs create the batch but the connection is reset instead of answered.
    lose_post_response: int = 0
    # The next N batches end FAILED, every run failed with INTERNAL_ERROR.
    fail_batches: int = 0
    # Webhook payloads are {"object": "signed_data_url", "data": <url>, "id": ...} instead of inline.
    signed_url_payload: bool = False
    # A batch whose POST response was lost (lose_post_response) becomes visible (GET /batch_runs, the
    # list endpoints, GET run) and starts processing only this many seconds after the POST.
    lost_batch_delay_seconds: float = 0.0
    # Regular expression (re.search) on file names: a batch POST with an input whose name (``file.name``,
    # or the URL's object name) matches is refused with 400 naming ``inputs[i]``, and so is an upload
    # whose file name matches. Empty: off.
    refuse_file_names: str = ""

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update, converting values to each field's type. Raises ValueError."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"unknown fault(s): {', '.join(unknown)}")
        converted = {}
        for name, value in changes.items():
            kind = {"float": float, "int": int, "bool": bool, "str": str}[str(fields[name].type)]
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false")
            if kind is str:
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
                converted[name] = value or ""
                continue
            try:
                converted[name] = kind(value or 0)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be a number") from exc
        if converted.get("refuse_file_names"):
            try:
                re.compile(converted["refuse_file_names"])
            except re.error as exc:
                raise ValueError(f"refuse_file_names is not a valid regular expression: {exc}") from exc
        # Validate everything before changing anything, so a bad request leaves the faults as they were.
        for name, value in converted.items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def refused_name(self, name: str) -> bool:
        return bool(self.refuse_file_names) and re.search(self.refuse_file_names, name) is not None


class Chance:
    """A seeded, thread-safe random source, so fault injection is repeatable for a given seed."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._lock = threading.Lock()
        self._rng = random.Random(seed)

    def reseed(self) -> None:
        with self._lock:
            self._rng = random.Random(self._seed)

    def hit(self, rate: float) -> bool:
        """True with probability ``rate`` (no random number is drawn when the rate is 0)."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def uniform(self, low: float, high: float) -> float:
        with self._lock:
            return self._rng.uniform(low, high)
