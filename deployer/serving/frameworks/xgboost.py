"""XGBoost, as Vertex's pre-built `xgboost-cpu.*` images serve it.

Owns: loading `model.bst` (a Booster file in JSON, UBJSON or legacy binary format, told
apart by content and named in the log), else `model.joblib` (joblib; a Booster file saved
under that name is read with Booster.load_model, as the pre-built server falls back to), else
`model.pkl` (pickle), and predicting: a Booster predicts a DMatrix of the instances (raw
`Booster.predict`: probabilities for classifiers), a scikit-learn API model (XGBClassifier,
XGBRegressor, ...) calls its own `predict` on the instances as one 2-D array.
Must not: speak HTTP or know the emulator.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.serving.frameworks import (
    ModelLoadError,
    artifact_path,
    prediction_failed,
    to_list,
)
from deployer.serving.frameworks.sklearn import load_object
from deployer.wire.prebuilt import Framework

THREADS = 1  # per prediction call; see load()
log = logging.getLogger("deployer.serving.frameworks.xgboost")


@dataclass(frozen=True)
class XgboostPredictor:
    model: Any  # xgboost.Booster, or an xgboost.XGBModel (scikit-learn API)
    artifact: Path
    framework: Framework = Framework.XGBOOST

    def predict(
        self, instances: Sequence[Any], parameters: Mapping[str, Any] | None = None
    ) -> list[Any]:
        import numpy as np
        import xgboost as xgb

        try:
            data = np.asarray(instances, dtype=float)
            if isinstance(self.model, xgb.Booster):
                return to_list(self.model.predict(xgb.DMatrix(data, nthread=THREADS)))
            return to_list(self.model.predict(data))
        except Exception as exc:  # the library's complaint about the instances, any type
            raise prediction_failed(self.framework, exc) from exc


def load(artifact_dir: Path) -> XgboostPredictor:
    import xgboost as xgb

    path = artifact_path(Framework.XGBOOST, artifact_dir)
    model: Any
    if path.name == "model.bst":
        model = _booster(xgb, path)
    elif path.suffix == ".joblib":
        try:
            model = load_object(path)
        except ModelLoadError:
            model = _booster(xgb, path)  # a Booster file named model.joblib
    else:
        model = load_object(path)
    if not isinstance(model, xgb.Booster) and not callable(getattr(model, "predict", None)):
        raise ModelLoadError(f"{path.name} holds a {type(model).__name__}, not an XGBoost model")
    # OpenMP's worker threads spin per calling thread: with a request thread per connection
    # and replicas sharing the cores, the default (all cores) took 21 ms per instance against
    # 0.7 ms with one thread. Predictions do not depend on the thread count.
    if isinstance(model, xgb.Booster):
        model.set_param({"nthread": THREADS})
    elif hasattr(model, "set_params"):
        model.set_params(n_jobs=THREADS)
    return XgboostPredictor(model=model, artifact=path)


def booster_format(head: bytes) -> str:
    """The model format of a Booster file, from its first bytes (as XGBoost itself tells them
    apart): JSON text, UBJSON (binary JSON, `{` then a type marker letter), or the legacy
    binary format of XGBoost before 1.0 (deprecated; XGBoost 3 no longer reads it)."""
    if head[:1] == b"{":
        return "UBJSON" if head[1:2].isalpha() else "JSON"
    return "legacy binary"


def _booster(xgb: Any, path: Path) -> Any:
    # Loaded from the bytes, so XGBoost tells the format by content, as the pre-built image's
    # XGBoost does for model.bst (loading by file name warns "Unknown file format: bst").
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path.name}: {exc}") from exc
    fmt = booster_format(data[:2])
    try:
        booster = xgb.Booster()
        booster.load_model(bytearray(data))
    except Exception as exc:  # xgboost.core.XGBoostError
        raise ModelLoadError(
            f"cannot load {path.name} ({fmt} format) as an XGBoost Booster: {exc}"
        ) from exc
    log.info("%s: an XGBoost Booster in %s format", path.name, fmt)
    return booster
