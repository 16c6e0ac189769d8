"""The validated, frozen spec: what the user wants to exist.

This module owns the internal spec model (frozen dataclasses, `str` enums) and
`load_spec`, which turns a YAML file into it. Pydantic is used only at the YAML
boundary (see `deployer.spec.schema`), never inside; the cross-field rules live in
`deployer.spec.checks` and the machine/accelerator catalog in `deployer.spec.catalog`
(both imported lazily, so importing the model stays cheap). Loading validates the whole
file before returning: every problem is reported at once as a `SpecError`
naming file, line, field and fix. It must not do I/O beyond reading the spec
and checking local artifact paths, and never calls an API.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError, SpecError

if TYPE_CHECKING:
    import yaml


class Target(str, enum.Enum):
    LOCAL = "local"  # the embedded emulator (default)
    VERTEX = "vertex"  # real Vertex AI, Application Default Credentials


class InputFormat(str, enum.Enum):
    JSONL = "jsonl"
    CSV = "csv"
    FILE_LIST = "file-list"
    TF_RECORD = "tf-record"


@dataclass(frozen=True)
class Accelerator:
    type: str  # Vertex enum name, e.g. "NVIDIA_TESLA_T4"
    count: int  # accelerators per replica, >= 1


@dataclass(frozen=True)
class Bucket:
    name: str  # GCS bucket name, validated against GCS naming rules
    location: str  # e.g. "US-CENTRAL1"; defaults to the spec's region, upper-cased
    create: bool  # True: the stack creates (and teardown deletes) it; False: must exist


@dataclass(frozen=True)
class ModelVersion:
    alias: str  # version alias in the registry, e.g. "v1"; unique within the model
    artifact: str  # absolute local SavedModel dir, or a gs:// URI
    container_image: str  # serving container image (version overrides model)
    description: str = ""  # shown in the registry
    labels: tuple[tuple[str, str], ...] = ()  # user labels, merged with deployer's

    @property
    def is_local(self) -> bool:
        return not self.artifact.startswith("gs://")


@dataclass(frozen=True)
class Model:
    name: str  # logical name; the registry model id is derived from stack + name
    versions: tuple[ModelVersion, ...]  # in spec order; the last is the newest
    display_name: str  # registry display name (defaults to name)
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()

    def version(self, alias: str) -> ModelVersion:
        for v in self.versions:
            if v.alias == alias:
                return v
        raise KeyError(f"{self.name}@{alias}")


@dataclass(frozen=True)
class Deployment:
    model: str  # Model.name
    version: str  # ModelVersion.alias
    traffic: int  # percent, 0..100; an endpoint's deployments sum to 100
    machine_type: str  # e.g. "n1-standard-4"
    min_replicas: int  # >= 1
    max_replicas: int  # >= min_replicas
    accelerator: Accelerator | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Endpoint:
    name: str  # logical name; the endpoint id is derived from stack + name
    deployments: tuple[Deployment, ...]
    display_name: str  # defaults to name
    description: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BatchInput:
    paths: tuple[str, ...]  # absolute local paths (files or folders) and/or gs:// URIs
    format: InputFormat


@dataclass(frozen=True)
class BatchJob:
    name: str  # logical name, labelled on the job
    model: str  # Model.name
    version: str  # ModelVersion.alias
    input: BatchInput
    output_prefix: str  # object prefix in the stack bucket, e.g. "predictions/"
    machine_type: str
    starting_replicas: int  # >= 1
    max_replicas: int  # >= starting_replicas
    accelerator: Accelerator | None = None
    batch_size: int | None = None  # manualBatchTuningParameters.batchSize, if set

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


@dataclass(frozen=True)
class Guards:
    max_hourly_usd: float | None = None  # apply refuses plans above this steady-state cost
    ttl_seconds: int | None = None  # expiry stamped as a label; `deployer reap` enforces it


@dataclass(frozen=True)
class Spec:
    stack: str  # label value on everything the stack owns; [a-z][a-z0-9-]{0,39}
    project: str
    region: str
    target: Target
    bucket: Bucket
    models: tuple[Model, ...]
    endpoints: tuple[Endpoint, ...] = ()
    batch_jobs: tuple[BatchJob, ...] = ()
    guards: Guards = field(default_factory=Guards)
    source: Path | None = None  # the file it was loaded from (for messages)

    def model(self, name: str) -> Model:
        for m in self.models:
            if m.name == name:
                return m
        raise KeyError(name)

    def endpoint(self, name: str) -> Endpoint:
        for e in self.endpoints:
            if e.name == name:
                return e
        raise KeyError(name)

    def batch_job(self, name: str) -> BatchJob:
        for j in self.batch_jobs:
            if j.name == name:
                return j
        raise KeyError(name)


# ---------------------------------------------------------------------------
# Loading: YAML (with line numbers) -> env interpolation -> pydantic boundary
# -> semantic checks -> frozen dataclasses. Every problem is collected first.
# ---------------------------------------------------------------------------

_ENV_REF = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def load_spec(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    check_artifacts: bool = True,
) -> Spec:
    """Read, interpolate and fully validate a spec file; raise `SpecError` listing every problem.

    `environ` defaults to `os.environ`. Relative artifact and input paths are
    resolved against the spec file's directory. `check_artifacts=False` skips
    the filesystem checks of local artifacts and batch inputs (e.g. for `plan`
    on a machine that does not hold them).
    """
    from deployer.spec import checks as spec_checks

    file = str(path)
    source = Path(path)
    env = os.environ if environ is None else environ
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"spec file {file!r} does not exist",
            hint="pass the path of a YAML spec, e.g. configs/mnist.yaml",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read spec file {file!r}: {exc}") from exc

    lines: dict[tuple[str | int, ...], int] = {}
    findings = spec_checks.Findings(file, lines)
    data = _read_yaml(text, findings, env)
    if findings.problems and data is None:
        raise SpecError(findings.problems)
    if data is None or (isinstance(data, str) and not data.strip()):
        findings.add(
            (),
            "the spec file is empty",
            "write a spec; `deployer schema` prints every field",
            line=1,
        )
        raise SpecError(findings.problems)
    if not isinstance(data, dict):
        findings.add(
            (),
            f"the top level must be a mapping (key: value), not a {type(data).__name__}",
            "start the file with `stack: NAME`, then project, region, bucket, models",
            line=1,
        )
        raise SpecError(findings.problems)

    # Top-level `x-*` keys hold YAML anchors for reuse (as in docker compose); not part of the spec.
    data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith("x-"))}
    doc = _validate_shape(data, findings)
    base_dir = source.resolve().parent
    spec_checks.check_document(data, findings, base_dir=base_dir, check_artifacts=check_artifacts)
    if findings.problems or doc is None:
        raise SpecError(sorted(findings.problems, key=lambda p: p.line or 0))
    return _build(doc, base_dir=base_dir, source=source)


def _read_yaml(text: str, findings: Any, env: Mapping[str, str]) -> Any:
    """Parse YAML into plain data, recording each key's line and interpolating ${VAR}."""
    import yaml  # lazily: modules that only need the dataclasses (plan, apply) skip it

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        return _to_data(node, (), loader, findings, env)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or exc.context
        if exc.context and exc.context_mark and exc.problem_mark:
            detail += f" ({exc.context} at line {exc.context_mark.line + 1})"
        findings.add(
            ("(yaml)",),
            f"YAML syntax error: {detail}",
            "fix the YAML at that line (indentation, a missing ':' or an unclosed quote "
            "or bracket are the usual causes)",
            line=mark.line + 1 if mark else None,
        )
        return None
    except yaml.YAMLError as exc:
        findings.add(("(yaml)",), f"YAML error: {exc}", "fix the YAML syntax", line=None)
        return None
    finally:
        loader.dispose()


