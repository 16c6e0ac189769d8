"""Train the scikit-learn, XGBoost and PyTorch example models and write their inputs, offline.

Owns (under `models/` and `data/`, ignored by git; `--models-dir`/`--data-dir` move them):
- `models/sklearn_iris/model.joblib`: StandardScaler + LogisticRegression on scikit-learn's
  bundled iris data (instances: 4 floats, sepal/petal length/width in cm; prediction: the
  class 0 setosa, 1 versicolor, 2 virginica). What `sklearn-cpu.*` images load.
- `models/xgboost_cancer/model.bst`: an XGBoost Booster (binary:logistic, 20 rounds) in
  XGBoost's JSON model format, on the bundled breast-cancer data (instances: 30 floats;
  prediction: P(benign)). What `xgboost-cpu.*` images load.
- `data/iris_instances.json`, `data/cancer_instances.json`: `{"instances": [...]}` bodies for
  `deployer predict --instances`; `data/iris_batch.jsonl|.csv`, `data/cancer_batch.jsonl|.csv`:
  batch inputs (the held-out rows); `data/iris_batch_labels.json`, `data/cancer_batch_labels.json`.
- `models/pytorch_wine/model.mar`, when torch is importable (`pip install 'deployer[pytorch]'`):
  a TorchServe model archive (the layout torch-model-archiver writes, packed here with
  zipfile) holding a TorchScript MLP (standardisation inside, softmax out) trained on the
  bundled wine data (instances: 13 floats; prediction: the 3 class probabilities), served
  by TorchServe's base_handler. What `pytorch-*` images load. `data/wine_*` inputs as above.
- `models/custom_diabetes/model.json`: a LinearRegression on the bundled diabetes data as JSON
  (`coef`, `intercept`), what examples/custom-container/server.py serves (instances: 10
  floats; prediction: disease progression); `data/diabetes_*` inputs as above.
Deterministic (fixed split, single thread): a re-run writes byte-identical files, and skips
the training when the model files exist.

Must not: touch the network (the datasets ship inside scikit-learn).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SEED = 0


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _split(x: np.ndarray, y: np.ndarray, test: int) -> tuple[Any, Any, Any, Any]:
    order = np.random.default_rng(SEED).permutation(len(x))
    train, held = order[test:], order[:test]
    return x[train], y[train], x[held], y[held]


def _write_inputs(data_dir: Path, stem: str, names: list[str], x: Any, y: Any) -> None:
    rows = [[float(v) for v in row] for row in x]
    _write(data_dir / f"{stem}_instances.json", json.dumps({"instances": rows[:5]}).encode())
    _write(data_dir / f"{stem}_batch.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows(rows)
    _write(data_dir / f"{stem}_batch.csv", out.getvalue().encode())
    _write(data_dir / f"{stem}_batch_labels.json", json.dumps([int(v) for v in y]).encode())


def train_sklearn(model_dir: Path, data_dir: Path) -> float:
    """Iris classifier -> model_dir/model.joblib; returns held-out accuracy."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    iris = load_iris()
    x_train, y_train, x_test, y_test = _split(iris.data, iris.target, 30)
    _write_inputs(data_dir, "iris", [str(n) for n in iris.feature_names], x_test, y_test)
    path = model_dir / "model.joblib"
    if path.is_file():
        model = joblib.load(path)
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(x_train, y_train)
        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, path)
    return float((model.predict(x_test) == y_test).mean())


def train_xgboost(model_dir: Path, data_dir: Path) -> float:
    """Breast-cancer Booster -> model_dir/model.bst; returns held-out accuracy at 0.5."""
    import xgboost as xgb
    from sklearn.datasets import load_breast_cancer

    cancer = load_breast_cancer()
    x_train, y_train, x_test, y_test = _split(cancer.data, cancer.target, 69)
    _write_inputs(data_dir, "cancer", [str(n) for n in cancer.feature_names], x_test, y_test)
    path = model_dir / "model.bst"
    if path.is_file():
        booster = xgb.Booster()
        booster.load_model(bytearray(path.read_bytes()))  # by content: no extension guess
    else:
        params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": SEED}
        booster = xgb.train(params, xgb.DMatrix(x_train, label=y_train), num_boost_round=20)
        model_dir.mkdir(parents=True, exist_ok=True)
        # XGBoost's JSON model format under the name the pre-built image loads: every
        # xgboost-cpu image from 1-1 on reads it (by content, whatever the file is called).
        _write(path, bytes(booster.save_raw(raw_format="json")))
    return float(((booster.predict(xgb.DMatrix(x_test)) > 0.5) == y_test).mean())


MAR_DATE = (2026, 1, 1, 0, 0, 0)  # fixed member times: a re-packed archive is byte-identical


