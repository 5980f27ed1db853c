"""Metric 8, a backfill at Extend's limits: the same drop (ten times the bound on files at Extend, at the
pay-as-you-go plan's ratios scaled to this machine) with the bound, and with it switched off."""

from __future__ import annotations

from typing import Any

from bench.console import progress
from bench.report import Row, Section, Table, verdict
from sandbox import backfill


def run(quick: bool) -> Section:
    section = Section("backfill", "8. Backfill at Extend's limits")
    files = 600 if quick else backfill.BackfillOptions().files
    bounded = backfill.run(backfill.BackfillOptions(files=files), progress=progress)
    unbounded = backfill.run(backfill.BackfillOptions(files=files, bounded=False), progress=progress)
    problems = backfill.check(bounded)
    o = bounded["options"]
    section.setup = (
        f"{files:,} files on three routes, dropped at once into the sandbox (`sandbox/backfill.py`, as in "
        f"`make reliability`). The simulated Extend holds the pipeline to a plan with pay-as-you-go's ratios "
        f"scaled to fit this machine: {o['files_per_minute']:g} files/min, URLs of {o['url_seconds']} s "
        f"(Extend gets through {o['files_per_minute'] * o['url_seconds'] / 60:,.0f} files while a URL lives, "
        f"as 4,800 in an hour at 80 files/min), {o['requests_per_second']:g} requests/s for reads and writes "
        f"(7.5 times the processing rate, as 10/s against 80 files/min), half of the 429s without "
        f"Retry-After; batches of {o['batch_size']}. Bound on files at Extend: {bounded['bound']:,} (the "
        f"default, half of what Extend processes while a URL lives); switched off: room for all "
        f"{files:,}. Timed from the first upload until every file is terminal; the physical limit is "
        "files ÷ throughput."
    )
    section.rows = [
        Row(
            "every file PROCESSED (with the bound)",
            f"{bounded['byStatus'].get('PROCESSED', 0):,} of {bounded['files']:,}",
            "—",
            "—",
            "all",
            verdict(bounded["byStatus"].get("PROCESSED", 0) == bounded["files"] == files),
        ),
        Row(
            "files at Extend at once, at most",
            f"{bounded['maxOutstanding']:,}",
            f"bound {bounded['bound']:,}",
            f"{bounded['maxOutstanding'] / bounded['bound']:.2f}",
            "≤ 1",
            verdict(bounded["maxOutstanding"] <= bounded["bound"]),
        ),
        Row(
            "files sent again or FAILED for an expired URL",
            f"{bounded['filesSentAgainForAnExpiredUrl']} / {bounded['failedForExpiredUrls']}",
            "—",
            "—",
            "0 / 0",
            verdict(not bounded["filesSentAgainForAnExpiredUrl"] and not bounded["failedForExpiredUrls"]),
        ),
        Row(
            "batches",
            f"{bounded['batches']}",
            f"⌈N/{o['batch_size']}⌉ per route = {bounded['fullBatchesExpected']}",
            f"{bounded['batches'] / bounded['fullBatchesExpected']:.2f}",
            "1.00",
            verdict(bounded["batches"] == bounded["fullBatchesExpected"]),
        ),
        Row(
            "first upload → every file terminal",
            f"{bounded['elapsedSeconds']} s",
            f"files ÷ throughput: {bounded['physicalSeconds']} s",
            f"{bounded['ratioToPhysical']:.3f}",
            f"≤ {backfill.TIME_FACTOR}",
            verdict(bounded["ratioToPhysical"] <= backfill.TIME_FACTOR),
        ),
    ]

    def column(result: dict[str, Any]) -> list[str]:
        limited = result["rateLimited"]
        return [
            f"{result['bound']:,}",
            f"{result['maxOutstanding']:,}",
            ", ".join(f"{s} {n:,}" for s, n in result["byStatus"].items()),
            f"{result['urlExpiries']:,}",
            f"{result['filesSentAgainForAnExpiredUrl']:,}",
            f"{result['failedForExpiredUrls']:,}",
            f"{result['batches']} (full: {result['fullBatchesExpected']})",
            ", ".join(f"{cls} {c['withRetryAfter'] + c['withoutRetryAfter']}" for cls, c in limited.items()),
            f"{result['elapsedSeconds']} s ({result['ratioToPhysical']:.2f}x)",
        ]

    figures = [
        "bound on files at Extend",
        "most files at Extend at once",
        "files by status",
        "downloads that met an expired URL",
        "files sent again for an expired URL",
        "files FAILED for an expired URL",
        "batches",
        "429s (read, write), each retried",
        "time (x physical limit)",
    ]
    section.tables = [
        Table(
            "With the bound, and with it switched off",
            ["figure", "bound (default)", "bound switched off"],
            [[name, a, b] for name, a, b in zip(figures, column(bounded), column(unbounded), strict=True)],
        )
    ]
    section.notes = [
        (
            "With the bound, every check held."
            if not problems
            else "With the bound, not every check held: " + "; ".join(problems)
        ),
        f"Switched off, every batch goes to Extend at once and waits in its queue while its URLs age: "
        f"{unbounded['urlExpiries']:,} downloads met an expired URL, "
        f"{unbounded['filesSentAgainForAnExpiredUrl']:,} files went round again "
        f"with fresh URLs (no attempt used, at most 3 rounds) and "
        f"{unbounded['failedForExpiredUrls']:,} ended FAILED for it; every round is more submissions, "
        f"downloads and collections for the same files ({unbounded['batches']} batches against "
        f"{bounded['batches']}).",
    ]
    section.data = {"bounded": bounded, "unbounded": unbounded}
    return section