def _to_data(
    node: yaml.Node,
    path: tuple[str | int, ...],
    loader: yaml.SafeLoader,
    findings: Any,
    env: Mapping[str, str],
    parents: frozenset[int] = frozenset(),
) -> Any:
    import yaml

    if id(node) in parents:
        findings.add(
            path,
            "a YAML alias refers to a node that contains it (a cycle)",
            "expand the alias by hand; specs cannot be recursive",
            line=node.start_mark.line + 1,
        )
        return None
    parents = parents | {id(node)}
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merges
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                # YAML 1.1 reads `on:`/`yes:` as booleans and `1:` as an int: keep the text as
                # typed.
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else str(key)
            here = (*path, key)
            if key in out:
                findings.add(
                    here,
                    f"duplicate key {key!r} in this mapping",
                    "keep one of them (YAML would silently drop the first)",
                    line=key_node.start_mark.line + 1,
                )
            findings.lines[here] = key_node.start_mark.line + 1
            out[key] = _to_data(value_node, here, loader, findings, env, parents)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            findings.lines[(*path, i)] = item.start_mark.line + 1
            items.append(_to_data(item, (*path, i), loader, findings, env, parents))
        return items
    value = loader.construct_object(node, deep=True)
    if isinstance(value, str) and "$" in value:
        return _interpolate(value, path, findings, env)
    return value


