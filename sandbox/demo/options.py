"""The demo's command line (``make demo ARGS=...``) and the sandbox options it makes: the example routes,
the demo's settings, and ``--set``/``--sim`` assignments checked before the sandbox starts."""

from __future__ import annotations

import argparse
import difflib
import json
import os
from pathlib import Path
from typing import Any

from batchdrop_core.config import ConfigError, Settings
from sandbox.local import SandboxOptions

# --help's description: the first line of the package's docstring.
DESCRIPTION = "``make demo``: the whole pipeline on this machine, end to end."
EXAMPLE_ROUTES = [
    {"name": "invoices", "prefix": "invoices/", "type": "extract", "processorId": "ex_invoices_demo"},
    {"name": "documents", "prefix": "documents/", "type": "classify", "processorId": "cl_doctype_demo"},
    {"name": "packets", "prefix": "packets/", "type": "split", "processorId": "spl_packets_demo"},
    # A parse route names no processor: its overrideConfig is the ParseConfig sent with every batch.
    {
        "name": "pages",
        "prefix": "pages/",
        "type": "parse",
        "overrideConfig": {"target": "markdown", "chunkingStrategy": {"type": "page"}},
    },
    # A workflow's runs report one by one, and some wait in NEEDS_REVIEW for a person.
    {"name": "claims", "prefix": "claims/", "type": "workflow", "processorId": "workflow_claims_demo"},
]
# Without progress for this long, the pipeline is stuck (on the simulator every step shows within
# seconds; a real Extend API shows nothing until a batch completes, which can take a while).
STALL_TIMEOUT = 180.0
STALL_TIMEOUT_REAL_EXTEND = 1800.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    # `batchdrop demo` says what it is called (BATCHDROP_DEMO_PROG); run by make, it is `make demo ARGS=...`.
    prog = os.environ.get("BATCHDROP_DEMO_PROG") or "make demo ARGS=..."
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    parser.add_argument("--files", type=int, default=2500, help="sample documents to drop (default 2500)")
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running until Ctrl-C")
    parser.add_argument("--endpoints", type=Path, help="with --keep: write the endpoints JSON here")
    parser.add_argument(
        "--max-wait", type=int, default=300, help="maxWaitSeconds: when a partial batch goes out"
    )
    parser.add_argument(
        "--log", type=Path, default=Path("demo-out/sandbox.log"), help="where the functions' logs go"
    )
    parser.add_argument("--json", type=Path, help="also write the summary as JSON to this path")
    parser.add_argument(
        "--stall-timeout",
        type=float,
        metavar="SECONDS",
        help=f"give up (exit 1) when no file, batch or Extend run has moved for this long (default "
        f"{STALL_TIMEOUT:.0f}; {STALL_TIMEOUT_REAL_EXTEND:.0f} with --extend-url, whose progress shows only "
        "when a batch completes); time spent waiting for a partial batch's maxWaitSeconds does not count",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="also give up after this many seconds in all, progressing or not (default: no limit)",
    )
    parser.add_argument("--extend-url", help="use a real Extend API instead of the simulator")
    parser.add_argument("--api-key", help="the Extend API key for --extend-url")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a batchdrop setting by its cdk.json name, e.g. --set maxBatchSize=200 --set "
        "extendFilesPerMinute=80 (VALUE is JSON, or else a string; repeatable)",
    )
    parser.add_argument(
        "--sim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an Extend simulator setting, e.g. --sim plan=payg --sim missing_retry_after_share=0.5 "
        f"(one of: {', '.join(_simulator_settings())}; repeatable)",
    )
    args = parser.parse_args(argv)
    args.settings = _assignments(parser, "--set", args.set, _setting_names())
    args.sim_settings = _assignments(parser, "--sim", args.sim, _simulator_settings())
    if args.sim_settings and args.extend_url:
        parser.error("--sim configures the Extend simulator: with --extend-url there is no simulator")
    if bool(args.extend_url) != bool(args.api_key):
        parser.error("--extend-url and --api-key go together")
    if args.endpoints and not args.keep:
        parser.error("--endpoints needs --keep (the endpoints only exist while the sandbox runs)")
    if args.files < 0:
        parser.error("--files must be 0 or more")
    if args.stall_timeout is None:
        args.stall_timeout = STALL_TIMEOUT_REAL_EXTEND if args.extend_url else STALL_TIMEOUT
    if args.stall_timeout <= 0 or (args.timeout is not None and args.timeout <= 0):
        parser.error("--stall-timeout and --timeout must be positive")
    _check(parser, args)
    return args


def _setting_names() -> list[str]:
    return [field.alias or name for name, field in Settings.model_fields.items()]


def _simulator_settings() -> list[str]:
    from sandbox.extend_sim import ExtendSimulator

    return list(ExtendSimulator.SETTINGS)


def _assignments(
    parser: argparse.ArgumentParser, option: str, given: list[str], names: list[str]
) -> dict[str, Any]:
    """``NAME=VALUE`` pairs as a dict; VALUE as JSON if it parses (numbers, true, lists …), else a string."""
    values: dict[str, Any] = {}
    for item in given:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            parser.error(f"{option} {item!r}: expected NAME=VALUE")
        if name not in names:
            close = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(names)}"
            parser.error(f"{option} {name}: no such setting{hint}")
        try:
            values[name] = json.loads(raw)
        except json.JSONDecodeError:
            values[name] = raw
    return values


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse bad values now, with the setting's own message, rather than after the sandbox started."""
    options = options_for(args)
    data = {"routes": options.routes, "extendBaseUrl": "http://127.0.0.1", **options.settings}
    try:
        Settings.parse(data, "--set")
    except ConfigError as exc:
        parser.error(str(exc))
    if args.sim_settings:
        from sandbox.extend_sim import ExtendSimulator

        try:
            ExtendSimulator().configure(**dict(args.sim_settings))
        except (TypeError, ValueError) as exc:
            parser.error(f"--sim: {exc}")


# The demo's simulated Extend has no plan limits (it processes and answers as fast as this machine allows),
# and batchdrop's budgets are set to match: the demo shows the pipeline, not Extend's throughput. Run it
# at Extend's pay-as-you-go limits with: --sim plan=payg --set extendFilesPerMinute=80 --set
# readRateLimit=8 --set writeRateLimit=8.
DEMO_SETTINGS: dict[str, Any] = {
    "orphanGraceSeconds": 5,
    "probeIntervalSeconds": 5,  # a blocked route is probed (and a throttled one waits) on the demo's clock
    "probeIntervalMaxSeconds": 60,
    "readRateLimit": 400,
    "writeRateLimit": 400,
    "extendFilesPerMinute": 100_000,
}


def options_for(args: argparse.Namespace) -> SandboxOptions:
    settings: dict[str, Any] = {**DEMO_SETTINGS, "maxWaitSeconds": args.max_wait}
    if args.extend_url:
        # A machine without a public address gets no webhooks: upload the bytes, and let the reconciler
        # poll batches after a minute.
        settings |= {"fileTransfer": "upload", "webhookGraceMinutes": 1}
    return SandboxOptions(
        routes=EXAMPLE_ROUTES,
        settings={**settings, **args.settings},
        extend_url=args.extend_url,
        api_key=args.api_key,
        reconcile_interval=15.0,
        read_rps=0.0,
        sim=args.sim_settings,
    )
