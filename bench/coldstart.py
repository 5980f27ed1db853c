"""Metric 5, cold start and size: import time of each handler module in a fresh interpreter against
``import boto3`` alone (medians over several interleaved runs), with and without a bytecode cache, and
the zipped size of the deployment package built by ``stacks.packaging.bundle`` (the CDK asset's bundler)."""

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
TARGET = 1.5
LAMBDA_ZIP_LIMIT_MB = 50  # direct upload limit; 250 MB unzipped
LAMBDA_UNZIPPED_LIMIT_MB = 250

_PROBE = (
    "import sys, time\nt = time.perf_counter()\n__import__(sys.argv[1])\nprint(time.perf_counter() - t)\n"
)


def _environment(pycache: str | None, root: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BATCHDROP", "AWS_", "POWERTOOLS", "PYTHON"))
    }
    env["PYTHONPATH"] = str(root)
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    if pycache is not None:
        # An empty cache directory that is never written: every module is compiled from source, as on
        # Lambda, where the bundle ships no __pycache__.
        env["PYTHONPYCACHEPREFIX"] = pycache
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _import_seconds(module: str, pycache: str | None, root: Path) -> float:
    # -S: no site-packages, so only the package's contents (and the standard library) can be imported.
    result = subprocess.run(  # noqa: S603 - our own interpreter importing our own modules
        [sys.executable, "-S", "-c", _PROBE, module],
        capture_output=True,
        text=True,
        env=_environment(pycache, root),
        cwd=tempfile.gettempdir(),
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"import {module} failed: {result.stderr.strip()[-400:]}")
    return float(result.stdout.strip().splitlines()[-1])


def _top_imports(module: str, root: Path, count: int = 6) -> list[tuple[str, float]]:
    """Where an import's time goes: -X importtime self time summed by top-level package."""
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-S", "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=_environment(None, root),
        cwd=tempfile.gettempdir(),
        check=False,
        timeout=120,
    )
    totals: dict[str, float] = defaultdict(float)
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        totals[name.split(".")[0]] += int(own) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:count]


def _bundle(output: Path, *, local: bool = False) -> None:
    """Build the Lambda asset with the stack's own bundler (a subprocess: it imports aws_cdk). ``local``:
    the same package for this machine's platform and Python, so it can be imported here."""
    target = (
        f"python_version='{sys.version_info.major}.{sys.version_info.minor}', platform='x86_64-manylinux2014'"
        if local
        else "python_version=constants.RUNTIME.name.removeprefix('python'), platform=constants.PIP_PLATFORM"
    )
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from stacks import constants\n"
        "from stacks.packaging import bundle\n"
        f"bundle(Path(sys.argv[1]), {target})\n"
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
    local = work / "local"
    progress("coldstart: bundling the package for this machine (stacks.packaging.bundle, x86_64)")
    _bundle(local, local=True)
    progress(f"coldstart: {repetitions} interleaved rounds of {len(modules)} imports, with and without .pyc")
    for module in modules:  # compile once so the cached runs read bytecode
        _import_seconds(module, None, local)
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as empty:
        for _ in range(repetitions):
            for module in modules:
                warm[module].append(_import_seconds(module, None, local))
                cold[module].append(_import_seconds(module, empty, local))
    base_warm, base_cold = summarize(warm[BASELINE]), summarize(cold[BASELINE])
    for module in modules[1:]:
        w, c = summarize(warm[module]), summarize(cold[module])
        ratio_w = summarize([a / b for a, b in zip(warm[module], warm[BASELINE], strict=True)])
        ratio_c = summarize([a / b for a, b in zip(cold[module], cold[BASELINE], strict=True)])
        section.rows.append(
            Row(
                f"import {module} (bytecode cached)",
                w.spread(3, " s"),
                f"import boto3: {base_warm.spread(3, ' s')}",
                ratio_w.spread(2),
                f"≤ {TARGET}x",
                verdict(ratio_w.median <= TARGET),
            )
        )
        section.rows.append(
            Row(
                f"import {module} (no bytecode, as shipped)",
                c.spread(3, " s"),
                f"import boto3: {base_cold.spread(3, ' s')}",
                ratio_c.spread(2),
                f"≤ {TARGET}x",
                verdict(ratio_c.median <= TARGET),
            )
        )
    heavy = {name: _top_imports(name, local) for name in (BASELINE, "intake.handler", "results.handler")}

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
            "Where import time goes (one -X importtime run, self time by top-level package, bytecode cached)",
            ["module", "imports"],
            [[name, ", ".join(f"{m} {s * 1000:.0f} ms" for m, s in top)] for name, top in heavy.items()],
        ),
    ]
    section.setup = (
        f"Each import in a fresh `python -S` process (Python {sys.version.split()[0]}; no site-packages, so "
        "only the deployment package is importable), from the package `stacks.packaging.bundle` builds, "
        "built for this machine (x86_64, this Python) because the deployed one (arm64, Python 3.14) cannot "
        "run here: same locked wheels, same code, so absolute times differ from Lambda's but the ratios "
        f"carry over. Timed inside the process around `__import__`; {repetitions} rounds, modules "
        "interleaved within each round, ratios taken per round against `import boto3` of the same round. "
        "'No bytecode' points PYTHONPYCACHEPREFIX at an empty directory and forbids writing, so everything "
        "(boto3 included) is compiled from source, as with the shipped package, which has "
        f"{pyc} .pyc files. Size: the deployed package (`stacks.packaging.bundle` for Linux arm64 and the "
        "Lambda runtime's Python) zipped with deflate level 6."
    )
    xray = max((s for _, top in heavy.items() for m, s in top if m == "aws_xray_sdk"), default=0.0)
    section.notes = [
        f"aws_xray_sdk alone costs each handler about {xray * 1000:.0f} ms of import (self time above): "
        "`batchdrop_core.observability` creates a Powertools `Tracer` at import, which imports and patches "
        "the X-Ray SDK, yet no handler uses the tracer (no `capture_*` decorator). Dropping it, or creating "
        "it lazily, is the largest single saving (production change, not made here); pydantic model "
        "building (settings, Extend models) and Powertools are the rest of what batchdrop adds to boto3.",
        "Every handler imports boto3 (through batchdrop_core.runtime) plus Powertools, pydantic (the "
        "settings "
        "and Extend models) and httpx, so boto3 alone is a floor that no handler can go under; the ratio "
        "shows what batchdrop adds on top.",
        "The bundle ships no bytecode, so each cold start compiles every imported module; compiling at "
        "bundle time for the target interpreter (Python 3.14, e.g. by running compileall in the Lambda "
        "build image, or `uv pip install --compile-bytecode` with a matching interpreter) would bring cold "
        "imports down to the 'bytecode cached' row. That is a packaging change (stacks/packaging.py), not "
        "made here.",
    ]
    return section
