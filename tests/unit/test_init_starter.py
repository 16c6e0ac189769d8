"""`deployer init`: framework detection by table, names from the folder, a machine with its
price, YAML that the spec loader accepts, and no overwrite without --force."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from deployer.cli import cli
from deployer.cost import packaged_price_table
from deployer.errors import ConfigError
from deployer.predict import starter
from deployer.spec import load_spec
from tests.support.savedmodels import make_mnist_like_model


@pytest.fixture(scope="module")
def savedmodel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mnist_like_model(tmp_path_factory.mktemp("models") / "digits" / "0003")


def _invoke(args: list[str]) -> object:
    return CliRunner().invoke(cli, args, standalone_mode=False, catch_exceptions=True)


@pytest.mark.parametrize(
    ("marker", "framework", "image"),
    [
        ("saved_model.pb", starter.Framework.TENSORFLOW, "tf2-cpu."),
        ("model.joblib", starter.Framework.SKLEARN, "sklearn-cpu."),
        ("model.pkl", starter.Framework.SKLEARN, "sklearn-cpu."),
        ("model.bst", starter.Framework.XGBOOST, "xgboost-cpu."),
        ("model.mar", starter.Framework.PYTORCH, "pytorch-cpu."),
    ],
)
def test_each_marker_file_names_its_framework_and_prebuilt_image(
    tmp_path: Path, marker: str, framework: starter.Framework, image: str
) -> None:
    (tmp_path / marker).write_bytes(b"x")

    rule, found = starter.detect(tmp_path)

    assert (rule.framework, found) == (framework, marker)
    assert rule.container.startswith("us-docker.pkg.dev/vertex-ai/prediction/" + image)


def test_detection_reads_the_one_artifact_table_and_a_file_one_image_loads_wins(
    tmp_path: Path,
) -> None:
    from deployer.wire.prebuilt import ARTIFACT_FILES

    assert {r.framework: r.markers for r in starter.FRAMEWORKS} == ARTIFACT_FILES
    (tmp_path / "model.joblib").write_bytes(b"x")  # loaded by scikit-learn's and XGBoost's
    assert starter.detect(tmp_path)[0].framework is starter.Framework.SKLEARN
    (tmp_path / "model.bst").write_bytes(b"x")  # loaded by XGBoost's only
    assert starter.detect(tmp_path) == (starter.FRAMEWORKS[2], "model.bst")


def test_a_model_mar_that_is_not_an_archive_is_refused_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "model.mar").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="not a TorchServe model archive") as err:
        starter.plan_starter(tmp_path, tmp_path / "s.yaml", None, packaged_price_table())
    assert "torch-model-archiver" in (err.value.hint or "")


def test_a_folder_without_a_model_file_is_refused_naming_what_was_looked_for(
    tmp_path: Path,
) -> None:
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"holds no model file .*saved_model\.pb.*model\.bst"):
        starter.detect(tmp_path)
    with pytest.raises(ConfigError, match="is not a folder"):
        starter.detect(tmp_path / "missing")


def test_names_come_from_the_folder_and_a_version_folder_takes_its_parents_name(
    tmp_path: Path,
) -> None:
    assert starter.derive_name(tmp_path / "my_mnist_model" / "0001") == "my-mnist-model"
    assert starter.derive_name(tmp_path / "Sklearn_Iris") == "sklearn-iris"
    assert starter.derive_name(tmp_path / "2024__model") == "model"
    with pytest.raises(ConfigError, match="not a valid stack name"):
        starter.check_name("Bad_Name")


def test_the_machine_grows_with_the_artifact() -> None:
    assert starter.suggest_machine(2_000_000) == "n1-standard-2"
    assert starter.suggest_machine(3 << 30) == "n1-standard-4"
    assert starter.suggest_machine(50 << 30) == "n1-highmem-8"


def test_the_starter_for_a_savedmodel_loads_as_a_valid_spec_with_its_signature_and_price(
    tmp_path: Path, savedmodel: Path
) -> None:
    out = tmp_path / "conf" / "digits.yaml"

    result = _invoke(["init", str(savedmodel), "--out", str(out)])

    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    text = out.read_text()
    doc = yaml.safe_load(text)
    spec = load_spec(out, environ={})
    assert spec.stack == "digits" and spec.models[0].name == "digits"
    assert [v.alias for v in spec.models[0].versions] == ["v3"]
    assert spec.models[0].versions[0].artifact == str(savedmodel)
    # Written relative to the spec's folder, so the pair moves together.
    assert (out.parent / doc["models"][0]["versions"][0]["artifact"]).resolve() == savedmodel
    (endpoint,) = spec.endpoints
    (deployment,) = endpoint.deployments
    assert (deployment.ref, deployment.traffic) == ("digits@v3", 100)
    hourly = packaged_price_table().machine_hourly(deployment.machine_type, "us-central1")
    assert hourly is not None
    assert "n1-standard-2 (2 vCPU, 7.5 GB)" in text and f"${hourly:.2f}/hour" in text
    assert "input   flatten_input  float32 [-1, 28, 28]" in text
    assert spec.bucket.name == "local-project-digits"
    # Every field the starter sets is explained by a comment line above it.
    assert sum(line.lstrip().startswith("#") for line in text.splitlines()) >= 15


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, savedmodel: Path) -> None:
    out = tmp_path / "digits.yaml"
    out.write_text("mine\n")

    refused = _invoke(["init", str(savedmodel), "--out", str(out)])

    assert isinstance(refused.exception, ConfigError)  # type: ignore[attr-defined]
    assert "already exists" in refused.exception.message  # type: ignore[attr-defined]
    assert out.read_text() == "mine\n"
    forced = _invoke(["init", str(savedmodel), "--out", str(out), "--force", "--name", "dg"])
    assert forced.exit_code == 0  # type: ignore[attr-defined]
    assert load_spec(out, environ={}).stack == "dg"


def test_init_with_a_non_model_folder_exits_3_without_a_traceback(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "m").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "deployer", "init", str(tmp_path / "m")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )

    assert proc.returncode == 3
    assert "holds no model file" in proc.stderr and "fix:" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.glob("*.yaml"))
