"""Pydantic models of the spec's YAML shape: the boundary, and the one source of the JSON Schema.

Owns the document shape only: keys, types, defaults, simple constraints that an
editor can check from the JSON Schema (patterns, ranges, enums). Cross-field
rules (references, traffic sums, accelerator fit, artifact paths) live in
`deployer.spec`, which also turns these models into the frozen dataclasses the
rest of the code uses. Nothing outside `deployer.spec` and `deployer.cli.spec`
should import this module (pydantic stays off the CLI's fast path).
"""

from __future__ import annotations

import json
import types
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field

# Patterns shared with the semantic checks in deployer.spec (one definition each).
STACK_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
ALIAS_PATTERN = r"^[a-z]([a-zA-Z0-9-]{0,126}[a-z0-9])?$"
REGION_PATTERN = r"^[a-z]+-[a-z]+[0-9]+$"
PROJECT_PATTERN = r"^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$"
TTL_PATTERN = r"^[0-9]+[mhdw]$"
ACCELERATOR_COUNT_MAX = 16


class _Doc(BaseModel):
    # Unknown keys are errors (typos must not be silently ignored); values are
    # coerced laxly so `${VAR}` interpolation can fill numbers and booleans.
    model_config = ConfigDict(extra="forbid", frozen=True)


Labels = dict[str, str]


class BucketDoc(_Doc):
    name: str = Field(description="GCS bucket name (3-63 chars: lowercase letters, digits, - _ .).")
    create: bool = Field(
        True,
        description="true: the stack creates the bucket and teardown deletes it; false: it must "
        "exist.",
    )
    location: str | None = Field(
        None, description="Bucket location; defaults to the region, upper-cased."
    )


class ModelVersionDoc(_Doc):
    alias: str = Field(
        pattern=ALIAS_PATTERN, description="Version alias, unique within the model, e.g. v1."
    )
    artifact: str = Field(
        description="SavedModel directory (relative to the spec file) or a gs:// URI."
    )
    container: str | None = Field(
        None, description="Serving container image; overrides the model's."
    )
    description: str = Field("", description="Shown in the model registry.")
    labels: Labels = Field(default_factory=dict, description="User labels (GCP label rules).")


class ModelDoc(_Doc):
    name: str = Field(pattern=NAME_PATTERN, description="Logical model name, unique in the spec.")
    container: str | None = Field(
        None,
        description="Default serving container image for the versions, e.g. "
        "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest.",
    )
    display_name: str | None = Field(None, description="Registry display name; defaults to name.")
    description: str = Field("", description="Shown in the model registry.")
    labels: Labels = Field(
        default_factory=dict, description="User labels on every version (GCP label rules)."
    )
    versions: list[ModelVersionDoc] = Field(
        min_length=1, description="Oldest first; the last is newest."
    )


class AcceleratorDoc(_Doc):
    type: str = Field(description="Vertex accelerator type, e.g. NVIDIA_TESLA_T4 or NVIDIA_L4.")
    count: int = Field(1, ge=1, le=ACCELERATOR_COUNT_MAX, description="Accelerators per replica.")


class DeploymentDoc(_Doc):
    model: str = Field(description="model@alias, e.g. mnist@v1.")
    traffic: int | None = Field(
        None,
        ge=0,
        le=100,
        description="Percent of the endpoint's traffic; required when it has several deployments.",
    )
    machine_type: str = Field(description="e.g. n1-standard-4, g2-standard-8, a2-highgpu-1g.")
    accelerator: AcceleratorDoc | None = Field(
        None, description="GPUs per replica; omit for CPU only."
    )
    min_replicas: int = Field(1, ge=1, description="Replicas always running (and billed).")
    max_replicas: int | None = Field(None, ge=1, description="Defaults to min_replicas.")


class EndpointDoc(_Doc):
    name: str = Field(
        pattern=NAME_PATTERN, description="Logical endpoint name, unique in the spec."
    )
    display_name: str | None = Field(None, description="Display name; defaults to name.")
    description: str = Field("", description="Shown on the endpoint.")
    labels: Labels = Field(default_factory=dict, description="User labels (GCP label rules).")
    deployments: list[DeploymentDoc] = Field(
        min_length=1, description="Model versions served, with their traffic split (sums to 100)."
    )


class BatchInputDoc(_Doc):
    path: str | None = Field(
        None, description="A local file or folder (relative to the spec) or gs:// URI."
    )
    paths: list[str] | None = Field(None, description="Several inputs; use instead of path.")
    format: Literal["jsonl", "csv", "file-list", "tf-record"] | None = Field(
        None, description="Instances format; inferred from the file extension when omitted."
    )


class BatchOutputDoc(_Doc):
    prefix: str = Field("predictions/", description="Object prefix in the stack bucket.")


class BatchReplicasDoc(_Doc):
    starting: int = Field(1, ge=1, description="Replicas the job starts with.")
    max: int | None = Field(None, ge=1, description="Defaults to starting.")


