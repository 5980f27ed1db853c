"""Registering the webhook subscribes the endpoint to the runs of every workflow route (Extend's endpoints
take no workflow run events), and a refused subscription says what to do."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from batchdrop_cli.targets import UserError
from batchdrop_cli.webhooks import create_webhook
from batchdrop_core.config import Settings
from batchdrop_core.extend import ExtendRejectedError

ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_1"},
    {"name": "pages", "prefix": "pages/", "type": "parse"},
    {"name": "claims", "prefix": "claims/", "type": "workflow", "processorId": "workflow_claims"},
    {
        "name": "forms",
        "prefix": "forms/",
        "type": "workflow",
        "processorId": "workflow_forms",
        "version": "2",
    },
]


class FakeExtend:
    def __init__(self, refuse: str | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse = refuse

    def create_webhook_endpoint(self, url: str, *, name: str, enabled_events: Any) -> Any:
        self.calls.append(("endpoint", tuple(enabled_events)))
        return SimpleNamespace(id="whe_1", signing_secret="wss_test_fake_secret")

    def create_webhook_subscription(self, endpoint_id: str, kind: str, resource_id: str, events: Any) -> Any:
        if resource_id == self.refuse:
            raise ExtendRejectedError("Workflow not found", status_code=404)
        self.calls.append(("subscription", (endpoint_id, kind, resource_id, tuple(events))))
        return SimpleNamespace(id="whs_1")


def target() -> Any:
    stored: dict[str, str] = {}
    secrets = SimpleNamespace(
        put_secret_value=lambda SecretId, SecretString: stored.update({SecretId: SecretString})
    )
    runtime = SimpleNamespace(client=lambda name: secrets)
    settings = Settings.parse({"routes": ROUTES}, "test")
    return SimpleNamespace(
        settings=settings,
        routes=settings.routes,  # the routes in effect (applied ones, else the deployment's)
        require=lambda name: "batchdrop/webhook-secret",
        runtime=lambda: runtime,
        stored=stored,
    )


def test_each_workflow_route_is_subscribed_with_its_run_events() -> None:
    extend, where = FakeExtend(), target()

    assert create_webhook(where, extend, "https://hooks.example/w", "batchdrop") == (
        "whe_1",
        "batchdrop/webhook-secret",
    )

    endpoint_events = extend.calls[0][1]
    assert "batch_parse_run.processed" in endpoint_events
    assert not [e for e in endpoint_events if e.startswith("workflow_run.")]
    subscriptions = [call for kind, call in extend.calls if kind == "subscription"]
    assert [(s[2], s[1]) for s in subscriptions] == [
        ("workflow_claims", "workflow"),
        ("workflow_forms", "workflow"),
    ]
    assert "workflow_run.needs_review" in subscriptions[0][3]
    assert where.stored == {"batchdrop/webhook-secret": "wss_test_fake_secret"}


def test_a_refused_subscription_names_the_route_and_the_fix() -> None:
    with pytest.raises(UserError, match=r"workflow_forms \(route forms\).*--reregister-webhook"):
        create_webhook(target(), FakeExtend(refuse="workflow_forms"), "https://hooks.example/w", "batchdrop")
