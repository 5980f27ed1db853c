"""The workload of a fault run: the files to drop (regular, failure markers, adversarial objects) and what
the run must end with.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.demo import EXAMPLE_ROUTES
from sandbox.documents import CLASSIC_MIX, _pdf, sample_files
from sandbox.local import SandboxOptions

MAX_ATTEMPTS = 4  # one more than the default: injected faults alone should rarely exhaust a file


MAX_FILE_SIZE = 256 * 1024  # small, so the oversized adversarial object stays cheap to upload


# Crash points and one-shot faults: a round grants a token, the next matching event consumes it.
TOKEN_KINDS = (
    "webhook_dropped",
    "lost_post_response",
    "crash_after_post_before_record",
    "expired_presigned_url",
    "crash_intake_after_write_before_ack",
    "crash_mid_results_collection",
    "crash_submitter_after_write_before_ack",
    "crash_after_result_object_before_record",
    "batch_failed_by_extend",
    "crash_results_after_write_before_ack",
    "crash_webhook_after_dedupe_write",
)


WINDOW_KINDS = ("rate_limit_storm", "api_key_revoked", "webhook_signed_url_payload")


ACTION_KINDS = ("forged_webhooks", "webhook_replay")


ALL_FAULT_KINDS = TOKEN_KINDS + WINDOW_KINDS + ACTION_KINDS


# Faults that fail every run of a batch: at full rate they would send most files round maxAttempts times.
RARE_KINDS = ("expired_presigned_url", "batch_failed_by_extend")


# One kind per round, in this order (the crashes that cost a reconciler pass come early).
ROUND_KINDS = (
    "crash_intake_after_write_before_ack",
    "webhook_dropped",
    "crash_webhook_after_dedupe_write",
    "lost_post_response",
    "crash_after_post_before_record",
    "rate_limit_storm",
    "expired_presigned_url",
    "forged_webhooks",
    "crash_mid_results_collection",
    "api_key_revoked",
    "crash_submitter_after_write_before_ack",
    "crash_after_result_object_before_record",
    "webhook_replay",
    "batch_failed_by_extend",
    "webhook_signed_url_payload",
    "crash_results_after_write_before_ack",
)


@dataclass
class RunOptions:
    files: int = 5000
    seed: int = 7
    batch_size: int = 200  # maxBatchSize: smaller than 1,000 so that a run has many batches to hurt
    max_wait: int = 5  # maxWaitSeconds
    upload_seconds: float = 90.0  # uploads are spread in waves over this long
    faults: bool = True
    fault_interval: float = 3.0  # a round per new batch at Extend, at most one per this many seconds
    fault_rounds: int | None = None  # rounds in all (None: no limit)
    fault_seconds: float | None = 600.0  # rounds stop this long after they started (None: no limit)
    rare_every: int = 4  # faults that fail a whole batch come in one pass of the rotation out of this many
    kinds_per_round: int = 4  # consecutive kinds of the rotation applied in each round
    error_5xx_rate: float = 0.03
    webhook_drop_rate: float = 0.1
    webhook_duplicate_rate: float = 0.2
    webhook_drop_seconds: float | None = None  # drop webhooks only this long after the start (None: always)
    revoke_seconds: float = 8.0
    storm_seconds: float = 4.0
    read_rate: float = 100.0  # readRateLimit and the simulator's read limit
    reconcile_interval: float = 10.0
    # The sweep's queue-depth queries make moto walk the whole Files table; once a second would spend
    # much of moto's time on them in a 5,000-file run (AWS sweeps once a minute).
    sweep_interval: float = 3.0
    progress_interval: float = 15.0  # seconds between the run's own (full-table) progress scans
    failure_share: float = 0.01  # files whose content asks Extend to fail them (PARSING_ERROR)
    exhausted_share: float = 0.005  # files that fail retryably every time (INTERNAL_ERROR)
    adversarial: bool = True
    timeout: float = 2400.0
    progress: bool = True
    log_path: Path | None = None


def short_options(**overrides: Any) -> RunOptions:
    """The short run ``make test`` includes: a few hundred files, every fault kind, about two minutes."""
    values: dict[str, Any] = {
        "files": 300,
        "batch_size": 25,
        "max_wait": 3,
        "upload_seconds": 12.0,
        "fault_interval": 1.0,
        "fault_rounds": -(-len(ROUND_KINDS) // 2),  # each kind once
        "fault_seconds": None,
        "rare_every": 1,
        # Two kinds a round: a round needs a new batch at Extend, and a few hundred files make only about
        # 25 batches, some in bursts; at one kind a round a busy machine left the last kind ungranted or
        # granted after its last event.
        "kinds_per_round": 2,
        "webhook_drop_seconds": 45.0,
        "webhook_drop_rate": 0.25,
        "webhook_duplicate_rate": 0.3,
        "error_5xx_rate": 0.05,
        "revoke_seconds": 4.0,
        "storm_seconds": 3.0,
        "reconcile_interval": 5.0,
        "sweep_interval": 1.0,
        "progress_interval": 5.0,
        "failure_share": 0.02,
        "exhausted_share": 0.01,
        "timeout": 300.0,
        **overrides,
    }
    return RunOptions(**values)


@dataclass
class Planned:
    key: str
    body: bytes
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Expectations:
    """What the run must end with, beyond the invariants themselves."""

    rejected: dict[str, str] = field(default_factory=dict)  # key -> REJECTED reason
    failed: dict[str, str] = field(default_factory=dict)  # key -> FAILED reason (a permanent failure)
    exhausted: dict[str, str] = field(default_factory=dict)  # key -> reason, FAILED after maxAttempts
    folder_markers: set[str] = field(default_factory=set)  # keys that must get no item
    synthetic_items: set[tuple[str, str]] = field(default_factory=set)  # items no S3 version backs
    malformed_bodies: set[str] = field(default_factory=set)  # the only messages allowed in the DLQ
    item_count: int = 0  # items the run must end with
    # Duplicate submissions a scenario forces on purpose (a POST whose batch stays hidden from every search,
    # then turns up): each must be detected and announced (lateBatchAt) rather than silently dropped.
    late_duplicates_allowed: int = 0


def _long_key(prefix: str, suffix: str, filler: str) -> str:
    """A key of exactly 1,024 UTF-8 bytes (S3's limit)."""
    room = 1024 - len(prefix.encode()) - len(suffix.encode())
    unit = len(filler.encode())
    body = filler * (room // unit) + "x" * (room % unit)
    key = prefix + body + suffix
    assert len(key.encode()) == 1024
    return key


def adversarial_objects(exp: Expectations) -> list[Planned]:
    """The catalogue's S3 keys and objects that the run drops among the regular files."""
    pdf = _pdf(["INVOICE\nInvoice Number: ADV-1\nTotal: 10.00"])
    objects = [
        Planned("invoices/adversarial/ACME Corp invoice #1042+final.pdf", pdf),
        Planned("invoices/adversarial/100% done & 50%2F off=yes.pdf", pdf),
        Planned("documents/adversarial/Ünïcödé façture 请求.txt", b"RECEIPT\nReceipt No: 1"),
        Planned("documents/adversarial/control\x01\x1f\ttab\x7fdel.txt", b"RECEIPT\nReceipt No: 2"),
        Planned(_long_key("packets/adversarial/", ".pdf", "p"), pdf),
        Planned(_long_key("documents/adversarial/", ".txt", "é"), b"letter\nDear customer"),
        Planned("invoices/adversarial/with metadata.pdf", pdf, {"customer": "acme", "ref": "42"}),
    ]
    rejects = [
        (Planned("invoices/adversarial/empty.pdf", b""), "EMPTY_FILE"),
        (Planned("invoices/adversarial/oversized.pdf", b"%PDF" + b"x" * MAX_FILE_SIZE), "FILE_TOO_LARGE"),
        (Planned("documents/adversarial/setup.exe", b"MZ\x90\x00"), "UNSUPPORTED_TYPE"),
        (Planned("documents/adversarial/no-extension", b"text"), "UNSUPPORTED_TYPE"),
        (Planned("scans/unsorted/stray scan.pdf", pdf), "NO_ROUTE"),
        (Planned("invoices/adversarial/metadata.pdf", pdf, {"note": "n" * 9500}), "METADATA_TOO_LARGE"),
    ]
    for planned, reason in rejects:
        exp.rejected[planned.key] = reason
    marker = Planned("invoices/adversarial/folder/", b"")
    exp.folder_markers.add(marker.key)
    return objects + [p for p, _ in rejects] + [marker]


OVERWRITTEN_KEY = "packets/adversarial/overwritten.pdf"


VANISHED_KEY = "invoices/adversarial/vanished before intake.pdf"


VANISHED_VERSION = "3HL4kqtJlcpXroDTDmjVBH40Nrjfkd9"


def plan_files(options: RunOptions, exp: Expectations) -> list[Planned]:
    """Regular sample documents (some told to fail) plus the adversarial objects, in upload order."""
    rng = random.Random(options.seed)
    regular = [Planned(s.key, s.body) for s in sample_files(options.files, options.seed, with_rejects=False)]
    n_failed = round(len(regular) * options.failure_share) if options.failure_share else 0
    n_exhausted = round(len(regular) * options.exhausted_share) if options.exhausted_share else 0
    chosen = rng.sample(range(len(regular)), min(len(regular), n_failed + n_exhausted))
    for position, index in enumerate(chosen):
        reason = "PARSING_ERROR" if position < n_failed else "INTERNAL_ERROR"
        planned = regular[index]
        planned.body = _marked(planned, reason)
        (exp.failed if reason == "PARSING_ERROR" else exp.exhausted)[planned.key] = reason
    files = list(regular)
    if options.adversarial:
        files += adversarial_objects(exp)
        files.append(Planned(OVERWRITTEN_KEY, _pdf(["STATEMENT\nReference: v1"])))
    rng.shuffle(files)
    return files


def _marked(planned: Planned, reason: str) -> bytes:
    marker = f"SIMULATE_FAILURE:{reason}"
    if planned.key.endswith(".pdf"):
        return _pdf([f"INVOICE\n{marker}\nReference: {planned.key}"])
    return f"{marker}\n{planned.key}".encode()


# The invoices route forwards user metadata, so the run covers both intake paths: reading each object
# (metadata, objects deleted before intake) and reading nothing but the notification. The workload is
# sample_files' default mix, so the routes are the demo's three processor routes (extract, classify,
# split); the demo's parse and workflow routes are not in the fault runs.
RELIABILITY_ROUTES = [
    {**r, "forwardUserMetadata": r["name"] == "invoices"} for r in EXAMPLE_ROUTES if r["name"] in CLASSIC_MIX
]


def sandbox_options(options: RunOptions) -> SandboxOptions:
    return SandboxOptions(
        routes=RELIABILITY_ROUTES,
        settings={
            "maxBatchSize": options.batch_size,
            "maxWaitSeconds": options.max_wait,
            "orphanGraceSeconds": 3,
            # Probes and backoffs scaled as the sweep is (every few seconds here, a minute on AWS).
            "probeIntervalSeconds": 3,
            "probeIntervalMaxSeconds": 30,
            "webhookGraceMinutes": 1,
            "readRateLimit": options.read_rate,
            "maxFileSizeBytes": MAX_FILE_SIZE,
            "maxAttempts": MAX_ATTEMPTS,
        },
        read_rps=options.read_rate,
        sweep_interval=options.sweep_interval,
        reconcile_interval=options.reconcile_interval,
        name_prefix="reliability",
    )
