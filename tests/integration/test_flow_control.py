"""Flow control at Extend's door: a bound on files outstanding, whole batches, routes taking turns, room
handed on as soon as a batch finishes (handlers against moto server and the Extend simulator)."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any

import pytest

from batchdrop_core.admission import read_ledger
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.tracking import BatchState, FileStatus
from sandbox.aws import Deployment
from sandbox.pipeline import LocalPipeline
from tests.helpers import all_files, all_submissions, make_settings, sim_batches, upload, wait_until_finished


@pytest.fixture
def pipeline(deployment: Deployment, extend_sim: Any) -> LocalPipeline:
    # A bound of two full batches: 20 files of 10
    settings = make_settings(extend_sim.base_url, maxBatchSize=10, maxFilesAtExtend=20, maxWaitSeconds=1)
    return LocalPipeline(settings, deployment, intake_window=0.3)


def outstanding(pipeline: LocalPipeline) -> int:
    return sum(s["fileCount"] for s in all_submissions(pipeline) if s["state"] in BatchState.OPEN)


def test_files_at_extend_never_exceed_the_bound_and_routes_take_turns(
    pipeline: LocalPipeline, deployment: Deployment, extend_sim: Any
) -> None:
    # Given 35 files on one route and 12 on another, all due
    upload(deployment, [f"invoices/inv-{i:02d}.pdf" for i in range(35)])
    upload(deployment, [f"documents/doc-{i:02d}.txt" for i in range(12)])
    pipeline.intake.drain()
    time.sleep(1.1)  # maxWaitSeconds
    rt = pipeline.runtime("submitter")
    for route in ("invoices", "documents"):
        rt.request_flush(route, reason="test")

    # When the submitter runs, Extend processes, and each finished batch is collected, until all is done
    seen, collected = [], set()
    for _ in range(30):
        pipeline.submitter.drain()
        seen.append(outstanding(pipeline))
        for batch in wait_until_finished(extend_sim):
            if batch["id"] not in collected:
                collected.add(batch["id"])
                rt.request_collection(CollectionRequest(batch["id"], source="test"))
        pipeline.results.drain()  # each finished batch frees its room and wakes the next route in turn
        if all(f["status"] in FileStatus.TERMINAL for f in all_files(pipeline)):
            break

    # Then never more than the bound was at Extend, and it was used: at first, as many whole batches as fit
    assert max(seen) == 20 and 20 - seen[0] < 10
    # And batches stayed full, the remainders last
    batches = sim_batches(extend_sim)
    sizes = {
        route: [b["runCount"] for b in batches if b["processor"]["id"].startswith(prefix)]
        for route, prefix in (("invoices", "ex_"), ("documents", "cl_"))
    }
    assert sizes == {"invoices": [10, 10, 10, 5], "documents": [10, 2]}
    # And everything finished, the ledger holds nothing, and no route is left waiting
    assert Counter(f["status"] for f in all_files(pipeline)) == {FileStatus.PROCESSED: 47}
    ledger = read_ledger(rt)
    assert (ledger.files, ledger.held, ledger.waiting) == (0, {}, {})


def test_a_reservation_whose_submission_never_came_to_be_is_released_by_the_reconciler(
    pipeline: LocalPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batchdrop_core import admission

    # Given a submitter that reserved room and crashed before it recorded its submission
    rt = pipeline.runtime("submitter")
    route = rt.settings.route("invoices")
    assert admission.reserve(rt, route, "sub_crashed", 10)
    assert read_ledger(rt).files == 10

    # When the reconciler audits the ledger after the grace period
    monkeypatch.setattr(admission, "ORPHAN_RESERVATION_SECONDS", 0)
    time.sleep(0.01)
    result = pipeline.schedule("reconcile")

    # Then the room is back
    assert read_ledger(rt).files == 0
    assert result["reservationsReleased"] == ["sub_crashed"]


def test_routes_take_turns_for_the_room_and_priority_moves_a_turn_earlier(pipeline: LocalPipeline) -> None:
    from batchdrop_core import admission

    rt = pipeline.runtime("submitter")
    invoices, documents, packets = (rt.settings.route(n) for n in ("invoices", "documents", "packets"))
    # Given invoices holding the whole room (two batches), then wanting a third, then documents asking
    assert admission.reserve(rt, invoices, "sub_a1", 10) and admission.reserve(rt, invoices, "sub_a2", 10)
    assert not admission.reserve(rt, invoices, "sub_a3", 10)
    time.sleep(0.01)
    assert not admission.reserve(rt, documents, "sub_d1", 10)
    assert admission.routes_in_turn(rt, read_ledger(rt)) == ["invoices", "documents"]

    # When a batch finishes: the route whose turn it is goes (invoices asked first), the other waits
    admission.release(rt, "sub_a1")
    assert not admission.reserve(rt, documents, "sub_d1", 10)
    assert admission.reserve(rt, invoices, "sub_a3", 10)
    # And invoices, asking again at once, queues behind documents: the next room is documents'
    assert not admission.reserve(rt, invoices, "sub_a4", 10)
    admission.release(rt, "sub_a2")
    assert not admission.reserve(rt, invoices, "sub_a4", 10)
    assert admission.reserve(rt, documents, "sub_d1", 10)

    # And a route with a better priority that asks later still comes first (30 s earlier per point)
    high = dataclasses.replace(packets, priority=1)
    rt.settings = dataclasses.replace(rt.settings, routes=(invoices, documents, high))
    time.sleep(0.01)
    assert not admission.reserve(rt, high, "sub_p1", 10)
    assert admission.routes_in_turn(rt, read_ledger(rt)) == ["packets", "invoices"]


def test_a_throttled_post_backs_the_route_off_without_claiming_its_files_again(
    pipeline: LocalPipeline, deployment: Deployment, extend_sim: Any
) -> None:
    # Given Extend's write budget spent, asking for a wait longer than the client waits out in place
    extend_sim.configure(write_rps=1 / 15)
    upload(deployment, [f"invoices/inv-{i:02d}.pdf" for i in range(10)])
    pipeline.intake.drain()
    rt = pipeline.runtime("submitter")
    rt.extend.upload_file("spend-the-token.txt", b"x")  # the one write the budget had

    # When the submitter tries to send the full batch, and is asked again while the wait lasts
    pipeline.submitter.drain()
    for _ in range(3):
        rt.request_flush("invoices", reason="test")
        pipeline.submitter.drain()

    # Then the batch went back to the queue once, the route waits, and the files were claimed only once
    assert sim_batches(extend_sim) == []
    assert rt.state.route_state("invoices")["backoffUntil"]
    files = all_files(pipeline)
    assert {(f["status"], f.get("attempts", 0)) for f in files} == {(FileStatus.QUEUED, 0)}
    assert {len(f.get("history", [])) for f in files} == {1}

    # When the wait is over, the next flush sends them
    time.sleep(max(0.0, age_seconds_until(rt.state.route_state("invoices")["backoffUntil"])) + 0.5)
    extend_sim.configure(write_rps=0)
    rt.request_flush("invoices", reason="test")
    pipeline.submitter.drain()
    assert [b["runCount"] for b in sim_batches(extend_sim)] == [10]


def age_seconds_until(moment: str) -> float:
    from batchdrop_core.timeutil import age_seconds

    return -age_seconds(moment)


def test_a_route_removed_while_it_waits_for_room_holds_none_back(pipeline: LocalPipeline) -> None:
    from batchdrop_core import admission

    rt = pipeline.runtime("submitter")
    invoices, documents, packets = (rt.settings.route(n) for n in ("invoices", "documents", "packets"))
    # Given invoices holding the whole room and documents waiting for its turn
    assert admission.reserve(rt, invoices, "sub_a1", 10) and admission.reserve(rt, invoices, "sub_a2", 10)
    assert not admission.reserve(rt, documents, "sub_d1", 10)

    # When documents is removed (`batchdrop routes apply`) and a batch finishes
    rt.settings = dataclasses.replace(rt.settings, routes=(invoices, packets))
    assert admission.routes_in_turn(rt, read_ledger(rt)) == []
    admission.release(rt, "sub_a1")

    # Then the room goes to a route that still exists: the removed one is nobody's turn
    assert admission.reserve(rt, packets, "sub_p1", 10)
