"""``make demo``: the whole pipeline on this machine, end to end.

Starts the sandbox (moto server, Extend simulator, the real handlers), uploads realistic sample documents
over five example routes (one per processor type: extract, classify, split, parse, workflow) to the drop
bucket, shows progress and what the pipeline is waiting for until every file is terminal or waiting on a
person's review at Extend (a few claims ask for one; nobody reviews in the demo), and prints a summary. A
slow machine only makes it slower: it gives up (exit 1) only when nothing has moved for
``--stall-timeout`` seconds, and then says what was stuck. Ctrl-C or SIGTERM stops the sandbox in order
and says what was left unfinished (a second Ctrl-C forces exit). ``--keep`` leaves the sandbox running
for the AWS CLI and ``batchdrop``.

The package, by concern: ``options`` (the command line, the routes and settings), ``upload`` (the
uploader), ``observe`` (what the pipeline is doing and waiting for), ``watch`` (progress until done or
stalled), ``summary`` (what is printed at the end) and ``run`` (``main``; ``python -m sandbox.demo``).
"""

from sandbox.demo.observe import UNROUTED, Census, Observer, Pulse, extend_runs, waiting_for
from sandbox.demo.options import (
    DEMO_SETTINGS,
    EXAMPLE_ROUTES,
    STALL_TIMEOUT,
    STALL_TIMEOUT_REAL_EXTEND,
    options_for,
    parse_args,
)
from sandbox.demo.run import main
from sandbox.demo.summary import print_stuck, print_summary, send_logs_to, summarize
from sandbox.demo.upload import Uploader
from sandbox.demo.watch import Outcome, Stall, flush_all_routes, watch

__all__ = [
    "DEMO_SETTINGS",
    "EXAMPLE_ROUTES",
    "STALL_TIMEOUT",
    "STALL_TIMEOUT_REAL_EXTEND",
    "UNROUTED",
    "Census",
    "Observer",
    "Outcome",
    "Pulse",
    "Stall",
    "Uploader",
    "extend_runs",
    "flush_all_routes",
    "main",
    "options_for",
    "parse_args",
    "print_stuck",
    "print_summary",
    "send_logs_to",
    "summarize",
    "waiting_for",
    "watch",
]
