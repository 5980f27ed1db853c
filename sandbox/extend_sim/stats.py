"""Counters exposed at ``GET /_sim/stats``, and the backfill figures: files outstanding (accepted in a
batch, not yet terminal) tracked at every change, with a per-second series at ``GET /_sim/timeline``."""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from typing import Any

from sandbox.extend_sim.model import iso

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
    "downloads_url_expired",
    "rate_limited",
    "rate_limited_read",
    "rate_limited_write",
    "rate_limited_without_retry_after",
    "errors_injected",
    "responses_lost",
    "batches_refused",
    "uploads_refused",
    "foreign_batches",
    "reviews",
)
# The per-second series keeps this many seconds (a day), dropping the oldest.
MAX_SERIES_SECONDS = 86_400
_SERIES_FIELDS = ("accepted", "finished", "rateLimitedRead", "rateLimitedWrite")


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
            self._counters: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
            self._outstanding = 0
            self._max_outstanding = 0
            self._max_outstanding_at: float | None = None
            self._files_accepted = 0
            self._files_finished = 0
            self._first_accepted: float | None = None
            self._last_terminal: float | None = None
            self._batches: list[dict[str, Any]] = []
            self._limited: dict[str, Counter[str]] = {"read": Counter(), "write": Counter()}
            # second -> {"outstanding": highest level in that second, "end": level at its end, counts...}
            self._series: dict[int, dict[str, int]] = {}

    # -- counters --------------------------------------------------------------------------------
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

    # -- backfill --------------------------------------------------------------------------------
    def _bucket(self, now: float) -> dict[str, int]:
        second = int(now)
        bucket = self._series.get(second)
        if bucket is None:
            level = self._outstanding
            bucket = {"outstanding": level, "end": level, **dict.fromkeys(_SERIES_FIELDS, 0)}
            self._series[second] = bucket
            while len(self._series) > MAX_SERIES_SECONDS:
                del self._series[next(iter(self._series))]
        return bucket

    def _level(self, change: int, now: float) -> dict[str, int]:
        bucket = self._bucket(now)
        self._outstanding += change
        bucket["end"] = self._outstanding
        bucket["outstanding"] = max(bucket["outstanding"], self._outstanding)
        if self._outstanding > self._max_outstanding:
            self._max_outstanding = self._outstanding
            self._max_outstanding_at = now
        return bucket

    def accepted(self, batch_id: str, kind: str, size: int, *, foreign: bool = False) -> None:
        """A batch of ``size`` files was accepted: they are outstanding until each one is terminal."""
        now = time.time()
        with self._lock:
            self._level(size, now)["accepted"] += size
            self._files_accepted += size
            if self._first_accepted is None:
                self._first_accepted = now
            self._batches.append({"id": batch_id, "type": kind, "size": size, "foreign": foreign})

    def finished(self, count: int = 1) -> None:
        """``count`` accepted files reached a terminal status."""
        now = time.time()
        with self._lock:
            self._level(-count, now)["finished"] += count
            self._files_finished += count
            self._last_terminal = now

    def rate_limited(self, request_class: str, *, retry_after: bool) -> None:
        """A 429 for a ``read`` or ``write`` request, with or without a Retry-After header."""
        with self._lock:
            self._counters["rate_limited"] += 1
            self._counters[f"rate_limited_{request_class}"] += 1
            if not retry_after:
                self._counters["rate_limited_without_retry_after"] += 1
            self._limited[request_class]["withRetryAfter" if retry_after else "withoutRetryAfter"] += 1
            self._bucket(time.time())[
                "rateLimitedRead" if request_class == "read" else "rateLimitedWrite"
            ] += 1

    def backfill(self) -> dict[str, Any]:
        with self._lock:
            sizes = [b["size"] for b in self._batches]
            first, last = self._first_accepted, self._last_terminal
            return {
                "outstanding": self._outstanding,
                "maxOutstanding": self._max_outstanding,
                "maxOutstandingAt": iso(self._max_outstanding_at) if self._max_outstanding_at else None,
                "filesAccepted": self._files_accepted,
                "filesFinished": self._files_finished,
                "firstAcceptedAt": iso(first) if first is not None else None,
                "lastTerminalAt": iso(last) if last is not None else None,
                "spanSeconds": round(last - first, 3) if first is not None and last is not None else None,
                "batches": {
                    "count": len(sizes),
                    "foreign": sum(b["foreign"] for b in self._batches),
                    "byType": dict(Counter(b["type"] for b in self._batches)),
                    "sizes": sizes,
                    "minSize": min(sizes, default=0),
                    "maxSize": max(sizes, default=0),
                    "meanSize": round(sum(sizes) / len(sizes), 2) if sizes else 0,
                },
                "downloadFailures": {
                    "urlExpired": self._counters["downloads_url_expired"],
                    "other": self._counters["downloads_failed"] - self._counters["downloads_url_expired"],
                },
                "rateLimited": {
                    cls: {
                        "withRetryAfter": counts["withRetryAfter"],
                        "withoutRetryAfter": counts["withoutRetryAfter"],
                    }
                    for cls, counts in self._limited.items()
                },
            }

    def timeline(self, since: float | None = None) -> dict[str, Any]:
        """One point per second from the first activity to now; quiet seconds carry the level on."""
        now = int(time.time())
        with self._lock:
            series = dict(self._series)
        points: list[dict[str, int]] = []
        if series:
            start = min(series)
            if since is not None:
                start = max(start, int(since))
            level = 0
            for second in sorted(series):  # the level at the start of ``start``
                if second >= start:
                    break
                level = series[second]["end"]
            for second in range(start, now + 1):
                bucket = series.get(second)
                if bucket is None:
                    points.append({"t": second, "outstanding": level, **dict.fromkeys(_SERIES_FIELDS, 0)})
                    continue
                points.append(
                    {
                        "t": second,
                        "outstanding": bucket["outstanding"],
                        **{f: bucket[f] for f in _SERIES_FIELDS},
                    }
                )
                level = bucket["end"]
        return {
            "intervalSeconds": 1,
            "fields": {
                "t": "Unix second the point covers",
                "outstanding": "most files accepted in a batch and not yet terminal during that second",
                "accepted": "files accepted in batches during that second",
                "finished": "files that reached a terminal status during that second",
                "rateLimitedRead": "GET requests answered 429",
                "rateLimitedWrite": "POST requests answered 429",
            },
            "points": points,
        }
