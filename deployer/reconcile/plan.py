"""PURE: desired spec + observed state -> the ordered actions that make them equal.

Owns: the diff of a `Spec` against a `StackState` (the action vocabulary it speaks lives
in `deployer.reconcile.actions` and is re-exported here), and the ordering that keeps serving
capacity during a rollout: bucket, artifacts, model versions, aliases, endpoints,
deployments (deploy new before anything old goes), traffic, then removals (undeploy,
delete endpoints, versions, models). `plan_teardown` is the same diff against an empty spec.

Must not: do I/O, read the clock, hash files or import any SDK. Artifact hashes and the
expiry stamp are inputs (`PlanInputs`), so the same inputs always give the same plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from deployer.errors import ConfigError
from deployer.reconcile.actions import (  # re-exported: callers import the vocabulary from plan
    Action,
    ActionKind,
    CreateBucket,
    CreateEndpoint,
    CreateVersion,
    DeleteEndpoint,
    DeleteModel,
    DeleteVersion,
    Deploy,
    Labels,
    MergeAliases,
    MutateDeployment,
    Payload,
    Plan,
    PlanInputs,
    Resource,
    Rollout,
    SetTraffic,
    Traffic,
    Undeploy,
    UpdateEndpoint,
    UpdateEndpointLogging,
    UpdateModel,
    UpdateVersion,
    UploadArtifact,
    VersionRef,
)
from deployer.spec import Deployment, Endpoint, Model, ModelVersion, RolloutPolicy, Spec
from deployer.state import (
    DEFAULT_ALIAS,
    LABEL_ALIAS,
    LABEL_CREATED,
    LABEL_EXPIRES,
    LABEL_HASH,
    LABEL_NAME,
    LABEL_SPEC,
    LABEL_STACK,
    ObservedDeployment,
    ObservedEndpoint,
    ObservedModel,
    ObservedVersion,
    StackState,
    artifact_prefix,
    deployed_model_id,
    endpoint_id,
    label_value,
    model_id,
    short_hash,
)

# ------------------------------------------------------------------------ helpers


def version_spec_hash(artifact_hash: str, container: str, kms_key_name: str | None = None) -> str:
    """Identity of a version: a new registry version iff the artifact, container or CMEK key
    changes (Vertex cannot change a model's encryption_spec; versions without a key keep
    the identity they had before keys existed)."""
    if kms_key_name:
        return short_hash("version", artifact_hash, container, kms_key_name)
    return short_hash("version", artifact_hash, container)


def _user_labels(labels: Labels) -> Labels:
    return tuple(sorted((k, v) for k, v in labels if not k.startswith("deployer-")))


def _labels(
    stack: str,
    name: str,
    spec: str,
    extra: Labels,
    expires: int | None,
    more: Mapping[str, str] | None = None,
) -> Labels:
    out = dict(extra)
    out.update({LABEL_STACK: stack, LABEL_NAME: label_value(name), LABEL_SPEC: spec})
    out.update(more or {})
    if expires is not None:
        out[LABEL_EXPIRES] = str(expires)
    return tuple(sorted(out.items()))


def _nonzero(traffic: Mapping[str, int]) -> Traffic:
    return tuple(sorted((k, v) for k, v in traffic.items() if v))


def _deployment_identity(d: Deployment, spec_hash: str) -> str:
    acc = f"{d.accelerator.type}x{d.accelerator.count}" if d.accelerator else "none"
    identity = f"{d.ref}:{spec_hash}:{d.machine_type}:{acc}"
    # Settings Vertex cannot mutate (service account, Spot, access logging, resource pool)
    # are part of the identity: a change deploys a new one, shifts traffic, undeploys the
    # old. Unset, they add nothing, so deployments from before they existed keep their id.
    fixed = d.settings.replace_key
    return f"{identity}:{fixed}" if fixed else identity


def _endpoint_spec_hash(e: Endpoint) -> str:
    return short_hash("endpoint", e.display_name, e.description, sorted(e.labels))


def drain_endpoint(
    ep: ObservedEndpoint, keep: frozenset[str] = frozenset(), reason: str = "no longer in the spec"
) -> list[Action]:
    """Undeploy every deployment of `ep` not in `keep`, zero-traffic ones first.

    A deployment carrying traffic hands its share to the biggest remaining one, so the
    split always sums to 100 while anything is deployed (Vertex refuses otherwise).
    """
    traffic = {k: v for k, v in ep.traffic if v}
    going = sorted(
        (d for d in ep.deployments if d.id not in keep), key=lambda d: (traffic.get(d.id, 0), d.id)
    )
    actions: list[Action] = []
    for dep in going:
        share = traffic.pop(dep.id, 0)
        if share and traffic:
            heir = max(traffic, key=lambda k: (traffic[k], k))
            traffic[heir] += share
        after = _nonzero(traffic) if share else ()
        actions.append(
            Action(
                ActionKind.DELETE,
                Resource.DEPLOYMENT,
                f"endpoint {ep.name} / {dep.display_name}",
                reason,
                Undeploy(ep.endpoint_id, dep.id, after),
            )
        )
    return actions


# --------------------------------------------------------------------------- plan


def plan_stack(spec: Spec, observed: StackState, inputs: PlanInputs) -> Plan:
    """The ordered actions that turn `observed` into what `spec` describes."""
    stack, exp = spec.stack, inputs.expires_at
    early: list[Action] = []  # bucket, artifacts, versions, aliases
    endpoints: list[Action] = []
    deploys: list[Action] = []
    traffic_actions: list[Action] = []
    removals: list[Action] = []

    if not observed.bucket.exists:
        if not spec.bucket.create:
            raise ConfigError(
                f"bucket {spec.bucket.name!r} does not exist and the spec says create: false",
                hint="create the bucket first, or set bucket.create: true",
            )
        labels: Labels = ((LABEL_CREATED, "true"), (LABEL_STACK, stack))
        if exp is not None:
            labels = tuple(sorted((*labels, (LABEL_EXPIRES, str(exp)))))
        early.append(
            Action(
                ActionKind.CREATE,
                Resource.BUCKET,
                f"bucket {spec.bucket.name}",
                "does not exist",
                CreateBucket(spec.bucket.name, spec.bucket.location, labels),
            )
        )

    # --- model versions ------------------------------------------------------------
    refs: dict[tuple[str, str], VersionRef] = {}  # (model, alias) -> version
    kept_versions: set[tuple[str, str]] = set()  # (model_id, version_id) still wanted
    # Phases across models (all uploads, then versions, then alias moves) so apply can
    # run each phase for different models side by side.
    phases: tuple[list[Action], ...] = ([], [], [], [])
    for model in spec.models:
        for phase, acts in zip(
            phases,
            _plan_model(spec, model, observed.model(model.name), inputs, refs, kept_versions, exp),
            strict=True,
        ):
            phase += acts
    for phase in phases:
        early += phase

    # --- endpoints and deployments --------------------------------------------------
    for ep in spec.endpoints:
        obs = observed.endpoint(ep.name)
        eid = endpoint_id(stack, ep.name)
        ep_hash = _endpoint_spec_hash(ep)
        if obs is None:
            endpoints.append(
                Action(
                    ActionKind.CREATE,
                    Resource.ENDPOINT,
                    f"endpoint {ep.name}",
                    "does not exist",
                    CreateEndpoint(
                        ep.name,
                        eid,
                        ep.display_name,
                        ep.description,
                        _labels(stack, ep.name, ep_hash, ep.labels, exp),
                        ep.settings,
                    ),
                )
            )
        if obs is not None:
            endpoints += _endpoint_settings(ep, obs)
        if obs is not None and obs.label(LABEL_SPEC) != ep_hash:
            endpoints.append(
                Action(
                    ActionKind.UPDATE,
                    Resource.ENDPOINT,
                    f"endpoint {ep.name}",
                    "display name, description or labels changed",
                    UpdateEndpoint(
                        obs.endpoint_id,
                        ep.display_name,
                        ep.description,
                        _labels(stack, ep.name, ep_hash, ep.labels, _keep_expiry(obs.labels, exp)),
                    ),
                )
            )
        d_acts, t_acts, r_acts = _plan_deployments(stack, ep, obs, eid, refs)
        deploys += d_acts
        traffic_actions += t_acts
        removals += r_acts

    # --- removals: endpoints, then versions, then models ----------------------------
    wanted_endpoints = {e.name for e in spec.endpoints}
    for obs_ep in observed.endpoints:
        if obs_ep.name not in wanted_endpoints:
            removals += drain_endpoint(obs_ep)
            removals.append(
                Action(
                    ActionKind.DELETE,
                    Resource.ENDPOINT,
                    f"endpoint {obs_ep.name}",
                    "no longer in the spec",
                    DeleteEndpoint(obs_ep.endpoint_id),
                )
            )
    wanted_models = {m.name for m in spec.models}
    for obs_model in observed.models:
        if obs_model.name not in wanted_models:
            removals.append(_delete_model(obs_model))
            continue
        for v in _stale_versions(obs_model, kept_versions):
            removals.append(
                Action(
                    ActionKind.DELETE,
                    Resource.MODEL_VERSION,
                    f"model {obs_model.name} version {v.version_id}",
                    "no alias in the spec points to it any more",
                    DeleteVersion(
                        VersionRef(
                            obs_model.name,
                            obs_model.model_id,
                            v.label(LABEL_SPEC) or "",
                            v.version_id,
                        )
                    ),
                )
            )
    actions = early + endpoints + deploys + traffic_actions + removals
    return Plan(stack, tuple(actions))


def _keep_expiry(labels: Labels, exp: int | None) -> int | None:
    # An update must not push an expiry forward silently, nor drop it.
    old = dict(labels).get(LABEL_EXPIRES)
    return int(old) if old and old.isdigit() else exp


def _version_labels(
    stack: str, model: Model, v: ModelVersion, spec_hash: str, art_hash: str, exp: int | None
) -> Labels:
    return _labels(
        stack,
        model.name,
        spec_hash,
        (*model.labels, *v.labels),
        exp,
        {LABEL_HASH: art_hash[:63], LABEL_ALIAS: label_value(v.alias)},
    )


def _plan_model(
    spec: Spec,
    model: Model,
    obs: ObservedModel | None,
    inputs: PlanInputs,
    refs: dict[tuple[str, str], VersionRef],
    kept: set[tuple[str, str]],
    exp: int | None,
) -> tuple[list[Action], list[Action], list[Action], list[Action]]:
    """(uploads, version creates/updates, alias removals, alias additions) of one model."""
    stack = spec.stack
    mid = obs.model_id if obs else model_id(stack, model.name)
    actions: list[Action] = []
    uploads: list[Action] = []
    observed_versions = obs.versions if obs else ()
    # alias -> version currently holding it (what Vertex has now)
    holder = {a: v for v in observed_versions for a in v.aliases}
    desired_aliases: dict[str, set[str]] = {}  # spec_hash -> aliases it must carry
    chosen: dict[str, ObservedVersion | None] = {}  # spec_hash -> matched version
    creates: dict[str, int] = {}  # spec_hash -> index in `actions` of its CreateVersion
    parent_exists = obs is not None
    for i, v in enumerate(model.versions):
        art_hash = inputs.artifact_hashes.get((model.name, v.alias))
        if art_hash is None:
            raise ConfigError(
                f"no artifact hash for {model.name}@{v.alias}",
                hint="hash the artifacts before planning (deployer.reconcile.upload)",
            )
        # The container's every setting, not just its image: a changed route or env is a new
        # version (an image-only container's fingerprint is the image: hashes stay).
        sh = version_spec_hash(art_hash, v.container_spec.fingerprint, model.kms_key_name)
        aliases = desired_aliases.setdefault(sh, set())
        aliases.add(v.alias)
        if i == len(model.versions) - 1:
            aliases.add(DEFAULT_ALIAS)  # the last version in the spec is the default
        if sh in chosen:
            refs[(model.name, v.alias)] = refs[(model.name, chosen_alias(refs, model, sh))]
            continue
        match = _match_version(observed_versions, sh, v.alias)
        chosen[sh] = match
        if match is not None:
            refs[(model.name, v.alias)] = VersionRef(model.name, mid, sh, match.version_id)
            kept.add((mid, match.version_id))
            if match.description != v.description or _user_labels(match.labels) != _user_labels(
                (*model.labels, *v.labels)
            ):
                actions.append(
                    Action(
                        ActionKind.UPDATE,
                        Resource.MODEL_VERSION,
                        f"model {model.name}@{v.alias}",
                        "description or labels changed",
                        UpdateVersion(
                            refs[(model.name, v.alias)],
                            v.description,
                            _version_labels(
                                stack, model, v, sh, art_hash, _keep_expiry(match.labels, exp)
                            ),
                        ),
                    )
                )
            continue
        ref = VersionRef(model.name, mid, sh, None)
        refs[(model.name, v.alias)] = ref
        if v.is_local:
            prefix = artifact_prefix(stack, model.name, art_hash)
            uploads.append(
                Action(
                    ActionKind.CREATE,
                    Resource.ARTIFACT,
                    f"artifact {model.name}@{v.alias}",
                    f"content {art_hash[:12]} has no model version",
                    UploadArtifact(
                        model.name, v.alias, v.artifact, art_hash, spec.bucket.name, prefix
                    ),
                )
            )
            uri = f"gs://{spec.bucket.name}/{prefix}"
        else:
            uri = v.artifact
        old = holder.get(v.alias)
        kind = ActionKind.REPLACE if old is not None else ActionKind.CREATE
        reason = (
            "artifact, container or encryption key changed"
            if old is not None
            else ("new model" if not parent_exists else "new version")
        )
        creates[sh] = len(actions)
        actions.append(
            Action(
                kind,
                Resource.MODEL_VERSION,
                f"model {model.name}@{v.alias}",
                reason,
                CreateVersion(
                    ref,
                    parent_exists,
                    model.display_name,
                    v.description,
                    uri,
                    v.container_image,
                    _version_labels(stack, model, v, sh, art_hash, exp),
                    (),
                    model.description,
                    model.kms_key_name,
                    v.container_spec,
                ),
            )
        )
        parent_exists = True
    # The registry model's own fields (every version is uploaded with them, so only a
    # changed spec or a model made elsewhere differs).
    if obs is not None and obs.display_name is not None:
        changed = [
            what
            for what, have, want in (
                ("display name", obs.display_name, model.display_name),
                ("description", obs.description or "", model.description),
            )
            if have != want
        ]
        if changed:
            actions.append(
                Action(
                    ActionKind.UPDATE,
                    Resource.MODEL,
                    f"model {model.name}",
                    f"{' and '.join(changed)} changed",
                    UpdateModel(mid, model.display_name, model.description),
                )
            )
    # A create carries "default" (which Vertex moves by itself) and the aliases no version
    # holds now; aliases held elsewhere are freed first and given out after, so one is never
    # asked for while another version still holds it. (Set once the loop has seen every
    # alias of the version: two aliases may name the same artifact.)
    carried: dict[str, set[str]] = {}
    for sh, index in creates.items():
        carried[sh] = {a for a in desired_aliases[sh] if a == DEFAULT_ALIAS or a not in holder}
        create = actions[index]
        assert isinstance(create.payload, CreateVersion)
        actions[index] = replace(
            create, payload=replace(create.payload, aliases=tuple(sorted(carried[sh])))
        )
    removes: list[Action] = []
    adds: list[Action] = []
    wanted_by_version: dict[tuple[str | None, str], set[str]] = {}
    for sh, a in desired_aliases.items():
        match = chosen[sh]
        wanted_by_version[(match.version_id if match else None, sh)] = a
    for ov in observed_versions:
        keep = desired_aliases.get(ov.label(LABEL_SPEC) or "", set())
        if chosen.get(ov.label(LABEL_SPEC) or "") is not ov:
            keep = set()
        drop = tuple(sorted(a for a in ov.aliases if a not in keep and a != DEFAULT_ALIAS))
        if drop:
            ref = VersionRef(model.name, mid, ov.label(LABEL_SPEC) or "", ov.version_id)
            removes.append(
                Action(
                    ActionKind.UPDATE,
                    Resource.ALIASES,
                    f"model {model.name} version {ov.version_id}",
                    f"alias {', '.join(drop)} moves elsewhere",
                    MergeAliases(ref, (), drop),
                )
            )
    for (vid, sh), aliases in wanted_by_version.items():
        match = chosen[sh]
        have = set(match.aliases) if match else carried[sh]
        add = tuple(sorted(aliases - have))
        if add:
            any_alias = min(aliases - {DEFAULT_ALIAS})
            adds.append(
                Action(
                    ActionKind.UPDATE,
                    Resource.ALIASES,
                    f"model {model.name}@{any_alias}",
                    f"gets alias {', '.join(add)}",
                    MergeAliases(VersionRef(model.name, mid, sh, vid), add, ()),
                )
            )
    return uploads, actions, removes, adds


def chosen_alias(refs: Mapping[tuple[str, str], VersionRef], model: Model, sh: str) -> str:
    """The first alias of `model` already resolved to the version with spec hash `sh`."""
    return next(a for (m, a), r in refs.items() if m == model.name and r.spec_hash == sh)


def _match_version(
    versions: tuple[ObservedVersion, ...], sh: str, alias: str
) -> ObservedVersion | None:
    candidates = [v for v in versions if v.label(LABEL_SPEC) == sh]
    if not candidates:
        return None
    # Duplicates can only come from an interrupted run; keep the one already aliased,
    # else the oldest, and let the others go as stale.
    candidates.sort(key=lambda v: (alias not in v.aliases, _vid_key(v.version_id)))
    return candidates[0]


def _vid_key(version_id: str) -> tuple[int, str]:
    return (int(version_id), "") if version_id.isdigit() else (1 << 62, version_id)


def _stale_versions(obs: ObservedModel, kept: set[tuple[str, str]]) -> list[ObservedVersion]:
    # Vertex refuses to delete the default version; it only gets here when the spec's
    # default moved, and the alias step moves "default" before removals run.
    return [v for v in obs.versions if (obs.model_id, v.version_id) not in kept]


def _delete_model(obs: ObservedModel) -> Action:
    return Action(
        ActionKind.DELETE,
        Resource.MODEL,
        f"model {obs.name}",
        "no longer in the spec",
        DeleteModel(obs.model_id),
    )


def _plan_deployments(
    stack: str,
    ep: Endpoint,
    obs: ObservedEndpoint | None,
    eid: str,
    refs: Mapping[tuple[str, str], VersionRef],
) -> tuple[list[Action], list[Action], list[Action]]:
    deploys: list[Action] = []
    current: dict[str, ObservedDeployment] = {d.id: d for d in obs.deployments} if obs else {}
    split: dict[str, int] = {k: v for k, v in obs.traffic if v} if obs else {}
    present = set(current)  # deployed now, or deployed by an earlier action of this plan
    desired: dict[str, int] = {}
    policies: dict[str, RolloutPolicy] = {}  # deployed id -> how it takes traffic
    # People read model@alias in the traffic line, not deployed-model ids.
    names = {o.id: o.display_name for o in current.values()}
    for d in ep.deployments:
        ref = refs[(d.model, d.version)]
        did = deployed_model_id(stack, ep.name, _deployment_identity(d, ref.spec_hash))
        desired[did] = desired.get(did, 0) + d.traffic
        names[did] = d.ref
        if d.rollout is not None:
            policies[did] = d.rollout
        addr = f"endpoint {ep.name} / {d.ref}"
        have = current.get(did)
        if have is None:
            after = (("0", 100),) if not present else (*sorted(split.items()), ("0", 0))
            if not present:
                split = {did: 100}
            present.add(did)
            replaces = any(o.display_name == d.ref for o in current.values())
            deploys.append(
                Action(
                    ActionKind.REPLACE if replaces else ActionKind.CREATE,
                    Resource.DEPLOYMENT,
                    addr,
                    "version, machine, accelerator or a replace-only setting (service account, "
                    "spot, access logging, resource pool) changed"
                    if replaces
                    else "not deployed",
                    Deploy(
                        eid,
                        did,
                        ref,
                        d.ref,
                        d.machine_type,
                        d.accelerator.type if d.accelerator else None,
                        d.accelerator.count if d.accelerator else 0,
                        d.min_replicas,
                        d.max_replicas,
                        after,
                        d.settings,
                    ),
                )
            )
        else:
            deploys += _mutation(eid, did, addr, have, d)
    traffic: list[Action] = []
    want = _nonzero(desired)
    if want != _nonzero(split):

        def show(pairs: Traffic) -> str:
            shown = [names.get(k, k) for k, _ in pairs]
            return (
                ", ".join(
                    f"{n if shown.count(n) == 1 else f'{n} ({k})'}={v}"
                    for n, (k, v) in zip(shown, pairs, strict=True)
                )
                or "none"
            )

        change = f"split {show(_nonzero(split))} -> {show(want)}"
        gaining = [k for k, v in want if v > split.get(k, 0)]
        rolled = [k for k in gaining if k in policies]
        if rolled and len(gaining) > 1:
            raise ConfigError(
                f"endpoint {ep.name}: {len(gaining)} deployments gain traffic at once "
                f"({', '.join(sorted(names.get(k, k) for k in gaining))}) and one has a "
                "rollout policy; a rollout verifies one new version at a time",
                hint="apply the new versions one at a time (the others at traffic: 0)",
            )
        # The first version on an endpoint takes it whole: there is no split to go back to.
        if rolled and split:
            did = rolled[0]
            policy = policies[did]
            payload: SetTraffic | Rollout = Rollout(
                ep.name,
                eid,
                did,
                tuple(sorted((k, names[k]) for k in {*split, *desired} if k in names)),
                want,
                policy,
            )
            reason = f"{policy.describe()} ({change})"
        else:
            payload, reason = SetTraffic(eid, want), change
        traffic.append(
            Action(ActionKind.UPDATE, Resource.TRAFFIC, f"endpoint {ep.name}", reason, payload)
        )
    removals: list[Action] = []
    if obs is not None:
        # Traffic already moved to what the spec keeps, so these carry none.
        stale = ObservedEndpoint(
            obs.name,
            obs.endpoint_id,
            obs.resource,
            obs.labels,
            obs.display_name,
            obs.description,
            obs.deployments,
            tuple((k, v) for k, v in want),
        )
        removals = drain_endpoint(stale, keep=frozenset(desired))
    return deploys, traffic, removals


def _mutation(
    eid: str, did: str, addr: str, have: ObservedDeployment, d: Deployment
) -> list[Action]:
    """mutateDeployedModel for replica bounds, autoscaling targets and container logging."""
    changes = []
    if (have.min_replicas, have.max_replicas) != (d.min_replicas, d.max_replicas):
        changes.append(
            f"replicas {have.min_replicas}-{have.max_replicas} -> {d.min_replicas}-{d.max_replicas}"
        )
    # None: the provider did not read them, so nothing to compare (never a guess).
    wanted = d.settings.mutable
    settings_changed = have.settings is not None and have.settings != wanted
    if settings_changed and have.settings is not None:
        was = dict(have.settings)
        changes += [
            f"{k} {was.get(k) or 'unset'} -> {v or 'unset'}" for k, v in wanted if was.get(k) != v
        ]
    if not changes:
        return []
    return [
        Action(
            ActionKind.UPDATE,
            Resource.DEPLOYMENT,
            addr,
            "; ".join(changes),
            MutateDeployment(
                eid, did, d.min_replicas, d.max_replicas, d.settings if settings_changed else None
            ),
        )
    ]


def _endpoint_settings(ep: Endpoint, obs: ObservedEndpoint) -> list[Action]:
    """The endpoint's own settings: logging is patched in place; create-only ones refused."""
    if obs.fixed_settings is not None and obs.fixed_settings != ep.settings.fixed:
        was = dict(obs.fixed_settings)
        changed = [k for k, v in ep.settings.fixed if was.get(k) != v]
        raise ConfigError(
            f"endpoint {ep.name}: {', '.join(changed)} can only be set when Vertex creates an "
            "endpoint, and this one exists with other values",
            hint="give the endpoint a new name (apply creates it beside the old one and removes "
            "the old one once the spec no longer names it), or restore the old values",
        )
    if obs.logging is None or obs.logging == ep.settings.logging:
        return []
    return [
        Action(
            ActionKind.UPDATE,
            Resource.ENDPOINT,
            f"endpoint {ep.name}",
            f"request/response logging {obs.logging or 'off'} -> {ep.settings.logging or 'off'}",
            UpdateEndpointLogging(
                obs.endpoint_id, ep.settings.predict_request_response_logging_config
            ),
        )
    ]


