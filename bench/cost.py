"""Metric 7, cost model: the AWS requests per file measured in metric 6's end-to-end run, scaled to a
million files and multiplied by on-demand list prices; beside it the naive design, modelled from the same
run with the batch sizes measured for it in metric 1. Extend's own charges are left out."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from bench.common import DYNAMO_WRITES, Row, Section, Table

MILLION = 1_000_000

# AWS on-demand list prices, us-east-1, as I know them (late 2024 / 2025; DynamoDB on-demand after the
# November 2024 price cut). Source: the AWS pricing pages of each service (aws.amazon.com/<service>/pricing).
# Check them before relying on the totals; free tiers are ignored.
PRICES = {
    "sqs_standard_per_million": 0.40,
    "sqs_fifo_per_million": 0.50,
    "lambda_requests_per_million": 0.20,
    "lambda_arm_gb_second": 0.0000133334,
    "dynamodb_wru_per_million": 0.625,
    "dynamodb_rru_per_million": 0.125,
    "s3_put_per_thousand": 0.005,
    "s3_get_per_thousand": 0.0004,
    "sns_publish_per_million": 0.50,
    "apigw_rest_per_million": 3.50,
    "secrets_per_10k_calls": 0.05,
    "logs_ingest_per_gb": 0.50,
}
PRICE_NOTE = (
    "Prices: AWS on-demand list prices for us-east-1 from the AWS pricing pages (SQS, Lambda arm64, "
    "DynamoDB on-demand, S3 Standard, SNS, API Gateway REST, Secrets Manager, CloudWatch Logs), as known to "
    "the author at the time of writing (2025, DynamoDB on-demand after its November 2024 price cut); they "
    "are not fetched by the benchmark - check them before relying on the dollars. Free tiers ignored."
)
MEMORY_MB = {"intake": 256, "submitter": 512, "webhook": 256, "results": 1024}  # stacks/constants.py
# Index entries a write touches besides the item (all indexes project ALL): Files PutItem → queued;
# Files UpdateItem → claim 2 (queued out, bySubmission in), mark submitted 1, outcome 1 = 4/3 on average;
# Batches writes → byBatchId and/or open ≈ 1.5; State → none.
GSI_FANOUT = {("files", "PutItem"): 1.0, ("files", "UpdateItem"): 4 / 3, "batches": 1.5, "state": 0.0}


def _wru(resource: str, operation: str, calls: float, item_bytes: float) -> float:
    fanout = GSI_FANOUT.get((resource, operation), GSI_FANOUT.get(resource, 1.0))
    return calls * max(1, math.ceil(item_bytes / 1024)) * (1 + fanout)


PER_HOUR = ("reconciler",)  # scheduled: its requests follow the clock, not the files


def _per_file_requests(counter: Any) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for (who, service, resource, operation), n in counter.resources.items():
        if who not in PER_HOUR:
            out[(service, resource, operation)] += n
    return out


def model(data: dict[str, Any], naive: dict[str, Any] | None) -> tuple[list[list[str]], float, float | None]:
    counter = data["requests"]
    resources = _per_file_requests(counter)
    files = data["files"]
    scale = MILLION / files
    per: Counter[str] = Counter()  # cost line → $ per million files
    qty: Counter[str] = Counter()  # cost line → quantity per million files

    def add(line: str, quantity: float, dollars: float) -> None:
        qty[line] += quantity
        per[line] += dollars

    # SQS: S3 notifications delivered to the arrivals queue (1 per file) + every call the handlers and
    # event sources made, less empty receives (idle polling is a cost per hour, not per file).
    add("SQS requests (standard)", MILLION, MILLION * PRICES["sqs_standard_per_million"] / MILLION)
    for (service, resource, _operation), n in resources.items():
        if service != "sqs":
            continue
        fifo = resource.endswith(".fifo")
        line = "SQS requests (FIFO flush queue)" if fifo else "SQS requests (standard)"
        price = PRICES["sqs_fifo_per_million" if fifo else "sqs_standard_per_million"]
        add(line, n * scale, n * scale * price / MILLION)
    for resource, n in counter.empty_by_resource.items():
        fifo = resource.endswith(".fifo")
        line = "SQS requests (FIFO flush queue)" if fifo else "SQS requests (standard)"
        price = PRICES["sqs_fifo_per_million" if fifo else "sqs_standard_per_million"]
        add(line, -n * scale, -n * scale * price / MILLION)

    # Lambda: invocations and GB-seconds of the per-file functions (the scheduled reconciler is per hour).
    for name, count in data["invocations"].items():
        add(
            "Lambda invocations",
            count * scale,
            count * scale * PRICES["lambda_requests_per_million"] / MILLION,
        )
        seconds = sum(data["durations"].get(name, []))
        gb_s = seconds * MEMORY_MB.get(name, 512) / 1024
        add("Lambda GB-seconds (arm64)", gb_s * scale, gb_s * scale * PRICES["lambda_arm_gb_second"])

    # DynamoDB: write units from item sizes and index fan-out, read units as estimated per call.
    file_bytes = data["file_item_bytes"]
    batch_bytes = data["batch_item_bytes"] or 400
    for (service, resource, operation), n in resources.items():
        if service != "dynamodb" or operation not in DYNAMO_WRITES:
            continue
        sizes = counter.put_bytes_by_table.get(resource) if operation == "PutItem" else None
        item = (sum(sizes) / len(sizes)) if sizes else (file_bytes if resource == "files" else batch_bytes)
        units = _wru(resource, operation, n, item if resource != "state" else 200)
        add(
            "DynamoDB write units",
            units * scale,
            units * scale * PRICES["dynamodb_wru_per_million"] / MILLION,
        )
    rru = sum(v for who, v in counter.read_units.items() if who not in PER_HOUR)
    add("DynamoDB read units", rru * scale, rru * scale * PRICES["dynamodb_rru_per_million"] / MILLION)

    # S3: HEAD/GET-class (intake's HeadObject, Extend's presigned GET of each file) and PUT-class (results,
    # manifests). The user's own uploads are not the pipeline's cost.
    gets = sum(n for (s, _, op), n in resources.items() if s == "s3" and op in ("HeadObject", "GetObject"))
    gets += int(data["sim"]["counters"].get("downloads_ok", 0)) + int(
        data["sim"]["counters"].get("downloads_failed", 0)
    )
    puts = sum(
        n
        for (s, _, op), n in resources.items()
        if s == "s3" and op in ("PutObject", "CopyObject", "ListObjectsV2")
    )
    add("S3 GET/HEAD requests", gets * scale, gets * scale * PRICES["s3_get_per_thousand"] / 1000)
    add("S3 PUT requests", puts * scale, puts * scale * PRICES["s3_put_per_thousand"] / 1000)

    publishes = sum(n for (s, _, op), n in resources.items() if s == "sns" and op == "Publish")
    add("SNS publishes", publishes * scale, publishes * scale * PRICES["sns_publish_per_million"] / MILLION)
    webhooks = data["invocations"].get("webhook", 0)
    add(
        "API Gateway requests (webhooks)",
        webhooks * scale,
        webhooks * scale * PRICES["apigw_rest_per_million"] / MILLION,
    )
    secrets = sum(n for (s, _, op), n in resources.items() if s == "secretsmanager")
    add("Secrets Manager calls", secrets * scale, secrets * scale * PRICES["secrets_per_10k_calls"] / 10_000)
    gb = data["log_bytes"] / 1e9
    add("CloudWatch Logs ingestion (GB)", gb * scale, gb * scale * PRICES["logs_ingest_per_gb"])

    ours_total = sum(per.values())
    naive_lines = _naive(data, naive, per) if naive else None
    rows = []
    for line in per:
        rows.append(
            [
                line,
                f"{qty[line]:,.0f}" if qty[line] >= 10 else f"{qty[line]:,.2f}",
                f"${per[line]:,.2f}",
                f"${naive_lines[line]:,.2f}" if naive_lines else "—",
            ]
        )
    naive_total = sum(naive_lines.values()) if naive_lines else None
    return rows, ours_total, naive_total


def _naive(data: dict[str, Any], naive: dict[str, Any], ours: Counter[str]) -> Counter[str]:
    """The naive design's $ per million files, line by line, from ours: no queue buffer (no submitter, no
    flush queue, no claim/mark writes), and everything that happens once per batch scaled by its batch
    count (the batch sizes measured for it in metric 1)."""
    files = data["files"]
    counter = data["requests"]
    scale = MILLION / files
    batch_factor = (naive["naive_submissions"] / naive["files"]) / max(1e-9, data["submissions"] / files)
    out: Counter[str] = Counter(ours)
    # No flush queue and no claim / mark-submitted UpdateItems (2 of the 3 Files updates per file).
    out["SQS requests (FIFO flush queue)"] = 0.0
    file_updates = _per_file_requests(counter).get(("dynamodb", "files", "UpdateItem"), 0)
    saved = _wru("files", "UpdateItem", min(file_updates, 2 * files), data["file_item_bytes"])
    out["DynamoDB write units"] -= saved * scale * PRICES["dynamodb_wru_per_million"] / MILLION
    submitter_reads = counter.read_units.get("submitter", 0)
    out["DynamoDB read units"] -= submitter_reads * scale * PRICES["dynamodb_rru_per_million"] / MILLION
    # One invocation per naive invocation instead of intake + submitter; the submitter's work (presign, POST)
    # moves into it, so GB-seconds stay.
    invocations = naive.get("naive_invocations", 0) * MILLION / naive["files"]
    out["Lambda invocations"] = invocations * PRICES["lambda_requests_per_million"] / MILLION
    per_batch_lines = ("SNS publishes", "API Gateway requests (webhooks)")
    for line in per_batch_lines:
        out[line] = ours[line] * batch_factor
    # Webhook + results invocations are per batch too.
    per_batch_invocations = (
        data["invocations"].get("webhook", 0) + data["invocations"].get("results", 0)
    ) * scale
    out["Lambda invocations"] += (
        per_batch_invocations * batch_factor * PRICES["lambda_requests_per_million"] / MILLION
    )
    return out


def run(shared: dict[str, Any], sections: dict[str, Section]) -> Section:
    section = Section("cost", "7. Cost model")
    data = shared.get("throughput")
    if not data:
        section.rows = [Row("not computed", "needs metric 6 (throughput) in the same run")]
        return section
    naive = shared.get("efficiency")
    rows, ours_total, naive_total = model(data, naive)
    section.setup = (
        f"Requests counted in metric 6's run ({data['files']:,} files, every AWS call of every handler and "
        "event source through botocore hooks, Extend's downloads from the simulator), scaled to 1,000,000 "
        "files and priced. " + PRICE_NOTE
    )
    section.rows = [
        Row(
            "$ per million files, AWS only (excluding Extend)",
            f"${ours_total:,.2f}",
            f"naive design: ${naive_total:,.2f}" if naive_total is not None else "naive: needs metric 1",
            f"{ours_total / naive_total:.2f}" if naive_total else "—",
            "(report)",
        ),
        Row(
            "Files item size at the end of the run (mean)",
            f"{data['file_item_bytes']:,.0f} bytes = {math.ceil(data['file_item_bytes'] / 1024)} write units "
            "per write",
            "1 KB = 1 write unit",
        ),
        Row(
            "Extend submissions per million files",
            f"{data['submissions'] / data['files'] * MILLION:,.0f}",
            (f"naive design: {naive['naive_submissions'] / naive['files'] * MILLION:,.0f}" if naive else "—"),
            (
                f"{(data['submissions'] / data['files']) / (naive['naive_submissions'] / naive['files']):.3f}"
                if naive
                else "—"
            ),
            "(report)",
        ),
    ]
    section.tables = [
        Table(
            "Per million files",
            ["line", "quantity", "batchdrop", "naive design (modelled)"],
            rows,
        )
    ]
    section.notes = [
        "Quantities come from the sandbox run; the reconciler's requests (the sweep and reconcile "
        "schedules: every minute and every 5 minutes on AWS) follow the clock, not the files, and "
        "are left out; Lambda GB-seconds use the handler wall times measured there "
        "against moto (slower than DynamoDB/S3 and sharing 2 cores), so that line is an upper bound. "
        "Idle event-source polling, the two schedules, alarms, storage (results bucket, tables), secrets' "
        "monthly fee and data transfer are per month or per GB, not per file, and are left out; Extend's "
        "downloads of the presigned URLs are S3 GETs (priced) plus data transfer out ($/GB, left out: it "
        "depends on file sizes).",
        "DynamoDB write units: ceil(item size / 1 KB) per write, times 1 + the index entries it touches "
        "(Files PutItem 1; Files UpdateItem 4/3 on average: claim 2, mark submitted 1, outcome 1; Batches "
        "1.5); item sizes are the measured averages of the run. Read units: 0.5 per 4 KB of each "
        "query/scan response (eventually consistent), 1 per 4 KB item for consistent reads.",
        (
            "Every Files write is billed by the item's size: a processed item (the `history` list of four "
            f"transitions, result summary, URL expiry) averaged {data['file_item_bytes']:,.0f} bytes, so "
            f"each "
            "of its writes and their index copies costs 2 units. Keeping the item under 1 KB (history in a "
            "separate, rarely read item; shorter attribute names) would halve the write-unit line; dropping "
            "the per-file 'mark submitted' write (metric 6) would save about a quarter of it."
            if data["file_item_bytes"] > 1024
            else f"Files items stayed under 1 KB ({data['file_item_bytes']:,.0f} bytes on average), so each "
            "write and each index copy costs 1 unit; dropping the per-file 'mark submitted' write (metric "
            "6) would save about a quarter of the write-unit line."
        ),
        "The naive design is modelled, not run end to end: the same per-file work without the buffer (no "
        "flush queue or submitter, no claim and mark-submitted writes, no submitter queries), one Lambda "
        "invocation per event-source batch measured in metric 1, and the per-batch work (webhook through "
        "API Gateway and its Lambda, results invocation, SNS message) multiplied by its measured batch "
        "count. Its real cost is Extend's: many small submissions, webhooks and collections.",
    ]
    return section
