"""The demo from start to end (``main``): start the sandbox, drop the files, watch, summarize; stop in order
on Ctrl-C or SIGTERM, or keep the sandbox running with ``--keep``."""

from __future__ import annotations

import json
import time

from sandbox import interrupt
from sandbox.demo.observe import Observer
from sandbox.demo.options import options_for, parse_args
from sandbox.demo.summary import print_stuck, print_summary, send_logs_to, summarize
from sandbox.demo.upload import Uploader
from sandbox.demo.watch import Outcome, watch
from sandbox.documents import DEMO_MIX, sample_files
from sandbox.interrupt import Interrupted
from sandbox.local import Sandbox


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt.install()
    console = send_logs_to(args.log)
    files = sample_files(args.files, mix=DEMO_MIX) if args.files else []
    extend = f"Extend at {args.extend_url}" if args.extend_url else "the Extend simulator"
    console.print(f"Starting the sandbox (moto server, {extend})…")
    sandbox = Sandbox(options_for(args))
    uploader: Uploader | None = None
    keeping = False
    try:
        sandbox.start()
        console.print(f"  AWS endpoint: {sandbox.moto.url}   Extend: {sandbox.settings.extend_base_url}")
        console.print(
            f"  webhook: {sandbox.webhook_url}   drop bucket: {sandbox.deployment.resources.drop_bucket}"
        )
        console.print(f"  function logs: {args.log}")
        started = time.monotonic()
        outcome = Outcome(finished=True)
        if files:
            routes = ", ".join(f"{r.name} ({r.type})" for r in sandbox.settings.routes)
            console.print(
                f"Dropping {len(files):,} files over {routes}; giving up after {args.stall_timeout:.0f} s "
                "without progress",
                highlight=False,
                soft_wrap=True,
            )
            uploader = Uploader(sandbox, files)
            outcome = watch(
                sandbox, uploader, console, stall_timeout=args.stall_timeout, timeout=args.timeout
            )
            uploader.stop()
        summary = summarize(sandbox, time.monotonic() - started)
        summary["outcome"] = "finished" if outcome.finished else outcome.reason
        if not outcome.finished:
            print_stuck(console, outcome, Observer(sandbox).take_census(time.monotonic()))
        print_summary(console, summary, sandbox)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2, default=str))
        if args.keep:
            endpoints = sandbox.endpoints()
            if args.endpoints:
                args.endpoints.write_text(json.dumps(endpoints, indent=2))
                console.print(f"endpoints written to {args.endpoints}")
            console.print(json.dumps(endpoints, indent=2))
            console.print("The sandbox keeps running; Ctrl-C stops it.")
            keeping = True
            while True:
                time.sleep(3600)
        if not outcome.finished or summary["unsettled"]:
            console.print(
                f"[red]{summary['unsettled']} file(s) did not reach a terminal state (nor a wait on "
                "review)[/red]"
            )
            return 1
        return 0
    except Interrupted as stop:
        console.print(
            f"{stop}: stopping the sandbox (Ctrl-C again to force exit)…", highlight=False, soft_wrap=True
        )
        if uploader is not None:
            uploader.stop()
            if uploader.count < len(files):
                interrupt.note(f"{len(files) - uploader.count:,} of {len(files):,} files never dropped")
        sandbox.stop()
        console.print(interrupt.summary(), highlight=False, soft_wrap=True)
        return interrupt.finish(0 if keeping else stop.exit_code)
    finally:
        if uploader is not None:
            uploader.stop()
        sandbox.stop()