def plan_teardown(observed: StackState) -> Plan:
    """Remove every endpoint and model labelled with the stack (batch jobs, objects and
    the bucket are teardown's own steps). Works whatever the spec says now."""
    actions: list[Action] = []
    for ep in observed.endpoints:
        actions += drain_endpoint(ep, reason="teardown")
        actions.append(
            Action(
                ActionKind.DELETE,
                Resource.ENDPOINT,
                f"endpoint {ep.name}",
                "teardown",
                DeleteEndpoint(ep.endpoint_id),
            )
        )
    for m in observed.models:
        actions.append(
            Action(
                ActionKind.DELETE,
                Resource.MODEL,
                f"model {m.name}",
                "teardown",
                DeleteModel(m.model_id),
            )
        )
    return Plan(observed.stack, tuple(actions))


__all__ = [
    "Action",
    "ActionKind",
    "CreateBucket",
    "CreateEndpoint",
    "CreateVersion",
    "DeleteEndpoint",
    "DeleteModel",
    "DeleteVersion",
    "Deploy",
    "Labels",
    "MergeAliases",
    "MutateDeployment",
    "Payload",
    "Plan",
    "PlanInputs",
    "Resource",
    "Rollout",
    "SetTraffic",
    "Traffic",
    "Undeploy",
    "UpdateEndpoint",
    "UpdateEndpointLogging",
    "UpdateModel",
    "UpdateVersion",
    "UploadArtifact",
    "VersionRef",
    "drain_endpoint",
    "plan_stack",
    "plan_teardown",
    "version_spec_hash",
]
