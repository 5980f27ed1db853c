"""The deployment-wide request budget: processes lease slots of one schedule and never exceed its rate."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

from batchdrop_core.budget import LEASE_SECONDS, SharedBudget


class Schedule:
    """The State table's RATE# item as StateStore.lease_slots and hold_budget keep it, in memory."""

    def __init__(self) -> None:
        self.next_ms = 0
        self.leases: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def lease(self, name: str, duration_ms: int, now_ms: int) -> int:
        with self._lock:
            start = max(self.next_ms, now_ms)
            self.next_ms = start + duration_ms
            self.leases.append((start, duration_ms))
            return start

    def hold(self, name: str, until_ms: int) -> None:
        with self._lock:
            self.next_ms = max(self.next_ms, until_ms)


class Clock:
    """A clock that moves only when someone sleeps, shared by every thread of a test."""

    def __init__(self) -> None:
        self.now = 1_764_631_625.0
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def budget(schedule: Schedule, clock: Clock, rate: float = 10.0) -> SharedBudget:
    return SharedBudget("read", rate, schedule.lease, schedule.hold, clock=clock.time, sleep=clock.sleep)


def test_processes_sharing_a_budget_never_get_two_requests_into_one_slot() -> None:
    # Given three processes (say two collectors and the reconciler) on one 10/s budget
    schedule, clock = Schedule(), Clock()
    processes = [budget(schedule, clock) for _ in range(3)]
    grants: list[float] = []
    lock = threading.Lock()

    def work(process: SharedBudget) -> None:
        for _ in range(100):
            process.acquire()
            with lock:
                grants.append(clock.time())

    # When each sends 100 requests as fast as the budget lets it
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(work, processes))

    # Then the leases never overlap, so no two requests share a slot: 300 requests take 30 s of schedule
    leases = sorted(schedule.leases)
    assert all(a + d <= b for (a, d), (b, _) in itertools.pairwise(leases))
    assert sum(d for _, d in leases) >= 300 * 100
    # And a busy process leases a few seconds at a time, not a slot at a time
    assert max(d for _, d in leases) == LEASE_SECONDS * 1000
    assert len(leases) < 40


def test_a_process_that_reads_once_takes_one_slot_and_unused_old_slots_are_not_spent() -> None:
    schedule, clock = Schedule(), Clock()
    reconciler = budget(schedule, clock)
    reconciler.acquire()
    assert schedule.leases == [(int(clock.time() * 1000), 100)]
    for _ in range(3):
        reconciler.acquire()  # a busier moment: 2 then 4 slots
    clock.sleep(60)  # idle: the rest of its lease is in the past
    waited = reconciler.acquire()
    assert waited == 0 and schedule.leases[-1] == (int(clock.time() * 1000), 100)


def test_a_429_holds_every_process_of_the_deployment() -> None:
    schedule, clock = Schedule(), Clock()
    collector, reconciler = budget(schedule, clock), budget(schedule, clock)
    collector.acquire()
    collector.penalize(30)
    assert reconciler.acquire() >= 29.9


def test_a_process_slower_than_the_rate_keeps_its_slots_ahead_and_leases_less() -> None:
    # Given a process that leased a few seconds of a 10/s budget and then works at 2 requests a second
    schedule, clock = Schedule(), Clock()
    slow = budget(schedule, clock)
    for _ in range(1 + 2 + 4 + 8 + 1):
        slow.acquire()  # leases of 1, 2, 4, 8 and 16 slots, the last one with 15 still ahead
    lease_end = schedule.next_ms
    leases = len(schedule.leases)
    for _ in range(2):
        clock.sleep(0.5)
        slow.acquire()
    # Then it used the slots of its lease still ahead (no new lease while they last, nothing beyond it)
    assert len(schedule.leases) == leases and schedule.next_ms == lease_end
    # And once they are gone, it leases less than before
    while len(schedule.leases) == leases:
        clock.sleep(0.5)
        slow.acquire()
    assert schedule.leases[-1][1] < 16 * 100


def test_a_process_slower_than_the_rate_writes_the_schedule_about_once_a_second_not_per_request() -> None:
    # Given a collector whose every request takes 250 ms, against a 10/s budget (100 ms slots)
    schedule, clock = Schedule(), Clock()
    slow = budget(schedule, clock)
    for _ in range(200):
        slow.acquire()
        clock.sleep(0.25)
    # Then it leases a second of the rate at a time (10 slots, 4 of them used), not one slot per request:
    # the State item is written once per four requests, and never more than a second of the rate is wasted
    assert len(schedule.leases) <= 200 / 3
    assert max(d for _, d in schedule.leases[3:]) <= 1000
    assert all(d >= 1000 for _, d in schedule.leases[3:])
