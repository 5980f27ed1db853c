"""Counters exposed at ``GET /_sim/stats``."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from typing import Any

COUNTERS = (
    "batches",
    "runs",
    "files_processed",
    "uploads",
    "webhooks_sent",
    "webhooks_delivered",
    "webhooks_failed",
    "webhooks_dropped",
    "webhooks_duplicated",
    "downloads_ok",
    "downloads_failed",
    "rate_limited",
    "errors_injected",
    "responses_lost",
)


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._counters: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counters[name] += amount

    def request(self, route: str, outcome: int | str) -> None:
        with self._lock:
            self._requests[route][str(outcome)] += 1

    def get(self, name: str) -> int:
        with self._lock:
            return self._counters[name]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {route: dict(codes) for route, codes in sorted(self._requests.items())},
                "counters": dict(self._counters),
            }
