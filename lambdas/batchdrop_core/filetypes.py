"""What Extend accepts (API notes §9) and the metadata limit it applies to each run (§3.3)."""

from __future__ import annotations

import json
import posixpath

SUPPORTED_EXTENSIONS = frozenset(
    (
        *(".pdf", ".png", ".jpg", ".jpeg", ".tiff", ".tif", ".svg", ".heic", ".heif", ".bmp", ".gif"),
        *(".webp", ".psd", ".xls", ".xlsx", ".xltm", ".xltx", ".ods", ".docx", ".doc", ".wpd", ".dotx"),
        *(".odt", ".pptx", ".ppt", ".ppm", ".csv", ".txt", ".html", ".xml", ".rtf", ".lis", ".md", ".eml"),
        ".pcx",
    )
)
# Extend's per-run metadata limit is 10 KB; batchdrop adds its own ids, so leave room for them.
MAX_METADATA_BYTES = 10 * 1024
BATCHDROP_METADATA_ALLOWANCE = 1024


def extension_of(key: str) -> str:
    return posixpath.splitext(key)[1].lower()


def is_supported(key: str) -> bool:
    return extension_of(key) in SUPPORTED_EXTENSIONS


def user_metadata_too_large(user_metadata: dict[str, str]) -> bool:
    size = len(json.dumps(user_metadata, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return size > MAX_METADATA_BYTES - BATCHDROP_METADATA_ALLOWANCE
