"""The table of Extend processor types, in plain Python: settings validation needs it, and importing it
must not build the pydantic models or load the HTTP client (cold start of functions that never call
Extend)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProcessorType = Literal["extract", "classify", "split"]


@dataclass(frozen=True)
class ProcessorTypeInfo:
    """How one processor type is spelt in paths, bodies, query filters and ids."""

    runs_path: str
    processors_path: str  # where the processors themselves are read: GET {processors_path}/{id}
    processor_key: str
    filter_param: str
    id_prefix: str
    run_id_prefix: str
    accepts_text: bool


PROCESSOR_TYPES: dict[str, ProcessorTypeInfo] = {
    "extract": ProcessorTypeInfo(
        "/extract_runs", "/extractors", "extractor", "extractorId", "ex_", "exr_", True
    ),
    "classify": ProcessorTypeInfo(
        "/classify_runs", "/classifiers", "classifier", "classifierId", "cl_", "clr_", True
    ),
    "split": ProcessorTypeInfo("/split_runs", "/splitters", "splitter", "splitterId", "spl_", "splr_", False),
}
