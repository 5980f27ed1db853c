"""``make reliability``: the fault-injection run (issue 7) and the invariant checker (design §5).

Starts the sandbox, drops files over the three example routes together with adversarial objects and SQS
messages, injects every fault kind on a schedule while the pipeline works, waits (bounded) until every
file is terminal, then checks the invariants from DynamoDB, the results bucket, the SNS messages, the
simulator's inspection API and the captured logs. Writes a JSON report; exits 1 on any violation.

    python -m sandbox.reliability [--files N] [--seed S] [--report PATH]

The default is the long run (5,000 files). ``docs/reliability.md`` says what each check means precisely.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import logging
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx

from batchdrop_core import collect as collect_module
from batchdrop_core import submit as submit_module
from batchdrop_core.dynamo import scan_all
from batchdrop_core.extend.signing import signature_headers
from batchdrop_core.observability import logger as powertools_logger
from batchdrop_core.outcomes import URL_EXPIRED, result_key
from batchdrop_core.timeutil import parse_iso
from batchdrop_core.tracking import (
    SUBMISSION_NOT_SENT,
    BatchState,
    FileStatus,
    FileStore,
    StateStore,
    with_derived_names,
)
from sandbox import aws, interrupt
from sandbox.aws import queue_depth
from sandbox.demo import EXAMPLE_ROUTES
from sandbox.docfigures import replace_between
from sandbox.documents import _pdf, sample_files
from sandbox.interrupt import Interrupted
from sandbox.local import Sandbox, SandboxOptions
from sandbox.machine import machine

MAX_ATTEMPTS = 4  # one more than the default: injected faults alone should rarely exhaust a file
MAX_FILE_SIZE = 256 * 1024  # small, so the oversized adversarial object stays cheap to upload
INVARIANTS = ("I1", "I2", "I3", "I4", "I5", "I6", "results_vs_table")
MAX_LISTED = 50  # violations listed per invariant in the report (all are counted)
# Timestamps of one batch's checks come from one clock; this only absorbs float rounding.
CLOCK_TOLERANCE = 0.05
# A file's queuedAt is taken before intake's HeadObject and PutItem (and a requeue's time before its
# UpdateItem); a batch cut in that gap cannot see it. The run records when each write of a Files item
# returned (``FilesWriteTimes``) and the check starts a queue stay there; this slack is for end states
# without those times (tests that build one by hand).
INTAKE_VISIBILITY_SLACK = 2.0
REVOKED_KEY = "sk_revoked_by_the_reliability_run"


class SimulatedCrash(RuntimeError):
    """Raised where the run crashes a function: the invocation fails as if the process had died there."""


# -- options ------------------------------------------------------------------------------------------


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
        "fault_rounds": len(ROUND_KINDS),
        "fault_seconds": None,
        "rare_every": 1,
        "kinds_per_round": 1,
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


# -- the workload ---------------------------------------------------------------------------------------


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


# -- fault injection -----------------------------------------------------------------------------------

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


class Patches:
    """Attribute replacements that can all be undone."""

    def __init__(self) -> None:
        self._saved: list[tuple[Any, str, Any]] = []

    def set(self, target: Any, name: str, value: Any) -> None:
        self._saved.append((target, name, getattr(target, name)))
        setattr(target, name, value)

    def undo(self) -> None:
        while self._saved:
            target, name, value = self._saved.pop()
            setattr(target, name, value)


class FaultInjector:
    """Installs the crash points in the real code paths and runs the fault schedule."""

    def __init__(self, sandbox: Sandbox, options: RunOptions, webhook_secret: str) -> None:
        self.sandbox = sandbox
        self.sim = sandbox.simulator
        self.options = options
        self.webhook_secret = webhook_secret
        self.counts: Counter[str] = Counter()
        self.webhook_replies: list[tuple[str, int]] = []  # (case, status) of every forged request
        self._tokens: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._patches = Patches()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._windows: dict[str, float] = {}  # kind -> monotonic end
        self._started = time.monotonic()
        self._api_key = sandbox.simulator.api_key

    # tokens
    def grant(self, kind: str) -> None:
        # At most one pending per kind: rounds that find nothing to hit must not pile faults up.
        with self._lock:
            self._tokens[kind] = 1

    def take(self, kind: str) -> bool:
        with self._lock:
            if self._tokens[kind] <= 0:
                return False
            self._tokens[kind] -= 1
            self.counts[kind] += 1
            return True

    # installation
    def install(self) -> None:
        pipeline = self.sandbox.pipeline
        for source, kind in (
            (pipeline.intake, "crash_intake_after_write_before_ack"),
            (pipeline.submitter, "crash_submitter_after_write_before_ack"),
            (pipeline.results, "crash_results_after_write_before_ack"),
        ):
            self._patches.set(source, "handler", self._crash_after(source.handler, kind))
        injector = self

        # The submitter's own store (its runtime's), not the class: the results worker links batches too.
        submitter_batches = pipeline.runtime("submitter").batches
        original_link = submitter_batches.link_batch_id

        def link_batch_id(submission_id: str, batch_id: str) -> bool:
            if injector.take("crash_after_post_before_record"):
                raise SimulatedCrash("crashed after the POST, before recording the batch id")
            return original_link(submission_id, batch_id)

        self._patches.set(submitter_batches, "link_batch_id", link_batch_id)

        original_store = collect_module.store_result

        def store_result(*args: Any, **kwargs: Any) -> None:
            if injector.take("crash_mid_results_collection"):
                raise SimulatedCrash("crashed in the middle of storing a batch's results")
            original_store(*args, **kwargs)

        self._patches.set(collect_module, "store_result", store_result)

        original_record = FileStore.record_outcome

        def record_outcome(store: FileStore, *args: Any, **kwargs: Any) -> bool:
            if kwargs.get("result_key") and injector.take("crash_after_result_object_before_record"):
                raise SimulatedCrash("crashed after writing the result object, before recording it")
            return original_record(store, *args, **kwargs)

        self._patches.set(FileStore, "record_outcome", record_outcome)

        original_claim = StateStore.claim_event

        def claim_event(store: StateStore, event_id: str, *args: Any, **kwargs: Any) -> bool:
            claimed = original_claim(store, event_id, *args, **kwargs)
            if claimed and injector.take("crash_webhook_after_dedupe_write"):
                raise SimulatedCrash("crashed after recording the webhook event, before enqueueing it")
            return claimed

        self._patches.set(StateStore, "claim_event", claim_event)

        original_build = submit_module.build_inputs

        def build_inputs(rt: Any, route: Any, submission_id: str, files: Any) -> Any:
            # Not for a batch Extend is about to fail as a whole: that batch would never fetch its URLs.
            doomed = injector.sim.faults.fail_batches > 0
            if rt.settings.file_transfer != "url" or doomed or not injector.take("expired_presigned_url"):
                return original_build(rt, route, submission_id, files)
            # URLs that live one second, and an Extend queue slower than that.
            short = copy.copy(rt)
            short.settings = replace(rt.settings, presigned_url_expiry_seconds=1)
            built = original_build(short, route, submission_id, files)
            time.sleep(2.5)
            return built

        self._patches.set(submit_module, "build_inputs", build_inputs)

        original_publish = self.sim.webhooks.publish

        def publish(event_type: str, batch_run: dict[str, Any]) -> None:
            # Extend never sends this event (besides the share the simulator's own drop rate loses).
            if not injector.take("webhook_dropped"):
                original_publish(event_type, batch_run)

        self._patches.set(self.sim.webhooks, "publish", publish)

    def _crash_after(self, handler: Callable[..., Any], kind: str) -> Callable[..., Any]:
        def wrapped(event: dict[str, Any], context: Any) -> Any:
            response = handler(event, context)
            if self.take(kind):
                raise SimulatedCrash("crashed after the handler's writes, before SQS acknowledged")
            return response

        return wrapped

    # the schedule
    def start(self) -> None:
        faults = self.sim.faults
        faults.error_5xx_rate = self.options.error_5xx_rate
        faults.webhook_drop_rate = self.options.webhook_drop_rate
        faults.webhook_duplicate_rate = self.options.webhook_duplicate_rate
        faults.webhook_reorder = True
        self._thread = threading.Thread(target=self._run, name="fault-schedule", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Rounds start once Extend holds a batch, so each fault lands on a pipeline at work.
        while not self.sim.engine.batches and not self._stop.wait(0.2):
            pass
        round_number = applied = 0
        next_round = time.monotonic()
        batches_seen = 0
        calm_at = next_round + self.options.fault_seconds if self.options.fault_seconds is not None else None
        limit = self.options.fault_rounds
        while not self._stop.wait(0.2):
            now = time.monotonic()
            self._end_windows(now)
            if calm_at is not None and now >= calm_at:
                # The faulty period is over: the rest of the run shows the pipeline settles everything.
                self._calm_rates()
                limit = round_number
                calm_at = None
            drop_for = self.options.webhook_drop_seconds
            if drop_for is not None and now - self._started > drop_for:
                self.sim.faults.webhook_drop_rate = 0.0
            # One round per new batch at Extend (and at most one per fault_interval): the faults keep
            # pace with the pipeline however fast this machine is.
            batches_now = len(self.sim.engine.batches)
            if batches_now > batches_seen and now >= next_round and (limit is None or round_number < limit):
                batches_seen = batches_now
                for _ in range(self.options.kinds_per_round):
                    kind = ROUND_KINDS[applied % len(ROUND_KINDS)]
                    this_pass = applied // len(ROUND_KINDS)
                    applied += 1
                    try:
                        if kind not in RARE_KINDS or this_pass % self.options.rare_every == 0:
                            self._apply(kind)
                    except Exception as exc:  # noqa: BLE001 - a failed injection must not end the schedule
                        print(f"fault round failed: {exc!r}", file=sys.stderr)
                round_number += 1
                next_round = now + self.options.fault_interval

    def _apply(self, kind: str) -> None:
        now = time.monotonic()
        if kind == "lost_post_response":
            with self.sim.lock:
                self.sim.faults.lose_post_response = 1
        elif kind == "batch_failed_by_extend":
            with self.sim.lock:
                self.sim.faults.fail_batches = 1
        elif kind in TOKEN_KINDS:
            self.grant(kind)
        elif kind in WINDOW_KINDS:
            if kind in self._windows:
                return
            self.counts[kind] += 1
            if kind == "rate_limit_storm":
                with self.sim.lock:  # every GET for a while, and at least the next few
                    self.sim.faults.rate_limit_storm_until = time.time() + self.options.storm_seconds
                    self.sim.faults.rate_limit_storm_requests = 5
                self._windows[kind] = now + self.options.storm_seconds
            elif kind == "api_key_revoked":
                self.sim.configure(api_key=REVOKED_KEY)
                self._windows[kind] = now + self.options.revoke_seconds
            else:
                self.sim.faults.signed_url_payload = True
                self._windows[kind] = now + 3 * self.options.fault_interval
        elif kind == "forged_webhooks":
            self.forge_webhooks()
        elif kind == "webhook_replay":
            self.replay_webhook()

    def _end_windows(self, now: float) -> None:
        for kind, until in list(self._windows.items()):
            if now < until:
                continue
            del self._windows[kind]
            if kind == "api_key_revoked":
                self.sim.configure(api_key=self._api_key)
            elif kind == "webhook_signed_url_payload":
                self.sim.faults.signed_url_payload = False

    def _calm_rates(self) -> None:
        with self.sim.lock:
            faults = self.sim.faults
            faults.error_5xx_rate = 0.0
            faults.webhook_drop_rate = 0.0
            faults.webhook_duplicate_rate = 0.0
            faults.webhook_reorder = False

    def stop(self) -> None:
        """End the schedule and every fault, so the pipeline can settle."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        self._end_windows(float("inf"))
        self._calm_rates()
        with self.sim.lock:
            faults = self.sim.faults
            faults.rate_limit_storm_until = 0.0
            faults.rate_limit_storm_requests = 0
            faults.lose_post_response = 0
            faults.fail_batches = 0
            faults.signed_url_payload = False
        with self._lock:
            self._tokens.clear()

    def uninstall(self) -> None:
        self._patches.undo()

    # webhooks an attacker, a broken sender or a replay could make
    def _post(self, case: str, body: bytes, headers: dict[str, str]) -> int:
        status = self._send(body, headers)
        self.webhook_replies.append((case, status))
        return status

    def _send(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            return httpx.post(
                self.sandbox.webhook_url,
                content=body,
                headers={"content-type": "application/json", **headers},
                timeout=15,
            ).status_code
        except httpx.HTTPError:
            return 0

    def forge_webhooks(self) -> None:
        batch_id = self._some_batch_id() or "bpr_forged"
        body = _event(f"evt_forged_{uuid.uuid4().hex[:12]}", batch_id)
        now = int(time.time())
        secret = self.webhook_secret
        cases = [
            ("no signature", body, {}),
            ("wrong secret", body, signature_headers("wss_attacker_guess", body)),
            ("tampered body", body.replace(b"processed", b"failed"), signature_headers(secret, body)),
            ("stale timestamp", body, signature_headers(secret, body, now - 600)),
            ("future timestamp", body, signature_headers(secret, body, now + 600)),
            ("not JSON", b"{not json", signature_headers(secret, b"{not json")),
            ("huge body", b"x" * 300_000, signature_headers(secret, b"x" * 300_000)),
        ]
        for case, content, headers in cases:
            self._post(case, content, headers)
            self.counts["forged_webhooks"] += 1
        unknown = json.dumps(
            {"eventId": f"evt_{uuid.uuid4().hex[:12]}", "eventType": "workflow_run.completed", "payload": {}}
        ).encode()
        self._post("unknown event type (validly signed)", unknown, signature_headers(secret, unknown))
        self.counts["webhook_unknown_event_type"] += 1

    def replay_webhook(self) -> None:
        """A validly signed batch event for a batch that exists, under a new event id: collection again."""
        batch_id = self._some_batch_id(finished=True)
        if not batch_id:
            return
        body = _event(f"evt_replay_{uuid.uuid4().hex[:12]}", batch_id)
        # Sent as Extend sends: a 5xx (an injected webhook crash may take this request) is retried, signed
        # anew, and the last answer is the one checked.
        for _ in range(3):
            status = self._send(body, signature_headers(self.webhook_secret, body))
            if status and status < 500:
                break
            time.sleep(1.0)
        self.webhook_replies.append(("replayed batch event", status))
        self.counts["webhook_replay"] += 1

    def _some_batch_id(self, finished: bool = False) -> str | None:
        with self.sim.lock:
            batches = [
                b.id for b in self.sim.engine.batches.values() if not finished or b.status != "PENDING"
            ]
        return random.choice(batches) if batches else None


def _event(event_id: str, batch_id: str, event_type: str = "batch_processor_run.processed") -> bytes:
    payload = {"object": "batch_run", "id": batch_id, "status": "PROCESSED", "runCount": 1}
    return json.dumps({"eventId": event_id, "eventType": event_type, "payload": payload}).encode()


# -- driving the sandbox ---------------------------------------------------------------------------


# The invoices route forwards user metadata, so the run covers both intake paths: reading each object
# (metadata, objects deleted before intake) and reading nothing but the notification.
RELIABILITY_ROUTES = [{**r, "forwardUserMetadata": r["name"] == "invoices"} for r in EXAMPLE_ROUTES]


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


class Driver:
    """Uploads the workload and the adversarial SQS messages; counts what it sent."""

    def __init__(self, sandbox: Sandbox, options: RunOptions, exp: Expectations) -> None:
        self.sandbox = sandbox
        self.options = options
        self.exp = exp
        self.s3 = sandbox.deployment.session.client("s3")
        self.sqs = sandbox.deployment.session.client("sqs")
        self.bucket = sandbox.deployment.resources.drop_bucket
        self.counts: Counter[str] = Counter()
        self.uploaded_versions = 0
        self.stopping = threading.Event()  # set when the run is interrupted: no more uploads

    def put(self, planned: Planned) -> None:
        if self.stopping.is_set():
            return
        self.s3.put_object(Bucket=self.bucket, Key=planned.key, Body=planned.body, Metadata=planned.metadata)

    def upload(self, files: list[Planned]) -> None:
        waves = max(1, int(self.options.upload_seconds // 3))
        size = -(-len(files) // waves)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            for number, start in enumerate(range(0, len(files), size)):
                list(pool.map(self.put, files[start : start + size]))
                if self.stopping.is_set():
                    return
                if number == 0 and self.options.adversarial:
                    self.send_adversarial_messages()
                pause = started + (number + 1) * 3 - time.monotonic()
                if pause > 0 and start + size < len(files):
                    time.sleep(pause)
        self.uploaded_versions = sum(1 for f in files if f.key not in self.exp.folder_markers)
        if self.options.adversarial:
            self.after_uploads(files)

    def after_uploads(self, files: list[Planned]) -> None:
        # A new version of an object already uploaded: S3 names each version in its notification.
        self.put(Planned(OVERWRITTEN_KEY, _pdf(["STATEMENT\nReference: v2"])))
        self.uploaded_versions += 1
        # A duplicate notification (without a version id, as from an unversioned bucket: intake asks S3
        # for the version) for a file that is already tracked.
        regular = next(f for f in files if f.key.startswith("invoices/2026/"))
        self.wait_tracked(regular.key)
        self.send(_record_message(self.bucket, regular.key, len(regular.body)))
        self.counts["duplicate_s3_notification"] += 1

    def wait_tracked(self, key: str, timeout: float = 120.0) -> None:
        files = self.sandbox.pipeline.runtime("intake").files
        deadline = time.monotonic() + timeout
        while (
            time.monotonic() < deadline
            and not self.stopping.is_set()
            and not files.versions(self.bucket, key)
        ):
            time.sleep(0.5)

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.sandbox.deployment.arrivals_queue_url, MessageBody=body)

    def send_adversarial_messages(self) -> None:
        test_event = {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2026-01-01T00:00:00.000Z",
            "Bucket": self.bucket,
            "RequestId": "R1",
            "HostId": "H1",
        }
        removed = json.loads(_record_message(self.bucket, "invoices/adversarial/removed.pdf", 10))
        removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
        messages = {
            "s3_test_event": json.dumps(test_event),
            "object_removed_event": json.dumps(removed),
            "foreign_bucket_event": _record_message("someone-elses-bucket", "invoices/foreign.pdf", 10),
            "object_deleted_before_intake": _record_message(
                self.bucket, VANISHED_KEY, 10, version_id=VANISHED_VERSION
            ),
        }
        for kind, body in messages.items():
            self.send(body)
            self.counts[kind] += 1
        self.exp.rejected[VANISHED_KEY] = "OBJECT_NOT_FOUND"
        self.exp.synthetic_items.add((VANISHED_KEY, VANISHED_VERSION))
        for body in ("this is not JSON", json.dumps({"Hello": "not an S3 event"})):
            self.send(body)
            self.exp.malformed_bodies.add(body)
            self.counts["malformed_sqs_body"] += 1


def _record_message(bucket: str, key: str, size: int, version_id: str | None = None) -> str:
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0" * 32}
    if version_id:
        obj["versionId"] = version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "eventTime": datetime.now(UTC).isoformat(),
        "s3": {"bucket": {"name": bucket}, "object": obj},
    }
    return json.dumps({"Records": [record]})


# -- observing -----------------------------------------------------------------------------------------


def scan(client: Any, table: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    return scan_all(client, TableName=table, ConsistentRead=True, **kwargs)


def progress_snapshot(sandbox: Sandbox) -> tuple[Counter[str], int]:
    """(files by status, open submissions): one projected scan of each table."""
    ddb = sandbox.deployment.session.client("dynamodb")
    resources = sandbox.deployment.resources
    names = {"#s": "status"}
    statuses = Counter(
        i["status"]
        for i in scan(ddb, resources.files_table, ProjectionExpression="#s", ExpressionAttributeNames=names)
    )
    names = {"#s": "state"}
    open_count = sum(
        1
        for i in scan(ddb, resources.batches_table, ProjectionExpression="#s", ExpressionAttributeNames=names)
        if i["state"] in BatchState.OPEN
    )
    return statuses, open_count


def sim_get(sandbox: Sandbox, path: str) -> Any:
    return httpx.get(f"{sandbox.simulator.base_url}{path}", timeout=120).json()


def settle(sandbox: Sandbox, timeout: float = 120.0) -> dict[str, int]:
    """Wait until webhooks are delivered and the flush, results and arrivals queues are empty; what was
    still busy at the end (empty when everything settled)."""
    deployment = sandbox.deployment
    queues = {
        "flush": deployment.resources.flush_queue_url,
        "results": deployment.resources.results_queue_url,
        "arrivals": deployment.arrivals_queue_url,
    }
    deadline = time.monotonic() + timeout
    quiet = 0
    busy: dict[str, int] = {}
    sqs = deployment.session.client("sqs")
    while time.monotonic() < deadline:
        busy = {name: queue_depth(sqs, url) for name, url in queues.items()}
        busy["webhooks"] = sim_get(sandbox, "/_sim/stats")["webhooksPending"]
        busy = {name: count for name, count in busy.items() if count}
        quiet = 0 if busy else quiet + 1
        if quiet >= 3:
            return {}
        time.sleep(1.0)
    return busy


# -- the checker ---------------------------------------------------------------------------------------


@dataclass
class State:
    """Everything the checks read, gathered once at the end of a run."""

    files: list[dict[str, Any]]
    submissions: list[dict[str, Any]]
    sim_batches: list[dict[str, Any]]
    drop_versions: list[dict[str, Any]]
    result_versions: Counter[str]
    result_bodies: dict[str, dict[str, Any]]
    manifests: dict[str, list[dict[str, Any]]]
    notifications: list[dict[str, Any]]
    dlq_bodies: dict[str, list[str]]
    log_text: str = ""
    secrets: list[str] = field(default_factory=list)
    webhook_replies: list[tuple[str, int]] = field(default_factory=list)
    # fileId -> when each write of its Files item returned, in order (None: not recorded)
    write_times: dict[str, list[float]] | None = None


class FilesWriteTimes:
    """When each write of a Files item returned. Every handler runs in this process and reaches DynamoDB
    through botocore, so one hook on the client sees them all (instrumentation, not a fault): under load,
    the gap between a file's queuedAt and the write that makes it claimable is seconds, and the I2 check
    must not count a file as waiting before a batch could see it."""

    WRITES = frozenset({"PutItem", "UpdateItem"})

    def __init__(self, table: str) -> None:
        self.table = table
        self.times: defaultdict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        self._original: Any = None

    def install(self) -> None:
        from botocore.client import BaseClient

        original = self._original = BaseClient._make_api_call
        recorder = self

        def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
            response = original(client, operation, params)  # a refused conditional write raises
            if operation in recorder.WRITES and params.get("TableName") == recorder.table:
                key = params.get("Item") or params.get("Key") or {}
                file_key, version = key.get("fileKey", {}).get("S"), key.get("versionId", {}).get("S")
                if file_key and version:
                    with recorder._lock:
                        recorder.times[f"{file_key}#{version}"].append(time.time())
            return response

        BaseClient._make_api_call = recorded  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            from botocore.client import BaseClient

            BaseClient._make_api_call = self._original  # type: ignore[method-assign]
            self._original = None

    def snapshot(self) -> dict[str, list[float]]:
        with self._lock:
            return {fid: sorted(times) for fid, times in self.times.items()}


def gather(
    sandbox: Sandbox,
    log_text: str = "",
    webhook_replies: list[tuple[str, int]] | None = None,
    write_times: dict[str, list[float]] | None = None,
) -> State:
    deployment = sandbox.deployment
    resources = deployment.resources
    session = deployment.session
    ddb, s3 = session.client("dynamodb"), session.client("s3")
    files = [with_derived_names(f) for f in scan(ddb, resources.files_table)]
    submissions = list(scan(ddb, resources.batches_table))
    drop_versions = [
        v
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=resources.drop_bucket)
        for v in page.get("Versions", [])
    ]
    result_versions: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=resources.results_bucket):
        result_versions.update(v["Key"] for v in page.get("Versions", []))

    def read(key: str) -> tuple[str, Any]:
        body = s3.get_object(Bucket=resources.results_bucket, Key=key)["Body"].read().decode("utf-8")
        if key.startswith("manifests/"):
            return key, [json.loads(line) for line in body.splitlines() if line]
        return key, json.loads(body)

    with ThreadPoolExecutor(max_workers=16) as pool:
        bodies = dict(pool.map(read, list(result_versions)))
    secret_values = [
        session.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        for arn in (resources.api_key_secret, resources.webhook_secret)
    ]
    return State(
        files=files,
        submissions=submissions,
        sim_batches=sim_get(sandbox, "/_sim/batches")["batches"],
        drop_versions=drop_versions,
        result_versions=result_versions,
        result_bodies={k: v for k, v in bodies.items() if k.startswith("results/")},
        manifests={k: v for k, v in bodies.items() if k.startswith("manifests/")},
        notifications=drain_notifications(sandbox),
        dlq_bodies={name: peek_queue(sandbox, url) for name, url in deployment.dlq_urls.items()},
        log_text=log_text,
        secrets=secret_values,
        webhook_replies=list(webhook_replies or []),
        write_times=write_times,
    )


def drain_notifications(sandbox: Sandbox) -> list[dict[str, Any]]:
    return [n.message for n in aws.drain_notifications(sandbox.deployment, sandbox.notifications_queue_url)]


def peek_queue(sandbox: Sandbox, url: str) -> list[str]:
    """Bodies in a queue, read without deleting (each stays hidden for the visibility timeout)."""
    sqs = sandbox.deployment.session.client("sqs")
    bodies: list[str] = []
    for _ in range(1000):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=60).get(
            "Messages", []
        )
        if not messages:
            break
        bodies += [m["Body"] for m in messages]
    return bodies