def _interpolate(
    value: str, path: tuple[str | int, ...], findings: Any, env: Mapping[str, str]
) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"  # `$$` escapes a literal dollar sign
        name, default = m["name"], m["default"]
        got = env.get(name)
        if default is not None:
            return got if got else default  # like the shell: empty counts as unset for :-
        if got is None:
            findings.add(
                path,
                f"environment variable {name} is not set",
                f"export {name}=..., or write ${{{name}:-default}} in the spec",
            )
            return ""
        return got

    return _ENV_REF.sub(repl, value)


_EXPECTED = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "list": "a list",
    "dict": "a mapping (key: value)",
    "model": "a mapping (key: value)",
    "model_attributes": "a mapping (key: value)",
}

# Pattern mismatches: field name -> (what the value must look like, an example).
_PATTERN_RULES = {
    "stack": (
        (
            "start with a lowercase letter and use only lowercase letters, digits and '-' "
            "(at most 40 characters)"
        ),
        "mnist",
    ),
    "name": (
        (
            "start with a lowercase letter and use only lowercase letters, digits and '-' "
            "(at most 63 characters)"
        ),
        "mnist-endpoint",
    ),
    "alias": (
        (
            "start with a lowercase letter, use letters, digits and '-', and end with a "
            "lowercase letter or digit"
        ),
        "v1",
    ),
    "region": ("be a Google Cloud region name", "us-central1"),
    "project": (
        "be a Google Cloud project id (6-30 lowercase letters, digits or '-')",
        "my-project-123",
    ),
    "ttl": ("be a number followed by m, h, d or w", "4h"),
}


def _validate_shape(data: dict[str, Any], findings: Any) -> Any:
    """Run the pydantic boundary; translate its errors into located, fixable problems."""
    import pydantic

    from deployer.spec.checks import field_path, suggest
    from deployer.spec.schema import SpecDoc, allowed_keys

    try:
        return SpecDoc.model_validate(data)
    except pydantic.ValidationError as exc:
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            message, fix = _translate(err, loc, allowed_keys, suggest, field_path)
            findings.add(loc, message, fix)
        return None


def _translate(
    err: Any, loc: tuple[Any, ...], allowed_keys: Any, suggest: Any, field_path: Any
) -> tuple[str, str]:
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    # Name list entries by their path ("models[0]"), fields by their key ("traffic").
    leaf = (str(loc[-1]) if isinstance(loc[-1], str) else field_path(loc)) if loc else ""
    if value is None and kind.endswith("_type") and loc:
        return f"{leaf} is empty", f"give {leaf} a value (`deployer schema` shows its shape)"
    if kind == "extra_forbidden":
        allowed = allowed_keys(loc[:-1]) or ()
        hint = suggest(leaf, allowed)
        listed = f"allowed keys here: {', '.join(allowed)}"
        return f"unknown key {leaf!r}", f"{hint} ({listed})" if hint else f"remove it ({listed})"
    if kind == "missing":
        return f"missing required field {leaf!r}", f"add {leaf}: to {field_path(loc[:-1])}"
    if kind == "string_pattern_mismatch":
        rule, example = _PATTERN_RULES.get(leaf, ("match " + ctx.get("pattern", "its pattern"), ""))
        return (
            f"{leaf} {value!r} must {rule}",
            f"use a value such as {example!r}" if example else "fix the value",
        )
    if kind in ("greater_than_equal", "greater_than", "less_than_equal"):
        op = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
        }[kind]
        bound = ctx.get(op[1])
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return (
            f"{leaf} must be {op[0]} {bound}, got {value!r}",
            f"set {leaf} to a value {op[0]} {bound}",
        )
    if kind == "literal_error":
        return f"{value!r} is not a valid {leaf}", f"use one of {ctx.get('expected')}"
    if kind == "too_short":
        return f"{leaf} is empty", f"list at least one entry under {leaf}"
    if kind in ("int_from_float",):
        return f"{leaf} must be a whole number, got {value!r}", f"write {leaf} without a fraction"
    base = kind.split("_")[0] if kind not in ("model_attributes_type",) else "model_attributes"
    if kind.endswith(("_type", "_parsing")) and base in _EXPECTED:
        return (
            f"{leaf or 'value'} must be {_EXPECTED[base]}, got {type(value).__name__} {value!r}",
            f"write {leaf} as {_EXPECTED[base]}",
        )
    return f"{leaf}: {err.get('msg')}", "see `deployer schema` for the expected shape"


