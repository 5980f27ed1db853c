"""Metric 2, intake cost: AWS requests per file, and the intake handler's time for one 1,000-record event
against 1,000 sequential conditional PutItem calls to the same moto server (the cheapest way to record
1,000 files one request at a time), measured back to back in each repetition, alternating the order."""

from __future__ import annotations

import copy
import math
import time
from typing import Any

from bench.console import progress
from bench.harness import hand_driven_sandbox, make_files, upload_all
from bench.report import Row, Section, Table, verdict
from bench.request_counter import DYNAMO_WRITES, RequestCounter, count_runtime_requests
from bench.stats import ratio_summary, self_cpu_seconds, summarize
from bench.writeunits import item_size
from sandbox.lambda_runtime import LambdaContext, sqs_record

FULL_RECORDS = 1000
QUICK_RECORDS = 300


def _receive_all(sqs: Any, url: str, wanted: int) -> list[dict[str, Any]]:
    """Every arrivals message once (test events left out); the messages are never deleted."""
    seen: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 300
    while len(seen) < wanted and time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=900).get(
            "Messages", []
        )
        if not batch:
            time.sleep(0.2)
        for message in batch:
            if "s3:TestEvent" not in message["Body"]:
                seen.setdefault(message["MessageId"], message)
    return list(seen.values())


