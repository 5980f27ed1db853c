"""Processing one run's file: fetching it (when processing starts, as Extend does) and computing the output,
or the failure Extend would report."""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from sandbox.extend_sim import content
from sandbox.extend_sim.model import Run, StoredFile, input_file_name, new_id
from sandbox.extend_sim.stats import Stats

DOWNLOAD_TIMEOUT_S = 10.0


@dataclass
class Outcome:
    """What processing one run produced; applied to the run under the lock."""

    output: dict[str, Any] | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    file: dict[str, Any] | None = None
    pages: int = 0
    review: bool = False  # workflow runs: stop at NEEDS_REVIEW


class Failed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def presigned_expiry(url: str) -> float | None:
    """When a presigned S3 URL (SigV4 ``X-Amz-Date`` + ``X-Amz-Expires``, or SigV2 ``Expires``) stops
    working, in epoch seconds; None when the URL says nothing about it."""
    query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    try:
        if "x-amz-date" in query and "x-amz-expires" in query:
            signed = calendar.timegm(time.strptime(query["x-amz-date"], "%Y%m%dT%H%M%SZ"))
            return signed + int(query["x-amz-expires"])
        if "expires" in query:
            return float(query["expires"])
    except ValueError:
        return None
    return None


def load_file(
    run: Run, *, uploaded: Callable[[str], StoredFile | None], http: httpx.Client, stats: Stats
) -> StoredFile:
    """The file a run points to (``uploaded`` finds a file by id); URLs are downloaded now, at processing
    time, as Extend does. Raises Failed with the kind's download failure reason."""
    ref = run.file_ref
    unable = run.kind.download_failure
    if "text" in ref:
        name = ref.get("name") or "input.txt"
        return StoredFile(new_id("file_"), name, "TXT", ref["text"].encode("utf-8"), time.time())
    if "id" in ref:
        stored = uploaded(ref["id"])
        if stored is None:
            raise Failed(unable, f"File {ref['id']} was not found.")
        return stored
    url = ref["url"]
    try:
        response = http.get(url)
    except httpx.HTTPError as exc:
        stats.incr("downloads_failed")
        raise Failed(unable, f"Could not download file: {type(exc).__name__}") from exc
    if response.status_code >= 400:
        stats.incr("downloads_failed")
        expires = presigned_expiry(url)
        expired = b"expired" in response.content[:2000].lower() or (
            expires is not None and expires < time.time()
        )
        if expired:
            stats.incr("downloads_url_expired")
        detail = " (the presigned URL has expired)" if expired else ""
        raise Failed(unable, f"Could not download file: HTTP {response.status_code}{detail}")
    stats.incr("downloads_ok")
    data = response.content
    name = input_file_name(ref) or "file"
    file_type = content.file_type_for_name(name, default="PDF" if data.startswith(b"%PDF") else "TXT")
    return StoredFile(new_id("file_"), name, file_type, data, time.time())


def compute_output(run: Run, stored: StoredFile, *, max_file_bytes: int) -> tuple[str, dict[str, Any]]:
    """The file's text and the run's output; raises Failed for a file Extend would not process (too
    large, not parseable) or whose content asks for a failure."""
    kind = run.kind
    if max_file_bytes and len(stored.data) > max_file_bytes:
        size = f"{len(stored.data)} bytes; the limit is {max_file_bytes}"
        if kind.family == "parse":
            raise Failed("FILE_SIZE_TOO_LARGE", f"The file is too large ({size}).")
        raise Failed("FAILED_TO_PROCESS_FILE", f"File size too large ({size}).")
    if kind.family == "parse" and (problem := content.parse_problem(stored.name, stored.data)):
        raise Failed(*problem)
    text = content.decode_text(stored.data)
    reason = content.failure_reason(text)
    if reason:
        raise Failed(reason, f"Simulated failure requested by the file content ({reason}).")
    return text, kind.output(stored.data, run.config)
