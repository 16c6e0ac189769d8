"""plan is pure: desired spec + observed state in, ordered actions out. No server here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deployer.errors import ConfigError
from deployer.reconcile.plan import (
    ActionKind,
    CreateBucket,
    CreateEndpoint,
    CreateVersion,
    DeleteEndpoint,
    DeleteModel,
    Deploy,
    MergeAliases,
    PlanInputs,
    Resource,
    SetTraffic,
    Undeploy,
    UpdateModel,
    UploadArtifact,
    plan_stack,
    plan_teardown,
    version_spec_hash,
)
from deployer.spec import Bucket, Deployment, Endpoint, Model, ModelVersion, Spec, Target
from deployer.spec.model import Container
from deployer.state import (
    LABEL_NAME,
    LABEL_SPEC,
    LABEL_STACK,
    ObservedBucket,
    ObservedDeployment,
    ObservedEndpoint,
    ObservedModel,
    ObservedVersion,
    StackState,
    deployed_model_id,
    endpoint_id,
    model_id,
)

IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"


def make_spec(
    traffic: tuple[int, int] = (100, 0),
    *,
    two_versions: bool = True,
    endpoints: bool = True,
    bucket_create: bool = True,
) -> Spec:
    versions = [ModelVersion("v1", "/art/v1", IMAGE)]
    if two_versions:
        versions.append(ModelVersion("v2", "/art/v2", IMAGE))
    deps = [Deployment("mnist", "v1", traffic[0], "n1-standard-4", 1, 2)]
    if two_versions and traffic[1]:
        deps.append(Deployment("mnist", "v2", traffic[1], "n1-standard-4", 1, 2))
    eps = (Endpoint("ep", tuple(deps), "ep"),) if endpoints else ()
    return Spec(
        "st",
        "p",
        "us-central1",
        Target.LOCAL,
        Bucket("b", "US", bucket_create),
        (Model("mnist", tuple(versions), "mnist"),),
        eps,
    )


HASHES = {("mnist", "v1"): "a" * 64, ("mnist", "v2"): "b" * 64}
INPUTS = PlanInputs(HASHES)


def empty_state() -> StackState:
    return StackState("st", ObservedBucket("b", True))


def observed_version(vid: str, art: str, aliases: tuple[str, ...]) -> ObservedVersion:
    labels = (
        (LABEL_NAME, "mnist"),
        (LABEL_SPEC, version_spec_hash(art, IMAGE)),
        (LABEL_STACK, "st"),
        ("deployer-hash", art),
        ("deployer-alias", "x"),
    )
    return ObservedVersion(
        f"projects/p/locations/r/models/{model_id('st', 'mnist')}",
        vid,
        aliases,
        tuple(sorted(labels)),
        "gs://b/x",
        IMAGE,
    )


def applied_state(spec: Spec) -> StackState:
    """What the cloud looks like after `spec` was applied (built by hand, not by apply)."""
    mid = model_id("st", "mnist")
    versions = (
        observed_version("1", "a" * 64, ("v1",)),
        observed_version("2", "b" * 64, ("default", "v2")),
    )
    model = ObservedModel("mnist", mid, f"projects/p/locations/r/models/{mid}", versions)
    eps = []
    for ep in spec.endpoints:
        deps, traffic = [], []
        for d in ep.deployments:
            sh = version_spec_hash(HASHES[(d.model, d.version)], IMAGE)
            did = deployed_model_id("st", ep.name, f"{d.ref}:{sh}:{d.machine_type}:none")
            deps.append(
                ObservedDeployment(
                    did,
                    model.resource,
                    "1" if d.version == "v1" else "2",
                    d.ref,
                    d.machine_type,
                    None,
                    0,
                    d.min_replicas,
                    d.max_replicas,
                )
            )
            traffic.append((did, d.traffic))
        from deployer.reconcile.plan import _endpoint_spec_hash

        labels = ((LABEL_NAME, ep.name), (LABEL_SPEC, _endpoint_spec_hash(ep)), (LABEL_STACK, "st"))
        eid = endpoint_id("st", ep.name)
        eps.append(
            ObservedEndpoint(
                ep.name,
                eid,
                f"projects/p/locations/r/endpoints/{eid}",
                labels,
                ep.display_name,
                "",
                tuple(deps),
                tuple(sorted(traffic)),
            )
        )
    return StackState("st", ObservedBucket("b", True), (model,), tuple(eps))


def kinds(plan) -> list[tuple[str, str]]:
    return [(a.kind.value, a.resource.value) for a in plan.actions]


def test_empty_cloud_plans_everything_in_dependency_order() -> None:
    plan = plan_stack(make_spec(), StackState("st", ObservedBucket("b", False)), INPUTS)
    order = [a.resource for a in plan.actions]
    assert order[0] is Resource.BUCKET
    assert isinstance(plan.actions[0].payload, CreateBucket)
    assert [type(a.payload) for a in plan.actions[1:]] == [
        UploadArtifact,
        UploadArtifact,
        CreateVersion,
        CreateVersion,
        CreateEndpoint,
        Deploy,
    ]
    first, second = [a.payload for a in plan.actions if isinstance(a.payload, CreateVersion)]
    assert not first.parent_exists and second.parent_exists
    # No version holds an alias yet, so each create carries its own; the last version in
    # the spec is the default.
    assert first.aliases == ("v1",)
    assert second.aliases == ("default", "v2")


def test_two_aliases_of_one_artifact_ride_on_one_create_with_the_default() -> None:
    same = PlanInputs({("mnist", "v1"): "a" * 64, ("mnist", "v2"): "a" * 64})
    plan = plan_stack(make_spec(), empty_state(), same)
    creates = [a.payload for a in plan.actions if isinstance(a.payload, CreateVersion)]
    assert len(creates) == 1 and creates[0].aliases == ("default", "v1", "v2")
    assert not [a for a in plan.actions if isinstance(a.payload, MergeAliases)]


def test_a_new_version_does_not_carry_an_alias_another_version_holds() -> None:
    spec = make_spec()
    state = applied_state(spec)
    plan = plan_stack(spec, state, PlanInputs({**HASHES, ("mnist", "v2"): "c" * 64}))
    create = next(a.payload for a in plan.actions if isinstance(a.payload, CreateVersion))
    assert create.aliases == ("default",)  # v2 is still held by the old version
    merges = [a.payload for a in plan.actions if isinstance(a.payload, MergeAliases)]
    assert [(m.remove, m.add) for m in merges] == [(("v2",), ()), ((), ("v2",))]


def test_model_level_fields_are_planned_only_when_observed_and_different() -> None:
    spec = make_spec()
    state = applied_state(spec)
    assert plan_stack(spec, state, INPUTS).is_empty  # not read by the provider: no opinion
    model = replace(state.models[0], display_name="mnist", description="")
    assert plan_stack(spec, replace(state, models=(model,)), INPUTS).is_empty
    stale = replace(model, description="old words")
    plan = plan_stack(spec, replace(state, models=(stale,)), INPUTS)
    assert [(a.kind, a.resource, a.reason) for a in plan.actions] == [
        (ActionKind.UPDATE, Resource.MODEL, "description changed")
    ]
    assert plan.actions[0].payload == UpdateModel(model.model_id, "mnist", "")
    creates = plan_stack(
        replace(spec, models=(replace(spec.models[0], description="d"),)), empty_state(), INPUTS
    ).actions
    assert {
        a.payload.model_description for a in creates if isinstance(a.payload, CreateVersion)
    } == {"d"}


def test_applied_spec_plans_nothing() -> None:
    spec = make_spec()
    assert plan_stack(spec, applied_state(spec), INPUTS).is_empty


def test_plan_is_deterministic() -> None:
    spec = make_spec()
    state = StackState("st", ObservedBucket("b", False))
    assert plan_stack(spec, state, INPUTS) == plan_stack(spec, state, INPUTS)


def test_changed_artifact_creates_one_new_version_and_replaces_its_deployment() -> None:
    spec = make_spec()
    state = applied_state(spec)
    inputs = PlanInputs({**HASHES, ("mnist", "v1"): "c" * 64})
    plan = plan_stack(spec, state, inputs)
    creates = [a for a in plan.actions if isinstance(a.payload, CreateVersion)]
    assert len(creates) == 1 and creates[0].kind is ActionKind.REPLACE
    assert creates[0].payload.parent_exists
    types = [type(a.payload) for a in plan.actions]
    # new version, alias moved off the old one then onto the new one, deploy new,
    # shift traffic, undeploy old, delete the old version: in that order.
    assert types.index(Deploy) < types.index(SetTraffic) < types.index(Undeploy)
    assert plan.actions[-1].resource is Resource.MODEL_VERSION
    assert plan.actions[-1].kind is ActionKind.DELETE
    merges = [a.payload for a in plan.actions if isinstance(a.payload, MergeAliases)]
    assert merges[0].remove == ("v1",) and merges[1].add == ("v1",)


def test_a_changed_container_setting_creates_a_new_version_carrying_the_container() -> None:
    spec = make_spec()
    state = applied_state(spec)
    (model,) = spec.models
    routed = replace(
        model.versions[0], container=Container(image=IMAGE, predict_route="/v2/predict")
    )
    spec = replace(spec, models=(replace(model, versions=(routed, model.versions[1])),))
    plan = plan_stack(spec, state, INPUTS)
    creates = [a.payload for a in plan.actions if isinstance(a.payload, CreateVersion)]
    assert len(creates) == 1 and creates[0].artifact_uri.endswith("/" + "a" * 64 + "/")
    assert creates[0].container == routed.container


def test_new_traffic_split_deploys_then_shifts_without_undeploying() -> None:
    before = make_spec((100, 0))
    after = make_spec((90, 10))
    plan = plan_stack(after, applied_state(before), INPUTS)
    assert kinds(plan) == [("create", "deployment"), ("update", "traffic")]
    deploy = plan.actions[0].payload
    assert isinstance(deploy, Deploy) and dict(deploy.traffic)["0"] == 0
    assert sorted(v for _, v in plan.actions[1].payload.traffic) == [10, 90]


def test_shifting_existing_split_is_one_traffic_update() -> None:
    plan = plan_stack(make_spec((50, 50)), applied_state(make_spec((90, 10))), INPUTS)
    assert kinds(plan) == [("update", "traffic")]


def test_the_traffic_reason_names_model_versions_not_deployed_model_ids() -> None:
    plan = plan_stack(make_spec((50, 50)), applied_state(make_spec((90, 10))), INPUTS)
    reason = plan.actions[0].reason
    assert reason.startswith("split ") and " -> " in reason
    before, after = reason[len("split ") :].split(" -> ")
    assert sorted(before.split(", ")) == ["mnist@v1=90", "mnist@v2=10"]
    assert sorted(after.split(", ")) == ["mnist@v1=50", "mnist@v2=50"]


def test_dropping_a_deployment_moves_traffic_before_undeploying() -> None:
    plan = plan_stack(make_spec((100, 0)), applied_state(make_spec((90, 10))), INPUTS)
    assert kinds(plan) == [("update", "traffic"), ("delete", "deployment")]
    assert plan.actions[1].payload.traffic == ()


def test_replica_change_is_an_in_place_update() -> None:
    spec = make_spec()
    new = replace(
        spec,
        endpoints=(
            replace(
                spec.endpoints[0],
                deployments=(replace(spec.endpoints[0].deployments[0], max_replicas=5),),
            ),
        ),
    )
    plan = plan_stack(new, applied_state(spec), INPUTS)
    assert kinds(plan) == [("update", "deployment")]


def test_removed_endpoint_is_drained_then_deleted_and_removed_model_deleted_last() -> None:
    state = applied_state(make_spec((90, 10)))
    spec = replace(make_spec(), endpoints=(), models=())
    plan = plan_stack(spec, state, INPUTS)
    assert [type(a.payload) for a in plan.actions] == [
        Undeploy,
        Undeploy,
        DeleteEndpoint,
        DeleteModel,
    ]
    first, second = plan.actions[0].payload, plan.actions[1].payload
    assert first.traffic == ((second.deployed_id, 100),)  # zero-traffic-first, heir gets 100
    assert second.traffic == ()


def test_teardown_plan_ignores_the_spec() -> None:
    plan = plan_teardown(applied_state(make_spec((90, 10))))
    assert [a.kind for a in plan.actions] == [ActionKind.DELETE] * 4


def test_missing_bucket_that_must_exist_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        plan_stack(
            make_spec(bucket_create=False), StackState("st", ObservedBucket("b", False)), INPUTS
        )


def test_two_aliases_on_identical_artifacts_share_one_version() -> None:
    spec = make_spec(endpoints=False)
    inputs = PlanInputs({("mnist", "v1"): "a" * 64, ("mnist", "v2"): "a" * 64})
    plan = plan_stack(spec, empty_state(), inputs)
    assert sum(isinstance(a.payload, CreateVersion) for a in plan.actions) == 1
    assert sum(isinstance(a.payload, UploadArtifact) for a in plan.actions) == 1


def test_expiry_is_stamped_on_creates() -> None:
    plan = plan_stack(
        make_spec(),
        StackState("st", ObservedBucket("b", False)),
        PlanInputs(HASHES, expires_at=1234),
    )
    labelled = [a.payload for a in plan.actions if hasattr(a.payload, "labels")]
    assert labelled and all(dict(p.labels)["deployer-expires"] == "1234" for p in labelled)


def test_ids_follow_vertex_rules() -> None:
    import re

    assert re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", model_id("st", "My Model"))
    eid = endpoint_id("a" * 40, "b" * 40)
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,61}[a-z0-9]", eid)
    assert endpoint_id("a-b", "c") != endpoint_id("a", "b-c")
    did = deployed_model_id("st", "ep", "x")
    assert re.fullmatch(r"[1-9][0-9]{9}", did)
