"""The simulator's settings: their names, Extend's plan table, and the checks a change must pass."""

from __future__ import annotations

from typing import Any

# Extend's published limits per plan: (files per minute, GET requests/s, WRITE/RUN requests/s).
PLANS: dict[str, tuple[float, float, float]] = {
    "payg": (80, 10, 10),
    "scale": (120, 25, 25),
    "enterprise": (300, 75, 75),
    "unlimited": (0, 0, 0),
}
SORT_FIELDS = ("createdAt", "updatedAt")
# What ExtendSimulator.configure (and so POST /_sim/config) accepts.
SETTING_NAMES = (
    "api_key",
    "allowed_processors",
    "refused_processors",
    "plan",
    "files_per_minute",
    "read_rps",
    "write_rps",
    "missing_retry_after_share",
    "default_sort_by",
    "paused",
    "workflow_review_share",
    "parse_output_url",
    "output_url_ttl_seconds",
    "max_file_bytes",
)


def checked_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` checked, with ``plan`` replaced by the three limits it sets (any of them given in the
    same call wins over the plan) and numbers as floats. Raises ValueError at the first refused value."""
    unknown = set(changes) - set(SETTING_NAMES)
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    changes = dict(changes)
    if "plan" in changes:
        plan = changes.pop("plan")
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {', '.join(PLANS)}")
        for name, value in zip(("files_per_minute", "read_rps", "write_rps"), PLANS[plan], strict=True):
            changes.setdefault(name, value)
    api_key = changes.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError("api_key must be a string or null")
    for name in ("allowed_processors", "refused_processors"):
        value = changes.get(name)
        if value is not None and (isinstance(value, str) or not all(isinstance(p, str) for p in value)):
            raise ValueError(f"{name} must be a list of ids")
    for name in ("files_per_minute", "read_rps", "write_rps", "output_url_ttl_seconds", "max_file_bytes"):
        if name in changes:
            changes[name] = _number(name, changes[name], low=0)
    for name in ("missing_retry_after_share", "workflow_review_share"):
        if name in changes:
            changes[name] = _number(name, changes[name], low=0, high=1)
    for name in ("paused", "parse_output_url"):
        if name in changes and not isinstance(changes[name], bool):
            raise ValueError(f"{name} must be true or false")
    if "default_sort_by" in changes and changes["default_sort_by"] not in SORT_FIELDS:
        raise ValueError(f"default_sort_by must be one of {', '.join(SORT_FIELDS)}")
    return changes


def _number(name: str, value: Any, *, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if value < low or (high is not None and value > high):
        raise ValueError(
            f"{name} must be between {low} and {high}" if high is not None else f"{name} must be >= {low}"
        )
    return float(value)
