"""Saved plans (`deployer plan --out FILE`): the file format, and how a plan is judged stale.

Owns: `SavedPlan` and its versioned JSON file (`write_saved_plan`, `read_saved_plan`,
`is_saved_plan`: a plan file is JSON carrying `"format": "deployer-plan"`; a spec is YAML);
the fingerprint of an observed stack (`fingerprint`: one short hash per resource over its
ids, labels, aliases, traffic, machines, version ids and deploy times, and one digest over
them all); and the checks that refuse a plan made against something that has changed since
(`check_sources`: the spec file, what it resolves to, the target and the artifacts' content;
`check_fresh`: the stack), each raising `StalePlan` naming what changed.

Must not: call any API (callers observe and pass the state in), decide what to change
(plan), or execute anything (apply).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployer.errors import ConfigError, StalePlan
from deployer.reconcile.actions import (
    CodecError,
    Plan,
    PlanInputs,
    action_from_json,
    action_to_json,
)
from deployer.spec import Spec
from deployer.state import StackState, short_hash

FORMAT = "deployer-plan"
FORMAT_VERSION = 1  # bump on any change an older reader would misread
_FIX = "write the plan again with `deployer plan SPEC --out FILE`"


@dataclass(frozen=True)
class Fingerprint:
    """What a plan was made against: a short hash per observed resource, and their digest."""

    digest: str  # sha256 hex over the sorted (address, hash) pairs
    resources: tuple[tuple[str, str], ...]  # (address, 16-hex hash), sorted by address


@dataclass(frozen=True)
class SpecSource:
    path: str  # as given to `deployer plan`; apply reads it relative to its working directory
    sha256: str  # of the file's bytes
    resolved_sha256: str  # of the loaded spec (environment interpolated, local paths relative)


@dataclass(frozen=True)
class SavedPlan:
    spec: SpecSource
    target: str
    project: str
    region: str
    stack: str
    bucket: str
    artifacts: tuple[tuple[str, str, str], ...]  # (model, alias, content hash), sorted
    fingerprint: Fingerprint
    plan: Plan
    created_at: str  # ISO 8601, UTC
    deployer_version: str


# ------------------------------------------------------------------------- fingerprint


def bucket_address(name: str) -> str:
    return f"bucket {name}"


def fingerprint(state: StackState) -> Fingerprint:
    """A stable fingerprint of what a plan depends on: the bucket, models, versions,
    endpoints and deployments of the stack. Batch jobs are left out: no plan acts on them,
    and a job finishing must not make a pending plan stale."""
    parts: dict[str, Any] = {}

    def put(address: str, value: Any) -> None:
        n, key = 1, address
        while key in parts:  # two resources with one logical name (made outside deployer)
            n += 1
            key = f"{address} #{n}"
        parts[key] = value

    # Every field the provider reports counts (asdict), so one it starts to report (an etag,
    # an update time) is covered without a change here.
    put(bucket_address(state.bucket.name), dataclasses.asdict(state.bucket))
    for m in state.models:
        model = dataclasses.asdict(m)
        model.pop("versions")
        put(f"model {m.name}", model)
        for v in m.versions:
            put(f"model {m.name} version {v.version_id}", dataclasses.asdict(v))
    for e in state.endpoints:
        fields = dataclasses.asdict(e)
        fields.pop("deployments")
        put(f"endpoint {e.name}", fields)
        for d in e.deployments:
            # deployed_at is compared here though not by ==: a deployment replaced by an
            # identical one is still a change someone else made.
            put(f"endpoint {e.name} / {d.display_name} ({d.id})", dataclasses.asdict(d))
    resources = tuple(sorted((k, short_hash(v, length=16)) for k, v in parts.items()))
    digest = hashlib.sha256(json.dumps(resources, separators=(",", ":")).encode()).hexdigest()
    return Fingerprint(digest, resources)


def fingerprint_changes(
    planned: Fingerprint, now: Fingerprint, *, ignore: Iterable[str] = ()
) -> list[str]:
    """What differs, one line per resource: "endpoint ep: changed", "...: appeared", "gone"."""
    if planned.digest == now.digest:
        return []
    before, after = dict(planned.resources), dict(now.resources)
    skip = set(ignore)
    out = []
    for address in sorted((set(before) | set(after)) - skip):
        if address not in after:
            out.append(f"{address}: gone")
        elif address not in before:
            out.append(f"{address}: appeared")
        elif before[address] != after[address]:
            out.append(f"{address}: changed")
    return out


def check_fresh(
    planned: Fingerprint, state: StackState, *, hint: str, ignore: Iterable[str] = ()
) -> None:
    """Raise `StalePlan` naming each resource of the stack that changed since `planned`."""
    changes = fingerprint_changes(planned, fingerprint(state), ignore=ignore)
    if changes:
        raise StalePlan(
            f"stack {state.stack!r} changed since the plan was made; nothing was applied:\n"
            + "\n".join(f"  - {c}" for c in changes),
            hint=hint,
        )


# ---------------------------------------------------------------------------- sources


def file_sha256(path: str | os.PathLike[str]) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def spec_digest(spec: Spec) -> str:
    """A hash of the loaded spec: what its file says once environment variables are filled
    in. Local paths count relative to the spec's folder, so the same checkout elsewhere (a
    CI runner) resolves alike; their content is checked by hash, separately."""
    base = spec.source.resolve().parent if spec.source is not None else None

    def relative(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: relative(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [relative(v) for v in value]
        if isinstance(value, str) and base is not None and os.path.isabs(value):
            return os.path.relpath(value, base)
        return value

    doc = relative(dataclasses.asdict(dataclasses.replace(spec, source=None)))
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _artifacts(hashes: Mapping[tuple[str, str], str]) -> tuple[tuple[str, str, str], ...]:
    return tuple(sorted((m, a, h) for (m, a), h in hashes.items()))


def check_sources(
    saved: SavedPlan, spec: Spec, hashes: Mapping[tuple[str, str], str], *, plan_file: str
) -> None:
    """Raise `StalePlan` if the spec file, what it resolves to, or an artifact's content
    differs from when `saved` was written. No API call."""
    problems: list[str] = []
    if spec.source is not None and file_sha256(spec.source) != saved.spec.sha256:
        problems.append(f"the spec file {saved.spec.path} changed")
    elif spec_digest(spec) != saved.spec.resolved_sha256:
        problems.append(
            f"the spec {saved.spec.path} resolves differently here "
            "(an environment variable it reads has another value)"
        )
    for name in ("target", "project", "region", "stack"):
        planned, now = getattr(saved, name), _spec_field(spec, name)
        if planned != now:
            problems.append(f"{name}: the plan is for {planned!r}, the spec now gives {now!r}")
    if saved.bucket != spec.bucket.name:
        problems.append(f"bucket: the plan is for {saved.bucket!r}, now {spec.bucket.name!r}")
    before = {(m, a): h for m, a, h in saved.artifacts}
    for key in sorted(set(before) | set(hashes)):
        old, new = before.get(key), hashes.get(key)
        if old != new:
            what = f"artifact of {key[0]}@{key[1]}"
            if old is None or new is None:
                problems.append(f"{what}: {'not in the plan' if old is None else 'gone'}")
            else:
                problems.append(f"{what}: content {old[:12]} -> {new[:12]}")
    if problems:
        raise StalePlan(
            f"the saved plan {plan_file} no longer matches what it was made from; "
            "nothing was applied:\n" + "\n".join(f"  - {p}" for p in problems),
            hint=replan_hint(saved, plan_file),
        )


def replan_hint(saved: SavedPlan, plan_file: str) -> str:
    return (
        f"run `deployer plan {saved.spec.path} --out {plan_file}` again, review it, "
        "then apply the new plan"
    )


def _spec_field(spec: Spec, name: str) -> str:
    value = getattr(spec, name)
    return str(value.value if hasattr(value, "value") else value)


# ------------------------------------------------------------------------------- file


def make_saved_plan(
    spec: Spec, spec_path: str, plan: Plan, observed: StackState, inputs: PlanInputs
) -> SavedPlan:
    from deployer import __version__

    return SavedPlan(
        spec=SpecSource(spec_path, file_sha256(spec_path), spec_digest(spec)),
        target=_spec_field(spec, "target"),
        project=spec.project,
        region=spec.region,
        stack=spec.stack,
        bucket=spec.bucket.name,
        artifacts=_artifacts(inputs.artifact_hashes),
        fingerprint=fingerprint(observed),
        plan=plan,
        created_at=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        deployer_version=__version__,
    )


def saved_plan_to_json(saved: SavedPlan) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "deployer_version": saved.deployer_version,
        "created_at": saved.created_at,
        "spec": dataclasses.asdict(saved.spec),
        "target": saved.target,
        "project": saved.project,
        "region": saved.region,
        "stack": saved.stack,
        "bucket": saved.bucket,
        "artifacts": [{"model": m, "alias": a, "content_hash": h} for m, a, h in saved.artifacts],
        "observed": {
            "fingerprint": saved.fingerprint.digest,
            "resources": dict(saved.fingerprint.resources),
        },
        "summary": saved.plan.counts(),
        "actions": [action_to_json(a) for a in saved.plan.actions],
    }


def saved_plan_from_json(doc: Any) -> SavedPlan:
    """Decode a plan file's document; `CodecError` names the first field that is wrong."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CodecError(f'not a deployer plan (no "format": "{FORMAT}")')
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise CodecError(
            f"format_version {version!r}: this deployer reads version {FORMAT_VERSION} only"
        )

    def text(obj: Any, key: str, where: str) -> str:
        value = obj.get(key) if isinstance(obj, dict) else None
        if not isinstance(value, str):
            raise CodecError(f"{where}{key}: expected a string, got {value!r}")
        return value

    spec, observed = doc.get("spec"), doc.get("observed")
    artifacts, actions = doc.get("artifacts"), doc.get("actions")
    resources = observed.get("resources") if isinstance(observed, dict) else None
    if not isinstance(resources, dict) or not all(isinstance(v, str) for v in resources.values()):
        raise CodecError("observed.resources: expected an object of strings")
    if not isinstance(artifacts, list) or not isinstance(actions, list):
        raise CodecError("artifacts and actions must be arrays")
    return SavedPlan(
        spec=SpecSource(
            text(spec, "path", "spec."),
            text(spec, "sha256", "spec."),
            text(spec, "resolved_sha256", "spec."),
        ),
        target=text(doc, "target", ""),
        project=text(doc, "project", ""),
        region=text(doc, "region", ""),
        stack=text(doc, "stack", ""),
        bucket=text(doc, "bucket", ""),
        artifacts=tuple(
            sorted(
                (
                    text(a, "model", f"artifacts[{i}]."),
                    text(a, "alias", f"artifacts[{i}]."),
                    text(a, "content_hash", f"artifacts[{i}]."),
                )
                for i, a in enumerate(artifacts)
            )
        ),
        fingerprint=Fingerprint(
            text(observed, "fingerprint", "observed."), tuple(sorted(resources.items()))
        ),
        plan=Plan(
            text(doc, "stack", ""),
            tuple(action_from_json(a, f"actions[{i}]") for i, a in enumerate(actions)),
        ),
        created_at=text(doc, "created_at", ""),
        deployer_version=text(doc, "deployer_version", ""),
    )


def write_saved_plan(path: str | os.PathLike[str], saved: SavedPlan) -> None:
    """Write atomically: a reader never sees half a plan."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(saved_plan_to_json(saved), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write the plan to {str(path)!r}: {exc.strerror or exc}",
            hint="give --out a path in a folder you can write to",
        ) from None


def _read_json(path: str | os.PathLike[str]) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def is_saved_plan(path: str | os.PathLike[str]) -> bool:
    """True for a JSON file that says it is a deployer plan; a spec (YAML) is not."""
    doc = _read_json(path)
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def read_saved_plan(path: str | os.PathLike[str]) -> SavedPlan:
    doc = _read_json(path)
    try:
        return saved_plan_from_json(doc)
    except CodecError as exc:
        raise ConfigError(f"{path}: not a usable deployer plan file: {exc}", hint=_FIX) from None
