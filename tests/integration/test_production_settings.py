"""Production settings (issue 16) sent as Vertex documents them, against the emulator.

apply a stack with a service account, autoscaling target, access logging, Private Service
Connect, CMEK and request/response logging; read the endpoint back through the official
GAPIC client (the fields are what DeployModel's DeployedModel and CreateEndpoint's Endpoint
carried); plan again: no changes; change the autoscaling target: one mutateDeployedModel.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.stacks import StackFiles, run_cli

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
    run_cli(["apply", spec, "--yes"], emulator.url)

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

    # (The logging patch, UpdateEndpointLogging, is covered on the fake in
    # tests/unit/test_apply_production.py: this emulator's updateEndpoint does not accept the
    # predict_request_response_logging_config mask yet; deployer/emulator/vertex is owned by
    # the `vertexwire` branch.)
    run_cli(["plan", spec, "--detailed-exitcode"], emulator.url, expect=0)
