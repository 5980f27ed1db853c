"""Batches, runs and uploaded files, and the worker threads that process runs.

Runs go PENDING -> PROCESSING -> PROCESSED/FAILED. A global token bucket limits how many files start per
minute across all batches (like Extend's per-organisation processor throughput); queued runs start in
order of (priority, batch creation, input position).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from sandbox.extend_sim import content
from sandbox.extend_sim.faults import Faults
from sandbox.extend_sim.limits import TokenBucket
from sandbox.extend_sim.model import DEFAULT_PRIORITY, TERMINAL, Batch, Kind, Run, StoredFile, new_id
from sandbox.extend_sim.stats import Stats
from sandbox.extend_sim.webhooks import WebhookSender

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 10.0


@dataclass
class _Outcome:
    """What processing one run produced; applied to the run under the lock."""

    output: dict[str, Any] | None = None
    failure_reason: str | None = None
    failure_message: str | None = None
    file: dict[str, Any] | None = None
    pages: int = 0


class _Failed(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Engine:
    def __init__(
        self,
        *,
        faults: Faults,
        stats: Stats,
        webhooks: WebhookSender,
        files_per_minute: float,
        workers: int,
        processing_delay: float,
    ) -> None:
        self._faults = faults
        self._stats = stats
        self._webhooks = webhooks
        self.processing_delay = processing_delay
        # Burst of one file: throughput is steady from the first file on, as tests expect.
        self.throughput = TokenBucket(files_per_minute / 60, burst=1)
        self._workers = workers
        self._http = httpx.Client(timeout=DOWNLOAD_TIMEOUT_S, follow_redirects=True, trust_env=False)
        self._cond = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._seq = itertools.count()
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
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=DOWNLOAD_TIMEOUT_S + 5)
        self._http.close()

    def reset(self) -> None:
        with self._cond:
            self.batches.clear()
            self.runs.clear()
            self.files.clear()
            self._queue.clear()

    def set_files_per_minute(self, files_per_minute: float) -> None:
        self.throughput.configure(files_per_minute / 60, burst=1)

    # -- creating things -------------------------------------------------------------------------
    def add_file(self, name: str, data: bytes) -> StoredFile:
        stored = StoredFile(new_id("file_"), name, content.file_type_for_name(name), data, time.time())
        with self._cond:
            self.files[stored.id] = stored
        self._stats.incr("uploads")
        return stored

    def create_batch(
        self, kind: Kind, processor: dict[str, Any], inputs: list[dict[str, Any]], priority: int | None
    ) -> Batch:
        now = time.time()
        with self._cond:
            batch = Batch(new_id("bpr_"), kind, processor, priority, inputs, now)
            if self._faults.fail_batches > 0:
                self._faults.fail_batches -= 1
                batch.doomed = True
            batch_seq = next(self._seq)
            for position, item in enumerate(inputs):
                run = Run(
                    id=new_id(kind.run_prefix),
                    seq=next(self._seq),
                    kind=kind,
                    batch_id=batch.id,
                    processor=processor,
                    file_ref=item["file"],
                    metadata=item.get("metadata"),
                    created=now,
                    updated=now,
                )
                self.runs[run.id] = run
                batch.run_ids.append(run.id)
                order = DEFAULT_PRIORITY if priority is None else priority
                heapq.heappush(self._queue, (order, batch_seq, position, run.id))
            self.batches[batch.id] = batch
            self._cond.notify_all()
        self._stats.incr("batches")
        self._stats.incr("runs", len(inputs))
        return batch

    # -- queries ---------------------------------------------------------------------------------
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
        runs created in the same instant, so pages never skip or repeat a run.
        """
        with self._cond:
            runs = [r for r in self.runs.values() if r.kind is kind and _matches(r, kind, filters)]
        runs.sort(key=lambda r: (r.sort_value(sort_by), r.seq), reverse=descending)
        if after is not None:
            if descending:
                runs = [r for r in runs if (r.sort_value(sort_by), r.seq) < after]
            else:
                runs = [r for r in runs if (r.sort_value(sort_by), r.seq) > after]
        page = runs[:limit]
        more = len(runs) > limit
        return page, ((page[-1].sort_value(sort_by), page[-1].seq) if more else None)

    # -- processing ------------------------------------------------------------------------------
    def _next_run(self) -> Run | None:
        """Wait for a queued run and a throughput token; mark the run PROCESSING and return it."""
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait()
            # Take the token before choosing the run, so whichever worker gets it starts the
            # run at the head of the queue and the order stays (priority, batch, position).
            if not self.throughput.take(self._stop):
                return None
            with self._cond:
                while self._queue:
                    run = self.runs.get(heapq.heappop(self._queue)[3])
                    if run is not None:  # None: cleared by a reset
                        run.status = "PROCESSING"
                        run.updated = time.time()
                        batch = self.batches[run.batch_id]
                        if batch.status == "PENDING":
                            batch.status = "PROCESSING"
                        return run
            # Another worker emptied the queue first; the token was not used.
            self.throughput.give_back()
        return None

    def _work(self) -> None:
        while (run := self._next_run()) is not None:
            try:
                outcome = self._process(run)
            except Exception as exc:  # a simulator bug must fail the run, not kill the worker
                log.exception("processing %s failed", run.id)
                outcome = _Outcome(failure_reason="INTERNAL_ERROR", failure_message=f"simulator error: {exc}")
            self._finish(run, outcome)

    def _process(self, run: Run) -> _Outcome:
        if self.processing_delay:
            self._stop.wait(self.processing_delay)
        with self._cond:
            doomed = self.batches[run.batch_id].doomed
        if doomed:
            return _Outcome(failure_reason="INTERNAL_ERROR", failure_message="Simulated batch failure.")
        try:
            stored = self._load(run.file_ref)
            reason = content.failure_reason(content.decode_text(stored.data))
            if reason:
                raise _Failed(reason, f"Simulated failure requested by the file content ({reason}).")
            output = run.kind.output(stored.data, run.config)
        except _Failed as failed:
            return _Outcome(failure_reason=failed.reason, failure_message=failed.message)
        summary = stored.to_api()
        return _Outcome(output=output, file=summary, pages=summary["metadata"]["pageCount"])

    def _load(self, ref: dict[str, Any]) -> StoredFile:
        """The file a reference points to; URLs are downloaded now, at processing time, as Extend does."""
        if "text" in ref:
            name = ref.get("name") or "input.txt"
            return StoredFile(new_id("file_"), name, "TXT", ref["text"].encode("utf-8"), time.time())
        if "id" in ref:
            with self._cond:
                stored = self.files.get(ref["id"])
            if stored is None:
                raise _Failed("FAILED_TO_PROCESS_FILE", f"File {ref['id']} was not found.")
            return stored
        url = ref["url"]
        try:
            response = self._http.get(url)
        except httpx.HTTPError as exc:
            self._stats.incr("downloads_failed")
            raise _Failed("FAILED_TO_PROCESS_FILE", f"Could not download file: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            self._stats.incr("downloads_failed")
            raise _Failed("FAILED_TO_PROCESS_FILE", f"Could not download file: HTTP {response.status_code}")
        self._stats.incr("downloads_ok")
        data = response.content
        name = ref.get("name") or unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or "file"
        file_type = content.file_type_for_name(name, default="PDF" if data.startswith(b"%PDF") else "TXT")
        return StoredFile(new_id("file_"), name, file_type, data, time.time())

    def _finish(self, run: Run, outcome: _Outcome) -> None:
        event: tuple[str, dict[str, Any]] | None = None
        with self._cond:
            if self.runs.get(run.id) is not run:
                return  # the simulator was reset while this run was processing
            run.status = "FAILED" if outcome.failure_reason else "PROCESSED"
            run.output = outcome.output
            run.failure_reason = outcome.failure_reason
            run.failure_message = outcome.failure_message
            run.file = outcome.file  # None when failed, as Extend reports it
            run.pages = outcome.pages
            run.updated = time.time()
            batch = self.batches[run.batch_id]
            if all(self.runs[rid].status in TERMINAL for rid in batch.run_ids):
                # PROCESSED means "all runs finished", even if some failed; FAILED is a batch-level error.
                batch.status = "FAILED" if batch.doomed else "PROCESSED"
                event_type = "batch_processor_run." + batch.status.lower()
                event = (event_type, batch.to_api())
        self._stats.incr("files_processed")
        if event:
            self._webhooks.publish(*event)


def _matches(run: Run, kind: Kind, filters: dict[str, str]) -> bool:
    if "batchId" in filters and run.batch_id != filters["batchId"]:
        return False
    if kind.filter_param in filters and run.processor["id"] != filters[kind.filter_param]:
        return False
    if "status" in filters and run.status != filters["status"]:
        return False
    if "fileNameContains" in filters and filters["fileNameContains"].lower() not in run.file_name.lower():
        return False
    # Every simulated run comes from a batch.
    return filters.get("source", "BATCH_PROCESSOR_RUN") == "BATCH_PROCESSOR_RUN"