@dataclass(frozen=True)
class QueueStay:
    """A time a file waited in the queue: from ``start``, at queue position ``place`` (its queuedAt), until
    ``taken_by`` claimed it (None while it still waits)."""

    start: float
    place: float
    taken_by: str | None


def queue_stays(f: dict[str, Any], write_times: list[float] | None = None) -> list[QueueStay]:
    """Each time a file waited in the queue. It arrives queued, and each history entry is a claim that sent
    it back: a requeued attempt puts it at the back of the queue, a submission that never reached Extend
    gives it back its old place. With the times its item's writes returned, a stay starts when the write
    that queued it returned (the first write at or after the stay's timestamp), not at the timestamp."""
    if f["status"] == FileStatus.REJECTED:
        return []

    def visible(stamp: float) -> float:
        return next((t for t in write_times or () if t >= stamp - CLOCK_TOLERANCE), stamp)

    stays = []
    place = parse_iso(f["arrivedAt"]).timestamp()
    start = visible(place)
    for entry in f.get("history", []):
        stays.append(QueueStay(start, place, entry.get("submissionId")))
        stamp = parse_iso(entry["at"]).timestamp()
        start = visible(stamp)
        if entry.get("reason") != SUBMISSION_NOT_SENT:
            place = stamp
    stays.append(QueueStay(start, place, f.get("submissionId")))
    return stays


