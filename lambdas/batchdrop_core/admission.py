"""Flow control: how many files may wait at Extend, and whose batch goes next.

Extend downloads a file when it processes it, at its plan's rate (``extendFilesPerMinute``), and a
presigned URL lives ``presignedUrlExpirySeconds``. So the files submitted and not yet terminal are
bounded (``Settings.files_at_extend_bound``: by default half of what Extend processes in a URL's life): a
batch is admitted only when all its files fit, what waits stays QUEUED in DynamoDB, and when a batch
finishes, its room goes to the next route at once.

The ledger is one State item (``EXTEND#outstanding``): ``files`` (the sum), ``held`` (submission id →
``{route, files, at}``, what each open submission holds: a release happens once, and an audit finds a
reservation whose submission never came to be) and ``waiting`` (route → since when it waits for room).
Routes take turns: the route that has waited longest goes first; a route's ``priority`` (lower first, as
at Extend) moves its turn earlier by ``PRIORITY_STEP_SECONDS`` a point; a route that just got a batch
queues again behind the others. So no route starves, and a busy route cannot crowd out a quiet one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from batchdrop_core.dynamo import conditional_write, from_item, serialize, to_item
from batchdrop_core.observability import logger
from batchdrop_core.runconfig import RunRoute as Route
from batchdrop_core.runtime import Runtime
from batchdrop_core.tables import STATE_LEDGER_KEY
from batchdrop_core.timeutil import age_seconds, now_iso, parse_iso
from batchdrop_core.tracking import BatchState

LEDGER_KEY = STATE_LEDGER_KEY
PRIORITY_STEP_SECONDS = 30.0  # a route's turn comes this much earlier per priority point
UNSET_PRIORITY = 90  # a route without a priority counts as Extend's default run priority
ORPHAN_RESERVATION_SECONDS = 600  # a reservation whose submission never appeared is released after this
MAX_TRIES = 10


@dataclass
class Ledger:
    files: int = 0
    held: dict[str, dict[str, Any]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)


def read_ledger(rt: Runtime) -> Ledger:
    """The ledger as it is now (created, empty, on first use)."""
    key = {"pk": serialize(LEDGER_KEY)}
    item = rt.state.client.get_item(TableName=rt.state.table, Key=key, ConsistentRead=True).get("Item")
    if item is None:
        conditional_write(
            rt.state.client.put_item,
            TableName=rt.state.table,
            Item=to_item({"pk": LEDGER_KEY, "files": 0, "held": {}, "waiting": {}}),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return read_ledger(rt)
    values = from_item(item)
    return Ledger(int(values.get("files", 0)), values.get("held") or {}, values.get("waiting") or {})


def _write(rt: Runtime, expression: str, condition: str | None = None, **placeholders: Any) -> bool:
    """One conditional update of the ledger; ``placeholders`` are ``s``/``r`` (submission id, route)
    names and any ``:values``."""
    names = {"#files": "files", "#held": "held", "#waiting": "waiting"}
    values = {}
    for name, value in placeholders.items():
        if name in ("s", "r"):
            names[f"#{name}"] = value
        else:
            values[f":{name}"] = serialize(value)
    kwargs: dict[str, Any] = {
        "TableName": rt.state.table,
        "Key": {"pk": serialize(LEDGER_KEY)},
        "UpdateExpression": expression,
        "ExpressionAttributeNames": {k: v for k, v in names.items() if k in f"{expression} {condition}"},
    }
    if values:
        kwargs["ExpressionAttributeValues"] = values
    if condition:
        kwargs["ConditionExpression"] = condition
    return conditional_write(rt.state.client.update_item, **kwargs)


def _turn(rt: Runtime, route_name: str, since: str) -> float:
    try:
        priority = rt.settings.route(route_name).priority or UNSET_PRIORITY
    except KeyError:  # a route removed from the settings while it waited
        priority = UNSET_PRIORITY
    return parse_iso(since).timestamp() - (UNSET_PRIORITY - priority) * PRIORITY_STEP_SECONDS


def routes_in_turn(rt: Runtime, ledger: Ledger, exclude: str | None = None) -> list[str]:
    """The waiting routes, the one whose turn comes first first. A route removed while it waited (routes
    change without a redeploy) submits nothing: it is nobody's turn, and holds no room back."""
    routes = {r.name for r in rt.settings.routes}
    waiting = [(r, since) for r, since in ledger.waiting.items() if r != exclude and r in routes]
    turns = sorted((_turn(rt, r, since), r) for r, since in waiting)
    return [r for _, r in turns]


