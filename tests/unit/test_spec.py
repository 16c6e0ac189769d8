"""load_spec on valid specs: the frozen model it returns, paths, env interpolation, defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import ConfigError, SpecError
from deployer.spec import Accelerator, InputFormat, Target, load_spec, parse_ttl

SPECS = Path(__file__).parent / "specs"


def test_the_flagship_spec_loads_into_the_frozen_model() -> None:
    spec = load_spec(SPECS / "valid" / "mnist.yaml", environ={})
    assert spec.stack == "mnist"
    assert spec.project == "local-project"  # ${GOOGLE_CLOUD_PROJECT:-local-project}
    assert spec.target is Target.LOCAL
    assert spec.bucket.location == "US-CENTRAL1"  # defaults to the region, upper-cased
    assert spec.bucket.create is True
    model = spec.model("mnist")
    v1, v2 = model.versions
    assert v1.artifact == str((SPECS / "artifacts" / "mnist" / "0001").resolve())
    assert v1.container_image.endswith("tf2-cpu.2-12:latest")
    assert v2.container_image.endswith("tf2-gpu.2-12:latest")  # version overrides model
    assert v2.description == "second"
    assert model.labels == (("team", "ml"),)
    d1, d2 = spec.endpoint("mnist-endpoint").deployments
    assert (d1.ref, d1.traffic, d1.min_replicas, d1.max_replicas) == ("mnist@v1", 90, 1, 5)
    assert d2.accelerator == Accelerator(type="NVIDIA_TESLA_T4", count=1)
    job = spec.batch_job("mnist-batch")
    assert job.ref == "mnist@v2"
    assert job.input.format is InputFormat.JSONL
    assert job.input.paths == (str((SPECS / "data" / "instances.jsonl").resolve()),)
    assert (job.starting_replicas, job.max_replicas, job.batch_size) == (1, 5, 64)
    assert spec.guards.max_hourly_usd == 5.0
    assert spec.guards.ttl_seconds == 4 * 3600
    assert spec.source == SPECS / "valid" / "mnist.yaml"


def test_environment_values_replace_defaults() -> None:
    spec = load_spec(
        SPECS / "valid" / "mnist.yaml", environ={"GOOGLE_CLOUD_PROJECT": "prod-proj-1"}
    )
    assert spec.project == "prod-proj-1"


def test_an_empty_variable_takes_the_default_like_the_shell() -> None:
    spec = load_spec(SPECS / "valid" / "mnist.yaml", environ={"GOOGLE_CLOUD_PROJECT": ""})
    assert spec.project == "local-project"


def test_gpu_spec_with_anchors_gs_artifacts_and_several_csv_inputs() -> None:
    spec = load_spec(SPECS / "valid" / "gpu_csv.yaml", environ={})
    assert spec.target is Target.VERTEX
    assert spec.bucket.location == "EU" and spec.bucket.create is False
    assert spec.model("tabular").version("a").artifact == "gs://my-project-123-models/tabular/0001"
    assert not spec.model("tabular").version("a").is_local
    (single,) = spec.endpoint("tabular").deployments
    assert single.traffic == 100  # implied for a lone deployment
    assert single.machine_type == "g2-standard-8"  # from the merged anchor
    assert single.accelerator == Accelerator("NVIDIA_L4", 1)
    assert (single.min_replicas, single.max_replicas) == (1, 1)
    job = spec.batch_job("score")
    assert job.input.format is InputFormat.CSV  # inferred from the extension
    assert job.input.paths[1] == "gs://my-project-123-data/more.csv"
    assert (job.starting_replicas, job.max_replicas) == (2, 2)
    assert spec.guards.max_hourly_usd is None and spec.guards.ttl_seconds is None


def test_batch_input_formats_are_read_from_names_as_staging_reads_them() -> None:
    spec = load_spec(SPECS / "valid" / "batch_inputs.yaml", environ={})
    formats = {job.name: job.input.format for job in spec.batch_jobs}
    assert formats == {
        "arrays": InputFormat.JSONL,  # .npz: staging converts NumPy arrays to JSON Lines
        "lines": InputFormat.JSONL,  # .ndjson
        "images": InputFormat.FILE_LIST,  # a folder: a file list of the files below it
    }
    assert spec.batch_job("images").input.paths == (str((SPECS / "data" / "images").resolve()),)


def test_the_spec_and_staging_read_an_input_name_alike(tmp_path: Path) -> None:
    from deployer.batch.staging import infer_format as staging_format
    from deployer.wire.batch_formats import FORMAT_BY_SUFFIX

    (tmp_path / "folder").mkdir()
    names = [f"x{suffix}" for suffix in FORMAT_BY_SUFFIX] + ["folder"]
    for name in names:
        if not (tmp_path / name).exists():
            (tmp_path / name).write_text("")
        spec_text = (SPECS / "valid" / "batch_inputs.yaml").read_text()
        spec_path = tmp_path / "spec.yaml"
        spec_text = spec_text.replace("../data/instances.npz", str(tmp_path / name))
        spec_path.write_text(spec_text.replace("../", f"{SPECS}/"))
        spec = load_spec(spec_path, environ={})
        read = staging_format(str(tmp_path / name), None)
        assert spec.batch_job("arrays").input.format.value == read, name


def test_check_artifacts_false_skips_the_filesystem(tmp_path: Path) -> None:
    text = (SPECS / "valid" / "mnist.yaml").read_text().replace("../artifacts", "../nowhere")
    (tmp_path / "s").mkdir()
    path = tmp_path / "s" / "spec.yaml"
    path.write_text(text.replace("../data/instances.jsonl", "../nowhere/x.jsonl"))
    with pytest.raises(SpecError):
        load_spec(path, environ={})
    spec = load_spec(path, environ={}, check_artifacts=False)
    assert spec.model("mnist").versions[0].artifact == str(tmp_path / "nowhere" / "mnist" / "0001")


def test_a_missing_spec_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_spec(tmp_path / "nope.yaml")


def test_dollar_dollar_escapes_a_literal_dollar(tmp_path: Path) -> None:
    text = (
        (SPECS / "valid" / "mnist.yaml")
        .read_text()
        .replace(
            'description: "Handwritten digits"', 'description: "costs $$5 ${NOT_EXPANDED_HERE:-x}"'
        )
    )
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    spec = load_spec(path, environ={}, check_artifacts=False)
    assert spec.model("mnist").description == "costs $5 x"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30m", 1800),
        ("4h", 14400),
        ("2d", 172800),
        ("1w", 604800),
        (" 90m ", 5400),
    ],
)
def test_parse_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "4", "h", "4 hours", "4H", "-1h", "0h", "1.5h", "4s"])
def test_parse_ttl_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="m, h, d or w"):
        parse_ttl(text)