def run(quick: bool) -> Section:
    repetitions = 1 if quick else 3
    records = QUICK_RECORDS if quick else FULL_RECORDS
    section = Section("intake", "2. Intake cost")
    counter = RequestCounter()
    sandbox = hand_driven_sandbox("intake", intake_window=0.5)
    try:
        with count_runtime_requests(counter):
            pipeline = sandbox.start().pipeline
            counter.name_pipeline(pipeline)
            files = make_files({"invoices": records * (repetitions + 1)}, seed=21)
            progress(f"intake: uploading {len(files)} files")
            upload_all(sandbox.deployment, files)
            sqs = sandbox.deployment.session.client("sqs")
            messages = _receive_all(sqs, sandbox.deployment.arrivals_queue_url, len(files))
            if len(messages) < len(files):
                raise RuntimeError(f"only {len(messages)} of {len(files)} notifications arrived")
            arn = pipeline.intake.queue_arn
            events = [
                {"Records": [sqs_record(m, arn) for m in messages[i : i + records]]}
                for i in range(0, len(messages), records)
            ]
            handler = pipeline.modules["intake"].lambda_handler
            rt = pipeline.runtime("intake")
            ddb = rt.client("dynamodb")
            captured: list[dict[str, Any]] = []

            def capture(params: Any = None, **_: Any) -> None:
                captured.append(copy.deepcopy(params["Item"]))

            # Warm-up (connections, clients, the thread pool) on the first event; its items become the
            # baseline's items, so both write the same item shape and size.
            ddb.meta.events.register("before-parameter-build.dynamodb.PutItem", capture)
            handler(events[0], LambdaContext("batchdrop-intake", 60))
            ddb.meta.events.unregister("before-parameter-build.dynamodb.PutItem", capture)
            handler_seconds: list[float] = []
            baseline_seconds: list[float] = []
            moto_cpu: dict[str, list[float]] = {"handler": [], "baseline": []}
            own_cpu: dict[str, list[float]] = {"handler": [], "baseline": []}
            per_file: dict[tuple[str, str], float] = {}
            for rep in range(repetitions):

                def handler_run(rep: int = rep) -> None:
                    before = counter.by_service("intake")
                    cpu, mine = sandbox.moto.cpu_seconds(), self_cpu_seconds()
                    started = time.perf_counter()
                    response = handler(events[rep + 1], LambdaContext("batchdrop-intake", 60))
                    handler_seconds.append(time.perf_counter() - started)
                    moto_cpu["handler"].append(sandbox.moto.cpu_seconds() - cpu)
                    own_cpu["handler"].append(self_cpu_seconds() - mine)
                    if response.get("batchItemFailures"):
                        raise RuntimeError(f"intake reported failures: {response['batchItemFailures'][:3]}")
                    after = counter.by_service("intake")
                    for key in after:
                        per_file[key] = (after[key] - before.get(key, 0)) / records

                def baseline_run(rep: int = rep) -> None:
                    items = []
                    for item in captured[:records]:
                        item = dict(item)
                        item["fileKey"] = {"S": f"baseline-{rep}/{item['fileKey']['S']}"}
                        items.append(item)
                    cpu, mine = sandbox.moto.cpu_seconds(), self_cpu_seconds()
                    started = time.perf_counter()
                    for item in items:
                        ddb.put_item(
                            TableName=rt.resources.files_table,
                            Item=item,
                            ConditionExpression="attribute_not_exists(fileKey)",
                        )
                    baseline_seconds.append(time.perf_counter() - started)
                    moto_cpu["baseline"].append(sandbox.moto.cpu_seconds() - cpu)
                    own_cpu["baseline"].append(self_cpu_seconds() - mine)

                order = (handler_run, baseline_run) if rep % 2 == 0 else (baseline_run, handler_run)
                for step in order:
                    step()
                progress(
                    f"  intake rep {rep + 1}: handler {handler_seconds[-1]:.2f}s, "
                    f"baseline {baseline_seconds[-1]:.2f}s"
                )
    finally:
        sandbox.stop()

    ratio = ratio_summary(handler_seconds, baseline_seconds)
    handler = summarize(handler_seconds)
    baseline = summarize(baseline_seconds)
    writes = sum(v for (svc, op), v in per_file.items() if svc == "dynamodb" and op in DYNAMO_WRITES)
    total = sum(per_file.values())
    cpu_h, cpu_b = summarize(moto_cpu["handler"]), summarize(moto_cpu["baseline"])
    own_h, own_b = summarize(own_cpu["handler"]), summarize(own_cpu["baseline"])
    item_bytes = summarize([float(item_size(i)) for i in captured[:records]])
    section.setup = (
        f"One route, {repetitions} timed repetitions (+1 warm-up) of a {records}-record SQS event "
        "built from real S3 notifications of uploaded files; the handler (`intake.handler.lambda_handler`) "
        "is called directly, as the event source would. Baseline: the same number of sequential conditional "
        "PutItem "
        "calls (`attribute_not_exists(fileKey)`) of the items intake wrote in the warm-up (same shape, new "
        "keys), through the same boto3 client, to the same table on the same moto server; the order of the "
        "two alternates between repetitions."
    )
    section.rows = [
        Row(
            f"handler time per {records}-record event",
            handler.spread(2, " s"),
            f"{records} sequential conditional PutItem: {baseline.spread(2, ' s')}",
            ratio.spread(2),
            "≤ 0.5x",
            verdict(ratio.median <= 0.5),
        ),
        Row(
            "DynamoDB write requests per file",
            f"{writes:.3f}",
            "1 PutItem per file",
            f"{writes:.2f}",
            "≤ 1.2",
            verdict(writes <= 1.2),
        ),
        Row("AWS requests per file (handler, all services)", f"{total:.3f}"),
        Row(
            f"moto server CPU per {records} files",
            cpu_h.spread(2, " s"),
            f"baseline: {cpu_b.spread(2, ' s')}",
            f"{cpu_h.median / cpu_b.median:.2f}" if cpu_b.median else "—",
        ),
        Row(
            f"client (handler process) CPU per {records} files",
            own_h.spread(2, " s"),
            f"baseline: {own_b.spread(2, ' s')}",
            f"{own_h.median / own_b.median:.2f}" if own_b.median else "—",
        ),
    ]
    section.tables = [_requests_table(per_file)]
    section.data = {"per_file": per_file, "handler_seconds": handler.median, "records": records}
    cpu_share = cpu_h.median / handler.median if handler.median else 0
    busy = (cpu_h.median + own_h.median) / handler.median if handler.median else 0
    section.notes = [
        "Each file costs the handler one S3 HeadObject (version id, content type, user metadata) and one "
        "conditional PutItem; one SQS SendMessage per route per invocation asks the submitter to look. "
        "The event source's own SQS calls (receive, delete) are not the handler's; they are in metric 7.",
        f"Why the time target is missed here: moto server is one Python process, and on {_cpus()} cores it "
        f"was busy {cpu_share:.0%} of the handler's wall time (moto CPU {cpu_h.median:.1f} s for "
        f"{records} files vs {cpu_b.median:.1f} s for the baseline's {records} PutItems), and the handler's "
        f"own process used {own_h.median:.1f} s of CPU (boto3 request signing and parsing, Powertools): "
        f"together "
        f"{busy:.1f} of the machine's {_cpus()} cores for the whole call. The "
        "handler's 32 worker threads cannot overlap requests that the emulator serves one at a time on one "
        "core, and each file is two requests (HeadObject + PutItem) against the baseline's one, so here the "
        "handler can at best match the CPU cost of its requests. On AWS, S3 and DynamoDB serve concurrent "
        "requests in parallel, which is what the 32 threads are for; the sandbox cannot show that, so the "
        "0.5x target can only be checked against real AWS.",
        "What would close the gap in this sandbox (and halve requests on AWS): skip HeadObject when the "
        "notification already carries the version id (real S3 sends it for versioned buckets; moto does "
        "not) and the route does not forward user metadata; writing items in TransactWriteItems of up to "
        "100 conditional puts would cut requests 100x but double the write units (cost), so it is not "
        "recommended.",
        f"A new Files item is {item_bytes.median:.0f} bytes (DynamoDB's size rules, median): "
        f"{math.ceil(item_bytes.median / 1024)} write unit(s) for the item plus as many for its entry in "
        "the queued index.",
    ]
    return section


def _requests_table(per_file: dict[tuple[str, str], float]) -> Table:
    rows = [[svc, op, f"{v:.3f}"] for (svc, op), v in sorted(per_file.items()) if v]
    return Table("Handler requests per file (last repetition)", ["service", "operation", "per file"], rows)


def _cpus() -> int:
    import os

    return os.cpu_count() or 1
