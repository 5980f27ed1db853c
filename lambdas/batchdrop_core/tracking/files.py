"""The Files table: one item per object version, from intake to its outcome. Every state change is a
conditional write, so duplicates, retries and races change nothing twice (I1, I3, I4). The reads are in
``file_reads``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from batchdrop_core.dynamo import (
    UpdateBuilder,
    conditional_write,
    from_item,
    to_item,
)
from batchdrop_core.redact import redact, redact_optional
from batchdrop_core.timeutil import now_iso
from batchdrop_core.tracking.file_reads import FileReads
from batchdrop_core.tracking.records import (
    MAX_HISTORY_ENTRIES,
    SUBMISSION_NOT_SENT,
    UNROUTED,
    FileStatus,
    QueuedEntry,
    TrackedFile,
    queued_shard,
)


def _entry(at: str, status: str, **details: Any) -> list[dict[str, Any]]:
    return [{"at": at, "status": status, **{k: v for k, v in details.items() if v is not None}}]


class FileStore(FileReads):
    """The Files table."""

    def add(self, tracked: TrackedFile) -> bool:
        """Create the item for a new object version; False when it already exists (a duplicate event)."""
        values = tracked.to_values()
        if tracked.status == FileStatus.QUEUED:
            values["queuedShard"] = queued_shard(
                tracked.route or UNROUTED, tracked.file_id, self.queued_shards
            )
            values["queuedAt"] = tracked.queued_at or tracked.arrived_at
        if tracked.status == FileStatus.REJECTED:
            values["problemRoute"] = tracked.route or UNROUTED
            values["problemAt"] = tracked.arrived_at
        return conditional_write(
            self.client.put_item,
            TableName=self.table,
            Item=to_item(values),
            ConditionExpression="attribute_not_exists(fileKey)",
        )

    def _conditional_update(self, key: dict[str, Any], update: UpdateBuilder, condition: str) -> bool:
        return conditional_write(
            self.client.update_item, TableName=self.table, Key=key, **update.kwargs(condition)
        )

    def claim(self, entries: Iterable[QueuedEntry], submission_id: str) -> list[TrackedFile]:
        """Move QUEUED files into a submission; returns the claimed files as they now are (the others
        moved on meanwhile). One conditional write per file, which also reads the item back."""

        def claim_one(entry: QueuedEntry) -> TrackedFile | None:
            update = (
                UpdateBuilder()
                .set("status", FileStatus.SUBMITTED)
                .set("submissionId", submission_id)
                .remove("queuedShard")
                .remove("batchId")
                .remove("runId")
                .add_number("attempts", 1)
            )
            update.value("expectQueued", FileStatus.QUEUED)
            try:
                response = self.client.update_item(
                    TableName=self.table,
                    Key=entry.item_key(),
                    ReturnValues="ALL_NEW",
                    **update.kwargs("#status = :expectQueued"),
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    return None
                raise
            return TrackedFile.from_values(from_item(response["Attributes"]))

        return [f for f in self._parallel(claim_one, entries) if f is not None]

    def release(self, files: Iterable[TrackedFile], submission_id: str) -> int:
        """Put the files of a submission that never reached Extend back in the queue, in their old place
        (``queuedAt`` is kept), with the attempt given back; the history says which submission held them."""
        at = now_iso()

        def release_one(tracked: TrackedFile) -> bool:
            update = (
                UpdateBuilder()
                .set("status", FileStatus.QUEUED)
                .set(
                    "queuedShard",
                    queued_shard(tracked.route or UNROUTED, tracked.file_id, self.queued_shards),
                )
                .set_if_absent("queuedAt", tracked.queued_at or tracked.arrived_at or at)
                .remove("submissionId")
                .add_number("attempts", -1)
            )
            if len(tracked.history) < MAX_HISTORY_ENTRIES:
                update.append(
                    "history",
                    _entry(at, FileStatus.QUEUED, submissionId=submission_id, reason=SUBMISSION_NOT_SENT),
                )
            update.value("expectSubmission", submission_id)
            update.value("expectSubmitted", FileStatus.SUBMITTED)
            condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
            return self._conditional_update(tracked.item_key(), update, condition)

        return sum(self._parallel(release_one, files))

    def reject_claimed(self, tracked: TrackedFile, submission_id: str, reason: str, message: str) -> bool:
        """A claimed file that cannot go to Extend (Extend refused it as an input, or its object version
        is gone) is REJECTED and leaves the submission; its batch-mates go on without it. The claim's
        attempt is given back: the file never reached Extend in a batch (``attempts`` counts batches)."""
        at = now_iso()
        update = (
            UpdateBuilder()
            .set("status", FileStatus.REJECTED)
            .set("completedAt", at)
            .set("failureReason", reason)
            .set("failureMessage", redact(message))
            .set("problemRoute", tracked.route or UNROUTED)
            .set("problemAt", at)
            .remove("submissionId")
            .add_number("attempts", -1)
        )
        update.value("expectSubmission", submission_id)
        update.value("expectSubmitted", FileStatus.SUBMITTED)
        condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
        return self._conditional_update(tracked.item_key(), update, condition)

    def record_outcome(
        self,
        tracked: TrackedFile,
        submission_id: str,
        *,
        status: str,
        run_id: str | None,
        batch_id: str | None = None,
        result_key: str | None = None,
        result_summary: dict[str, Any] | None = None,
        failure_reason: str | None = None,
        failure_message: str | None = None,
    ) -> bool:
        """SUBMITTED → PROCESSED/FAILED, exactly once per attempt (I4)."""
        at = now_iso()
        update = (
            UpdateBuilder()
            .set("status", status)
            .set("runId", run_id)
            .set("completedAt", at)
            .set("resultKey", result_key)
            .set("resultSummary", result_summary)
            .set("failureReason", redact_optional(failure_reason))
            .set("failureMessage", redact_optional(failure_message))
        )
        if batch_id:
            update.set("batchId", batch_id)
        if status == FileStatus.FAILED:
            update.set("problemRoute", tracked.route or UNROUTED).set("problemAt", at)
        update.value("expectSubmission", submission_id)
        update.value("expectSubmitted", FileStatus.SUBMITTED)
        condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
        return self._conditional_update(tracked.item_key(), update, condition)

    def mark_in_review(self, tracked: TrackedFile, submission_id: str, run_id: str, since: str) -> bool:
        """SUBMITTED, its run waiting on a person's review at Extend: recorded once (I4)."""
        update = UpdateBuilder().set("reviewSince", since).set("runId", run_id)
        update.value("expectSubmission", submission_id)
        update.value("expectSubmitted", FileStatus.SUBMITTED)
        condition = (
            "submissionId = :expectSubmission AND #status = :expectSubmitted"
            " AND attribute_not_exists(reviewSince)"
        )
        update.name("status")
        return self._conditional_update(tracked.item_key(), update, condition)

    def requeue(
        self,
        tracked: TrackedFile,
        submission_id: str | None,
        reason: str,
        message: str | None,
        run_id: str | None = None,
        *,
        spent_attempt: bool = True,
    ) -> bool:
        """Send a file round again (a retryable run failure, or an operator retry of a FAILED file), at the
        back of the queue; the attempt that did not settle it goes into its history. ``spent_attempt``
        False gives the attempt back (the failure was not the file's)."""
        at = now_iso()
        previous = submission_id or tracked.submission_id
        update = (
            UpdateBuilder()
            .set("status", FileStatus.QUEUED)
            .set("queuedShard", queued_shard(tracked.route or UNROUTED, tracked.file_id, self.queued_shards))
            .set("queuedAt", at)
            .remove("submissionId")
            .remove("problemRoute")
            .remove("problemAt")
            .set("failureReason", redact(reason))
            .set("failureMessage", redact_optional(message))
        )
        if not spent_attempt:
            update.add_number("attempts", -1)
        if len(tracked.history) < MAX_HISTORY_ENTRIES:
            entry = _entry(at, FileStatus.QUEUED, submissionId=previous, runId=run_id or tracked.run_id)
            entry[0]["reason"] = reason
            update.append("history", entry)
        if submission_id is None:
            update.value("expectFailed", FileStatus.FAILED)
            return self._conditional_update(tracked.item_key(), update, "#status = :expectFailed")
        update.value("expectSubmission", submission_id)
        update.value("expectSubmitted", FileStatus.SUBMITTED)
        condition = "submissionId = :expectSubmission AND #status = :expectSubmitted"
        return self._conditional_update(tracked.item_key(), update, condition)

    def reopen(self, tracked: TrackedFile, fresh: TrackedFile, reason: str, message: str) -> bool:
        """Send a finished file (REJECTED or PROCESSED) through again, as intake would take it today:
        QUEUED under ``fresh``'s route (intake's description under the settings now), attempts from zero.
        Only from the status it was read in, so a second operator or a repeated command sends it once."""
        at = now_iso()
        route = fresh.route or UNROUTED
        update = (
            UpdateBuilder()
            .set("status", FileStatus.QUEUED)
            .set("route", fresh.route)
            .set("queuedShard", queued_shard(route, tracked.file_id, self.queued_shards))
            .set("queuedAt", at)
            .set("attempts", 0)
            .set("contentType", fresh.content_type)
            .set("failureReason", reason)
            .set("failureMessage", redact(message))
            .remove("submissionId")
            .remove("batchId")
            .remove("runId")
            .remove("completedAt")
            .remove("resultKey")
            .remove("resultSummary")
            .remove("problemRoute")
            .remove("problemAt")
        )
        if fresh.user_metadata:
            update.set("userMetadata", fresh.user_metadata)
        else:
            update.remove("userMetadata")
        if len(tracked.history) < MAX_HISTORY_ENTRIES:
            update.append("history", _entry(at, FileStatus.QUEUED, runId=tracked.run_id, reason=reason))
        update.value("expectStatus", tracked.status)
        return self._conditional_update(tracked.item_key(), update, "#status = :expectStatus")
