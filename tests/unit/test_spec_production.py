"""The production settings of issue 16: what a valid spec builds, and the rules' edges.

The malformed cases (one per rule) are in tests/unit/specs/bad/ (test_spec_corpus.py);
here: that valid settings reach the frozen spec exactly as Vertex names them, and that
the rules accept what Vertex accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployer.errors import SpecError
from deployer.spec import InputFormat, load_spec
from deployer.spec.production_model import AutoscalingMetric, PredictionsFormat

REPO = Path(__file__).resolve().parents[2]
CPU = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
DUTY = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
RPM = "aiplatform.googleapis.com/prediction/online/request_count"

HEAD = """stack: prod
project: acme-ml-prod
region: us-central1
bucket: {name: acme-ml-prod-bucket}
models:
  - name: m
    container: us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest
    versions: [{alias: v1, artifact: gs://acme-ml-prod-bucket/m/1}]
"""


def _load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + body)
    return load_spec(path, environ={})


def test_the_production_config_builds_every_setting() -> None:
    spec = load_spec(REPO / "configs" / "mnist-production.yaml", environ={}, check_artifacts=False)
    key = "projects/local-project/locations/us-central1/keyRings/ml/cryptoKeys/vertex"
    assert spec.model("mnist").kms_key_name == key
    endpoint = spec.endpoint("mnist-prod")
    settings = endpoint.settings
    assert settings.kms_key_name == key
    assert settings.network is None and settings.private
    psc = settings.private_service_connect_config
    assert psc is not None and psc.project_allowlist == ("local-project",)
    logging = settings.predict_request_response_logging_config
    assert logging is not None and logging.sampling_rate == 0.1
    assert logging.bigquery_output_uri == "bq://local-project.mnist_logs.requests"
    deployed = endpoint.deployments[0].settings
    assert deployed.service_account == "mnist-serving@local-project.iam.gserviceaccount.com"
    assert [(s.metric_name, s.target) for s in deployed.autoscaling_metric_specs] == [
        (AutoscalingMetric.CPU_UTILIZATION.value, 70)
    ]
    assert deployed.enable_access_logging and not deployed.disable_container_logging
    assert deployed.deploy_timeout_seconds == 1800
    job = spec.batch_job("mnist-nightly").settings
    assert job.kms_key_name == key and job.service_account == deployed.service_account


def test_a_spec_without_settings_builds_the_defaults(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        "endpoints:\n  - name: e\n    deployments: [{model: m@v1, machine_type: n1-standard-4}]\n",
    )
    deployed = spec.endpoints[0].deployments[0].settings
    assert deployed.autoscaling_metric_specs == () and not deployed.spot
    assert deployed.shared_resources is None and deployed.deploy_timeout_seconds is None
    assert not spec.endpoints[0].settings.private
    assert spec.models[0].kms_key_name is None


def test_accelerator_duty_cycle_and_request_count_where_vertex_allows(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        f"""endpoints:
  - name: e
    deployments:
      - model: m@v1
        machine_type: g2-standard-8
        accelerator: {{type: NVIDIA_L4, count: 1}}
        max_replicas: 4
        spot: true
        autoscaling_metric_specs:
          - {{metric_name: {DUTY}, target: 80}}
          - {{metric_name: {RPM}, target: 600}}
""",
    )
    deployed = spec.endpoints[0].deployments[0].settings
    assert deployed.spot
    assert [s.target for s in deployed.autoscaling_metric_specs] == [80, 600]


def test_a_shared_pool_id_is_placed_in_the_stacks_project_and_region(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        "endpoints:\n  - name: e\n    deployments:\n"
        "      - {model: m@v1, machine_type: n1-standard-4, shared_resources: pool-a}\n",
    )
    deployed = spec.endpoints[0].deployments[0].settings
    assert deployed.shared_pool_name("acme-ml-prod", "us-central1") == (
        "projects/acme-ml-prod/locations/us-central1/deploymentResourcePools/pool-a"
    )


def test_metric_listed_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        _load(
            tmp_path,
            f"""endpoints:
  - name: e
    deployments:
      - model: m@v1
        machine_type: n1-standard-4
        max_replicas: 3
        autoscaling_metric_specs: [{{metric_name: {CPU}}}, {{metric_name: {CPU}, target: 50}}]
""",
        )
    assert "metric cpu/utilization is listed twice" in info.value.render()


def test_batch_bigquery_in_and_out_with_instance_config(tmp_path: Path) -> None:
    spec = _load(
        tmp_path,
        """batch_jobs:
  - name: j
    model: m@v1
    machine_type: n1-standard-4
    input: {bigquery_source: {input_uri: bq://acme-ml-prod.ml.instances}}
    output: {predictions_format: bigquery, bigquery_destination: {output_uri: bq://acme-ml-prod}}
    instance_config: {instance_type: object, key_field: id, excluded_fields: [label]}
    model_parameters: {top_k: 3, threshold: 0.5}
    service_account: batch@acme-ml-prod.iam.gserviceaccount.com
""",
    )
    job = spec.batch_jobs[0]
    assert job.input.format is InputFormat.BIGQUERY and job.input.paths == ()
    settings = job.settings
    assert settings.bigquery_source == "bq://acme-ml-prod.ml.instances"
    assert settings.bigquery_destination == "bq://acme-ml-prod"
    assert settings.predictions_format is PredictionsFormat.BIGQUERY
    config = settings.instance_config
    assert config is not None and config.key_field == "id" and config.excluded_fields == ("label",)
    assert json.loads(settings.model_parameters_json or "") == {"top_k": 3, "threshold": 0.5}


def test_bigquery_source_and_a_path_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        _load(
            tmp_path,
            """batch_jobs:
  - name: j
    model: m@v1
    machine_type: n1-standard-4
    input: {path: gs://acme-ml-prod-bucket/x.jsonl, bigquery_source: {input_uri: bq://a-proj.d.t}}
""",
        )
    assert "input has bigquery_source and a file input" in info.value.render()


def test_the_schema_names_every_production_field() -> None:
    from deployer.spec.schema import json_schema

    defs = json_schema()["$defs"]
    assert {"network", "private_service_connect_config", "encryption_spec"} <= set(
        defs["EndpointDoc"]["properties"]
    )
    assert "predict_request_response_logging_config" in defs["EndpointDoc"]["properties"]
    assert {"instance_config", "model_parameters", "service_account"} <= set(
        defs["BatchJobDoc"]["properties"]
    )
    assert "encryption_spec" in defs["ModelDoc"]["properties"]
    rate = defs["RequestResponseLoggingDoc"]["properties"]["sampling_rate"]
    bounds = next(b for b in rate["anyOf"] if b.get("type") == "number")
    assert (bounds["minimum"], bounds["maximum"]) == (0, 1)
    metric = defs["AutoscalingMetricSpecDoc"]["properties"]["metric_name"]["anyOf"][0]
    assert set(metric["enum"]) == {CPU, DUTY, RPM}
