"""`deployer apply / predict / batch-predict / teardown` with the scikit-learn, XGBoost, PyTorch
and custom-container example specs (copied beside models trained here): served predictions
equal the library (or the example server) called in-process, online and batch, jsonl and csv.
Without the PyTorch extra, `deployer apply` fails saying how to install it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.containers import example_image
from tests.support.emulator import EmulatorProcess
from tests.support.frameworks import (
    ROOT,
    in_process,
    no_torch_env,
    require_torch,
    rows,
    train_all,
)
from tests.support.stacks import json_out, run_cli


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("config", "endpoint", "stem", "jobs"),
    [
        ("sklearn.yaml", "iris-endpoint", "iris", ("iris-batch", "iris-batch-csv")),
        ("xgboost.yaml", "cancer-endpoint", "cancer", ("cancer-batch",)),
        ("pytorch.yaml", "wine-endpoint", "wine", ("wine-batch",)),
        ("custom-container.yaml", "diabetes-endpoint", "diabetes", ("diabetes-batch",)),
    ],
)
def test_example_spec_end_to_end(
    shared_emulator: EmulatorProcess,
    tmp_path: Path,
    config: str,
    endpoint: str,
    stem: str,
    jobs: tuple[str, ...],
) -> None:
    if stem == "diabetes":
        example_image()
    if stem == "wine":
        require_torch()
    (tmp_path / "configs").mkdir()
    spec = tmp_path / "configs" / config
    shutil.copy(ROOT / "configs" / config, spec)
    models, data = train_all(tmp_path)
    want = in_process(stem, models, rows(data, stem))

    run_cli(["apply", str(spec), "--yes"], shared_emulator.url)
    try:
        out = run_cli(
            [
                "predict",
                str(spec),
                "--endpoint",
                endpoint,
                "--instances",
                str(data / f"{stem}_batch.jsonl"),
                "--output",
                "json",
            ],
            shared_emulator.url,
        )
        assert json_out(out)["predictions"] == want
        for job in jobs:
            result = tmp_path / f"{job}.jsonl"
            run_cli(
                ["batch-predict", str(spec), "--job", job, "--output", str(result)],
                shared_emulator.url,
            )
            lines = [json.loads(x) for x in result.read_text().splitlines()]
            assert lines == want, job  # one prediction per input row, in order
    finally:
        run_cli(["teardown", str(spec), "--yes"], shared_emulator.url)


@pytest.mark.timeout(300)
def test_apply_without_the_pytorch_extra_fails_saying_how_to_install_it(tmp_path: Path) -> None:
    require_torch()  # to train the archive; the emulator and the CLI then run without torch
    (tmp_path / "configs").mkdir()
    spec = tmp_path / "configs" / "pytorch.yaml"
    shutil.copy(ROOT / "configs" / "pytorch.yaml", spec)
    train_all(tmp_path)
    env = no_torch_env(tmp_path)
    with EmulatorProcess(env=env) as emulator:
        cli_env = {**os.environ, **env, "DEPLOYER_EMULATOR": emulator.url}
        apply = subprocess.run(
            [sys.executable, "-m", "deployer", "apply", str(spec), "--yes"],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=240,
        )
        try:
            output = apply.stdout + apply.stderr
            assert apply.returncode != 0, output
            assert "pip install 'deployer[pytorch]'" in output, output
            assert "Traceback" not in output
        finally:
            run_cli(["teardown", str(spec), "--yes"], emulator.url)
