"""What the scenario records of an outage, and how many probes the backoff allows in one."""

from __future__ import annotations

from dataclasses import dataclass, field


def is_intake_dedupe(operation: str) -> bool:
    """Intake's conditional PutItem (its caller's thread is an intake poller, whatever the name prefix)."""
    return operation.startswith("PutItem by") and operation.endswith("intake")


@dataclass
class Outage:
    name: str
    routes: list[str]
    onset_started: float = 0.0
    started: float = 0.0  # every route of the outage held (blocked), every waiting file tracked
    ended: float = 0.0
    resumed: float = 0.0  # the outage's files all PROCESSED
    requests: dict[str, int] = field(default_factory=dict)
    onset_file_writes: int = 0
    file_writes: int = 0
    probes: dict[str, int] = field(default_factory=dict)
    probes_allowed: int = 0


def probes_allowed(seconds: float, first: float, cap: float) -> int:
    """How many probes the backoff allows in a window: one at every interval boundary (first, doubling up
    to cap), plus one for a window that starts between two boundaries."""
    count, elapsed, interval = 1, 0.0, first
    while elapsed + interval <= seconds:
        elapsed += interval
        count += 1
        interval = min(interval * 2, cap)
    return count
