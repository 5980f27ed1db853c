"""Shared fixtures: moto server and the Extend simulator on loopback, and a fresh deployment per test.
Helpers that are not fixtures are in tests/helpers.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sandbox.aws import REGION, Deployment, MotoServer, provision
from tests.helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, make_settings, unique_prefix

# Handlers must never reach real AWS: point every boto3 client at the local server, with fake keys.
os.environ.update(
    {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer().start()
    server.use_in_this_process()
    yield server
    server.stop()


@pytest.fixture
def extend_sim() -> Iterator[Any]:
    from sandbox.extend_sim import ExtendSimulator

    with ExtendSimulator(api_key=TEST_API_KEY) as sim:
        yield sim


@pytest.fixture
def deployment(moto_server: MotoServer) -> Deployment:
    """A fresh set of buckets, queues, tables, topic and secrets (unique names per test)."""
    return provision(
        make_settings("http://127.0.0.1:9"),
        name_prefix=unique_prefix(),
        api_key=TEST_API_KEY,
        webhook_secret=TEST_WEBHOOK_SECRET,
        session=boto3.session.Session(region_name=REGION),
    )
