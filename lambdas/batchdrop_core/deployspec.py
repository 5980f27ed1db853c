"""What is deployed, as plain data without the CDK: each function's handler, timeout and memory, the queue
that triggers it and how, and the schedules. The stacks wrap it in CDK types (``stacks.constants``), the
sandbox runs the same functions from it (``sandbox.pipeline``), and the functions read their own limits
here; ``tests/infra/test_sandbox_mirrors_stacks.py`` synthesizes the app and checks, function by function,
that the template and the sandbox's wiring agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QueueTrigger:
    """An SQS event source mapping."""

    batch_size: int
    batching_window_seconds: int = 0
    # None: Lambda's default; on a FIFO queue that is one invocation per message group with messages.
    max_concurrency: int | None = None


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # its handler package under lambdas/, and the sandbox's function name batchdrop-<name>
    construct_id: str
    timeout_seconds: int
    memory_mb: int
    trigger: QueueTrigger | None = None  # None: invoked by API Gateway or EventBridge

    @property
    def module(self) -> str:
        return f"{self.name}.handler"

    @property
    def handler(self) -> str:
        return f"{self.module}.lambda_handler"

    @property
    def function_name(self) -> str:
        return f"batchdrop-{self.name}"


@dataclass(frozen=True)
class Schedule:
    task: str  # the reconciler's input: {"task": <task>}
    rate_seconds: int


INTAKE_TRIGGER = QueueTrigger(1000, batching_window_seconds=5, max_concurrency=5)
# One flush request (one route) per invocation; FIFO: one invocation per route at a time.
SUBMITTER_TRIGGER = QueueTrigger(1)
# One batch collection per invocation; 2 copies, the event source's minimum, each taking half the read rate.
RESULTS_TRIGGER = QueueTrigger(1, max_concurrency=2)

INTAKE = FunctionSpec("intake", "Intake", 60, 256, INTAKE_TRIGGER)
SUBMITTER = FunctionSpec("submitter", "Submitter", 300, 512, SUBMITTER_TRIGGER)
WEBHOOK = FunctionSpec("webhook", "Webhook", 10, 256)
RESULTS = FunctionSpec("results", "Results", 900, 1024, RESULTS_TRIGGER)
RECONCILER = FunctionSpec("reconciler", "Reconciler", 300, 512)
FUNCTIONS = (INTAKE, SUBMITTER, WEBHOOK, RESULTS, RECONCILER)

SWEEP = Schedule("sweep", 60)
RECONCILE = Schedule("reconcile", 300)
SCHEDULES = (SWEEP, RECONCILE)
