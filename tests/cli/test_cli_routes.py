"""`batchdrop routes show|apply`: routes of any size, changed without a redeploy, against the sandbox (moto
server over HTTP, the Extend simulator, the real handlers)."""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from batchdrop_core import timeutil
from batchdrop_core.runconfig import route_digest
from batchdrop_core.tables import STATE_ROUTES_KEY
from batchdrop_core.tracking import BatchState, FileStatus
from sandbox.aws import MotoServer
from tests.helpers import (
    EXAMPLE_ROUTES,
    CliSandbox,
    cli_sandbox,
    sim_batches,
    wait_until_finished,
)

CACHE_SECONDS = 2  # routesCacheSeconds here: how long a function may use the routes it last read


@pytest.fixture
def sandbox(moto_server: MotoServer, tmp_path: Path) -> Iterator[CliSandbox]:
    settings = {"routesCacheSeconds": CACHE_SECONDS, "orphanGraceSeconds": 1}
    with cli_sandbox(moto_server, tmp_path, **settings) as harness:
        yield harness


def routes_file(tmp_path: Path, routes: list[dict[str, Any]], name: str = "routes.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"routes": routes}))
    return path


def with_route(route: str, /, **changes: Any) -> list[dict[str, Any]]:
    """The example routes with one changed (or, given ``remove=True``, left out)."""
    if changes.pop("remove", False):
        return [r for r in EXAMPLE_ROUTES if r["name"] != route]
    return [{**r, **changes} if r["name"] == route else r for r in EXAMPLE_ROUTES]


def extract_route(name: str, prefix: str, processor_id: str) -> dict[str, Any]:
    return {"name": name, "prefix": prefix, "type": "extract", "processorId": processor_id}


def routes_item(sandbox: CliSandbox) -> dict[str, Any] | None:
    ddb = sandbox.deployment.session.client("dynamodb")
    table = sandbox.deployment.resources.state_table
    return ddb.get_item(TableName=table, Key={"pk": {"S": STATE_ROUTES_KEY}}, ConsistentRead=True).get("Item")


def submit(sandbox: CliSandbox, keys: list[str], route: str) -> None:
    sandbox.upload(keys)
    sandbox.pipeline.pump()
    sandbox.json("flush", route)
    sandbox.pipeline.pump()


def big_schema(size: int) -> dict[str, Any]:
    """An extraction schema of about ``size`` bytes as JSON."""
    properties: dict[str, Any] = {}
    i = 0
    while len(json.dumps(properties)) < size:
        properties[f"field_{i:04d}"] = {"type": "string", "description": f"Line item field number {i}" * 2}
        i += 1
    return {"schema": {"type": "object", "properties": properties}}


def test_a_route_with_a_50_kb_override_config_is_applied_and_submitted_with(
    sandbox: CliSandbox, tmp_path: Path
) -> None:
    # Given routes whose invoices route carries a 50 KB extraction schema (BATCHDROP_SETTINGS holds 3 KB)
    config = big_schema(50_000)
    assert len(json.dumps(config)) >= 50_000
    path = routes_file(tmp_path, with_route("invoices", overrideConfig=config))
    assert sandbox.json("routes", "show")["source"] == "deployment"

    # When it is applied
    applied = sandbox.json("routes", "apply", str(path))

    # Then it is written, and shown as the routes in effect, from the table
    assert (applied["changed"], applied["added"], applied["removed"], applied["written"]) == (
        ["invoices"],
        [],
        [],
        True,
    )
    shown = sandbox.json("routes", "show")
    assert (shown["source"], shown["digest"]) == ("table", applied["digest"])
    assert next(r for r in shown["routes"] if r["name"] == "invoices")["overrideConfig"] == config
    assert "applied" in sandbox.run("routes", "show").stdout

    # And, within the cache time, a submission carries it to Extend
    time.sleep(CACHE_SECONDS + 0.2)
    submit(sandbox, ["invoices/big-1.pdf", "invoices/big-2.pdf"], "invoices")
    (batch,) = sim_batches(sandbox.sim)
    assert batch["processor"]["id"] == "ex_invoices_test"
    assert batch["processor"]["overrideConfig"] == config
    assert batch["runCount"] == 2


def test_a_change_is_picked_up_within_the_cache_time(sandbox: CliSandbox, tmp_path: Path) -> None:
    # Given a submitter that has read the routes (the deployment's: none applied)
    rt = sandbox.pipeline.runtime("submitter")
    assert rt.settings.route("invoices").processor_id == "ex_invoices_test"

    # When another processor is applied to the route
    sandbox.json("routes", "apply", str(routes_file(tmp_path, with_route("invoices", processorId="ex_v2"))))

    # Then the function keeps what it read until its cache time is over, then uses the new route
    assert rt.settings.route("invoices").processor_id == "ex_invoices_test"
    time.sleep(CACHE_SECONDS + 0.2)
    assert rt.settings.route("invoices").processor_id == "ex_v2"
    submit(sandbox, ["invoices/after.pdf"], "invoices")
    assert [b["processor"]["id"] for b in sim_batches(sandbox.sim)] == ["ex_v2"]

    # And a new route under a deployed prefix takes files at intake too (S3 notifies the whole bucket)
    routes = [*EXAMPLE_ROUTES[1:], {**EXAMPLE_ROUTES[0], "prefix": "invoices/eu/"}]
    routes.append(extract_route("us-invoices", "invoices/us/", "ex_us"))
    sandbox.json("routes", "apply", str(routes_file(tmp_path, routes, "split.json")))
    time.sleep(CACHE_SECONDS + 0.2)
    submit(sandbox, ["invoices/us/one.pdf"], "us-invoices")
    assert [b["processor"]["id"] for b in sim_batches(sandbox.sim)] == ["ex_v2", "ex_us"]
    (tracked,) = sandbox.rt.files.versions(sandbox.drop_bucket, "invoices/us/one.pdf")
    assert tracked.route == "us-invoices"


@pytest.mark.parametrize(
    ("routes", "reason"),
    [
        (
            [*EXAMPLE_ROUTES, extract_route("more", "invoices/x/", "ex_1")],
            "overlapping prefixes",
        ),
        (with_route("documents", processorId="ex_not_a_classifier"), "does not look like a classify"),
        (with_route("packets", name="Packets"), "must be 1-40 lowercase letters"),
        ([], "at least 1 item"),
        (
            [*EXAMPLE_ROUTES, extract_route("new", "elsewhere/", "ex_1")],
            "outside the deployed prefixes",
        ),
        (with_route("invoices", processorId="ex_placeholder_invoices"), "placeholder processor ids"),
    ],
    ids=["overlap", "id-prefix", "name", "empty", "undeployed-prefix", "placeholder"],
)
def test_an_invalid_routes_file_is_refused_with_its_reason_and_nothing_written(
    sandbox: CliSandbox, tmp_path: Path, routes: list[dict[str, Any]], reason: str
) -> None:
    message = sandbox.fails("routes", "apply", str(routes_file(tmp_path, routes)))
    assert reason in message and "nothing was written" in message
    assert message.count("\n") == 1  # one line
    assert routes_item(sandbox) is None


def test_routes_larger_than_a_dynamodb_item_are_refused(sandbox: CliSandbox, tmp_path: Path) -> None:
    # A schema compresses well (1 MB of it fits); random text does not: 600 KB of it does not fit
    noise = base64.b64encode(random.Random(7).randbytes(450_000)).decode()
    path = routes_file(tmp_path, with_route("invoices", overrideConfig={"notes": noise}))
    message = sandbox.fails("routes", "apply", str(path))
    assert "a DynamoDB item holds" in message and "nothing was written" in message
    assert routes_item(sandbox) is None


def test_a_file_that_is_not_a_routes_file_is_refused(sandbox: CliSandbox, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert "is not valid JSON" in sandbox.fails("routes", "apply", str(bad))
    bad.write_text(json.dumps(EXAMPLE_ROUTES))
    assert 'a JSON object with a "routes" list' in sandbox.fails("routes", "apply", str(bad))
    assert "cannot read" in sandbox.fails("routes", "apply", str(tmp_path / "missing.json"))
    assert routes_item(sandbox) is None


def test_dry_run_shows_the_changes_and_writes_nothing(sandbox: CliSandbox, tmp_path: Path) -> None:
    routes = with_route("packets", remove=True)
    routes = [{**r, "priority": 5} if r["name"] == "documents" else r for r in routes]
    routes.append({"name": "receipts", "prefix": "invoices/receipts/", "type": "parse"})
    routes = [{**r, "prefix": "invoices/main/"} if r["name"] == "invoices" else r for r in routes]
    path = routes_file(tmp_path, routes)

    result = sandbox.run("routes", "apply", str(path), "--dry-run")
    assert result.exit_code == 0, result.output
    lines = ("+ receipts (added)", "~ invoices (changed)", "~ documents (changed)", "- packets (removed)")
    for line in lines:
        assert line in result.stdout
    assert "Dry run: nothing written." in result.stdout
    assert routes_item(sandbox) is None
    assert sandbox.json("routes", "apply", str(path), "--dry-run")["written"] is False
    assert routes_item(sandbox) is None

    # And the same file applied, then applied again, changes nothing the second time
    assert sandbox.json("routes", "apply", str(path))["written"] is True
    again = sandbox.json("routes", "apply", str(path))
    assert (again["written"], again["from"], again["changed"]) == (False, "table", [])
    assert sandbox.rt.retired_routes() == ("packets",)

    # And a route applied, then removed, stays known: the reconciler still polls its batches at Extend
    sandbox.json("routes", "apply", str(routes_file(tmp_path, EXAMPLE_ROUTES, "back.json")))
    assert sandbox.rt.retired_routes() == ("receipts",)


def test_a_file_in_flight_keeps_its_submissions_processor_after_its_route_changed_or_went(
    sandbox: CliSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a file submitted with the invoices route's processor, its batch at Extend
    submit(sandbox, ["invoices/in-flight.pdf"], "invoices")
    (batch,) = sim_batches(sandbox.sim)
    assert batch["processor"]["id"] == "ex_invoices_test"

    # When the route is removed and its prefix given to another route with another processor
    routes = [*with_route("invoices", remove=True)]
    routes.append({"name": "invoices-v2", "prefix": "invoices/", "type": "extract", "processorId": "ex_v2"})
    applied = sandbox.json("routes", "apply", str(routes_file(tmp_path, routes)))
    assert (applied["added"], applied["removed"]) == (["invoices-v2"], ["invoices"])
    time.sleep(CACHE_SECONDS + 0.2)

    # Then the batch at Extend is still collected, as it was submitted: its webhook lost, the reconciler
    # still polls the removed route's batches
    wait_until_finished(sandbox.sim, batches=1)
    later = timeutil.utc_now() + timedelta(minutes=sandbox.settings.webhook_grace_minutes + 1)
    monkeypatch.setattr(timeutil, "utc_now", lambda: later)
    submission = sandbox.rt.batches.by_batch_id(batch["id"])
    assert submission is not None
    assert sandbox.pipeline.schedule("reconcile")["collectionRequested"] == [submission.submission_id]
    sandbox.pipeline.pump()
    (tracked,) = sandbox.rt.files.versions(sandbox.drop_bucket, "invoices/in-flight.pdf")
    assert (tracked.status, tracked.route) == (FileStatus.PROCESSED, "invoices")
    assert (submission.processor_type, submission.processor_id) == ("extract", "ex_invoices_test")
    # And it records the version of the route it was submitted with
    assert submission.route_digest == route_digest(sandbox.settings.route("invoices"))

    # And a new file goes to the new route's processor
    submit(sandbox, ["invoices/new.pdf"], "invoices-v2")
    assert [b["processor"]["id"] for b in sim_batches(sandbox.sim)] == ["ex_invoices_test", "ex_v2"]
    newer = sandbox.rt.batches.by_batch_id(sim_batches(sandbox.sim)[1]["id"])
    assert newer is not None and newer.route_digest == route_digest(sandbox.rt.settings.route("invoices-v2"))
    assert "route version" in sandbox.run("batch", newer.batch_id or "").stdout


def test_an_ambiguous_submission_of_a_removed_route_is_still_settled(
    sandbox: CliSandbox, tmp_path: Path
) -> None:
    # Given a batch Extend accepted but whose answer was lost: its submission is UNKNOWN
    sandbox.sim.faults.lose_post_response = 1
    submit(sandbox, ["invoices/lost-1.pdf", "invoices/lost-2.pdf"], "invoices")
    (submission,) = sandbox.rt.batches.open_submissions("invoices")
    assert submission.state == BatchState.UNKNOWN

    # When its route is removed
    sandbox.json("routes", "apply", str(routes_file(tmp_path, with_route("invoices", remove=True))))
    time.sleep(CACHE_SECONDS + 0.2)  # past orphanGraceSeconds too

    # Then the sweep still asks for it, and the submitter adopts the batch Extend has; nothing is resent
    assert sandbox.pipeline.schedule("sweep")["flushed"] == ["invoices"]
    sandbox.pipeline.pump()
    settled = sandbox.rt.batches.get(submission.submission_id)
    assert settled is not None and (settled.state, settled.adopted) == (BatchState.SUBMITTED, True)
    assert len(sim_batches(sandbox.sim)) == 1
