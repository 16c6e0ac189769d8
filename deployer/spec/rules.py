"""The spec's value rules, as plain functions over typed values, and the bounds fields declare.

Owns what a valid value looks like where a type cannot say it: GCS bucket and gs://
naming, label keys and values, container image references, local artifact and input
paths, machine types and accelerators (against `deployer.spec.catalog`), model@alias
references. Each rule returns the problem as (message, fix), or None; the fields of
`deployer.spec.document` call them from their validators. `Min`, `Max`, `Pattern` and
`NonEmpty` are field annotations: one declaration gives the JSON Schema its constraint
and the validator its message and fix.

Must not: import pydantic (the annotations speak its JSON-Schema hook by name only),
call an API, or read anything but the local paths it is asked about.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from deployer.spec import catalog
from deployer.spec.problems import suggest
from deployer.wire.savedmodel import NoSignatureError, SignatureError, read_signature

Problem = tuple[str, str]  # (message, fix)

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_RESERVED_LABEL_PREFIX = "deployer-"
_GS_URI = re.compile(r"^gs://(?P<bucket>[^/]*)(?:/(?P<object>.*))?$")
_IMAGE = re.compile(
    r"^[a-z0-9][a-z0-9.-]*(?::[0-9]+)?(?:/[a-z0-9._-]+)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
_FOREIGN_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
ACCELERATOR_COUNT_MAX = 16
EXAMPLE_CONTAINER = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"


# ---- field bounds: the JSON Schema constraint and the message, declared once ----

JsonHandler = Callable[[Any], dict[str, Any]]


class Bound:
    """A constraint on a field's value that reports instead of failing the whole object."""

    types: tuple[str, ...] = ("integer", "number")  # JSON Schema types it constrains

    def constraint(self) -> dict[str, Any]:
        raise NotImplementedError

    def problem(self, leaf: str, value: Any) -> Problem | None:
        raise NotImplementedError

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: JsonHandler) -> Any:
        schema = handler(core_schema)
        # An optional field's constraint belongs on its non-null branch.
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") in self.types:
                branch.update(self.constraint())
        return schema


@dataclass(frozen=True)
class Min(Bound):
    bound: float
    exclusive: bool = False

    def constraint(self) -> dict[str, Any]:
        return {"exclusiveMinimum" if self.exclusive else "minimum": _number(self.bound)}

    def problem(self, leaf: str, value: Any) -> Problem | None:
        if value > self.bound or (value == self.bound and not self.exclusive):
            return None
        words = "more than" if self.exclusive else "at least"
        bound = _number(self.bound)
        return (
            f"{leaf} must be {words} {bound}, got {value!r}",
            f"set {leaf} to a value {words} {bound}",
        )


@dataclass(frozen=True)
class Max(Bound):
    bound: float

    def constraint(self) -> dict[str, Any]:
        return {"maximum": _number(self.bound)}

    def problem(self, leaf: str, value: Any) -> Problem | None:
        if value <= self.bound:
            return None
        bound = _number(self.bound)
        return (
            f"{leaf} must be at most {bound}, got {value!r}",
            f"set {leaf} to a value at most {bound}",
        )


@dataclass(frozen=True)
class Pattern(Bound):
    regex: str
    rule: str  # what the value must do, completing "<field> '<value>' must ..."
    example: str
    types = ("string",)

    def constraint(self) -> dict[str, Any]:
        return {"pattern": self.regex}

    def problem(self, leaf: str, value: Any) -> Problem | None:
        if _compiled(self.regex).search(value):
            return None
        return f"{leaf} {value!r} must {self.rule}", f"use a value such as {self.example!r}"


@dataclass(frozen=True)
class NonEmpty(Bound):
    types = ("array",)

    def constraint(self) -> dict[str, Any]:
        return {"minItems": 1}

    def problem(self, leaf: str, value: Any) -> Problem | None:
        return None if value else (f"{leaf} is empty", f"list at least one entry under {leaf}")


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@lru_cache(maxsize=64)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


# ---- names ----


def bucket_name_problem(name: str) -> str | None:
    """Why `name` breaks GCS bucket naming rules, or None if it is valid."""
    if not 3 <= len(name) <= (222 if "." in name else 63):
        return f"bucket name {name!r} must be 3-63 characters long (it has {len(name)})"
    if "." in name and any(len(part) > 63 for part in name.split(".")):
        return f"each dot-separated part of bucket name {name!r} must be at most 63 characters"
    bad = sorted(
        {c for c in name if not (c.islower() or c.isdigit() or c in "-_.") or not c.isascii()}
    )
    if bad:
        return (
            f"bucket name {name!r} may contain only lowercase letters, digits, '-', '_' and "
            f"'.' (found {''.join(bad)!r})"
        )
    if not (name[0].isalnum() and name[-1].isalnum()):
        return f"bucket name {name!r} must start and end with a letter or digit"
    if ".." in name or ".-" in name or "-." in name:
        return f"bucket name {name!r} must not have a dot next to another dot or a dash"
    if name.startswith("goog") or "google" in name or "g00gle" in name:
        return f"bucket name {name!r} must not start with 'goog' or contain 'google'"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return None
    return f"bucket name {name!r} must not be an IP address"