def pack_mar(path: Path, files: dict[str, bytes], *, handler: str = "base_handler") -> None:
    """A TorchServe model archive at `path`: MAR-INF/MANIFEST.json + the files, as
    torch-model-archiver lays them out (model name "model", the name Vertex's image loads).
    The first file is the serializedFile; a "model.py" among them is the modelFile."""
    import zipfile

    serialized = next(iter(files))
    model: dict[str, str] = {"modelName": "model", "serializedFile": serialized}
    if handler:
        model["handler"] = handler
    if "model.py" in files:
        model["modelFile"] = "model.py"
    model["modelVersion"] = "1.0"
    manifest = {"runtime": "python", "model": model, "archiverVersion": "0.12.0"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as mar:
        entries = {"MAR-INF/MANIFEST.json": json.dumps(manifest, indent=2).encode(), **files}
        for name, data in entries.items():
            mar.writestr(zipfile.ZipInfo(name, MAR_DATE), data, zipfile.ZIP_DEFLATED)
    _write(path, out.getvalue())


def train_pytorch(model_dir: Path, data_dir: Path) -> float | None:
    """Wine MLP -> model_dir/model.mar; held-out accuracy, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    from sklearn.datasets import load_wine

    wine = load_wine()
    x_train, y_train, x_test, y_test = _split(wine.data, wine.target, 36)
    _write_inputs(data_dir, "wine", [str(n) for n in wine.feature_names], x_test, y_test)
    path = model_dir / "model.mar"
    torch.set_num_threads(1)
    if not path.is_file():
        torch.manual_seed(SEED)
        mean = torch.tensor(x_train.mean(axis=0), dtype=torch.float32)
        std = torch.tensor(x_train.std(axis=0), dtype=torch.float32)
        net = _wine_net(torch)(mean, std)
        xt = torch.tensor(x_train, dtype=torch.float32)
        yt = torch.tensor(y_train, dtype=torch.long)
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(300):
            opt.zero_grad()
            loss = torch.nn.functional.nll_loss(torch.log(net(xt) + 1e-9), yt)
            loss.backward()
            opt.step()
        net.eval()
        buf = io.BytesIO()
        torch.jit.save(torch.jit.script(net), buf)
        pack_mar(path, {"model.pt": buf.getvalue()})
    probs = _mar_model(path)(torch.tensor(x_test, dtype=torch.float32))
    return float((probs.argmax(dim=1).numpy() == y_test).mean())


def _wine_net(torch: Any) -> Any:
    class WineNet(torch.nn.Module):  # type: ignore[name-defined,misc]
        """Standardise, two layers, softmax: 13 wine features -> 3 class probabilities."""

        def __init__(self, mean: Any, std: Any) -> None:
            super().__init__()
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)
            self.hidden = torch.nn.Linear(13, 16)
            self.out = torch.nn.Linear(16, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[name-defined]
            x = (x.to(torch.float32) - self.mean) / self.std
            return torch.softmax(self.out(torch.relu(self.hidden(x))), dim=1)

    return WineNet


def _mar_model(path: Path) -> Any:
    """The TorchScript model inside an archive packed by pack_mar."""
    import zipfile

    import torch

    with zipfile.ZipFile(path) as mar:
        return torch.jit.load(io.BytesIO(mar.read("model.pt")))


def train_custom(model_dir: Path, data_dir: Path) -> float:
    """Diabetes linear model -> model_dir/model.json; returns held-out R^2."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    diabetes = load_diabetes()
    x_train, y_train, x_test, y_test = _split(diabetes.data, diabetes.target, 42)
    _write_inputs(data_dir, "diabetes", [str(n) for n in diabetes.feature_names], x_test, y_test)
    model = LinearRegression().fit(x_train, y_train)
    doc = {"coef": [float(c) for c in model.coef_], "intercept": float(model.intercept_)}
    _write(model_dir / "model.json", (json.dumps(doc, indent=1) + "\n").encode())
    return float(model.score(x_test, y_test))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--data-dir", type=Path, default=REPO / "data")
    args = parser.parse_args(argv)
    sk = train_sklearn(args.models_dir / "sklearn_iris", args.data_dir)
    xg = train_xgboost(args.models_dir / "xgboost_cancer", args.data_dir)
    pt = train_pytorch(args.models_dir / "pytorch_wine", args.data_dir)
    r2 = train_custom(args.models_dir / "custom_diabetes", args.data_dir)
    print(f"sklearn_iris: held-out accuracy {sk:.3f}; xgboost_cancer: {xg:.3f}; ", end="")
    torch_note = (
        "skipped (no torch: pip install 'deployer[pytorch]')" if pt is None else f"{pt:.3f}"
    )
    print(f"pytorch_wine: {torch_note}; custom_diabetes: R^2 {r2:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
