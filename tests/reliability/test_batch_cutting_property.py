"""Property (issue 7 §3): batch cutting is a partition. Whatever the arrival schedule, every file that
is not rejected goes to Extend exactly once, no batch holds more than maxBatchSize files (nor 1,000), no
batch mixes routes, and a batch is partial only when its oldest file waited maxWaitSeconds or an
operator forced a flush.

Intake and the submitter run as LocalPipeline drives them (no background threads) against moto server
and the simulator; ``maxBatchSize`` is 5 so that small schedules cut many batches.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import boto3
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from batchdrop_core import timeutil
from sandbox.aws import REGION, MotoServer, provision
from sandbox.pipeline import LocalPipeline
from tests.helpers import EXAMPLE_ROUTES, TEST_API_KEY, all_files, make_settings, sim_batches

BATCH_SIZE = 5
MAX_WAIT = 60
_deployments = itertools.count()

# A step: files arrive on a route (some unsupported, so REJECTED), then maybe maxWaitSeconds pass.
steps = st.lists(
    st.tuples(
        st.sampled_from([r["name"] for r in EXAMPLE_ROUTES]),
        st.integers(min_value=1, max_value=8),
        st.integers(min_value=0, max_value=2),  # rejected files among them
        st.booleans(),  # then the clock moves past maxWaitSeconds and the sweep runs
    ),
    min_size=1,
    max_size=5,
)


@contextmanager
def movable_clock() -> Iterator[list[timedelta]]:
    offset = [timedelta(0)]
    real = timeutil.utc_now

    def now() -> datetime:
        return real() + offset[0]

    timeutil.utc_now = now
    try:
        yield offset
    finally:
        timeutil.utc_now = real


# Few examples and no shrinking: each example provisions a deployment and drives real HTTP round trips.
@settings(
    max_examples=6,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(schedule=steps)
def test_batch_cutting_is_a_partition(moto_server: MotoServer, extend_sim: Any, schedule: list[Any]) -> None:
    deployment = provision(
        make_settings("http://127.0.0.1:9"),
        name_prefix=f"prop{next(_deployments)}",
        api_key=TEST_API_KEY,
        session=boto3.session.Session(region_name=REGION),
    )
    bucket = deployment.resources.drop_bucket
    pipeline = LocalPipeline(
        make_settings(extend_sim.base_url, maxBatchSize=BATCH_SIZE, maxWaitSeconds=MAX_WAIT),
        deployment,
        intake_window=0.05,
    )
    s3 = deployment.session.client("s3")
    prefixes = {r["name"]: r["prefix"] for r in EXAMPLE_ROUTES}
    count = itertools.count()
    may_be_partial: set[str] = set()  # batches cut by an aged sweep or a forced flush

    def ours() -> list[dict[str, Any]]:
        return [
            b
            for b in sim_batches(extend_sim)
            if b["inputs"][0]["metadata"]["batchdrop"]["fileId"].startswith(f"{bucket}/")
        ]

    def cut(partial_allowed: bool) -> None:
        before = {b["id"] for b in ours()}
        pipeline.intake.drain()
        pipeline.submitter.drain()
        if partial_allowed:
            may_be_partial.update(b["id"] for b in ours() if b["id"] not in before)

    with movable_clock() as offset:
        for route, files, rejected, wait in schedule:
            for i in range(files):
                n = next(count)
                extension = ".exe" if i < rejected else ".pdf"
                s3.put_object(Bucket=bucket, Key=f"{prefixes[route]}f{n:04d}{extension}", Body=b"Invoice: 1")
            cut(partial_allowed=False)
            if wait:
                offset[0] += timedelta(seconds=MAX_WAIT + 1)
                pipeline.schedule("sweep")
                cut(partial_allowed=True)
        rt = pipeline.runtime("submitter")
        for route in prefixes:
            rt.request_flush(route, reason="test", force=True)
        cut(partial_allowed=True)

    files = {f["fileId"]: f for f in all_files(pipeline)}
    batches = ours()
    sent = Counter(i["metadata"]["batchdrop"]["fileId"] for b in batches for i in b["inputs"])
    expected = {fid for fid, f in files.items() if f["status"] != "REJECTED"}
    # Every file exactly once
    assert set(sent) == expected and set(sent.values()) <= {1}
    routes = {r["name"]: r for r in EXAMPLE_ROUTES}
    for batch in batches:
        size = batch["runCount"]
        # No batch over the limit, none mixing routes, each to its route's processor
        assert size <= BATCH_SIZE
        (route,) = {files[i["metadata"]["batchdrop"]["fileId"]]["route"] for i in batch["inputs"]}
        assert batch["processor"]["id"] == routes[route]["processorId"]
        # A partial batch only after maxWaitSeconds or a forced flush
        assert size == BATCH_SIZE or batch["id"] in may_be_partial
