"""One contract, two providers: every scenario runs against FakeProvider and VertexProvider.

The fake (deployer/providers/fake.py) is what the unit tests of apply, teardown, reap and
batch-predict trust; VertexProvider on the emulator (official clients over real HTTP) is what
users run. Each shared scenario below states the behaviour once and runs on both (ids
`fake` and `vertex`), so the fake cannot drift from the service unnoticed: storage
(buckets, objects, generation preconditions, downloads), the registry (versions, aliases,
model-level fields), endpoints (create, deploy, traffic, mutate, predict, undeploy,
delete), batch jobs (create, get, find by label, cancel, delete), operations, observation by
label, error mapping (NotFound, AlreadyExists, FailedPrecondition), and what a refused call
(TransientError, no effect) and a lost response (ResponseLost, took effect) mean.

Vertex's rules that the fake deliberately does not re-implement (traffic sums, what may not
be undeployed or deleted while in use, job state rules) are checked here on the real
service only (`vertex_only`), so the suite still says what the fake leaves out.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployer import errors, state
from deployer.providers import (
    DeployRequest,
    JobRequest,
    JobState,
    JobStatus,
    Operation,
    Provider,
    ResourceKind,
    VersionRequest,
)
from deployer.providers.fake import FakeProvider
from deployer.providers.retry import RetryPolicy, poll_until
from deployer.state import DEFAULT_ALIAS, LABEL_NAME, LABEL_STACK
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(600)

IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"
FAST = RetryPolicy(attempts=4, initial_seconds=0.05, max_seconds=0.2)
_names = itertools.count(1)


@dataclass
class Contract:
    """A provider under contract, and what a scenario needs around it."""

    kind: str  # "fake" | "vertex"
    p: Provider
    emulator: EmulatorProcess | None

    def unique(self, stem: str) -> str:
        """A name no other scenario uses (the vertex runs share one emulator)."""
        return f"{stem}-{os.getpid() % 1000}-{next(_names)}"

    def model_id(self) -> str:
        return state.model_id("contract", self.unique("model"))

    def endpoint_id(self) -> str:
        return state.endpoint_id("contract", self.unique("endpoint"))

    def finish(self, op: Operation, timeout: float = 300.0) -> Operation:
        """Poll a long-running operation until it is done; it must not have failed."""
        if not op.done:
            op = poll_until(
                lambda: self.p.get_operation(op.name),
                lambda o: o.done,
                timeout=timeout,
                first=0.05,
                max_interval=0.5,
            )
        assert op.error is None, op.error
        return op

    def fault_next(self, api_method: str, method: str, *, drop: bool = False) -> None:
        """The next call to `method` fails with 503 before any effect, or (drop) takes effect
        and loses its response. `api_method` is the emulator's name for the same call."""
        if self.emulator is None:
            fake: FakeProvider = self.p  # type: ignore[assignment]
            if drop:
                fake.drop_next(method)
            else:
                fake.fail_next(method)
            return
        rule = {"method": api_method, "count": 1, "drop": drop, "http_status": 503}
        self.emulator.admin({"append_script": [rule]})

    def faults_left(self) -> int:
        """Scripted faults not yet played (0 once each hit the call it was meant for)."""
        if self.emulator is None:
            return sum(n for _, n, _ in self.p._faults)  # type: ignore[attr-defined]
        return sum(rule["count"] for rule in self.emulator.admin()["script"])

    @contextmanager
    def jobs_held(self) -> Iterator[None]:
        """Batch jobs created inside stay queued (the emulator's --op-delay); the fake's jobs
        never move on their own."""
        if self.emulator is not None:
            self.emulator.admin({"op_delay": 120})
        try:
            yield
        finally:
            if self.emulator is not None:
                self.emulator.admin({"op_delay": 0})


@pytest.fixture(scope="session")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real SavedModel (4 -> 3 -> 10): the emulator's replicas load it to deploy."""
    from tests.support.savedmodels import make_mnist_like_model

    return make_mnist_like_model(
        tmp_path_factory.mktemp("contract") / "0001", input_shape=(4,), hidden=(3,)
    )


