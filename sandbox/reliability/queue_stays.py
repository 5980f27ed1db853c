"""When each file waited in the queue (I2's raw material): its queue stays, read from its history and the
times its item's writes returned, and the window in which a submission took its files."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchdrop_core.timeutil import parse_iso
from batchdrop_core.tracking import SUBMISSION_NOT_SENT, FileStatus

# Timestamps of one batch's checks come from one clock; this only absorbs float rounding.
CLOCK_TOLERANCE = 0.05


# A file's queuedAt is taken before intake's HeadObject and PutItem (and a requeue's time before its
# UpdateItem); a batch cut in that gap cannot see it. The run records when each write of a Files item
# returned (``FilesWrites``) and the check starts a queue stay there; this slack is for end states
# without those times (tests that build one by hand).
INTAKE_VISIBILITY_SLACK = 2.0


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


def claim_window(submission: dict[str, Any]) -> tuple[float, float]:
    """When a submission took its files: after it was created, before its POST was answered."""
    created = parse_iso(submission["createdAt"]).timestamp()
    answered = submission.get("submittedAt")
    return created, parse_iso(answered).timestamp() if answered else created
