"""Benchmark 2: no-op apply and plan on an applied stack; `deployer --help` start-up.

Owns: a spec with N endpoints and N model versions (N = 10; 3 with --quick), each endpoint
deploying one version, applied once against a private emulator; then, as subprocesses the way
a user or CI runs them, `deployer apply SPEC --yes` and `deployer plan SPEC`, timed, with the
API calls they make counted from the emulator's request log (all, and mutating ones). Also the
wall time of `deployer --help` and whether `python -X importtime -m deployer --help` imports
TensorFlow or google.cloud.aiplatform.

Models: tiny SavedModels from tests/support/savedmodels.py (an MLP 784-16-10, a different seed
per version, so every version has its own artifact hash). Each deployment is a replica process
that imports TensorFlow (~600 MB resident each, whatever the model size): 10 endpoints need
~6 GB; the replicas are idle while apply/plan are timed and stop with the emulator.

Must not: leave the emulator or its replicas running (stopped in `finally`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REPO_ROOT,
    BenchResult,
    Emulator,
    Skip,
    bench_env,
    fmt_num,
    spread_text,
    summarize,
)

TITLE = "2. No-op apply"
IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"
HEAVY_MODULES = ("tensorflow", "google.cloud.aiplatform")


def deployer_cmd() -> list[str]:
    script = Path(sys.executable).parent / "deployer"
    return [str(script)] if script.exists() else [sys.executable, "-m", "deployer"]


def make_models(root: Path, n: int) -> list[Path]:
    sys.path.insert(0, str(REPO_ROOT))
    try:
        from tests.support.savedmodels import make_mnist_like_model
    except ImportError as exc:
        raise Skip(f"tests/support/savedmodels.py is not importable ({exc})") from exc
    return [make_mnist_like_model(root / f"m{i:02d}", hidden=(16,), seed=i) for i in range(n)]


def write_spec(path: Path, models: list[Path]) -> Path:
    lines = [
        "stack: bench-noop",
        "project: bench-project",
        "region: us-central1",
        "target: local",
        "bucket: {name: bench-noop-artifacts, create: true}",
        "models:",
    ]
    for i, m in enumerate(models):
        lines += [
            f"  - name: model-{i:02d}",
            f"    container: {IMAGE}",
            "    versions:",
            f"      - {{alias: v1, artifact: {m}}}",
        ]
    lines.append("endpoints:")
    for i in range(len(models)):
        lines += [
            f"  - name: endpoint-{i:02d}",
            "    deployments:",
            (
                f"      - {{model: model-{i:02d}@v1, traffic: 100, machine_type: n1-standard-2, "
                "min_replicas: 1, max_replicas: 1}"
            ),
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(
    cmd: list[str], env: dict[str, str], *, timeout: float = 600
) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, check=False
    )
    return time.perf_counter() - t0, proc


def heavy_imports(env: dict[str, str]) -> list[str]:
    """Heavy modules `deployer --help` imports (from -X importtime's stderr)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "deployer", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = set()
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        name = line.rsplit("|", 1)[-1].strip()
        for heavy in HEAVY_MODULES:
            if name == heavy or name.startswith(heavy + "."):
                found.add(heavy)
    return sorted(found)


def run(ctx: Any) -> BenchResult:
    res = BenchResult(name="noop-apply", title=TITLE)
    n = 3 if ctx.quick else 10
    repeat = ctx.repeats(full=5, quick=2)
    env = bench_env()

    # ---- deployer --help: start-up cost, no heavy imports
    bare = summarize([timed([sys.executable, "-c", "pass"], env)[0] for _ in range(repeat + 2)])
    helps = []
    for _ in range(repeat + 2):
        dt, proc = timed([*deployer_cmd(), "--help"], env)
        if proc.returncode != 0:
            raise Skip(f"`deployer --help` failed: {proc.stderr[-300:]}")
        helps.append(dt)
    help_s = summarize(helps)
    heavy = heavy_imports(env)
    res.add(
        "`deployer --help` wall",
        help_s.median,
        "s",
        spread=spread_text(help_s, unit="s")
        + f"; bare interpreter {fmt_num(bare.median * 1e3)} ms",
        target="< 0.3 s, no TF/aiplatform",
        met=help_s.median < 0.3 and not heavy,
    )
    res.notes.append(
        "`deployer --help` imports: "
        + (", ".join(heavy) if heavy else "neither tensorflow nor google.cloud.aiplatform")
    )

    try:
        measure_stack(res, ctx, n=n, repeat=repeat, bare_s=bare.median)
    except Skip as exc:
        res.notes.append(f"no-op apply/plan not measured: {exc}")
    return res


def measure_stack(res: BenchResult, ctx: Any, *, n: int, repeat: int, bare_s: float) -> None:
    try:
        import deployer.cli.stack  # noqa: F401 - apply/plan live there
    except ImportError as exc:
        raise Skip(f"deployer.cli.stack is not importable ({exc})") from exc
    work = ctx.workdir / "noop"
    work.mkdir()
    models = make_models(work / "models", n)
    spec = write_spec(work / "stack.yaml", models)
    emu = Emulator(work).start()
    try:
        env = emu.client_env()
        t_first, proc = timed([*deployer_cmd(), "apply", str(spec), "--yes"], env, timeout=900)
        if proc.returncode != 0:
            raise Skip(
                f"first apply failed (exit {proc.returncode}): "
                f"{(proc.stderr or proc.stdout)[-400:]}"
            )
        res.notes.append(
            f"Stack: {n} endpoints x 1 deployment, {n} model versions; first apply "
            f"took {t_first:.1f} s (uploads, registrations, {n} replica starts)."
        )
        for label, args, call_limit in (
            ("apply --yes", ["apply", str(spec), "--yes"], 15),
            ("plan", ["plan", str(spec)], 15),
        ):
            walls, calls, mutating = [], [], []
            for _ in range(repeat):
                offset = emu.log_offset()
                dt, proc = timed([*deployer_cmd(), *args], env)
                if proc.returncode not in (0, 2):  # plan --detailed-exitcode would say 2
                    raise Skip(f"`deployer {label}` failed: {(proc.stderr or proc.stdout)[-300:]}")
                log = emu.calls_since(offset)
                walls.append(dt)
                calls.append(len(log))
                mutating.append(sum(1 for e in log if e.get("mutating")))
                if (
                    label.startswith("apply")
                    and "no changes" not in (proc.stdout + proc.stderr).lower()
                ):
                    res.notes.append(
                        f"no-op apply output did not say 'no changes': {proc.stdout[-200:]!r}"
                    )
            w = summarize(walls)
            after_start = w.median - bare_s
            res.add(
                f"no-op `deployer {label}` wall",
                w.median,
                "s",
                spread=spread_text(w, unit="s")
                + f"; {fmt_num(after_start)} s after interpreter start",
                target="< 2 s",
                met=after_start < 2.0,
            )
            res.add(
                f"no-op `deployer {label}` API calls",
                max(calls),
                "calls",
                spread=f"{max(mutating)} mutating"
                + (f"; runs saw {sorted(set(calls))}" if len(set(calls)) > 1 else ""),
                target=f"<= {call_limit}, 0 mutating",
                met=max(calls) <= call_limit and max(mutating) == 0,
            )
            by_api: dict[str, int] = {}
            for e in log:
                by_api[e.get("api", e.get("path", "?"))] = (
                    by_api.get(e.get("api", e.get("path", "?")), 0) + 1
                )
            res.notes.append(
                f"`deployer {label}` calls (last run): "
                + ", ".join(f"{k} x{v}" for k, v in sorted(by_api.items()))
            )
    finally:
        emu.stop()
