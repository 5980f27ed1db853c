"""What the adversity run must show, read from its result."""

from __future__ import annotations

from typing import Any

from batchdrop_core.tracking import FileStatus


def check(result: dict[str, Any]) -> list[str]:
    """What the scenario must show; each failure as a sentence (empty: all held)."""
    problems = []
    for o in result["outages"]:
        if o["fileWrites"]:
            problems.append(
                f"{o['name']}: {o['fileWrites']} Files writes while the routes were blocked "
                f"({o['fileWritesByOperation']})"
            )
        for route, probes in o["probes"].items():
            if probes > o["probesAllowed"]:
                problems.append(
                    f"{o['name']}: route {route} probed {probes} times in {o['seconds']} s "
                    f"(the backoff allows {o['probesAllowed']})"
                )
            if probes == 0:
                problems.append(f"{o['name']}: route {route} was never probed in {o['seconds']} s")
        posts = sum(
            n for t, n in o["extendRequests"].items() if t.startswith("POST ") and t.endswith("/batch")
        )
        if posts:
            problems.append(f"{o['name']}: {posts} batch POSTs while the routes were blocked")
    poison = result["poison"]
    if poison["status"] != FileStatus.REJECTED or not poison["message"]:
        problems.append(f"the poison file is {poison['status']} ({poison['reason']}: {poison['message']!r})")
    if poison["matesProcessed"] != poison["mates"]:
        problems.append(
            f"{poison['matesProcessed']} of the poison file's {poison['mates']} batch-mates processed"
        )
    if poison["matesBatchSizes"] != [result["options"]["batch_size"]]:
        problems.append(
            f"the batch-mates went out in batches of {poison['matesBatchSizes']}, not one full batch"
        )
    others = {s: n for s, n in result["byStatus"].items() if s != FileStatus.PROCESSED}
    if others != {FileStatus.REJECTED: 1}:
        problems.append(f"besides the poison file, not every file was PROCESSED: {result['byStatus']}")
    if result["largestAttempts"] > 1:
        problems.append(
            f"a file used {result['largestAttempts']} attempts (an outage must not cost attempts)"
        )
    if any(result["dlqMax"].values()):
        problems.append(f"messages reached a DLQ: {result['dlqMax']}")
    if result["unexpectedAlarms"]:
        problems.append(f"unexpected alarms: {result['unexpectedAlarms']}")
    for invariant, found in result["invariantViolations"].items():
        problems += [f"{invariant}: {violation}" for violation in found]
    return problems
