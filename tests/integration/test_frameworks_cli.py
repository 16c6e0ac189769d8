"""`deployer apply / predict / batch-predict / teardown` with the scikit-learn, XGBoost and
custom-container example specs (copied beside models trained here): served predictions equal
the library (or the example server) called in-process, online and batch, jsonl and csv."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.containers import example_image
from tests.support.emulator import EmulatorProcess
from tests.support.frameworks import ROOT, in_process, rows, train_all
from tests.support.stacks import json_out, run_cli


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("config", "endpoint", "stem", "jobs"),
    [
        ("sklearn.yaml", "iris-endpoint", "iris", ("iris-batch", "iris-batch-csv")),
        ("xgboost.yaml", "cancer-endpoint", "cancer", ("cancer-batch",)),
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
