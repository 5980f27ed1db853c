"""A run's report, and its figures in docs/reliability.md."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchdrop_core.tracking import (
    FileStatus,
)
from sandbox.docfigures import replace_between
from sandbox.machine import machine
from sandbox.reliability.checks import MAX_LISTED, input_ids
from sandbox.reliability.faults import FaultInjector, fault_counts
from sandbox.reliability.observe import State
from sandbox.reliability.plan import RunOptions

if TYPE_CHECKING:
    from sandbox.reliability.runner import Driver


def build_report(
    options: RunOptions,
    started_at: datetime,
    elapsed: float,
    state: State,
    violations: dict[str, list[str]],
    stats: dict[str, Any],
    injector: FaultInjector | None,
    driver: Driver,
) -> dict[str, Any]:
    by_route: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for f in state.files:
        by_route[f.get("route") or "(no route)"][f["status"]] += 1
    at_extend = {input_ids(b["inputs"][0]).get("submissionId"): b for b in state.sim_batches if b["inputs"]}
    sizes: defaultdict[str, list[int]] = defaultdict(list)
    for s in sorted(state.submissions, key=lambda s: s["createdAt"]):
        if s["submissionId"] in at_extend:
            sizes[s["route"]].append(at_extend[s["submissionId"]]["runCount"])
    notifications = Counter(m.get("eventType") for m in state.notifications)
    options_out = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    return {
        "startedAt": started_at.isoformat(timespec="seconds"),
        "durationSeconds": round(elapsed, 1),
        "machine": machine(),
        "options": options_out,
        "files": {
            "objectVersionsUploaded": driver.uploaded_versions,
            "tracked": len(state.files),
            "byStatus": dict(Counter(f["status"] for f in state.files)),
            "byReason": dict(Counter(f["failureReason"] for f in state.files if f.get("failureReason"))),
            "requeues": dict(
                Counter(
                    h.get("reason")
                    for f in state.files
                    for h in f.get("history", [])
                    if h["status"] == FileStatus.QUEUED and h.get("reason")
                )
            ),
            "byRoute": {route: dict(c) for route, c in sorted(by_route.items())},
            "runsAtExtend": sum(b["runCount"] for b in state.sim_batches),
            "resultObjects": len(state.result_bodies),
        },
        "batches": {
            "submissions": len(state.submissions),
            "byState": dict(Counter(s["state"] for s in state.submissions)),
            "atExtend": len(state.sim_batches),
            "adopted": sum(1 for s in state.submissions if s.get("adopted")),
            "sizesByRoute": dict(sizes),
            "full": sum(1 for b in state.sim_batches if b["runCount"] == options.batch_size),
            "partial": sum(1 for b in state.sim_batches if b["runCount"] < options.batch_size),
        },
        "notifications": dict(notifications),
        "faults": fault_counts(injector, driver, stats, state),
        "schedule": {
            "rounds": [{"at": at, "kinds": kinds} for at, kinds in injector.rounds] if injector else [],
            "unconsumed": injector.unconsumed if injector else [],
        },
        "dlq": {name: len(bodies) for name, bodies in state.dlq_bodies.items()},
        "violationCount": sum(len(found) for found in violations.values()),
        "violations": {
            name: {"count": len(found), "examples": found[:MAX_LISTED]} for name, found in violations.items()
        },
    }


DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


FIGURES_START = "<!-- figures:start (written by `make reliability` from its report; do not edit) -->"


FIGURES_END = "<!-- figures:end -->"


def render_figures(report: dict[str, Any]) -> str:
    """The "last long run" section: what ran, what was injected, what the checks found."""
    options, files, batches = report["options"], report["files"], report["batches"]
    info = report.get("machine", {})
    started = report["startedAt"].replace("T", " ")[:16]
    counts = {name: found["count"] for name, found in report["violations"].items()}

    def listing(values: dict[str, Any]) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(values.items())) or "none"

    adversarial = files["objectVersionsUploaded"] - options["files"]
    lines = [
        FIGURES_START,
        "",
        f"Run of {started} UTC, {report['durationSeconds'] / 60:.1f} minutes, on "
        f"{info.get('cpus (nproc)', '?')} CPUs "
        f"({info.get('cpu model', '?')}), {info.get('memory', '?')}, Python {info.get('python', '?')}: "
        f"{options['files']:,} regular files and {adversarial} adversarial object versions, `maxBatchSize` "
        f"{options['batch_size']}, faults injected for {options['fault_seconds']:.0f} s from the first batch "
        f"(seed {options['seed']}).",
        "",
        f"**Invariant violations: {report['violationCount']}** "
        f"({', '.join(f'{name} {n}' for name, n in sorted(counts.items()))}); every file terminal: "
        f"{'yes' if report.get('finished') else 'no'}; queues and webhooks settled before the checks: "
        + (
            "yes."
            if report.get("settled")
            else f"no, still queued: {listing(report.get('stillBusyAtCheck') or {})}."
        ),
        "",
        "| figure | value |",
        "|---|---|",
        f"| object versions dropped / tracked | {files['objectVersionsUploaded']:,} / {files['tracked']:,} |",
        f"| files by status | {listing(files['byStatus'])} |",
        f"| failure and rejection reasons | {listing(files['byReason'])} |",
        f"| files sent round again, by reason | {listing(files['requeues'])} |",
        f"| runs at Extend / result objects | {files['runsAtExtend']:,} / {files['resultObjects']:,} |",
        f"| submissions (by state) | {batches['submissions']} ({listing(batches['byState'])}) |",
        f"| batches at Extend (full / partial) | {batches['atExtend']} "
        f"({batches['full']} / {batches['partial']}) |",
        f"| ambiguous submissions adopted | {batches['adopted']} |",
        f"| SNS messages | {listing(report['notifications'])} |",
        f"| DLQ messages | {listing(report['dlq'])} (the arrivals DLQ must hold the 2 malformed bodies) |",
        "",
        "Faults injected and adversarial inputs sent, by kind:",
        "",
        "| kind | count |",
        "|---|---|",
        *(f"| `{kind}` | {count:,} |" for kind, count in report["faults"].items()),
    ]
    examples = [
        f"- VIOLATION {name}: {e}"
        for name, found in sorted(report["violations"].items())
        for e in found["examples"]
    ]
    if examples:
        lines += ["", *examples]
    lines += ["", FIGURES_END]
    return "\n".join(lines)


def write_figures(report: dict[str, Any], doc: Path = DOC) -> None:
    replace_between(doc, FIGURES_START, FIGURES_END, render_figures(report))
