"""Execute a plan through a provider: lock, resume, act, wait, adopt, converge.

Owns: `apply_spec` (observe -> plan -> confirm -> bucket -> lock -> resume journaled
operations -> re-observe -> execute -> re-observe until nothing is left to do), the
per-action handlers, adoption of creates whose response was lost or that already exist,
operation polling with timeouts, and the `Reporter` hooks the CLI renders progress with.

Must not: import google.cloud (it receives a `Provider`), decide what to change (that is
`plan`'s job), or make a mutating call when the plan is empty.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployer import errors
from deployer.providers import DeployRequest, Operation, VersionRequest
from deployer.providers.retry import RetryPolicy, call_with_retry
from deployer.reconcile.journal import Journal, StackLock
from deployer.reconcile.plan import (
    Action,
    CreateBucket,
    CreateEndpoint,
    CreateVersion,
    DeleteEndpoint,
    DeleteModel,
    DeleteVersion,
    Deploy,
    MergeAliases,
    MutateDeployment,
    Plan,
    PlanInputs,
    SetTraffic,
    Undeploy,
    UpdateEndpoint,
    UpdateModel,
    UpdateVersion,
    UploadArtifact,
    VersionRef,
    plan_stack,
)
from deployer.reconcile.upload import UploadReport, artifact_hashes, upload_artifact
from deployer.spec import Spec
from deployer.state import LABEL_SPEC, LABEL_STACK, StackState

if TYPE_CHECKING:
    from deployer.providers import Provider


class Reporter:
    """Progress hooks; the default reports nothing. The CLI subclasses it (render.py)."""

    def plan_ready(self, plan: Plan, observed: StackState) -> None: ...
    def action_started(self, action: Action) -> None: ...
    def action_finished(self, action: Action, outcome: str, seconds: float) -> None: ...
    def upload_started(self, action: Action, files: int, nbytes: int) -> None: ...
    def upload_progress(self, action: Action, nbytes: int) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class ApplyOptions:
    lock_timeout: float = 0.0  # seconds to wait for another apply's lock
    op_timeout: float = 1800.0  # seconds one long-running operation may take
    poll_max_seconds: float = 5.0  # longest pause between two polls of an operation
    max_rounds: int = 3  # observe/plan/execute rounds before giving up on converging
    adopt_timeout: float = 120.0  # seconds to wait for a create whose response was lost
    parallelism: int = 4  # independent resources (other endpoints, models) worked on at once
    policy: RetryPolicy = field(default_factory=RetryPolicy.from_env)


@dataclass
class ActionResult:
    action: Action
    outcome: str  # "done" | "adopted"
    seconds: float


@dataclass
class ApplyReport:
    plan: Plan  # the first plan, the one shown to the user
    results: list[ActionResult] = field(default_factory=list)
    uploads: list[UploadReport] = field(default_factory=list)
    resumed_operations: int = 0
    rounds: int = 0
    observed: StackState | None = None  # what existed before (for the cost delta)

    @property
    def changed(self) -> bool:
        return bool(self.results)


def expiry_for(spec: Spec, now: float | None = None) -> int | None:
    if spec.guards.ttl_seconds is None:
        return None
    return int((now if now is not None else time.time()) + spec.guards.ttl_seconds)


def make_plan(
    spec: Spec,
    provider: Provider,
    *,
    hashes: dict[tuple[str, str], str] | None = None,
) -> tuple[Plan, StackState, PlanInputs]:
    """Observe the stack and plan; no mutating call."""
    inputs = PlanInputs(hashes if hashes is not None else artifact_hashes(spec), expiry_for(spec))
    observed = provider.observe(spec.stack, spec.bucket.name)
    return plan_stack(spec, observed, inputs), observed, inputs


def apply_spec(
    spec: Spec,
    provider: Provider,
    *,
    reporter: Reporter | None = None,
    options: ApplyOptions | None = None,
    confirm: Callable[[Plan], bool] | None = None,
    hashes: dict[tuple[str, str], str] | None = None,
) -> ApplyReport:
    """Make the cloud match `spec`. Zero mutating calls when it already does."""
    rep = reporter or Reporter()
    opts = options or ApplyOptions()
    plan, observed, inputs = make_plan(spec, provider, hashes=hashes)
    report = ApplyReport(plan, observed=observed)
    rep.plan_ready(plan, observed)
    if plan.is_empty:
        return report
    if confirm is not None and not confirm(plan):
        raise errors.Aborted("apply cancelled; nothing was changed")
    ex = Executor(provider, spec.stack, rep, opts, report)
    for action in plan.actions:
        if isinstance(action.payload, CreateBucket):
            ex.run(action)  # the lock lives in the bucket, so the bucket comes first
    with StackLock(
        provider, spec.bucket.name, spec.stack, timeout=opts.lock_timeout, policy=opts.policy
    ) as lock:
        if lock.broke_stale:
            rep.note(f"removed a stale lock left by {lock.broke_stale} (no longer running)")
        ex.journal = Journal(provider, spec.bucket.name, spec.stack, policy=opts.policy)
        ex.resume()
        for round_ in range(1, opts.max_rounds + 1):
            report.rounds = round_
            current = plan_stack(spec, provider.observe(spec.stack, spec.bucket.name), inputs)
            if current.is_empty:
                return report
            ex.run_all(current.actions)
    raise errors.DeployerError(
        f"stack {spec.stack!r} still differs from the spec after {opts.max_rounds} rounds",
        hint="run `deployer plan SPEC` to see what is left, then apply again",
    )


def _phases(actions: tuple[Action, ...] | list[Action]) -> list[list[Action]]:
    out: list[list[Action]] = []
    for action in actions:
        if out and out[-1][0].resource is action.resource:
            out[-1].append(action)
        else:
            out.append([action])
    return out


def _resource_key(action: Action) -> tuple[str, ...]:
    """What an action must stay ordered with: its endpoint, its model, or its artifact."""
    p = action.payload
    if isinstance(p, UploadArtifact):
        return ("artifact", p.model, p.alias)
    endpoint = getattr(p, "endpoint_id", None)
    if endpoint is not None:
        return ("endpoint", endpoint)
    version = getattr(p, "version", None)
    if isinstance(version, VersionRef):
        return ("model", version.model_id)
    if isinstance(p, DeleteModel | UpdateModel):
        return ("model", p.model_id)
    return ("other",)


class Executor:
    """Runs actions, adopting what already took effect."""

    def __init__(
        self,
        provider: Provider,
        stack: str,
        reporter: Reporter,
        options: ApplyOptions,
        report: ApplyReport,
    ) -> None:
        self.p = provider
        self.stack = stack
        self.rep = reporter
        self.opts = options
        self.report = report
        self.journal: Journal | None = None
        self.versions: dict[tuple[str, str], str] = {}  # (model_id, spec hash) -> version id
        self._handlers: dict[type, Callable[[Any, Action], str]] = {
            CreateBucket: self._create_bucket,
            UploadArtifact: self._upload,
            CreateVersion: self._create_version,
            UpdateVersion: self._update_version,
            UpdateModel: self._update_model,
            MergeAliases: self._merge_aliases,
            CreateEndpoint: self._create_endpoint,
            UpdateEndpoint: self._update_endpoint,
            Deploy: self._deploy,
            MutateDeployment: self._mutate,
            SetTraffic: self._set_traffic,
            Undeploy: self._undeploy,
            DeleteEndpoint: self._delete_endpoint,
            DeleteVersion: self._delete_version,
            DeleteModel: self._delete_model,
        }

    # ------------------------------------------------------------------ machinery

    def run(self, action: Action) -> None:
        self.rep.action_started(action)
        t0 = time.monotonic()
        outcome = self._handlers[type(action.payload)](action.payload, action)
        seconds = time.monotonic() - t0
        self.report.results.append(ActionResult(action, outcome, seconds))
        self.rep.action_finished(action, outcome, seconds)

    def run_all(self, actions: tuple[Action, ...] | list[Action]) -> None:
        """Run a plan's actions in order, phase by phase; within one phase (a run of actions
        on the same kind of resource), different endpoints or models proceed in parallel
        while each one's own actions keep their order."""
        for phase in _phases(actions):
            groups: dict[tuple[str, ...], list[Action]] = {}
            for action in phase:
                groups.setdefault(_resource_key(action), []).append(action)
            if len(groups) == 1 or self.opts.parallelism <= 1:
                for action in phase:
                    self.run(action)
                continue
            with ThreadPoolExecutor(max_workers=min(self.opts.parallelism, len(groups))) as pool:
                futures = [pool.submit(self._run_group, g) for g in groups.values()]
            errors_seen = [f.exception() for f in futures if f.exception() is not None]
            if errors_seen:
                raise errors_seen[0]  # type: ignore[misc]

    def _run_group(self, actions: list[Action]) -> None:
        for action in actions:
            self.run(action)

    def call(self, fn: Callable[[], Any], *, probe: Callable[[], Any] | None = None) -> Any:
        return call_with_retry(fn, policy=self.opts.policy, probe=probe)

    def wait(self, op: Operation, key: str, what: str) -> Operation:
        """Poll `op` until done (journaled meanwhile); raise on failure or timeout."""
        if not op.done and op.name and self.journal is not None:
            self.journal.record(key, op.name, what)
        deadline = time.monotonic() + self.opts.op_timeout
        pause = 0.05
        while not op.done:
            if time.monotonic() >= deadline:
                raise errors.OperationTimeout(
                    f"{what}: operation {op.name} did not finish within "
                    f"{self.opts.op_timeout:g}s; it keeps running in the cloud",
                    hint="re-run apply to resume waiting for it (its name is journaled)",
                )
            time.sleep(pause)
            pause = min(pause * 2, self.opts.poll_max_seconds)
            op = self.call(functools.partial(self.p.get_operation, op.name))
        if self.journal is not None and op.name:
            self.journal.forget(key)
        if op.error:
            raise errors.OperationFailed(f"{what}: {op.error}")
        return op

    def resume(self) -> None:
        """Finish operations a killed run left in flight, before observing again."""
        assert self.journal is not None
        for key, entry in self.journal.load().items():
            self.rep.note(f"resuming: waiting for {entry.get('what', key)} ({entry['op']})")
            try:
                op = self.call(functools.partial(self.p.get_operation, str(entry["op"])))
                self.wait(op, key, entry.get("what", key))
            except (errors.NotFound, errors.OperationFailed) as exc:
                # Gone or failed: the next observe shows what really exists.
                self.rep.note(f"  {entry.get('what', key)}: {exc.message}")
                self.journal.forget(key)
            self.report.resumed_operations += 1

    def wait_until(self, check: Callable[[], bool], timeout: float | None = None) -> bool:
        """For a call whose response was lost: wait a while to see its effect land."""
        deadline = time.monotonic() + (self.opts.adopt_timeout if timeout is None else timeout)
        pause = 0.1
        while not check():
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, self.opts.poll_max_seconds)
        return True

    def version_id(self, ref: VersionRef) -> str:
        if ref.version_id is not None:
            return ref.version_id
        key = (ref.model_id, ref.spec_hash)
        if key not in self.versions:
            found = self._find_version(ref.model_id, ref.spec_hash)
            if found is None:
                raise errors.DeployerError(f"model {ref.model}: version {ref.spec_hash} vanished")
            self.versions[key] = found
        return self.versions[key]

    def _find_version(self, model_id: str, spec_hash: str) -> str | None:
        versions = self.call(lambda: self.p.list_versions(model_id))
        match = [v.version_id for v in versions if v.label(LABEL_SPEC) == spec_hash]
        return min(match, key=lambda s: (len(s), s)) if match else None

    # ------------------------------------------------------------------- handlers

    def _create_bucket(self, a: CreateBucket, action: Action) -> str:
        def probe() -> str | None:
            b = self.p.get_bucket(a.name)
            return "adopted" if b.exists and dict(b.labels).get(LABEL_STACK) == self.stack else None

        try:
            self.call(lambda: self.p.create_bucket(a.name, a.location, a.labels), probe=probe)
        except errors.AlreadyExists:
            if probe() is None:
                raise errors.AlreadyExists(
                    f"bucket {a.name} exists but this stack did not create it",
                    hint="set bucket.create: false to use it, or pick another name",
                ) from None
            return "adopted"
        return "done"

    def _upload(self, a: UploadArtifact, action: Action) -> str:
        upload = self.call(
            lambda: upload_artifact(
                self.p,
                a.bucket,
                a.prefix,
                a.source,
                progress=lambda n: self.rep.upload_progress(action, n),
                on_start=lambda n, b: self.rep.upload_started(action, n, b),
            )
        )
        self.report.uploads.append(upload)
        return "done" if upload.files_uploaded else "adopted"

    def _create_version(self, a: CreateVersion, action: Action) -> str:
        ref = a.version
        req = VersionRequest(
            ref.model_id,
            a.parent_exists,
            a.display_name,
            a.description,
            a.artifact_uri,
            a.container_image,
            a.labels,
            a.aliases,
            a.model_description,
        )

        def probe() -> Operation | None:
            vid = self._find_version(ref.model_id, ref.spec_hash)
            if vid is None:
                return None
            return Operation("", True, None, f"{ref.model_id}@{vid}")

        try:
            op = self.call(lambda: self.p.upload_version(req), probe=probe)
        except (errors.AlreadyExists, errors.NotFound):
            # AlreadyExists: the model exists (a lost first upload, or a concurrent one);
            # NotFound: the parent went away. Adopt a matching version or switch modes.
            found = probe()
            if found is not None:
                self.versions[(ref.model_id, ref.spec_hash)] = found.result.split("@")[-1]  # type: ignore[union-attr]
                return "adopted"
            req = dataclasses.replace(req, parent_exists=not a.parent_exists)
            op = self.call(lambda: self.p.upload_version(req), probe=probe)
        adopted = op.name == ""
        op = self.wait(op, f"version:{ref.model_id}:{ref.spec_hash}", action.address)
        vid = (op.result or "").rsplit("@", 1)[-1] if op.result and "@" in op.result else None
        if vid is None:
            vid = self._find_version(ref.model_id, ref.spec_hash)
        if vid is None:
            raise errors.DeployerError(f"{action.address}: upload finished but no version found")
        self.versions[(ref.model_id, ref.spec_hash)] = vid
        return "adopted" if adopted else "done"

    def _update_version(self, a: UpdateVersion, action: Action) -> str:
        vid = self.version_id(a.version)
        self.call(lambda: self.p.update_version(a.version.model_id, vid, a.description, a.labels))
        return "done"

    def _update_model(self, a: UpdateModel, action: Action) -> str:
        self.call(lambda: self.p.update_model(a.model_id, a.display_name, a.description))
        return "done"

    def _merge_aliases(self, a: MergeAliases, action: Action) -> str:
        vid = self.version_id(a.version)
        self.call(lambda: self.p.merge_aliases(a.version.model_id, vid, a.add, a.remove))
        return "done"

    def _create_endpoint(self, a: CreateEndpoint, action: Action) -> str:
        def ours() -> bool:
            ep = self.p.get_endpoint(a.endpoint_id)
            if ep is not None and ep.label(LABEL_STACK) != self.stack:
                raise errors.AlreadyExists(
                    f"endpoint id {a.endpoint_id} is taken by a resource of another stack"
                )
            return ep is not None

        try:
            op = self.call(
                lambda: self.p.create_endpoint(
                    a.endpoint_id, a.display_name, a.description, a.labels
                )
            )
        except errors.AlreadyExists:
            if not self.wait_until(ours):
                raise
            return "adopted"
        self.wait(op, f"endpoint:{a.endpoint_id}", action.address)
        return "done"

    def _update_endpoint(self, a: UpdateEndpoint, action: Action) -> str:
        self.call(
            lambda: self.p.update_endpoint(a.endpoint_id, a.display_name, a.description, a.labels)
        )
        return "done"

    def _deployed(self, endpoint_id: str, deployed_id: str) -> bool:
        ep = self.p.get_endpoint(endpoint_id)
        return ep is not None and any(d.id == deployed_id for d in ep.deployments)

    def _deploy(self, a: Deploy, action: Action) -> str:
        req = DeployRequest(
            a.endpoint_id,
            a.deployed_id,
            a.version.model_id,
            self.version_id(a.version),
            a.display_name,
            a.machine_type,
            a.accelerator_type,
            a.accelerator_count,
            a.min_replicas,
            a.max_replicas,
            a.traffic,
        )
        try:
            op = self.call(lambda: self.p.deploy(req))
        except errors.AlreadyExists:
            # A lost deploy of this very id landed, or is still landing.
            if not self.wait_until(lambda: self._deployed(a.endpoint_id, a.deployed_id)):
                raise
            return "adopted"
        self.wait(op, f"deploy:{a.endpoint_id}:{a.deployed_id}", action.address)
        return "done"

    def _mutate(self, a: MutateDeployment, action: Action) -> str:
        op = self.call(
            lambda: self.p.mutate_deployment(
                a.endpoint_id, a.deployed_id, a.min_replicas, a.max_replicas
            )
        )
        self.wait(op, f"mutate:{a.endpoint_id}:{a.deployed_id}", action.address)
        return "done"

    def _set_traffic(self, a: SetTraffic, action: Action) -> str:
        self.call(lambda: self.p.set_traffic(a.endpoint_id, a.traffic))
        return "done"

    def _undeploy(self, a: Undeploy, action: Action) -> str:
        try:
            op = self.call(lambda: self.p.undeploy(a.endpoint_id, a.deployed_id, a.traffic))
        except errors.NotFound:
            # Gone already (a lost response), or going (an undeploy still in flight).
            if not self.wait_until(lambda: not self._deployed(a.endpoint_id, a.deployed_id)):
                raise
            return "adopted"
        self.wait(op, f"undeploy:{a.endpoint_id}:{a.deployed_id}", action.address)
        return "done"

    def _delete(self, fn: Callable[[], Operation], key: str, action: Action) -> str:
        try:
            op = self.call(fn)
        except errors.NotFound:
            return "adopted"
        self.wait(op, key, action.address)
        return "done"

    def _delete_endpoint(self, a: DeleteEndpoint, action: Action) -> str:
        return self._delete(
            lambda: self.p.delete_endpoint(a.endpoint_id),
            f"delete-endpoint:{a.endpoint_id}",
            action,
        )

    def _delete_version(self, a: DeleteVersion, action: Action) -> str:
        vid = self.version_id(a.version)
        return self._delete(
            lambda: self.p.delete_version(a.version.model_id, vid),
            f"delete-version:{a.version.model_id}:{vid}",
            action,
        )

    def _delete_model(self, a: DeleteModel, action: Action) -> str:
        return self._delete(
            lambda: self.p.delete_model(a.model_id), f"delete-model:{a.model_id}", action
        )