def _claim_window(submission: dict[str, Any]) -> tuple[float, float]:
    """When a submission took its files: after it was created, before its POST was answered."""
    created = parse_iso(submission["createdAt"]).timestamp()
    answered = submission.get("submittedAt")
    return created, parse_iso(answered).timestamp() if answered else created


def _input_ids(item: dict[str, Any]) -> dict[str, str]:
    return ((item.get("metadata") or {}).get("batchdrop")) or {}


def check(state: State, exp: Expectations, settings: Any, drop_bucket: str) -> dict[str, list[str]]:
    """Every violation found, by invariant. See docs/reliability.md for the precise definitions."""
    v: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    files = {f["fileId"]: f for f in state.files}
    subs = {s["submissionId"]: s for s in state.submissions}
    routes = {r.name: r for r in settings.routes}

    # -- I1: every object version has exactly one item, and every item is terminal ---------------------
    expected_items = {
        (ver["Key"], ver["VersionId"])
        for ver in state.drop_versions
        if not (ver["Key"].endswith("/") and ver["Size"] == 0)
    } | exp.synthetic_items
    items = Counter((f["key"], f["versionId"]) for f in state.files if f["bucket"] == drop_bucket)
    for key_version in sorted(expected_items - set(items)):
        v["I1"].append(f"object version {key_version!r} has no Files item")
    for key_version in sorted(set(items) - expected_items):
        v["I1"].append(f"Files item {key_version!r} matches no object version")
    for f in state.files:
        if f["bucket"] != drop_bucket:
            v["I1"].append(f"{f['fileId']!r} is tracked although it is not in the drop bucket")
        if f["key"] in exp.folder_markers:
            v["I1"].append(f"folder marker {f['key']!r} is tracked")
        if f["status"] not in FileStatus.TERMINAL:
            v["I1"].append(f"{f['fileId']!r} ended {f['status']}")

    # -- the batches Extend holds --------------------------------------------------------------------
    appearances: Counter[str] = Counter()
    late_appearances: Counter[str] = Counter()  # in the batch of a detected late duplicate
    run_of: dict[tuple[str, str], str] = {}
    batches_of_submission: defaultdict[str, list[str]] = defaultdict(list)
    late = {
        sid
        for sid, s in subs.items()
        if s.get("state") == BatchState.ABANDONED and s.get("lateBatchAt") and s.get("batchId")
    }
    for batch in state.sim_batches:
        ids = [_input_ids(item) for item in batch["inputs"]]
        if not any(ids):
            continue  # a batch nobody here submitted (another user of the workspace): not ours to check
        sids = {i.get("submissionId") for i in ids}
        if len(sids) != 1 or None in sids:
            v["I3"].append(f"batch {batch['id']} carries submission ids {sorted(map(str, sids))}")
            continue
        (sid,) = sids
        batches_of_submission[sid].append(batch["id"])
        for item_ids, run_id in zip(ids, batch["runIds"], strict=True):
            appearances[item_ids["fileId"]] += 1
            if sid in late:
                late_appearances[item_ids["fileId"]] += 1
            run_of[(sid, item_ids["fileId"])] = run_id
        submission = subs.get(sid)
        if submission is None:
            v["I3"].append(f"batch {batch['id']} names submission {sid}, which does not exist")
            continue
        _check_batch(
            v, batch, submission, [i["fileId"] for i in ids], files, subs, routes, settings, state.write_times
        )

    # -- I3: no file in two batches per attempt ------------------------------------------------------
    for sid, batch_ids in batches_of_submission.items():
        if len(batch_ids) > 1:
            v["I3"].append(f"submission {sid} reached Extend {len(batch_ids)} times: {batch_ids}")
        if subs.get(sid, {}).get("state") == BatchState.ABANDONED and sid not in late:
            v["I3"].append(f"submission {sid} is ABANDONED (files requeued) but Extend has it")
    if len(late) > exp.late_duplicates_allowed:
        v["I3"].append(
            f"{len(late)} duplicate submissions reached Extend (late batches of abandoned submissions: "
            f"{sorted(late)}); the run forced {exp.late_duplicates_allowed}"
        )
    for fid in appearances:
        if fid not in files:
            v["I3"].append(f"Extend received {fid!r}, which is not tracked")
    for fid, f in files.items():
        # A run whose URL had expired goes round again without using an attempt (the expiry was ours).
        expired = sum(1 for h in f.get("history", []) if h.get("reason") == URL_EXPIRED)
        sent = f.get("attempts", 0) + expired
        # A late duplicate's batch holds the file once more than its attempts say, unless the late
        # submission took the file back (its record is then that batch's run).
        extra = late_appearances[fid] if f.get("submissionId") not in late else 0
        if appearances[fid] - extra != sent:
            v["I3"].append(
                f"{fid!r} is in {appearances[fid]} batches for {f.get('attempts', 0)} attempts "
                f"and {expired} expired URLs"
            )

    # -- I4: one result per file attempt, one notification per batch outcome --------------------------
    claimed_objects: set[str] = set()
    for fid, f in files.items():
        if f["status"] in (FileStatus.PROCESSED, FileStatus.FAILED) and f.get("runId"):
            expected_run = run_of.get((f.get("submissionId"), fid))
            if expected_run != f["runId"]:
                v["I4"].append(f"{fid!r} records run {f['runId']} but its batch made run {expected_run}")
        derived = result_key_for(f)
        if f["status"] != FileStatus.PROCESSED:
            if derived in state.result_versions:
                v["results_vs_table"].append(f"{fid!r} is {f['status']} but has a result object")
            continue
        key = f.get("resultKey")
        claimed_objects.add(key)
        if state.result_versions.get(key, 0) != 1:
            v["I4"].append(f"result of {fid!r} was written {state.result_versions.get(key, 0)} times")
        body = state.result_bodies.get(key)
        if body is None:
            v["results_vs_table"].append(f"{fid!r} is PROCESSED but {key!r} does not exist")
            continue
        ours = body.get("batchdrop", {})
        if (body.get("id"), ours.get("fileId"), ours.get("submissionId")) != (
            f.get("runId"),
            fid,
            f.get("submissionId"),
        ):
            v["results_vs_table"].append(f"result object {key!r} does not describe {fid!r}'s recorded run")
    for key in sorted(set(state.result_bodies) - claimed_objects):
        v["results_vs_table"].append(f"result object {key!r} belongs to no PROCESSED file")

    messages: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for message in state.notifications:
        if message.get("eventType") in ("batch.completed", "batch.failed"):
            messages[message.get("submissionId")].append(message)
    for sid, submission in subs.items():
        sent = messages.get(sid, [])
        finished = submission["state"] in (BatchState.COMPLETED, BatchState.FAILED)
        if finished and len(sent) != 1:
            v["I4"].append(f"submission {sid} ({submission['state']}) was announced {len(sent)} times")
        elif not finished and sent:
            v["I4"].append(f"submission {sid} is {submission['state']} but was announced")
        for message in sent[:1]:
            counts = ("processedCount", "failedCount", "requeuedCount")
            if [message.get(c) for c in counts] != [submission.get(c, 0) for c in counts]:
                v["I4"].append(f"the announcement of {sid} disagrees with its counts")
        if finished:
            lines = state.manifests.get(submission.get("manifestKey") or "")
            if lines is None:
                v["results_vs_table"].append(f"submission {sid} has no manifest")
            elif sid in batches_of_submission and len(lines) != submission.get("fileCount"):
                v["results_vs_table"].append(f"manifest of {sid} has {len(lines)} lines")
    for sid in messages:
        if sid not in subs:
            v["I4"].append(f"a batch notification names unknown submission {sid}")
    for sid in batches_of_submission:
        if sid in late:
            continue  # its files' outcomes are checked file by file above
        if subs.get(sid, {}).get("state") not in (BatchState.COMPLETED, BatchState.FAILED):
            v["I1"].append(f"submission {sid} reached Extend but its outcome was never recorded")

    # -- I5: forged requests changed nothing; no secret or URL signature in the logs ------------------
    for case, status in state.webhook_replies:
        validly_signed = case in ("unknown event type (validly signed)", "replayed batch event")
        if not validly_signed and not 400 <= status < 500:
            v["I5"].append(f"webhook '{case}' was answered {status}, not refused")
        if validly_signed and status != 200:
            v["I5"].append(f"webhook '{case}' was answered {status}")
    for secret in state.secrets:
        if secret and secret in state.log_text:
            v["I5"].append("a secret value appears in the logs")
    for marker in ("Signature=", "X-Amz-Signature", "x-extend-request-signature"):
        if marker.lower() in state.log_text.lower():
            v["I5"].append(f"the logs contain {marker!r}")
    for name, bodies in state.dlq_bodies.items():
        unexpected = [b for b in bodies if not (name == "arrivals" and b in exp.malformed_bodies)]
        if unexpected:
            v["I1"].append(f"{len(unexpected)} unexpected message(s) in the {name} DLQ: {unexpected[:2]}")

    # -- I6: bad input gets its specific reason ------------------------------------------------------
    by_key: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in state.files:
        by_key[f["key"]].append(f)
    for key, reason in exp.rejected.items():
        got = [(f["status"], f.get("failureReason")) for f in by_key.get(key, [])]
        if got != [(FileStatus.REJECTED, reason)]:
            v["I6"].append(f"{key!r} should be REJECTED {reason}, is {got}")
    for key, reason in exp.failed.items():
        got = [(f["status"], f.get("failureReason")) for f in by_key.get(key, [])]
        if got != [(FileStatus.FAILED, reason)]:
            v["I6"].append(f"{key!r} should be FAILED {reason}, is {got}")
    retryable = set(settings.retryable_failure_reasons)
    for key, reason in exp.exhausted.items():
        # Every attempt failed retryably; the last one's reason is the marker's unless a fault (an expired
        # URL, a batch Extend failed) failed that attempt first with another retryable reason.
        got = [(f["status"], f.get("failureReason"), f.get("attempts")) for f in by_key.get(key, [])]
        if len(got) != 1 or got[0][0] != FileStatus.FAILED or got[0][2] != settings.max_attempts:
            v["I6"].append(f"{key!r} should be FAILED {reason} after {settings.max_attempts} attempts: {got}")
        elif got[0][1] != reason and got[0][1] not in retryable:
            v["I6"].append(f"{key!r} should be FAILED {reason} (or another retryable reason): {got}")
    for f in state.files:
        if f["status"] in (FileStatus.REJECTED, FileStatus.FAILED) and not (
            f.get("failureReason") and f.get("failureMessage")
        ):
            v["I6"].append(f"{f['fileId']!r} is {f['status']} without a reason and message")
        expected_bad = f["key"] in exp.rejected or f["key"] in exp.failed or f["key"] in exp.exhausted
        if f["status"] in (FileStatus.REJECTED, FileStatus.FAILED) and not expected_bad:
            retried = [
                h for h in f.get("history", []) if h.get("reason") in settings.retryable_failure_reasons
            ]
            if not (f["status"] == FileStatus.FAILED and len(retried) + 1 >= settings.max_attempts):
                v["I6"].append(f"{f['fileId']!r} is {f['status']} {f.get('failureReason')} unexpectedly")
    return v


