"""Edge cases of the YAML boundary: odd keys, empty values, aliases, interpolation into numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import SpecError
from deployer.spec import Spec, catalog, load_spec

HEAD = (
    "stack: mnist\n"
    "project: local-project\n"
    "region: us-central1\n"
    "bucket: {name: abc-def}\n"
    "models: [{name: m, container: a.io/b:1, versions: [{alias: v1, artifact: gs://abc/d}]}]\n"
)


def load(
    tmp_path: Path, tail: str = "", env: dict[str, str] | None = None, head: str = HEAD
) -> Spec:
    path = tmp_path / "spec.yaml"
    path.write_text(head + tail)
    return load_spec(path, environ=env or {})


def problems(
    tmp_path: Path, tail: str = "", env: dict[str, str] | None = None, head: str = HEAD
) -> list[tuple[int | None, str, str]]:
    with pytest.raises(SpecError) as info:
        load(tmp_path, tail, env, head)
    return [(p.line, p.field, p.message) for p in info.value.problems]


def test_a_minimal_spec_gets_its_defaults(tmp_path: Path) -> None:
    spec = load(tmp_path)
    assert spec.endpoints == () and spec.batch_jobs == ()
    assert spec.target.value == "local" and spec.bucket.create is True
    assert spec.model("m").display_name == "m"


def test_yaml_11_boolean_keys_are_reported_as_typed(tmp_path: Path) -> None:
    assert problems(tmp_path, "on: 1\n") == [(6, "on", "unknown key 'on'")]


def test_a_list_entry_of_the_wrong_type_is_named_by_its_path(tmp_path: Path) -> None:
    head = HEAD.replace("models: [{name: m", "models: [mnist, {name: m")
    assert problems(tmp_path, head=head) == [
        (5, "models[0]", "models[0] must be a mapping (key: value), got str 'mnist'")
    ]


def test_an_empty_value_says_so(tmp_path: Path) -> None:
    head = HEAD.replace("bucket: {name: abc-def}", "bucket:")
    assert problems(tmp_path, head=head) == [(4, "bucket", "bucket is empty")]


def test_a_recursive_alias_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    found = problems(tmp_path, "x-loop: &a [*a]\n")
    assert found == [(6, "x-loop[0]", "a YAML alias refers to a node that contains it (a cycle)")]


def test_interpolated_numbers_and_booleans_are_coerced(tmp_path: Path) -> None:
    tail = (
        "endpoints:\n"
        "  - name: e\n"
        "    deployments:\n"
        "      - {model: m@v1, machine_type: '${MACHINE:-n1-standard-2}', min_replicas: '${MIN}',"
        " max_replicas: '${MAX:-3}'}\n"
        "guards: {max_hourly_usd: '${BUDGET:-2.5}'}\n"
    )
    spec = load(tmp_path, tail, env={"MIN": "2"})
    d = spec.endpoint("e").deployments[0]
    assert (d.machine_type, d.min_replicas, d.max_replicas, d.traffic) == (
        "n1-standard-2",
        2,
        3,
        100,
    )
    assert spec.guards.max_hourly_usd == 2.5
    found = problems(tmp_path, tail, env={"MIN": "two"})
    assert found == [
        (
            9,
            "endpoints[0].deployments[0].min_replicas",
            "min_replicas must be a whole number, got str 'two'",
        )
    ]


def test_unset_variables_are_each_named(tmp_path: Path) -> None:
    head = HEAD.replace("local-project", "${PROJ}").replace("us-central1", "${REGION}")
    assert problems(tmp_path, head=head) == [
        (2, "project", "environment variable PROJ is not set"),
        (3, "region", "environment variable REGION is not set"),
    ]


def test_a_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    from deployer.errors import ConfigError

    path = tmp_path / "spec.yaml"
    path.write_bytes(b"stack: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read spec file"):
        load_spec(path)


def test_gpu_machines_and_their_builtin_accelerators() -> None:
    shape = catalog.machine_shape("g2-standard-24")
    assert shape is not None and shape.builtin_gpu == ("NVIDIA_L4", 2) and shape.memory_gb == 96
    assert catalog.machine_shape("a2-highgpu-4g") is not None
    assert catalog.machine_shape("n1-standard-3") is None
    assert catalog.accelerator_fit("g2-standard-24", "NVIDIA_L4", 2) is None
    assert catalog.accelerator_fit("n1-standard-8", "NVIDIA_TESLA_V100", 8) is None
    misfit = catalog.accelerator_fit("g2-standard-24", "NVIDIA_L4", 1)
    assert misfit == (
        "g2-standard-24 comes with exactly 2 NVIDIA_L4, not 1",
        "use machine_type: g2-standard-4",
    )
    misfit = catalog.accelerator_fit("e2-standard-4", "NVIDIA_TESLA_T4", 1)
    assert misfit is not None and "only to n1-*" in misfit[0]


def test_other_url_schemes_are_refused(tmp_path: Path) -> None:
    head = HEAD.replace("gs://abc/d", "s3://abc/d")
    tail = (
        "batch_jobs: [{name: j, model: m@v1, machine_type: n1-standard-4,"
        " input: {path: 'https://example.com/x.jsonl'}}]\n"
    )
    assert problems(tmp_path, tail, head=head) == [
        (
            5,
            "models[0].versions[0].artifact",
            "artifact 's3://abc/d' is neither a local directory nor a gs:// URI",
        ),
        (
            6,
            "batch_jobs[0].input.path",
            "batch input 'https://example.com/x.jsonl' is neither a local path nor a gs:// URI",
        ),
    ]


def test_a_shape_error_does_not_hide_names_and_references_elsewhere(tmp_path: Path) -> None:
    tail = (
        "endpoints:\n"  # 6
        "  - {name: e, deployments: [{model: m@v1}]}\n"  # 7: machine_type missing
        "  - {name: e, deployments: [{model: m@v2, machine_type: n1-standard-4}]}\n"  # 8
        "batch_jobs:\n"  # 9
        "  - {name: j, model: nope@v1, machine_type: n1-standard-4, input: {path: gs://abc/b.csv}}\n"
    )
    assert problems(tmp_path, tail) == [
        (7, "endpoints[0].deployments[0].machine_type", "missing required field 'machine_type'"),
        (8, "endpoints[1].name", "duplicate endpoint name 'e' (also at endpoints[0])"),
        (8, "endpoints[1].deployments[0].model", "model 'm' has no version 'v2'"),
        (10, "batch_jobs[0].model", "no model named 'nope' (in 'nope@v1')"),
    ]
