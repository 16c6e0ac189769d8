"""Production settings (issue 16) sent as Vertex documents them, against the emulator.

apply a stack with a service account, autoscaling target, access logging, Private Service
Connect, CMEK and request/response logging; read the endpoint back through the official
GAPIC client (the fields are what DeployModel's DeployedModel and CreateEndpoint's Endpoint
carried); plan again: no changes; change the autoscaling target: one mutateDeployedModel;
change the logging sampling rate: one endpoint patch.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.stacks import StackFiles, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import make_batch_inputs
import train_mnist

CPU = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
SA = "serving@test-project.iam.gserviceaccount.com"
KEY = "projects/test-project/locations/us-central1/keyRings/ml/cryptoKeys/vertex"


def _write(files: StackFiles, *, target: int = 70, rate: float = 0.1) -> str:
    path = files.write()
    text = path.read_text()
    text = text.replace(
        "  - name: ep\n    deployments:",
        "  - name: ep\n"
        "    private_service_connect_config:\n"
        "      {enable_private_service_connect: true, project_allowlist: [test-project]}\n"
        f"    encryption_spec: {{kms_key_name: {KEY}}}\n"
        "    predict_request_response_logging_config:\n"
        f"      enabled: true\n      sampling_rate: {rate}\n"
        "      bigquery_destination: {output_uri: bq://test-project.logs.requests}\n"
        "    deployments:",
    )
    text = text.replace(
        "min_replicas: 1, max_replicas: 1}",
        f"min_replicas: 1, max_replicas: 3, service_account: {SA}, enable_access_logging: true,"
        f" autoscaling_metric_specs: [{{metric_name: {CPU}, target: {target}}}]}}",
    )
    text = text.replace(
        "    container:", f"    encryption_spec: {{kms_key_name: {KEY}}}\n    container:", 1
    )
    path.write_text(text)
    return str(path)


def _apis(emulator) -> list[str]:  # type: ignore[no-untyped-def]
    # Vertex calls only: every apply also takes and releases its lock object in the bucket.
    return [e["api"] for e in emulator.mutating_calls() if not e["api"].startswith("storage.")]


@pytest.mark.timeout(600)
def test_settings_reach_vertex_read_back_and_change_in_place(
    emulator, storage_client, tmp_path: Path
) -> None:
    files = StackFiles(tmp_path, stack="prod", bucket="test-project-prod")
    spec = _write(files)
    first = " ".join(run_cli(["apply", spec, "--yes"], emulator.url).output.split())  # unwrap
    # What the emulator stores without acting on it is named once.
    assert first.count("not simulated locally") == 1, first
    assert "private networking (endpoint ep)" in first
    assert "customer-managed encryption keys (model mnist, endpoint ep)" in first

    from tests.integration._vertex import PARENT, gapic_clients

    clients = gapic_clients(emulator.url)
    [ep] = [
        e
        for e in clients.endpoint.list_endpoints(parent=PARENT)
        if e.labels.get("deployer-stack") == "prod"
    ]
    assert ep.private_service_connect_config.enable_private_service_connect
    assert list(ep.private_service_connect_config.project_allowlist) == ["test-project"]
    assert ep.encryption_spec.kms_key_name == KEY
    log = ep.predict_request_response_logging_config
    assert log.enabled and log.sampling_rate == pytest.approx(0.1)
    assert log.bigquery_destination.output_uri == "bq://test-project.logs.requests"
    [dm] = ep.deployed_models
    assert dm.service_account == SA and dm.enable_access_logging
    [metric] = dm.dedicated_resources.autoscaling_metric_specs
    assert (metric.metric_name, metric.target) == (CPU, 70)
    model = clients.model.get_model(name=dm.model.partition("@")[0])
    assert model.encryption_spec.kms_key_name == KEY

    # Read back the same: nothing to do.
    run_cli(["plan", spec, "--detailed-exitcode"], emulator.url, expect=0)

    # A new autoscaling target: mutated in place, nothing redeployed.
    spec = _write(files, target=50)
    emulator.clear_request_log()
    run_cli(["apply", spec, "--yes"], emulator.url)
    assert _apis(emulator) == ["mutateDeployedModel"]
    [ep] = [
        e
        for e in clients.endpoint.list_endpoints(parent=PARENT)
        if e.labels.get("deployer-stack") == "prod"
    ]
    assert ep.deployed_models[0].dedicated_resources.autoscaling_metric_specs[0].target == 50

    # A new sampling rate: one endpoint patch, read back the same.
    spec = _write(files, target=50, rate=0.5)
    emulator.clear_request_log()
    run_cli(["apply", spec, "--yes"], emulator.url)
    assert _apis(emulator) == ["updateEndpoint"]
    ep = clients.endpoint.get_endpoint(name=ep.name)
    assert ep.predict_request_response_logging_config.sampling_rate == pytest.approx(0.5)
    run_cli(["plan", spec, "--detailed-exitcode"], emulator.url, expect=0)

    # Every request logged (rate 1): rows in the local table file in place of BigQuery.
    run_cli(["apply", _write(files, target=50, rate=1.0), "--yes"], emulator.url)
    table = emulator.data_dir / "bigquery" / "test-project.logs.requests.jsonl"
    body = json.dumps({"instances": [[[0.0] * 28] * 28]}).encode()
    for _ in range(3):
        request = urllib.request.Request(
            f"{emulator.url}/v1/{ep.name}:predict",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as resp:
            answer = json.loads(resp.read())
    rows = [json.loads(line) for line in table.read_text().splitlines()]
    assert len(rows) == 3
    assert {r["endpoint"] for r in rows} == {ep.name}
    assert {r["deployed_model_id"] for r in rows} == {answer["deployedModelId"]}
    assert json.loads(rows[-1]["request_payload"][0]) == json.loads(body)
    assert json.loads(rows[-1]["response_payload"][0]) == answer


def test_the_emulator_refuses_a_sampling_rate_outside_0_1(emulator) -> None:  # type: ignore[no-untyped-def]
    from google.api_core.exceptions import BadRequest
    from google.cloud.aiplatform_v1.types import Endpoint, PredictRequestResponseLoggingConfig
    from google.protobuf import field_mask_pb2

    from tests.integration._vertex import PARENT, gapic_clients

    clients = gapic_clients(emulator.url)
    ep = clients.endpoint.create_endpoint(
        parent=PARENT, endpoint=Endpoint(display_name="logs")
    ).result(timeout=30)
    ep.predict_request_response_logging_config = PredictRequestResponseLoggingConfig(
        enabled=True, sampling_rate=1.5
    )
    mask = field_mask_pb2.FieldMask(paths=["predict_request_response_logging_config"])
    with pytest.raises(BadRequest, match="sampling_rate must be within"):
        clients.endpoint.update_endpoint(endpoint=ep, update_mask=mask)


@pytest.mark.timeout(600)
def test_the_production_config_applies_on_the_emulator(emulator, storage_client) -> None:  # type: ignore[no-untyped-def]
    config = Path(__file__).resolve().parents[2] / "configs" / "mnist-production.yaml"
    # The config names the example's models and batch input: make them as the quickstart does
    # (reused when present), so the test does not depend on which test ran before it.
    train_mnist.ensure_models()
    make_batch_inputs.write_inputs()
    out = " ".join(run_cli(["apply", str(config), "--yes"], emulator.url).output.split())
    assert "Apply complete" in out
    assert out.count("not simulated locally") == 1
    run_cli(["plan", str(config), "--detailed-exitcode"], emulator.url, expect=0)
