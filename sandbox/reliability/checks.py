"""The invariant checks (I1 to I6, results against the table) over a run's end state. docs/reliability.md
defines each precisely.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from batchdrop_core.outcomes import URL_EXPIRED, result_key
from batchdrop_core.tracking import (
    BatchState,
    FileStatus,
)
from sandbox.reliability.observe import State
from sandbox.reliability.plan import Expectations
from sandbox.reliability.queue_stays import (
    CLOCK_TOLERANCE,
    INTAKE_VISIBILITY_SLACK,
    claim_window,
    queue_stays,
)

INVARIANTS = ("I1", "I2", "I3", "I4", "I5", "I6", "results_vs_table")


MAX_LISTED = 50  # violations listed per invariant in the report (all are counted)


def input_ids(item: dict[str, Any]) -> dict[str, str]:
    return ((item.get("metadata") or {}).get("batchdrop")) or {}


@dataclass
class EndState:
    """A run's end state, indexed once for the checks: files and submissions by id, and what the batches
    at Extend hold (how often each file appears, the run each batch made for it, the late duplicates)."""

    state: State
    exp: Expectations
    settings: Any
    drop_bucket: str
    files: dict[str, dict[str, Any]]
    subs: dict[str, dict[str, Any]]
    routes: dict[str, Any]
    appearances: Counter[str] = field(default_factory=Counter)
    late_appearances: Counter[str] = field(default_factory=Counter)  # in a detected late duplicate's batch
    run_of: dict[tuple[str, str], str] = field(default_factory=dict)
    batches_of_submission: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    late: set[str] = field(default_factory=set)


def check(state: State, exp: Expectations, settings: Any, drop_bucket: str) -> dict[str, list[str]]:
    """Every violation found, by invariant. See docs/reliability.md for the precise definitions."""
    v: dict[str, list[str]] = {name: [] for name in INVARIANTS}
    c = EndState(
        state,
        exp,
        settings,
        drop_bucket,
        files={f["fileId"]: f for f in state.files},
        subs={s["submissionId"]: s for s in state.submissions},
        routes={r.name: r for r in settings.routes},
    )
    check_items(c, v)
    index_batches(c, v)
    check_submissions(c, v)
    check_recording(c, v)
    check_authentication(c, v)
    check_errors(c, v)
    return v


def index_batches(c: EndState, v: dict[str, list[str]]) -> None:
    """The batches Extend holds: each of ours indexed, and checked on its own (I2, and I3's one submission
    per batch)."""
    files, subs, routes, state, settings = c.files, c.subs, c.routes, c.state, c.settings
    appearances, late_appearances, run_of, batches_of_submission = (
        c.appearances,
        c.late_appearances,
        c.run_of,
        c.batches_of_submission,
    )
    late = c.late = {
        sid
        for sid, s in subs.items()
        if s.get("state") == BatchState.ABANDONED and s.get("lateBatchAt") and s.get("batchId")
    }
    for batch in state.sim_batches:
        ids = [input_ids(item) for item in batch["inputs"]]
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


def check_items(c: EndState, v: dict[str, list[str]]) -> None:
    """I1: every object version has exactly one item, and every item is terminal."""
    state, exp, drop_bucket = c.state, c.exp, c.drop_bucket
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


def check_submissions(c: EndState, v: dict[str, list[str]]) -> None:
    """I3: no file in two batches per attempt."""
    files, subs, exp, appearances, late_appearances, batches_of_submission, late = (
        c.files,
        c.subs,
        c.exp,
        c.appearances,
        c.late_appearances,
        c.batches_of_submission,
        c.late,
    )
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


def check_recording(c: EndState, v: dict[str, list[str]]) -> None:
    """I4: one result per file attempt, one notification per batch outcome; results against the table."""
    files, subs, state, run_of, batches_of_submission, late = (
        c.files,
        c.subs,
        c.state,
        c.run_of,
        c.batches_of_submission,
        c.late,
    )
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


def check_authentication(c: EndState, v: dict[str, list[str]]) -> None:
    """I5: forged requests changed nothing; no secret or URL signature in the logs. And (I1) no unexpected
    DLQ message."""
    state, exp = c.state, c.exp
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


def check_errors(c: EndState, v: dict[str, list[str]]) -> None:
    """I6: bad input gets its specific reason."""
    state, exp, settings = c.state, c.exp, c.settings
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
    processor_id = (batch["processor"] or {}).get("id")  # parse batches name no processor
    if (batch["type"], processor_id) != (route.type, route.processor_id):
        v["I2"].append(f"batch {batch['id']} went to {batch['type']} {processor_id}")
    if size >= settings.max_batch_size:
        return
    created, claim_end = claim_window(submission)
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
            taken_at = claim_window(subs[stay.taken_by])[0] if stay.taken_by in subs else float("inf")
            if stay.start < created - slack and taken_at > claim_end + CLOCK_TOLERANCE:
                v["I2"].append(
                    f"partial batch {batch['id']} ({size} files) left {fid!r} waiting in the queue"
                )
                break
