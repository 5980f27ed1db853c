"""Extend webhook signatures: HMAC-SHA256 over ``v0:{timestamp}:{raw body}``, lowercase hex.

The key is the signing secret's UTF-8 bytes as they are, ``wss_`` prefix included. The body must be
the exact bytes received: re-serialised JSON has other bytes and fails verification.

The headers are parsed strictly before anything is computed from them: the timestamp is 1 to 12 ASCII
digits, the signature exactly 64 lowercase hex characters (the header carries the bare hex digest; the
``v0:`` version is part of the signed message, not of the header). Anything else, such as ``²`` (which
``str.isdigit`` accepts and ``int`` refuses) or non-ASCII digits and signatures (which ``sign`` and
``hmac.compare_digest`` cannot take), is a ``WebhookSignatureError``: a counted 401, never a 500.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping

TIMESTAMP_HEADER = "x-extend-request-timestamp"
SIGNATURE_HEADER = "x-extend-request-signature"
DEFAULT_MAX_AGE_SECONDS = 300
DEFAULT_MAX_FUTURE_SKEW_SECONDS = 60
# Explicit ASCII classes (\d would take any Unicode digit), used with fullmatch (a trailing newline passes $).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")  # Unix seconds: 12 digits reach the year 33658
_SIGNATURE = re.compile(r"[0-9a-f]{64}")  # a SHA-256 hex digest, as Extend sends it
_OWS = " \t"  # optional whitespace around an HTTP field value (RFC 9110 §5.5), not part of the value


class WebhookSignatureError(Exception):
    """The request is not a validly signed, fresh Extend webhook. ``reason`` is safe to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _as_bytes(body: bytes | str) -> bytes:
    return body if isinstance(body, bytes) else body.encode("utf-8")


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """The signature Extend puts in ``x-extend-request-signature`` for this timestamp and body."""
    message = b"v0:" + str(timestamp).encode("ascii") + b":" + _as_bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_headers(secret: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """Headers for a signed delivery (used by the simulator and by tests)."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def verify(
    secrets: str | Iterable[str],
    headers: Mapping[str, str],
    body: bytes | str,
    *,
    now: float | None = None,
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS,
    max_future_skew_seconds: int = DEFAULT_MAX_FUTURE_SKEW_SECONDS,
) -> None:
    """Raise ``WebhookSignatureError`` unless the request is signed by one of ``secrets`` and fresh.

    Several secrets may be given so a rotation can accept the old and the new secret for a while.
    """
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if not timestamp:
        raise WebhookSignatureError(f"missing {TIMESTAMP_HEADER} header")
    if not signature:
        raise WebhookSignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp, signature = timestamp.strip(_OWS), signature.strip(_OWS)
    if not _TIMESTAMP.fullmatch(timestamp):
        raise WebhookSignatureError("timestamp is not an integer number of seconds (1 to 12 ASCII digits)")
    if not _SIGNATURE.fullmatch(signature):
        raise WebhookSignatureError("signature is not 64 lowercase hex characters")
    current = time.time() if now is None else now
    age = current - int(timestamp)
    if max_age_seconds and age > max_age_seconds:
        raise WebhookSignatureError("timestamp is too old")
    if -age > max_future_skew_seconds:
        raise WebhookSignatureError("timestamp is in the future")
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    raw = _as_bytes(body)
    # Compare against every candidate so the time taken does not reveal which secret matched.
    matches = [hmac.compare_digest(signature, sign(s, timestamp, raw)) for s in candidates if s]
    if not any(matches):
        raise WebhookSignatureError("signature does not match")
