"""apply with production settings on the fake: each request carries the settings as given,
and each change goes through the call the plan chose (issue 16)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from deployer.providers.fake import FakeProvider
from deployer.reconcile.apply import apply_spec
from deployer.reconcile.simulated import not_simulated_locally
from deployer.spec import Spec, Target
from deployer.spec.production_model import (
    AutoscalingMetric,
    AutoscalingMetricSpec,
    DeployedModelSettings,
    EndpointSettings,
    PrivateServiceConnectConfig,
    RequestResponseLogging,
)
from tests.unit.test_apply import FAST, make_spec

CPU = AutoscalingMetric.CPU_UTILIZATION.value
KEY = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"
DEPLOYED = DeployedModelSettings(
    service_account="sa@p-project.iam.gserviceaccount.com",
    autoscaling_metric_specs=(AutoscalingMetricSpec(CPU, 70),),
    enable_access_logging=True,
)
ENDPOINT = EndpointSettings(
    private_service_connect_config=PrivateServiceConnectConfig(True, ("p-project",)),
    kms_key_name=KEY,
    predict_request_response_logging_config=RequestResponseLogging(True, 0.1, "bq://p-project.l"),
)


def _spec(
    tmp_path: Path,
    deployed: DeployedModelSettings = DEPLOYED,
    endpoint: EndpointSettings = ENDPOINT,
) -> Spec:
    spec = make_spec(tmp_path)
    ep = spec.endpoints[0]
    dep = replace(ep.deployments[0], max_replicas=3, settings=deployed)
    model = replace(spec.models[0], kms_key_name=KEY)
    return replace(
        spec,
        models=(model,),
        endpoints=(replace(ep, deployments=(dep,), settings=endpoint),),
    )


def _vertex_calls(fake: FakeProvider) -> list[str]:
    # Every apply also writes and deletes its lock object: only the Vertex calls here.
    return [m for m in fake.mutating_calls if not m.endswith("_object")]


def _args(fake: FakeProvider, method: str) -> list[dict[str, object]]:
    return [args for m, args in fake.calls if m == method]


def test_requests_carry_the_settings_and_a_second_apply_changes_nothing(tmp_path: Path) -> None:
    fake = FakeProvider()
    apply_spec(_spec(tmp_path), fake, options=FAST)
    [create] = _args(fake, "create_endpoint")
    assert create["settings"] == ENDPOINT
    [deploy] = _args(fake, "deploy")
    assert deploy["settings"] == DEPLOYED
    assert {a["kms_key_name"] for a in _args(fake, "upload_version")} == {KEY}
    fake.calls.clear()
    assert apply_spec(_spec(tmp_path), fake, options=FAST).plan.is_empty
    assert fake.mutating_calls == []


def test_autoscaling_change_is_one_mutation_and_logging_one_patch(tmp_path: Path) -> None:
    fake = FakeProvider()
    apply_spec(_spec(tmp_path), fake, options=FAST)
    fake.calls.clear()
    scaled = replace(DEPLOYED, autoscaling_metric_specs=(AutoscalingMetricSpec(CPU, 40),))
    logging = RequestResponseLogging(True, 0.5, "bq://p-project.l")
    endpoint = replace(ENDPOINT, predict_request_response_logging_config=logging)
    apply_spec(_spec(tmp_path, scaled, endpoint), fake, options=FAST)
    assert sorted(_vertex_calls(fake)) == ["mutate_deployment", "update_endpoint_logging"]
    [mutate] = _args(fake, "mutate_deployment")
    assert mutate["settings"] == scaled
    [patch] = _args(fake, "update_endpoint_logging")
    assert patch["config"] == logging
    fake.calls.clear()
    assert apply_spec(_spec(tmp_path, scaled, endpoint), fake, options=FAST).plan.is_empty


def test_a_new_service_account_replaces_the_deployment_without_downtime(tmp_path: Path) -> None:
    fake = FakeProvider()
    apply_spec(_spec(tmp_path), fake, options=FAST)
    fake.calls.clear()
    moved = replace(DEPLOYED, service_account="new@p-project.iam.gserviceaccount.com")
    apply_spec(_spec(tmp_path, moved), fake, options=FAST)
    assert _vertex_calls(fake) == ["deploy", "set_traffic", "undeploy"]
    [ep] = fake.endpoints.values()
    [(did, req)] = ep.deployed.items()
    assert req.settings.service_account == moved.service_account and ep.traffic == {did: 100}


def test_local_gaps_are_named_once_each_and_only_on_target_local(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    gaps = not_simulated_locally(spec)
    # Autoscaling targets and request/response logging are acted on locally (the emulator
    # scales replicas and writes sampled rows to a local table file): not named.
    assert gaps == [
        "customer-managed encryption keys (model mnist, endpoint ep0)",
        "private networking (endpoint ep0)",
        "service accounts (ep0/mnist@v1)",
        "Cloud Logging switches (ep0/mnist@v1)",
    ]
    assert not_simulated_locally(replace(spec, target=Target.VERTEX)) == []
    assert not_simulated_locally(make_spec(tmp_path)) == []
