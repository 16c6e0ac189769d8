"""`deployer init` on the scikit-learn, XGBoost and PyTorch example models: the starter spec
names the framework's pre-built image, validates, applies on the emulator, serves predictions
equal to the library called in-process, and tears down. (The MNIST SavedModels:
test_init_mnist.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.emulator import EmulatorProcess
from tests.support.frameworks import in_process, require_torch, rows, train_all
from tests.support.stacks import json_out, run_cli


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return train_all(tmp_path_factory.mktemp("init-frameworks"))


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("folder", "stem", "label", "image", "found"),
    [
        ("sklearn_iris", "iris", "scikit-learn", "sklearn-cpu.1-6", "model.joblib"),
        ("xgboost_cancer", "cancer", "XGBoost", "xgboost-cpu.1-7", "model.bst"),
        ("pytorch_wine", "wine", "PyTorch", "pytorch-cpu.2-4", "model.mar"),
    ],
    ids=["sklearn", "xgboost", "pytorch"],
)
def test_init_writes_a_spec_that_validates_applies_and_predicts_as_the_library(
    shared_emulator: EmulatorProcess,
    trained: tuple[Path, Path],
    tmp_path: Path,
    folder: str,
    stem: str,
    label: str,
    image: str,
    found: str,
) -> None:
    if stem == "wine":
        require_torch()
    models, data = trained
    spec = tmp_path / "specs" / f"{stem}.yaml"
    name = f"init-{stem}"

    out = run_cli(
        ["init", str(models / folder), "--out", str(spec), "--name", name], shared_emulator.url
    )

    assert f"Wrote {spec}: {label} model {name!r} (found {found})" in out.stdout
    text = spec.read_text()
    assert f"container: us-docker.pkg.dev/vertex-ai/prediction/{image}:latest" in text
    if stem == "wine":
        assert "handler base_handler" in text and "deployer[pytorch]" in text
    else:
        assert '{"instances": [[<feature>, ...], ...]}' in text
    assert (
        json_out(run_cli(["validate", str(spec), "--output", "json"], shared_emulator.url))["stack"]
        == name
    )
    run_cli(["apply", str(spec), "--yes"], shared_emulator.url)
    try:
        instances = data / f"{stem}_batch.jsonl"
        pred = run_cli(
            [
                "predict",
                str(spec),
                "--endpoint",
                f"{name}-endpoint",
                "--instances",
                str(instances),
                "--output",
                "json",
            ],
            shared_emulator.url,
        )
        assert json_out(pred)["predictions"] == in_process(stem, models, rows(data, stem))
    finally:
        run_cli(["teardown", str(spec), "--yes"], shared_emulator.url)
    status = run_cli(["status", str(spec), "--output", "json"], shared_emulator.url)
    assert not json.loads(status.stdout).get("endpoints")
