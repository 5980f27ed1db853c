"""The kinds of run, and what differs between their batch endpoints (ids, routes, statuses, outputs).

Three families of batch exist, as at Extend: processor batches (extract, classify, split: ``bpr_`` ids,
``batch_processor_run.*`` webhooks), parse batches (``bpar_``, ``batch_parse_run.*``) and workflow
batches (``batch_``: no BatchRun and no batch webhook, one ``workflow_run.*`` webhook per run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.extend_sim import content

TERMINAL = frozenset({"PROCESSED", "FAILED", "CANCELLED", "REJECTED"})
RUN_STATUSES = frozenset({"PENDING", "PROCESSING", "PROCESSED", "FAILED", "CANCELLED"})
PARSE_STATUSES = frozenset({"PENDING", "PROCESSING", "PROCESSED", "FAILED"})
WORKFLOW_STATUSES = frozenset(
    {"PENDING", "PROCESSING", "NEEDS_REVIEW", "REJECTED", "PROCESSED", "FAILED", "CANCELLED", "CANCELLING"}
)
DEFAULT_PARSE_CONFIG: dict[str, Any] = {
    "target": "markdown",
    "chunkingStrategy": {"type": "page"},
    "engine": "parse_performance",
}


def _extract_default(data: bytes, config: dict[str, Any]) -> dict[str, Any]:
    return content.extract_output(data, {})


@dataclass(frozen=True)
class Kind:
    """What differs between the batch endpoints."""

    name: str  # "extract"
    family: str  # "processor" | "parse" | "workflow"
    collection: str  # URL segment: "extract_runs"
    object: str  # run object name: "extract_run"
    processor_key: str | None  # request/response key: "extractor"; None for parse (config instead)
    processor_prefix: str | None  # "ex_"
    run_prefix: str  # "exr_"
    version_prefix: str | None  # "exv_"
    batch_prefix: str  # "bpr_"
    filter_param: str | None  # list filter: "extractorId"
    accepts_text: bool
    default_config: dict[str, Any]
    output: Callable[[bytes, dict[str, Any]], dict[str, Any]]
    statuses: frozenset[str]
    batch_event: str | None  # "batch_processor_run"; None: no batch webhook (workflows)
    download_failure: str  # failureReason when the file cannot be fetched
    source: str | None  # the list endpoint's ``source`` value for batch-created runs
    sortable: bool = True  # the list endpoint takes sortBy/sortDir


def _processor_kind(
    name: str, key: str, prefix: str, run_prefix: str, version_prefix: str, **kw: Any
) -> Kind:
    return Kind(
        name=name,
        family="processor",
        collection=f"{name}_runs",
        object=f"{name}_run",
        processor_key=key,
        processor_prefix=prefix,
        run_prefix=run_prefix,
        version_prefix=version_prefix,
        batch_prefix="bpr_",
        filter_param=f"{key}Id",
        statuses=RUN_STATUSES,
        batch_event="batch_processor_run",
        download_failure="FAILED_TO_PROCESS_FILE",
        source="BATCH_PROCESSOR_RUN",
        **kw,
    )


KINDS: dict[str, Kind] = {
    kind.collection: kind
    for kind in (
        _processor_kind(
            "extract",
            "extractor",
            "ex_",
            "exr_",
            "exv_",
            accepts_text=True,
            default_config={
                "baseProcessor": "extraction_performance",
                "schema": {"type": "object", "properties": {}},
            },
            output=content.extract_output,
        ),
        _processor_kind(
            "classify",
            "classifier",
            "cl_",
            "clr_",
            "clv_",
            accepts_text=True,
            default_config={"baseProcessor": "classification_performance", "classifications": []},
            output=content.classify_output,
        ),
        _processor_kind(
            "split",
            "splitter",
            "spl_",
            "splr_",
            "splv_",
            accepts_text=False,  # the API refuses {"text": ...} inputs for split
            default_config={"baseProcessor": "splitting_performance", "splitClassifications": []},
            output=content.split_output,
        ),
        Kind(
            name="parse",
            family="parse",
            collection="parse_runs",
            object="parse_run",
            processor_key=None,
            processor_prefix=None,
            run_prefix="pr_",
            version_prefix=None,
            batch_prefix="bpar_",
            filter_param=None,
            accepts_text=True,  # batch parse takes text (single POST /parse_runs does not)
            default_config=DEFAULT_PARSE_CONFIG,
            output=content.parse_output,
            statuses=PARSE_STATUSES,
            batch_event="batch_parse_run",
            download_failure="UNABLE_TO_DOWNLOAD_FILE",
            source="BATCH_PARSER_RUN",
            sortable=False,
        ),
        Kind(
            name="workflow",
            family="workflow",
            collection="workflow_runs",
            object="workflow_run",
            processor_key="workflow",
            processor_prefix="workflow_",
            run_prefix="workflow_run_",
            version_prefix="workflow_version_",
            batch_prefix="batch_",
            filter_param="workflowId",
            accepts_text=True,
            default_config={},
            output=_extract_default,  # the simulated workflow is one extraction step
            statuses=WORKFLOW_STATUSES,
            batch_event=None,
            download_failure="FAILED_TO_PROCESS_FILE",
            source=None,
        ),
    )
}