def result_key_for(f: dict[str, Any]) -> str:
    from batchdrop_core.tracking import TrackedFile

    return result_key(TrackedFile.from_values(f))


def _check_batch(
    v: dict[str, list[str]],
    batch: dict[str, Any],
    submission: dict[str, Any],
    fids: list[str],
    files: dict[str, dict[str, Any]],
    subs: dict[str, dict[str, Any]],
    routes: dict[str, Any],
    settings: Any,
    write_times: dict[str, list[float]] | None = None,
) -> None:
    """I2 for one batch Extend holds: size, one route, and a partial batch only when it was due."""
    sid = submission["submissionId"]
    size = len(fids)
    route = routes.get(submission["route"])
    if size > settings.max_batch_size or size > 1000:
        v["I2"].append(f"batch {batch['id']} has {size} files (maxBatchSize {settings.max_batch_size})")
    file_routes = {files[fid].get("route") for fid in fids if fid in files}
    if file_routes != {submission["route"]} or route is None:
        v["I2"].append(f"batch {batch['id']} of route {submission['route']} holds files of {file_routes}")
        return
    if (batch["type"], batch["processor"]["id"]) != (route.type, route.processor_id):
        v["I2"].append(f"batch {batch['id']} went to {batch['type']} {batch['processor']['id']}")
    if size >= settings.max_batch_size:
        return
    created, claim_end = _claim_window(submission)
    stays = [stay for fid in fids if fid in files for stay in queue_stays(files[fid])]
    queued = [stay.place for stay in stays if stay.taken_by == sid]
    if not queued:
        v["I2"].append(f"batch {batch['id']}: its files' items do not show the claim")
        return
    waited = created - min(queued)
    if waited + CLOCK_TOLERANCE < settings.max_wait_seconds:
        v["I2"].append(
            f"partial batch {batch['id']} ({size} files) went out when its oldest file had waited only "
            f"{waited:.2f}s (maxWaitSeconds {settings.max_wait_seconds})"
        )
    members = set(fids)
    for fid, f in files.items():
        if f.get("route") != submission["route"] or fid in members:
            continue
        times = write_times.get(fid) if write_times is not None else None
        slack = INTAKE_VISIBILITY_SLACK if times is None else CLOCK_TOLERANCE
        for stay in queue_stays(f, times):
            taken_at = _claim_window(subs[stay.taken_by])[0] if stay.taken_by in subs else float("inf")
            if stay.start < created - slack and taken_at > claim_end + CLOCK_TOLERANCE:
                v["I2"].append(
                    f"partial batch {batch['id']} ({size} files) left {fid!r} waiting in the queue"
                )
                break


