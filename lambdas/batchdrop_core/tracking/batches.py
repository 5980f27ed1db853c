"""The Batches table: one item per submission, created before Extend is called."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from batchdrop_core.dynamo import (
    UpdateBuilder,
    conditional_write,
    from_item,
    index_query,
    query_all,
    scan_all,
    serialize,
    to_item,
)
from batchdrop_core.redact import redact
from batchdrop_core.tables import (
    BATCHES_BATCH_ID_INDEX,
    BATCHES_OPEN_INDEX,
)
from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking.records import (
    BatchState,
    Submission,
)


class BatchStore:
    """The Batches table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    def _key(self, submission_id: str) -> dict[str, Any]:
        return {"submissionId": serialize(submission_id)}

    def create(self, submission: Submission) -> None:
        """A new submission's item (before its POST); ``openRoute`` lists it among its route's open ones."""
        values = {**submission.to_values(), "openRoute": submission.route, "fileCount": submission.file_count}
        self.client.put_item(
            TableName=self.table,
            Item=to_item(values),
            ConditionExpression="attribute_not_exists(submissionId)",
        )

    def get(self, submission_id: str) -> Submission | None:
        item = self.client.get_item(
            TableName=self.table, Key=self._key(submission_id), ConsistentRead=True
        ).get("Item")
        return Submission.from_values(from_item(item)) if item else None

    def by_batch_id(self, batch_id: str) -> Submission | None:
        query = index_query(self.table, BATCHES_BATCH_ID_INDEX.name, ("batchId", batch_id))
        items = list(query_all(self.client, **query))
        # The index is eventually consistent: read the item itself for its current state.
        return self.get(items[0]["submissionId"]) if items else None

    def open_submissions(self, route: str, created_before: str | None = None) -> list[Submission]:
        """Non-terminal submissions of a route, oldest first."""
        query = index_query(
            self.table, BATCHES_OPEN_INDEX.name, ("openRoute", route), ("createdAt", "<", created_before)
        )
        return [Submission.from_values(v) for v in query_all(self.client, **query)]

    def update(self, submission_id: str, update: UpdateBuilder, condition: str | None = None) -> bool:
        return conditional_write(
            self.client.update_item,
            TableName=self.table,
            Key=self._key(submission_id),
            **update.kwargs(condition),
        )

    def transition(
        self, submission_id: str, from_states: Iterable[str], to_state: str, **attributes: Any
    ) -> bool:
        """Move a submission between states exactly once; terminal states leave the open index."""
        update = UpdateBuilder().set("state", to_state)
        for name, value in attributes.items():
            # A note may quote Extend: redacted like every stored message.
            update.set(name, redact(value) if name == "note" and value is not None else value)
        if to_state in BatchState.TERMINAL:
            update.remove("openRoute")
        placeholders = []
        for i, state in enumerate(from_states):
            placeholders.append(update.value(f"from{i}", state))
        condition = f"#state IN ({', '.join(placeholders)})"
        return self.update(submission_id, update, condition)

    def count_runs(self, submission_id: str, *, settled: int = 0, out_of_processing: int = 0) -> Submission:
        """Add to the run counters of a submission whose runs report one by one; the item as it is now."""
        update = UpdateBuilder().add_number("runsSettled", settled)
        update.add_number("runsOutOfProcessing", out_of_processing)
        response = self.client.update_item(
            TableName=self.table,
            Key=self._key(submission_id),
            ReturnValues="ALL_NEW",
            **update.kwargs("attribute_exists(submissionId)"),
        )
        return Submission.from_values(from_item(response["Attributes"]))

    def set_run_counts(self, submission_id: str, settled: int, out_of_processing: int) -> bool:
        """Set the run counters to what a sweep of the batch found (a count a crash left short)."""
        update = UpdateBuilder().set("runsSettled", settled).set("runsOutOfProcessing", out_of_processing)
        return self.update(submission_id, update, "attribute_exists(submissionId)")

    def link_batch_id(self, submission_id: str, batch_id: str) -> bool:
        """Record Extend's batch id once; a second, different id for one submission is refused."""
        update = UpdateBuilder().set("batchId", batch_id)
        update.value("sameBatch", batch_id)
        return self.update(submission_id, update, "attribute_not_exists(batchId) OR batchId = :sameBatch")

    def record_orphan_search(self, submission_id: str, searches: int) -> bool:
        """An ambiguous submission was searched for at Extend and not found (yet)."""
        update = UpdateBuilder().set("orphanSearches", searches).set("orphanSearchedAt", now_iso())
        update.name("state")
        update.value("submitting", BatchState.SUBMITTING)
        update.value("unknown", BatchState.UNKNOWN)
        return self.update(submission_id, update, "#state IN (:submitting, :unknown)")

    def claim_late_batch(self, submission_id: str, batch_id: str) -> bool:
        """An ABANDONED submission's batch turned up at Extend: True the first time it is seen (the
        metric and the alert go out once)."""
        update = UpdateBuilder().set("lateBatchAt", now_iso()).set("note", f"late duplicate batch {batch_id}")
        update.name("state")
        update.value("abandoned", BatchState.ABANDONED)
        return self.update(submission_id, update, "#state = :abandoned AND attribute_not_exists(lateBatchAt)")

    def claim_notification(self, submission_id: str) -> str | None:
        """Take the right to announce a submission's outcome: the claim's timestamp, or None when another
        caller already has it (one SNS message per batch outcome, I4)."""
        at = now_iso()
        update = UpdateBuilder().set("notifiedAt", at)
        return at if self.update(submission_id, update, "attribute_not_exists(notifiedAt)") else None

    def release_notification(self, submission_id: str, claimed_at: str) -> bool:
        """Give a claim back after the publish failed, so the retry announces the outcome."""
        update = UpdateBuilder().remove("notifiedAt")
        update.value("claimedAt", claimed_at)
        return self.update(submission_id, update, "notifiedAt = :claimedAt")

    def claim_collection(self, submission_id: str, owner: str, until: str) -> bool:
        """Lease a submission's result collection to one worker until ``until`` (ISO time), so duplicate
        requests do not spend the read budget twice. An expired lease can be taken over."""
        update = UpdateBuilder().set("collectorId", owner).set("collectorUntil", until)
        update.value("now", now_iso())
        update.value("owner", owner)
        condition = "attribute_not_exists(collectorUntil) OR collectorUntil < :now OR collectorId = :owner"
        return self.update(submission_id, update, condition)

    def release_collection(self, submission_id: str, owner: str) -> bool:
        update = UpdateBuilder().remove("collectorId").remove("collectorUntil")
        update.value("owner", owner)
        return self.update(submission_id, update, "collectorId = :owner")

    def finished(
        self, route: str | None = None, states: Iterable[str] = BatchState.TERMINAL
    ) -> list[Submission]:
        """Every submission (of ``route``, if given) in one of ``states``; for operators (``status``,
        ``export``).

        A Scan filtered to those states: no index orders finished batches, and the table holds one item
        per batch of up to 1,000 files, so it stays small next to the Files table.
        """
        names = {"#state": "state"}
        values = {f":s{i}": serialize(state) for i, state in enumerate(sorted(states))}
        expression = f"#state IN ({', '.join(values)})"
        if route:
            expression += " AND #route = :route"
            names["#route"] = "route"
            values[":route"] = serialize(route)
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        return [Submission.from_values(v) for v in scan_all(self.client, **kwargs)]
