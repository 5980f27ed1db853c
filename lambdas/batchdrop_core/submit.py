"""Submitter: cut a route's QUEUED files into batches and hand them to Extend exactly once (I2, I3).

One submitter runs per route at a time (FIFO message group = route), so any submission of the route
still SUBMITTING or UNKNOWN when a run starts was left by a crash or an ambiguous POST, and is
resolved through the runs' batchdrop metadata before anything of it is sent again.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from batchdrop_core import admission, deployspec, notifications, routehealth
from batchdrop_core.dynamo import UpdateBuilder
from batchdrop_core.extend import (
    ExtendError,
    ExtendInputError,
    ExtendOutcomeUnknownError,
    ExtendRejectedError,
    ExtendRetryableError,
)
from batchdrop_core.inputs import (
    EXTEND_REFUSED_INPUT,
    INPUT_REFUSED_STATUSES,
    RefusedInput,
    build_inputs,
)
from batchdrop_core.observability import logger
from batchdrop_core.orphans import abandon_submission, resolve_orphans
from batchdrop_core.redact import redact
from batchdrop_core.runconfig import RunRoute as Route
from batchdrop_core.runconfig import route_digest
from batchdrop_core.runtime import Runtime
from batchdrop_core.timeutil import age_seconds, now_iso
from batchdrop_core.tracking import BatchState, Submission, TrackedFile, new_submission_id

if TYPE_CHECKING:
    from batchdrop_core.extend import BatchInput

INPUT_PATH = re.compile(r"inputs\[(\d+)\]")
# Refused POSTs one batch may spend finding its poison inputs (bisection of 1,000 takes 10).
MAX_REFUSED_POSTS = 12


@dataclass
class FlushOutcome:
    submitted: list[Submission] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    stopped_because: str = ""
    settled: set[str] = field(default_factory=set)  # files rejected while their batch was cut
    suspects: set[str] = field(default_factory=set)  # files refused alone before any batch went through


def flush_route(
    rt: Runtime, route_name: str, *, force: bool = False, time_left: Callable[[], float] | None = None
) -> FlushOutcome:
    """Submit every batch of ``route_name`` that is due; ``force`` also sends a partial batch."""
    outcome = FlushOutcome()
    route = rt.settings.route(route_name)
    time_left = time_left or (lambda: float(deployspec.SUBMITTER.timeout_seconds))
    # A blocked route costs one read here until its probe is due: no claim, no POST, no Files write.
    state = rt.state.route_state(route.name)
    if routehealth.held(state) == "blocked":
        if not routehealth.probe(rt, route, state):
            outcome.stopped_because = "blocked"
            return outcome
        outcome.counts["probe_succeeded"] += 1
        resume_route(rt, route)
        state["blocked"] = False
    try:
        resolve_orphans(rt, route.name, outcome)
    except ExtendRetryableError as exc:
        # Extend throttles or fails: the orphans wait for the next flush (the sweep asks for one), and a
        # new batch would meet the same trouble. The request is done; retrying it would only reach the DLQ.
        logger.warning(
            "Extend unavailable while resolving orphans", extra={"route": route.name, "error": str(exc)}
        )
        outcome.stopped_because = "throttled"
        return outcome
    except ExtendRejectedError as exc:
        # A revoked key (or a processor gone) refuses these reads as it would refuse the POST.
        block_route(rt, route, exc, state)
        outcome.counts["blocked"] += 1
        outcome.stopped_because = "blocked"
        return outcome
    if outcome.counts["adopted"] or outcome.counts["requeued_orphan"]:
        resume_route(rt, route)  # Extend answered the searches
    if routehealth.held(state) == "backing_off":
        # Extend asked this route to wait (429 on its last POST): no file is claimed until then.
        outcome.stopped_because = "backing_off"
        return outcome
    while True:
        if time_left() < 60:
            outcome.stopped_because = "time"
            # Another flush request picks up where this one stopped.
            rt.request_flush(route.name, reason="continue", force=force)
            return outcome
        size = rt.settings.max_batch_size
        waiting, oldest = rt.files.queue_depth(route.name, size)
        if not waiting or oldest is None:
            outcome.stopped_because = "empty"
            return outcome
        if not (waiting >= size or force or age_seconds(oldest) >= rt.settings.max_wait_seconds):
            outcome.stopped_because = "waiting"
            return outcome
        # A due batch takes everything claimable when it claims, up to a full batch: files that became
        # claimable since the count (a requeue, a release, a late arrival) go with it, not into another
        # partial batch (I2). It holds a full batch's room at Extend; the claim gives back what it left.
        result = submit_batch(rt, route, size, outcome, state)
        if result == "suspect":
            continue  # a batch without the suspect file says whether it or the route is at fault
        if result != "submitted":
            outcome.stopped_because = result
            return outcome


def submit_batch(
    rt: Runtime, route: Route, size: int, outcome: FlushOutcome, state: dict[str, Any] | None = None
) -> str:
    """One batch of up to ``size`` files: hold room at Extend, persist, claim, POST, record. ``state`` is
    the route's State item as the flush read it.

    Returns "submitted", "no_room", "empty", "blocked", "throttled", "unknown", "suspect" or "give_up".
    """
    submission = Submission(
        submission_id=new_submission_id(),
        route=route.name,
        processor_type=route.type,
        processor_id=route.processor_id,
        processor_version=route.version,
        route_digest=route_digest(route),
        state=BatchState.SUBMITTING,
        created_at=now_iso(),
        file_count=0,
    )
    sid = submission.submission_id
    state = state if state is not None else {}
    if not admission.reserve(rt, route, sid, size):
        outcome.counts["no_room"] += 1
        return "no_room"  # the route is woken when a batch at Extend finishes
    # I3: the submission exists before any file points at it, and before Extend hears of it.
    rt.batches.create(submission)
    claimed = claim_files(rt, route, sid, size, exclude=outcome.suspects if not outcome.submitted else ())
    rt.batches.update(sid, UpdateBuilder().set("fileCount", len(claimed)))
    if not claimed:
        rt.batches.transition(
            sid, [BatchState.SUBMITTING], BatchState.ABANDONED, note="no file left to claim"
        )
        admission.release(rt, sid)
        return "empty"
    admission.shrink(rt, sid, size, len(claimed))
    held = len(claimed)  # room held at Extend: a batch that loses a poison input is topped up to it
    ids = {"route": route.name, "submissionId": sid}
    # The API models (pydantic) load with the first batch: most flush requests find none due.
    from batchdrop_core.extend import ProcessorRef

    processor = ProcessorRef(
        id=route.processor_id, version=route.version, override_config=route.override_config
    )
    built: dict[str, BatchInput] = {}  # file id -> input: an upload is not repeated for a second POST
    refusals = 0
    url_expires_at: str | None = None
    while True:
        try:
            inputs, expires_at = prepare_inputs(rt, route, sid, claimed, built, outcome)
            url_expires_at = url_expires_at or expires_at  # the first URLs presigned expire first
            if any(f.file_id not in built for f in claimed) and refusals < MAX_REFUSED_POSTS:
                # Files that cannot be inputs are out: top the batch up (and build the newcomers).
                refusals += 1
                claimed = [f for f in claimed if f.file_id in built]
                exclude = outcome.settled | outcome.suspects
                claimed += claim_files(rt, route, sid, held - len(claimed), exclude=exclude)
                continue
            claimed = [f for f in claimed if f.file_id in built]
            if not claimed:
                rt.batches.transition(
                    sid, [BatchState.SUBMITTING], BatchState.ABANDONED, note="every file was refused"
                )
                admission.release(rt, sid)
                return "empty"
            batch = rt.extend.create_batch(route.type, processor, inputs, priority=route.priority)
        except ExtendOutcomeUnknownError as exc:
            # The batch may exist at Extend: never resend these files until Extend has been searched.
            rt.batches.update(sid, UpdateBuilder().set("fileCount", len(claimed)))
            rt.batches.transition(sid, [BatchState.SUBMITTING], BatchState.UNKNOWN, note=redact(exc, 500))
            outcome.counts["unknown"] += 1
            logger.warning(
                "batch POST outcome unknown; will resolve via run metadata", extra={**ids, "error": str(exc)}
            )
            return "unknown"
        except ExtendRetryableError as exc:
            abandon_submission(rt, sid, claimed, f"Extend asked to retry later: {exc}")
            until = routehealth.back_off(rt, route, state, exc.retry_after)
            state["backoffUntil"] = until
            outcome.counts["throttled"] += 1
            logger.warning(
                "Extend is throttling submissions; files stay queued",
                extra={**ids, "error": str(exc), "backoffUntil": until},
            )
            return "throttled"
        except (ExtendRejectedError, ExtendInputError) as exc:
            refusals += 1
            verdict, claimed = isolate_poison(rt, sid, claimed, exc, outcome, refusals)
            if verdict == "route":
                abandon_submission(rt, sid, claimed, f"Extend refused the batch: {exc}")
                block_route(rt, route, exc, state)
                outcome.counts["blocked"] += 1
                return "blocked"
            if verdict in ("suspect", "give_up"):
                abandon_submission(rt, sid, claimed, f"Extend refused the batch: {exc}")
                return verdict
            if verdict == "poison":
                # The rest goes as a full batch: top it up from the queue to the room held.
                exclude = outcome.settled | outcome.suspects
                claimed += claim_files(rt, route, sid, held - len(claimed), exclude=exclude)
            continue
        except Exception:
            # Anything else (S3, DynamoDB) happened before the POST could have been sent.
            abandon_submission(rt, sid, claimed, "submission failed before reaching Extend")
            raise
        break

    if len(claimed) < held:
        admission.shrink(rt, sid, held, len(claimed))
    rt.batches.link_batch_id(sid, batch.id)
    # The submission records what its files share (batch, time, URL expiry): no write per file (readers
    # join a file to its submission through submissionId).
    rt.batches.transition(
        sid,
        [BatchState.SUBMITTING],
        BatchState.SUBMITTED,
        submittedAt=now_iso(),
        extendStatus=batch.status,
        fileCount=len(claimed),
        urlExpiresAt=url_expires_at,
    )
    submission.batch_id = batch.id
    submission.file_count = len(claimed)
    submission.state = BatchState.SUBMITTED
    outcome.submitted.append(submission)
    outcome.counts["files"] += len(claimed)
    logger.info("batch submitted", extra={**ids, "batchId": batch.id, "files": len(claimed)})
    resume_route(rt, route)
    routehealth.accepted(rt, route, state)
    return "submitted"


def prepare_inputs(
    rt: Runtime,
    route: Route,
    sid: str,
    files: list[TrackedFile],
    built: dict[str, BatchInput],
    outcome: FlushOutcome,
) -> tuple[list[BatchInput], str | None]:
    """The inputs of ``files``, built once each (an upload is not repeated for a second POST); a file
    that cannot be an input is REJECTED with the reason, and left out."""
    todo = [f for f in files if f.file_id not in built]
    url_expires_at = None
    if todo:
        inputs, url_expires_at = build_inputs(rt, route, sid, todo)
        for tracked, item in zip(todo, inputs, strict=True):
            if isinstance(item, RefusedInput):
                reject_inputs(rt, sid, [tracked], item.reason, item.message, outcome)
            else:
                built[tracked.file_id] = item
    return [built[f.file_id] for f in files if f.file_id in built], url_expires_at


def reject_inputs(
    rt: Runtime,
    sid: str,
    files: list[TrackedFile],
    reason: str,
    message: str,
    outcome: FlushOutcome,
) -> None:
    """These files, and not their batch-mates, are over: REJECTED with the reason and Extend's message."""
    text = redact(message)  # Extend's message as stored and logged: no presigned URL, about 1 KB
    for tracked in files:
        if rt.files.reject_claimed(tracked, sid, reason, text):
            outcome.counts["rejected"] += 1
        outcome.settled.add(tracked.file_id)
        logger.warning(
            "input refused; the file is rejected, its batch goes on",
            extra={"submissionId": sid, "fileId": tracked.file_id, "reason": reason, "error": text},
        )


