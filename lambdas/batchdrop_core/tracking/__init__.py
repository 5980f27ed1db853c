"""Files, batches and route state in DynamoDB: the only code that knows the tables' attribute names.

``records`` holds the items as typed records and their vocabularies; ``files``, ``batches`` and ``state``
hold one store per table. Every state change is a conditional write, so duplicates, retries and races
change nothing twice (invariants I1, I3, I4). The tables are defined in ``batchdrop_core.tables``.
"""

from batchdrop_core.tracking.batches import BatchStore
from batchdrop_core.tracking.files import FileStore
from batchdrop_core.tracking.records import (
    IN_REVIEW,
    MAX_HISTORY_ENTRIES,
    SUBMISSION_NOT_SENT,
    UNROUTED,
    BatchState,
    FileStatus,
    QueuedEntry,
    Submission,
    TrackedFile,
    attribute_name,
    file_id,
    new_submission_id,
    queued_shard,
    split_file_id,
    with_derived_names,
)
from batchdrop_core.tracking.state import EVENT_ACCEPTED, EVENT_PENDING, StateStore

__all__ = [
    "EVENT_ACCEPTED",
    "EVENT_PENDING",
    "IN_REVIEW",
    "MAX_HISTORY_ENTRIES",
    "SUBMISSION_NOT_SENT",
    "UNROUTED",
    "BatchState",
    "BatchStore",
    "FileStatus",
    "FileStore",
    "QueuedEntry",
    "StateStore",
    "Submission",
    "TrackedFile",
    "attribute_name",
    "file_id",
    "new_submission_id",
    "queued_shard",
    "split_file_id",
    "with_derived_names",
]
