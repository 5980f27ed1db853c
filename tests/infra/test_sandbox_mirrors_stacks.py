"""The sandbox runs what ``cdk deploy`` deploys: function by function, the synthesized template and the
sandbox's wiring (read back from the pipeline's own event sources and contexts) have the same handler,
timeout and event source settings. Both sides are built from ``batchdrop_core.deployspec``; this test fails
if either one changes alone."""

from __future__ import annotations

import json
import re
from typing import Any

from batchdrop_core import deployspec
from sandbox.aws import Deployment
from sandbox.pipeline import LocalPipeline, handler_environment
from tests.helpers import make_settings


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def deployed_functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each pipeline function of the template by its spec name: handler, timeout, memory, and its queue
    trigger's settings (None for a function no queue triggers)."""
    functions = _resources(template, "AWS::Lambda::Function")
    mappings = {
        m["Properties"]["FunctionName"]["Ref"]: m["Properties"]
        for m in _resources(template, "AWS::Lambda::EventSourceMapping").values()
    }
    found = {}
    for spec in deployspec.FUNCTIONS:
        # Logical ids are the construct path without separators, plus a hash: Functions/Intake/Function/…
        [lid] = [
            lid
            for lid in functions
            if re.fullmatch(f"Functions{spec.construct_id}Function[0-9A-F]{{8}}", lid)
        ]
        props = functions[lid]["Properties"]
        mapping = mappings.get(lid)
        found[spec.name] = {
            "handler": props["Handler"],
            "timeout": props["Timeout"],
            "memory": props["MemorySize"],
            "trigger": None
            if mapping is None
            else {
                "batch_size": mapping["BatchSize"],
                "window": mapping.get("MaximumBatchingWindowInSeconds", 0),
                "max_concurrency": mapping.get("ScalingConfig", {}).get("MaximumConcurrency"),
            },
        }
    return found


def test_every_function_the_sandbox_runs_is_wired_as_the_template_deploys_it(
    stateless_template: dict[str, Any], deployment: Deployment
) -> None:
    settings = make_settings("http://127.0.0.1:9")
    pipeline = LocalPipeline(
        settings, deployment, intake_window=deployspec.INTAKE_TRIGGER.batching_window_seconds
    )
    wired = pipeline.wiring()
    deployed = deployed_functions(stateless_template)

    assert set(wired) == set(deployed) == {spec.name for spec in deployspec.FUNCTIONS}
    for name, function in deployed.items():
        local = wired[name]
        assert (local.handler, local.timeout_seconds) == (function["handler"], function["timeout"]), name
        trigger = function["trigger"]
        if trigger is None:
            assert local.batch_size is None, f"{name} is not triggered by a queue when deployed"
            continue
        assert (local.batch_size, local.batching_window_seconds) == (
            trigger["batch_size"],
            trigger["window"],
        ), name
        if trigger["max_concurrency"] is not None:
            assert local.max_concurrency == trigger["max_concurrency"], name
        else:
            # No maximum: on a FIFO queue Lambda runs one invocation per message group (a route).
            assert local.max_concurrency == len(settings.routes), name


def test_the_memory_and_schedules_deployed_are_the_specs(stateless_template: dict[str, Any]) -> None:
    deployed = deployed_functions(stateless_template)
    for spec in deployspec.FUNCTIONS:
        assert deployed[spec.name]["memory"] == spec.memory_mb, spec.name
    rules = _resources(stateless_template, "AWS::Events::Rule").values()
    scheduled = {
        json.loads(target["Input"])["task"]: rule["Properties"]["ScheduleExpression"]
        for rule in rules
        for target in rule["Properties"]["Targets"]
    }
    minutes = {s.task: s.rate_seconds // 60 for s in deployspec.SCHEDULES}
    assert scheduled == {task: f"rate({n} minute{'s' if n > 1 else ''})" for task, n in minutes.items()}


def test_the_sandbox_gives_the_handlers_the_deployed_service_and_namespace(
    stateless_template: dict[str, Any], deployment: Deployment
) -> None:
    local = handler_environment(make_settings("http://127.0.0.1:9"), deployment)
    for props in (r["Properties"] for r in _resources(stateless_template, "AWS::Lambda::Function").values()):
        env = props.get("Environment", {}).get("Variables", {})
        if "POWERTOOLS_SERVICE_NAME" in env:
            assert env["POWERTOOLS_SERVICE_NAME"] == local["POWERTOOLS_SERVICE_NAME"]
            assert env["POWERTOOLS_METRICS_NAMESPACE"] == local["POWERTOOLS_METRICS_NAMESPACE"]
