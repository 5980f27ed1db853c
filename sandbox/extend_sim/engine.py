"""Batches, runs and uploaded files, and the worker threads that process runs.

Runs go PENDING -> PROCESSING -> PROCESSED/FAILED (workflow runs may stop at NEEDS_REVIEW until a
review approves them, PROCESSED, or rejects them, REJECTED). One token bucket limits how many files
start per minute across the whole workspace, whatever their kind (like Extend's processor throughput);
queued runs start in order of (priority, batch submission, input position), so batches wait behind each
other as in Extend's delayed queue. A run's file is fetched when its processing starts, so a presigned
URL that expired while its batch waited fails that run.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from sandbox.extend_sim import content
from sandbox.extend_sim.faults import Chance, Faults
from sandbox.extend_sim.kinds import TERMINAL, Kind
from sandbox.extend_sim.limits import TokenBucket
from sandbox.extend_sim.model import DEFAULT_PRIORITY, Batch, Run, StoredFile, new_id
from sandbox.extend_sim.processing import DOWNLOAD_TIMEOUT_S, Failed, Outcome, compute_output, load_file
from sandbox.extend_sim.stats import Stats
from sandbox.extend_sim.webhooks import WebhookSender

log = logging.getLogger(__name__)

WORKFLOW_EVENTS = {
    "PROCESSED": "workflow_run.completed",
    "FAILED": "workflow_run.failed",
    "NEEDS_REVIEW": "workflow_run.needs_review",
    "REJECTED": "workflow_run.rejected",
}


class Engine:
    def __init__(
        self,
        *,
        faults: Faults,
        stats: Stats,
        webhooks: WebhookSender,
        chance: Chance,
        base_url: Callable[[], str],
        files_per_minute: float,
        workers: int,
        processing_delay: float,
    ) -> None:
        self._faults = faults
        self._stats = stats
        self._webhooks = webhooks
        self._chance = chance
        self._base_url = base_url
        self.processing_delay = processing_delay
        # Burst of one file: throughput is steady from the first file on, as tests expect.
        self.throughput = TokenBucket(files_per_minute / 60, burst=1)
        # Settings changed through ExtendSimulator.configure (under the lock).
        self.paused = False
        self.review_share = 0.0  # share of workflow runs that stop at NEEDS_REVIEW
        self.max_file_bytes = 0  # larger files fail (parse: FILE_SIZE_TOO_LARGE); 0: no limit
        self._workers = workers
        self._http = httpx.Client(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True, trust_env=False)
        self._cond = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._timers: list[threading.Timer] = []
        self._seq = itertools.count()
        self._starts = itertools.count()
        self.batches: dict[str, Batch] = {}
        self.runs: dict[str, Run] = {}
        self.files: dict[str, StoredFile] = {}
        self._queue: list[tuple[int, int, int, str]] = []  # (priority, batch seq, position, run id)

    @property
    def lock(self) -> threading.Condition:
        return self._cond

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        for i in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"extend-sim-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            for timer in self._timers:
                timer.cancel()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=DOWNLOAD_TIMEOUT_S + 5)
        self._http.close()

    def reset(self) -> None:
        with self._cond:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            self.batches.clear()
            self.runs.clear()
            self.files.clear()
            self._queue.clear()

    def set_files_per_minute(self, files_per_minute: float) -> None:
        self.throughput.configure(files_per_minute / 60, burst=1)

    def set_paused(self, paused: bool) -> None:
        with self._cond:
            self.paused = paused
            self._cond.notify_all()

    # -- creating things -------------------------------------------------------------------------
    def add_file(self, name: str, data: bytes) -> StoredFile:
        stored = StoredFile(new_id("file_"), name, content.file_type_for_name(name), data, time.time())
        with self._cond:
            self.files[stored.id] = stored
        self._stats.incr("uploads")
        return stored

    def create_batch(
        self,
        kind: Kind,
        processor: dict[str, Any] | None,
        inputs: list[dict[str, Any]],
        priority: int | None,
        *,
        config: dict[str, Any] | None = None,
        hidden_for: float = 0.0,
        foreign: bool = False,
    ) -> Batch:
        """Accept a batch. With ``hidden_for``, it (and its runs) appear and queue only that much later."""
        now = time.time()
        visible = now + max(hidden_for, 0.0)
        with self._cond:
            batch = Batch(
                new_id(kind.batch_prefix),
                kind,
                processor,
                priority,
                inputs,
                visible,
                config=config,
                accepted=now,
                foreign=foreign,
            )
            if self._faults.fail_batches > 0:
                self._faults.fail_batches -= 1
                batch.doomed = True
            for item in inputs:
                run = Run(
                    id=new_id(kind.run_prefix),
                    seq=next(self._seq),
                    kind=kind,
                    batch_id=batch.id,
                    processor=processor,
                    file_ref=item["file"],
                    metadata=item.get("metadata"),
                    created=visible,
                    updated=visible,
                    batch_config=config,
                )
                self.runs[run.id] = run
                batch.run_ids.append(run.id)
            self.batches[batch.id] = batch
            # Counted before any run can start, so a run never finishes before its batch was accepted.
            self._stats.accepted(batch.id, kind.name, len(inputs), foreign=foreign)
            if visible > now:
                self._timers = [t for t in self._timers if t.is_alive()]
                timer = threading.Timer(visible - now, self._reveal, args=(batch.id,))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
            else:
                self._enqueue(batch)
        self._stats.incr("batches")
        self._stats.incr("runs", len(inputs))
        if foreign:
            self._stats.incr("foreign_batches")
        return batch

    def _enqueue(self, batch: Batch) -> None:
        """Queue a batch's runs behind everything queued before it (call with the lock held)."""
        batch_seq = next(self._seq)
        order = DEFAULT_PRIORITY if batch.priority is None else batch.priority
        for position, run_id in enumerate(batch.run_ids):
            heapq.heappush(self._queue, (order, batch_seq, position, run_id))
        self._cond.notify_all()

    def _reveal(self, batch_id: str) -> None:
        with self._cond:
            batch = self.batches.get(batch_id)
            if batch is not None:  # None: cleared by a reset
                self._enqueue(batch)

    # -- queries ---------------------------------------------------------------------------------
    @staticmethod
    def visible(batch: Batch | None, now: float | None = None) -> bool:
        return batch is not None and batch.created <= (time.time() if now is None else now)

    def visible_batch(self, batch_id: str) -> Batch | None:
        with self._cond:
            batch = self.batches.get(batch_id)
            return batch if self.visible(batch) else None

    def visible_run(self, run_id: str, kind: Kind | None = None) -> Run | None:
        with self._cond:
            run = self.runs.get(run_id)
            if run is None or (kind is not None and run.kind is not kind):
                return None
            return run if self.visible(self.batches.get(run.batch_id)) else None

    def list_runs(
        self,
        kind: Kind,
        *,
        filters: dict[str, str],
        sort_by: str,
        descending: bool,
        after: tuple[float, int] | None,
        limit: int,
    ) -> tuple[list[Run], tuple[float, int] | None]:
        """One page of runs and the key to continue after (None on the last page).

        Keyset pagination on (sort value, creation sequence): the sequence number is the tiebreaker for
        runs created in the same instant, so pages never skip or repeat a run whose sort value stays put.
        (Sorted by updatedAt, a run that changes between two pages moves, as it would at Extend.)
        """
        now = time.time()
        with self._cond:
            runs = [
                r
                for r in self.runs.values()
                if r.kind is kind
                and self.visible(self.batches.get(r.batch_id), now)
                and _matches(r, kind, filters)
            ]
            keyed = [((r.sort_value(sort_by), r.seq), r) for r in runs]
        keyed.sort(key=lambda pair: pair[0], reverse=descending)
        if after is not None:
            keyed = [p for p in keyed if (p[0] < after if descending else p[0] > after)]
        page = keyed[:limit]
        more = len(keyed) > limit
        return [r for _, r in page], (page[-1][0] if more else None)

    # -- reviews ---------------------------------------------------------------------------------
    def review(self, run_ids: Iterable[str], *, approve: bool, note: str | None = None) -> list[str]:
        """Approve (PROCESSED) or reject (REJECTED) workflow runs waiting in NEEDS_REVIEW; the ids done."""
        done: list[str] = []
        events: list[tuple[str, dict[str, Any]]] = []
        now = time.time()
        with self._cond:
            for run_id in run_ids:
                run = self.runs.get(run_id)
                if run is None or run.status != "NEEDS_REVIEW":
                    continue
                run.status = "PROCESSED" if approve else "REJECTED"
                run.reviewed_at = now
                run.rejection_note = None if approve else (note or "Rejected in review")
                run.updated = now
                run.ended = now
                done.append(run.id)
                self._stats.finished()
                events.append((WORKFLOW_EVENTS[run.status], run.to_api(full=True, base_url=self._base_url())))
                self._settle_batch(self.batches[run.batch_id])
        if done:
            self._stats.incr("reviews", len(done))
        for event in events:
            self._webhooks.publish(*event)
        return done

    def waiting_for_review(self, batch_id: str | None = None) -> list[str]:
        with self._cond:
            return [
                r.id
                for r in self.runs.values()
                if r.status == "NEEDS_REVIEW" and (batch_id is None or r.batch_id == batch_id)
            ]

    # -- processing ------------------------------------------------------------------------------
    def _next_run(self) -> Run | None:
        """Wait for a queued run and a throughput token; mark the run PROCESSING and return it."""
        while not self._stop.is_set():
            with self._cond:
                while (not self._queue or self.paused) and not self._stop.is_set():
                    self._cond.wait(0.5)
            # Take the token before choosing the run, so whichever worker gets it starts the
            # run at the head of the queue and the order stays (priority, batch, position).
            if not self.throughput.take(self._stop):
                return None
            with self._cond:
                while self._queue and not self.paused:
                    run = self.runs.get(heapq.heappop(self._queue)[3])
                    if run is not None:  # None: cleared by a reset
                        run.status = "PROCESSING"
                        run.started = run.updated = time.time()
                        run.start_order = next(self._starts)
                        batch = self.batches[run.batch_id]
                        if batch.status == "PENDING":
                            batch.status = "PROCESSING"
                        return run
            # Another worker emptied the queue first, or processing was paused: the token was not used.
            self.throughput.give_back()
        return None

    def _work(self) -> None:
        while (run := self._next_run()) is not None:
            try:
                outcome = self._process(run)
            except Exception as exc:  # a simulator bug must fail the run, not kill the worker
                log.exception("processing %s failed", run.id)
                outcome = Outcome(failure_reason="INTERNAL_ERROR", failure_message=f"simulator error: {exc}")
            self._finish(run, outcome)

    def _process(self, run: Run) -> Outcome:
        if self.processing_delay:
            self._stop.wait(self.processing_delay)
        with self._cond:
            doomed = self.batches[run.batch_id].doomed
        if doomed:
            return Outcome(failure_reason="INTERNAL_ERROR", failure_message="Simulated batch failure.")
        try:
            stored = load_file(run, uploaded=self._uploaded_file, http=self._http, stats=self._stats)
            text, output = compute_output(run, stored, max_file_bytes=self.max_file_bytes)
        except Failed as failed:
            return Outcome(failure_reason=failed.reason, failure_message=failed.message)
        review = run.kind.family == "workflow" and (
            content.wants_review(text) or self._chance.hit(self.review_share)
        )
        summary = stored.to_api()
        return Outcome(output=output, file=summary, pages=summary["metadata"]["pageCount"], review=review)

    def _uploaded_file(self, file_id: str) -> StoredFile | None:
        with self._cond:
            return self.files.get(file_id)

    def _finish(self, run: Run, outcome: Outcome) -> None:
        events: list[tuple[str, dict[str, Any]]] = []
        with self._cond:
            if self.runs.get(run.id) is not run:
                return  # the simulator was reset while this run was processing
            if outcome.failure_reason:
                run.status = "FAILED"
            elif outcome.review:
                run.status = "NEEDS_REVIEW"
            else:
                run.status = "PROCESSED"
            run.output = outcome.output
            run.failure_reason = outcome.failure_reason
            run.failure_message = outcome.failure_message
            run.file = outcome.file  # None when failed, as Extend reports it
            run.pages = outcome.pages
            run.updated = time.time()
            if run.status in TERMINAL:
                run.ended = run.updated
            if run.status in TERMINAL:
                # Under the lock, so the figures never lag behind what the API shows.
                self._stats.finished()
            if run.kind.family == "workflow":  # one event per run, none per batch
                events.append((WORKFLOW_EVENTS[run.status], run.to_api(full=True, base_url=self._base_url())))
            if event := self._settle_batch(self.batches[run.batch_id]):
                events.append(event)
        self._stats.incr("files_processed")
        for event in events:
            self._webhooks.publish(*event)

    def _settle_batch(self, batch: Batch) -> tuple[str, dict[str, Any]] | None:
        """Close the batch once every run is terminal; its webhook event, if its kind has one."""
        if batch.status in TERMINAL or not all(self.runs[r].status in TERMINAL for r in batch.run_ids):
            return None
        # PROCESSED means "all runs finished", even if some failed; FAILED is a batch-level error.
        batch.status = "FAILED" if batch.doomed else "PROCESSED"
        if batch.kind.batch_event is None:
            return None
        return f"{batch.kind.batch_event}.{batch.status.lower()}", batch.to_api()


def _matches(run: Run, kind: Kind, filters: dict[str, str]) -> bool:
    if "batchId" in filters and run.batch_id != filters["batchId"]:
        return False
    wanted = filters.get(kind.filter_param) if kind.filter_param else None
    if wanted is not None and (run.processor or {}).get("id") != wanted:
        return False
    if "status" in filters and run.status != filters["status"]:
        return False
    if "fileNameContains" in filters and filters["fileNameContains"].lower() not in run.file_name.lower():
        return False
    if "batchId" in filters:  # it takes precedence over source
        return True
    # Every simulated run comes from a batch.
    return kind.source is None or filters.get("source", kind.source) == kind.source
