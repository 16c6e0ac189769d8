"""Framework runtimes behind one replica interface: load an artifact directory, predict.

Owns: the `Predictor` protocol every framework module implements, the errors a load or a
prediction raises (worded as Vertex's pre-built containers word them), and `load`, which picks
the framework module lazily so importing this package imports no framework:

    from deployer.serving import frameworks
    predictor = frameworks.load(Framework.SKLEARN, Path("artifacts/"))   # model.joblib | .pkl
    predictor.predict([[5.1, 3.5, 1.4, 0.2]])          # -> [0] (what the library answers)

A framework is one small module here exposing `load(artifact_dir) -> Predictor`.
Must not: speak HTTP (`deployer.serving.prebuilt` does), know the emulator, or import a
framework at module level (they are heavy and optional).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from deployer.wire.prebuilt import ARTIFACT_FILES, Framework

# The module implementing each framework, and the pip extra that installs its runtime.
_MODULES = {
    Framework.SKLEARN: "deployer.serving.frameworks.sklearn",
    Framework.XGBOOST: "deployer.serving.frameworks.xgboost",
    Framework.PYTORCH: "deployer.serving.frameworks.torch",
}
_EXTRAS = {Framework.PYTORCH: "pytorch"}


class ModelLoadError(RuntimeError):
    """The artifact directory holds nothing this framework loads, or loading it failed."""


class RuntimeMissing(ModelLoadError):
    """The framework's library is not installed (an optional extra)."""


class PredictionError(ValueError):
    """The instances could not be predicted: the client's error (HTTP 400 on Vertex)."""


class Predictor(Protocol):
    """One loaded model. `predict` is thread-safe for the frameworks here (read-only models)."""

    @property
    def framework(self) -> Framework: ...

    @property
    def artifact(self) -> Path:
        """The file that was loaded."""
        ...

    def predict(
        self, instances: Sequence[Any], parameters: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """One prediction per instance, JSON-ready; PredictionError on bad instances."""
        ...


def artifact_path(framework: Framework, artifact_dir: Path) -> Path:
    """The file the pre-built image loads from the directory (first found in Vertex's order)."""
    for name in ARTIFACT_FILES[framework]:
        path = artifact_dir / name
        if path.is_file():
            return path
    raise ModelLoadError(
        f"One of the following model files must be provided in {artifact_dir}: "
        f"{list(ARTIFACT_FILES[framework])}."
    )


def prediction_failed(framework: Framework, exc: BaseException) -> PredictionError:
    """The error the pre-built containers answer when the library raises on the instances."""
    return PredictionError(
        f"Prediction failed: Exception during {framework.value} prediction: {exc}"
    )


def load(framework: Framework, artifact_dir: Path) -> Predictor:
    """Load the artifact directory with the framework's runtime (imported now, not before)."""
    module_name = _MODULES.get(framework)
    if module_name is None:
        raise ModelLoadError(f"{framework.value} models are not served by this runtime")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = _EXTRAS.get(framework, framework.value)
        raise RuntimeMissing(
            f"serving {framework.value} models needs {exc.name or 'its runtime'}, which is not "
            f"installed: pip install 'deployer[{extra}]'"
        ) from exc
    predictor: Predictor = module.load(artifact_dir)
    return predictor


def to_list(result: Any) -> list[Any]:
    """A framework's output (numpy array or list) as JSON-ready Python values."""
    tolist = getattr(result, "tolist", None)
    out = tolist() if callable(tolist) else list(result)
    return out if isinstance(out, list) else [out]