@pytest.fixture(params=["fake", "vertex"])
def contract(request: pytest.FixtureRequest) -> Contract:
    if request.param == "fake":
        return Contract("fake", FakeProvider("contract-project", "us-central1"), None)
    from deployer.providers.clients import resolve_target
    from deployer.providers.vertex import VertexProvider

    emu: EmulatorProcess = request.getfixturevalue("module_emulator")
    target = resolve_target("local", "contract-project", "us-central1", emulator=emu.url)
    return Contract("vertex", VertexProvider(target, policy=FAST), emu)


def vertex_only(c: Contract) -> None:
    if c.kind != "vertex":
        pytest.skip("a Vertex rule the fake does not re-implement (checked on the service)")


# --- helpers ------------------------------------------------------------------------------


def new_bucket(c: Contract, stack: str = "") -> str:
    name = c.unique("contract-bkt")
    labels = ((LABEL_STACK, stack),) if stack else ()
    c.p.create_bucket(name, "US", labels)
    return name


def upload_artifact(c: Contract, bucket: str, saved_model: Path, prefix: str = "m/") -> str:
    files = [
        (str(f), prefix + f.relative_to(saved_model).as_posix()) for f in saved_model.rglob("*")
    ]
    c.p.upload_files(bucket, [(local, name) for local, name in files if Path(local).is_file()])
    return f"gs://{bucket}/{prefix}"


def version_request(
    model_id: str,
    artifact: str,
    *,
    parent_exists: bool = False,
    aliases: tuple[str, ...] = (),
    stack: str = "contract",
) -> VersionRequest:
    return VersionRequest(
        model_id=model_id,
        parent_exists=parent_exists,
        display_name="contract model",
        description=f"version for {aliases}",
        artifact_uri=artifact,
        container_image=IMAGE,
        labels=((LABEL_NAME, "digits"), (LABEL_STACK, stack)),
        aliases=aliases,
        model_description="a model",
    )


def registered(c: Contract, saved_model: Path, *, stack: str = "contract") -> tuple[str, str]:
    """A bucket with the artifact, and a model (one version, alias v1) registered from it."""
    bucket = new_bucket(c)
    artifact = upload_artifact(c, bucket, saved_model)
    mid = c.model_id()
    c.finish(c.p.upload_version(version_request(mid, artifact, aliases=("v1",), stack=stack)))
    return bucket, mid


def deploy_request(endpoint_id: str, model_id: str, deployed_id: str, traffic: dict[str, int]):  # type: ignore[no-untyped-def]
    return DeployRequest(
        endpoint_id=endpoint_id,
        deployed_id=deployed_id,
        model_id=model_id,
        version_id="1",
        display_name=f"{model_id}@v1",
        machine_type="n1-standard-2",
        accelerator_type=None,
        accelerator_count=0,
        min_replicas=1,
        max_replicas=1,
        traffic=tuple(traffic.items()),
    )


def job_request(c: Contract, model_id: str, bucket: str, labels: dict[str, str]) -> JobRequest:
    return JobRequest(
        display_name=c.unique("contract-job"),
        model_version=f"projects/{c.p.project}/locations/{c.p.region}/models/{model_id}@1",
        input_uris=(f"gs://{bucket}/in/part-0.jsonl",),
        input_format="jsonl",
        output_prefix=f"gs://{bucket}/out",
        machine_type="n1-standard-2",
        accelerator_type=None,
        accelerator_count=0,
        starting_replicas=1,
        max_replicas=1,
        batch_size=None,
        labels=tuple(sorted(labels.items())),
    )


# --- storage ------------------------------------------------------------------------------


def test_a_bucket_is_created_once_and_read_back_with_its_labels(contract: Contract) -> None:
    c = contract
    name = new_bucket(c, stack="s1")
    got = c.p.get_bucket(name)
    assert got.exists and dict(got.labels) == {LABEL_STACK: "s1"}
    with pytest.raises(errors.AlreadyExists):
        c.p.create_bucket(name, "US", ())
    assert not c.p.get_bucket(c.unique("contract-missing")).exists
    with pytest.raises(errors.NotFound):
        c.p.delete_bucket(c.unique("contract-missing"))
    c.p.delete_bucket(name)
    assert not c.p.get_bucket(name).exists


