"""``python -m bench [--quick] [--only NAME ...] [--output PATH]``: run the benchmarks, write the doc."""

from __future__ import annotations

import argparse
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.console import SINK, capture_handler_output, progress
from bench.report import Row, Section
from sandbox import interrupt
from sandbox.interrupt import Interrupted
from sandbox.machine import machine

METRICS = (
    "efficiency",
    "intake",
    "collection",
    "latency",
    "coldstart",
    "throughput",
    "cost",
    "backfill",
    "demo",
)
# Metrics 1, 6 and 7 come from one pipeline run (and metric 4 takes its "under load" figure from it).
RUN_BY = {"throughput": "efficiency", "cost": "efficiency"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced sizes (~2-4 min), for smoke checks")
    parser.add_argument("--only", nargs="+", choices=METRICS, help="run only these metrics")
    parser.add_argument(
        "--files", type=int, help="files in the pipeline run of metrics 1, 6 and 7 (default 10000; quick 300)"
    )
    parser.add_argument("--output", type=Path, default=report.DOC, help="where to write the report")
    return parser.parse_args(argv)


def _failed(name: str, title: str, error: BaseException) -> Section:
    section = Section(name, title)
    section.rows = [Row("benchmark failed", f"{type(error).__name__}: {str(error)[:300]}")]
    section.notes = ["The traceback was printed on the console of the run."]
    return section


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt.install(announce=True)  # Ctrl-C, SIGTERM: the metric's sandbox stops in order (finally blocks)
    try:
        return _run(args)
    except Interrupted as stop:
        progress(interrupt.summary())
        return interrupt.finish(stop.exit_code)


def _run(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    selected = args.only or list(METRICS)
    selected += [RUN_BY[m] for m in selected if m in RUN_BY and RUN_BY[m] not in selected]
    started_at = report.now()
    started = time.perf_counter()
    info = machine()
    capture_handler_output()
    progress(f"benchmarks ({'quick' if args.quick else 'full'}): {', '.join(selected)}")

    sections: dict[str, Section] = {}
    shared: dict[str, Any] = {}

    def write(final: bool) -> Path:
        ordered = [sections[name] for name in METRICS if name in sections]
        summary = _summary(ordered)
        if not final:
            missing = [name for name in selected if name not in sections]
            summary.insert(
                0, f"**Run in progress or interrupted: not yet measured: {', '.join(missing)}.**\n"
            )
        if SINK.error_count:
            summary.append(
                f"- The handlers logged {SINK.error_count} ERROR lines during the run (first: "
                f"`{SINK.errors[0][:200]}`)."
            )
        return report.write(
            ordered,
            quick=args.quick,
            started=started_at,
            seconds=time.perf_counter() - started,
            info=info,
            summary=summary,
            path=args.output,
        )

    def attempt(name: str, title: str, function: Callable[[], Section]) -> None:
        began = time.perf_counter()
        try:
            section = function()
        except Interrupted:
            # The metric's own finally blocks have stopped its sandbox by now.
            done = [n for n in selected if n in sections]
            missing = ", ".join(n for n in selected if n not in sections)
            text = f"{name} interrupted; measured: {', '.join(done) or 'nothing'}; not measured: {missing}"
            if done:
                text += f"; the figures so far are in {args.output}"
            interrupt.note(text, first=True)
            raise
        except Exception as exc:  # noqa: BLE001 - one failed metric must not lose the others' figures
            traceback.print_exc(file=sys.__stderr__)
            section = _failed(name, title, exc)
        section.seconds = time.perf_counter() - began
        sections[name] = section
        progress(f"{name}: done in {section.seconds:.0f}s")
        write(final=False)

    if "demo" in selected:  # first: a user runs it on a machine that is doing nothing else
        from bench import demo

        attempt("demo", "9. The demo", lambda: demo.run(args.quick))
    if "intake" in selected:
        from bench import intake_cost

        attempt("intake", "2. Intake cost", lambda: intake_cost.run(args.quick))
    if "collection" in selected:
        from bench import collection

        attempt("collection", "3. Results collection", lambda: collection.run(args.quick))
    if "latency" in selected:
        from bench import latency

        attempt("latency", "4. Drop-to-submit latency", lambda: latency.run(args.quick, shared))
    if "coldstart" in selected:
        from bench import coldstart

        attempt("coldstart", "5. Cold start and package size", lambda: coldstart.run(args.quick))
    if "efficiency" in selected:
        from bench import efficiency

        def run_efficiency() -> Section:
            section, results = efficiency.run(args.quick, args.files)
            shared["latency_under_load"] = results["latency"]
            shared["efficiency"] = results["efficiency"]
            shared["throughput"] = results["run"]
            return section

        attempt("efficiency", "1. Batch efficiency", run_efficiency)
        if "throughput" in shared:
            from bench import throughput

            attempt(
                "throughput",
                "6. End-to-end sandbox throughput",
                lambda: throughput.section(shared["throughput"]),
            )
    if "cost" in selected:
        from bench import cost

        attempt("cost", "7. Cost model", lambda: cost.run(shared, sections))
    if "backfill" in selected:
        from bench import backfill

        attempt("backfill", "8. Backfill at Extend's limits", lambda: backfill.run(args.quick))

    path = write(final=True)
    seconds = time.perf_counter() - started
    progress(f"wrote {path} in {seconds / 60:.1f} min")
    return 0


def _summary(sections: list[Section]) -> list[str]:
    lines = ["| metric | target | met? | measured |", "|---|---|---|---|"]
    for section in sections:
        for row in section.rows:
            if row.met in ("yes", "**no**"):
                lines.append(f"| {section.title} — {row.figure} | {row.target} | {row.met} | {row.value} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
