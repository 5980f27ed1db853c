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

from bench.console import progress
from bench.report import Row, Section, Table, verdict
from bench.stats import summarize

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

# Each named module imported in turn, each import timed: what a module adds to those before it.
_PROBE = (
    "import sys, time\n"
    "def timed(name):\n"
    "    t = time.perf_counter()\n    __import__(name)\n    return time.perf_counter() - t\n"
    "print(*[timed(name) for name in sys.argv[1:]])\n"
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


def _import_seconds(root: Path, *modules: str) -> list[float]:
    """Seconds each of ``modules`` takes to import, in this order, in one fresh interpreter."""
    result = _python(root, "-c", _PROBE, *modules)
    if result.returncode != 0:
        raise RuntimeError(f"import {modules} failed: {result.stderr.strip()[-400:]}")
    return [float(value) for value in result.stdout.strip().splitlines()[-1].split()]


def _handler_import(root: Path, module: str) -> tuple[float, float]:
    """(import boto3, import of ``module``) in one interpreter: boto3 first, then the module on top of it.
    A handler imports boto3 first thing (through batchdrop_core.runtime), so the two together are its
    whole import, and both are timed under the same load of this machine at that moment."""
    boto3_seconds, extra = _import_seconds(root, BASELINE, module)
    return boto3_seconds, boto3_seconds + extra


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
    modules = [f"{name}.handler" for name in HANDLERS]
    # Per handler: (import boto3, import of the handler) in each of its processes.
    warm: dict[str, list[tuple[float, float]]] = defaultdict(list)
    cold: dict[str, list[tuple[float, float]]] = defaultdict(list)
    first_calls: list[tuple[float, float]] = []  # (import boto3, Extend client after CALLS_EXTEND)
    work = Path(tempfile.mkdtemp(prefix="bench-coldstart-"))
    local, local_source_only = work / "local", work / "local-no-bytecode"
    progress("coldstart: bundling the package for this machine (stacks.packaging.bundle, x86_64)")
    _bundle(local, local=True)
    _bundle(local_source_only, local=True, bytecode=False)
    progress(f"coldstart: {repetitions} interleaved rounds of {len(modules)} handlers, with and without .pyc")
    for _ in range(repetitions):
        for module in modules:
            warm[module].append(_handler_import(local, module))
            cold[module].append(_handler_import(local_source_only, module))
        boto3_seconds, _handler, client = _import_seconds(local, BASELINE, CALLS_EXTEND, EXTEND_CLIENT)
        first_calls.append((boto3_seconds, client))
    target_version = RUNTIME_PYTHON
    for module in modules:
        for label, samples in (
            ("bytecode compiled by the bundler", warm[module]),
            (f"no bytecode: bundled without Python {target_version}", cold[module]),
        ):
            ratio = summarize([handler / boto3 for boto3, handler in samples])
            section.rows.append(
                Row(
                    f"import {module} ({label})",
                    summarize([handler for _boto3, handler in samples]).spread(3, " s"),
                    f"import boto3: {summarize([boto3 for boto3, _handler in samples]).spread(3, ' s')}",
                    ratio.spread(2),
                    f"≤ {TARGET}x",
                    verdict(ratio.median <= TARGET),
                )
            )
    section.rows.append(
        Row(
            f"first call to Extend: the API models and httpx, imported after {CALLS_EXTEND} (bytecode)",
            summarize([client for _boto3, client in first_calls]).spread(3, " s"),
            f"import boto3: {summarize([boto3 for boto3, _client in first_calls]).spread(3, ' s')}",
            summarize([client / boto3 for boto3, client in first_calls]).spread(2),
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
        "Lambda's but the ratios carry over. Each process imports boto3, then the handler, timing each "
        "`__import__`: the handler's import is the two together (it imports boto3 first thing, through "
        "batchdrop_core.runtime, so the work is the same) and its ratio is taken against boto3 in the same "
        f"process, so the load of a shared machine at that moment weighs on both; {repetitions} processes "
        "per handler and package, handlers interleaved. Writing bytecode is forbidden (Lambda's code "
        "directory is read-only). 'Compiled by the bundler': the package as the bundler builds it when an "
        "interpreter of the target version is at hand (unchecked-hash .pyc files); 'no bytecode': the same "
        "package built without, so every module outside the standard library is compiled from source at "
        f"each import. The deployed package built on this run's machine has {pyc} .pyc files. Size: the "
        "deployed package (`stacks.packaging.bundle` for Linux arm64 and the Lambda runtime's Python) "
        "zipped with deflate level 6."
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
        f"load on top, timed after `import {CALLS_EXTEND}` in the same process as its boto3. Intake and "
        "webhook never load it.",
        f"Compiled bytecode needs an interpreter of the runtime's version (Python {RUNTIME_PYTHON}) where "
        "`cdk synth` runs; without one the bundler warns and ships source only, and cold starts pay the "
        "'no bytecode' row.",
    ]
    return section
