"""Extend's messages cut to about 1 KB with presigned-URL query strings removed (batchdrop_core.redact)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config
from hypothesis import given
from hypothesis import strategies as st

from batchdrop_core.extend.errors import ExtendRejectedError, ExtendRetryableError
from batchdrop_core.redact import MAX_MESSAGE_CHARS, REDACTED, TRUNCATION_MARK, redact, redact_optional
from batchdrop_core.tracking import StateStore

SIGNATURE = "0f" * 32


def presigned_url(signature_version: str = "s3v4") -> str:
    """A real presigned GET as the submitter makes them (fake credentials, made offline); botocore
    presigns with SigV4 or, in some regions and versions, SigV2 ("s3")."""
    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        config=Config(signature_version=signature_version),
        aws_access_key_id="AKIATESTNOTAREALKEY00",
        aws_secret_access_key="test-not-a-real-secret",
        aws_session_token="test-not-a-real-session-token",
    )
    return s3.generate_presigned_url(
        "get_object", Params={"Bucket": "drop", "Key": "invoices/a b.pdf"}, ExpiresIn=900
    )


def assert_no_credentials(text: str) -> None:
    for secret in ("AKIATESTNOTAREALKEY00", "test-not-a-real-session-token", SIGNATURE):
        assert secret not in text
    # what the logs' checks look for (sandbox.reliability, tests/e2e)
    for marker in ("Signature=", "X-Amz-Signature", "X-Amz-Credential", "AWSAccessKeyId"):
        assert marker.lower() not in text.lower()


def test_a_presigned_url_keeps_its_address_and_loses_its_credentials() -> None:
    url = presigned_url()
    assert "X-Amz-Signature=" in url and "X-Amz-Security-Token=" in url  # the fixture is realistic

    text = redact(f"Failed to download file from {url}: 403 Forbidden")

    address = url.split("?")[0]  # the endpoint depends on the environment (moto's in a full run)
    assert text.startswith(f"Failed to download file from {address}?") and address.endswith("/a%20b.pdf")
    assert text == f"Failed to download file from {address}?{REDACTED}: 403 Forbidden"
    assert_no_credentials(text)
    assert url.split("X-Amz-Signature=")[1].split("&")[0] not in text


def test_a_sigv2_presigned_url_loses_its_credentials_too() -> None:
    url = presigned_url("s3")
    assert "AWSAccessKeyId=" in url and "Signature=" in url

    text = redact(f"could not fetch {url}")

    assert text.startswith(f"could not fetch {url.split('?')[0]}?{REDACTED}&Expires=")
    assert_no_credentials(text)
    assert url.split("Signature=")[1].split("&")[0] not in text


@pytest.mark.parametrize(
    ("quoted", "signature_version"),
    [
        (lambda url: url.replace("X-Amz-", "x-amz-"), "s3v4"),  # any case
        (lambda url: quote(url, safe=""), "s3v4"),  # the URL percent-encoded inside another (%3D, %26)
        (lambda url: quote(url, safe=""), "s3"),
        (lambda url: json.dumps({"url": url}), "s3v4"),  # inside a JSON string
        (lambda url: f'<a href="{url}">file</a>', "s3"),
        (lambda url: url.replace("&", "\\u0026"), "s3v4"),  # a JSON-escaped ampersand
        (lambda url: url.replace("&", "\\u0026"), "s3"),
    ],
)
def test_a_presigned_url_however_quoted_loses_its_credentials(quoted: Any, signature_version: str) -> None:
    assert_no_credentials(redact(f"bad input: {quoted(presigned_url(signature_version))}"))


def test_other_query_parameters_and_plain_text_are_left_alone() -> None:
    text = "inputs[3].file.url: https://example.com/a.pdf?versionId=abc&x=1 is not reachable (HTTP 404)"
    assert redact(text) == text
    assert redact("mySignature=abc, Signatures: 3") == "mySignature=abc, Signatures: 3"
    assert (
        redact("https://b/k.pdf?versionId=3&X-Amz-Signature=abc") == f"https://b/k.pdf?versionId=3&{REDACTED}"
    )


def test_a_bare_signature_value_is_removed() -> None:
    assert SIGNATURE not in redact(f'signature mismatch, "Signature": "{SIGNATURE}"')


def test_a_long_message_is_cut_to_about_a_kilobyte_and_marked() -> None:
    text = redact("x" * 100_000)
    assert len(text) == MAX_MESSAGE_CHARS and text.endswith(TRUNCATION_MARK)
    assert len(redact("é" * 5000).encode()) <= 2 * MAX_MESSAGE_CHARS + len(TRUNCATION_MARK.encode())
    assert redact("y" * 600, limit=500) == "y" * (500 - len(TRUNCATION_MARK)) + TRUNCATION_MARK


def test_none_and_non_strings() -> None:
    assert redact(None) == "" and redact_optional(None) is None
    assert redact(ValueError("X-Amz-Signature=abc")) == REDACTED


@given(prefix=st.text(max_size=3000), suffix=st.text(max_size=3000))
def test_any_message_is_bounded_redacted_and_redacting_twice_changes_nothing(
    prefix: str, suffix: str
) -> None:
    text = redact(f"{prefix} {presigned_url()} {suffix}")
    assert len(text) <= MAX_MESSAGE_CHARS
    assert_no_credentials(text)
    assert redact(text) == text


# -- the sinks ----------------------------------------------------------------------------------------


def test_extend_errors_carry_redacted_bounded_messages() -> None:
    # Given Extend refusing a batch with a message that echoes the presigned URL, at length
    message = f"inputs[0].file.url {presigned_url()} could not be fetched. " + "detail " * 500

    # When the client raises it (the text every log line, note, route and notification is built from)
    for error in (
        ExtendRejectedError(message, status_code=400, request_id="req_1"),
        ExtendRetryableError(message, status_code=503),
    ):
        # Then neither its message nor its string form carries the credentials or exceeds the bound
        for text in (error.message, str(error)):
            assert_no_credentials(text)
            assert len(text) <= MAX_MESSAGE_CHARS
        assert str(error).startswith("Extend API error (HTTP ")


class RecordingDynamo:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {}


def test_a_route_is_blocked_with_a_redacted_message() -> None:
    client = RecordingDynamo()
    message = f"bad {presigned_url()} " * 100
    store = StateStore(client, "state")
    store.block_route("invoices", "EXTEND_REJECTED", message, "2026-12-02T00:01:00Z", 60)
    [call] = client.calls
    stored = next(v["S"] for v in call["ExpressionAttributeValues"].values() if "bad" in v.get("S", ""))
    assert_no_credentials(stored)
    assert len(stored) <= MAX_MESSAGE_CHARS
