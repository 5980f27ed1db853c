"""What the test modules share besides fixtures (those are in the conftest files): the example routes and
settings, the keys the fixtures use, unique deployment names, reading the simulator and the pipeline's
tables and buckets, and the CLI's view of a sandbox."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from click.testing import Result
from typer.testing import CliRunner

from batchdrop_cli import app
from batchdrop_cli.targets import load_sandbox
from batchdrop_core.config import Settings
from batchdrop_core.dynamo import from_item, scan_all
from batchdrop_core.messages import CollectionRequest
from batchdrop_core.runtime import Runtime
from batchdrop_core.tracking import FileStatus, with_derived_names
from sandbox.aws import Deployment, MotoServer, drain_notifications
from sandbox.local import Sandbox, SandboxOptions
from sandbox.pipeline import LocalPipeline

TEST_API_KEY = "sk_test_not_a_real_key"  # what the extend_sim fixture accepts
TEST_WEBHOOK_SECRET = "wss_test_not_a_real_secret_0000"  # what the deployment fixture stores

EXAMPLE_ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_test"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_test"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_test"},
]

_names = itertools.count()


def make_settings(extend_url: str, **overrides: Any) -> Settings:
    data: dict[str, Any] = {"routes": EXAMPLE_ROUTES, "extendBaseUrl": extend_url, "maxWaitSeconds": 300}
    data.update(overrides)
    return Settings.parse(data, "test settings")


def unique_prefix() -> str:
    """A name prefix no other deployment on the suite's moto server has."""
    return f"t{next(_names)}"


# -- the simulator -------------------------------------------------------------------------------------


def sim_batches(sim: Any) -> list[dict[str, Any]]:
    return httpx.get(f"{sim.base_url}/_sim/batches", timeout=10).json()["batches"]


def deliveries(sim: Any) -> list[dict[str, Any]]:
    """Every webhook delivery the simulator attempted."""
    return httpx.get(f"{sim.base_url}/_sim/webhooks", timeout=10).json()["deliveries"]


def wait_until_finished(sim: Any, batches: int | None = None, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every batch at the simulator is over and every webhook delivery settled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sim_batches(sim)
        stats = httpx.get(f"{sim.base_url}/_sim/stats", timeout=10).json()
        over = all(b["status"] in ("PROCESSED", "FAILED") for b in found)
        if over and (batches is None or len(found) >= batches) and stats["webhooksPending"] == 0:
            return found
        time.sleep(0.1)
    raise AssertionError(f"batches not finished in {timeout}s: {sim_batches(sim)}")


def request_collection_of_all(pipeline: LocalPipeline, sim: Any) -> None:
    """What the webhooks would do; a batch asked for twice is a duplicate the worker must absorb."""
    rt = pipeline.runtime("submitter")
    for batch in sim_batches(sim):
        rt.request_collection(CollectionRequest(batch["id"], source="test"))


# -- the pipeline's buckets, tables and topic ----------------------------------------------------------


def upload(deployment: Deployment, keys: list[str], body: bytes | None = None, **extra: Any) -> None:
    s3 = deployment.session.client("s3")
    bucket = deployment.resources.drop_bucket

    def put(key: str) -> None:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body if body is not None else f"Invoice Number: {key}".encode(),
            **extra,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, keys))


