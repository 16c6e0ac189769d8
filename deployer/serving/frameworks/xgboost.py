"""XGBoost, as Vertex's pre-built `xgboost-cpu.*` images serve it.

Owns: loading `model.bst` (a Booster file), else `model.joblib` (joblib; a Booster file saved
under that name is read with Booster.load_model, as the pre-built server falls back to), else
`model.pkl` (pickle), and predicting: a Booster predicts a DMatrix of the instances (raw
`Booster.predict`: probabilities for classifiers), a scikit-learn API model (XGBClassifier,
XGBRegressor, ...) calls its own `predict` on the instances as one 2-D array.
Must not: speak HTTP or know the emulator.
"""

from __future__ import annotations

import warnings
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


def _booster(xgb: Any, path: Path) -> Any:
    try:
        booster = xgb.Booster()
        with warnings.catch_warnings():
            # "Unknown file format: bst ... as a guess": the guess (UBJSON or JSON) is right.
            warnings.simplefilter("ignore", UserWarning)
            booster.load_model(str(path))
        return booster
    except Exception as exc:  # xgboost.core.XGBoostError and file errors
        raise ModelLoadError(f"cannot load {path.name} as an XGBoost Booster: {exc}") from exc
