"""The scikit-learn, XGBoost, PyTorch and custom-container examples for tests: train them
(offline, via scripts/train_frameworks.py), read their inputs, and predict in-process for
comparison. `no_torch_env` makes torch unimportable in a subprocess (the extra missing)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_all(base: Path) -> tuple[Path, Path]:
    """Train every example under base/models with inputs under base/data; (models, data)."""
    train = _load("train_frameworks", ROOT / "scripts" / "train_frameworks.py")
    train.main(["--models-dir", str(base / "models"), "--data-dir", str(base / "data")])
    return base / "models", base / "data"


def require_torch() -> None:
    """Skip without torch (the `pytorch` extra), except under CI, which must run these tests."""
    if importlib.util.find_spec("torch") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the PyTorch tests: pip install torch==2.13.0")
        pytest.skip("torch is not installed (pip install 'deployer[pytorch]')")


def no_torch_env(base: Path) -> dict[str, str]:
    """Environment for a subprocess in which `import torch` fails as if it were not installed:
    a sitecustomize on PYTHONPATH puts None in sys.modules["torch"] (Python's own way to block
    an import); child processes inherit it."""
    shim = base / "no-torch"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "sitecustomize.py").write_text('import sys\nsys.modules["torch"] = None\n')
    path = os.pathsep.join(p for p in (str(shim), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path}


def rows(data: Path, stem: str) -> list[list[float]]:
    """The batch input rows of an example (iris, cancer, wine, diabetes)."""
    return [json.loads(x) for x in (data / f"{stem}_batch.jsonl").read_text().splitlines()]


def server_module() -> Any:
    """examples/custom-container/server.py, imported (its predict() is the reference)."""
    return _load("custom_example_server", ROOT / "examples" / "custom-container" / "server.py")


def in_process(stem: str, models: Path, instances: list[list[float]]) -> list[Any]:
    """What the library (or the example server) answers for the instances, in this process."""
    x = np.asarray(instances)
    if stem == "iris":
        import joblib

        return list(joblib.load(models / "sklearn_iris" / "model.joblib").predict(x).tolist())
    if stem == "cancer":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(bytearray((models / "xgboost_cancer" / "model.bst").read_bytes()))
        return list(booster.predict(xgb.DMatrix(x)).tolist())
    if stem == "wine":
        import torch

        with zipfile.ZipFile(models / "pytorch_wine" / "model.mar") as mar:
            net = torch.jit.load(io.BytesIO(mar.read("model.pt")))
        with torch.inference_mode():
            return list(net(torch.as_tensor(instances)).tolist())
    model = json.loads((models / "custom_diabetes" / "model.json").read_text())
    return list(server_module().predict(model, instances))
