"""Upload mode streams an S3 object to Extend: 64 KB chunks with a Content-Length, a fresh stream a try."""

from __future__ import annotations

import io
from typing import Any

import httpx

from batchdrop_core.extend.client import ExtendClient
from batchdrop_core.inputs import ObjectStream


class Body:
    """An S3 GetObject body that records how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads: list[int | None] = []

    def read(self, size: int | None = None) -> bytes:
        self.reads.append(size)
        return self._data.read(size)


def test_an_upload_is_streamed_with_its_length_and_reopened_for_a_retry() -> None:
    # Given a 5 MB object and an Extend that throttles the first try
    data = bytes(range(256)) * (5 * 4096)
    opened: list[Body] = []
    seen: list[tuple[str | None, int]] = []

    def open_object() -> ObjectStream:
        body = Body(data)
        opened.append(body)
        return ObjectStream({"Body": body, "ContentLength": len(data)})

    def handle(request: httpx.Request) -> httpx.Response:
        content = request.read()
        seen.append((request.headers.get("content-length"), len(content)))
        if len(seen) == 1:
            return httpx.Response(429, json={"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"})
        assert data in content
        return httpx.Response(200, json={"object": "file", "id": "file_1", "name": "big.pdf"})

    client = ExtendClient("sk_test_key", transport=httpx.MockTransport(handle), sleep=lambda _: None)

    # When it is uploaded
    uploaded: Any = client.upload_file("big.pdf", open_object, "application/pdf")

    # Then each try opened the object afresh and sent it whole, with a Content-Length (no chunked
    # encoding), read from S3 64 KB at a time, never all at once
    assert uploaded.id == "file_1"
    assert len(opened) == 2
    assert all(length is not None and int(length) == size for length, size in seen)
    assert all(read is not None and read <= 64 * 1024 for body in opened for read in body.reads)