def isolate_poison(
    rt: Runtime,
    sid: str,
    files: list[TrackedFile],
    exc: ExtendError | ExtendInputError,
    outcome: FlushOutcome,
    refusals: int,
) -> tuple[str, list[TrackedFile]]:
    """Extend refused a batch POST: whose fault is it? Returns (verdict, the files to POST next).

    "route": Extend refused the route itself (key, credits, processor, a field that is not an input):
    the caller blocks it. "poison": the inputs Extend named are REJECTED, the rest go on. "bisect": the
    refusal named no input; the second half goes back to the queue (in its place) and the first half is
    sent alone. "suspect": one file was refused alone before any batch of the route went through in this
    flush, so the route itself may be at fault: the file waits, and a batch without it decides (a second
    such file: the route). "give_up": too many refused POSTs for one batch; the files wait in the queue.
    """
    status = getattr(exc, "status_code", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, ExtendInputError) or status not in INPUT_REFUSED_STATUSES:
        return "route", files
    named = sorted({int(i) for i in INPUT_PATH.findall(message)})
    if not named and "Path: " in message:
        return "route", files  # a field of the request that is not an input: the route's own settings
    if refusals > MAX_REFUSED_POSTS:
        _release(rt, sid, files)
        return "give_up", []
    if named:
        poison = [files[i] for i in named if i < len(files)]
        if not poison:
            return "route", files
        reject_inputs(rt, sid, poison, EXTEND_REFUSED_INPUT, message, outcome)
        return "poison", [f for f in files if f.file_id not in outcome.settled]
    if len(files) > 1:
        half = len(files) // 2
        _release(rt, sid, files[half:])
        outcome.counts["bisections"] += 1
        return "bisect", files[:half]
    if outcome.submitted:  # a batch of this route went through: the file alone is at fault
        reject_inputs(rt, sid, files, EXTEND_REFUSED_INPUT, message, outcome)
        return "poison", []
    outcome.suspects.add(files[0].file_id)
    return ("route" if len(outcome.suspects) > 1 else "suspect"), files


