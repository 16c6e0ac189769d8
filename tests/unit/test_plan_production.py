"""Plan: the right action for each production setting (issue 16), one test per setting.

In place where Vertex allows it (mutateDeployedModel for autoscaling targets and the
container-logging switch, an endpoint patch for request/response logging); a zero-downtime
replacement (deploy new, shift traffic, undeploy old) for what a deployed model cannot
change; a refusal naming the field for what only endpoint creation sets; never a no-op.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from deployer.errors import ConfigError
from deployer.reconcile.plan import (
    ActionKind,
    CreateEndpoint,
    CreateVersion,
    Deploy,
    MutateDeployment,
    Resource,
    SetTraffic,
    Undeploy,
    UpdateEndpointLogging,
    _deployment_identity,
    deployed_model_id,
    plan_stack,
    version_spec_hash,
)
from deployer.spec import Spec
from deployer.spec.production_model import (
    AutoscalingMetric,
    AutoscalingMetricSpec,
    DeployedModelSettings,
    EndpointSettings,
    PrivateServiceConnectConfig,
    RequestResponseLogging,
)
from deployer.state import StackState
from tests.unit.test_plan import HASHES, IMAGE, INPUTS, applied_state, empty_state, kinds, make_spec

CPU = AutoscalingMetric.CPU_UTILIZATION.value
KEY = "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"
LOGGING = RequestResponseLogging(True, 0.1, "bq://acme-ml-prod.logs.requests")
DEPLOYED = DeployedModelSettings(
    service_account="sa@acme-ml-prod.iam.gserviceaccount.com",
    autoscaling_metric_specs=(AutoscalingMetricSpec(CPU, 70),),
    enable_access_logging=True,
    deploy_timeout_seconds=1800,
)
ENDPOINT = EndpointSettings(
    private_service_connect_config=PrivateServiceConnectConfig(True, ("acme-ml-prod",)),
    kms_key_name=KEY,
    predict_request_response_logging_config=LOGGING,
)


def production_spec(
    deployed: DeployedModelSettings = DEPLOYED, endpoint: EndpointSettings = ENDPOINT
) -> Spec:
    spec = make_spec()
    ep = spec.endpoints[0]
    dep = replace(ep.deployments[0], max_replicas=4, settings=deployed)
    return replace(spec, endpoints=(replace(ep, deployments=(dep,), settings=endpoint),))


def applied(spec: Spec) -> StackState:
    """The cloud after `spec` was applied, with the settings read back as a provider does."""
    state = applied_state(spec)
    eps = []
    for ep, obs in zip(spec.endpoints, state.endpoints, strict=True):
        deps, traffic = [], []
        for d, o in zip(ep.deployments, obs.deployments, strict=True):
            sh = version_spec_hash(HASHES[(d.model, d.version)], IMAGE)
            did = deployed_model_id("st", ep.name, _deployment_identity(d, sh))
            deps.append(replace(o, id=did, settings=d.settings.mutable))
            traffic.append((did, d.traffic))
        eps.append(
            replace(
                obs,
                deployments=tuple(deps),
                traffic=tuple(sorted(traffic)),
                fixed_settings=ep.settings.fixed,
                logging=ep.settings.logging,
            )
        )
    return replace(state, endpoints=tuple(eps))


def with_deployed(**changes: Any) -> Spec:
    return production_spec(deployed=replace(DEPLOYED, **changes))


def with_endpoint(**changes: Any) -> Spec:
    return production_spec(endpoint=replace(ENDPOINT, **changes))


def test_an_applied_production_spec_plans_nothing() -> None:
    spec = production_spec()
    assert plan_stack(spec, applied(spec), INPUTS).actions == ()


def test_new_endpoint_and_deployment_carry_their_settings() -> None:
    spec = production_spec()
    plan = plan_stack(spec, empty_state(), INPUTS)
    create = next(a.payload for a in plan.actions if isinstance(a.payload, CreateEndpoint))
    assert create.settings == ENDPOINT
    deploy = next(a.payload for a in plan.actions if isinstance(a.payload, Deploy))
    assert deploy.settings == DEPLOYED


def test_autoscaling_target_change_is_a_mutation_in_place() -> None:
    before = production_spec()
    after = with_deployed(autoscaling_metric_specs=(AutoscalingMetricSpec(CPU, 50),))
    plan = plan_stack(after, applied(before), INPUTS)
    assert kinds(plan) == [("update", "deployment")]
    mutate = plan.actions[0].payload
    assert (
        isinstance(mutate, MutateDeployment)
        and mutate.settings == after.endpoints[0].deployments[0].settings
    )
    assert f"{CPU}=70 -> {CPU}=50" in plan.actions[0].reason


def test_removing_autoscaling_targets_is_a_mutation_too() -> None:
    plan = plan_stack(
        with_deployed(autoscaling_metric_specs=()), applied(production_spec()), INPUTS
    )
    assert kinds(plan) == [("update", "deployment")]
    assert (
        "autoscaling_metric_specs" in plan.actions[0].reason
        and "-> unset" in plan.actions[0].reason
    )


def test_container_logging_switch_is_a_mutation_in_place() -> None:
    plan = plan_stack(
        with_deployed(disable_container_logging=True), applied(production_spec()), INPUTS
    )
    assert kinds(plan) == [("update", "deployment")]
    mutate = plan.actions[0].payload
    assert isinstance(mutate, MutateDeployment) and mutate.settings is not None
    assert mutate.settings.disable_container_logging
    assert "disable_container_logging false -> true" in plan.actions[0].reason


def test_replicas_only_mutation_sends_no_settings() -> None:
    before = production_spec()
    ep = before.endpoints[0]
    after = replace(
        before,
        endpoints=(replace(ep, deployments=(replace(ep.deployments[0], max_replicas=6),)),),
    )
    plan = plan_stack(after, applied(before), INPUTS)
    mutate = plan.actions[0].payload
    assert isinstance(mutate, MutateDeployment) and mutate.settings is None
    assert plan.actions[0].reason == "replicas 1-4 -> 1-6"


def test_unread_settings_are_not_compared() -> None:
    # A provider that does not read the settings back (None) must not cause mutations.
    spec = production_spec()
    state = applied(spec)
    ep = state.endpoints[0]
    blind = replace(
        ep,
        deployments=tuple(replace(d, settings=None) for d in ep.deployments),
        fixed_settings=None,
        logging=None,
    )
    assert plan_stack(spec, replace(state, endpoints=(blind,)), INPUTS).actions == ()


@pytest.mark.parametrize(
    "change",
    [
        {"service_account": "other@acme-ml-prod.iam.gserviceaccount.com"},
        {"spot": True},
        {"enable_access_logging": False},
        {"shared_resources": "pool-a", "autoscaling_metric_specs": ()},
    ],
    ids=lambda c: next(iter(c)),
)
def test_replace_only_settings_are_a_zero_downtime_replacement(change: dict[str, Any]) -> None:
    plan = plan_stack(with_deployed(**change), applied(production_spec()), INPUTS)
    assert kinds(plan) == [
        ("replace", "deployment"),
        ("update", "traffic"),
        ("delete", "deployment"),
    ]
    deploy, shift, undeploy = (a.payload for a in plan.actions)
    assert (
        isinstance(deploy, Deploy)
        and isinstance(shift, SetTraffic)
        and isinstance(undeploy, Undeploy)
    )
    # The new deployment starts with no traffic, takes all of it, then the old one goes.
    assert dict(deploy.traffic)["0"] == 0
    assert shift.traffic == ((deploy.deployed_id, 100),)
    assert undeploy.deployed_id != deploy.deployed_id and undeploy.traffic == ()
    assert "replace-only setting" in plan.actions[0].reason


def test_deploy_timeout_changes_nothing_in_the_cloud() -> None:
    # deploy_timeout is how long apply waits: not a Vertex field, so no action (by design).
    plan = plan_stack(with_deployed(deploy_timeout_seconds=600), applied(production_spec()), INPUTS)
    assert plan.actions == ()


def test_request_response_logging_change_is_an_endpoint_patch() -> None:
    new = RequestResponseLogging(True, 0.5, "bq://acme-ml-prod.logs.requests")
    plan = plan_stack(
        with_endpoint(predict_request_response_logging_config=new),
        applied(production_spec()),
        INPUTS,
    )
    assert kinds(plan) == [("update", "endpoint")]
    patch = plan.actions[0].payload
    assert isinstance(patch, UpdateEndpointLogging) and patch.config == new
    assert "0.1:bq://" in plan.actions[0].reason and "0.5:bq://" in plan.actions[0].reason


def test_turning_logging_off_patches_it_off() -> None:
    plan = plan_stack(
        with_endpoint(predict_request_response_logging_config=None),
        applied(production_spec()),
        INPUTS,
    )
    patch = plan.actions[0].payload
    assert isinstance(patch, UpdateEndpointLogging) and patch.config is None
    assert plan.actions[0].reason.endswith("-> off")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {"network": "projects/123/global/networks/vpc", "private_service_connect_config": None},
            "network",
        ),
        (
            {
                "private_service_connect_config": PrivateServiceConnectConfig(
                    True, ("acme-ml-prod", "other-proj")
                )
            },
            "private_service_connect",
        ),
        ({"kms_key_name": KEY.replace("/k", "/k2")}, "kms_key_name"),
        ({"dedicated_endpoint_enabled": True}, "dedicated_endpoint_enabled"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_create_only_endpoint_settings_are_refused_by_name(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        plan_stack(with_endpoint(**change), applied(production_spec()), INPUTS)
    assert field in str(info.value) and "can only be set when Vertex creates an endpoint" in str(
        info.value
    )
    assert "new name" in (info.value.hint or "")


def test_model_encryption_key_change_uploads_a_new_version() -> None:
    spec = make_spec()
    keyed = replace(spec, models=(replace(spec.models[0], kms_key_name=KEY),))
    plan = plan_stack(keyed, applied_state(spec), INPUTS)
    creates = [a for a in plan.actions if isinstance(a.payload, CreateVersion)]
    assert [c.payload.kms_key_name for c in creates] == [KEY, KEY]
    assert all(c.kind is ActionKind.REPLACE for c in creates)
    assert creates[0].reason == "artifact, container or encryption key changed"
    assert any(
        a.resource is Resource.DEPLOYMENT and a.kind is ActionKind.REPLACE for a in plan.actions
    )
