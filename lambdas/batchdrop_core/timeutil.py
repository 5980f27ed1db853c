"""UTC timestamps as sortable ISO-8601 strings (DynamoDB sort keys compare them as text)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso(utc_now())


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def age_seconds(value: str, now: datetime | None = None) -> float:
    return ((now or utc_now()) - parse_iso(value)).total_seconds()