def _release(rt: Runtime, sid: str, files: list[TrackedFile]) -> None:
    if files:
        rt.files.release(files, sid)


def resume_route(rt: Runtime, route: Route) -> None:
    """Extend answered this route's requests again: unblock it, and tell the operator once."""
    if rt.state.unblock_route(route.name):
        rt.notify(notifications.route_resumed(route))


def claim_files(
    rt: Runtime, route: Route, submission_id: str, size: int, exclude: Iterable[str] = ()
) -> list[TrackedFile]:
    """Claim the oldest ``size`` QUEUED files of a route for a submission (not those in ``exclude``).

    The queued index is eventually consistent: it may still list files another batch just took. Those
    claims fail, and further candidates top the batch up, so a full batch stays full (I2).
    """
    claimed: list[TrackedFile] = []
    seen: set[str] = set(exclude)
    if size <= 0:
        return claimed
    for _ in range(5):
        candidates = [
            e for e in rt.files.oldest_queued(route.name, size + len(seen)) if e.file_id not in seen
        ][: size - len(claimed)]
        if not candidates:
            break
        seen.update(e.file_id for e in candidates)
        claimed += rt.files.claim(candidates, submission_id)
        if len(claimed) >= size:
            break
    return claimed


def block_route(
    rt: Runtime, route: Route, exc: ExtendError | ExtendInputError, state: dict[str, Any] | None = None
) -> None:
    """Files stay QUEUED; the route is marked blocked (probed from now on, see ``routehealth``) and an
    operator hears about it once."""
    status = getattr(exc, "status_code", None)
    reason = "EXTEND_AUTH" if getattr(exc, "is_auth_problem", False) else "EXTEND_REJECTED"
    message = redact(exc)  # Extend's text: logged, stored on the route and mailed
    logger.error("route blocked by Extend", extra={"route": route.name, "status": status, "error": message})
    state = state if state is not None else {}
    interval = routehealth.next_interval(rt, state.get("probeSeconds"))
    probe_at = routehealth.later(interval)
    state.update(blocked=True, probeAt=probe_at, probeSeconds=interval)
    if rt.state.block_route(route.name, reason, message, probe_at, interval):
        rt.notify(notifications.route_blocked(route, reason, status, message))
