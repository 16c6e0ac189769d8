"""The scikit-learn, XGBoost and custom-container examples for tests: train them (offline, via
scripts/train_frameworks.py), read their inputs, and predict in-process for comparison."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

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


def rows(data: Path, stem: str) -> list[list[float]]:
    """The batch input rows of an example (iris, cancer, diabetes)."""
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

        booster = xgb.Booster(model_file=str(models / "xgboost_cancer" / "model.bst"))
        return list(booster.predict(xgb.DMatrix(x)).tolist())
    model = json.loads((models / "custom_diabetes" / "model.json").read_text())
    return list(server_module().predict(model, instances))
