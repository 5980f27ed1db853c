"""Text from Extend made safe to store, log or publish: presigned-URL signatures removed, length bounded.

Extend's messages (an error body, a run's ``failureMessage``) may echo the presigned URL we sent it: its
query string (``X-Amz-Credential``, ``X-Amz-Signature``, ``X-Amz-Security-Token`` …, or SigV2's
``AWSAccessKeyId`` and ``Signature``) is a credential that reads the object until it expires. They
are also unbounded, and a Files item, an SNS message and a log line are not. ``redact`` is the one place
that cuts them down; every sink of Extend's text calls it (the Extend errors, so every log line built
from one, the Files / Batches / State writes and the notifications).
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 1000  # about 1 KB: enough for any real explanation, far below every sink's limit
TRUNCATION_MARK = " …[truncated]"
REDACTED = "[REDACTED]"

# A presigned URL's credentials, as query parameters: SigV4's X-Amz-* (X-Amz-Credential, -Signature,
# -Security-Token …) and SigV2's AWSAccessKeyId and Signature (botocore still presigns S3 with SigV2 in
# some regions), any case, also inside a percent-encoded URL (%3D for "=", %26 for "&"), each with its
# value up to the next separator. Not after a letter ("mySignature="), except the F of an encoded "?"
# (%3F). The whole parameter goes, name included, so the logs' checks for "X-Amz-Signature" and
# "Signature=" (sandbox.reliability, tests/e2e) hold for redacted text too.
_AMZ_PARAMETER = re.compile(
    r"(?i)(?:(?<![a-z_])|(?<=%3f))(?:x-amz-[a-z0-9_.-]*|awsaccesskeyid|signature)(?:=|%3d)"
    r"(?:(?!%26)[^&\s\"'<>\\:;,()\[\]{}])*"  # no credential value holds these unencoded
)
# Consecutive redacted parameters, joined by "&" (raw, percent-encoded or JSON-escaped), become one.
_RUN_OF_REDACTED = re.compile(
    r"(?i)" + re.escape(REDACTED) + r"(?:(?:&|%26|\\u0026)" + re.escape(REDACTED) + ")+"
)
# A bare signature with no name (a URL cut by whoever quoted it): 64 hex characters after "Signature".
_SIGNATURE_VALUE = re.compile(r"(?i)(signature[\"':= ]+)[0-9a-f]{64}")


def redact(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` (anything; None becomes "") with every presigned-URL credential parameter replaced by
    ``[REDACTED]`` (one for a run of them: ``…/a.pdf?[REDACTED]``) and cut to ``limit`` characters (the
    cut marked). Idempotent: redacting twice changes nothing."""
    value = "" if text is None else str(text)
    value = _AMZ_PARAMETER.sub(REDACTED, value)
    value = _RUN_OF_REDACTED.sub(REDACTED, value)
    value = _SIGNATURE_VALUE.sub(rf"\g<1>{REDACTED}", value)
    if len(value) > limit:
        value = value[: max(limit - len(TRUNCATION_MARK), 0)] + TRUNCATION_MARK
    return value


def redact_optional(text: object, limit: int = MAX_MESSAGE_CHARS) -> str | None:
    """``redact`` that keeps None as None (an optional attribute stays absent)."""
    return None if text is None else redact(text, limit)
