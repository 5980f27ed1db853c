"""The long-adversity scenario: outages that last, a poison input, batches that are not ours, a late batch.

Scaled to fit a few minutes: the sweep runs every ``sweep_interval`` seconds (a minute on AWS) and a
blocked route is probed first ``probe_seconds`` after its block, doubling up to ``probe_max_seconds``
(60 s and 30 min on AWS). In order, on three routes with batches of ``batch_size``:

1. warm-up: a full batch per route, processed;
2. the API key revoked for ``key_outage_sweeps`` sweep intervals, with two full batches waiting;
3. one route's processor refused for ``processor_outage_sweeps`` sweep intervals, with a batch waiting;
4. a poison input (Extend refuses the batch naming it) among a full batch and one more file;
5. an ambiguous POST (the response is lost) whose batch becomes visible at Extend only later;

and, throughout, batches nobody here submitted, announced to the webhook like ours.

Measured: Extend's requests by endpoint during each outage, the probes and how many the backoff allows,
Files writes during each outage (after its onset: the first refused POST and the release of its files),
the largest Files item, DLQ depths, the alarms the stack would have fired (judged on the run's own
signals by ``sandbox.alarms``: expected and unexpected), and the files' outcomes. ``make reliability
--scenario adversity`` runs it; ``check`` says what must hold.

The package, by concern: ``options`` (the routes, the knobs, the sandbox they make), ``outage`` (what an
outage records, and how many probes its backoff allows), ``scenario`` (the run, phase by phase, and its
result), ``checks`` (what must hold) and ``figures`` (the table in docs/reliability.md).
"""

from sandbox.adversity.checks import check
from sandbox.adversity.figures import FIGURES_END, FIGURES_START, render, write_figures
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
from sandbox.adversity.scenario import Scenario, run
from sandbox.reliability.observe import FilesWrites

__all__ = [
    "EXPECTED_ALARMS",
    "FIGURES_END",
    "FIGURES_START",
    "MAKERS",
    "POISON_MARK",
    "PROBES",
    "REVOKED_KEY",
    "ROUTES",
    "AdversityOptions",
    "FilesWrites",
    "Outage",
    "Scenario",
    "check",
    "is_intake_dedupe",
    "probes_allowed",
    "render",
    "run",
    "sandbox_options",
    "write_figures",
]
