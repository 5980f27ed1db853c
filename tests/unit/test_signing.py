"""Webhook signature verification accepts exactly the validly signed, fresh requests (design §5 I5)."""

from __future__ import annotations

import contextlib
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
    # Header names are case-insensitive; whitespace around a value is not part of it (RFC 9110).
    verify(SECRET, {k.upper(): f" {v}\t" for k, v in headers().items()}, body, now=TIMESTAMP)
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
            "not 64 lowercase hex",
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


# Headers a crafted request could carry: each is refused as a bad signature (a counted 401), none raises
# anything else. Before strict parsing, "²" passed str.isdigit() and then int() raised, and non-ASCII
# digits or signatures raised in sign() / hmac.compare_digest: 500s before authentication.
CRAFTED_TIMESTAMPS = [
    "²",  # superscript two: isdigit() but not int()
    "١٧٦٤٣٢٠٤٠٠",  # Arabic-Indic digits: int() takes them, sign() cannot encode them as ASCII
    "\uff11\uff17\uff16\uff14",  # fullwidth digits
    "1764320400\n",  # a trailing newline, which a $-anchored pattern would let through
    "+1764320400",
    "-1",
    "1_764_320_400",  # int() accepts underscores
    "1" * 13,  # more than 12 digits
    "9" * 400,  # int() of a huge number, then a float overflow in the age
    " ",
    "0x69296b10",
]
CRAFTED_SIGNATURES = [
    EXPECTED.upper(),  # Extend sends lowercase hex; anything else is not its signature
    EXPECTED[:-1],
    EXPECTED + "0",
    EXPECTED[:-1] + "é",  # non-ASCII: compare_digest raises TypeError on non-ASCII str
    EXPECTED[:-1] + "٣",
    "v0=" + EXPECTED,
    "g" * 64,
    "\x00" * 64,
]


@pytest.mark.parametrize("timestamp", CRAFTED_TIMESTAMPS)
def test_a_crafted_timestamp_is_a_signature_error(body: bytes, timestamp: str) -> None:
    with pytest.raises(WebhookSignatureError, match="timestamp is not an integer"):
        verify(SECRET, {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: EXPECTED}, body, now=TIMESTAMP)


@pytest.mark.parametrize("signature", CRAFTED_SIGNATURES)
def test_a_crafted_signature_is_a_signature_error(body: bytes, signature: str) -> None:
    with pytest.raises(WebhookSignatureError, match="not 64 lowercase hex"):
        verify(SECRET, headers(signature=signature), body, now=TIMESTAMP)


@given(timestamp=st.text(max_size=20), signature=st.text(max_size=80))
def test_no_header_value_raises_anything_but_a_signature_error(timestamp: str, signature: str) -> None:
    with contextlib.suppress(WebhookSignatureError):
        verify(SECRET, {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}, b"{}", now=TIMESTAMP)
