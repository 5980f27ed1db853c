"""The short fault-injection run (issue 7 §1): a few hundred files, every fault kind, every invariant.

``make reliability`` runs the long version (5,000 files); docs/reliability.md defines each check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.reliability import ALL_FAULT_KINDS
from tests.e2e.test_e2e import assert_logs_hold_no_secret

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

# Effects counted by the simulator rather than by the run's own injection points.
OBSERVED_EFFECTS = (
    "http_5xx",
    "http_429",
    "webhook_duplicated",
    "webhook_reordered",
    "expired_url_downloads_refused",
)
ADVERSARIAL_MESSAGES = (
    "s3_test_event",
    "object_removed_event",
    "foreign_bucket_event",
    "object_deleted_before_intake",
    "malformed_sqs_body",
    "duplicate_s3_notification",
)


def test_every_fault_kind_is_injected_and_every_invariant_holds(tmp_path: Path) -> None:
    # As `make reliability ARGS=--short` runs it: a process of its own, so that nothing an earlier test
    # left in this interpreter (handler modules, patched methods, threads) changes what the faults hit.
    log_path, report_path = tmp_path / "short.log", tmp_path / "report.json"
    completed = subprocess.run(  # noqa: S603 - our own interpreter running the reliability module
        [
            sys.executable,
            "-m",
            "sandbox.reliability",
            "--short",
            "--log",
            str(log_path),
            "--report",
            str(report_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert report_path.exists(), f"no report (exit {completed.returncode}): {completed.stderr[-2000:]}"
    report = json.loads(report_path.read_text(encoding="utf-8"))

    faults = report["faults"]
    missing = [
        kind for kind in (*ALL_FAULT_KINDS, *OBSERVED_EFFECTS, *ADVERSARIAL_MESSAGES) if not faults.get(kind)
    ]
    assert not missing, f"fault kinds never injected: {missing}; schedule: {json.dumps(report['schedule'])}"
    assert report["finished"], "not every file reached a terminal state in time"
    assert report["violationCount"] == 0, json.dumps(report["violations"], indent=1)
    # The faults did bite: the expired URLs' files (without using an attempt) and the retryably failing
    # markers went round again, and the batch Extend failed was recorded and announced as failed
    assert report["files"]["requeues"].get("URL_EXPIRED", 0) >= 1
    assert report["files"]["requeues"].get("INTERNAL_ERROR", 0) >= 1
    assert report["batches"]["byState"].get("FAILED", 0) >= faults["batch_failed_by_extend"] >= 1
    assert report["notifications"].get("batch.failed", 0) == report["batches"]["byState"]["FAILED"]
    assert report["dlq"]["arrivals"] == 2  # exactly the two malformed bodies
    # Crashes, forged webhooks and a revoked key log their errors: still no secret and no signature
    logs = log_path.read_text(encoding="utf-8") + completed.stdout + completed.stderr
    assert "webhook rejected" in logs and "SimulatedCrash" in logs
    assert_logs_hold_no_secret(logs)
