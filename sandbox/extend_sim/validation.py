"""Checks on what a request sends: batch inputs, processors, parse config, priority and page size.

Each raises ``invalid`` (400 INVALID_REQUEST) with the message Extend would give.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sandbox.extend_sim.kinds import Kind
from sandbox.extend_sim.messages import invalid

MAX_INPUTS = 1000
MAX_METADATA_BYTES = 10 * 1024
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 10
WORKFLOW_PRIORITY_RANGE = (1, 100)
PARSE_CONFIG_CHOICES = {
    "target": ("markdown", "spatial"),
    "engine": ("parse_performance", "parse_light", "parse_auto"),
}
PARSE_CHUNKING = ("page", "document", "section")
PARSE_CONFIG_KEYS = {
    "target",
    "chunkingStrategy",
    "engine",
    "engineVersion",
    "blockOptions",
    "advancedOptions",
}


def _check_file_ref(kind: Kind, ref: Any, where: str) -> None:
    if not isinstance(ref, dict):
        raise invalid(f"{where}.file must be an object with url, id or text")
    unknown = set(ref) - {"url", "id", "text", "name", "settings"}
    if unknown:
        raise invalid(f"{where}.file has unknown field(s): {', '.join(sorted(unknown))}")
    sources = [key for key in ("url", "id", "text") if key in ref]
    if len(sources) != 1:
        raise invalid(f"{where}.file needs exactly one of url, id or text")
    source = sources[0]
    if not isinstance(ref[source], str) or not ref[source]:
        raise invalid(f"{where}.file.{source} must be a non-empty string")
    if source == "text" and not kind.accepts_text:
        raise invalid(f"{where}.file: text inputs are not supported for {kind.name} runs; use url or id")
    if source == "url" and not re.match(r"https?://", ref["url"]):
        raise invalid(f"{where}.file.url must be an http(s) URL")
    if "name" in ref and not isinstance(ref["name"], str):
        raise invalid(f"{where}.file.name must be a string")


def check_inputs(kind: Kind, inputs: Any) -> list[dict[str, Any]]:
    if not isinstance(inputs, list) or not 1 <= len(inputs) <= MAX_INPUTS:
        count = len(inputs) if isinstance(inputs, list) else "no"
        raise invalid(f"inputs must hold 1 to {MAX_INPUTS} items (got {count})")
    # The server's per-input schema is exactly {file, metadata?}; workflow inputs may add secrets.
    allowed = {"file", "metadata", "secrets"} if kind.family == "workflow" else {"file", "metadata"}
    for i, item in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(item, dict):
            raise invalid(f"{where} must be an object")
        unknown = set(item) - allowed
        if unknown:
            raise invalid(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
        _check_file_ref(kind, item.get("file"), where)
        metadata = item.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise invalid(f"{where}.metadata must be an object")
            size = len(json.dumps(metadata, separators=(",", ":")).encode("utf-8"))
            if size > MAX_METADATA_BYTES:
                raise invalid(f"{where}.metadata is {size} bytes; the maximum is {MAX_METADATA_BYTES}")
        if "secrets" in item and not isinstance(item["secrets"], dict):
            raise invalid(f"{where}.secrets must be an object")
    return inputs


def check_processor(kind: Kind, processor: Any) -> dict[str, Any]:
    key = str(kind.processor_key)
    if not isinstance(processor, dict) or not isinstance(processor.get("id"), str) or not processor["id"]:
        if kind.family == "workflow":
            raise invalid(f"{key}.id is required")
        raise invalid(f"{key}.id is required (inline config is not supported for batches)")
    fields = {"id", "version"} if kind.family == "workflow" else {"id", "version", "overrideConfig"}
    unknown = set(processor) - fields
    if unknown:
        raise invalid(f"{key} has unknown field(s): {', '.join(sorted(unknown))}")
    if not processor["id"].startswith(str(kind.processor_prefix)):
        raise invalid(f"{key}.id must start with {kind.processor_prefix!r}")
    if "version" in processor and not isinstance(processor["version"], str):
        raise invalid(f"{key}.version must be a string")
    if "overrideConfig" in processor and not isinstance(processor["overrideConfig"], dict):
        raise invalid(f"{key}.overrideConfig must be an object")
    return processor


def check_parse_config(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise invalid("config must be an object")
    unknown = set(config) - PARSE_CONFIG_KEYS
    if unknown:
        raise invalid(f"config has unknown field(s): {', '.join(sorted(unknown))}")
    for key, choices in PARSE_CONFIG_CHOICES.items():
        if key in config and config[key] not in choices:
            raise invalid(f"config.{key} must be one of {', '.join(choices)}")
    chunking = config.get("chunkingStrategy")
    if chunking is not None and (
        not isinstance(chunking, dict) or chunking.get("type", "page") not in PARSE_CHUNKING
    ):
        raise invalid(f"config.chunkingStrategy.type must be one of {', '.join(PARSE_CHUNKING)}")
    return config


def check_priority(kind: Kind, priority: Any) -> int | None:
    if priority is None:
        return None
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise invalid("priority must be an integer")
    low, high = WORKFLOW_PRIORITY_RANGE
    if kind.family == "workflow" and not low <= priority <= high:
        raise invalid(f"priority must be between {low} and {high}")
    return priority


def page_size(kind: Kind, query: dict[str, str]) -> int:
    # /parse_runs is documented with maxPageSize (SDK) and limit (Extend's CLI): take either.
    name = (
        "limit"
        if kind.family == "parse" and "maxPageSize" not in query and "limit" in query
        else "maxPageSize"
    )
    try:
        size = int(query.get(name, DEFAULT_PAGE_SIZE))
    except ValueError as exc:
        raise invalid(f"{name} must be an integer") from exc
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid(f"{name} must be between 1 and {MAX_PAGE_SIZE}")
    return size
