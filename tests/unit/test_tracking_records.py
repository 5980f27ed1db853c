"""The tracking records' DynamoDB attribute names are computed in one place (``tracking.records``); these
tests pin the names the tables hold, so a renamed field cannot silently change what is stored or read."""

from __future__ import annotations

import dataclasses

from batchdrop_core.tracking import BatchState, FileStatus, Submission, TrackedFile, attribute_name

FILES_ATTRIBUTES = {
    "fileKey",
    "versionId",
    "status",
    "route",
    "size",
    "etag",
    "contentType",
    "userMetadata",
    "arrivedAt",
    "queuedAt",
    "submissionId",
    "batchId",
    "runId",
    "attempts",
    "completedAt",
    "resultKey",
    "resultSummary",
    "failureReason",
    "failureMessage",
    "reviewSince",
    "history",
}
BATCHES_ATTRIBUTES = {
    "submissionId",
    "route",
    "processorType",
    "processorId",
    "state",
    "createdAt",
    "processorVersion",
    "routeDigest",
    "fileCount",
    "batchId",
    "submittedAt",
    "completedAt",
    "extendStatus",
    "processedCount",
    "failedCount",
    "requeuedCount",
    "adopted",
    "note",
    "notifiedAt",
    "manifestKey",
    "urlExpiresAt",
    "orphanSearches",
    "orphanSearchedAt",
    "lateBatchAt",
    "credits",
    "runsSettled",
    "runsOutOfProcessing",
}


def test_attribute_names_are_the_fields_in_camel_case() -> None:
    assert attribute_name("url_expires_at") == "urlExpiresAt"
    assert attribute_name("etag") == "etag"
    assert set(TrackedFile("b", "k", "v", FileStatus.QUEUED).to_values()) == FILES_ATTRIBUTES
    submission = Submission("sub_1", "invoices", "extract", "ex_1", BatchState.SUBMITTING, "t0")
    assert set(submission.to_values()) == BATCHES_ATTRIBUTES


def test_a_new_file_stores_only_what_it_has() -> None:
    tracked = TrackedFile("drop", "invoices/a.pdf", "v1", FileStatus.QUEUED, route="invoices", size=0)
    stored = {k: v for k, v in tracked.to_values().items() if v is not None}
    # size 0 is a value (an empty file), not the default; attempts 0, no metadata, no history are not stored
    assert stored == {
        "fileKey": "drop/invoices/a.pdf",
        "versionId": "v1",
        "status": "QUEUED",
        "route": "invoices",
        "size": 0,
    }


def test_every_field_survives_a_round_trip_through_the_items_values() -> None:
    def filled(cls: type, **fixed: object) -> object:
        values: dict[str, object] = {}
        for i, f in enumerate(dataclasses.fields(cls)):
            if f.name in fixed:
                values[f.name] = fixed[f.name]
            elif f.type in ("int", "int | None"):
                values[f.name] = i + 1
            elif f.type == "bool":
                values[f.name] = True
            elif "dict" in str(f.type):
                values[f.name] = {"k": str(i)}
            elif "list" in str(f.type):
                values[f.name] = [{"at": str(i)}]
            else:
                values[f.name] = f"value-{i}"
        return cls(**values)

    tracked = filled(TrackedFile, bucket="drop", key="a/b#c.pdf")
    assert TrackedFile.from_values(tracked.to_values()) == tracked  # type: ignore[attr-defined]
    submission = filled(Submission)
    assert Submission.from_values(submission.to_values()) == submission  # type: ignore[attr-defined]
