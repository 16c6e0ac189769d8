"""The one JSON codec of plan actions is lossless for every action kind, and strict on input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deployer.providers.fake import FakeProvider
from deployer.reconcile.actions import (
    PAYLOADS,
    Action,
    ActionKind,
    CodecError,
    CreateBucket,
    CreateEndpoint,
    CreateVersion,
    DeleteEndpoint,
    DeleteModel,
    DeleteVersion,
    Deploy,
    MergeAliases,
    MutateDeployment,
    Payload,
    Resource,
    Rollout,
    SetTraffic,
    Undeploy,
    UpdateEndpoint,
    UpdateModel,
    UpdateVersion,
    UploadArtifact,
    VersionRef,
    action_from_json,
    action_to_json,
)
from deployer.reconcile.apply import make_plan
from deployer.reconcile.plan import plan_teardown
from deployer.spec import OnFailure, RolloutPolicy, SmokeCheck
from tests.unit.test_apply import FAST, make_spec

LABELS = (("deployer-stack", "st"), ("team", "ml"))
NEW = VersionRef("mnist", "st-mnist-abc123", "0123456789ab", None)
OLD = VersionRef("mnist", "st-mnist-abc123", "ba9876543210", "3")

# One sample per payload class, every optional field set away from its default somewhere.
SAMPLES: list[Payload] = [
    CreateBucket("bkt", "US-CENTRAL1", LABELS),
    UploadArtifact("mnist", "v2", "/m/0002", "f" * 64, "bkt", "artifacts/st/mnist/ffff/"),
    CreateVersion(NEW, True, "MNIST", "cnn", "gs://b/a/", "img:1", LABELS, ("default", "v2"), "d"),
    CreateVersion(NEW, False, "MNIST", "", "gs://b/a/", "img:1", (), ()),
    UpdateVersion(OLD, "new words", LABELS),
    UpdateModel("st-mnist-abc123", "MNIST digits", "a classifier"),
    MergeAliases(OLD, ("v1",), ("v2", "old")),
    CreateEndpoint("ep", "st-ep-123abc", "Endpoint", "serves digits", LABELS),
    UpdateEndpoint("st-ep-123abc", "Endpoint", "", LABELS),
    Deploy(
        "st-ep-123abc",
        "1234567890",
        NEW,
        "mnist@v2",
        "n1-standard-4",
        "NVIDIA_TESLA_T4",
        1,
        1,
        3,
        (("0", 10), ("1111111111", 90)),
    ),
    Deploy("st-ep-123abc", "1234567891", OLD, "mnist@v1", "n1-standard-2", None, 0, 1, 1, ()),
    MutateDeployment("st-ep-123abc", "1234567890", 2, 5),
    SetTraffic("st-ep-123abc", (("1234567890", 50), ("1234567891", 50))),
    Rollout(
        "ep",
        "st-ep-123abc",
        "1234567891",
        (("1234567890", "mnist@v1"), ("1234567891", "mnist@v2")),
        (("1234567891", 100),),
        RolloutPolicy(
            steps=(10, 50, 100),
            wait_seconds=1.5,
            requests=None,
            smoke=SmokeCheck("/specs/smoke.jsonl", 0.01),
            agreement=None,
            max_error_rate=0.01,
            max_p99_ms=250,
            on_failure=OnFailure.HOLD,
        ),
    ),
    Undeploy("st-ep-123abc", "1234567891", ()),
    DeleteEndpoint("st-ep-123abc"),
    DeleteVersion(OLD),
    DeleteModel("st-mnist-abc123"),
]


def _roundtrip(action: Action) -> Action:
    return action_from_json(json.loads(json.dumps(action_to_json(action))))


def test_every_action_kind_has_a_sample() -> None:
    assert {type(p).__name__ for p in SAMPLES} == set(PAYLOADS)


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_every_action_kind_survives_a_json_round_trip(payload: Payload) -> None:
    for kind in ActionKind:
        action = Action(kind, Resource.DEPLOYMENT, "endpoint ep / mnist@v2", "why", payload)
        back = _roundtrip(action)
        assert back == action
        assert type(back.payload) is type(payload)
        # Tuples come back as tuples (frozen, hashable), never lists.
        assert hash(back) == hash(action)


def test_a_planned_stack_round_trips_whole(tmp_path: Path) -> None:
    fake = FakeProvider()
    plan, _, _ = make_plan(make_spec(tmp_path, (90, 10), n_endpoints=2), fake)
    kinds = {type(a.payload).__name__ for a in plan.actions}
    assert {"CreateBucket", "UploadArtifact", "CreateVersion", "Deploy", "SetTraffic"} <= kinds
    assert tuple(_roundtrip(a) for a in plan.actions) == plan.actions

    from deployer.reconcile.apply import apply_spec

    apply_spec(make_spec(tmp_path, (90, 10), n_endpoints=2), fake, options=FAST)
    down = plan_teardown(fake.observe("st", "bkt"))
    assert tuple(_roundtrip(a) for a in down.actions) == down.actions


def _doc(**payload_changes: Any) -> dict[str, Any]:
    doc = action_to_json(
        Action(ActionKind.UPDATE, Resource.DEPLOYMENT, "a", "r", SAMPLES[11])  # MutateDeployment
    )
    doc["payload"].update(payload_changes)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(min_replicas="2"), "payload.min_replicas: expected int"),
        (_doc(min_replicas=True), "payload.min_replicas: expected int"),
        (_doc(max_replicas=2.0), "payload.max_replicas: expected int"),
        (_doc(surprise=1), "unknown field surprise"),
        ({**_doc(), "type": "RunShell"}, "unknown action type 'RunShell'"),
        ({**_doc(), "kind": "explode"}, "action.kind: 'explode' is not one of"),
        ({k: v for k, v in _doc().items() if k != "payload"}, "missing payload"),
    ],
)
def test_decoding_refuses_what_it_would_have_to_guess(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(CodecError, match=message.replace("(", r"\(")):
        action_from_json(doc)


def test_nested_fields_are_named_by_path() -> None:
    doc = action_to_json(Action(ActionKind.DELETE, Resource.MODEL_VERSION, "a", "r", SAMPLES[-2]))
    doc["payload"]["version"]["version_id"] = 3
    with pytest.raises(CodecError, match=r"action\.payload\.version\.version_id: expected str"):
        action_from_json(doc)
    doc = action_to_json(Action(ActionKind.UPDATE, Resource.TRAFFIC, "a", "r", SAMPLES[12]))
    doc["payload"]["traffic"][1] = ["1234567891", 50, 1]
    with pytest.raises(CodecError, match=r"traffic\[1\]: expected 2 items, got 3"):
        action_from_json(doc)
