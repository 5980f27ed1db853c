"""multipart/form-data parsing with the stdlib email parser (the ``cgi`` module is gone in 3.13)."""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass


@dataclass
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> dict[str, FormPart]:
    """Form parts by field name. Raises ValueError if the body is not multipart/form-data."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise ValueError("expected a multipart/form-data body with a boundary")
    # The email parser understands MIME multipart once it sees the Content-Type as a message header.
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("malformed multipart body")
    parts: dict[str, FormPart] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True)
        parts[str(name)] = FormPart(
            name=str(name),
            filename=part.get_filename(),
            content_type=part.get_content_type() if part.get("content-type") else None,
            data=payload if isinstance(payload, bytes) else b"",
        )
    return parts
