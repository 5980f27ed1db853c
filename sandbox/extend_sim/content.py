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


# -- parse ---------------------------------------------------------------------------------------------

# What Extend's parser accepts, by extension (its "supported file types" page); anything else is
# FILE_TYPE_NOT_SUPPORTED. A name without an extension is sniffed instead, as a real parser would.
PARSE_EXTENSIONS = frozenset(
    {
        "pdf",
        "png",
        "jpg",
        "jpeg",
        "tiff",
        "tif",
        "svg",
        "heic",
        "heif",
        "bmp",
        "gif",
        "webp",
        "psd",
        "xls",
        "xlsx",
        "xltm",
        "xltx",
        "ods",
        "docx",
        "doc",
        "wpd",
        "dotx",
        "odt",
        "pptx",
        "ppt",
        "ppm",
        "csv",
        "txt",
        "html",
        "htm",
        "xml",
        "rtf",
        "lis",
        "md",
        "eml",
        "pcx",
    }
)
MIME_TYPES = {"PDF": "application/pdf", "TXT": "text/plain", "CSV": "text/csv", "HTML": "text/html"}
REVIEW_MARKER = "SIMULATE_REVIEW"
# US Letter at 72 dpi, the page size every simulated page has.
PAGE_WIDTH, PAGE_HEIGHT = 612.0, 792.0


def extension(name: str | None) -> str:
    return name.rsplit(".", 1)[1].lower() if name and "." in name.rsplit("/", 1)[-1] else ""


def parse_problem(name: str, data: bytes) -> tuple[str, str] | None:
    """(failureReason, message) when the parser would refuse this file, else None."""
    ext = extension(name)
    if ext and ext not in PARSE_EXTENSIONS:
        return "FILE_TYPE_NOT_SUPPORTED", f"Files of type .{ext} cannot be parsed."
    if not data.strip():
        return "CORRUPT_FILE", "The file is empty."
    if ext == "pdf" and not data.lstrip().startswith(b"%PDF-"):
        return "CORRUPT_FILE", "The file does not look like a valid PDF."
    return None


def _block_type(line: str, first: bool) -> str:
    if FIELD_LINE.match(line) and "://" not in line:
        return "key_value"
    letters = [c for c in line if c.isalpha()]
    if first or line.lstrip().startswith("#") or (letters and all(c.isupper() for c in letters)):
        return "heading"
    return "text"


def _markdown(block_type: str, line: str) -> str:
    if block_type == "heading":
        return "# " + line.lstrip("# ").strip()
    return line.strip()


# PDF syntax the simulated parser skips: object headers, names, dictionaries, comments (%PDF, %%EOF).
PDF_SYNTAX = re.compile(r"^\s*(%|/|<<|\d+\s+\d+\s+obj\b|endobj\b|stream\b|endstream\b|xref\b|trailer\b)")


def _blocks(page_number: int, text: str, content_hash: bytes) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip() and not PDF_SYNTAX.match(line)]
    blocks = []
    height = PAGE_HEIGHT / max(len(lines), 1)
    for index, line in enumerate(lines):
        block_type = _block_type(line, page_number == 1 and index == 0)
        top, bottom = round(index * height, 2), round((index + 1) * height, 2)
        box = {"left": 36.0, "top": top, "right": PAGE_WIDTH - 36.0, "bottom": bottom}
        confidence = round(0.85 + 0.149 * unit_interval(content_hash, str(page_number), str(index)), 4)
        blocks.append(
            {
                "object": "block",
                "id": "block_" + digest(content_hash, str(page_number), str(index)).hex()[:16],
                "type": block_type,
                "content": _markdown(block_type, line),
                "details": {"type": "key_value_details" if block_type == "key_value" else "text_details"},
                "metadata": {
                    "page": {"number": page_number, "width": PAGE_WIDTH, "height": PAGE_HEIGHT},
                    "minOcrConfidence": confidence,
                    "avgOcrConfidence": confidence,
                },
                "polygon": [
                    {"x": box["left"], "y": top},
                    {"x": box["right"], "y": top},
                    {"x": box["right"], "y": bottom},
                    {"x": box["left"], "y": bottom},
                ],
                "boundingBox": box,
            }
        )
    return blocks


def _chunk(chunk_type: str, start: int, end: int, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    confidences = [b["metadata"]["avgOcrConfidence"] for b in blocks]
    return {
        "object": "chunk",
        "type": chunk_type,
        "content": "\n\n".join(b["content"] for b in blocks),
        "metadata": {
            "pageRange": {"start": start, "end": end},
            "minOcrConfidence": min(confidences) if confidences else None,
            "avgOcrConfidence": round(sum(confidences) / len(confidences), 4) if confidences else None,
        },
        "blocks": blocks,
    }


def parse_output(data: bytes, config: dict[str, Any]) -> dict[str, Any]:
    """Markdown chunks of the file: one per page (default), one for the document, or one per section
    (a heading block opens a section)."""
    content_hash = digest(data)
    pages = page_texts(data)
    page_blocks = [_blocks(number, text, content_hash) for number, text in enumerate(pages, start=1)]
    strategy = str((config.get("chunkingStrategy") or {}).get("type") or "page")
    if strategy == "document":
        chunks = [_chunk("document", 1, len(pages), [b for blocks in page_blocks for b in blocks])]
    elif strategy == "section":
        chunks, current, start = [], [], 1
        for number, blocks in enumerate(page_blocks, start=1):
            for block in blocks:
                if block["type"] == "heading" and current:
                    chunks.append(
                        _chunk("section", start, current[-1]["metadata"]["page"]["number"], current)
                    )
                    current, start = [], number
                current.append(block)
        if current or not chunks:
            chunks.append(_chunk("section", start, len(pages), current))
    else:
        chunks = [_chunk("page", n, n, blocks) for n, blocks in enumerate(page_blocks, start=1)]
    mime = MIME_TYPES["PDF"] if data.startswith(b"%PDF") else MIME_TYPES["TXT"]
    return {
        "chunks": chunks,
        "metadata": {
            "originalMimeType": mime,
            "finalMimeType": MIME_TYPES["PDF"],
            "pages": [
                {
                    "number": n,
                    "rotationApplied": 0,
                    "originalPageWidth": PAGE_WIDTH,
                    "originalPageHeight": PAGE_HEIGHT,
                    "dpi": 72.0,
                }
                for n in range(1, len(pages) + 1)
            ],
        },
    }


def wants_review(text: str) -> bool:
    return REVIEW_MARKER in text
