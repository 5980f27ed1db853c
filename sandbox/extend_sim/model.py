"""The simulator's records (batches, runs, files) and how each is rendered as an Extend API object."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.extend_sim import content

TERMINAL = frozenset({"PROCESSED", "FAILED", "CANCELLED"})
RUN_STATUSES = frozenset({"PENDING", "PROCESSING", "PROCESSED", "FAILED", "CANCELLED"})
# No default is published for processor batches; lower runs first, so unprioritised batches go last-ish.
DEFAULT_PRIORITY = 90

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 20) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Kind:
    """What differs between the extract, classify and split endpoints."""

    name: str  # "extract"
    collection: str  # URL segment: "extract_runs"
    object: str  # run object name: "extract_run"
    processor_key: str  # request/response key: "extractor"
    processor_prefix: str  # "ex_"
    run_prefix: str  # "exr_"
    version_prefix: str  # "exv_"
    filter_param: str  # list filter: "extractorId"
    accepts_text: bool
    default_config: dict[str, Any]
    output: Callable[[bytes, dict[str, Any]], dict[str, Any]]


KINDS: dict[str, Kind] = {
    kind.collection: kind
    for kind in (
        Kind(
            "extract",
            "extract_runs",
            "extract_run",
            "extractor",
            "ex_",
            "exr_",
            "exv_",
            "extractorId",
            True,
            {"baseProcessor": "extraction_performance", "schema": {"type": "object", "properties": {}}},
            content.extract_output,
        ),
        Kind(
            "classify",
            "classify_runs",
            "classify_run",
            "classifier",
            "cl_",
            "clr_",
            "clv_",
            "classifierId",
            True,
            {"baseProcessor": "classification_performance", "classifications": []},
            content.classify_output,
        ),
        Kind(
            "split",
            "split_runs",
            "split_run",
            "splitter",
            "spl_",
            "splr_",
            "splv_",
            "splitterId",
            False,  # the API refuses {"text": ...} inputs for split
            {"baseProcessor": "splitting_performance", "splitClassifications": []},
            content.split_output,
        ),
    )
}


@dataclass
class StoredFile:
    id: str
    name: str
    type: str
    data: bytes
    created: float

    def to_api(self) -> dict[str, Any]:
        return {
            "object": "file",
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "parentFileId": None,
            "metadata": {"pageCount": content.page_count(self.data)},
            "createdAt": iso(self.created),
            "updatedAt": iso(self.created),
        }


@dataclass
class Batch:
    id: str
    kind: Kind
    processor: dict[str, Any]  # {"id", "version"?, "overrideConfig"?} as received
    priority: int | None
    inputs: list[dict[str, Any]]  # as received
    created: float
    run_ids: list[str] = field(default_factory=list)
    status: str = "PENDING"
    doomed: bool = False  # the fail_batches fault picked this batch
    response_lost: bool = False  # the lose_post_response fault picked this batch

    def to_api(self) -> dict[str, Any]:
        # BatchRun has exactly these five fields.
        return {
            "object": "batch_run",
            "id": self.id,
            "status": self.status,
            "runCount": len(self.run_ids),
            "createdAt": iso(self.created),
        }


@dataclass
class Run:
    id: str
    seq: int  # creation order; the tiebreaker that keeps list pagination stable
    kind: Kind
    batch_id: str
    processor: dict[str, Any]
    file_ref: dict[str, Any]
    metadata: dict[str, Any] | None
    created: float
    updated: float
    status: str = "PENDING"
    output: dict[str, Any] | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    file: dict[str, Any] | None = None  # FileSummary once processed
    pages: int = 0

    @property
    def config(self) -> dict[str, Any]:
        # overrideConfig is a partial merge over the saved config.
        override = self.processor.get("overrideConfig") or {}
        return {**self.kind.default_config, **override}

    @property
    def file_name(self) -> str:
        return (self.file or {}).get("name") or self.file_ref.get("name") or ""

    def sort_value(self, sort_by: str) -> float:
        return self.updated if sort_by == "updatedAt" else self.created

    def to_api(self, *, full: bool, base_url: str) -> dict[str, Any]:
        """The full run (GET by id) or, with ``full=False``, the list summary without output/config."""
        kind = self.kind
        processor_id = self.processor["id"]
        version = self.processor.get("version") or "1.0"
        made = iso(0)  # the simulated processors have existed "forever"
        body: dict[str, Any] = {"object": kind.object, "id": self.id, "status": self.status}
        if full and self.status == "PROCESSED":
            body["output"] = self.output
        if self.status == "FAILED":
            body["failureReason"] = self.failure_reason
            body["failureMessage"] = self.failure_message
        body["metadata"] = self.metadata if self.metadata is not None else {}
        body["reviewed"] = False
        body["edited"] = False
        if full:
            body["config"] = self.config
        body[kind.processor_key] = {
            "object": kind.processor_key,
            "id": processor_id,
            "name": f"Simulated {kind.processor_key} {processor_id}",
            "createdAt": made,
            "updatedAt": made,
        }
        body[kind.processor_key + "Version"] = {
            "object": kind.processor_key + "_version",
            "id": kind.version_prefix + content.digest(processor_id, version).hex()[:16],
            "version": "draft" if version == "draft" else ("1.0" if version == "latest" else version),
            kind.processor_key + "Id": processor_id,
            "createdAt": made,
        }
        body["file"] = self.file
        if kind.name == "extract":
            body["files"] = None
        body["dashboardUrl"] = f"{base_url}/_sim/runs/{self.id}"
        if self.status == "PROCESSED":
            usage: dict[str, Any] = {"credits": float(self.pages), "totalCredits": float(self.pages)}
            if full:
                usage["breakdown"] = [{"object": kind.object, "id": self.id, "credits": float(self.pages)}]
            body["usage"] = usage
        body["createdAt"] = iso(self.created)
        body["updatedAt"] = iso(self.updated)
        return body
