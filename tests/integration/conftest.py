"""Fixtures the integration tests share: pipelines on the per-test deployment, and the webhook's path from
a local API Gateway through the handler."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.apigw import ApiGatewayServer
from sandbox.aws import Deployment
from sandbox.extend_sim import ExtendSimulator
from sandbox.local import WEBHOOK_PATH
from sandbox.pipeline import LocalPipeline
from tests.helpers import TEST_API_KEY, TEST_WEBHOOK_SECRET, make_settings


@pytest.fixture
def pipeline_factory(deployment: Deployment, extend_sim: Any):
    def build(**overrides: Any) -> LocalPipeline:
        return LocalPipeline(make_settings(extend_sim.base_url, **overrides), deployment, intake_window=0.3)

    return build


@pytest.fixture
def env(deployment: Deployment) -> Iterator[SimpleNamespace]:
    """A local API Gateway in front of the webhook handler, and a simulator that delivers to it."""
    holder: dict[str, LocalPipeline] = {}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return holder["pipeline"].modules["webhook"].lambda_handler(event, context)

    with ApiGatewayServer(handler) as gateway:
        sim = ExtendSimulator(
            api_key=TEST_API_KEY,
            webhook_url=gateway.url + WEBHOOK_PATH,
            webhook_secret=TEST_WEBHOOK_SECRET,
            webhook_retry_delays=(0.1, 0.2, 0.5, 1.0),
        ).start()

        def build(**overrides: Any) -> LocalPipeline:
            overrides.setdefault("readRateLimit", 200)  # the read rate is tested in test_results.py
            pipeline = LocalPipeline(make_settings(sim.base_url, **overrides), deployment, intake_window=0.3)
            holder["pipeline"] = pipeline
            return pipeline

        try:
            yield SimpleNamespace(sim=sim, gateway=gateway, build=build, deployment=deployment)
        finally:
            sim.stop()