def test_objects_keep_bytes_checksums_and_generation_preconditions(
    contract: Contract, tmp_path: Path
) -> None:
    c = contract
    bucket = new_bucket(c)
    # Create-only (the stack lock): a second create-only write fails, the object is unchanged.
    gen = c.p.write_object(bucket, "ctl/lock", b"first", if_generation_match=0)
    with pytest.raises(errors.FailedPrecondition):
        c.p.write_object(bucket, "ctl/lock", b"second", if_generation_match=0)
    assert c.p.read_object(bucket, "ctl/lock") == (b"first", gen)
    with pytest.raises(errors.FailedPrecondition):
        c.p.write_object(bucket, "ctl/lock", b"third", if_generation_match=gen + 1000)
    newer = c.p.write_object(bucket, "ctl/lock", b"fourth", if_generation_match=gen)
    assert newer > gen and c.p.read_object(bucket, "ctl/lock") == (b"fourth", newer)
    with pytest.raises(errors.FailedPrecondition):
        c.p.delete_object(bucket, "ctl/lock", if_generation_match=gen)
    c.p.delete_object(bucket, "ctl/lock", if_generation_match=newer)
    assert c.p.read_object(bucket, "ctl/lock") is None
    with pytest.raises(errors.NotFound):
        c.p.delete_object(bucket, "ctl/lock")

    (tmp_path / "a.bin").write_bytes(b"alpha")
    (tmp_path / "b.bin").write_bytes(b"bravo!")
    sent: list[int] = []
    c.p.upload_files(
        bucket, [(str(tmp_path / "a.bin"), "d/a"), (str(tmp_path / "b.bin"), "d/b")], sent.append
    )
    assert sorted(sent) == [5, 6]
    c.p.copy_objects(bucket, [("d/a", "d/c")])
    listed = c.p.list_objects(bucket, "d/")
    assert sorted(listed) == ["d/a", "d/b", "d/c"]
    assert [listed[n].size for n in ("d/a", "d/b", "d/c")] == [5, 6, 5]
    assert listed["d/a"].md5 == listed["d/c"].md5 != listed["d/b"].md5
    assert c.p.list_objects(bucket, "nothing/") == {}

    c.p.download_files([(f"gs://{bucket}/d/b", tmp_path / "out" / "b")])
    assert (tmp_path / "out" / "b").read_bytes() == b"bravo!"
    with pytest.raises(errors.NotFound):
        c.p.download_files([(f"gs://{bucket}/d/missing", tmp_path / "out" / "x")])
    with pytest.raises(errors.NotFound):
        c.p.upload_files(c.unique("contract-missing"), [(str(tmp_path / "a.bin"), "x")])

    assert c.p.delete_prefix(bucket, "d/") == 3
    assert c.p.list_objects(bucket, "") == {}
    c.p.delete_bucket(bucket)


# --- registry -----------------------------------------------------------------------------


def test_versions_aliases_and_model_fields(contract: Contract, saved_model: Path) -> None:
    c = contract
    stack = c.unique("reg")
    bucket, model_id = registered(c, saved_model, stack=stack)
    artifact = f"gs://{bucket}/m/"
    location = f"/locations/{c.p.region}"

    [v1] = c.p.list_versions(model_id)
    assert v1.version_id == "1" and set(v1.aliases) == {DEFAULT_ALIAS, "v1"}  # first: default
    assert dict(v1.labels)[LABEL_NAME] == "digits" and v1.artifact_uri.rstrip("/") == artifact[:-1]
    assert v1.container_image == IMAGE

    with pytest.raises(errors.AlreadyExists):
        c.p.upload_version(version_request(model_id, artifact, aliases=("v9",), stack=stack))
    with pytest.raises(errors.NotFound):
        c.p.upload_version(version_request(c.model_id(), artifact, parent_exists=True))

    op = c.finish(
        c.p.upload_version(
            version_request(model_id, artifact, parent_exists=True, aliases=("v2",), stack=stack)
        )
    )
    # Vertex names by project number whatever the request used (the fake by id): compare
    # what follows the project, never assume its id.
    assert (op.result or "").endswith(f"{location}/models/{model_id}@2")
    versions = {v.version_id: set(v.aliases) for v in c.p.list_versions(model_id)}
    assert versions == {"1": {DEFAULT_ALIAS, "v1"}, "2": {"v2"}}
    assert (c.p.model_version(model_id, "v2") or "").endswith(f"{location}/models/{model_id}@2")
    v1_name = c.p.model_version(model_id, DEFAULT_ALIAS) or ""
    assert v1_name.endswith(f"{location}/models/{model_id}@1")
    assert c.p.model_version(model_id, "v7") is None
    assert c.p.model_version(c.model_id(), "v1") is None

    # Adding an alias to a version takes it from the version that held it.
    c.p.merge_aliases(model_id, "2", (DEFAULT_ALIAS, "v1"), ("v2",))
    versions = {v.version_id: set(v.aliases) for v in c.p.list_versions(model_id)}
    assert versions == {"1": set(), "2": {DEFAULT_ALIAS, "v1"}}

    c.p.update_version(model_id, "1", "retired", ((LABEL_NAME, "digits"), ("note", "old")))
    v1 = c.p.list_versions(model_id)[0]
    assert v1.description == "retired" and dict(v1.labels) == {LABEL_NAME: "digits", "note": "old"}
    with pytest.raises(errors.NotFound):
        c.p.update_version(model_id, "9", "x", ())
    c.p.update_model(model_id, "Renamed", "new description")
    [model] = c.p.observe(stack, None).models
    assert (model.display_name, model.description) == ("Renamed", "new description")
    with pytest.raises(errors.NotFound):
        c.p.merge_aliases(model_id, "9", ("x",), ())

    c.finish(c.p.delete_version(model_id, "1"))
    assert [v.version_id for v in c.p.list_versions(model_id)] == ["2"]
    c.finish(c.p.delete_model(model_id))
    assert c.p.list_versions(model_id) == ()
    with pytest.raises(errors.NotFound):
        c.p.delete_model(model_id)


