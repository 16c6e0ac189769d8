"""scikit-learn, as Vertex's pre-built `sklearn-cpu.*` images serve it.

Owns: loading `model.joblib` (joblib) or else `model.pkl` (pickle) from an artifact directory
and calling the estimator's `predict` on the instances as one 2-D array, as the pre-built
container does (no `predict_proba`; parameters are ignored).
Must not: speak HTTP or know the emulator. Loading a pickle runs code from the artifact: a
deployed model is code, run with the user's rights, as on Vertex.
"""

from __future__ import annotations

import pickle
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
from deployer.wire.prebuilt import Framework


def load_object(path: Path) -> Any:
    """The Python object in a `.joblib` (joblib) or `.pkl` (pickle) file."""
    try:
        if path.suffix == ".joblib":
            import joblib

            return joblib.load(path)
        with path.open("rb") as f:
            return pickle.load(f)
    except Exception as exc:  # unpickling raises anything a class's __setstate__ raises
        raise ModelLoadError(f"cannot load {path.name}: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True)
class SklearnPredictor:
    model: Any  # a fitted estimator or pipeline with .predict
    artifact: Path
    framework: Framework = Framework.SKLEARN

    def predict(
        self, instances: Sequence[Any], parameters: Mapping[str, Any] | None = None
    ) -> list[Any]:
        import numpy as np

        try:
            return to_list(self.model.predict(np.asarray(instances)))
        except Exception as exc:  # the library's complaint about the instances, any type
            raise prediction_failed(self.framework, exc) from exc


def load(artifact_dir: Path) -> SklearnPredictor:
    path = artifact_path(Framework.SKLEARN, artifact_dir)
    model = load_object(path)
    if not callable(getattr(model, "predict", None)):
        raise ModelLoadError(f"{path.name} holds a {type(model).__name__}, which has no predict()")
    return SklearnPredictor(model=model, artifact=path)
