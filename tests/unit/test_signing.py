"""Webhook signature verification accepts exactly the validly signed, fresh requests (design §5 I5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchdrop_core.extend.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSignatureError,
    sign,
    signature_headers,
    verify,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"  # copies of shared/events
SECRET = "wss_test_not_a_real_secret_0000"
TIMESTAMP = 1764320400
EXPECTED = "dd6aaa962efa5c7f0f0851a5bd5290ab6755b7554099361425c6b4b83984bf24"


@pytest.fixture
def body() -> bytes:
    return (EVENTS / "extend-webhook-batch-processed.json").read_bytes().rstrip(b"\n")


def headers(signature: str = EXPECTED, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature}


def test_worked_example_is_accepted(body: bytes) -> None:
    assert sign(SECRET, TIMESTAMP, body) == EXPECTED
    verify(SECRET, headers(), body, now=TIMESTAMP + 10)
    # Header names are case-insensitive; a signature in upper case is the same hex.
    verify(SECRET, {k.upper(): v.upper() for k, v in headers().items()}, body, now=TIMESTAMP)
    # During a rotation either secret may sign.
    verify(["wss_test_new_secret", SECRET], headers(), body, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b, h: (b, h, "wss_test_wrong_secret", TIMESTAMP), "signature does not match"),
        (lambda b, h: (b.replace(b"1000", b"1001"), h, SECRET, TIMESTAMP), "signature does not match"),
        (lambda b, h: (b + b" ", h, SECRET, TIMESTAMP), "signature does not match"),
        (lambda b, h: (b, h, SECRET, TIMESTAMP + 301), "too old"),
        (lambda b, h: (b, h, SECRET, TIMESTAMP - 61), "in the future"),
        (
            lambda b, h: (b, {SIGNATURE_HEADER: EXPECTED}, SECRET, TIMESTAMP),
            "missing x-extend-request-timestamp",
        ),
        (
            lambda b, h: (b, {TIMESTAMP_HEADER: str(TIMESTAMP)}, SECRET, TIMESTAMP),
            "missing x-extend-request-sig",
        ),
        (lambda b, h: (b, {**h, TIMESTAMP_HEADER: "12.5"}, SECRET, TIMESTAMP), "not an integer"),
        (
            lambda b, h: (b, {**h, SIGNATURE_HEADER: "sha256=" + EXPECTED}, SECRET, TIMESTAMP),
            "does not match",
        ),
    ],
)
def test_bad_requests_are_rejected(body: bytes, mutate, reason: str) -> None:
    sent_body, sent_headers, secret, now = mutate(body, headers())
    with pytest.raises(WebhookSignatureError, match=reason):
        verify(secret, sent_headers, sent_body, now=now)


@given(
    body=st.binary(max_size=300),
    other=st.binary(max_size=300),
    age=st.integers(min_value=-120, max_value=600),
    secret_suffix=st.text(alphabet="abcdef0123456789", min_size=1, max_size=16),
)
def test_verify_accepts_exactly_the_validly_signed_fresh_requests(
    body: bytes, other: bytes, age: int, secret_suffix: str
) -> None:
    secret = f"wss_test_{secret_suffix}"
    now = 1_800_000_000
    signed = signature_headers(secret, body, timestamp=now - age)
    fresh = -60 <= age <= 300
    for candidate, should_pass in ((body, fresh), (other, fresh and other == body)):
        try:
            verify(secret, signed, candidate, now=now)
            accepted = True
        except WebhookSignatureError:
            accepted = False
        assert accepted == should_pass
    with pytest.raises(WebhookSignatureError):
        verify(secret + "x", signed, body, now=now)