def test_the_registry_refuses_to_delete_the_default_version(
    contract: Contract, saved_model: Path
) -> None:
    c = contract
    vertex_only(c)
    _, model_id = registered(c, saved_model)
    with pytest.raises(errors.FailedPrecondition):
        c.p.delete_version(model_id, "1")


# --- endpoints ----------------------------------------------------------------------------


def test_endpoint_deploy_traffic_undeploy_and_delete(contract: Contract, saved_model: Path) -> None:
    c = contract
    _, model_id = registered(c, saved_model)
    eid = c.endpoint_id()
    c.finish(c.p.create_endpoint(eid, "served", "first", ((LABEL_STACK, "s2"), (LABEL_NAME, "e"))))
    with pytest.raises(errors.AlreadyExists):
        c.p.create_endpoint(eid, "served", "", ())
    ep = c.p.get_endpoint(eid)
    assert ep is not None and ep.name == "e" and ep.endpoint_id == eid
    assert (ep.display_name, ep.description, ep.deployments, ep.traffic) == (
        "served",
        "first",
        (),
        (),
    )
    c.p.update_endpoint(eid, "renamed", "second", ((LABEL_STACK, "s2"), (LABEL_NAME, "e")))
    ep = c.p.get_endpoint(eid)
    assert ep is not None and (ep.display_name, ep.description) == ("renamed", "second")
    assert c.p.get_endpoint(c.endpoint_id()) is None

    # "0" in a deploy's split is the model being deployed.
    c.finish(c.p.deploy(deploy_request(eid, model_id, "1001", {"0": 100})))
    c.finish(c.p.deploy(deploy_request(eid, model_id, "1002", {"1001": 60, "0": 40})))
    ep = c.p.get_endpoint(eid)
    assert ep is not None and dict(ep.traffic) == {"1001": 60, "1002": 40}
    deployed = {d.id: d for d in ep.deployments}
    assert set(deployed) == {"1001", "1002"}
    assert deployed["1001"].version_id == "1" and deployed["1001"].model_resource.endswith(
        f"/models/{model_id}"
    )
    assert (deployed["1001"].machine_type, deployed["1001"].max_replicas) == ("n1-standard-2", 1)
    with pytest.raises(errors.AlreadyExists):
        c.p.deploy(deploy_request(eid, model_id, "1001", {}))

    answer = c.p.predict(eid, json.dumps({"instances": [[0.1, 0.2, 0.3, 0.4]] * 3}).encode())
    assert len(answer["predictions"]) == 3 and answer["deployedModelId"] in deployed

    c.p.set_traffic(eid, (("1001", 0), ("1002", 100)))
    c.finish(c.p.mutate_deployment(eid, "1002", 1, 2))
    ep = c.p.get_endpoint(eid)
    assert ep is not None and dict(ep.traffic) == {"1001": 0, "1002": 100}
    assert {d.id: d.max_replicas for d in ep.deployments}["1002"] == 2
    with pytest.raises(errors.NotFound):
        c.p.mutate_deployment(eid, "1999", 1, 1)

    c.finish(c.p.undeploy(eid, "1001", (("1002", 100),)))
    c.finish(c.p.undeploy(eid, "1002", ()))
    ep = c.p.get_endpoint(eid)
    assert ep is not None and (ep.deployments, ep.traffic) == ((), ())
    with pytest.raises(errors.NotFound):
        c.p.undeploy(eid, "1002", ())
    c.finish(c.p.delete_endpoint(eid))
    assert c.p.get_endpoint(eid) is None
    with pytest.raises(errors.NotFound):
        c.p.delete_endpoint(eid)
    c.finish(c.p.delete_model(model_id))