def all_files(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    rt = pipeline.runtime("intake")
    client = rt.client("dynamodb")
    return [with_derived_names(v) for v in scan_all(client, TableName=rt.resources.files_table)]


def all_submissions(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    rt = pipeline.runtime("intake")
    return list(scan_all(rt.client("dynamodb"), TableName=rt.resources.batches_table))


def submissions(pipeline: LocalPipeline) -> list[dict[str, Any]]:
    """Every Batches item, read consistently, oldest first."""
    rt = pipeline.runtime("submitter")
    page = rt.client("dynamodb").scan(TableName=rt.resources.batches_table, ConsistentRead=True)
    return sorted((from_item(i) for i in page["Items"]), key=lambda s: s["createdAt"])


def batch_file_ids(batch: dict[str, Any]) -> list[str]:
    return [i["metadata"]["batchdrop"]["fileId"] for i in batch["inputs"]]


def assert_each_file_in_exactly_one_batch(batches: list[dict[str, Any]], files: list[dict[str, Any]]) -> None:
    seen = Counter(fid for b in batches for fid in batch_file_ids(b))
    assert max(seen.values(), default=1) == 1, "a file was sent in two batches"
    expected = {f["fileId"] for f in files if f["status"] != FileStatus.REJECTED}
    assert set(seen) == expected


def result_objects(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """Every object under results/ with its JSON body and number of versions."""
    s3 = deployment.session.client("s3")
    bucket = deployment.resources.results_bucket
    versions: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix="results/"):
        versions.update(v["Key"] for v in page.get("Versions", []))

    def read(key: str) -> tuple[str, dict[str, Any]]:
        body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return key, {**body, "_versions": versions[key]}

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(pool.map(read, list(versions)))


def assert_bucket_and_table_agree(pipeline: LocalPipeline, deployment: Deployment) -> list[dict[str, Any]]:
    """For every file: PROCESSED ⇔ exactly one result object, written for that file and run."""
    files = all_files(pipeline)
    objects = result_objects(deployment)
    expected_keys = set()
    for f in files:
        key = f"results/{f['key']}/{f['versionId']}.json"
        if f["status"] == FileStatus.PROCESSED:
            expected_keys.add(key)
            assert f["resultKey"] == key
            stored = objects[key]
            assert stored["_versions"] == 1, f"result of {f['fileId']} written {stored['_versions']} times"
            assert stored["id"] == f["runId"] and stored["status"] == "PROCESSED"
            assert stored["batchdrop"]["fileId"] == f["fileId"]
            assert stored["batchdrop"]["submissionId"] == f["submissionId"]
            assert f["resultSummary"]
        else:
            assert key not in objects, f"{f['fileId']} is {f['status']} but has a result"
    assert set(objects) == expected_keys
    return files


def notifications(deployment: Deployment, queue_url: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """(message, attributes) of every SNS message the subscribed queue received."""
    return [(n.message, n.attributes) for n in drain_notifications(deployment, queue_url)]


# -- the CLI -------------------------------------------------------------------------------------------

runner = CliRunner()


def invoke(*args: str) -> Result:
    # A wide terminal, so tables print ids whole.
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


@dataclass
class CliSandbox:
    """A sandbox (``sandbox.local.Sandbox``) that a test drives by hand, and the endpoints file the CLI
    reads (``--sandbox PATH``)."""

    harness: Sandbox
    path: Path

    @property
    def deployment(self) -> Deployment:
        return self.harness.deployment

    @property
    def pipeline(self) -> LocalPipeline:
        return self.harness.pipeline

    @property
    def settings(self) -> Settings:
        return self.harness.settings

    @property
    def sim(self) -> Any:
        return self.harness.simulator

    def run(self, *args: str) -> Result:
        return invoke("--sandbox", str(self.path), *args)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def fails(self, *args: str) -> str:
        """Runs a command that must fail as a user error; returns its message."""
        result = self.run(*args)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        return result.stderr

    @property
    def rt(self) -> Runtime:
        return load_sandbox(self.path).runtime()

    @property
    def drop_bucket(self) -> str:
        return self.deployment.resources.drop_bucket or ""

    def upload(self, keys: Iterable[str], body: bytes | None = None) -> None:
        s3 = self.deployment.session.client("s3")
        for key in keys:
            s3.put_object(
                Bucket=self.drop_bucket, Key=key, Body=b"Invoice " + key.encode() if body is None else body
            )


@contextmanager
def cli_sandbox(moto_server: MotoServer, tmp_path: Path, **settings: Any) -> Iterator[CliSandbox]:
    """The example routes on a sandbox of their own; ``settings`` add to the deployment's."""
    # Nothing runs by itself: the tests pump the pipeline (and the simulator sends no webhooks), so every
    # step happens when a test says.
    options = SandboxOptions(
        routes=EXAMPLE_ROUTES,
        settings={"maxWaitSeconds": 300, **settings},
        api_key=TEST_API_KEY,
        webhook_secret=TEST_WEBHOOK_SECRET,
        read_rps=0,  # no read limit, as the extend_sim fixture
        intake_window=0.2,
        name_prefix=unique_prefix(),
        background=False,
        webhooks=False,
        inbox=False,
    )
    with Sandbox(options, moto=moto_server) as harness:
        path = tmp_path / "endpoints.json"
        path.write_text(json.dumps(harness.endpoints()))
        yield CliSandbox(harness, path)
