"""Metric 5, cold start and size: import time of each handler module in a fresh interpreter against
``import boto3`` alone (medians over several interleaved runs), with and without a bytecode cache, what
a function's first call to Extend loads on top, and the zipped size of the deployment package built by
``stacks.packaging.bundle`` (the CDK asset's bundler)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

from bench.common import Row, Section, Table, progress, summarize, verdict

REPO = Path(__file__).resolve().parents[1]
HANDLERS = ("intake", "submitter", "webhook", "results", "reconciler")
BASELINE = "boto3"
TARGET = 1.3
# What a function loads with its first call to Extend (the API models, pydantic, httpx), after its handler.
EXTEND_CLIENT = "batchdrop_core.extend.client"
CALLS_EXTEND = "results.handler"
RUNTIME_PYTHON = "3.14"  # stacks.constants.RUNTIME_PYTHON_VERSION (not imported: it loads aws_cdk); tested
LAMBDA_ZIP_LIMIT_MB = 50  # direct upload limit; 250 MB unzipped
LAMBDA_UNZIPPED_LIMIT_MB = 250

_PROBE = (
    "import sys, time\n"
    "for name in sys.argv[2:]:\n    __import__(name)\n"  # already loaded: not timed
    "t = time.perf_counter()\n__import__(sys.argv[1])\nprint(time.perf_counter() - t)\n"
)


def _environment(root: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BATCHDROP", "AWS_", "POWERTOOLS", "PYTHON"))
    }
    env["PYTHONPATH"] = str(root)
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    # Lambda's code directory is read-only: a package without bytecode is compiled at every cold start.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _python(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """This interpreter with only ``root`` importable (-S: no site-packages, so the package's contents and
    the standard library are all there is)."""
    return subprocess.run(  # noqa: S603 - our own interpreter importing our own modules
        [sys.executable, "-S", *args],
        capture_output=True,
        text=True,
        env=_environment(root),
        cwd=tempfile.gettempdir(),
        check=False,
        timeout=120,
    )


def _import_seconds(module: str, root: Path, after: str | None = None) -> float:
    """Seconds to import ``module`` in a fresh interpreter (after importing ``after``, untimed)."""
    result = _python(root, "-c", _PROBE, module, *([after] if after else []))
    if result.returncode != 0:
        raise RuntimeError(f"import {module} failed: {result.stderr.strip()[-400:]}")
    return float(result.stdout.strip().splitlines()[-1])


def _top_imports(module: str, root: Path) -> list[tuple[str, float]]:
    """Where an import's time goes: -X importtime self time summed by top-level package, largest first."""
    result = _python(root, "-X", "importtime", "-c", f"import {module}")
    totals: dict[str, float] = defaultdict(float)
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        totals[name.split(".")[0]] += int(own) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])


def _bundle(output: Path, *, local: bool = False, bytecode: bool = True) -> None:
    """Build the Lambda asset with the stack's own bundler (a subprocess: it imports aws_cdk). ``local``:
    the same package for this machine's platform and Python, so it can be imported here; ``bytecode``:
    as the bundler builds it when it finds an interpreter of the target version (else without)."""
    target = (
        f"python_version='{sys.version_info.major}.{sys.version_info.minor}', platform='x86_64-manylinux2014'"
        if local
        else "python_version=constants.RUNTIME_PYTHON_VERSION, platform=constants.PIP_PLATFORM"
    )
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from stacks import constants\n"
        "from stacks.packaging import bundle\n"
        f"bundle(Path(sys.argv[1]), {target}, bytecode={bytecode})\n"
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code, str(output)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=900,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bundling failed: {result.stderr.strip()[-600:]}")


def _zip_size(root: Path, archive: Path) -> int:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zipped:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zipped.write(path, path.relative_to(root))
    return archive.stat().st_size


