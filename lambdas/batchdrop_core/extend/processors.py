"""The table of Extend processor types: everything that differs between the five kinds of batch route.

Settings, client, submitter, collector, webhook, reconciler and CLI read this table and never branch on a
type's name; adding a type that resembles one of these is a new row (plus the simulator's content for it,
and tests). It is plain Python: settings validation needs it, and importing it must not build the pydantic
models or load the HTTP client (cold start of functions that never call Extend).

Three families exist at Extend:

* processor batches (extract, classify, split): ``POST /{type}_runs/batch`` names a processor; the answer
  is a BatchRun (``bpr_``); one ``batch_processor_run.*`` webhook when the batch is over.
* parse batches: the body carries a ParseConfig instead of a processor; BatchRun ``bpar_``; one
  ``batch_parse_run.*`` webhook; the run list takes no sort and may want its page size as ``limit``.
* workflow batches: ``workflow: {id, version}``; the answer is ``{batchId}`` only and ``/batch_runs``
  cannot read it; no batch webhook but one ``workflow_run.*`` webhook per run; a run may wait in
  ``NEEDS_REVIEW`` for a person, who may end it ``REJECTED``; list summaries carry no metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

ProcessorType = Literal["extract", "classify", "split", "parse", "workflow"]

# How a batch body names what runs its inputs: a processor reference under ``reference_key``, a config
# object under ``reference_key`` (optional), or a workflow reference ``{id, version}``.
Reference = Literal["processor", "config", "workflow"]


def _extract_summary(output: dict[str, Any]) -> dict[str, Any]:
    # {"value": {...}, "metadata": {...}}, or a legacy flat map of fields.
    value = output.get("value")
    return {"fieldCount": len(value if isinstance(value, dict) else output)}


def _classify_summary(output: dict[str, Any]) -> dict[str, Any]:
    return {"type": output.get("type"), "confidence": output.get("confidence")}


def _split_summary(output: dict[str, Any]) -> dict[str, Any]:
    splits = output.get("splits")
    return {"splitCount": len(splits) if isinstance(splits, list) else 0}


def _parse_summary(output: dict[str, Any]) -> dict[str, Any]:
    chunks = output.get("chunks")
    pages = (output.get("metadata") or {}).get("pages") if isinstance(output.get("metadata"), dict) else None
    return {
        "chunkCount": len(chunks) if isinstance(chunks, list) else 0,
        "pageCount": len(pages) if isinstance(pages, list) else None,
    }


def _workflow_summary(run: dict[str, Any]) -> dict[str, Any]:
    steps = run.get("stepRuns")
    return {
        "stepCount": len(steps) if isinstance(steps, list) else 0,
        "reviewed": bool(run.get("reviewed")),
    }


PROCESSOR_RUN_STATUSES = frozenset({"PENDING", "PROCESSING", "PROCESSED", "FAILED", "CANCELLED"})
PROCESSOR_TERMINAL = frozenset({"PROCESSED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class ProcessorTypeInfo:
    """What one processor type looks like on the wire, and how its runs end."""

    name: str
    runs_path: str  # POST {runs_path}/batch, GET {runs_path}?batchId=…, GET {runs_path}/{id}
    reference: Reference
    reference_key: str  # the body key: "extractor", "config", "workflow"
    processors_path: str | None  # GET {processors_path}/{id} reads the processor; None: nothing to read
    filter_param: str | None  # the run list's filter by processor id
    id_prefix: str | None  # processor / workflow ids; None: the route names none
    run_id_prefix: str
    batch_id_prefix: str
    accepts_text: bool  # inputs may be {"text": …}
    batch_readable: bool  # the create call answers a BatchRun and GET /batch_runs/{id} reads it
    sortable: bool  # the run list takes sortBy/sortDir (else its default order, newest change first)
    page_size_params: tuple[str, ...]  # every spelling of the list's page size, all sent
    summaries_carry_metadata: bool  # list items hold the input's metadata (else GET the run for it)
    batch_events: tuple[str, ...]  # webhook events once per batch; payload: the BatchRun
    run_events: tuple[str, ...]  # webhook events once per run; payload: the run, with batchId and metadata
    # Where the events are subscribed: None, on the webhook endpoint itself (enabledEvents); else a webhook
    # subscription per route for this resource type and the route's processor id (Extend's endpoints take
    # no workflow_run events: they come through POST /webhook_subscriptions, one per workflow).
    subscription_resource: str | None
    statuses: frozenset[str]
    terminal_statuses: frozenset[str]
    succeeded_status: str  # the terminal status that has an output to store
    review_statuses: frozenset[str]  # waiting on a person at Extend: neither failed nor stuck
    download_failures: frozenset[str]  # reasons for a file Extend could not fetch (an expired URL?)
    retryable_reasons: frozenset[str]  # reasons worth another attempt, beyond retryableFailureReasons
    get_run_params: tuple[tuple[str, str], ...]  # query of GET {runs_path}/{id}
    summarize_output: Callable[[dict[str, Any]], dict[str, Any]]
    summarize_whole_run: bool = False  # the summary reads the run (workflows: steps), not its output

    @property
    def has_processor(self) -> bool:
        return self.id_prefix is not None

    @property
    def reports_per_run(self) -> bool:
        """No batch webhook: each run's event records its file, and the batch ends with its last run."""
        return not self.batch_events

    @property
    def events(self) -> tuple[str, ...]:
        return self.batch_events + self.run_events

    def summarize(self, run: dict[str, Any]) -> dict[str, Any] | None:
        """The small result summary kept on the Files item, from the run as Extend returned it."""
        source = run if self.summarize_whole_run else run.get("output")
        return self.summarize_output(source) if isinstance(source, dict) else None


