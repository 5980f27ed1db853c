"""Metric 7, cost model: the AWS requests per file measured in metric 6's end-to-end run, scaled to a
million files and multiplied by on-demand list prices; beside it the naive design, modelled from the same
run with the batch sizes measured for it in metric 1. Extend's own charges are left out."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.report import Row, Section, Table, verdict

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
PER_HOUR = ("reconciler",)  # scheduled: its requests follow the clock, not the files
# What the buffer (accumulator) adds and the naive design has not: the flush queue, the submitter's claim
# writes and its queue reads. The naive design puts a file straight into its batch at intake.
BUFFER_WRITERS = (("submitter", "files"),)


def per_batch(who: str, service: str, resource: str) -> bool:
    """Work done once per batch, whatever its size: the Batches and State items, the results queue, the
    manifest, the announcement, the webhook and its secret."""
    return (
        who == "webhook"
        or (service == "dynamodb" and resource in ("batches", "state"))
        or (service == "sqs" and resource == "results")
        or (service == "s3" and resource == "manifests")
        or service in ("sns", "secretsmanager")
    )


class Lines:
    """$ and quantity per million files, by cost line, split into per-file and per-batch work."""

    def __init__(self) -> None:
        self.dollars: Counter[tuple[str, bool]] = Counter()
        self.quantity: Counter[tuple[str, bool]] = Counter()

    def add(self, line: str, quantity: float, dollars: float, batch: bool = False) -> None:
        self.quantity[(line, batch)] += quantity
        self.dollars[(line, batch)] += dollars

    def names(self) -> list[str]:
        return list(dict.fromkeys(line for line, _ in self.dollars))

    def total(self, line: str, batch_factor: float = 1.0) -> float:
        return self.dollars[(line, False)] + self.dollars[(line, True)] * batch_factor

    def qty(self, line: str) -> float:
        return self.quantity[(line, False)] + self.quantity[(line, True)]


def _sqs_line(resource: str) -> tuple[str, float]:
    if resource.endswith(".fifo"):
        return "SQS requests (FIFO flush queue)", PRICES["sqs_fifo_per_million"]
    return "SQS requests (standard)", PRICES["sqs_standard_per_million"]


def model(data: dict[str, Any]) -> Lines:
    """Our requests, scaled to a million files and priced line by line."""
    counter = data["requests"]
    files = data["files"]
    scale = MILLION / files
    lines = Lines()

    # SQS: S3 notifications delivered to the arrivals queue (1 per file) + every call the handlers and
    # event sources made, less empty receives (idle polling is a cost per hour, not per file).
    lines.add("SQS requests (standard)", MILLION, PRICES["sqs_standard_per_million"])
    for (who, service, resource, _operation), n in counter.resources.items():
        if service != "sqs" or who in PER_HOUR:
            continue
        line, price = _sqs_line(resource)
        lines.add(line, n * scale, n * scale * price / MILLION, per_batch(who, service, resource))
    for resource, n in counter.empty_by_resource.items():
        line, price = _sqs_line(resource)
        lines.add(line, -n * scale, -n * scale * price / MILLION, resource == "results")

    # Lambda: invocations and GB-seconds of the per-file functions (the scheduled reconciler is per hour).
    for name, count in data["invocations"].items():
        batch = name in ("webhook", "results")
        price = PRICES["lambda_requests_per_million"]
        lines.add("Lambda invocations", count * scale, count * scale * price / MILLION, batch)
        seconds = sum(data["durations"].get(name, []))
        gb_s = seconds * MEMORY_MB.get(name, 512) / 1024
        lines.add("Lambda GB-seconds (arm64)", gb_s * scale, gb_s * scale * PRICES["lambda_arm_gb_second"])

    # DynamoDB: write units as DynamoDB bills them (bench.writeunits), read units as estimated per call.
    for (who, table), units in counter.write_units.units.items():
        if who in PER_HOUR:
            continue
        price = PRICES["dynamodb_wru_per_million"]
        lines.add("DynamoDB write units", units * scale, units * scale * price / MILLION, table != "files")
    for (who, table), units in counter.read_units.items():
        if who in PER_HOUR:
            continue
        price = PRICES["dynamodb_rru_per_million"]
        lines.add("DynamoDB read units", units * scale, units * scale * price / MILLION, table != "files")

    # S3: GET-class (Extend's presigned GET of each file, any HeadObject) and PUT-class (results,
    # manifests). The user's own uploads are not the pipeline's cost.
    resources = counter.resources
    gets = sum(n for (w, s, _, op), n in resources.items() if s == "s3" and op in ("HeadObject", "GetObject")
               and w not in PER_HOUR)  # fmt: skip
    sim = data["sim"]["counters"]
    gets += int(sim.get("downloads_ok", 0)) + int(sim.get("downloads_failed", 0))
    lines.add("S3 GET/HEAD requests", gets * scale, gets * scale * PRICES["s3_get_per_thousand"] / 1000)
    for (who, service, resource, op), n in resources.items():
        if service == "s3" and op in ("PutObject", "CopyObject", "ListObjectsV2") and who not in PER_HOUR:
            dollars = n * scale * PRICES["s3_put_per_thousand"] / 1000
            lines.add("S3 PUT requests", n * scale, dollars, resource == "manifests")

    publishes = sum(n for (w, s, _, op), n in resources.items() if s == "sns" and op == "Publish")
    price = PRICES["sns_publish_per_million"]
    lines.add("SNS publishes", publishes * scale, publishes * scale * price / MILLION, True)
    webhooks = data["invocations"].get("webhook", 0)
    price = PRICES["apigw_rest_per_million"]
    lines.add("API Gateway requests (webhooks)", webhooks * scale, webhooks * scale * price / MILLION, True)
    secrets = sum(n for (w, s, _, _op), n in resources.items() if s == "secretsmanager" and w not in PER_HOUR)
    price = PRICES["secrets_per_10k_calls"]
    lines.add("Secrets Manager calls", secrets * scale, secrets * scale * price / 10_000, True)
    gb = data["log_bytes"] / 1e9
    lines.add("CloudWatch Logs ingestion (GB)", gb * scale, gb * scale * PRICES["logs_ingest_per_gb"])
    return lines


def naive_dollars(data: dict[str, Any], naive: dict[str, Any], lines: Lines) -> Counter[str]:
    """The naive design's $ per million files, line by line, from ours: the same per-file work without the
    buffer (no flush queue, no claim writes, no queue reads), and every per-batch line multiplied by its
    batch count (the batch sizes measured for it in metric 1)."""
    counter = data["requests"]
    scale = MILLION / data["files"]
    naive_rate = naive["naive_submissions"] / naive["files"]
    batch_factor = naive_rate / max(1e-9, data["submissions"] / data["files"])
    out: Counter[str] = Counter({line: lines.total(line, batch_factor) for line in lines.names()})
    out["SQS requests (FIFO flush queue)"] = 0.0
    buffer_units = sum(n for key, n in counter.write_units.units.items() if key in BUFFER_WRITERS)
    out["DynamoDB write units"] -= buffer_units * scale * PRICES["dynamodb_wru_per_million"] / MILLION
    queue_reads = counter.read_units.get(("submitter", "files"), 0)
    out["DynamoDB read units"] -= queue_reads * scale * PRICES["dynamodb_rru_per_million"] / MILLION
    # Intake and the submitter become one function, invoked once per event-source batch (its work, presign
    # and POST, moves into it, so GB-seconds stay); webhook and results invocations are per batch (above).
    ours_per_file_invocations = lines.dollars[("Lambda invocations", False)]
    naive_invocations = naive.get("naive_invocations", 0) * MILLION / naive["files"]
    out["Lambda invocations"] += (
        naive_invocations * PRICES["lambda_requests_per_million"] / MILLION - ours_per_file_invocations
    )
    return out


def write_units_per_file(data: dict[str, Any]) -> float:
    units = sum(n for (who, _), n in data["requests"].write_units.units.items() if who not in PER_HOUR)
    return units / data["files"]


HANDLERS = ("intake", "submitter", "webhook", "results", "reconciler")


def handler_requests_per_file(data: dict[str, Any]) -> float:
    calls = sum(n for (who, _s, _op), n in data["requests"].calls.items() if who in HANDLERS)
    return calls / data["files"]


REQUESTS_TARGET = 4.5
WRITE_UNITS_TARGET = 6.0


def run(shared: dict[str, Any], sections: dict[str, Section]) -> Section:
    section = Section("cost", "7. Cost model")
    data = shared.get("throughput")
    if not data:
        section.rows = [Row("not computed", "needs metric 6 (throughput) in the same run")]
        return section
    naive = shared.get("efficiency")
    lines = model(data)
    ours = {line: lines.total(line) for line in lines.names()}
    theirs = naive_dollars(data, naive, lines) if naive else None
    ours_total = sum(ours.values())
    naive_total = sum(theirs.values()) if theirs else None
    requests = handler_requests_per_file(data)
    units = write_units_per_file(data)
    meter = data["requests"].write_units
    final_sizes = meter.final_sizes("files")
    largest = max(meter.item_sizes.get("files", [0]))
    mean_size = sum(final_sizes) / max(1, len(final_sizes))
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
            "< 1 (below the naive design)",
            verdict(ours_total < naive_total) if naive_total else "—",
        ),
        Row(
            "AWS requests per file, the five handlers",
            f"{requests:.2f}",
            "—",
            "—",
            f"≤ {REQUESTS_TARGET}",
            verdict(requests <= REQUESTS_TARGET),
        ),
        Row(
            "DynamoDB write units per file (every table and index)",
            f"{units:.2f}",
            "—",
            "—",
            f"≤ {WRITE_UNITS_TARGET:.0f}",
            verdict(units <= WRITE_UNITS_TARGET),
        ),
        Row(
            "Files item size at the end of the run (mean; largest at any write)",
            f"{mean_size:,.0f} bytes; {largest:,} bytes",
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
    rows = [
        [
            line,
            f"{lines.qty(line):,.0f}" if lines.qty(line) >= 10 else f"{lines.qty(line):,.2f}",
            f"${ours[line]:,.2f}",
            f"${theirs[line]:,.2f}" if theirs else "—",
        ]
        for line in lines.names()
    ]
    by_writer = [
        [who, table, f"{meter.writes[(who, table)] / data['files']:.3f}", f"{n / data['files']:.3f}"]
        for (who, table), n in sorted(meter.units.items())
        if n / data["files"] >= 0.0005
    ]
    section.tables = [
        Table("Per million files", ["line", "quantity", "batchdrop", "naive design (modelled)"], rows),
        Table(
            "DynamoDB writes and write units per file, by writer and table",
            ["writer", "table", "writes", "write units"],
            by_writer,
        ),
    ]
    section.notes = [
        "Quantities come from the sandbox run; the reconciler's requests (the sweep and reconcile "
        "schedules: every minute and every 5 minutes on AWS) follow the clock, not the files, and "
        "are left out of the dollars (they are in the requests-per-file figure); Lambda GB-seconds use the "
        "handler wall times measured there against moto (slower than DynamoDB/S3 and sharing 2 cores), so "
        "that line is an upper bound. Idle event-source polling, the two schedules, alarms, storage "
        "(results bucket, tables), secrets' monthly fee and data transfer are per month or per GB, not per "
        "file, and are left out; Extend's downloads of the presigned URLs are S3 GETs (priced) plus data "
        "transfer out ($/GB, left out: it depends on file sizes).",
        "DynamoDB write units are DynamoDB's billing rules applied to every write of the run "
        "(`bench/writeunits.py`): ceil(size / 1 KB) of the larger of the item before and after, plus one "
        "write per index entry added, removed or changed (two when its key changes), a failed conditional "
        "write charged like a write. A normal file costs six: intake's put (item + queued entry), the claim "
        "(item, queued entry out, bySubmission entry in), the outcome (item only: the indexes hold keys "
        "only); the rest is per batch (Batches and State items) and retries. Read units: 0.5 per 4 KB of "
        "each query/scan response (eventually consistent), 1 per 4 KB item for consistent reads.",
        "The naive design is modelled, not run end to end: the same per-file work without the buffer (no "
        "flush queue, no claim writes or queue reads; a file goes straight into its batch at intake), one "
        "Lambda invocation per event-source batch measured in metric 1, and every line of per-batch work "
        "measured here (Batches and State items, the results queue, the manifest, the webhook through API "
        "Gateway and its Lambda, the results invocation, the SNS message, the secret reads) multiplied by "
        "its measured batch count. GB-seconds are kept equal (a per-batch share of the results function's "
        "time is not separated), which favours the naive design. Its real cost is Extend's: many small "
        "submissions, webhooks and collections.",
    ]
    return section