# -- logs ----------------------------------------------------------------------------------------------


class _NotBatchdrop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("batchdrop")


class LogCapture:
    """Sends the handlers' Powertools logs, their EMF metric blobs (printed to stdout) and other warnings
    to a file, to keep the console readable and to scan them for secrets afterwards."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream = path.open("a", encoding="utf-8")
        self._previous: Any = None
        self._stdout: Any = None
        self._root = logging.StreamHandler(self._stream)
        self._root.setLevel(logging.WARNING)
        self._root.addFilter(_NotBatchdrop())

    def __enter__(self) -> LogCapture:
        self._previous = powertools_logger.registered_handler.setStream(self._stream)
        logging.getLogger().addHandler(self._root)
        self._stdout, sys.stdout = sys.stdout, self._stream
        return self

    def __exit__(self, *exc: object) -> None:
        sys.stdout = self._stdout
        logging.getLogger().removeHandler(self._root)
        if self._previous is not None:
            powertools_logger.registered_handler.setStream(self._previous)
        self._stream.close()

    def text(self) -> str:
        self._stream.flush()
        return self.path.read_text(encoding="utf-8", errors="replace")


# -- the run -------------------------------------------------------------------------------------------


def fault_counts(
    injector: FaultInjector | None, driver: Driver, stats: dict[str, Any], state: State
) -> dict[str, int]:
    counters = stats["counters"]
    requests = stats["requests"]
    posts_5xx = sum(codes.get("500", 0) for route, codes in requests.items() if route.endswith("/batch"))
    counts: dict[str, int] = {
        "http_5xx": counters["errors_injected"],
        "http_5xx_on_batch_post": posts_5xx,
        "lost_post_response": counters["responses_lost"],
        "http_429": counters["rate_limited"],
        "http_401_while_key_revoked": sum(codes.get("401", 0) for codes in requests.values()),
        "webhook_dropped": counters["webhooks_dropped"],
        "webhook_duplicated": counters["webhooks_duplicated"],
        "webhook_reordered": counters["webhooks_sent"] if injector else 0,
        "expired_url_downloads_refused": counters["downloads_failed"],
    }
    if injector:
        counts.update(
            (kind, count)
            for kind, count in sorted(injector.counts.items())
            if kind not in ("lost_post_response", "batch_failed_by_extend")
        )
        counts["webhook_dropped"] = counters["webhooks_dropped"] + injector.counts["webhook_dropped"]
    counts["batch_failed_by_extend"] = sum(1 for b in state.sim_batches if b["status"] == "FAILED")
    counts.update(driver.counts)
    return counts


def run(options: RunOptions) -> dict[str, Any]:
    """One run; the report (``violationCount`` 0 when every invariant held)."""
    started_at = datetime.now(UTC)
    started = time.monotonic()
    log_path = options.log_path or Path(tempfile.mkstemp(prefix="batchdrop-reliability-", suffix=".log")[1])
    exp = Expectations()
    planned = plan_files(options, exp)
    terminal = sys.stdout  # LogCapture takes sys.stdout for the handlers' metric blobs
    say = functools.partial(print, file=terminal, flush=True) if options.progress else (lambda *a, **k: None)
    with LogCapture(log_path) as logs:
        sandbox = Sandbox(sandbox_options(options)).start()
        injector: FaultInjector | None = None
        write_times = FilesWriteTimes(sandbox.deployment.resources.files_table)
        write_times.install()
        try:
            secret_arn = sandbox.deployment.resources.webhook_secret
            secrets = sandbox.deployment.session.client("secretsmanager")
            webhook_secret = secrets.get_secret_value(SecretId=secret_arn)["SecretString"]
            driver = Driver(sandbox, options, exp)
            if options.faults:
                injector = FaultInjector(sandbox, options, webhook_secret)
                injector.install()
                injector.start()
            say(f"sandbox up; dropping {len(planned)} objects over ~{options.upload_seconds:.0f}s")
            with ThreadPoolExecutor(max_workers=1) as pool:
                uploading = pool.submit(driver.upload, planned)
                try:
                    finished = wait_for_terminal(sandbox, exp, driver, uploading, options, started, say)
                    uploading.result()
                except Interrupted:
                    driver.stopping.set()  # the pool then waits only for the puts in hand
                    raise
            if injector:
                injector.stop()
            still_busy = settle(sandbox)
            if injector:
                # What the last faults left (a redelivered message, a held webhook) has been handled.
                injector.uninstall()
            say("checking the invariants…")
            stats = sim_get(sandbox, "/_sim/stats")
            replies = injector.webhook_replies if injector else []
            state = gather(sandbox, logs.text(), replies, write_times.snapshot())
            violations = check(state, exp, sandbox.settings, sandbox.deployment.resources.drop_bucket)
            report = build_report(
                options, started_at, time.monotonic() - started, state, violations, stats, injector, driver
            )
            report["finished"] = finished
            report["settled"] = not still_busy
            report["stillBusyAtCheck"] = still_busy
            report["logPath"] = str(log_path)
            return report
        except Interrupted as stop:
            print(f"{stop}: stopping the sandbox (Ctrl-C again to force exit)…", file=terminal, flush=True)
            raise
        finally:
            if injector:
                injector.stop()
                injector.uninstall()
            write_times.uninstall()
            sandbox.stop()


def wait_for_terminal(
    sandbox: Sandbox,
    exp: Expectations,
    driver: Driver,
    uploading: Any,
    options: RunOptions,
    started: float,
    say: Callable[..., None],
) -> bool:
    deadline = started + options.timeout
    next_line = 0.0
    while time.monotonic() < deadline:
        statuses, open_submissions = progress_snapshot(sandbox)
        tracked = sum(statuses.values())
        terminal = sum(statuses[s] for s in FileStatus.TERMINAL)
        elapsed = time.monotonic() - started
        if elapsed >= next_line:
            shown = ", ".join(f"{s.lower()} {statuses[s]}" for s in FileStatus.ALL if statuses[s])
            say(f"[{elapsed:6.0f}s] tracked {tracked}: {shown}; open batches {open_submissions}")
            next_line = elapsed + 30
        if uploading.done():
            if uploading.exception() is not None:
                return False
            expected = driver.uploaded_versions + len(exp.synthetic_items)
            if tracked >= expected and terminal == tracked and open_submissions == 0:
                return True
        time.sleep(options.progress_interval)
    return False


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
    at_extend = {_input_ids(b["inputs"][0]).get("submissionId"): b for b in state.sim_batches if b["inputs"]}
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
        "dlq": {name: len(bodies) for name, bodies in state.dlq_bodies.items()},
        "violationCount": sum(len(found) for found in violations.values()),
        "violations": {
            name: {"count": len(found), "examples": found[:MAX_LISTED]} for name, found in violations.items()
        },
    }


# -- the figures in docs/reliability.md -----------------------------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make reliability ARGS=...", description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000, help="regular files to drop (default 5000)")
    parser.add_argument("--seed", type=int, default=7, help="seed for the workload (default 7)")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--batch-size", type=int, default=200, help="maxBatchSize (default 200)")
    parser.add_argument("--upload-seconds", type=float, default=90.0, help="spread uploads over this long")
    parser.add_argument("--timeout", type=float, default=2400.0, help="give up waiting after this long")
    parser.add_argument("--no-faults", action="store_true", help="the same run without fault injection")
    parser.add_argument("--log", type=Path, help="where the pipeline's logs go (default: a temp file)")
    parser.add_argument("--short", action="store_true", help="the short run of make test (300 files)")
    parser.add_argument(
        "--scenario",
        choices=("all", "faults", "backfill", "adversity"),
        default="all",
        help="faults: the fault-injection run; backfill: a drop many times the bound on files at Extend "
        "at Extend's plan ratios (sandbox/backfill.py); adversity: long outages, a poison input, foreign "
        "and late batches (sandbox/adversity.py); all (default): the three, one after the other",
    )
    parser.add_argument(
        "--no-doc",
        action="store_true",
        help="do not write the figures into docs/reliability.md (a long run does)",
    )
    parser.add_argument(
        "--doc-from",
        type=Path,
        metavar="REPORT",
        help="only write docs/reliability.md's figures from a saved report",
    )
    args = parser.parse_args(argv)
    if args.files < 1:
        parser.error("--files must be 1 or more")
    if not 1 <= args.batch_size <= 1000:
        parser.error("--batch-size must be between 1 and 1000")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.doc_from:
        saved = json.loads(args.doc_from.read_text(encoding="utf-8"))
        saved.setdefault("machine", machine())  # reports written before they named their machine: this one
        write_figures(saved)
        print(f"wrote the figures of {args.doc_from} into {DOC}")
        return 0
    interrupt.install()  # Ctrl-C or SIGTERM stops the sandbox in order and says what was left
    ok = True
    if args.scenario in ("all", "faults") or args.short:
        ok = run_faults(args)
    if args.scenario in ("all", "backfill") and not args.short:
        ok = run_backfill(args) and ok
    if args.scenario in ("all", "adversity") and not args.short:
        ok = run_adversity(args) and ok
    return 0 if ok else 1


def run_faults(args: argparse.Namespace) -> bool:
    if args.short:
        options = short_options(seed=args.seed, faults=not args.no_faults, log_path=args.log)
    else:
        options = RunOptions(
            files=args.files,
            seed=args.seed,
            batch_size=args.batch_size,
            upload_seconds=args.upload_seconds,
            timeout=args.timeout,
            faults=not args.no_faults,
            log_path=args.log,
        )
    try:
        report = run(options)
    except Interrupted as stop:
        print(interrupt.summary(), flush=True)
        raise SystemExit(interrupt.finish(stop.exit_code)) from None
    text = json.dumps(report, indent=2, default=str)
    if args.report:
        args.report.write_text(text + "\n")
    summary = {k: report[k] for k in ("durationSeconds", "files", "batches", "faults", "violationCount")}
    print(json.dumps(summary, indent=2, default=str))
    for name, found in report["violations"].items():
        for example in found["examples"][:10]:
            print(f"VIOLATION {name}: {example}")
    print(f"logs: {report['logPath']}" + (f"; report: {args.report}" if args.report else ""))
    ok = report["violationCount"] == 0 and report["finished"]
    if not args.short and not args.no_doc:
        write_figures(report)  # violations included: the doc shows the last long run as it was
        print(f"figures written into {DOC}")
    print("PASS: every invariant held" if ok else "FAIL")
    return bool(ok)


def run_scenario(
    args: argparse.Namespace, name: str, scenario: Any, run: Callable[..., dict[str, Any]]
) -> bool:
    """One of the scenario modules (``run``, ``check``, ``write_figures``): the handlers' output to a log
    file, progress on the console, the report and its checks, the figures into the doc."""
    print(f"{name}: starting", flush=True)
    log_path = args.log or Path(tempfile.mkstemp(prefix=f"batchdrop-{name}-", suffix=".log")[1])
    terminal = sys.stdout  # LogCapture takes sys.stdout for the handlers' metric blobs
    try:
        with LogCapture(log_path) as logs:
            result = run(lambda m: print(m, file=terminal, flush=True), logs.text)
    except Interrupted as stop:
        print(interrupt.summary(), flush=True)
        raise SystemExit(interrupt.finish(stop.exit_code)) from None
    problems = scenario.check(result)
    print(json.dumps(result, indent=2, default=str))
    if not args.no_doc:
        scenario.write_figures(result, problems, DOC)
        print(f"{name} figures written into {DOC}")
    for problem in problems:
        print(f"{name.upper()}: {problem}")
    print(f"logs: {log_path}")
    print(f"PASS: the {name} run held every check" if not problems else f"FAIL: the {name} run")
    return not problems


def run_adversity(args: argparse.Namespace) -> bool:
    """Long outages, a poison input, foreign and late batches (sandbox/adversity.py)."""
    from sandbox import adversity

    return run_scenario(
        args,
        "adversity",
        adversity,
        lambda say, log_text: adversity.run(adversity.AdversityOptions(), say, log_text),
    )


def run_backfill(args: argparse.Namespace) -> bool:
    """The backfill scenario: a drop ten times the bound on files at Extend, at the plan's ratios."""
    from sandbox import backfill

    return run_scenario(
        args,
        "backfill",
        backfill,
        lambda say, _log_text: backfill.run(backfill.BackfillOptions(), progress=say),
    )


if __name__ == "__main__":
    sys.exit(main())