def _processor_type(
    name: str, key: str, id_prefix: str, run_prefix: str, summary: Callable[[dict[str, Any]], Any], **kw: Any
) -> ProcessorTypeInfo:
    return ProcessorTypeInfo(
        name=name,
        runs_path=f"/{name}_runs",
        reference="processor",
        reference_key=key,
        processors_path=f"/{key}s",
        filter_param=f"{key}Id",
        id_prefix=id_prefix,
        run_id_prefix=run_prefix,
        batch_id_prefix="bpr_",
        batch_readable=True,
        sortable=True,
        page_size_params=("maxPageSize",),
        summaries_carry_metadata=True,
        batch_events=("batch_processor_run.processed", "batch_processor_run.failed"),
        run_events=(),
        subscription_resource=None,
        statuses=PROCESSOR_RUN_STATUSES,
        terminal_statuses=PROCESSOR_TERMINAL,
        succeeded_status="PROCESSED",
        review_statuses=frozenset(),
        download_failures=frozenset({"FAILED_TO_PROCESS_FILE"}),
        retryable_reasons=frozenset(),
        get_run_params=(),
        summarize_output=summary,
        **kw,
    )


PROCESSOR_TYPES: dict[str, ProcessorTypeInfo] = {
    "extract": _processor_type("extract", "extractor", "ex_", "exr_", _extract_summary, accepts_text=True),
    "classify": _processor_type(
        "classify", "classifier", "cl_", "clr_", _classify_summary, accepts_text=True
    ),
    # Extend refuses {"text": …} inputs for split.
    "split": _processor_type("split", "splitter", "spl_", "splr_", _split_summary, accepts_text=False),
    "parse": ProcessorTypeInfo(
        name="parse",
        runs_path="/parse_runs",
        reference="config",
        reference_key="config",
        processors_path=None,
        filter_param=None,
        id_prefix=None,
        run_id_prefix="pr_",
        batch_id_prefix="bpar_",
        accepts_text=True,  # batch parse takes text (a single POST /parse_runs does not)
        batch_readable=True,
        sortable=False,
        # Extend's SDK sends maxPageSize, its CLI limit (and says the other is dropped): send both.
        page_size_params=("maxPageSize", "limit"),
        summaries_carry_metadata=True,
        batch_events=("batch_parse_run.processed", "batch_parse_run.failed"),
        run_events=(),
        subscription_resource=None,
        statuses=frozenset({"PENDING", "PROCESSING", "PROCESSED", "FAILED"}),
        terminal_statuses=frozenset({"PROCESSED", "FAILED"}),
        succeeded_status="PROCESSED",
        review_statuses=frozenset(),
        download_failures=frozenset({"UNABLE_TO_DOWNLOAD_FILE"}),
        retryable_reasons=frozenset(),
        get_run_params=(("responseType", "json"),),  # the output inline, not behind a URL
        summarize_output=_parse_summary,
    ),
    "workflow": ProcessorTypeInfo(
        name="workflow",
        runs_path="/workflow_runs",
        reference="workflow",
        reference_key="workflow",
        processors_path="/workflows",
        filter_param="workflowId",
        id_prefix="workflow_",
        run_id_prefix="workflow_run_",
        batch_id_prefix="batch_",
        accepts_text=True,
        batch_readable=False,
        sortable=True,
        page_size_params=("maxPageSize",),
        summaries_carry_metadata=False,
        batch_events=(),
        # A review's outcome comes as .completed (approved) or .rejected.
        run_events=(
            "workflow_run.completed",
            "workflow_run.failed",
            "workflow_run.needs_review",
            "workflow_run.rejected",
            "workflow_run.cancelled",
        ),
        subscription_resource="workflow",
        statuses=frozenset(
            {
                "PENDING",
                "PROCESSING",
                "NEEDS_REVIEW",
                "REJECTED",
                "PROCESSED",
                "FAILED",
                "CANCELLED",
                "CANCELLING",
            }
        ),
        terminal_statuses=frozenset({"PROCESSED", "FAILED", "CANCELLED", "REJECTED"}),
        succeeded_status="PROCESSED",
        review_statuses=frozenset({"NEEDS_REVIEW"}),
        download_failures=frozenset({"FAILED_TO_PROCESS_FILE"}),
        retryable_reasons=frozenset(),
        get_run_params=(),
        summarize_output=_workflow_summary,
        summarize_whole_run=True,
    ),
}

# Every webhook event a deployment subscribes to, and which type and kind (batch or run) each one is.
WEBHOOK_EVENTS: tuple[str, ...] = tuple(
    dict.fromkeys(event for info in PROCESSOR_TYPES.values() for event in info.events)
)
# What a webhook endpoint is created with: the events of the types subscribed on the endpoint itself.
ENDPOINT_EVENTS: tuple[str, ...] = tuple(
    dict.fromkeys(
        event
        for info in PROCESSOR_TYPES.values()
        if info.subscription_resource is None
        for event in info.events
    )
)
BATCH_EVENT_TYPES: dict[str, tuple[ProcessorTypeInfo, ...]] = {}
RUN_EVENT_TYPES: dict[str, ProcessorTypeInfo] = {}
for _info in PROCESSOR_TYPES.values():
    for _event in _info.batch_events:
        BATCH_EVENT_TYPES[_event] = (*BATCH_EVENT_TYPES.get(_event, ()), _info)
    for _event in _info.run_events:
        RUN_EVENT_TYPES[_event] = _info


def processor_type(name: str) -> ProcessorTypeInfo:
    """The row of a type; a clear error for a name that has none."""
    try:
        return PROCESSOR_TYPES[name]
    except KeyError:
        raise ValueError(
            f"unknown processor type {name!r}; expected one of {', '.join(PROCESSOR_TYPES)}"
        ) from None
