"""Running the scenarios: the long fault run, and the adversity and backfill scenarios (``make
reliability``).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchdrop_core.tracking import (
    FileStatus,
)
from sandbox import interrupt
from sandbox.documents import _pdf
from sandbox.interrupt import Interrupted
from sandbox.local import Sandbox
from sandbox.machine import machine
from sandbox.reliability.checks import check
from sandbox.reliability.faults import FaultInjector
from sandbox.reliability.observe import (
    FilesWrites,
    LogCapture,
    gather,
    progress_snapshot,
    record_message,
    settle,
    sim_get,
)
from sandbox.reliability.plan import (
    OVERWRITTEN_KEY,
    VANISHED_KEY,
    VANISHED_VERSION,
    Expectations,
    Planned,
    RunOptions,
    plan_files,
    sandbox_options,
    short_options,
)
from sandbox.reliability.report import DOC, build_report, write_figures


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
        self.send(record_message(self.bucket, regular.key, len(regular.body)))
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
        removed = json.loads(record_message(self.bucket, "invoices/adversarial/removed.pdf", 10))
        removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
        messages = {
            "s3_test_event": json.dumps(test_event),
            "object_removed_event": json.dumps(removed),
            "foreign_bucket_event": record_message("someone-elses-bucket", "invoices/foreign.pdf", 10),
            "object_deleted_before_intake": record_message(
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
        write_times = FilesWrites(sandbox.deployment.resources.files_table)
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
        "and late batches (sandbox/adversity/); all (default): the three, one after the other",
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
    """Long outages, a poison input, foreign and late batches (sandbox/adversity/)."""
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
