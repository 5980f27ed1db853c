"""Shared fixtures: moto server and the Extend simulator on loopback, and a fresh deployment per test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from batchdrop_core.config import Settings
from sandbox.aws import REGION, Deployment, MotoServer, provision

# Handlers must never reach real AWS: point every boto3 client at the local server, with fake keys.
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
)
os.environ.pop("AWS_PROFILE", None)

_names = itertools.count()

EXAMPLE_ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_test"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_test"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_test"},
]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    server.use_in_this_process()
    yield server
    server.stop()


@pytest.fixture
def extend_sim() -> Iterator[Any]:
    from sandbox.extend_sim import ExtendSimulator

    with ExtendSimulator(api_key="sk_test_not_a_real_key") as sim:
        yield sim


def make_settings(extend_url: str, **overrides: Any) -> Settings:
    data: dict[str, Any] = {"routes": EXAMPLE_ROUTES, "extendBaseUrl": extend_url, "maxWaitSeconds": 300}
    data.update(overrides)
    return Settings.parse(data, "test settings")


@pytest.fixture
def deployment(moto_server: MotoServer) -> Deployment:
    """A fresh set of buckets, queues, tables, topic and secrets (unique names per test)."""
    return provision(
        make_settings("http://127.0.0.1:9"),
        name_prefix=f"t{next(_names)}",
        api_key="sk_test_not_a_real_key",
        webhook_secret="wss_test_not_a_real_secret_0000",
        session=boto3.session.Session(region_name=REGION),
    )


def sim_batches(sim: Any) -> list[dict[str, Any]]:
    return httpx.get(f"{sim.base_url}/_sim/batches", timeout=10).json()["batches"]