def test_vertex_keeps_traffic_and_in_use_rules(contract: Contract, saved_model: Path) -> None:
    c = contract
    vertex_only(c)
    _, model_id = registered(c, saved_model)
    eid = c.endpoint_id()
    c.finish(c.p.create_endpoint(eid, "rules", "", ()))
    with pytest.raises(errors.InvalidArgument):  # a split must name deployed models only
        c.p.set_traffic(eid, (("1001", 100),))
    c.finish(c.p.deploy(deploy_request(eid, model_id, "1001", {"0": 100})))
    with pytest.raises(errors.InvalidArgument):  # and sum to 100
        c.p.set_traffic(eid, (("1001", 50),))
    with pytest.raises(errors.FailedPrecondition):
        c.p.delete_endpoint(eid)
    with pytest.raises(errors.FailedPrecondition):
        c.p.delete_model(model_id)
    c.finish(c.p.undeploy(eid, "1001", ()))
    c.finish(c.p.delete_endpoint(eid))


# --- batch jobs ---------------------------------------------------------------------------


def test_batch_jobs_are_created_found_by_label_cancelled_and_deleted(
    contract: Contract, saved_model: Path
) -> None:
    c = contract
    stack = c.unique("jobs")
    bucket, model_id = registered(c, saved_model)
    labels = {LABEL_STACK: stack, LABEL_NAME: "score", "deployer-input": "abc"}
    with c.jobs_held():
        job = c.p.create_job(job_request(c, model_id, bucket, labels))
        assert not job.terminal and dict(job.labels) == labels
        assert job.model.endswith(f"{model_id}@1")
        got = c.p.get_job(job.resource)
        assert (got.resource, got.display_name, got.labels) == (
            job.resource,
            job.display_name,
            job.labels,
        )
        assert [j.resource for j in c.p.find_jobs({LABEL_STACK: stack})] == [job.resource]
        assert [j.resource for j in c.p.find_jobs(labels)] == [job.resource]
        assert c.p.find_jobs({LABEL_STACK: stack, LABEL_NAME: "other"}) == []
        [observed] = c.p.list_batch_jobs(stack)
        assert (observed.name, observed.resource) == ("score", job.resource)
        c.p.cancel_job(job.resource)
        ended: JobStatus = poll_until(
            lambda: c.p.get_job(job.resource), lambda j: j.terminal, timeout=60, max_interval=0.5
        )
    assert ended.state is JobState.CANCELLED
    c.finish(c.p.delete_batch_job(job.resource))
    with pytest.raises(errors.NotFound):
        c.p.get_job(job.resource)
    with pytest.raises(errors.NotFound):
        c.p.cancel_job(job.resource)
    assert c.p.find_jobs({LABEL_STACK: stack}) == [] and c.p.list_batch_jobs(stack) == ()


def test_vertex_deletes_only_ended_jobs_and_cancels_only_live_ones(
    contract: Contract, saved_model: Path
) -> None:
    c = contract
    vertex_only(c)
    bucket, model_id = registered(c, saved_model)
    with c.jobs_held():
        job = c.p.create_job(job_request(c, model_id, bucket, {LABEL_STACK: c.unique("jobs")}))
        # A live job is not deleted: it is asked to cancel, and the caller retries.
        with pytest.raises(errors.FailedPrecondition):
            c.p.delete_batch_job(job.resource)
        ended = poll_until(
            lambda: c.p.get_job(job.resource), lambda j: j.terminal, timeout=60, max_interval=0.5
        )
    assert ended.state is JobState.CANCELLED
    with pytest.raises(errors.FailedPrecondition):
        c.p.cancel_job(job.resource)
    c.finish(c.p.delete_batch_job(job.resource))


