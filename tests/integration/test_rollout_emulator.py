"""Safe rollouts end to end: the CLI's apply against the real emulator, real TF replicas.

v1 serves; v2 (v1's weights, a different artifact) rolls out to 100% step by step; then two
bad versions are rolled back with v2's split restored and nothing of theirs left
deployed: one that disagrees (other weights) and one that errors (it takes another input
shape, so every request it gets fails). A last test SIGKILLs an apply mid-rollout and shows
the next apply re-verifying the rollout and finishing it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.stacks import IMAGE, build_model, run_cli

ROLLOUT = """\
    rollout:
      steps: [10, 50, 100]
      {budget}
      checks:
        smoke: {{file: checks/smoke.jsonl, tolerance: 0.0001}}
        agreement: {{file: checks/instances.jsonl, min_percent: 95}}
        max_error_rate: 0.05
        max_p99_ms: 5000
"""


def write_spec(root: Path, versions: dict[str, Path], serving: str, *, budget: str) -> Path:
    lines = [
        "stack: roll",
        "project: test-project",
        "region: us-central1",
        "target: local",
        "bucket: {name: test-project-roll, create: true}",
        "models:",
        "  - name: mnist",
        f"    container: {IMAGE}",
        "    versions:",
        *(f"      - {{alias: {a}, artifact: {p}}}" for a, p in versions.items()),
        "endpoints:",
        "  - name: ep",
        ROLLOUT.format(budget=budget).rstrip("\n"),
        "    deployments:",
        f"      - {{model: mnist@{serving}, traffic: 100, machine_type: n1-standard-2}}",
    ]
    spec = root / "roll.yaml"
    spec.write_text("\n".join(lines) + "\n")
    return spec


def write_checks(root: Path, model: Path) -> None:
    from tests.support.savedmodels import reference_predict

    rng = np.random.default_rng(7)
    batch = rng.random((6, 28, 28), dtype=np.float32)
    # Rounded so the JSON instance is exactly what the reference saw.
    batch = np.round(batch, 3).astype(np.float32)
    expected = reference_predict(model, {"flatten_input": batch})["output_0"]
    checks = root / "checks"
    checks.mkdir(exist_ok=True)
    (checks / "smoke.jsonl").write_text(
        "".join(
            json.dumps({"instance": row.tolist(), "expected": [float(y) for y in e]}) + "\n"
            for row, e in zip(batch[:3], expected[:3], strict=True)
        )
    )
    (checks / "instances.jsonl").write_text(
        "".join(json.dumps(row.tolist()) + "\n" for row in batch)
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.support.savedmodels import make_mnist_like_model

    root = tmp_path_factory.mktemp("models")
    v1 = build_model(root / "v1", seed=1)
    good = root / "v2"
    shutil.copytree(v1, good)
    (good / "assets").mkdir(exist_ok=True)
    (good / "assets" / "release.txt").write_text("v2: same weights, a new release\n")
    return {
        "v1": v1,
        "v2": good,
        "disagrees": build_model(root / "disagrees", seed=5),
        "errors": make_mnist_like_model(root / "errors", input_shape=(10,), hidden=(8,)),
    }


def endpoint_state(url: str) -> dict[str, int]:
    """model@alias -> traffic percent of what is deployed on the stack's endpoint."""
    from deployer.providers.vertex import connect

    provider = connect("local", "test-project", "us-central1", emulator=url)
    (ep,) = provider.observe("roll", "test-project-roll").endpoints
    traffic = dict(ep.traffic)
    return {d.display_name: traffic.get(d.id, 0) for d in ep.deployments}


def show(title: str, result: Any) -> None:
    """The real output, for the report (pytest -s shows it)."""
    error = getattr(result, "deployer_error", None)
    code = result.exit_code if error is None else error.exit_code
    print(f"\n===== {title} (exit {code})\n{result.stdout}{result.stderr}")
    if error is not None:
        print(error.render())


@pytest.mark.timeout(900)
def test_a_good_version_rolls_out_and_bad_ones_are_rolled_back(
    emulator: Any, tmp_path: Path, models: dict[str, Path]
) -> None:
    write_checks(tmp_path, models["v1"])
    budget = "requests: 20"
    spec = write_spec(tmp_path, {"v1": models["v1"]}, "v1", budget=budget)
    run_cli(["apply", str(spec), "--yes"], emulator.url)
    assert endpoint_state(emulator.url) == {"mnist@v1": 100}

    # A good version: the same answers, a new artifact. 10% -> 50% -> 100%, v1 undeployed.
    versions = {"v1": models["v1"], "v2": models["v2"]}
    spec = write_spec(tmp_path, versions, "v2", budget=budget)
    plan = run_cli(["plan", str(spec)], emulator.url)
    assert "rollout 10% -> 50% -> 100%" in plan.stdout + plan.stderr
    good = run_cli(["apply", str(spec), "--yes"], emulator.url)
    show("good version", good)
    out = good.stdout + good.stderr
    for step in ("step 1/3", "step 2/3", "step 3/3"):
        assert step in out
    assert endpoint_state(emulator.url) == {"mnist@v2": 100}

    # Bad versions: each fails its first step, v2's split is restored, nothing of it stays.
    # Which checks the new version's few answers at 10% fall on is random (the emulator
    # routes by weighted choice): a disagreeing version fails smoke, agreement, or both.
    for alias, reasons in (
        ("disagrees", ("smoke cases gave a wrong answer", "is below 95%")),
        ("errors", ("error rate",)),
    ):
        versions = {"v1": models["v1"], "v2": models["v2"], alias: models[alias]}
        spec = write_spec(tmp_path, versions, alias, budget=budget)
        bad = run_cli(["apply", str(spec), "--yes"], emulator.url, expect=10)
        show(f"bad version: {alias}", bad)
        message = bad.deployer_error.render()
        assert f"rollout of mnist@{alias} on ep: rolled back" in message
        assert any(r in message for r in reasons) and "step 1/3 at 10%: fail" in message
        assert "mnist@v2: " in message  # the report has a line per version
        assert endpoint_state(emulator.url) == {"mnist@v2": 100}


