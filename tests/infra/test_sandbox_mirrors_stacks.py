"""The sandbox's event source mappings mirror the stacks' (sandbox.pipeline cannot import stacks.constants,
which loads the CDK)."""

from __future__ import annotations

from sandbox import pipeline
from stacks import constants


def test_event_source_settings_match_the_stacks() -> None:
    assert pipeline.INTAKE_BATCH_SIZE == constants.INTAKE_BATCH_SIZE
    assert pipeline.INTAKE_MAX_CONCURRENCY == constants.INTAKE_MAX_CONCURRENCY
    assert constants.INTAKE_BATCHING_WINDOW.to_seconds() == pipeline.INTAKE_BATCHING_WINDOW_SECONDS
    assert pipeline.SUBMITTER_BATCH_SIZE == constants.SUBMITTER_BATCH_SIZE
    assert pipeline.RESULTS_BATCH_SIZE == constants.RESULTS_BATCH_SIZE
    assert pipeline.RESULTS_MAX_CONCURRENCY == constants.RESULTS_MAX_CONCURRENCY
    # The submitter's mapping has no maximum concurrency: Lambda runs one invocation per FIFO message
    # group, which the sandbox mirrors with one poller per route.
    assert not hasattr(constants, "SUBMITTER_MAX_CONCURRENCY")
