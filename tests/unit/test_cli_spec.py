"""`deployer schema`, `validate`, `prices` and `reap` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deployer.cli import main

SPECS = Path(__file__).parent / "specs"
ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def deployer(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def test_schema_is_json_schema_generated_from_the_boundary_models(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["schema"], capsys)
    assert code == 0
    schema = json.loads(out)
    assert schema["title"] == "deployer spec"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"stack", "project", "region", "bucket", "models"}
    assert schema["properties"]["target"]["anyOf"][0]["enum"] == ["local", "vertex"]
    # ...or ${VAR} text, which the loader interpolates.
    assert "${" in schema["properties"]["target"]["anyOf"][1]["description"]
    deployment = schema["$defs"]["DeploymentDoc"]["properties"]
    traffic = next(s for s in deployment["traffic"]["anyOf"] if s.get("type") == "integer")
    assert (traffic["minimum"], traffic["maximum"]) == (0, 100)
    assert schema["properties"]["stack"]["anyOf"][0]["pattern"] == "^[a-z][a-z0-9-]{0,39}$"
    fmt = schema["$defs"]["BatchInputDoc"]["properties"]["format"]["anyOf"][0]
    assert fmt["enum"] == ["jsonl", "csv", "file-list", "tf-record"]
    # Every key the loader accepts is in the schema (one source of truth).
    assert set(schema["$defs"]["DeploymentDoc"]["properties"]) == {
        "model",
        "traffic",
        "machine_type",
        "accelerator",
        "min_replicas",
        "max_replicas",
        "rollout",
    }
    rollout = schema["$defs"]["RolloutDoc"]["properties"]
    assert set(rollout) == {"steps", "wait", "requests", "checks", "on_failure"}


def test_validate_prints_a_summary_with_the_cost(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["validate", str(SPECS / "valid" / "mnist.yaml")], capsys)
    assert code == 0, err
    assert "valid. stack 'mnist' (target local" in out
    assert "1 model (2 versions), 1 endpoint (2 deployments), 1 batch job" in out
    assert "mnist@v1 90%, mnist@v2 10%" in out
    assert "estimated cost: $0.84/h steady, $2.34/h at max replicas" in out
    assert "prices: packaged Vertex AI list prices, 2026-11-25" in out
    assert "batch job mnist-batch: up to $" in out


def test_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["validate", str(SPECS / "valid" / "gpu_csv.yaml"), "--output", "json"], capsys
    )
    assert code == 0
    data = json.loads(out)
    assert data["valid"] is True and data["target"] == "vertex"
    assert data["endpoints"] == {"tabular": {"tabular@b2": 100}, "big": {"tabular@a": 100}}
    assert data["cost"]["unknown"] == []
    assert data["cost"]["hourly_min"] > 0
    assert [i["kind"] for i in data["cost"]["items"]] == ["deployment", "deployment", "batch_job"]


def test_validate_reports_every_problem_with_exit_3_and_no_traceback() -> None:
    result = deployer("validate", "tests/unit/specs/bad/traffic_sum.yaml")
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: 1 problem in the spec; nothing was changed:")
    assert (
        "tests/unit/specs/bad/traffic_sum.yaml:14: endpoints[0].deployments: traffic sums to 110"
        in result.stderr
    )
    assert "fix: make the deployments' traffic percentages add up to 100" in result.stderr


def test_validate_skip_artifacts(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SPECS / "bad" / "artifact_missing.yaml")
    assert run(["validate", path], capsys)[0] == 3
    assert run(["validate", path, "--skip-artifacts"], capsys)[0] == 0


def test_validate_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["validate", "no/such/spec.yaml"], capsys)
    assert code == 3 and "does not exist" in err


def test_help_does_not_import_pydantic() -> None:
    code = (
        "import sys\nfrom deployer.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED' if 'pydantic' in sys.modules or 'deployer.cost' in sys.modules else "
        "'LIGHT')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.stdout.strip().endswith("LIGHT")


def test_prices_shows_the_table_and_its_date(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYER_HOME", str(tmp_path))
    code, out, _ = run(["prices"], capsys)
    assert code == 0
    assert out.startswith("prices: packaged Vertex AI list prices, as of 2026-11-25")
    assert "n1-standard-4" in out and "$0.22" in out and "NVIDIA_TESLA_T4" in out and "$0.40" in out
    code, out, _ = run(["prices", "--region", "europe-west4", "-o", "json"], capsys)
    rows = {r["name"]: r["hourly"] for r in json.loads(out)["prices"]}
    assert rows["n1-standard-4"] == pytest.approx(0.2191 * 1.101, abs=1e-3)
    code, _, err = run(["prices", "--region", "mars-north1"], capsys)
    assert code == 3 and "no figures for region 'mars-north1'" in err


def test_prices_refresh_without_credentials_is_a_clear_config_error(tmp_path: Path) -> None:
    result = deployer(
        "prices",
        "--refresh",
        env={
            "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json"),
            "DEPLOYER_HOME": str(tmp_path),
        },
    )
    assert result.returncode == 3
    assert "no Google Cloud credentials" in result.stderr
    assert "gcloud auth application-default login" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "prices.json").exists()


def test_reap_passes_its_options_to_the_reaper(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import deployer.providers.vertex
    import deployer.reconcile.reaper

    calls: list[dict[str, object]] = []

    class Report:
        def render(self) -> str:
            return "would remove 1 stack"

        def to_dict(self) -> dict[str, object]:
            return {"stacks": ["old"]}

    def fake_connect(target: str, project: str, region: str) -> str:
        return f"provider:{target}:{project}:{region}"

    def fake_reap(
        project: str, region: str, *, provider: object, dry_run: bool, table: object
    ) -> Report:
        calls.append(
            {"project": project, "region": region, "dry_run": dry_run, "provider": provider}
        )
        return Report()

    monkeypatch.setattr(deployer.providers.vertex, "connect", fake_connect)
    monkeypatch.setattr(deployer.reconcile.reaper, "reap", fake_reap)
    code, out, _ = run(
        ["reap", "--project", "p-123456", "--region", "us-east1", "--dry-run"], capsys
    )
    assert code == 0 and out.strip() == "would remove 1 stack"
    assert calls == [
        {
            "project": "p-123456",
            "region": "us-east1",
            "dry_run": True,
            "provider": "provider:vertex:p-123456:us-east1",
        }
    ]
    code, out, _ = run(
        ["reap", "--project", "p-123456", "--region", "us-east1", "-o", "json"], capsys
    )
    assert json.loads(out) == {"stacks": ["old"]} and calls[-1]["dry_run"] is False


# Specs whose first problem the pydantic boundary finds: the JSON Schema must catch them too.
SHAPE_ERRORS = [
    "batch_format",
    "budget_negative",
    "missing_bucket",
    "missing_required",
    "models_empty",
    "project_format",
    "region_format",
    "replicas_zero",
    "stack_name",
    "target_unknown",
    "top_level_list",
    "top_level_scalar",
    "traffic_range",
    "ttl_bad",
    "unknown_key",
    "unknown_top_level_key",
    "wrong_type_int",
    "wrong_type_list",
]


def test_the_json_schema_accepts_every_valid_spec_and_config_and_rejects_shape_errors() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    from deployer.spec.schema import json_schema

    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    valid = [*sorted((SPECS / "valid").glob("*.yaml")), *sorted((ROOT / "configs").glob("*.yaml"))]
    assert len(valid) >= 3
    for path in valid:  # configs use ${VAR:-default} in region and target: the schema allows it
        errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
        assert errors == [], path
    for stem in SHAPE_ERRORS:
        data = yaml.safe_load((SPECS / "bad" / f"{stem}.yaml").read_text())
        assert not validator.is_valid(data), stem


def test_schema_markdown_lists_every_field_from_the_same_models(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["schema", "--format", "markdown"], capsys)
    assert code == 0
    assert out.startswith("| field | type | default | meaning |")
    assert (
        "| `endpoints[].deployments[].traffic` | integer |  | Percent of the endpoint's traffic"
        in out
    )
    assert "| `batch_jobs[].input.format` | `jsonl` / `csv` / `file-list` / `tf-record` |" in out
    assert "| `bucket.create` | boolean | `true` |" in out
    from deployer.spec.schema import SpecDoc

    def paths(model: type, prefix: str) -> list[str]:
        out_paths = []
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            out_paths.append(prefix + name)
            for arg in [info.annotation, *getattr(info.annotation, "__args__", ())]:
                for inner in [arg, *getattr(arg, "__args__", ())]:
                    if isinstance(inner, type) and hasattr(inner, "model_fields"):
                        sep = "[]." if "list[" in str(info.annotation) else "."
                        out_paths += paths(inner, prefix + name + sep)
        return out_paths

    every = set(paths(SpecDoc, ""))
    assert len(every) > 50
    for path in every:
        assert f"| `{path}` |" in out, path