def reserve(rt: Runtime, route: Route, submission_id: str, files: int) -> bool:
    """Hold room at Extend for a batch of ``files`` of a route, if they fit and it is the route's turn;
    otherwise mark the route as waiting (it is woken when room frees) and return False."""
    bound = rt.settings.files_at_extend_bound
    batch = rt.settings.max_batch_size
    for _ in range(MAX_TRIES):
        ledger = read_ledger(rt)
        now = now_iso()
        since = ledger.waiting.get(route.name, now)
        mine = _turn(rt, route.name, since)
        ahead = [r for r in routes_in_turn(rt, ledger, route.name) if _turn(rt, r, ledger.waiting[r]) < mine]
        # Routes ahead in turn get the room first, a full batch each.
        if ledger.files + len(ahead) * batch + files > bound:
            _write(rt, "SET #waiting.#r = if_not_exists(#waiting.#r, :since)", r=route.name, since=since)
            if ahead and ledger.files + batch <= bound:
                rt.request_flush(ahead[0], reason="room at Extend")  # its turn: make sure it knows
            logger.info(
                "no room at Extend for the next batch; the route waits its turn",
                extra={"route": route.name, "files": files, "outstanding": ledger.files, "bound": bound},
            )
            return False
        entry = {"route": route.name, "files": files, "at": now}
        if _write(
            rt,
            "SET #files = #files + :n, #held.#s = :entry REMOVE #waiting.#r",
            "#files = :expect",
            s=submission_id,
            r=route.name,
            n=files,
            entry=entry,
            expect=ledger.files,
        ):
            return True
    logger.warning(
        "the Extend ledger is busy; the batch waits for the next flush", extra={"route": route.name}
    )
    return False


def shrink(rt: Runtime, submission_id: str, held: int, used: int) -> None:
    """A batch came out smaller than its reservation: give the difference back."""
    if used < held:
        _write(
            rt,
            "SET #files = #files - :diff, #held.#s.#files = :used",
            "#held.#s.#files = :held",
            s=submission_id,
            diff=held - used,
            used=used,
            held=held,
        )


def release(rt: Runtime, submission_id: str) -> bool:
    """A submission is over (terminal): its room goes back, once, and the next route in turn is woken."""
    ledger = read_ledger(rt)
    entry = ledger.held.get(submission_id)
    if entry is None:
        return False
    if not _write(
        rt,
        "SET #files = #files - :n REMOVE #held.#s",
        "attribute_exists(#held.#s)",
        s=submission_id,
        n=int(entry["files"]),
    ):
        return False
    wake_next(rt)
    return True


def wake_next(rt: Runtime) -> str | None:
    """Ask the route whose turn comes first to submit, if its batch fits now."""
    ledger = read_ledger(rt)
    waiting = routes_in_turn(rt, ledger)
    if waiting and ledger.files + rt.settings.max_batch_size <= rt.settings.files_at_extend_bound:
        rt.request_flush(waiting[0], reason="room at Extend")
        return waiting[0]
    return None


def audit(rt: Runtime) -> list[str]:
    """Release reservations whose submission is over or never came to be (a crash between the
    reservation and the submission's record, or between its end and the release); the ids released."""
    ledger = read_ledger(rt)
    released = []
    for sid, entry in ledger.held.items():
        submission = rt.batches.get(sid)
        over = submission is not None and (
            submission.state in BatchState.TERMINAL
            # runs reporting one by one, all settled or waiting on review: none is in processing
            or 0 < submission.file_count <= submission.runs_out_of_processing
        )
        never = submission is None and age_seconds(entry["at"]) > ORPHAN_RESERVATION_SECONDS
        if (over or never) and release(rt, sid):
            released.append(sid)
            logger.warning(
                "a reservation at Extend outlived its submission; released", extra={"submissionId": sid}
            )
    return released
