"""The fault run's seams: a replacement touches one object only, is undone exactly, and a seam that names a
method the code no longer has fails at once instead of silently injecting nothing."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from sandbox.reliability.crashpoints import Seams, SimulatedCrash


class Store:
    def record(self, value: int) -> int:
        return value


def crash_on_seven(original):
    def record(value: int) -> int:
        if value == 7:
            raise SimulatedCrash("crashed")
        return original(value)

    return record


def test_a_wrapped_method_changes_one_object_and_is_undone() -> None:
    seams, hurt, spared = Seams(), Store(), Store()
    seams.wrap(hurt, "record", crash_on_seven)
    with pytest.raises(SimulatedCrash):
        hurt.record(7)
    assert spared.record(7) == 7  # another runtime's store (or the run's observer) is untouched
    seams.undo()
    assert hurt.record(7) == 7 and "record" not in vars(hurt)


def test_a_seam_that_names_a_missing_method_fails_at_once() -> None:
    with pytest.raises(AttributeError, match=r"no callable 'record_result'.*out of date"):
        Seams().wrap(Store(), "record_result", crash_on_seven)


def test_a_client_hook_fails_one_call_on_that_client_only_and_is_removed() -> None:
    session = boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    hurt, spared = session.client("s3"), session.client("s3")
    seams = Seams()

    def crash(params, **_):
        if params["Bucket"] == "results":
            raise SimulatedCrash("crashed mid-collection")

    seams.on_call(hurt, "before-parameter-build.s3.PutObject", crash)
    # (stubbed responses without expected parameters: the crash comes before one would be used)
    with Stubber(hurt) as stub, Stubber(spared) as spared_stub:
        stub.add_response("put_object", {})
        stub.add_response("put_object", {})
        spared_stub.add_response("put_object", {})
        with pytest.raises(SimulatedCrash):
            hurt.put_object(Bucket="results", Key="k", Body=b"")
        hurt.put_object(Bucket="other", Key="k", Body=b"")
        spared.put_object(Bucket="results", Key="k", Body=b"")
        seams.undo()
        hurt.put_object(Bucket="results", Key="k", Body=b"")
        stub.assert_no_pending_responses()
