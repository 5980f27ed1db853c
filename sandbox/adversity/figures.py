"""The adversity run's figures in docs/reliability.md, between their markers."""

from __future__ import annotations

from typing import Any

from sandbox.docfigures import replace_between

FIGURES_START = "<!-- adversity:start (written by `make reliability` from its adversity run; do not edit) -->"
FIGURES_END = "<!-- adversity:end -->"


def render(result: dict[str, Any], problems: list[str]) -> str:
    o = result["options"]
    lines = [
        FIGURES_START,
        "",
        f"Sweep every {o['sweep_interval']:g} s, probes from {o['probe_seconds']} s doubling to "
        f"{o['probe_max_seconds']} s, batches of {o['batch_size']}; {result['files']} files, "
        f"{result['foreignBatchesSent']} foreign batches sent during the run, "
        f"{result['durationSeconds']} s.",
        "",
        "| outage | sweep intervals | Extend requests during it | probes (allowed) "
        "| Files writes: onset / during | files processed after it |",
        "|---|---|---|---|---|---|",
    ]
    for out in result["outages"]:
        requests = ", ".join(f"{t} {n}" for t, n in sorted(out["extendRequests"].items())) or "none"
        probes = ", ".join(f"{r} {n}" for r, n in out["probes"].items())
        lines.append(
            f"| {out['name']} | {out['sweepIntervals']} | {requests} "
            f"| {probes} ({out['probesAllowed']} each) "
            f"| {out['fileWritesAtOnset']} / {out['fileWrites']} | {out['resumedAfterSeconds']} s |"
        )
    p = result["poison"]
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        f"| files by status | {', '.join(f'{s} {n}' for s, n in result['byStatus'].items())} |",
        f"| poison file | {p['status']} `{p['reason']}`: {p['message']} |",
        f"| its batch-mates | {p['matesProcessed']} of {p['mates']} PROCESSED, "
        f"batch sizes {p['matesBatchSizes']} |",
        f"| late batch (POST response lost) | {result['lateBatch']['statuses']}, submissions "
        f"{result['lateBatch']['submissions']} |",
        f"| largest Files item | {result['largestFilesItemBytes']:,} bytes |",
        f"| largest attempts of a file | {result['largestAttempts']} |",
        f"| DLQ messages (most at once) | {result['dlqMax']} |",
        f"| alarms fired | {', '.join(result['alarmsFired']) or 'none'} |",
        f"| invariant violations (I1 to I6, the long run's checker) | "
        f"{sum(map(len, result['invariantViolations'].values()))} |",
        "",
        f"Result: {'every check held' if not problems else '; '.join(problems)}.",
        "",
        FIGURES_END,
    ]
    return "\n".join(lines)


def write_figures(result: dict[str, Any], problems: list[str], doc: Any) -> None:
    replace_between(doc, FIGURES_START, FIGURES_END, render(result, problems))
