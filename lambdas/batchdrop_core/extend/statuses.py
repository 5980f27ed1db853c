"""Run and batch statuses, in plain Python: the functions compare them before (or without) loading the API
models, which build on pydantic (``models`` re-exports them)."""

from __future__ import annotations


class RunStatus:
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


class BatchStatus:
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_RUN_STATUSES = frozenset({RunStatus.PROCESSED, RunStatus.FAILED, RunStatus.CANCELLED})
TERMINAL_BATCH_STATUSES = frozenset({BatchStatus.PROCESSED, BatchStatus.FAILED, BatchStatus.CANCELLED})
