"""The simulator's records (batches, runs, files) and how each is rendered as an Extend API object."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from sandbox.extend_sim import content
from sandbox.extend_sim.kinds import KINDS, Kind

# No default is published for processor batches; lower runs first, so unprioritised batches go last-ish.
# Workflow batches document 90 as their default.
DEFAULT_PRIORITY = 90
REVIEWER = "reviewer@extend-simulator.invalid"

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str, length: int = 20) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
    processor: dict[str, Any] | None  # {"id", "version"?, "overrideConfig"?} as received; None for parse
    priority: int | None
    inputs: list[dict[str, Any]]  # as received
    created: float  # when it became visible (the lost_batch_delay_seconds fault delays it)
    config: dict[str, Any] | None = None  # parse batches: the request's config
    accepted: float = 0.0  # when the POST was accepted
    foreign: bool = False  # created by /_sim/foreign_batches, not by an API client
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

    def create_response(self) -> dict[str, Any]:
        # Workflow batches answer with only their id; the others with the BatchRun.
        return {"batchId": self.id} if self.kind.family == "workflow" else self.to_api()


@dataclass
class Run:
    id: str
    seq: int  # creation order; the tiebreaker that keeps list pagination stable
    kind: Kind
    batch_id: str
    processor: dict[str, Any] | None
    file_ref: dict[str, Any]
    metadata: dict[str, Any] | None
    created: float
    updated: float
    batch_config: dict[str, Any] | None = None  # parse: the batch's config
    status: str = "PENDING"
    output: dict[str, Any] | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    file: dict[str, Any] | None = None  # FileSummary once processed
    pages: int = 0
    started: float | None = None
    start_order: int | None = None  # n-th run to start processing in the workspace (from 0)
    ended: float | None = None
    reviewed_at: float | None = None
    rejection_note: str | None = None

    @property
    def config(self) -> dict[str, Any]:
        if self.kind.family == "parse":
            return {**self.kind.default_config, **(self.batch_config or {})}
        # overrideConfig is a partial merge over the saved config.
        override = (self.processor or {}).get("overrideConfig") or {}
        return {**self.kind.default_config, **override}

    @property
    def file_name(self) -> str:
        return (self.file or {}).get("name") or self.file_ref.get("name") or _url_name(self.file_ref) or ""

    def sort_value(self, sort_by: str) -> float:
        return self.updated if sort_by == "updatedAt" else self.created

    def to_api(self, *, full: bool, base_url: str, output_url: str | None = None) -> dict[str, Any]:
        """The full run (GET by id) or, with ``full=False``, the list summary without output/config.
        ``output_url`` (parse runs): answer with ``outputUrl`` instead of the inline output."""
        if self.kind.family == "parse":
            return self._parse_api(full, output_url)
        if self.kind.family == "workflow":
            return self._workflow_api(full, base_url)
        return self._processor_api(full, base_url)

    def _usage(self, full: bool) -> dict[str, Any]:
        usage: dict[str, Any] = {"credits": float(self.pages), "totalCredits": float(self.pages)}
        if full:
            # A workflow's credits are its steps' runs' (here one extraction).
            charged = ("extract_run", self._step_extract_run_id()) if self.kind.family == "workflow" else None
            kind, run_id = charged or (self.kind.object, self.id)
            usage["breakdown"] = [{"object": kind, "id": run_id, "credits": float(self.pages)}]
        return usage

    def _step_extract_run_id(self) -> str:
        return "exr_" + content.digest(self.id, "extract-step").hex()[:20]

    def _processor_api(self, full: bool, base_url: str) -> dict[str, Any]:
        kind = self.kind
        key = str(kind.processor_key)
        processor = self.processor or {}
        processor_id = processor["id"]
        version = processor.get("version") or "1.0"
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
        body[key] = {
            "object": key,
            "id": processor_id,
            "name": f"Simulated {key} {processor_id}",
            "createdAt": made,
            "updatedAt": made,
        }
        body[key + "Version"] = {
            "object": key + "_version",
            "id": f"{kind.version_prefix}{content.digest(processor_id, version).hex()[:16]}",
            "version": "draft" if version == "draft" else ("1.0" if version == "latest" else version),
            key + "Id": processor_id,
            "createdAt": made,
        }
        body["file"] = self.file
        if kind.name == "extract":
            body["files"] = None
        body["dashboardUrl"] = f"{base_url}/_sim/runs/{self.id}"
        if self.status == "PROCESSED":
            body["usage"] = self._usage(full)
        body["createdAt"] = iso(self.created)
        body["updatedAt"] = iso(self.updated)
        return body

    def _parse_api(self, full: bool, output_url: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"object": "parse_run", "id": self.id, "batchId": self.batch_id}
        body["file"] = self.file
        body["status"] = self.status
        if self.status == "FAILED":
            body["failureReason"] = self.failure_reason
            body["failureMessage"] = self.failure_message
        if self.metadata is not None:  # present only when it was given
            body["metadata"] = self.metadata
        if full and self.status == "PROCESSED":
            if output_url:
                body["outputUrl"] = output_url
            else:
                body["output"] = self.output
        if self.status == "PROCESSED":
            took = ((self.ended or self.updated) - (self.started or self.created)) * 1000
            body["metrics"] = {"processingTimeMs": round(max(took, 0.0), 1), "pageCount": float(self.pages)}
        if full:
            body["config"] = self.config
        if self.status == "PROCESSED":
            body["usage"] = self._usage(full)
        body["createdAt"] = iso(self.created)
        body["updatedAt"] = iso(self.updated)
        return body

    def _workflow_api(self, full: bool, base_url: str) -> dict[str, Any]:
        processor = self.processor or {}
        workflow_id = processor["id"]
        version = processor.get("version") or "1"
        made = iso(0)
        reviewed = self.reviewed_at is not None
        body: dict[str, Any] = {
            "object": "workflow_run",
            "id": self.id,
            "status": self.status,
            "workflow": {
                "object": "workflow",
                "id": workflow_id,
                "name": f"Simulated workflow {workflow_id}",
                "createdAt": made,
                "updatedAt": made,
            },
            "workflowVersion": {
                "object": "workflow_version",
                "id": f"{self.kind.version_prefix}{content.digest(workflow_id, version).hex()[:16]}",
                "version": version,
                "createdAt": made,
            },
            "dashboardUrl": f"{base_url}/_sim/runs/{self.id}",
        }
        if full:  # the summary has no metadata: GET the run for it (the webhook payload carries it)
            body["metadata"] = self.metadata if self.metadata is not None else {}
        body["batchId"] = self.batch_id
        body["files"] = [self.file] if self.file else []
        if self.status == "FAILED":
            body["failureReason"] = self.failure_reason
            body["failureMessage"] = self.failure_message
        body["initialRunAt"] = iso(self.created)
        body["reviewedByUser"] = REVIEWER if reviewed else None
        body["reviewed"] = reviewed
        body["rejectionNote"] = self.rejection_note
        body["reviewedAt"] = iso(self.reviewed_at) if self.reviewed_at is not None else None
        body["startTime"] = iso(self.started) if self.started is not None else None
        body["endTime"] = iso(self.ended) if self.ended is not None else None
        if full:
            body["stepRuns"] = self._step_runs(base_url)
        if self.status in ("PROCESSED", "NEEDS_REVIEW", "REJECTED") and self.output is not None:
            body["usage"] = self._usage(full)
        if not full:
            body["createdAt"] = iso(self.created)
            body["updatedAt"] = iso(self.updated)
        return body

    def _step_runs(self, base_url: str) -> list[dict[str, Any]]:
        if self.output is None:
            return []
        seed = content.digest(self.id, "extract-step").hex()
        extract_run_id = self._step_extract_run_id()
        made = iso(self.ended or self.updated)
        return [
            {
                "object": "workflow_step_run",
                "id": "workflow_step_run_" + seed[20:40],
                "workflowRunId": self.id,
                "status": "PROCESSED",
                "files": [self.file] if self.file else [],
                "stepType": "EXTRACT",
                "step": {
                    "object": "workflow_step",
                    "id": "step_"
                    + content.digest((self.processor or {}).get("id", ""), "extract").hex()[:16],
                    "name": "Extract",
                    "type": "EXTRACT",
                },
                "result": {
                    "extractRun": {
                        "object": "extract_run",
                        "id": extract_run_id,
                        "status": "PROCESSED",
                        "output": self.output,
                        "metadata": self.metadata if self.metadata is not None else {},
                        "reviewed": self.reviewed_at is not None,
                        "edited": False,
                        "config": KINDS["extract_runs"].default_config,
                        "file": self.file,
                        "dashboardUrl": f"{base_url}/_sim/runs/{self.id}",
                        "createdAt": made,
                        "updatedAt": made,
                    }
                },
            }
        ]


def _url_name(ref: dict[str, Any]) -> str:
    url = ref.get("url")
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) if isinstance(url, str) else ""


def input_file_name(ref: dict[str, Any]) -> str:
    """The name a file reference goes by before processing: ``name``, or the URL's object name."""
    return str(ref.get("name") or _url_name(ref) or "")
