"""The adversity run, phase by phase: warm-up, the outages, the poison input, the late batch, with foreign
batches throughout; and its result, the figures ``check`` and the doc read."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

import httpx

from batchdrop_core.dynamo import scan_all
from batchdrop_core.inputs import EXTEND_REFUSED_INPUT
from batchdrop_core.tracking import FileStatus, with_derived_names
from sandbox import alarms, reliability
from sandbox.adversity.options import (
    EXPECTED_ALARMS,
    MAKERS,
    POISON_MARK,
    PROBES,
    REVOKED_KEY,
    ROUTES,
    AdversityOptions,
    sandbox_options,
)
from sandbox.adversity.outage import Outage, is_intake_dedupe, probes_allowed
from sandbox.local import Sandbox
from sandbox.reliability.observe import FilesWrites


class Scenario:
    def __init__(self, options: AdversityOptions, say: Any, log_text: Any) -> None:
        self.options = options
        self.say = say
        self.log_text = log_text  # the captured handler output (EMF metrics included)
        self.sandbox = Sandbox(sandbox_options(options))
        self.sim_url = ""
        self.dlq_samples: dict[str, list[tuple[float, int]]] = {}
        self.outages: list[Outage] = []
        self.poison_key = ""
        self.lost_batch_keys: list[str] = []
        self._serial = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.foreign_batches = 0
        self.writes: FilesWrites | None = None

    # -- plumbing --
    def sim(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.sim_url}{path}", json=body, timeout=60)
        return response.raise_for_status().json()

    def drop(self, route: str, count: int, *, name_mark: str = "") -> list[str]:
        s3 = self.sandbox.deployment.session.client("s3")
        bucket = self.sandbox.deployment.resources.drop_bucket
        keys = []
        for _ in range(count):
            self._serial += 1
            sample = MAKERS[route](random.Random(self._serial), self._serial)
            key = sample.key if not name_mark else sample.key.replace(".", f"-{name_mark}.", 1)
            s3.put_object(Bucket=bucket, Key=key, Body=sample.body)
            keys.append(key)
        return keys

    def files(self) -> list[dict[str, Any]]:
        ddb = self.sandbox.deployment.session.client("dynamodb")
        table = self.sandbox.deployment.resources.files_table
        return [with_derived_names(v) for v in scan_all(ddb, TableName=table)]

    def by_key(self) -> dict[str, dict[str, Any]]:
        return {f["key"]: f for f in self.files()}

    def wait(self, what: str, ready: Any, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.options.phase_timeout)
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"adversity: timed out waiting for {what}")

    def statuses(self, keys: list[str]) -> Counter[str]:
        files = self.by_key()
        return Counter(files[k]["status"] if k in files else "UNTRACKED" for k in keys)

    def all_processed(self, keys: list[str]) -> bool:
        return self.statuses(keys)[FileStatus.PROCESSED] == len(keys)

    def tracked(self, keys: list[str]) -> bool:
        return "UNTRACKED" not in self.statuses(keys)

    def _writes(self, start: float, end: float) -> dict[str, int]:
        return self.writes.between(start, end) if self.writes else {}

    def arrivals_drained(self) -> bool:
        """No S3 notification waiting or in flight (a redelivered one would write again at intake)."""
        sqs = self.sandbox.deployment.session.client("sqs")
        attrs = sqs.get_queue_attributes(
            QueueUrl=self.sandbox.deployment.arrivals_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return not any(int(v) for v in attrs.values())

    def route_state(self, route: str) -> dict[str, Any]:
        return self.sandbox.pipeline.runtime("reconciler").state.route_state(route)

    def requests(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for template, outcomes in self.sim("GET", "/_sim/stats")["requests"].items():
            if not template.split(" ", 1)[1].startswith("/_sim"):
                totals[template] = sum(outcomes.values())
        return totals

    def _background(self) -> None:
        """Foreign batches every few seconds; DLQ depths every second."""
        sqs = self.sandbox.deployment.session.client("sqs")
        next_foreign = time.monotonic()
        while not self._stop.wait(1.0):
            for name, url in self.sandbox.deployment.dlq_urls.items():
                attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
                depth = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
                self.dlq_samples.setdefault(name.capitalize(), []).append((time.time(), depth))
            if time.monotonic() >= next_foreign:
                next_foreign += self.options.foreign_every_seconds
                kind = ("extract", "classify", "split")[self.foreign_batches % 3]
                self.sim("POST", "/_sim/foreign_batches", {"type": kind, "batches": 1, "runs": 3})
                self.foreign_batches += 1

    # -- phases --
    def warm_up(self) -> None:
        keys = [k for route in MAKERS for k in self.drop(route, self.options.batch_size)]
        self.wait("the warm-up batches", lambda: self.all_processed(keys))
        self.say(f"adversity: warm-up done ({len(keys)} files processed)")

    def outage(self, name: str, routes: list[str], sweeps: int, begin: Any, end: Any) -> Outage:
        o = Outage(name, routes)
        o.onset_started = time.time()
        begin()
        keys = [k for route in routes for k in self.drop(route, self.options.batch_size)]
        self.wait(f"{name}: files tracked", lambda: self.tracked(keys))
        self.wait(f"{name}: every notification read", self.arrivals_drained)
        self.wait(f"{name}: routes blocked", lambda: all(self.route_state(r).get("blocked") for r in routes))
        o.started = time.time()
        before = self.requests()
        self.say(f"adversity: {name}: every route blocked; holding for {sweeps} sweep intervals")
        time.sleep(sweeps * self.options.sweep_interval)
        after = self.requests()
        o.ended = time.time()
        end()
        o.requests = {t: n - before.get(t, 0) for t, n in after.items() if n - before.get(t, 0)}
        o.probes = {r: o.requests.get(PROBES[r], 0) for r in routes}
        o.probes_allowed = probes_allowed(
            o.ended - o.started, self.options.probe_seconds, self.options.probe_max_seconds
        )
        self.wait(f"{name}: the waiting files processed after it", lambda: self.all_processed(keys))
        o.resumed = time.time()
        self.say(f"adversity: {name}: over; its files processed {o.resumed - o.ended:.0f} s later")
        self.outages.append(o)
        return o

    def poison(self) -> dict[str, Any]:
        self.sim("POST", "/_sim/faults", {"refuse_file_names": POISON_MARK})
        [self.poison_key] = self.drop("invoices", 1, name_mark=POISON_MARK)
        mates = self.drop("invoices", self.options.batch_size)
        self.wait("the poison file's batch-mates", lambda: self.all_processed(mates))
        self.wait("the poison file's outcome", lambda: self.statuses([self.poison_key])[FileStatus.REJECTED])
        self.sim("POST", "/_sim/faults", {"refuse_file_names": ""})
        self.say("adversity: poison input isolated")
        return {"mates": mates}

    def late_batch(self) -> None:
        delay = self.options.lost_batch_delay_seconds
        self.sim("POST", "/_sim/faults", {"lose_post_response": 1, "lost_batch_delay_seconds": delay})
        self.lost_batch_keys = self.drop("packets", self.options.batch_size)
        self.wait(
            "the late batch's files", lambda: self.all_processed(self.lost_batch_keys), timeout=delay + 600
        )
        self.say("adversity: the batch whose POST response was lost is done")

    # -- the run --
    def run(self) -> dict[str, Any]:
        sandbox = self.sandbox.start()
        self.sim_url = sandbox.simulator.base_url
        self.writes = FilesWrites(sandbox.deployment.resources.files_table)
        self.writes.install()
        started = time.time()
        background = threading.Thread(target=self._background, name="adversity", daemon=True)
        background.start()
        try:
            self.warm_up()
            self.outage(
                "key revoked",
                list(MAKERS),
                self.options.key_outage_sweeps,
                lambda: self.sim("POST", "/_sim/config", {"api_key": REVOKED_KEY}),
                lambda: self.sim("POST", "/_sim/config", {"api_key": None}),
            )
            refused = ROUTES[1]["processorId"]
            self.outage(
                "processor refused",
                ["documents"],
                self.options.processor_outage_sweeps,
                lambda: self.sim("POST", "/_sim/config", {"refused_processors": [refused]}),
                lambda: self.sim("POST", "/_sim/config", {"refused_processors": []}),
            )
            poison = self.poison()
            self.late_batch()
            time.sleep(self.options.sweep_interval * 3)  # the last webhooks and foreign batches settle
            return self.report(started, poison)
        finally:
            self._stop.set()
            background.join(timeout=10)
            self.writes.uninstall()
            sandbox.stop()

    def invariants(self) -> dict[str, list[str]]:
        """The long fault run's checker (I1 to I6) over this run's end state: the poison file is the one
        expected rejection, and the batch whose POST response was lost the one forced late duplicate."""
        exp = reliability.Expectations(
            rejected={self.poison_key: EXTEND_REFUSED_INPUT}, late_duplicates_allowed=1
        )
        times = self.writes.snapshot() if self.writes else None
        state = reliability.gather(self.sandbox, self.log_text(), write_times=times)
        deployment = self.sandbox.deployment
        return reliability.check(state, exp, self.sandbox.settings, deployment.resources.drop_bucket)

    def report(self, started: float, poison: dict[str, Any]) -> dict[str, Any]:
        files = self.files()
        pipeline = self.sandbox.pipeline
        signals = alarms.Signals(
            custom=alarms.emf_points(self.log_text()),
            dlq_depths=self.dlq_samples,
            function_errors={
                "Intake": pipeline.intake.errors,
                "Submitter": pipeline.submitter.errors,
                "Results": pipeline.results.errors if pipeline.results else 0,
                "Webhook": self.sandbox.webhook_server.answers.get(502, 0),
            },
            api_5xx=sum(n for status, n in self.sandbox.webhook_server.answers.items() if status >= 500),
        )
        fired = alarms.evaluate(alarms.synthesized_alarms(), signals)
        poison_file = next((f for f in files if f["key"] == self.poison_key), {})
        by_key = {f["key"]: f for f in files}
        mates = [by_key[k] for k in poison["mates"] if k in by_key]
        ddb = self.sandbox.deployment.session.client("dynamodb")
        batches = {
            b["submissionId"]: b
            for b in scan_all(ddb, TableName=self.sandbox.deployment.resources.batches_table)
        }
        mates_batch_sizes = sorted(
            {int(batches[m["submissionId"]]["fileCount"]) for m in mates if m.get("submissionId") in batches}
        )
        violations = self.invariants()
        results = self.sandbox.deployment.session.client("s3").list_objects_v2(
            Bucket=self.sandbox.deployment.resources.results_bucket, Prefix="results/"
        )
        return {
            "options": asdict(self.options),
            "durationSeconds": round(time.time() - started, 1),
            "files": len(files),
            "byStatus": dict(Counter(f["status"] for f in files)),
            "largestFilesItemBytes": max(len(json.dumps(f, default=str)) for f in files),
            "outages": [
                {
                    "name": o.name,
                    "routes": o.routes,
                    "seconds": round(o.ended - o.started, 1),
                    "sweepIntervals": round((o.ended - o.started) / self.options.sweep_interval),
                    "extendRequests": o.requests,
                    "probes": o.probes,
                    "probesAllowed": o.probes_allowed,
                    "fileWritesAtOnset": sum(self._writes(o.onset_started, o.started).values()),
                    # Intake's conditional PutItem for a repeated S3 notification is the arrival path's
                    # dedupe (S3 delivers at least once), not the blocked route's work: counted apart.
                    "fileWrites": sum(
                        n for op, n in self._writes(o.started, o.ended).items() if not is_intake_dedupe(op)
                    ),
                    "fileWritesByOperation": self._writes(o.started, o.ended),
                    "resumedAfterSeconds": round(o.resumed - o.ended, 1),
                }
                for o in self.outages
            ],
            "poison": {
                "key": self.poison_key,
                "status": poison_file.get("status"),
                "reason": poison_file.get("failureReason"),
                "message": poison_file.get("failureMessage"),
                "mates": len(mates),
                "matesProcessed": sum(1 for m in mates if m["status"] == FileStatus.PROCESSED),
                "matesBatchSizes": mates_batch_sizes,
            },
            "lateBatch": {
                "files": len(self.lost_batch_keys),
                "statuses": dict(self.statuses(self.lost_batch_keys)),
                "submissions": dict(Counter(b["state"] for b in batches.values() if b["route"] == "packets")),
            },
            "largestAttempts": max(int(f.get("attempts", 0)) for f in files),
            "foreignBatchesSent": self.foreign_batches,
            "resultObjects": results.get("KeyCount", 0),
            "dlqMax": {
                name: max((d for _, d in samples), default=0) for name, samples in self.dlq_samples.items()
            },
            "alarmsFired": [f.describe() for f in fired],
            "invariantViolations": violations,
            "unexpectedAlarms": [f.describe() for f in fired if f.alarm not in EXPECTED_ALARMS],
        }


def run(options: AdversityOptions, say: Any, log_text: Any) -> dict[str, Any]:
    return Scenario(options, say, log_text).run()
