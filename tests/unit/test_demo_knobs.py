"""`make demo ARGS="--set NAME=VALUE --sim NAME=VALUE"`: any setting and any simulator setting, bad ones
refused before anything starts with a message that says what is wrong."""

from __future__ import annotations

import pytest

from batchdrop_core.config import Settings
from batchdrop_core.extend.processors import PROCESSOR_TYPES
from sandbox.demo import DEMO_SETTINGS, EXAMPLE_ROUTES, options_for, parse_args
from sandbox.documents import DEMO_MIX, REVIEW_EVERY, sample_files


def test_settings_and_simulator_settings_reach_the_sandbox() -> None:
    args = parse_args(
        [
            "--set", "maxBatchSize=200",
            "--set", "extendFilesPerMinute=80",
            "--set", "presignedUrlExpirySeconds=18000",
            "--set", 'retryableFailureReasons=["INTERNAL_ERROR","OCR_TIMEOUT"]',
            "--sim", "plan=payg",
            "--sim", "missing_retry_after_share=0.5",
        ]
    )  # fmt: skip
    options = options_for(args)
    assert options.settings["maxBatchSize"] == 200
    assert options.settings["extendFilesPerMinute"] == 80  # a --set wins over the demo's own default
    assert options.settings["retryableFailureReasons"] == ["INTERNAL_ERROR", "OCR_TIMEOUT"]
    assert options.settings["readRateLimit"] == DEMO_SETTINGS["readRateLimit"]
    assert options.sim == {"plan": "payg", "missing_retry_after_share": 0.5}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "maxBatchSise=10"], "--set maxBatchSise: no such setting (did you mean maxBatchSize?)"),
        (["--set", "maxBatchSize"], "--set 'maxBatchSize': expected NAME=VALUE"),
        (["--set", "maxBatchSize=5000"], "maxBatchSize: Input should be less than or equal to 1000"),
        (["--set", "fileTransfer=ftp"], "fileTransfer: Input should be 'url' or 'upload'"),
        (
            ["--set", "extendFilesPerMinute=80", "--set", "presignedUrlExpirySeconds=600"],
            "less than two full batches",
        ),
        (["--sim", "plan=gold"], "--sim: plan must be one of payg, scale, enterprise, unlimited"),
        (["--sim", "read_rps=fast"], "--sim: read_rps must be a number"),
        (["--sim", "speed=11"], "--sim speed: no such setting"),
        (["--extend-url", "https://api.extend.ai", "--api-key", "k", "--sim", "plan=payg"], "no simulator"),
    ],
)
def test_a_bad_name_or_value_is_refused_with_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_demo_has_a_route_of_every_type_and_sample_documents_for_each() -> None:
    # One example route per processor type, each valid as cdk.json would hold it
    assert sorted(r["type"] for r in EXAMPLE_ROUTES) == sorted(PROCESSOR_TYPES)
    settings = Settings.parse({"routes": EXAMPLE_ROUTES, "extendBaseUrl": "http://127.0.0.1"}, "demo")
    assert settings.route_for_key("pages/reports/a.pdf").processor_id is None  # parse names no processor

    # And the demo's files go to every route, full batches where there are enough (invoices: 1,000 + 125)
    files = sample_files(2500, mix=DEMO_MIX)
    by_route = {r["name"]: [f for f in files if f.key.startswith(r["prefix"])] for r in EXAMPLE_ROUTES}
    assert {name: len(f) for name, f in by_route.items()} == {
        "invoices": 1126,
        "documents": 501,
        "packets": 375,
        "pages": 249,
        "claims": 248,
    }
    # And one claim in REVIEW_EVERY (5 %) asks for a person's review, so some workflow runs wait on one
    marked = [f for f in by_route["claims"] if b"SIMULATE_REVIEW" in f.body]
    assert len(marked) == -(-len(by_route["claims"]) // REVIEW_EVERY) == 13
    assert sum(b"SIMULATE_REVIEW" in f.body for f in sample_files(300, mix=DEMO_MIX)) == 2
    assert not any(b"SIMULATE_REVIEW" in f.body for f in files if not f.key.startswith("claims/"))
