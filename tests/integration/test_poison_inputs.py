"""One bad input never blocks its route: Extend's refusal of one input rejects that file alone, and its
batch-mates go as a full batch (moto server and the Extend simulator over real HTTP)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import pytest

from batchdrop_core.extend import ExtendClient, ExtendRejectedError
from batchdrop_core.tracking import FileStatus
from sandbox.aws import Deployment
from sandbox.pipeline import LocalPipeline
from tests.helpers import (
    all_files,
    all_submissions,
    assert_each_file_in_exactly_one_batch,
    make_settings,
    sim_batches,
    upload,
)


@pytest.fixture
def build(deployment: Deployment, extend_sim: Any):
    def build(**overrides: Any) -> LocalPipeline:
        settings = make_settings(extend_sim.base_url, maxWaitSeconds=1, maxBatchSize=10, **overrides)
        return LocalPipeline(settings, deployment, intake_window=0.3)

    return build


def queue(pipeline: LocalPipeline, deployment: Deployment, keys: list[str]) -> None:
    upload(deployment, keys)
    pipeline.intake.drain()


def refuse_names(sim: Any, pattern: str) -> None:
    httpx.post(
        f"{sim.base_url}/_sim/faults", json={"refuse_file_names": pattern}, timeout=5
    ).raise_for_status()


def by_name(pipeline: LocalPipeline) -> dict[str, dict[str, Any]]:
    return {f["key"].rsplit("/", 1)[-1]: f for f in all_files(pipeline)}


@pytest.mark.parametrize("file_transfer", ["url", "upload"])
def test_an_input_extend_refuses_is_rejected_alone_and_its_batch_goes_full(
    build: Any, deployment: Deployment, extend_sim: Any, file_transfer: str
) -> None:
    # Given a full batch of ten whose fourth file Extend refuses (400 naming inputs[i], or the upload's
    # 400 in upload mode), and one more file waiting behind it
    pipeline = build(fileTransfer=file_transfer)
    refuse_names(extend_sim, r"poison")
    queue(pipeline, deployment, [f"invoices/a-{i}.pdf" for i in range(3)])
    queue(pipeline, deployment, ["invoices/poison.pdf"])
    queue(pipeline, deployment, [f"invoices/b-{i}.pdf" for i in range(6)])
    queue(pipeline, deployment, ["invoices/late.pdf"])
    time.sleep(1.1)

    # When the submitter runs
    pipeline.submitter.drain()

    # Then the poison file alone is REJECTED with Extend's message, and the others went as one full batch
    files = by_name(pipeline)
    poison = files.pop("poison.pdf")
    assert poison["status"] == FileStatus.REJECTED
    assert poison["failureReason"] == "EXTEND_REFUSED_INPUT"
    assert "poison.pdf" in poison["failureMessage"] and "cannot be" in poison["failureMessage"]
    assert "submissionId" not in poison and poison["problemRoute"] == "invoices"
    # And it used no attempt (it never reached Extend in a batch); each of the others used one
    assert poison.get("attempts", 0) == 0
    assert {f.get("attempts") for f in files.values()} == {1}
    assert {f["status"] for f in files.values()} == {FileStatus.SUBMITTED}
    batches = sim_batches(extend_sim)
    assert [b["runCount"] for b in batches] == [10]
    assert_each_file_in_exactly_one_batch(batches, [*files.values(), poison])
    # And the batch sent again knows when its files' URLs expire (the first ones presigned)
    (submitted,) = [s for s in all_submissions(pipeline) if s["state"] == "SUBMITTED"]
    assert ("urlExpiresAt" in submitted) == (file_transfer == "url")
    # And the route was never blocked, and nothing failed into a DLQ
    assert not pipeline.runtime("submitter").state.route_state("invoices").get("blocked")
    assert pipeline.submitter.errors == 0


def test_an_object_version_deleted_before_upload_is_object_not_found_not_a_dlq_loop(
    build: Any, deployment: Deployment, extend_sim: Any
) -> None:
    # Given ten queued files in upload mode, one of whose object versions was deleted after intake
    pipeline = build(fileTransfer="upload")
    queue(pipeline, deployment, [f"invoices/v-{i}.pdf" for i in range(10)])
    gone = by_name(pipeline)["v-3.pdf"]
    s3 = deployment.session.client("s3")
    s3.delete_object(Bucket=gone["bucket"], Key=gone["key"], VersionId=gone["versionId"])
    time.sleep(1.1)

    # When the submitter runs
    pipeline.submitter.drain()

    # Then that file is REJECTED as OBJECT_NOT_FOUND, the other nine went, and the request succeeded
    files = by_name(pipeline)
    gone_now = files.pop("v-3.pdf")
    assert (gone_now["failureReason"], gone_now.get("attempts", 0)) == ("OBJECT_NOT_FOUND", 0)
    assert {f["status"] for f in files.values()} == {FileStatus.SUBMITTED}
    assert [b["runCount"] for b in sim_batches(extend_sim)] == [9]
    assert pipeline.submitter.errors == 0


def refuse_unnamed(monkeypatch: pytest.MonkeyPatch, refused: Any) -> list[int]:
    """Extend refuses (400, no input named) every batch for which ``refused(names)`` is true; the sizes
    of the POSTs sent."""
    posts: list[int] = []
    original = ExtendClient.create_batch

    def create_batch(
        self: ExtendClient, processor_type: str, processor: Any, inputs: Any, **kwargs: Any
    ) -> Any:
        posts.append(len(inputs))
        names = [i.metadata["batchdrop"]["fileId"].rsplit("/", 1)[-1].split("#")[0] for i in inputs]
        if refused(names):
            raise ExtendRejectedError("The request could not be processed", status_code=400, code="INVALID")
        return original(self, processor_type, processor, inputs, **kwargs)

    monkeypatch.setattr(ExtendClient, "create_batch", create_batch)
    return posts


def test_a_refusal_that_names_no_input_is_bisected_to_the_poison_file_in_bounded_posts(
    build: Any, deployment: Deployment, extend_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given twenty queued files, the oldest of which Extend refuses without saying which input it is
    pipeline = build()
    queue(pipeline, deployment, ["invoices/poison.pdf"])
    queue(pipeline, deployment, [f"invoices/c-{i:02d}.pdf" for i in range(19)])
    posts = refuse_unnamed(monkeypatch, lambda names: "poison.pdf" in names)
    time.sleep(1.1)

    # When the submitter runs
    pipeline.submitter.drain()

    # Then the poison file alone is REJECTED, every other file went to Extend once, the route is not
    # blocked, and finding it took a bounded number of POSTs (halves of 10: 5, 2, 1, then a batch
    # without it to show the route works, then the halves again)
    files = by_name(pipeline)
    poison = files.pop("poison.pdf")
    assert (poison["status"], poison["failureReason"]) == (FileStatus.REJECTED, "EXTEND_REFUSED_INPUT")
    assert Counter(f["status"] for f in files.values()) == {FileStatus.SUBMITTED: 19}
    assert_each_file_in_exactly_one_batch(sim_batches(extend_sim), [*files.values(), poison])
    assert not pipeline.runtime("submitter").state.route_state("invoices").get("blocked")
    assert len(posts) <= 16, posts


def test_a_refusal_of_every_batch_that_names_no_input_blocks_the_route_and_rejects_nothing(
    build: Any, deployment: Deployment, extend_sim: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Extend refusing every batch of the route without naming an input (a setting of the route)
    pipeline = build()
    queue(pipeline, deployment, [f"invoices/d-{i}.pdf" for i in range(10)])
    posts = refuse_unnamed(monkeypatch, lambda names: True)
    time.sleep(1.1)

    # When the submitter runs
    pipeline.submitter.drain()

    # Then the route is blocked, no file is rejected, and it took a bounded number of POSTs
    state = pipeline.runtime("submitter").state.route_state("invoices")
    assert state["blocked"] is True
    assert {f["status"] for f in all_files(pipeline)} == {FileStatus.QUEUED}
    assert len(posts) <= 12, posts
