"""Extend simulator: a real HTTP server on loopback that behaves like the Extend API for the endpoints
batchdrop uses (processor, parse and workflow batches, batch/run reads, list pagination, file upload,
webhook endpoints), with an async run state machine, Extend's plan limits (files per minute across the
workspace, read and write requests per second), signed webhooks and switchable faults.

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
from sandbox.extend_sim.settings import PLANS, SORT_FIELDS

__all__ = ["ExtendSimulator", "Faults", "main"]


def _share(value: str) -> float:
    share = float(value)
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return share


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.extend_simulator", description="Run the Extend simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", help="accept only this bearer token (default: any)")
    parser.add_argument("--webhook-url", help="deliver every event here")
    parser.add_argument("--webhook-secret", help="signing secret for --webhook-url")
    parser.add_argument(
        "--plan",
        choices=sorted(PLANS),
        help="Extend plan limits: payg = 80 files/min, 10 reads/s, 10 writes/s (default: unlimited)",
    )
    parser.add_argument("--files-per-minute", type=float, help="processing throughput; 0 = unlimited")
    parser.add_argument("--read-rps", type=float, help="GET requests per second (0: unlimited)")
    parser.add_argument("--write-rps", type=float, help="POST requests (batches, uploads) per second")
    parser.add_argument(
        "--missing-retry-after-share",
        type=_share,
        default=0.0,
        help="share of 429 answers without Retry-After (x-ratelimit-reset only)",
    )
    parser.add_argument(
        "--default-sort-by", choices=SORT_FIELDS, default="updatedAt", help="list order without sortBy"
    )
    parser.add_argument(
        "--processors", help="comma-separated processor/workflow ids that exist (default: any)"
    )
    parser.add_argument("--refuse-processors", help="comma-separated processor/workflow ids answered 404")
    parser.add_argument(
        "--workflow-review-share",
        type=_share,
        default=0.0,
        help="share of workflow runs held in NEEDS_REVIEW",
    )
    parser.add_argument(
        "--parse-output-url",
        action="store_true",
        help="GET /parse_runs/{id} answers outputUrl unless asked json",
    )
    parser.add_argument("--max-file-bytes", type=int, default=0, help="larger files fail (0: no limit)")
    parser.add_argument("--processing-delay", type=float, default=0.0, help="seconds per run in PROCESSING")
    parser.add_argument("--seed", type=int, default=0, help="seed for fault injection")
    args = parser.parse_args(argv)
    if args.webhook_url and not args.webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")

    def ids(value: str | None) -> set[str] | None:
        return {p.strip() for p in value.split(",") if p.strip()} if value else None

    sim = ExtendSimulator(
        args.host,
        args.port,
        api_key=args.api_key,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        plan=args.plan,
        files_per_minute=args.files_per_minute,
        read_rps=args.read_rps,
        write_rps=args.write_rps,
        missing_retry_after_share=args.missing_retry_after_share,
        default_sort_by=args.default_sort_by,
        allowed_processors=ids(args.processors),
        refused_processors=ids(args.refuse_processors) or (),
        workflow_review_share=args.workflow_review_share,
        parse_output_url=args.parse_output_url,
        max_file_bytes=args.max_file_bytes,
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
