"""ExtendClient against httpx.MockTransport: request shapes, retries, and which error each failure gets."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from batchdrop_core.extend import (
    BatchInput,
    ExtendClient,
    ExtendInputError,
    ExtendOutcomeUnknownError,
    ExtendRejectedError,
    ExtendRetryableError,
    FileRef,
    ProcessorRef,
    RunStatus,
)

Outcome = Callable[[httpx.Request], httpx.Response]

BATCH_RUN = {
    "object": "batch_run",
    "id": "bpr_1",
    "status": "PENDING",
    "runCount": 1,
    "createdAt": "2026-03-01T12:00:00Z",
}


def reply(status: int = 200, body: Any = None, headers: dict[str, str] | None = None) -> Outcome:
    """A fresh response per request (a Response object cannot be returned twice)."""
    if isinstance(body, str):
        return lambda request: httpx.Response(status, text=body, headers=headers)
    return lambda request: httpx.Response(status, json=body, headers=headers)


def fail(error_type: type[httpx.TransportError]) -> Outcome:
    def raise_error(request: httpx.Request) -> httpx.Response:
        raise error_type("simulated", request=request)

    return raise_error


class Harness:
    """An ExtendClient that records its requests and answers with ``outcomes`` in order (the last repeats)."""

    def __init__(self, *outcomes: Outcome, **options: Any) -> None:
        self.requests: list[httpx.Request] = []
        self.waits: list[float] = []
        self._outcomes = list(outcomes)
        options.setdefault("api_key", "sk_test")
        self.client = ExtendClient(
            transport=httpx.MockTransport(self._handle), sleep=self.waits.append, **options
        )

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self._outcomes.pop(0) if len(self._outcomes) > 1 else self._outcomes[0]
        return outcome(request)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def url_input(n: int = 0, **metadata: Any) -> BatchInput:
    return BatchInput(
        file=FileRef.from_url(f"https://bucket.example/doc-{n}.pdf?sig=x", name=f"doc-{n}.pdf"),
        metadata=metadata or None,
    )


# ----- headers -----


def test_every_request_type_carries_auth_version_workspace_and_user_agent() -> None:
    # Given a client for an org-scoped key that is fetched per request (as after a rotation)
    keys = iter(f"sk_key{i}" for i in range(10))

    def route(request: httpx.Request) -> httpx.Response:
        bodies = {
            "/files/upload": {"object": "file", "id": "file_1", "name": "a.pdf"},
            "/webhook_endpoints": {"id": "whe_1", "signingSecret": "wss_x"},
            "/extract_runs": {"object": "list", "data": []},
            "/extract_runs/exr_1": {"id": "exr_1", "status": "PROCESSED"},
        }
        return httpx.Response(200, json=bodies.get(request.url.path, BATCH_RUN))

    harness = Harness(route, api_key=lambda: next(keys), workspace_id="ws_42")
    client = harness.client

    # When every kind of call is made
    client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input()])
    client.get_batch_run("bpr_1")
    client.get_run("extract", "exr_1")
    client.list_runs_page("extract", batch_id="bpr_1")
    client.upload_file("a.pdf", b"%PDF")
    client.create_webhook_endpoint("https://hooks.example/extend", name="batchdrop")

    # Then each one carried the same headers, with the key current at that moment
    assert len(harness.requests) == 6
    for i, request in enumerate(harness.requests):
        assert request.headers["authorization"] == f"Bearer sk_key{i}"
        assert request.headers["x-extend-api-version"] == "2026-02-09"
        assert request.headers["x-extend-workspace-id"] == "ws_42"
        assert request.headers["user-agent"].startswith("batchdrop/")
        assert request.url.host == "api.extend.ai"


def test_workspace_header_is_left_out_when_not_configured() -> None:
    harness = Harness(reply(200, BATCH_RUN), api_version="2025-01-01")

    harness.client.get_batch_run("bpr_1")

    assert "x-extend-workspace-id" not in harness.requests[0].headers
    assert harness.requests[0].headers["x-extend-api-version"] == "2025-01-01"


# ----- create_batch -----


@pytest.mark.parametrize(
    ("processor_type", "processor_id", "path", "key"),
    [
        ("extract", "ex_9fK2", "/extract_runs/batch", "extractor"),
        ("classify", "cl_4kD9", "/classify_runs/batch", "classifier"),
        ("split", "spl_P0o9", "/split_runs/batch", "splitter"),
    ],
)
def test_create_batch_sends_the_processor_under_its_key_and_one_item_per_input(
    processor_type: str, processor_id: str, path: str, key: str
) -> None:
    # Given
    harness = Harness(reply(200, BATCH_RUN))
    processor = ProcessorRef(id=processor_id, version="3.0", override_config={"extractionRules": "ISO dates"})
    inputs = [
        url_input(0, batchdrop={"submissionId": "sub_1", "fileId": "f0"}),
        BatchInput(file=FileRef.from_id("file_xK9")),
    ]

    # When
    batch = harness.client.create_batch(processor_type, processor, inputs, priority=40)

    # Then
    request = harness.requests[0]
    assert (request.method, request.url.path) == ("POST", path)
    assert request.headers["content-type"] == "application/json"
    assert harness.body() == {
        key: {"id": processor_id, "version": "3.0", "overrideConfig": {"extractionRules": "ISO dates"}},
        "inputs": [
            {
                "file": {"url": "https://bucket.example/doc-0.pdf?sig=x", "name": "doc-0.pdf"},
                "metadata": {"batchdrop": {"submissionId": "sub_1", "fileId": "f0"}},
            },
            {"file": {"id": "file_xK9"}},
        ],
        "priority": 40,
    }
    assert (batch.id, batch.status, batch.run_count) == ("bpr_1", "PENDING", 1)


def test_create_batch_leaves_out_unset_optional_fields() -> None:
    harness = Harness(reply(200, BATCH_RUN))

    harness.client.create_batch(
        "classify", ProcessorRef(id="cl_1"), [BatchInput(file=FileRef.from_text("hi"))]
    )

    assert harness.body() == {"classifier": {"id": "cl_1"}, "inputs": [{"file": {"text": "hi"}}]}


def test_parse_batches_send_their_config_and_no_processor() -> None:
    harness = Harness(reply(200, {**BATCH_RUN, "id": "bpar_1"}))
    config = {"target": "markdown", "chunkingStrategy": {"type": "document"}}

    batch = harness.client.create_batch(
        "parse", ProcessorRef(override_config=config), [url_input()], priority=5
    )

    assert batch.id == "bpar_1"
    assert harness.requests[0].url.path == "/parse_runs/batch"
    assert harness.body() == {"config": config, "inputs": [url_input().to_wire()], "priority": 5}


def test_parse_batches_without_a_config_use_extends_defaults() -> None:
    harness = Harness(reply(200, {**BATCH_RUN, "id": "bpar_1"}))

    harness.client.create_batch("parse", None, [url_input()])

    assert harness.body() == {"inputs": [url_input().to_wire()]}


def test_workflow_batches_name_the_workflow_and_answer_a_batch_id_only() -> None:
    harness = Harness(reply(200, {"batchId": "batch_7"}))

    batch = harness.client.create_batch(
        "workflow", ProcessorRef(id="workflow_1", version="3"), [url_input()], priority=90
    )

    assert (batch.id, batch.status) == ("batch_7", "PENDING")
    assert harness.requests[0].url.path == "/workflow_runs/batch"
    assert harness.body() == {
        "workflow": {"id": "workflow_1", "version": "3"},
        "inputs": [url_input().to_wire()],
        "priority": 90,
    }


def test_parse_run_lists_send_no_sort_and_both_page_size_spellings() -> None:
    harness = Harness(reply(200, {"object": "list", "data": []}))

    harness.client.list_runs_page(
        "parse", batch_id="bpar_1", sort_by="createdAt", sort_dir="asc", max_page_size=50
    )

    params = dict(harness.requests[0].url.params)
    assert params == {"batchId": "bpar_1", "maxPageSize": "50", "limit": "50"}


def test_parse_runs_are_read_with_their_output_inline() -> None:
    harness = Harness(reply(200, {"object": "parse_run", "id": "pr_1", "status": "PROCESSED", "output": {}}))

    harness.client.get_run("parse", "pr_1")

    assert harness.requests[0].url.path == "/parse_runs/pr_1"
    assert dict(harness.requests[0].url.params) == {"responseType": "json"}


def test_a_route_without_a_processor_is_checked_with_one_list_read() -> None:
    harness = Harness(reply(200, {"object": "list", "data": []}))

    harness.client.check_route("parse", None, retries=0)

    assert harness.requests[0].url.path == "/parse_runs"
    assert dict(harness.requests[0].url.params) == {"maxPageSize": "1", "limit": "1"}


@pytest.mark.parametrize(
    ("processor_type", "processor_id", "inputs", "reason"),
    [
        ("extract", "ex_1", [], "1 to 1000 inputs"),
        ("extract", "ex_1", [url_input(i) for i in range(1001)], "1 to 1000 inputs"),
        ("split", "spl_1", [url_input(), BatchInput(file=FileRef.from_text("x"))], "text inputs"),
        ("classify", "ex_1", [url_input()], "start with 'cl_'"),
        ("split", "sp_1", [url_input()], "start with 'spl_'"),
        ("ocr", "ex_1", [url_input()], "unknown processor type"),
        ("workflow", "wf_1", [url_input()], "start with 'workflow_'"),
    ],
)
def test_create_batch_refuses_what_extend_would_reject_without_sending(
    processor_type: str, processor_id: str, inputs: list[BatchInput], reason: str
) -> None:
    harness = Harness(reply(200, BATCH_RUN))

    with pytest.raises(ExtendInputError, match=reason):
        harness.client.create_batch(processor_type, ProcessorRef(id=processor_id), inputs)

    assert harness.requests == []


def test_create_batch_accepts_exactly_1000_inputs() -> None:
    harness = Harness(reply(200, BATCH_RUN))

    harness.client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input(i) for i in range(1000)])

    assert len(harness.body()["inputs"]) == 1000


@pytest.mark.parametrize("fields", [{}, {"url": "https://x", "id": "file_1"}, {"text": "a", "id": "file_1"}])
def test_a_file_reference_needs_exactly_one_source(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="exactly one of url, id or text"):
        FileRef(**fields)


# ----- create_batch failures: never resend unless nothing can have been created -----


@pytest.mark.parametrize(
    "outcome",
    [
        reply(500, {"code": "INTERNAL_ERROR", "message": "boom", "retryable": True}),
        reply(502, "<html>Bad gateway</html>"),
        reply(200, "not json"),
        reply(200, {"unexpected": True}),
        fail(httpx.ReadTimeout),
        fail(httpx.WriteTimeout),
        fail(httpx.ReadError),
        fail(httpx.RemoteProtocolError),
    ],
    ids=[
        "500",
        "502-html",
        "2xx-not-json",
        "2xx-wrong-shape",
        "read-timeout",
        "write-timeout",
        "read-error",
        "protocol-error",
    ],
)
def test_create_batch_reports_an_unknown_outcome_after_one_request(outcome: Outcome) -> None:
    harness = Harness(outcome, reply(200, BATCH_RUN))

    with pytest.raises(ExtendOutcomeUnknownError) as caught:
        harness.client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input()])

    assert len(harness.requests) == 1
    assert harness.waits == []
    assert not caught.value.retryable


@pytest.mark.parametrize("error_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_create_batch_resends_when_the_request_never_left(error_type: type[httpx.TransportError]) -> None:
    harness = Harness(fail(error_type), reply(200, BATCH_RUN))

    batch = harness.client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input()])

    assert batch.id == "bpr_1"
    assert len(harness.requests) == 2
    assert harness.client.stats == {"requests": 2, "retries": 1, "rate_limited": 0}


def test_create_batch_resends_after_429_waiting_for_retry_after() -> None:
    rate_limited = {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down", "retryable": True}
    harness = Harness(reply(429, rate_limited, {"Retry-After": "3"}), reply(200, BATCH_RUN))

    batch = harness.client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input()])

    assert batch.id == "bpr_1"
    assert harness.waits == [3.0]
    assert harness.body(0) == harness.body(1)
    assert harness.client.stats == {"requests": 2, "retries": 1, "rate_limited": 1}


def test_create_batch_gives_up_on_429_after_max_retries() -> None:
    harness = Harness(
        reply(429, {"code": "RATE_LIMIT_EXCEEDED", "message": "slow down"}, {"Retry-After": "2"}),
        max_retries=2,
    )

    with pytest.raises(ExtendRetryableError) as caught:
        harness.client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input()])

    assert len(harness.requests) == 3
    assert caught.value.retry_after == 2.0
    assert caught.value.status_code == 429


def test_create_batch_rejection_carries_extends_message() -> None:
    body = {"code": "INVALID_REQUEST", "message": "inputs[0].file: invalid url", "retryable": False}
    harness = Harness(reply(400, body, {"x-extend-request-id": "req_9"}))

    with pytest.raises(ExtendRejectedError) as caught:
        harness.client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input()])

    error = caught.value
    assert (error.status_code, error.code, error.message) == (
        400,
        "INVALID_REQUEST",
        "inputs[0].file: invalid url",
    )
    assert error.request_id == "req_9"
    assert error.is_config_problem and not error.is_auth_problem
    assert (
        str(error)
        == "Extend API error (HTTP 400 INVALID_REQUEST): inputs[0].file: invalid url [request req_9]"
    )
    assert len(harness.requests) == 1


# ----- reads -----


def test_iter_runs_follows_next_page_token_across_three_pages() -> None:
    # Given three pages chained by nextPageToken
    pages = {
        None: ({"id": "exr_1", "status": "PROCESSED"}, {"id": "exr_2", "status": "FAILED"}),
        "t2": ({"id": "exr_3", "status": "PROCESSED"},),
        "t3": ({"id": "exr_4", "status": "CANCELLED"},),
    }
    following = {None: "t2", "t2": "t3", "t3": None}

    def route(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("nextPageToken")
        return httpx.Response(
            200, json={"object": "list", "data": pages[token], "nextPageToken": following[token]}
        )

    harness = Harness(route)

    # When
    runs = list(harness.client.iter_runs("extract", batch_id="bpr_1", status=RunStatus.PROCESSED))

    # Then every run is returned once, and each page asked with the same filters
    assert [run.id for run in runs] == ["exr_1", "exr_2", "exr_3", "exr_4"]
    params = [dict(request.url.params) for request in harness.requests]
    base = {"batchId": "bpr_1", "status": "PROCESSED", "maxPageSize": "1000"}
    assert params == [base, {**base, "nextPageToken": "t2"}, {**base, "nextPageToken": "t3"}]
    assert all(request.url.path == "/extract_runs" for request in harness.requests)


@pytest.mark.parametrize(
    ("processor_type", "path", "filter_param"),
    [
        ("extract", "/extract_runs", "extractorId"),
        ("classify", "/classify_runs", "classifierId"),
        ("split", "/split_runs", "splitterId"),
    ],
)
def test_list_runs_page_names_the_processor_filter_per_type(
    processor_type: str, path: str, filter_param: str
) -> None:
    harness = Harness(reply(200, {"object": "list", "data": [], "nextPageToken": None}))

    page = harness.client.list_runs_page(
        processor_type,
        processor_id="p_1",
        sort_by="createdAt",
        sort_dir="asc",
        max_page_size=50,
        page_token="tok",
    )

    assert page.data == [] and page.next_page_token is None
    assert harness.requests[0].url.path == path
    assert dict(harness.requests[0].url.params) == {
        filter_param: "p_1",
        "sortBy": "createdAt",
        "sortDir": "asc",
        "maxPageSize": "50",
        "nextPageToken": "tok",
    }


def test_read_honours_retry_after_on_429_then_succeeds() -> None:
    harness = Harness(
        reply(429, {"code": "RATE_LIMIT_EXCEEDED", "message": "slow"}, {"Retry-After": "7"}),
        reply(200, BATCH_RUN),
    )

    batch = harness.client.get_batch_run("bpr_1")

    assert batch.id == "bpr_1"
    assert harness.waits == [7.0]
    assert harness.client.stats == {"requests": 2, "retries": 1, "rate_limited": 1}


def test_retry_after_ms_and_http_dates_are_understood_and_capped() -> None:
    in_ten_seconds = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    harness = Harness(
        reply(429, None, {"retry-after-ms": "1500"}),
        reply(503, None, {"Retry-After": in_ten_seconds}),
        reply(503, None, {"Retry-After": "3600"}),
        reply(200, BATCH_RUN),
    )

    harness.client.get_batch_run("bpr_1")

    assert harness.waits[0] == 1.5
    assert 8 <= harness.waits[1] <= 10
    assert harness.waits[2] == 60.0


@pytest.mark.parametrize(
    "outcome",
    [
        reply(500, {"code": "INTERNAL_ERROR", "message": "x"}),
        reply(408),
        reply(200, "truncated {"),
        fail(httpx.ReadTimeout),
        fail(httpx.ConnectError),
        fail(httpx.RemoteProtocolError),
    ],
    ids=["500", "408", "2xx-not-json", "read-timeout", "connect-error", "protocol-error"],
)
def test_read_is_retried_with_jittered_backoff_then_succeeds(outcome: Outcome) -> None:
    harness = Harness(outcome, outcome, reply(200, {"id": "exr_1", "status": "PROCESSED"}), backoff_base=0.5)

    run = harness.client.get_run("extract", "exr_1")

    assert run.id == "exr_1"
    assert len(harness.requests) == 3
    assert 0 <= harness.waits[0] <= 0.5
    assert 0 <= harness.waits[1] <= 1.0


def test_backoff_never_exceeds_its_cap() -> None:
    harness = Harness(reply(500), max_retries=8, backoff_base=1.0, backoff_cap=4.0)

    with pytest.raises(ExtendRetryableError):
        harness.client.get_batch_run("bpr_1")

    assert len(harness.waits) == 8
    assert all(0 <= wait <= 4.0 for wait in harness.waits)


def test_read_gives_up_after_max_retries_with_the_last_error() -> None:
    harness = Harness(
        reply(503, {"code": "INTERNAL_ERROR", "message": "down"}, {"Retry-After": "1"}), max_retries=3
    )

    with pytest.raises(ExtendRetryableError) as caught:
        harness.client.get_batch_run("bpr_1")

    assert len(harness.requests) == 4
    assert harness.waits == [1.0, 1.0, 1.0]
    error = caught.value
    assert (error.status_code, error.code, error.message, error.retry_after) == (
        503,
        "INTERNAL_ERROR",
        "down",
        1.0,
    )
    assert error.retryable


def test_404_is_rejected_at_once_with_extends_message() -> None:
    body = {
        "code": "NOT_FOUND",
        "message": "Extract run exr_x not found",
        "retryable": False,
        "requestId": "req_1",
    }
    harness = Harness(reply(404, body))

    with pytest.raises(ExtendRejectedError) as caught:
        harness.client.get_run("extract", "exr_x")

    assert len(harness.requests) == 1
    error = caught.value
    assert (error.status_code, error.code, error.request_id) == (404, "NOT_FOUND", "req_1")
    assert "Extract run exr_x not found" in str(error) and "404" in str(error)
    assert error.is_config_problem


def test_wrapped_error_body_is_parsed() -> None:
    body = {
        "error": {
            "code": "UNAUTHORIZED",
            "message": "Invalid API key",
            "retryable": False,
            "requestId": "req_2",
        }
    }
    harness = Harness(reply(401, body))

    with pytest.raises(ExtendRejectedError) as caught:
        harness.client.get_batch_run("bpr_1")

    assert (caught.value.code, caught.value.message, caught.value.request_id) == (
        "UNAUTHORIZED",
        "Invalid API key",
        "req_2",
    )
    assert caught.value.is_auth_problem


def test_non_json_error_body_falls_back_to_the_status_text() -> None:
    harness = Harness(reply(403, "<html>denied</html>"))

    with pytest.raises(ExtendRejectedError) as caught:
        harness.client.get_batch_run("bpr_1")

    assert (caught.value.message, caught.value.code) == ("Forbidden", None)
    assert str(caught.value) == "Extend API error (HTTP 403): Forbidden"


def test_unknown_fields_and_status_values_are_kept() -> None:
    run_body = {
        "object": "extract_run",
        "id": "exr_1",
        "status": "ARCHIVED",
        "failureReason": "SOMETHING_NEW",
        "metadata": {"batchdrop": {"fileId": "f1"}, "tenant": "acme"},
        "brandNewField": {"x": 1},
        "output": {"value": {"total": 3}},
    }
    harness = Harness(reply(200, run_body))

    run = harness.client.get_run("extract", "exr_1")

    assert (run.status, run.failure_reason) == ("ARCHIVED", "SOMETHING_NEW")
    assert run.model_extra == {"brandNewField": {"x": 1}}
    assert run.batchdrop_metadata == {"fileId": "f1"}
    assert run.output == {"value": {"total": 3}}
    assert run.file is None and run.usage is None


def test_ids_are_quoted_into_the_path() -> None:
    harness = Harness(reply(200, BATCH_RUN))

    harness.client.get_batch_run("../files/x")

    assert harness.requests[0].url.raw_path == b"/batch_runs/..%2Ffiles%2Fx"


def test_reads_take_a_limiter_token_per_attempt_and_penalize_on_429() -> None:
    class RecordingLimiter:
        def __init__(self) -> None:
            self.calls: list[tuple[str, float | None]] = []

        def acquire(self) -> float:
            self.calls.append(("acquire", None))
            return 0.0

        def penalize(self, seconds: float) -> None:
            self.calls.append(("penalize", seconds))

    limiter = RecordingLimiter()
    harness = Harness(
        reply(429, None, {"Retry-After": "2"}), reply(500), reply(200, BATCH_RUN), read_limiter=limiter
    )

    harness.client.get_batch_run("bpr_1")

    assert limiter.calls == [("acquire", None), ("penalize", 2.0), ("acquire", None), ("acquire", None)]


def test_create_calls_do_not_spend_the_read_budget() -> None:
    class FailingLimiter:
        def acquire(self) -> float:
            raise AssertionError("a create call took a read token")

    harness = Harness(reply(200, BATCH_RUN), read_limiter=FailingLimiter())

    harness.client.create_batch("extract", ProcessorRef(id="ex_1"), [url_input()])


# ----- files and webhooks -----


def test_upload_file_sends_one_multipart_file_field() -> None:
    harness = Harness(reply(200, {"object": "file", "id": "file_1", "name": "a.pdf", "type": "PDF"}))

    uploaded = harness.client.upload_file("a.pdf", b"%PDF-1.7 data", "application/pdf")

    request = harness.requests[0]
    assert (request.method, request.url.path) == ("POST", "/files/upload")
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    content = request.content
    assert b'Content-Disposition: form-data; name="file"; filename="a.pdf"' in content
    assert b"Content-Type: application/pdf" in content
    assert b"%PDF-1.7 data" in content
    assert (uploaded.id, uploaded.name, uploaded.type) == ("file_1", "a.pdf", "PDF")


def test_upload_file_is_retried_on_server_errors() -> None:
    harness = Harness(reply(502), fail(httpx.ReadTimeout), reply(200, {"id": "file_1"}))

    assert harness.client.upload_file("a.txt", b"hi").id == "file_1"
    assert len(harness.requests) == 3


def test_create_webhook_endpoint_returns_the_signing_secret() -> None:
    body = {
        "object": "webhook_endpoint",
        "id": "whe_1",
        "url": "https://hooks.example/extend",
        "name": "batchdrop",
        "enabledEvents": ["batch_processor_run.processed", "batch_processor_run.failed"],
        "signingSecret": "wss_abc",
    }
    harness = Harness(reply(200, body))

    endpoint = harness.client.create_webhook_endpoint("https://hooks.example/extend", name="batchdrop")

    assert endpoint.signing_secret == "wss_abc"
    assert endpoint.enabled_events == ["batch_processor_run.processed", "batch_processor_run.failed"]
    assert harness.requests[0].url.path == "/webhook_endpoints"
    # By default the batch events of processors and parse; workflows' run events come through a
    # subscription per workflow (an endpoint does not take them)
    assert harness.body() == {
        "url": "https://hooks.example/extend",
        "name": "batchdrop",
        "enabledEvents": [
            "batch_processor_run.processed",
            "batch_processor_run.failed",
            "batch_parse_run.processed",
            "batch_parse_run.failed",
        ],
        "apiVersion": "2026-02-09",
    }


def test_create_webhook_subscription_names_the_endpoint_resource_and_events() -> None:
    harness = Harness(
        reply(200, {"object": "webhook_subscription", "id": "whs_1", "resourceId": "workflow_1"})
    )

    subscription = harness.client.create_webhook_subscription(
        "whe_1", "workflow", "workflow_1", ["workflow_run.completed"]
    )

    assert subscription.id == "whs_1"
    assert harness.requests[0].url.path == "/webhook_subscriptions"
    assert harness.body() == {
        "webhookEndpointId": "whe_1",
        "resourceType": "workflow",
        "resourceId": "workflow_1",
        "enabledEvents": ["workflow_run.completed"],
    }


def test_create_webhook_endpoint_is_not_resent_after_a_server_error() -> None:
    harness = Harness(reply(500), reply(200, {"id": "whe_1", "signingSecret": "wss_abc"}))

    with pytest.raises(ExtendOutcomeUnknownError):
        harness.client.create_webhook_endpoint("https://hooks.example/extend", name="batchdrop")

    assert len(harness.requests) == 1


def test_client_is_a_context_manager() -> None:
    with Harness(reply(200, BATCH_RUN)).client as client:
        assert client.get_batch_run("bpr_1").id == "bpr_1"


def test_retries_are_logged_without_the_api_key(caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(reply(503), reply(200, BATCH_RUN), api_key="sk_secret_value")

    with caplog.at_level("WARNING", logger="batchdrop_core.extend.client"):
        harness.client.get_batch_run("bpr_1")

    assert "GET /batch_runs/bpr_1" in caplog.text and "HTTP 503" in caplog.text
    assert "sk_secret_value" not in caplog.text


@pytest.mark.parametrize(
    ("processor_type", "processor_id", "path"),
    [
        ("extract", "ex_1", "/extractors/ex_1"),
        ("classify", "cl_1", "/classifiers/cl_1"),
        ("split", "spl_1", "/splitters/spl_1"),
    ],
)
def test_get_processor_reads_the_processor_and_a_probe_sends_one_request(
    processor_type: str, processor_id: str, path: str
) -> None:
    harness = Harness(reply(200, {"object": "extractor", "id": processor_id, "name": "n"}))
    assert harness.client.get_processor(processor_type, processor_id).id == processor_id
    assert harness.requests[0].method == "GET" and harness.requests[0].url.path == path

    # A probe (retries=0) that is throttled or refused is one request, never a retry loop
    throttled = Harness(reply(429))
    with pytest.raises(ExtendRetryableError):
        throttled.client.get_processor(processor_type, processor_id, retries=0)
    assert len(throttled.requests) == 1 and throttled.waits == []