def run(quick: bool) -> Section:
    repetitions = 3 if quick else 7
    section = Section("coldstart", "5. Cold start and package size")
    modules = [BASELINE, *(f"{name}.handler" for name in HANDLERS)]
    warm: dict[str, list[float]] = defaultdict(list)
    cold: dict[str, list[float]] = defaultdict(list)
    work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    local, local_source_only = work / "local", work / "local-no-bytecode"
    progress("coldstart: bundling the package for this machine (stacks.packaging.bundle, x86_64)")
    _bundle(local, local=True)
    _bundle(local_source_only, local=True, bytecode=False)
    progress(f"coldstart: {repetitions} interleaved rounds of {len(modules)} imports, with and without .pyc")
    for _ in range(repetitions):
        for module in modules:
            warm[module].append(_import_seconds(module, local))
            cold[module].append(_import_seconds(module, local_source_only))
        warm[EXTEND_CLIENT].append(_import_seconds(EXTEND_CLIENT, local, after=CALLS_EXTEND))
    base_warm, base_cold = summarize(warm[BASELINE]), summarize(cold[BASELINE])
    target_version = RUNTIME_PYTHON
    for module in modules[1:]:
        w, c = summarize(warm[module]), summarize(cold[module])
        ratio_w = summarize([a / b for a, b in zip(warm[module], warm[BASELINE], strict=True)])
        ratio_c = summarize([a / b for a, b in zip(cold[module], cold[BASELINE], strict=True)])
        section.rows.append(
            Row(
                f"import {module} (bytecode compiled by the bundler)",
                w.spread(3, " s"),
                f"import boto3: {base_warm.spread(3, ' s')}",
                ratio_w.spread(2),
                f"≤ {TARGET}x",
                verdict(ratio_w.median <= TARGET),
            )
        )
        section.rows.append(
            Row(
                f"import {module} (no bytecode: bundled without Python {target_version})",
                c.spread(3, " s"),
                f"import boto3: {base_cold.spread(3, ' s')}",
                ratio_c.spread(2),
                f"≤ {TARGET}x",
                verdict(ratio_c.median <= TARGET),
            )
        )
    first_call = summarize(warm[EXTEND_CLIENT])
    first_call_ratio = summarize([a / b for a, b in zip(warm[EXTEND_CLIENT], warm[BASELINE], strict=True)])
    section.rows.append(
        Row(
            f"first call to Extend: the API models and httpx, imported after {CALLS_EXTEND} (bytecode)",
            first_call.spread(3, " s"),
            f"import boto3: {base_warm.spread(3, ' s')}",
            first_call_ratio.spread(2),
        )
    )
    heavy = {name: _top_imports(name, local) for name in (BASELINE, "intake.handler", "results.handler")}
    pydantic = sum(
        seconds
        for name in heavy
        if name != BASELINE
        for module, seconds in heavy[name]
        if module in ("pydantic", "pydantic_core", "annotated_types", "typing_inspection", "httpx")
    )

    progress("coldstart: bundling the Lambda package (stacks.packaging.bundle)")
    with tempfile.TemporaryDirectory(prefix="bench-bundle-") as tmp:
        root = Path(tmp) / "asset"
        root.mkdir()
        _bundle(root)
        zipped = _zip_size(root, Path(tmp) / "asset.zip")
        unzipped = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        parts: dict[str, int] = defaultdict(int)
        for path in root.rglob("*"):
            if path.is_file():
                parts[path.relative_to(root).parts[0]] += path.stat().st_size
        pyc = sum(1 for _ in root.rglob("*.pyc"))
    shutil.rmtree(work, ignore_errors=True)
    biggest = sorted(parts.items(), key=lambda kv: -kv[1])[:8]
    section.rows += [
        Row(
            "deployment package, zipped (one asset for all 5 functions)",
            f"{zipped / 1e6:.1f} MB",
            f"Lambda limit {LAMBDA_ZIP_LIMIT_MB} MB",
            f"{zipped / 1e6 / LAMBDA_ZIP_LIMIT_MB:.2f}",
            f"≤ {LAMBDA_ZIP_LIMIT_MB} MB",
            verdict(zipped / 1e6 <= LAMBDA_ZIP_LIMIT_MB),
        ),
        Row(
            "deployment package, unzipped",
            f"{unzipped / 1e6:.1f} MB",
            f"Lambda limit {LAMBDA_UNZIPPED_LIMIT_MB} MB",
            f"{unzipped / 1e6 / LAMBDA_UNZIPPED_LIMIT_MB:.2f}",
            f"≤ {LAMBDA_UNZIPPED_LIMIT_MB} MB",
            verdict(unzipped / 1e6 <= LAMBDA_UNZIPPED_LIMIT_MB),
        ),
    ]
    section.tables = [
        Table(
            "Largest parts of the package (unzipped)",
            ["top-level entry", "size"],
            [[name, f"{size / 1e6:.2f} MB"] for name, size in biggest],
        ),
        Table(
            "Where import time goes (one -X importtime run, self time by top-level package, with bytecode)",
            ["module", "imports"],
            [[name, ", ".join(f"{m} {s * 1000:.0f} ms" for m, s in top[:6])] for name, top in heavy.items()],
        ),
    ]
    section.setup = (
        f"Each import in a fresh `python -S` process (Python {sys.version.split()[0]}; no site-packages, so "
        "only the deployment package is importable), from the package `stacks.packaging.bundle` builds, "
        f"built for this machine (x86_64, this Python) because the deployed one (arm64, Python "
        f"{RUNTIME_PYTHON}) cannot run here: same locked wheels, same code, so absolute times differ from "
        f"Lambda's but the ratios carry over. Timed inside the process around `__import__`; {repetitions} "
        "rounds, modules interleaved within each round, ratios taken per round against `import boto3` of the "
        "same round, from the same package. Writing bytecode is forbidden (Lambda's code directory is "
        "read-only). 'Compiled by the bundler': the package as the bundler builds it when an interpreter of "
        "the target version is at hand (unchecked-hash .pyc files); 'no bytecode': the same package built "
        "without, so every module outside the standard library is compiled from source at each import. "
        f"The deployed package built on this run's machine has {pyc} .pyc files. Size: the deployed package "
        "(`stacks.packaging.bundle` for Linux arm64 and the Lambda runtime's Python) zipped with deflate "
        "level 6."
    )
    section.notes = [
        "What changed after the first measurement (2.9x with bytecode, 1.8x without): the Powertools "
        "`Tracer` is gone (it imported and patched the X-Ray SDK, ~140 ms, and no handler used it; Lambda's "
        "active tracing still records every invocation); the bundler compiles the package to bytecode when "
        "it finds the target Python. After the second (1.8x either way): the functions read their settings "
        "with plain dataclasses (`batchdrop_core.runconfig`) from the complete JSON that `cdk synth` writes "
        "after validating it with the pydantic model, so no handler imports pydantic; the queue consumers "
        "report partial batch failures themselves (`batchdrop_core.sqsbatch`) instead of through Powertools' "
        "batch processors, and the webhook answers API Gateway's proxy event itself instead of through its "
        "resolver, which takes asyncio and every Powertools event data class off every cold start; and the "
        "Extend API models load with the Extend client, at a function's first call to Extend.",
        "Every handler imports boto3 (through batchdrop_core.runtime), so boto3 alone is a floor no handler "
        "can go under; what remains above it is Powertools' Logger and Metrics (with typing_extensions and "
        "jmespath helpers) and batchdrop_core itself. pydantic and httpx in the two handler profiles above: "
        f"{pydantic * 1000:.0f} ms (`tests/unit/test_cold_start_imports.py` keeps them, asyncio and "
        "Powertools' batch, event data class and router modules out of every handler's import).",
        f"The 'first call to Extend' row is not part of any handler's import: it is what the submitter (with "
        f"the first batch it submits; most flush requests find none due), the reconciler (with the first "
        f"batch it polls; sweeps never call Extend) and the results function (with its first collection: "
        f"every collection calls Extend, so there the cost moves from the import to the first invocation) "
        f"load on top, timed after `import {CALLS_EXTEND}` in the same process. Intake and webhook never "
        "load it.",
        f"Compiled bytecode needs an interpreter of the runtime's version (Python {RUNTIME_PYTHON}) where "
        "`cdk synth` runs; without one the bundler warns and ships source only, and cold starts pay the "
        "'no bytecode' row.",
    ]
    return section