def bucket(name: str) -> Problem | None:
    problem = bucket_name_problem(name)
    return (problem, _bucket_fix(name)) if problem else None


def _bucket_fix(name: str) -> str:
    fixed = re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-_.")
    fixed = fixed.replace("google", "gcp").replace("..", ".")
    if fixed.startswith("goog"):
        fixed = "my-" + fixed
    try:
        ipaddress.ip_address(fixed)
        fixed = "bucket-" + fixed.replace(".", "-")
    except ValueError:
        pass
    if len(fixed) < 3:
        fixed = f"{fixed or 'my'}-bucket"
    fixed = fixed[:63].strip("-_.")
    if bucket_name_problem(fixed) is None and fixed != name:
        return f"use a name such as {fixed!r} (3-63 lowercase letters, digits, '-', '_', '.')"
    return (
        "use 3-63 lowercase letters, digits, '-', '_' or '.', starting and ending with a "
        "letter or digit"
    )


def gs_uri_problem(uri: str, *, need_object: bool = True) -> str | None:
    m = _GS_URI.match(uri)
    if not m or any(c.isspace() for c in uri):
        return f"malformed gs:// URI {uri!r}"
    bucket_problem = bucket_name_problem(m["bucket"]) if m["bucket"] else "it names no bucket"
    if bucket_problem:
        return f"malformed gs:// URI {uri!r}: {bucket_problem}"
    if need_object and not (m["object"] or "").strip("/"):
        return f"gs:// URI {uri!r} names a bucket but no object path"
    if "//" in (m["object"] or ""):
        return f"malformed gs:// URI {uri!r}: empty path segment ('//')"
    return None


def labels(values: Mapping[str, str]) -> list[tuple[str | None, Problem]]:
    """(label key or None for the whole mapping, problem) for each label that breaks GCP's rules."""
    found: list[tuple[str | None, Problem]] = []
    if len(values) > 60:
        found.append(
            (
                None,
                (
                    f"{len(values)} labels; GCP allows 64 per resource and deployer uses 4",
                    "keep at most 60 user labels",
                ),
            )
        )
    for key, value in values.items():
        if not _LABEL_KEY.match(key):
            problem = (
                f"label key {key!r} must start with a lowercase letter and have only lowercase "
                "letters, digits, '_' and '-' (at most 63 characters)",
                f"rename it, e.g. {re.sub(r'[^a-z0-9_-]+', '-', key.lower())!r}",
            )
        elif key.startswith(_RESERVED_LABEL_PREFIX):
            problem = (
                f"label key {key!r} uses the reserved prefix 'deployer-'",
                "choose another key; deployer sets its own deployer-* labels",
            )
        elif not _LABEL_VALUE.match(value):
            problem = (
                f"label value {value!r} may have only lowercase letters, digits, '_' and '-' "
                "(at most 63 characters)",
                f"use e.g. {re.sub(r'[^a-z0-9_-]+', '-', value.lower())[:63]!r}",
            )
        else:
            continue
        found.append((key, problem))
    return found


def image(reference: str) -> Problem | None:
    if _IMAGE.match(reference):
        return None
    return (
        f"container image {reference!r} is not an image reference",
        f"use a registry path such as {EXAMPLE_CONTAINER}",
    )


# ---- local paths and URIs ----


def foreign_scheme(text: str) -> bool:
    """s3://, https://, file:// ...: only local paths and gs:// reach Vertex AI."""
    return bool(_FOREIGN_SCHEME.match(text)) and not text.startswith("gs://")


def artifact(text: str, resolve: Callable[[str], Path] | None) -> Problem | None:
    """A model version's artifact: a gs:// URI, or (when `resolve` is given) a local SavedModel."""
    if foreign_scheme(text):
        return (
            f"artifact {text!r} is neither a local directory nor a gs:// URI",
            "copy the SavedModel to Cloud Storage (gs://...) or to a local directory",
        )
    if text.startswith("gs:"):
        problem = gs_uri_problem(text)
        if problem:
            return (
                problem,
                "write gs://BUCKET/path/to/savedmodel_dir (a valid bucket name and a path)",
            )
        return None
    if resolve is None:
        return None
    resolved = resolve(text)
    if not resolved.exists():
        return (
            f"artifact directory {str(resolved)!r} does not exist",
            "export the SavedModel there (e.g. scripts/train_mnist.py) or fix the path; "
            "relative paths are resolved against the spec file's directory",
        )
    if not resolved.is_dir():
        return (
            f"artifact {str(resolved)!r} is a file, not a SavedModel directory",
            "point at the directory that holds saved_model.pb",
        )
    if (resolved / "saved_model.pb").is_file():
        return savedmodel_problem(resolved)
    return None  # what else the directory must hold depends on the container (spec.containers)


