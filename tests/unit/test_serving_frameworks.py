"""Framework runtimes: served predictions equal the library called in-process.

Models are trained here on datasets that ship with scikit-learn (iris, breast cancer,
diabetes), saved in every file form the pre-built images load, loaded back through
`deployer.serving.frameworks`, and compared with the in-memory model's own answers.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deployer.serving import frameworks
from deployer.wire.prebuilt import Framework


def _save(model: Any, directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    if name.endswith(".joblib"):
        joblib.dump(model, path)
    elif name.endswith(".pkl"):
        with path.open("wb") as f:
            pickle.dump(model, f)
    else:
        model.save_model(str(path))
    return path


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x, y


@pytest.mark.parametrize("filename", ["model.joblib", "model.pkl"])
def test_sklearn_classifier_predictions_equal_the_library(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray], filename: str
) -> None:
    x, y = iris
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    _save(model, tmp_path, filename)
    predictor = frameworks.load(Framework.SKLEARN, tmp_path)
    assert predictor.artifact.name == filename
    served = predictor.predict(x.tolist())
    assert served == model.predict(x).tolist()
    assert set(served) == {0, 1, 2}  # a real classifier, not a constant


def test_sklearn_regressor_predictions_equal_the_library(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x, y)
    _save(model, tmp_path, "model.joblib")
    served = frameworks.load(Framework.SKLEARN, tmp_path).predict(x[:50].tolist())
    assert served == model.predict(x[:50]).tolist()


def test_sklearn_prefers_model_joblib_over_model_pkl(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    _save(LinearRegression().fit(x, y), tmp_path, "model.joblib")
    _save(LinearRegression().fit(x[:, :3], y), tmp_path, "model.pkl")
    assert frameworks.load(Framework.SKLEARN, tmp_path).artifact.name == "model.joblib"


def test_sklearn_bad_instances_fail_as_the_prebuilt_container_words_it(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = iris
    _save(LogisticRegression(max_iter=500).fit(x, y), tmp_path, "model.joblib")
    predictor = frameworks.load(Framework.SKLEARN, tmp_path)
    with pytest.raises(frameworks.PredictionError) as err:
        predictor.predict([[1.0, 2.0]])  # 2 features, the model has 4
    assert str(err.value).startswith("Prediction failed: Exception during sklearn prediction: ")
    assert "4 features" in str(err.value)


def test_a_directory_without_a_model_file_names_what_the_image_loads(tmp_path: Path) -> None:
    (tmp_path / "model.bst").write_bytes(b"not for sklearn")
    with pytest.raises(frameworks.ModelLoadError) as err:
        frameworks.load(Framework.SKLEARN, tmp_path)
    assert "['model.joblib', 'model.pkl']" in str(err.value)


def test_a_corrupt_model_file_is_a_load_error(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"garbage")
    with pytest.raises(frameworks.ModelLoadError, match=r"cannot load model\.pkl"):
        frameworks.load(Framework.SKLEARN, tmp_path)


def _cancer() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x, y


def test_xgboost_booster_bst_predictions_equal_the_library(tmp_path: Path) -> None:
    x, y = _cancer()
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=10,
    )
    _save(booster, tmp_path, "model.bst")
    predictor = frameworks.load(Framework.XGBOOST, tmp_path)
    served = predictor.predict(x.tolist())
    assert served == booster.predict(xgb.DMatrix(x)).tolist()
    assert 0.0 < min(served) < 0.5 < max(served) < 1.0  # probabilities of both classes


@pytest.mark.parametrize("filename", ["model.joblib", "model.pkl"])
def test_xgboost_sklearn_api_model_predictions_equal_the_library(
    tmp_path: Path, filename: str
) -> None:
    x, y = _cancer()
    model = xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y)
    _save(model, tmp_path, filename)
    served = frameworks.load(Framework.XGBOOST, tmp_path).predict(x.tolist())
    assert served == model.predict(x).tolist()
    assert set(served) == {0, 1}


def test_xgboost_booster_saved_as_model_joblib_is_read_as_a_booster(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True)
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=y), num_boost_round=5)
    booster.save_model(str(tmp_path / "model.json"))
    (tmp_path / "model.json").rename(tmp_path / "model.joblib")
    served = frameworks.load(Framework.XGBOOST, tmp_path).predict(x[:20].tolist())
    assert served == booster.predict(xgb.DMatrix(x[:20])).tolist()


def test_xgboost_bad_instances_fail_as_the_prebuilt_container_words_it(tmp_path: Path) -> None:
    x, y = _cancer()
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=y), num_boost_round=2)
    _save(booster, tmp_path, "model.bst")
    predictor = frameworks.load(Framework.XGBOOST, tmp_path)
    with pytest.raises(frameworks.PredictionError) as err:
        predictor.predict([[1.0, "x"]])
    assert str(err.value).startswith("Prediction failed: Exception during xgboost prediction: ")


@pytest.mark.parametrize(("raw_format", "named"), [("json", "JSON"), ("ubj", "UBJSON")])
def test_xgboost_model_bst_is_loaded_by_content_and_its_format_named(
    tmp_path: Path, raw_format: str, named: str, caplog: pytest.LogCaptureFixture
) -> None:
    import warnings

    x, y = _cancer()
    booster = xgb.train({"nthread": 1}, xgb.DMatrix(x, label=y), num_boost_round=3)
    (tmp_path / "model.bst").write_bytes(bytes(booster.save_raw(raw_format=raw_format)))
    caplog.set_level("INFO", logger="deployer.serving.frameworks.xgboost")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "Unknown file format: bst ... as a guess"
        served = frameworks.load(Framework.XGBOOST, tmp_path).predict(x[:5].tolist())
    assert served == booster.predict(xgb.DMatrix(x[:5])).tolist()
    assert f"model.bst: an XGBoost Booster in {named} format" in caplog.text


def test_a_pytorch_directory_without_model_mar_names_it(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    (tmp_path / "m").mkdir()
    with pytest.raises(frameworks.ModelLoadError, match=r"provided in .*: \['model.mar'\]"):
        frameworks.load(Framework.PYTORCH, tmp_path / "m")
