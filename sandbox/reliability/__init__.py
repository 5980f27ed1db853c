"""``make reliability``: the fault-injection run and the invariant checker (I1 to I6).

Starts the sandbox, drops files over the three example routes together with adversarial objects and SQS
messages, injects every fault kind on a schedule while the pipeline works, waits (bounded) until every
file is terminal, then checks the invariants from DynamoDB, the results bucket, the SNS messages, the
simulator's inspection API and the captured logs. Writes a JSON report; exits 1 on any violation.

    python -m sandbox.reliability [--files N] [--seed S] [--report PATH]

The default is the long run (5,000 files). ``docs/reliability.md`` says what each check means precisely.

The package, by concern: ``plan`` (the workload and what the run must end with), ``faults`` (what is
injected, and when), ``crashpoints`` (the seams a crash goes in through), ``observe`` (progress,
settling, the end state gathered for the checks, the logs), ``checks`` (the invariants), ``queue_stays``
(when each file waited, for I2), ``report`` (the JSON report and the figures in docs/reliability.md) and
``runner`` (the scenarios and the command line).
"""

from sandbox.reliability.checks import INVARIANTS, check, result_key_for
from sandbox.reliability.crashpoints import SimulatedCrash
from sandbox.reliability.faults import FaultInjector
from sandbox.reliability.observe import FilesWrites, State, gather
from sandbox.reliability.plan import ALL_FAULT_KINDS, Expectations, RunOptions, short_options
from sandbox.reliability.queue_stays import queue_stays
from sandbox.reliability.report import DOC, FIGURES_END, FIGURES_START, render_figures, write_figures
from sandbox.reliability.runner import main, run, run_scenario

__all__ = [
    "ALL_FAULT_KINDS",
    "DOC",
    "FIGURES_END",
    "FIGURES_START",
    "INVARIANTS",
    "Expectations",
    "FaultInjector",
    "FilesWrites",
    "RunOptions",
    "SimulatedCrash",
    "State",
    "check",
    "gather",
    "main",
    "queue_stays",
    "render_figures",
    "result_key_for",
    "run",
    "run_scenario",
    "short_options",
    "write_figures",
]
