"""DynamoDB table definitions, the one source for the stacks (CDK) and the sandbox (boto3).

Every key attribute is a string. The questions each index answers are in docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index. ``projection`` names the attributes copied into it besides the keys;
    ``None`` copies the whole item (ALL), ``()`` only the keys (KEYS_ONLY).

    A narrow projection is cheaper twice over: an index entry costs write units by its own size, and an
    update that changes no attribute of the entry does not write to the index at all."""

    name: str
    partition_key: str
    sort_key: str | None = None
    projection: tuple[str, ...] | None = ()

    @property
    def projection_type(self) -> str:
        if self.projection is None:
            return "ALL"
        return "INCLUDE" if self.projection else "KEYS_ONLY"

    def boto_projection(self) -> dict[str, Any]:
        projection: dict[str, Any] = {"ProjectionType": self.projection_type}
        if self.projection:
            projection["NonKeyAttributes"] = list(self.projection)
        return projection


@dataclass(frozen=True)
class TableSpec:
    construct_id: str
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    ttl_attribute: str | None = None

    def key_attributes(self) -> list[str]:
        names = [self.partition_key, *([self.sort_key] if self.sort_key else [])]
        for index in self.indexes:
            names += [index.partition_key, *([index.sort_key] if index.sort_key else [])]
        return list(dict.fromkeys(names))

    def create_table_kwargs(self, table_name: str) -> dict[str, Any]:
        """Arguments for boto3 ``create_table`` that match what the stack deploys (on-demand)."""
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [
                {"AttributeName": n, "AttributeType": "S"} for n in self.key_attributes()
            ],
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
        }
        if self.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": _key_schema(index.partition_key, index.sort_key),
                    "Projection": index.boto_projection(),
                }
                for index in self.indexes
            ]
        return kwargs


def _key_schema(partition_key: str, sort_key: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": partition_key, "KeyType": "HASH"}]
    if sort_key:
        schema.append({"AttributeName": sort_key, "KeyType": "RANGE"})
    return schema


# Files: one item per S3 object version. fileKey = "<bucket>/<key>", versionId = the S3 version id.
# The Files indexes hold keys only: their readers need to know which files, and read the items themselves
# (the submitter's claim returns the claimed item), so a file's outcome write touches no index.
FILES_QUEUED_INDEX = IndexSpec("queued", "queuedShard", "queuedAt")  # sparse: only QUEUED files
# Files of one batch. No sort key: an index sort key is limited to 1,024 bytes, and fileKey
# ("<bucket>/<key>") is longer than that for the longest S3 keys, so such a file could never be written.
FILES_SUBMISSION_INDEX = IndexSpec("bySubmission", "submissionId")
FILES_PROBLEMS_INDEX = IndexSpec("problems", "problemRoute", "problemAt")  # sparse: FAILED/REJECTED
FILES = TableSpec(
    construct_id="Files",
    partition_key="fileKey",
    sort_key="versionId",
    indexes=(FILES_QUEUED_INDEX, FILES_SUBMISSION_INDEX, FILES_PROBLEMS_INDEX),
)

# Batches: one item per submission (ours, created before the POST); batchId is Extend's id.
BATCHES_BATCH_ID_INDEX = IndexSpec("byBatchId", "batchId")  # readers then read the item itself
# sparse: non-terminal submissions; its readers (sweep, reconciler, orphans, status) use whole submissions.
BATCHES_OPEN_INDEX = IndexSpec("open", "openRoute", "createdAt", projection=None)
BATCHES = TableSpec(
    construct_id="Batches",
    partition_key="submissionId",
    indexes=(BATCHES_BATCH_ID_INDEX, BATCHES_OPEN_INDEX),
)

# State: small control items (route health, webhook event dedupe with a TTL).
STATE = TableSpec(construct_id="State", partition_key="pk", ttl_attribute="expiresAt")
# Its partition keys. The functions' IAM conditions (dynamodb:LeadingKeys in stacks.functions) are built
# from these, so a role and the code that uses it name the same items.
STATE_WEBHOOK_PREFIX = "WEBHOOK#"  # + Extend's event id: webhook dedupe (StateStore.claim_event …)
STATE_ROUTE_PREFIX = "ROUTE#"  # + route name: blocked / backed off (StateStore.route_state …)
STATE_LEDGER_KEY = "EXTEND#outstanding"  # files at Extend (admission)
STATE_RATE_PREFIX = "RATE#"  # + budget name, "read" or "write": request budgets (StateStore.lease_slots)
# The routes in effect when they were applied with `batchdrop routes apply` (batchdrop_core.liveroutes):
# one item, so a change (which the model validates as a whole: prefixes must not overlap…) is atomic.
# Every function that uses settings may read it: intake and results with GetItem alone (their roles are
# otherwise limited); the webhook uses no setting and may not.
STATE_ROUTES_KEY = "ROUTES"


def state_rate_key(budget: str) -> str:
    return f"{STATE_RATE_PREFIX}{budget}"


# The State items a function may touch, where its role is limited to some (dynamodb:LeadingKeys,
# StringLike patterns). The submitter and the reconciler use every kind, so theirs are not limited.
STATE_LEADING_KEYS = {
    "webhook": (f"{STATE_WEBHOOK_PREFIX}*",),  # its event ids only: it faces the internet
    "results": (STATE_LEDGER_KEY, state_rate_key("read")),  # collection releases room, reads at Extend
}


ALL_TABLES = (FILES, BATCHES, STATE)
