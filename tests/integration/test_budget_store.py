"""The request budget's schedule in the State table: concurrent leases never overlap (moto server)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from batchdrop_core.dynamo import from_item, serialize
from batchdrop_core.tracking import StateStore
from sandbox.aws import Deployment


def test_concurrent_leases_get_disjoint_windows_and_a_hold_moves_the_schedule(deployment: Deployment) -> None:
    # Given the State table, and eight processes leasing 100 ms of the read budget twenty times each
    state = StateStore(deployment.session.client("dynamodb"), deployment.resources.state_table)
    now_ms = 1_764_631_625_000

    def lease(_: int) -> int:
        return state.lease_slots("read", 100, now_ms)

    # When they all lease at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        starts = sorted(pool.map(lease, range(160)))

    # Then every lease has its own window, back to back from now
    assert starts == [now_ms + 100 * i for i in range(160)]

    # And a hold (a 429) pushes the schedule, and a later lease starts after it
    state.hold_budget("read", now_ms + 60_000)
    assert state.lease_slots("read", 100, now_ms) == now_ms + 60_000
    # A lease from a schedule that fell behind starts now
    assert state.lease_slots("read", 100, now_ms + 120_000) == now_ms + 120_000
    item = deployment.session.client("dynamodb").get_item(
        TableName=deployment.resources.state_table, Key={"pk": serialize("RATE#read")}
    )["Item"]
    assert from_item(item)["nextSlotMs"] == now_ms + 120_100
