"""Metric 1, batch efficiency: files over 3 routes arriving in bursts and trickles become how many Extend
submissions, against ⌈N_route/1000⌉ (I2) and against the naive design "submit whatever one SQS-triggered
invocation receives", fed the very same S3 notifications and driven by the same event-source emulation.

The same run gives metric 4's latency under load: from the arrival of a route's kx1000-th file to the POST
of its k-th batch. The run itself is ``bench.pipeline_run``, the naive design ``bench.naive``; this module
turns what they measured into the section.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batchdrop_core import timeutil
from bench.console import progress
from bench.harness import ESM_BATCH_SIZE, ESM_POLLERS, ESM_WINDOW_SECONDS, ROUTES, make_files
from bench.pipeline_run import (
    MAX_WAIT_SECONDS,
    PATTERN,
    PAUSE_SECONDS,
    RECONCILE_INTERVAL,
    SWEEP_INTERVAL,
    TRICKLE_FILES_PER_SECOND,
    PipelineRun,
    UploadAlone,
    run_pipeline,
    upload_alone,
)
from bench.report import Row, Section, Table, fmt_seconds, verdict
from bench.stats import percentile

FULL_COUNTS = {"invoices": 4500, "documents": 3300, "packets": 2200}  # 10,000 (issue 8)
QUICK_COUNTS = {"invoices": 150, "documents": 90, "packets": 60}


@dataclass
class Submissions:
    """The batches each design sent (batchdrop's as Extend received them), by route."""

    sizes: dict[str, list[int]]  # batchdrop's batch sizes
    created: dict[str, list[str]]  # and when Extend received each
    sent: Counter[str]  # batches each file went in, by file id
    naive_sizes: dict[str, list[int]]
    all_naive: list[int]  # every naive batch's size, in the order they were cut

    @property
    def ours_total(self) -> int:
        return sum(len(v) for v in self.sizes.values())


def run(quick: bool, files_wanted: int | None = None) -> tuple[Section, dict[str, Any]]:
    """The combined run: metric 1's figures, plus the data metric 6 (and so 7) and metric 4 use."""
    counts = _counts(quick, files_wanted)
    pause = 2.0 if quick else PAUSE_SECONDS
    total = sum(counts.values())
    section = Section("efficiency", "1. Batch efficiency")
    files = make_files(counts, seed=11)

    progress(f"pipeline run: baseline, the arrival pattern of {total} files against moto alone")
    alone = upload_alone(files, pause)
    progress(f"pipeline run: {total} files through the sandbox, bursts and trickles, naive design alongside")
    measured = run_pipeline(files, counts, pause)

    submitted = _submissions(measured)
    arrivals = _arrivals(measured.files_table)
    waits = _full_batch_waits(arrivals, submitted.created)
    section.setup = _setup(counts, pause, measured)
    section.rows = _rows(counts, submitted)
    section.tables = _tables(counts, submitted)
    # Metric 4 under load, before the last row (every file in exactly one batch)
    section.rows[-1:-1] = latency_rows(
        {"full_batch_waits": waits, "note": f"{len(waits)} full batches of this run"}
    )
    section.notes = _notes(quick, total, measured, submitted, arrivals)
    latency = {
        "full_batch_waits": waits,
        "counts": counts,
        "note": f"{len(waits)} full batches of the {total:,}-file run of metric 1",
    }
    section.data = {
        "naive_batch_sizes": submitted.all_naive,
        "naive_submissions": len(submitted.all_naive),
        "naive_invocations": measured.naive_invocations,
        "ours_submissions": submitted.ours_total,
        "files": total,
        "latency_under_load": latency,
    }
    run_data = _run_data(counts, alone, measured)
    expected = sum(math.ceil(n / 1000) for n in counts.values())
    progress(
        f"efficiency: batchdrop {submitted.ours_total} submissions (ideal {expected}), "
        f"naive {len(submitted.all_naive)}"
    )
    return section, {"latency": latency, "run": run_data, "efficiency": section.data}


def _counts(quick: bool, files_wanted: int | None) -> dict[str, int]:
    """Files per route: the full or quick sizes, or ``--files`` shared out as the full sizes are."""
    counts = QUICK_COUNTS if quick else FULL_COUNTS
    if files_wanted:
        whole = sum(FULL_COUNTS.values())
        counts = {route: round(n * files_wanted / whole) for route, n in FULL_COUNTS.items()}
    return counts


def _submissions(measured: PipelineRun) -> Submissions:
    route_of_processor = {r["processorId"]: r["name"] for r in ROUTES}
    sizes: dict[str, list[int]] = defaultdict(list)
    created: dict[str, list[str]] = defaultdict(list)
    sent: Counter[str] = Counter()
    for batch in measured.batches:
        route = route_of_processor[batch["processor"]["id"]]
        sizes[route].append(batch["runCount"])
        created[route].append(batch["createdAt"])
        for item in batch["inputs"]:
            sent[item["metadata"]["batchdrop"]["fileId"]] += 1
    naive_sizes: dict[str, list[int]] = defaultdict(list)
    for route, size in measured.naive_batches:
        naive_sizes[route].append(size)
    return Submissions(sizes, created, sent, naive_sizes, [s for _, s in measured.naive_batches])


def _setup(counts: dict[str, int], pause: float, measured: PipelineRun) -> str:
    total = sum(counts.values())
    return (
        f"{total:,} files ({', '.join(f'{r} {n:,}' for r, n in counts.items())}) uploaded in "
        f"{len(PATTERN)} phases "
        f"({', '.join(f'{k} {c:,} files in {s:.0f} s' for k, s, c in measured.phases)}; "
        f"trickles at {TRICKLE_FILES_PER_SECOND:.0f} files/s, {pause:.0f} s pauses), arrival span "
        f"{measured.arrival_span:.0f} s. Both designs get the same S3 notifications (two queues on the drop "
        f"bucket) and the stack's event source settings: batch {ESM_BATCH_SIZE}, window "
        f"{ESM_WINDOW_SECONDS:.0f} s, {ESM_POLLERS} parallel pollers. batchdrop: the whole sandbox "
        f"(`sandbox.local.Sandbox`: every handler, one submitter poller, sweep every {SWEEP_INTERVAL:.0f} s, "
        f"Extend simulator processing and sending webhooks), maxWaitSeconds {MAX_WAIT_SECONDS}; the same run "
        "is metric 6. Naive: a bench handler that counts the batches each invocation would submit (one per "
        "route, ≤1000); it does not POST them."
    )


def _rows(counts: dict[str, int], submitted: Submissions) -> list[Row]:
    total = sum(counts.values())
    expected = sum(math.ceil(n / 1000) for n in counts.values())
    sizes, sent, all_naive = submitted.sizes, submitted.sent, submitted.all_naive
    ours_total, naive_total = submitted.ours_total, len(all_naive)
    exactly_once = len(sent) == total and max(sent.values(), default=0) == 1
    return [
        Row(
            "submissions, all routes",
            str(ours_total),
            f"⌈N/1000⌉ per route = {expected}",
            f"{ours_total / expected:.2f}",
            "1.00",
            verdict(ours_total == expected),
        ),
        *[
            Row(
                f"submissions, {route}",
                str(len(sizes[route])),
                f"⌈{n:,}/1000⌉ = {math.ceil(n / 1000)}",
                f"{len(sizes[route]) / math.ceil(n / 1000):.2f}",
                "1.00",
                verdict(len(sizes[route]) == math.ceil(n / 1000)),
            )
            for route, n in counts.items()
        ],
        Row(
            "naive design: submissions, all routes",
            str(naive_total),
            f"⌈N/1000⌉ per route = {expected}",
            f"{naive_total / expected:.1f}",
            "(comparison)",
        ),
        Row(
            "naive design: median batch size (mean)",
            f"{percentile(all_naive, 50):.0f} ({sum(all_naive) / max(1, naive_total):.0f})",
            "1000",
            "—",
            "(comparison)",
        ),
        Row(
            "every file in exactly one batch",
            "yes" if exactly_once else f"no ({len(sent):,} distinct of {total:,})",
            "—",
            "—",
            "yes",
            verdict(exactly_once),
        ),
    ]


def _tables(counts: dict[str, int], submitted: Submissions) -> list[Table]:
    sizes, naive_sizes = submitted.sizes, submitted.naive_sizes
    per_route = []
    for route, n in counts.items():
        ideal = math.ceil(n / 1000)
        ours, theirs = len(sizes[route]), len(naive_sizes[route])
        per_route.append(
            [
                route,
                f"{n:,}",
                str(ideal),
                str(ours),
                f"{ours / ideal:.2f}",
                ", ".join(str(s) for s in sorted(sizes[route], reverse=True)),
                str(theirs),
                f"{theirs / ideal:.1f}",
            ]
        )
    return [
        Table(
            "Per route",
            [
                "route",
                "files",
                "⌈N/1000⌉",
                "batchdrop",
                "ratio",
                "batchdrop batch sizes",
                "naive",
                "naive ratio",
            ],
            per_route,
        ),
        Table(
            "Batch size distribution (submissions by size)",
            ["size", "batchdrop", "naive", "files in naive batches"],
            [
                [
                    label,
                    str(sum(1 for s in (x for v in sizes.values() for x in v) if _in(label, s))),
                    count,
                    files,
                ]
                for label, count, files in _size_bins(submitted.all_naive)
            ],
        ),
    ]


def _size_bins(sizes: list[int]) -> list[list[str]]:
    bins = [(1, 1), (2, 9), (10, 99), (100, 499), (500, 999), (1000, 1000)]
    rows = []
    for low, high in bins:
        inside = [s for s in sizes if low <= s <= high]
        label = str(low) if low == high else f"{low}-{high}"
        rows.append([label, str(len(inside)), f"{sum(inside):,}"])
    return rows


def _in(label: str, size: int) -> bool:
    low, _, high = label.partition("-")
    return int(low) <= size <= int(high or low)


def _arrivals(files_table: list[dict[str, Any]]) -> dict[str, list[str]]:
    """When each file was taken in (``arrivedAt``), by route."""
    arrivals: dict[str, list[str]] = defaultdict(list)
    for values in files_table:
        arrivals[values["route"]].append(values["arrivedAt"])
    return arrivals


def _full_batch_waits(arrivals: dict[str, list[str]], created: dict[str, list[str]]) -> list[float]:
    """Metric 4 under load: arrival of the kx1000-th file of a route → POST of the route's k-th batch."""
    waits = []
    for route, stamps in arrivals.items():
        stamps.sort()
        posts = sorted(created[route])
        for k in range(1, len(stamps) // 1000 + 1):
            if k <= len(posts):
                waits.append(
                    (
                        timeutil.parse_iso(posts[k - 1]) - timeutil.parse_iso(stamps[k * 1000 - 1])
                    ).total_seconds()
                )
    return waits


def _notes(
    quick: bool,
    total: int,
    measured: PipelineRun,
    submitted: Submissions,
    arrivals: dict[str, list[str]],
) -> list[str]:
    spans = {
        route: (timeutil.parse_iso(max(s)) - timeutil.parse_iso(min(s))).total_seconds()
        for route, s in arrivals.items()
    }
    size_note = (
        []
        if total >= 10_000 or quick
        else [
            f"The issue asks for 10,000 files; `make bench` runs {total:,} by default because moto answers "
            "each query on a secondary index by scanning the whole Files table, so the sandbox's cost per "
            "file grows with the table and a 10,000-file run takes far longer than the ~15 minutes budgeted "
            "for `make bench` on 2 shared cores. `python -m bench --files 10000` runs the issue's size."
        ]
    )
    invocations = measured.invocations
    naive_total, ours_total = len(submitted.all_naive), submitted.ours_total
    return [
        *size_note,
        f"Every route's files were taken in (arrivedAt) within {max(spans.values()):.0f} s of each other, "
        f"under maxWaitSeconds = {MAX_WAIT_SECONDS} s, so I2 promises exactly ⌈N/1000⌉ submissions. "
        f"The intake finished {measured.intake_done:.0f} s after the first upload and the full batches were "
        f"out after {measured.fast_forward:.0f} s. Once only remainders (< 1000 per route) were waiting, the "
        f"pipeline's clock "
        f"(`batchdrop_core.timeutil.utc_now`) was moved {MAX_WAIT_SECONDS} s ahead so the sweep sent them at "
        "once instead of idling; partial-batch timing with a real clock is in metric 4.",
        f"The naive design sent {naive_total} batches for {ours_total} needed: each of "
        f"the {ESM_POLLERS} pollers builds its own batch within the {ESM_WINDOW_SECONDS:.0f} s window, so a "
        "burst is split between them and a trickle becomes a stream of small batches; every small batch is "
        "one more Extend submission, webhook and results collection.",
        f"Intake invocations: batchdrop {invocations['intake']} (median "
        f"{percentile(measured.intake_sizes, 50):.0f} records), submitter invocations "
        f"{invocations['submitter']}; naive invocations {measured.naive_invocations}.",
    ]


def _run_data(counts: dict[str, int], alone: UploadAlone, measured: PipelineRun) -> dict[str, Any]:
    """What metrics 6 (throughput) and 7 (cost) take from the run."""
    file_bytes, batch_bytes = measured.file_bytes, measured.batch_bytes
    return {
        "files": sum(counts.values()),
        "counts": counts,
        "requests": measured.counter,
        "durations": {k: list(v) for k, v in measured.durations.items()},
        "invocations": {**measured.invocations, "webhook": len(measured.durations["webhook"])},
        "sim": measured.sim_stats,
        "log_bytes": measured.log_bytes,
        "file_item_bytes": sum(file_bytes) / max(1, len(file_bytes)),
        "batch_item_bytes": sum(batch_bytes) / max(1, len(batch_bytes)),
        "submissions": sum(1 for b in measured.submissions if b.get("state") in ("COMPLETED", "FAILED")),
        "statuses": dict(measured.statuses),
        "upload_alone": alone.seconds,
        "upload_cpu": alone.moto_cpu,
        "alone_phases": alone.phases,
        "phases": measured.phases,
        "elapsed": measured.elapsed,
        "e2e_cpu": measured.e2e_cpu,
        "fast_forward": measured.fast_forward,
        "intake_done": measured.intake_done,
        "offsets": {"arrivedAt": _last_offset(measured.files_table, "arrivedAt", measured.started_at)},
        "arrival_span": measured.arrival_span,
        "max_wait": MAX_WAIT_SECONDS,
        "sweep": SWEEP_INTERVAL,
        "reconcile": RECONCILE_INTERVAL,
    }


def _last_offset(items: list[dict[str, Any]], field: str, started_at: datetime) -> float:
    stamps = [timeutil.parse_iso(i[field]) for i in items if i.get(field)]
    return (max(stamps) - started_at).total_seconds() if stamps else float("nan")


def latency_rows(latency: dict[str, Any]) -> list[Row]:
    waits = latency.get("full_batch_waits") or []
    if not waits:
        return []
    return [
        Row(
            "under load: 1000th arrival → POST (median, max)",
            f"{fmt_seconds(percentile(waits, 50))}, {fmt_seconds(max(waits))}",
            latency["note"],
        )
    ]
