"""The backfill scenario: a drop many times larger than the bound on files at Extend, at Extend's real plan
ratios scaled to fit this machine, so that sending everything at once would expire most presigned URLs.

Real plan (pay-as-you-go): Extend processes 80 files a minute and a presigned URL lives an hour, so Extend
gets through 4,800 files while a URL lives and the default bound is half of that (2,400). Scaled here:
``files_per_minute`` 600 and URLs of 60 s (Extend gets through 600 files while a URL lives: the bound is
300, three batches of 100), read and write budgets 7.5 times the processing rate as on the real plan
(10 requests/s against 80 files/min), half of the 429s without ``Retry-After``. With the bound switched off
(``bounded=False``: room for every file at once) the same drop shows what the bound prevents.

Used by ``make reliability --scenario backfill`` and by ``make bench`` (the backfill section).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from batchdrop_core.dynamo import scan_all
from batchdrop_core.tracking import FileStatus, with_derived_names
from sandbox.docfigures import replace_between
from sandbox.documents import sample_files
from sandbox.local import Sandbox, SandboxOptions

ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_backfill"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_backfill"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_backfill"},
]


@dataclass
class BackfillOptions:
    files: int = 3000
    files_per_minute: float = 600.0  # Extend's processing rate (80 on pay-as-you-go)
    url_seconds: int = 60  # presigned URL lifetime (3,600 on AWS)
    requests_per_second: float = 75.0  # Extend's read and write limits (10 on pay-as-you-go)
    budget_share: float = 0.8  # readRateLimit / writeRateLimit as a share of Extend's limits
    batch_size: int = 100
    missing_retry_after_share: float = 0.5
    bounded: bool = True  # False: room at Extend for every file at once
    timeout: float = 1800.0

    @property
    def bound(self) -> int:
        return int(self.files_per_minute * self.url_seconds / 60 / 2) if self.bounded else self.files

    @property
    def physical_seconds(self) -> float:
        """Extend cannot process the drop faster than this."""
        return self.files / self.files_per_minute * 60


def sandbox_options(options: BackfillOptions) -> SandboxOptions:
    settings: dict[str, Any] = {
        "maxBatchSize": options.batch_size,
        "maxWaitSeconds": 30,
        "presignedUrlExpirySeconds": options.url_seconds,
        "extendFilesPerMinute": options.files_per_minute,
        "readRateLimit": options.requests_per_second * options.budget_share,
        "writeRateLimit": options.requests_per_second * options.budget_share,
        "orphanGraceSeconds": 10,
        "webhookGraceMinutes": 1,
    }
    if not options.bounded:
        settings["maxFilesAtExtend"] = options.files
    return SandboxOptions(
        routes=ROUTES,
        settings=settings,
        sim={
            "files_per_minute": options.files_per_minute,
            "read_rps": options.requests_per_second,
            "write_rps": options.requests_per_second,
            "missing_retry_after_share": options.missing_retry_after_share,
        },
        sweep_interval=5.0,
        reconcile_interval=30.0,
        name_prefix="backfill" if options.bounded else "unbounded",
    )


def run(options: BackfillOptions, progress: Any = None) -> dict[str, Any]:
    """Drop the files, wait until every one is terminal (or the timeout), and report."""
    say = progress or (lambda _message: None)
    files = sample_files(options.files, with_rejects=False)
    sandbox = Sandbox(sandbox_options(options)).start()
    try:
        s3 = sandbox.deployment.session.client("s3")
        bucket = sandbox.deployment.resources.drop_bucket
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda f: s3.put_object(Bucket=bucket, Key=f.key, Body=f.body), files))
        uploaded = time.monotonic() - started
        say(f"backfill: {len(files):,} files uploaded in {uploaded:.0f} s")
        deadline = started + options.timeout
        last_report = 0.0
        while time.monotonic() < deadline:
            counts = sandbox.count_files()
            done = sum(counts[s] for s in FileStatus.TERMINAL)
            if done >= len(files):
                break
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                say(f"backfill: {done:,} of {len(files):,} terminal after {time.monotonic() - started:.0f} s")
            time.sleep(1.0)
        elapsed = time.monotonic() - started
        return report(sandbox, options, elapsed, uploaded)
    finally:
        sandbox.stop()


def report(sandbox: Sandbox, options: BackfillOptions, elapsed: float, uploaded: float) -> dict[str, Any]:
    sim = httpx.get(f"{sandbox.simulator.base_url}/_sim/stats", timeout=60).json()["backfill"]
    ddb = sandbox.deployment.session.client("dynamodb")
    items = [with_derived_names(v) for v in scan_all(ddb, TableName=sandbox.deployment.resources.files_table)]
    by_route = Counter(f.get("route") for f in items)
    expired_rounds = Counter(
        sum(1 for h in f.get("history", []) if h.get("reason") == "URL_EXPIRED") for f in items
    )
    full_batches = {route: math.ceil(n / options.batch_size) for route, n in by_route.items() if route}
    limited = sim["rateLimited"]
    return {
        "options": {**asdict(options), "bound": options.bound},
        "files": len(items),
        "byStatus": dict(Counter(f["status"] for f in items)),
        "byFailureReason": dict(
            Counter(f["failureReason"] for f in items if f["status"] == FileStatus.FAILED)
        ),
        "bound": options.bound,
        "maxOutstanding": sim["maxOutstanding"],
        "urlExpiries": sim["downloadFailures"]["urlExpired"],
        "filesSentAgainForAnExpiredUrl": sum(n for rounds, n in expired_rounds.items() if rounds),
        "failedForExpiredUrls": sum(
            1 for f in items if f.get("failureReason") == "URL_EXPIRED" and f["status"] == FileStatus.FAILED
        ),
        "maxAttempts": max((f.get("attempts", 0) for f in items), default=0),
        "rateLimited": limited,
        "batches": sim["batches"]["count"],
        "batchSizes": {str(size): n for size, n in sorted(Counter(sim["batches"]["sizes"]).items())},
        "fullBatchesExpected": sum(full_batches.values()),
        "elapsedSeconds": round(elapsed, 1),
        "uploadSeconds": round(uploaded, 1),
        "physicalSeconds": round(options.physical_seconds, 1),
        "ratioToPhysical": round(elapsed / options.physical_seconds, 3),
    }


TIME_FACTOR = 1.15  # the drop must take at most this many times what Extend physically needs


def check(result: dict[str, Any]) -> list[str]:
    """What the bounded backfill must show; each failure as a sentence (empty: all held)."""
    problems = []
    files, statuses = result["files"], result["byStatus"]
    if statuses.get(FileStatus.PROCESSED, 0) != files:
        problems.append(f"not every file was PROCESSED: {statuses}")
    if result["failedForExpiredUrls"] or result["filesSentAgainForAnExpiredUrl"] or result["maxAttempts"] > 1:
        problems.append(
            f"expired URLs cost files: {result['filesSentAgainForAnExpiredUrl']} sent again, "
            f"{result['failedForExpiredUrls']} FAILED, largest attempts {result['maxAttempts']}"
        )
    if result["maxOutstanding"] > result["bound"]:
        problems.append(
            f"{result['maxOutstanding']} files were at Extend at once, over the bound {result['bound']}"
        )
    if result["batches"] != result["fullBatchesExpected"]:
        problems.append(f"{result['batches']} batches for {result['fullBatchesExpected']} full ones")
    if result["ratioToPhysical"] > TIME_FACTOR:
        problems.append(
            f"the drop took {result['elapsedSeconds']} s, {result['ratioToPhysical']}x Extend's physical "
            f"{result['physicalSeconds']} s (at most {TIME_FACTOR}x)"
        )
    return problems


FIGURES_START = "<!-- backfill:start (written by `make reliability` from its backfill run; do not edit) -->"
FIGURES_END = "<!-- backfill:end -->"


def render(result: dict[str, Any], problems: list[str]) -> str:
    o = result["options"]
    limited = result["rateLimited"]
    rows = [
        ("files", f"{result['files']:,} ({', '.join(f'{s} {n:,}' for s, n in result['byStatus'].items())})"),
        (
            "plan (scaled)",
            f"{o['files_per_minute']:g} files/min, {o['requests_per_second']:g} requests/s, "
            f"URLs live {o['url_seconds']} s",
        ),
        ("bound on files at Extend", f"{result['bound']:,} (batches of {o['batch_size']})"),
        ("most files at Extend at once (simulator)", f"{result['maxOutstanding']:,}"),
        ("downloads that met an expired URL", f"{result['urlExpiries']:,}"),
        (
            "files sent again for an expired URL / FAILED for it",
            f"{result['filesSentAgainForAnExpiredUrl']:,} / {result['failedForExpiredUrls']:,}",
        ),
        ("largest attempts of a file", str(result["maxAttempts"])),
        (
            "429s (read, write; with / without Retry-After)",
            ", ".join(f"{cls} {c['withRetryAfter']}/{c['withoutRetryAfter']}" for cls, c in limited.items()),
        ),
        ("batches (full batches needed)", f"{result['batches']} ({result['fullBatchesExpected']})"),
        (
            "first upload → every file terminal",
            f"{result['elapsedSeconds']} s ({result['uploadSeconds']} s uploading)",
        ),
        ("files ÷ throughput (physical limit)", f"{result['physicalSeconds']} s"),
        ("ratio (target ≤ 1.15)", f"{result['ratioToPhysical']}"),
    ]
    lines = ["| figure | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    verdict = "every check held" if not problems else "; ".join(problems)
    return "\n".join([FIGURES_START, "", *lines, "", f"Result: {verdict}.", "", FIGURES_END])


def write_figures(result: dict[str, Any], problems: list[str], doc: Any) -> None:
    replace_between(doc, FIGURES_START, FIGURES_END, render(result, problems))
