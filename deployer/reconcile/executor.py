"""Run a plan's actions through a provider: act, wait, adopt, resume, in a safe order.

Owns: `Executor` (one handler per action payload; creates whose response was lost or that
already exist are adopted, not duplicated; independent endpoints and models proceed in
parallel while each one's own actions keep their order), `wait_operation` (polls a
long-running operation with `poll_until`, journaling its name meanwhile so a killed run
resumes it), the `Reporter` hooks the CLI renders progress with, and the values an apply
returns (`ApplyOptions`, `Outcome`, `ActionResult`, `ApplyReport`).

Must not: decide what to change (that is `plan`'s job), decide whether a plan may run
(that is `apply`'s), or import google.cloud (it receives a `Provider`).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployer import errors
from deployer.providers import DeployRequest, Operation, VersionRequest
from deployer.providers.retry import PollTimeout, RetryPolicy, call_with_retry, poll_until
from deployer.reconcile.journal import Journal
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
    Rollout,
    SetTraffic,
    Undeploy,
    UpdateEndpoint,
    UpdateEndpointLogging,
    UpdateModel,
    UpdateVersion,
    UploadArtifact,
    VersionRef,
)
from deployer.reconcile.upload import UploadReport, upload_artifact
from deployer.state import LABEL_SPEC, LABEL_STACK, StackState

if TYPE_CHECKING:
    from deployer.providers import Provider


class Outcome(str, enum.Enum):
    """How an action ended."""

    DONE = "done"  # this run's call made the change
    ADOPTED = "adopted"  # it had already taken effect (a lost response, a concurrent run)


class Reporter:
    """Progress hooks; the default reports nothing. The CLI subclasses it (render.py)."""

    def plan_ready(self, plan: Plan, observed: StackState) -> None: ...
    def action_started(self, action: Action) -> None: ...
    def action_finished(self, action: Action, outcome: Outcome, seconds: float) -> None: ...
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
    outcome: Outcome
    seconds: float


@dataclass
class ApplyReport:
    plan: Plan  # the plan shown to the user (confirmed, or saved): nothing outside it runs
    results: list[ActionResult] = field(default_factory=list)
    uploads: list[UploadReport] = field(default_factory=list)
    resumed_operations: int = 0
    rounds: int = 0
    observed: StackState | None = None  # what existed before (for the cost delta)

    @property
    def changed(self) -> bool:
        return bool(self.results)


def wait_operation(
    provider: Provider,
    op: Operation,
    what: str,
    options: ApplyOptions,
    *,
    journal: Journal | None = None,
    key: str = "",
    call: Callable[[Callable[[], Any]], Any] | None = None,
) -> Operation:
    """Poll `op` until done, journaled meanwhile under `key` when a journal is given (so a
    killed run resumes waiting instead of re-creating); raise on failure or timeout."""
    if not op.done and op.name and journal is not None:
        journal.record(key, op.name, what)
    if not op.done:
        fetch = functools.partial(provider.get_operation, op.name)
        get = (
            (lambda: call(fetch))
            if call is not None
            else (lambda: call_with_retry(fetch, policy=options.policy))
        )
        try:
            op = poll_until(
                get,
                lambda o: o.done,
                timeout=options.op_timeout,
                first=0.05,
                max_interval=options.poll_max_seconds,
            )
        except PollTimeout:
            raise errors.OperationTimeout(
                f"{what}: operation {op.name} did not finish within "
                f"{options.op_timeout:g}s; it keeps running in the cloud",
                hint="re-run apply to resume waiting for it (its name is journaled)"
                if journal is not None
                else "run the command again once it has finished",
            ) from None
    if journal is not None and op.name:
        journal.forget(key)
    if op.error:
        raise errors.OperationFailed(f"{what}: {op.error}")
    return op


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
        self._handlers: dict[type, Callable[[Any, Action], Outcome]] = {
            CreateBucket: self._create_bucket,
            UploadArtifact: self._upload,
            CreateVersion: self._create_version,
            UpdateVersion: self._update_version,
            UpdateModel: self._update_model,
            MergeAliases: self._merge_aliases,
            CreateEndpoint: self._create_endpoint,
            UpdateEndpoint: self._update_endpoint,
            UpdateEndpointLogging: self._update_endpoint_logging,
            Deploy: self._deploy,
            MutateDeployment: self._mutate,
            SetTraffic: self._set_traffic,
            Rollout: self._rollout,
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

    def wait(self, op: Operation, key: str, what: str, timeout: float | None = None) -> Operation:
        """Poll `op` until done (journaled meanwhile); raise on failure or timeout (the
        options' op_timeout unless `timeout`, e.g. a deployment's deploy_timeout, is given)."""
        opts = self.opts if timeout is None else dataclasses.replace(self.opts, op_timeout=timeout)
        return wait_operation(self.p, op, what, opts, journal=self.journal, key=key, call=self.call)

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
        try:
            poll_until(
                check,
                bool,
                timeout=self.opts.adopt_timeout if timeout is None else timeout,
                first=0.1,
                max_interval=self.opts.poll_max_seconds,
            )
        except PollTimeout:
            return False
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

    def _create_bucket(self, a: CreateBucket, action: Action) -> Outcome:
        def probe() -> Outcome | None:
            b = self.p.get_bucket(a.name)
            ours = b.exists and dict(b.labels).get(LABEL_STACK) == self.stack
            return Outcome.ADOPTED if ours else None

        try:
            self.call(lambda: self.p.create_bucket(a.name, a.location, a.labels), probe=probe)
        except errors.AlreadyExists:
            if probe() is None:
                raise errors.AlreadyExists(
                    f"bucket {a.name} exists but this stack did not create it",
                    hint="set bucket.create: false to use it, or pick another name",
                ) from None
            return Outcome.ADOPTED
        return Outcome.DONE

    def _upload(self, a: UploadArtifact, action: Action) -> Outcome:
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
        return Outcome.DONE if upload.files_uploaded else Outcome.ADOPTED

    def _create_version(self, a: CreateVersion, action: Action) -> Outcome:
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
            a.kms_key_name,
            a.container,
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
                return Outcome.ADOPTED
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
        return Outcome.ADOPTED if adopted else Outcome.DONE

    def _update_version(self, a: UpdateVersion, action: Action) -> Outcome:
        vid = self.version_id(a.version)
        self.call(lambda: self.p.update_version(a.version.model_id, vid, a.description, a.labels))
        return Outcome.DONE

    def _update_model(self, a: UpdateModel, action: Action) -> Outcome:
        self.call(lambda: self.p.update_model(a.model_id, a.display_name, a.description))
        return Outcome.DONE

    def _merge_aliases(self, a: MergeAliases, action: Action) -> Outcome:
        vid = self.version_id(a.version)
        self.call(lambda: self.p.merge_aliases(a.version.model_id, vid, a.add, a.remove))
        return Outcome.DONE

    def _create_endpoint(self, a: CreateEndpoint, action: Action) -> Outcome:
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
                    a.endpoint_id, a.display_name, a.description, a.labels, a.settings
                )
            )
        except errors.AlreadyExists:
            if not self.wait_until(ours):
                raise
            return Outcome.ADOPTED
        self.wait(op, f"endpoint:{a.endpoint_id}", action.address)
        return Outcome.DONE

    def _update_endpoint(self, a: UpdateEndpoint, action: Action) -> Outcome:
        self.call(
            lambda: self.p.update_endpoint(a.endpoint_id, a.display_name, a.description, a.labels)
        )
        return Outcome.DONE

    def _update_endpoint_logging(self, a: UpdateEndpointLogging, action: Action) -> Outcome:
        self.call(lambda: self.p.update_endpoint_logging(a.endpoint_id, a.config))
        return Outcome.DONE

    def _deployed(self, endpoint_id: str, deployed_id: str) -> bool:
        ep = self.p.get_endpoint(endpoint_id)
        return ep is not None and any(d.id == deployed_id for d in ep.deployments)

    def _deploy(self, a: Deploy, action: Action) -> Outcome:
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
            a.settings,
        )
        try:
            op = self.call(lambda: self.p.deploy(req))
        except errors.AlreadyExists:
            # A lost deploy of this very id landed, or is still landing.
            if not self.wait_until(lambda: self._deployed(a.endpoint_id, a.deployed_id)):
                raise
            return Outcome.ADOPTED
        timeout = a.settings.deploy_timeout_seconds
        self.wait(op, f"deploy:{a.endpoint_id}:{a.deployed_id}", action.address, timeout)
        return Outcome.DONE

    def _mutate(self, a: MutateDeployment, action: Action) -> Outcome:
        op = self.call(
            lambda: self.p.mutate_deployment(
                a.endpoint_id, a.deployed_id, a.min_replicas, a.max_replicas, a.settings
            )
        )
        self.wait(op, f"mutate:{a.endpoint_id}:{a.deployed_id}", action.address)
        return Outcome.DONE

    def _set_traffic(self, a: SetTraffic, action: Action) -> Outcome:
        self.call(lambda: self.p.set_traffic(a.endpoint_id, a.traffic))
        return Outcome.DONE

    def _rollout(self, a: Rollout, action: Action) -> Outcome:
        # rollout.py builds on this module's waits and options, so it is imported here.
        from deployer.reconcile.rollout import VerifiedStore, run_rollout, starting_split

        store = (
            VerifiedStore(self.p, self.journal.bucket, self.stack, a.endpoint_id, self.opts)
            if self.journal is not None
            else None
        )
        ep = self.call(lambda: self.p.get_endpoint(a.endpoint_id))
        observed = ep.traffic if ep is not None else ()
        old = starting_split(observed, store.read() if store else None, a.deployed_id)
        run_rollout(
            self.p,
            endpoint=a.endpoint,
            endpoint_id=a.endpoint_id,
            new_id=a.deployed_id,
            names=dict(a.names),
            old_split=old,
            final_split=a.traffic,
            policy=a.policy,
            reporter=self.rep,
            options=self.opts,
            journal=self.journal,
            store=store,
            current=observed,
        )
        return Outcome.DONE

    def _undeploy(self, a: Undeploy, action: Action) -> Outcome:
        try:
            op = self.call(lambda: self.p.undeploy(a.endpoint_id, a.deployed_id, a.traffic))
        except errors.NotFound:
            # Gone already (a lost response), or going (an undeploy still in flight).
            if not self.wait_until(lambda: not self._deployed(a.endpoint_id, a.deployed_id)):
                raise
            return Outcome.ADOPTED
        self.wait(op, f"undeploy:{a.endpoint_id}:{a.deployed_id}", action.address)
        return Outcome.DONE

    def _delete(self, fn: Callable[[], Operation], key: str, action: Action) -> Outcome:
        try:
            op = self.call(fn)
        except errors.NotFound:
            return Outcome.ADOPTED
        self.wait(op, key, action.address)
        return Outcome.DONE

    def _delete_endpoint(self, a: DeleteEndpoint, action: Action) -> Outcome:
        return self._delete(
            lambda: self.p.delete_endpoint(a.endpoint_id),
            f"delete-endpoint:{a.endpoint_id}",
            action,
        )

    def _delete_version(self, a: DeleteVersion, action: Action) -> Outcome:
        vid = self.version_id(a.version)
        return self._delete(
            lambda: self.p.delete_version(a.version.model_id, vid),
            f"delete-version:{a.version.model_id}:{vid}",
            action,
        )

    def _delete_model(self, a: DeleteModel, action: Action) -> Outcome:
        return self._delete(
            lambda: self.p.delete_model(a.model_id), f"delete-model:{a.model_id}", action
        )