# --- faults: what "failed" and "response lost" mean -------------------------------------


def test_a_refused_call_had_no_effect_and_a_lost_response_did(contract: Contract) -> None:
    c = contract
    eid, other = c.endpoint_id(), c.endpoint_id()
    c.fault_next("createEndpoint", "create_endpoint")
    with pytest.raises(errors.TransientError) as info:
        c.p.create_endpoint(other, "refused", "", ())
    assert not isinstance(info.value, errors.ResponseLost)
    assert c.p.get_endpoint(other) is None

    c.fault_next("createEndpoint", "create_endpoint", drop=True)
    with pytest.raises(errors.ResponseLost):
        c.p.create_endpoint(eid, "lost", "", ())
    assert c.p.get_endpoint(eid) is not None  # it took effect: apply probes and adopts
    with pytest.raises(errors.AlreadyExists):
        c.p.create_endpoint(eid, "lost", "", ())

    bucket = new_bucket(c)
    c.fault_next("storage.buckets.get", "get_bucket")  # a read: retried inside the provider
    assert c.p.get_bucket(bucket).exists
    c.fault_next("storage.objects.insert", "write_object", drop=True)
    with pytest.raises(errors.ResponseLost):
        c.p.write_object(bucket, "ctl/lock", b"mine", if_generation_match=0)
    found = c.p.read_object(bucket, "ctl/lock")
    assert found is not None and found[0] == b"mine"
    assert c.faults_left() == 0
    c.p.delete_object(bucket, "ctl/lock")
    c.p.delete_bucket(bucket)
    c.finish(c.p.delete_endpoint(eid))


# --- operations and observation -----------------------------------------------------------


def test_operations_are_polled_by_name_and_unknown_ones_are_not_found(
    contract: Contract,
) -> None:
    c = contract
    eid = c.endpoint_id()
    op = c.finish(c.p.create_endpoint(eid, "op", "", ()))
    if op.name:  # a call that finished synchronously has no operation to poll
        assert c.p.get_operation(op.name).done
    missing = f"projects/{c.p.project}/locations/{c.p.region}/operations/987654321"
    with pytest.raises(errors.NotFound):
        c.p.get_operation(missing)
    c.finish(c.p.delete_endpoint(eid))


def test_observe_and_list_labelled_find_everything_by_label(
    contract: Contract, saved_model: Path
) -> None:
    c = contract
    stack = c.unique("obs")
    bucket = new_bucket(c, stack=stack)
    artifact = upload_artifact(c, bucket, saved_model)
    model_id = c.model_id()
    c.finish(c.p.upload_version(version_request(model_id, artifact, aliases=("v1",), stack=stack)))
    eid = c.endpoint_id()
    c.finish(c.p.create_endpoint(eid, "obs", "", ((LABEL_STACK, stack), (LABEL_NAME, "front"))))
    other = c.endpoint_id()
    c.finish(c.p.create_endpoint(other, "unlabelled", "", ()))

    state = c.p.observe(stack, bucket)
    assert state.bucket.exists and dict(state.bucket.labels) == {LABEL_STACK: stack}
    [model] = state.models
    assert (model.name, model.model_id) == ("digits", model_id)
    assert [v.version_id for v in model.versions] == ["1"]
    assert [(e.name, e.endpoint_id) for e in state.endpoints] == [("front", eid)]
    assert c.p.observe(c.unique("nobody"), None).is_empty

    mine = {
        (r.kind, r.name.rsplit("/", 1)[-1])
        for r in c.p.list_labelled()
        if dict(r.labels).get(LABEL_STACK) == stack
    }
    assert mine == {
        (ResourceKind.BUCKET, bucket),
        (ResourceKind.MODEL, model_id),
        (ResourceKind.ENDPOINT, eid),
    }
    assert all(r.name.rsplit("/", 1)[-1] != other for r in c.p.list_labelled())
    for e in (eid, other):
        c.finish(c.p.delete_endpoint(e))
    c.finish(c.p.delete_model(model_id))
