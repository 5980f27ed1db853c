"""`batchdrop export`: one row per file of finished batches, JSON Lines or CSV, resumable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking import BatchState, FileStatus
from tests.helpers import CliSandbox


def finished_batch(sandbox: CliSandbox, route: str, keys: list[str]) -> str:
    """Files of ``route`` submitted in one batch, the first PROCESSED, the others FAILED; the batch done."""
    sandbox.upload(keys)
    sandbox.pipeline.pump()
    sandbox.json("flush", route)
    sandbox.pipeline.pump()
    rt = sandbox.rt
    files = [rt.files.versions(sandbox.drop_bucket, key)[0] for key in keys]
    sid = files[0].submission_id or ""
    for i, tracked in enumerate(files):
        if i == 0:
            assert rt.files.record_outcome(
                tracked,
                sid,
                status=FileStatus.PROCESSED,
                run_id=f"run_{i}",
                result_key=f"results/{tracked.key}/{tracked.version_id}.json",
                result_summary={"fields": 3},
            )
        else:
            assert rt.files.record_outcome(
                tracked, sid, status=FileStatus.FAILED, run_id=f"run_{i}", failure_reason="CORRUPT_FILE"
            )
    assert rt.batches.transition(sid, BatchState.OPEN, BatchState.COMPLETED, completedAt=now_iso())
    return sid


def test_export_writes_one_row_per_file_per_batch_and_resumes(sandbox: CliSandbox, tmp_path: Path) -> None:
    invoices = finished_batch(sandbox, "invoices", ["invoices/e-1.pdf", "invoices/e-2.pdf"])
    documents = finished_batch(sandbox, "documents", ["documents/d-1.txt"])
    sandbox.upload(["invoices/still-queued.pdf"])  # not in a finished batch: not exported
    sandbox.pipeline.pump()

    out = tmp_path / "export"
    first = sandbox.json("export", str(out))
    assert (first["batches"], first["written"], first["rows"]) == (2, 2, 3)
    lines = (out / "route=invoices" / f"{invoices}.jsonl").read_text().splitlines()
    rows = {row["key"]: row for row in map(json.loads, lines)}
    processed, failed = rows["invoices/e-1.pdf"], rows["invoices/e-2.pdf"]
    assert processed["status"] == "PROCESSED" and processed["resultSummary"] == {"fields": 3}
    bucket = sandbox.deployment.resources.results_bucket
    assert processed["resultUri"] == f"s3://{bucket}/results/invoices/e-1.pdf/{processed['versionId']}.json"
    assert (failed["status"], failed["failureReason"], failed["resultUri"]) == (
        "FAILED",
        "CORRUPT_FILE",
        None,
    )
    assert (out / "route=documents" / f"{documents}.jsonl").exists()

    # Run again: everything is there already, nothing is rewritten
    again = sandbox.json("export", str(out))
    assert (again["written"], again["skipped"]) == (0, 2)

    # CSV of one route, a header and a row per file
    as_csv = sandbox.json("export", str(tmp_path / "csv"), "--route", "invoices", "--format", "csv")
    assert (as_csv["batches"], as_csv["rows"]) == (1, 2)
    with (tmp_path / "csv" / "route=invoices" / f"{invoices}.csv").open() as handle:
        table = list(csv.DictReader(handle))
    assert [r["key"] for r in table] == ["invoices/e-1.pdf", "invoices/e-2.pdf"]
    assert json.loads(table[0]["resultSummary"]) == {"fields": 3}

    # A time range after both batches finished selects none
    assert sandbox.json("export", str(tmp_path / "none"), "--since", "2999-01-01")["batches"] == 0


def test_export_refuses_a_batch_that_is_not_finished(sandbox: CliSandbox, tmp_path: Path) -> None:
    sandbox.upload(["invoices/open.pdf"])
    sandbox.pipeline.pump()
    sandbox.json("flush", "invoices")
    sandbox.pipeline.pump()
    (tracked,) = sandbox.rt.files.versions(sandbox.drop_bucket, "invoices/open.pdf")
    message = sandbox.fails("export", str(tmp_path), "--batch", tracked.submission_id or "")
    assert "is SUBMITTED; export takes finished batches" in message