_TTL = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_ttl(text: str) -> int:
    """ "30m", "4h", "2d", "1w" -> seconds. Raises ValueError for anything else (or zero)."""
    m = _TTL.match(text) if isinstance(text, str) else None
    if not m or int(m[1]) == 0:
        raise ValueError(
            f"bad ttl {text!r}: use a positive number followed by m, h, d or w (e.g. 4h)"
        )
    return int(m[1]) * _UNIT_SECONDS[m[2]]


def _labels(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _build(doc: Any, *, base_dir: Path, source: Path) -> Spec:
    """Convert a validated SpecDoc (pydantic) to the frozen internal model."""
    from deployer.spec.checks import infer_format, resolve_local

    def location(text: str) -> str:
        return text if text.startswith("gs://") else str(resolve_local(text, base_dir))

    def accel(a: Any) -> Accelerator | None:
        return Accelerator(type=a.type, count=a.count) if a is not None else None

    models = tuple(
        Model(
            name=m.name,
            versions=tuple(
                ModelVersion(
                    alias=v.alias,
                    artifact=location(v.artifact),
                    container_image=v.container or m.container,
                    description=v.description,
                    labels=_labels(v.labels),
                )
                for v in m.versions
            ),
            display_name=m.display_name or m.name,
            description=m.description,
            labels=_labels(m.labels),
        )
        for m in doc.models
    )
    endpoints = tuple(
        Endpoint(
            name=e.name,
            deployments=tuple(
                Deployment(
                    model=d.model.partition("@")[0],
                    version=d.model.partition("@")[2],
                    traffic=100 if d.traffic is None else d.traffic,
                    machine_type=d.machine_type,
                    min_replicas=d.min_replicas,
                    max_replicas=d.max_replicas or d.min_replicas,
                    accelerator=accel(d.accelerator),
                )
                for d in e.deployments
            ),
            display_name=e.display_name or e.name,
            description=e.description,
            labels=_labels(e.labels),
        )
        for e in doc.endpoints
    )
    jobs = []
    for j in doc.batch_jobs:
        paths = [j.input.path] if j.input.path is not None else list(j.input.paths or ())
        fmt = j.input.format or infer_format(paths[0])
        jobs.append(
            BatchJob(
                name=j.name,
                model=j.model.partition("@")[0],
                version=j.model.partition("@")[2],
                input=BatchInput(paths=tuple(location(p) for p in paths), format=InputFormat(fmt)),
                output_prefix=j.output.prefix
                if j.output.prefix.endswith("/")
                else j.output.prefix + "/",
                machine_type=j.machine_type,
                starting_replicas=j.replicas.starting,
                max_replicas=j.replicas.max or j.replicas.starting,
                accelerator=accel(j.accelerator),
                batch_size=j.batch_size,
            )
        )
    guards = Guards(
        max_hourly_usd=doc.guards.max_hourly_usd,
        ttl_seconds=parse_ttl(doc.guards.ttl) if doc.guards.ttl else None,
    )
    return Spec(
        stack=doc.stack,
        project=doc.project,
        region=doc.region,
        target=Target(doc.target),
        bucket=Bucket(
            name=doc.bucket.name,
            location=doc.bucket.location or doc.region.upper(),
            create=doc.bucket.create,
        ),
        models=models,
        endpoints=endpoints,
        batch_jobs=tuple(jobs),
        guards=guards,
        source=source,
    )