@pytest.mark.timeout(900)
def test_an_apply_killed_mid_rollout_is_re_verified_and_finished_by_the_next(
    emulator: Any, tmp_path: Path, models: dict[str, Path]
) -> None:
    write_checks(tmp_path, models["v1"])
    spec = write_spec(tmp_path, {"v1": models["v1"]}, "v1", budget="wait: 4s")
    run_cli(["apply", str(spec), "--yes"], emulator.url)
    spec = write_spec(tmp_path, {"v1": models["v1"], "v2": models["v2"]}, "v2", budget="wait: 4s")
    env = {**os.environ, "DEPLOYER_EMULATOR": emulator.url, "DEPLOYER_RETRY_SCALE": "0.02"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "deployer", "apply", str(spec), "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 600
    for line in proc.stdout:
        seen.append(line)
        if "step 2/3" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    print("\n===== killed apply\n" + "".join(seen))
    assert any("step 2/3" in line for line in seen), "".join(seen)
    killed_at = endpoint_state(emulator.url)
    assert killed_at == {"mnist@v1": 50, "mnist@v2": 50}  # unverified: the step never ended

    again = run_cli(["apply", str(spec), "--yes"], emulator.url)
    show("apply after the kill", again)
    out = again.stdout + again.stderr
    assert "stale lock" in out and "restoring the verified split mnist@v1 100%" in out
    assert "6 answers of the version being replaced" in out and "step 3/3" in out
    assert endpoint_state(emulator.url) == {"mnist@v2": 100}


@pytest.mark.timeout(900)
def test_hold_keeps_the_new_version_and_deployer_rollback_removes_it(
    emulator: Any, tmp_path: Path, models: dict[str, Path]
) -> None:
    write_checks(tmp_path, models["v1"])
    spec = write_spec(tmp_path, {"v1": models["v1"]}, "v1", budget="requests: 20")
    run_cli(["apply", str(spec), "--yes"], emulator.url)
    versions = {"v1": models["v1"], "disagrees": models["disagrees"]}
    spec = write_spec(tmp_path, versions, "disagrees", budget="requests: 20")
    spec.write_text(
        spec.read_text().replace("max_p99_ms: 5000", "max_p99_ms: 5000\n      on_failure: hold")
    )
    held = run_cli(["apply", str(spec), "--yes"], emulator.url, expect=10)
    show("held", held)
    assert "rollout of mnist@disagrees on ep: held" in held.deployer_error.render()
    # nothing was verified: the split from before, the new version still deployed at 0%
    assert endpoint_state(emulator.url) == {"mnist@v1": 100, "mnist@disagrees": 0}

    back = run_cli(["rollback", str(spec), "--endpoint", "ep"], emulator.url)
    show("rollback", back)
    assert "Restored the verified split of ep: mnist@v1 100%." in back.stdout
    assert "Undeployed mnist@disagrees" in back.stdout
    assert endpoint_state(emulator.url) == {"mnist@v1": 100}


@pytest.mark.timeout(900)
def test_a_slow_canary_made_so_by_the_emulator_is_rolled_back(
    emulator: Any, tmp_path: Path, models: dict[str, Path]
) -> None:
    """The same good artifact, made slow on purpose through /_emulator/misbehave."""
    write_checks(tmp_path, models["v1"])
    spec = write_spec(tmp_path, {"v1": models["v1"]}, "v1", budget="requests: 20")
    run_cli(["apply", str(spec), "--yes"], emulator.url)
    versions = {"v1": models["v1"], "v2": models["v2"]}
    spec = write_spec(tmp_path, versions, "v2", budget="requests: 20")
    spec.write_text(spec.read_text().replace("max_p99_ms: 5000", "max_p99_ms: 250"))
    saved = tmp_path / "plan.json"
    run_cli(["plan", str(spec), "--out", str(saved)], emulator.url)
    (deploy,) = [a for a in json.loads(saved.read_text())["actions"] if a["type"] == "Deploy"]
    payload = deploy["payload"]
    emulator.misbehave(
        endpoint=payload["endpoint_id"], deployed_model_id=payload["deployed_id"], latency_ms=400
    )
    slow = run_cli(["apply", str(spec), "--yes"], emulator.url, expect=10)
    show("bad version: slow", slow)
    message = slow.deployer_error.render()
    assert "rollout of mnist@v2 on ep: rolled back" in message
    assert "is above 250 ms" in message
    assert endpoint_state(emulator.url) == {"mnist@v1": 100}
