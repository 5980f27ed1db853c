"""Deterministic "model outputs" derived from a file's bytes.

Everything here is a pure function of the content (plus the processor config), so the same file always
gives the same output and tests can assert exact values.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

# Document kinds the fake classifier knows, as (keyword searched in the text, type).
DOC_KINDS: list[tuple[str, str]] = [
    ("bank statement", "BANK_STATEMENT"),
    ("invoice", "INVOICE"),
    ("receipt", "RECEIPT"),
    ("contract", "CONTRACT"),
]

FAILURE_MARKER = re.compile(r"SIMULATE_FAILURE:([A-Z][A-Z0-9_]*)")
# "/Type /Page" but not "/Type /Pages" (the page-tree node), as PDFs write it.
PDF_PAGE_MARKER = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
FIELD_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9 _#/().-]{0,60}?)\s*:\s*(\S.*?)\s*$")
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

FILE_TYPES = {
    "pdf": "PDF",
    "csv": "CSV",
    "txt": "TXT",
    "md": "TXT",
    "png": "IMG",
    "jpg": "IMG",
    "jpeg": "IMG",
    "tif": "IMG",
    "tiff": "IMG",
    "gif": "IMG",
    "docx": "DOCX",
    "doc": "DOCX",
    "xlsx": "EXCEL",
    "xls": "EXCEL",
    "xml": "XML",
    "html": "HTML",
    "htm": "HTML",
}


def digest(*parts: str | bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode("utf-8"))
        h.update(b"\x00")  # separator so ("ab", "c") and ("a", "bc") differ
    return h.digest()


def unit_interval(*parts: str | bytes) -> float:
    """A stable pseudo-random number in [0, 1) for the given inputs."""
    return int.from_bytes(digest(*parts)[:8], "big") / 2**64


def decode_text(data: bytes) -> str:
    # Real files are often not valid UTF-8 (PDF streams, Latin-1 exports); never fail on that.
    return data.decode("utf-8", errors="replace")


def file_type_for_name(name: str | None, default: str = "PDF") -> str:
    if name and "." in name:
        return FILE_TYPES.get(name.rsplit(".", 1)[1].lower(), default)
    return default


def failure_reason(text: str) -> str | None:
    """The reason requested by a ``SIMULATE_FAILURE:<REASON>`` marker, if the content has one."""
    match = FAILURE_MARKER.search(text)
    return match.group(1) if match else None


def page_texts(data: bytes) -> list[str]:
    """The text of each page: PDF page objects if there are any, otherwise form-feed separated pages."""
    markers = list(PDF_PAGE_MARKER.finditer(data))
    if markers:
        # Attribute the bytes after each page object to that page; good enough for keyword checks.
        bounds = [m.start() for m in markers] + [len(data)]
        return [decode_text(data[bounds[i] : bounds[i + 1]]) for i in range(len(markers))]
    return decode_text(data).split("\f")


def page_count(data: bytes) -> int:
    return max(1, len(page_texts(data)))


def _snake_case(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")


def _typed(value: str) -> Any:
    # Plain numbers come back as JSON numbers, as a schema with "type": "number" would give them.
    if NUMBER.fullmatch(value):
        return float(value) if "." in value else int(value)
    return value


def _fields(data: bytes) -> dict[str, tuple[Any, int, str]]:
    """``Key: Value`` lines, first occurrence wins: snake_key -> (value, page number, source line)."""
    found: dict[str, tuple[Any, int, str]] = {}
    for page_number, page in enumerate(page_texts(data), start=1):
        for line in page.splitlines():
            match = FIELD_LINE.match(line)
            if not match or "://" in line[: match.end(1) + 3]:
                continue  # "http://..." is not a field
            key = _snake_case(match.group(1))
            if key and key not in found and not key.startswith("simulate_failure"):
                found[key] = (_typed(match.group(2)), page_number, line.strip())
    return found


def extract_output(data: bytes, config: dict[str, Any]) -> dict[str, Any]:
    fields = _fields(data)
    properties = (config.get("schema") or {}).get("properties")
    # With a schema, answer exactly its properties (missing ones as null), like a real extractor would.
    keys = list(properties) if isinstance(properties, dict) and properties else list(fields)
    value: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    content_hash = digest(data)
    for key in keys:
        if key not in fields:
            value[key] = None
            continue
        field_value, page, line = fields[key]
        value[key] = field_value
        metadata[key] = {
            "ocrConfidence": round(0.8 + 0.199 * unit_interval(content_hash, key), 4),
            "citations": [{"page": {"number": page}, "referenceText": line}],
        }
    return {"value": value, "metadata": metadata}


def classify_text(text: str) -> tuple[str, str | None]:
    """(type, keyword) for the earliest known keyword in the text, or ("OTHER", None)."""
    lowered = text.lower()
    hits = [(lowered.find(keyword), keyword, kind) for keyword, kind in DOC_KINDS if keyword in lowered]
    if not hits:
        return "OTHER", None
    _, keyword, kind = min(hits)
    return kind, keyword


def _classification_id(kind: str, classifications: Any) -> str:
    # If the config names its classifications, answer with the id of the one of that type.
    if isinstance(classifications, list):
        for item in classifications:
            if isinstance(item, dict) and str(item.get("type", "")).upper() == kind:
                return str(item.get("id") or kind.lower())
    return kind.lower()


def classify_output(data: bytes, config: dict[str, Any]) -> dict[str, Any]:
    kind, keyword = classify_text(decode_text(data))
    reasoning = (
        f"The document mentions '{keyword}', so it was classified as {kind}."
        if keyword
        else "No known document keywords were found, so it was classified as OTHER."
    )
    return {
        "id": _classification_id(kind, config.get("classifications")),
        "type": kind,
        "confidence": round(0.5 + 0.49 * unit_interval(digest(data), "classify"), 4),
        "insights": [{"type": "reasoning", "content": reasoning}],
    }


def _starts_with_keyword(page: str) -> bool:
    first_line = next((line for line in page.splitlines() if line.strip()), "").strip().lower()
    return any(first_line.startswith(keyword) for keyword, _ in DOC_KINDS)


def _page_groups(pages: list[str]) -> list[tuple[int, int]]:
    """(startPage, endPage) ranges, 1-based. A page whose first line starts with a document kind
    ("Invoice ...") opens a new split; without such headings the pages are grouped in twos."""
    starts = [1] + [i + 1 for i, page in enumerate(pages) if i > 0 and _starts_with_keyword(page)]
    if len(starts) == 1:
        starts = list(range(1, len(pages) + 1, 2))
    ends = [s - 1 for s in starts[1:]] + [len(pages)]
    return list(zip(starts, ends, strict=True))


def split_output(data: bytes, config: dict[str, Any]) -> dict[str, Any]:
    pages = page_texts(data)
    content_hash = digest(data).hex()
    splits = []
    for index, (start, end) in enumerate(_page_groups(pages), start=1):
        text = "\n".join(pages[start - 1 : end])
        kind, _ = classify_text(text)
        numbers = [v for k, (v, _, _) in _fields(text.encode("utf-8")).items() if k.endswith("number")]
        splits.append(
            {
                "id": f"split_{index}",
                "type": kind,
                "classificationId": _classification_id(kind, config.get("splitClassifications")),
                "identifier": str(numbers[0]) if numbers else "",
                "observation": f"Pages {start}-{end} read as {kind}.",
                "startPage": start,
                "endPage": end,
                "name": f"{kind.lower()}_{index}",
                "fileId": "file_" + digest(content_hash, str(index)).hex()[:20],
            }
        )
    return {"splits": splits}
