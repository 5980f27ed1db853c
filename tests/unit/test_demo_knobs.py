"""`make demo ARGS="--set NAME=VALUE --sim NAME=VALUE"`: any setting and any simulator setting, bad ones
refused before anything starts with a message that says what is wrong."""

from __future__ import annotations

import pytest

from sandbox.demo import DEMO_SETTINGS, options_for, parse_args


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