class BatchJobDoc(_Doc):
    name: str = Field(pattern=NAME_PATTERN, description="Logical job name, unique in the spec.")
    model: str = Field(description="model@alias of the version to run.")
    input: BatchInputDoc = Field(description="What to score: path or paths, and format.")
    output: BatchOutputDoc = Field(
        default_factory=lambda: BatchOutputDoc.model_validate({}),
        description="Where results go in the stack bucket.",
    )
    machine_type: str = Field(description="e.g. n1-standard-4.")
    accelerator: AcceleratorDoc | None = Field(
        None, description="GPUs per replica; omit for CPU only."
    )
    replicas: BatchReplicasDoc = Field(
        default_factory=lambda: BatchReplicasDoc.model_validate({}),
        description="Replica count range.",
    )
    batch_size: int | None = Field(None, ge=1, description="Instances per model call.")


class GuardsDoc(_Doc):
    max_hourly_usd: float | None = Field(
        None, gt=0, description="apply refuses plans whose steady-state cost exceeds this."
    )
    ttl: str | None = Field(
        None,
        pattern=TTL_PATTERN,
        description="Expiry after apply, e.g. 30m, 4h, 2d, 1w; `deployer reap` enforces it.",
    )


class SpecDoc(_Doc):
    """A deployer stack: a bucket, model versions, endpoints and batch jobs."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="deployer spec",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            # `x-*` keys hold YAML anchors for reuse; the loader ignores them.
            "patternProperties": {"^x-": {}},
        },
    )

    stack: str = Field(pattern=STACK_PATTERN, description="Stack name; labels everything it owns.")
    project: str = Field(
        pattern=PROJECT_PATTERN, description="Google Cloud project id; ${VAR:-default} works."
    )
    region: str = Field(pattern=REGION_PATTERN, description="e.g. us-central1.")
    target: Literal["local", "vertex"] = Field(
        "local", description="local: the embedded emulator; vertex: real Vertex AI."
    )
    bucket: BucketDoc = Field(description="Bucket for artifacts, batch inputs and outputs.")
    models: list[ModelDoc] = Field(min_length=1, description="Registry models and their versions.")
    endpoints: list[EndpointDoc] = Field(
        default_factory=list, description="Online prediction endpoints."
    )
    batch_jobs: list[BatchJobDoc] = Field(
        default_factory=list, description="Batch prediction jobs."
    )
    guards: GuardsDoc = Field(
        default_factory=lambda: GuardsDoc.model_validate({}),
        description="Cost and lifetime limits.",
    )


# Any scalar may be written as ${VAR} or ${VAR:-default}; the loader fills it from the environment.
INTERPOLATION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}",
    "description": "${VAR} or ${VAR:-default}, filled from the environment when the spec is loaded",
}
_MOVED = ("title", "description", "default")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the spec, generated from the models above.

    Constrained scalars (patterns, enums, numbers, booleans) also accept
    `${VAR}` text, so editors do not flag interpolated values as errors.
    """
    schema = SpecDoc.model_json_schema()
    for model in [schema, *schema.get("$defs", {}).values()]:
        for name, prop in model.get("properties", {}).items():
            model["properties"][name] = _allow_interpolation(prop)
    return schema


def _constrained(part: dict[str, Any]) -> bool:
    if "$ref" in part or part.get("type") in ("object", "array", "null"):
        return False
    return part.get("type") != "string" or "pattern" in part or "enum" in part


def _allow_interpolation(prop: dict[str, Any]) -> dict[str, Any]:
    if "anyOf" in prop:
        if any(_constrained(p) for p in prop["anyOf"]):
            return {**prop, "anyOf": [*prop["anyOf"], INTERPOLATION_SCHEMA]}
        return prop
    if not _constrained(prop):
        return prop
    outer = {k: prop[k] for k in _MOVED if k in prop}
    inner = {k: v for k, v in prop.items() if k not in _MOVED}
    return {**outer, "anyOf": [inner, INTERPOLATION_SCHEMA]}


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def markdown_reference() -> str:
    """Every spec field as a Markdown table (path, type, default, meaning), from the same models."""
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            path = f"{prefix}{name}"
            nested = _model_of(info.annotation)
            is_list = "list[" in str(info.annotation)
            if info.is_required():
                default = "required"
            elif info.default_factory is not None:
                default = "`[]`" if is_list else "`{}`" if "dict[" in str(info.annotation) else ""
            elif info.default is None:
                default = ""
            else:
                default = f"`{json.dumps(info.default)}`"
            kind = _type_name(info.annotation)
            rows.append(
                f"| `{path}` | {kind} | {default} | {(info.description or '').replace('|', '/')} |"
            )
            if nested is not None:
                walk(nested, f"{path}[]." if is_list else f"{path}.")

    walk(SpecDoc, "")
    return "\n".join(rows) + "\n"


def _type_name(annotation: Any) -> str:
    args = get_args(annotation)
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "labels (key: value)"
    if origin is Literal:
        return " / ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(
        annotation, str(annotation)
    )


def allowed_keys(loc: tuple[str | int, ...]) -> tuple[str, ...] | None:
    """Keys allowed in the mapping at `loc` (a pydantic error location), for "did you mean"."""
    model: Any = SpecDoc
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _model_of(field.annotation)
        if model is None:
            return None
    return tuple(model.model_fields)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
