"""The adversity scenario's routes and knobs, and the sandbox they make (time scaled to fit minutes)."""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.documents import document, invoice, packet
from sandbox.local import SandboxOptions

ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_adversity"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_adversity"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_adversity"},
]
MAKERS = {"invoices": invoice, "documents": document, "packets": packet}
PROBES = {
    "invoices": "GET /extractors/{id}",
    "documents": "GET /classifiers/{id}",
    "packets": "GET /splitters/{id}",
}
POISON_MARK = "POISON"
REVOKED_KEY = "sk_test_revoked_for_the_scenario"
# Alarms an outage of this length is meant to raise; anything else that fires is unexpected.
EXPECTED_ALARMS = {"LateDuplicateBatches"}


@dataclass
class AdversityOptions:
    batch_size: int = 50
    sweep_interval: float = 2.0
    key_outage_sweeps: int = 60
    processor_outage_sweeps: int = 30
    probe_seconds: int = 2
    probe_max_seconds: int = 30
    foreign_every_seconds: float = 10.0
    lost_batch_delay_seconds: float = 45.0
    phase_timeout: float = 300.0


def sandbox_options(options: AdversityOptions) -> SandboxOptions:
    return SandboxOptions(
        routes=ROUTES,
        settings={
            "maxBatchSize": options.batch_size,
            "maxWaitSeconds": 3600,  # only full batches go out: a partial one would hide a refill's failure
            "probeIntervalSeconds": options.probe_seconds,
            "probeIntervalMaxSeconds": options.probe_max_seconds,
            "orphanGraceSeconds": 10,
            "webhookGraceMinutes": 1,
        },
        sweep_interval=options.sweep_interval,
        reconcile_interval=options.sweep_interval * 5,
        name_prefix="adversity",
    )
