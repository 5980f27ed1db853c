"""Extend simulator: a real HTTP server on loopback that behaves like the Extend API for the endpoints
batchdrop uses (batch create, batch/run reads, list pagination, file upload, webhook endpoints), with
an async run state machine, throughput and read-rate limits, signed webhooks and switchable faults.

    PYTHONPATH=lambdas:. python -m sandbox.extend_simulator --port 8787

prints its base URL and serves until Ctrl-C. The implementation lives in ``sandbox.extend_sim``.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from sandbox.extend_sim import ExtendSimulator, Faults

__all__ = ["ExtendSimulator", "Faults", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.extend_simulator", description="Run the Extend simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", help="accept only this bearer token (default: any)")
    parser.add_argument("--webhook-url", help="deliver batch events here")
    parser.add_argument("--webhook-secret", help="signing secret for --webhook-url")
    parser.add_argument("--files-per-minute", type=float, default=0, help="throughput; 0 = unlimited")
    parser.add_argument("--read-rps", type=float, default=0, help="GET requests per second (0: unlimited)")
    parser.add_argument("--processors", help="comma-separated processor ids that exist (default: any)")
    parser.add_argument("--processing-delay", type=float, default=0.0, help="seconds per run in PROCESSING")
    parser.add_argument("--seed", type=int, default=0, help="seed for fault injection")
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")
    processors = {p.strip() for p in args.processors.split(",") if p.strip()} if args.processors else None
    sim = ExtendSimulator(
        args.host,
        args.port,
        api_key=args.api_key,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        files_per_minute=args.files_per_minute,
        read_rps=args.read_rps,
        allowed_processors=processors,
        seed=args.seed,
        processing_delay=args.processing_delay,
    )
    # SIGTERM (from a process manager or the demo) stops as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt), sim:  # Ctrl-C is the way to stop it
        print(sim.base_url, flush=True)
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