def savedmodel_problem(model_dir: Path) -> Problem | None:
    """A saved_model.pb that does not parse, or has no serving signature, fails only once
    deployed (the replica cannot load it): refuse it here, before any API call. Reads the
    signature only, not the graph behind it (~0.1 ms on the MNIST models)."""
    try:
        read_signature(model_dir, decode_raw=False)
    except NoSignatureError as exc:
        return (
            str(exc),
            "export the model with a 'serving_default' signature in its 'serve' meta "
            "graph (tf.saved_model.save(model, DIR) gives one; Vertex AI serves that "
            "signature)",
        )
    except SignatureError as exc:
        return (
            str(exc),
            "the file is unreadable, corrupt or cut short: export the SavedModel again "
            "(e.g. tf.saved_model.save(model, DIR) or scripts/train_mnist.py) or copy it again",
        )
    return None


def batch_input(text: str, resolve: Callable[[str], Path] | None) -> Problem | None:
    """A batch input: a gs:// URI, or (when `resolve` is given) an existing local path."""
    if foreign_scheme(text):
        return (
            f"batch input {text!r} is neither a local path nor a gs:// URI",
            "copy the input to Cloud Storage (gs://...) or to a local file or folder",
        )
    if text.startswith("gs:"):
        problem = gs_uri_problem(text)
        if problem:
            return problem, "write gs://BUCKET/path/to/input (a valid bucket name and a path)"
        return None
    if resolve is not None and not resolve(text).exists():
        return (
            f"batch input {str(resolve(text))!r} does not exist",
            "create it or fix the path; relative paths are resolved against the spec "
            "file's directory",
        )
    return None


def output_prefix(prefix: str) -> Problem | None:
    if prefix.startswith(("gs://", "/")) or not prefix.strip("/"):
        return (
            f"output prefix {prefix!r} must be a relative object prefix",
            "write a prefix inside the stack bucket, e.g. predictions/",
        )
    return None


# ---- compute ----


def machine_type(machine: str) -> Problem | None:
    if catalog.machine_shape(machine) is not None:
        return None
    hint = suggest(machine, catalog.all_machine_types())
    families = ", ".join(f"{fam}-*" for fam in catalog.MACHINE_FAMILIES)
    return (
        f"unknown machine type {machine!r}",
        (f"{hint} " if hint else "") + f"Vertex prediction offers: {families}",
    )


def accelerator_type(kind: str) -> Problem | None:
    if kind in catalog.RETIRED_ACCELERATORS:
        return f"{kind} is retired on Vertex AI", f"use {catalog.RETIRED_ACCELERATORS[kind]}"
    if kind not in catalog.ACCELERATOR_TYPES:
        hint = suggest(kind, catalog.ACCELERATOR_TYPES)
        return (
            f"accelerator type {kind!r} is not offered by Vertex AI prediction",
            (f"{hint} " if hint else "") + f"offered: {', '.join(catalog.ACCELERATOR_TYPES)}",
        )
    return None


def accelerator_fit(machine: str, kind: str | None, count: int) -> Problem | None:
    """Whether the accelerator (or its absence) fits the machine; silent about unknown names.

    Unknown machine and accelerator types are reported on their own fields, so this
    rule only speaks once both are known.
    """
    if catalog.machine_shape(machine) is None:
        return None
    if kind is not None and kind not in catalog.ACCELERATOR_TYPES:
        return None
    if not 1 <= count <= ACCELERATOR_COUNT_MAX:
        return None  # reported on the count
    return catalog.accelerator_fit(machine, kind, count)


def replica_bound(low_key: str, low: int, high_key: str, high: int | None) -> Problem | None:
    if high is None or high >= low:
        return None
    return f"{high_key} ({high}) is below {low_key} ({low})", f"set {high_key} to at least {low}"


def ttl_not_zero(ttl: str | None) -> Problem | None:
    if ttl is not None and re.fullmatch(r"0+[mhdw]", ttl):
        return (
            f"ttl {ttl!r} would expire the stack immediately",
            "use a positive duration such as 30m, 4h, 2d or 1w",
        )
    return None


def model_ref(ref: str, versions: Mapping[str, list[str]]) -> Problem | None:
    """A model@alias reference against the spec's models (name -> aliases)."""
    if "@" not in ref:
        known = versions.get(ref) or ["v1"]
        return (
            f"model reference {ref!r} has no version alias",
            f"write MODEL@ALIAS, e.g. {ref}@{known[-1]}",
        )
    name, _, alias = ref.partition("@")
    if name not in versions:
        hint = suggest(name, versions) or f"models in this spec: {', '.join(versions) or '(none)'}"
        return f"no model named {name!r} (in {ref!r})", hint
    if alias not in versions[name]:
        listed = ", ".join(versions[name]) or "(none)"
        return (
            f"model {name!r} has no version {alias!r}",
            f"use one of its versions: {listed}, or add {alias} under models[].versions",
        )
    return None
