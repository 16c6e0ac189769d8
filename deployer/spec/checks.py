"""Semantic checks of a spec document: the rules a schema cannot express.

Owns the cross-field rules (references, traffic sums, duplicate names, replica
bounds, accelerator fit, bucket and gs:// naming, artifact and input paths,
labels). The checks run over the raw, interpolated YAML data and tolerate wrong
types (the pydantic layer reports those), so one run reports every problem at
once. They only read the local filesystem (artifact and input paths); they never
call an API and never import pydantic or google.cloud.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deployer.errors import SpecProblem
from deployer.spec import catalog

Path_ = tuple[str | int, ...]

_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
_RESERVED_LABEL_PREFIX = "deployer-"
_GS_URI = re.compile(r"^gs://(?P<bucket>[^/]*)(?:/(?P<object>.*))?$")
_IMAGE = re.compile(
    r"^[a-z0-9][a-z0-9.-]*(?::[0-9]+)?(?:/[a-z0-9._-]+)+(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
_FORMAT_BY_SUFFIX = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".txt": "file-list",
    ".tfrecord": "tf-record",
    ".tfrecords": "tf-record",
}
EXAMPLE_CONTAINER = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"


def field_path(path: Path_) -> str:
    """("endpoints", 0, "traffic") -> "endpoints[0].traffic"."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "(top level)"


class Findings:
    """Collects problems with their lines; at most one problem per field path."""

    def __init__(self, file: str, lines: dict[Path_, int]) -> None:
        self.file = file
        self.lines = lines  # field path -> 1-based line of its key (or list item)
        self.problems: list[SpecProblem] = []
        self.flagged: set[Path_] = set()

    def line_for(self, path: Path_) -> int | None:
        # A missing key has no line: point at the nearest enclosing node.
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def add(self, path: Path_, message: str, fix: str, *, line: int | None = None) -> None:
        if path in self.flagged:
            return
        self.flagged.add(path)
        self.problems.append(
            SpecProblem(
                file=self.file,
                line=line if line is not None else self.line_for(path),
                field=field_path(path),
                message=message,
                fix=fix,
            )
        )


def suggest(word: str, choices: Any, *, prefix: str = "did you mean ") -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"{prefix}'{close[0]}'?" if close else None


# ---- accessors that tolerate wrong types (pydantic reports those) ----


def _items(data: Any, key: str) -> Iterator[tuple[int, dict[str, Any]]]:
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            if isinstance(item, dict):
                yield i, item


def _str(data: Any, key: str) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _int(data: Any, key: str) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)  # pydantic coerces interpolated "90" the same way
    return None


# ---- entry point ----


def check_document(
    data: dict[str, Any], f: Findings, *, base_dir: Path, check_artifacts: bool
) -> None:
    check_bucket(data.get("bucket"), f)
    versions = _check_models(data, f, base_dir=base_dir, check_artifacts=check_artifacts)
    _check_endpoints(data, f, versions)
    _check_batch_jobs(data, f, versions, base_dir=base_dir, check_artifacts=check_artifacts)
    _check_guards(data.get("guards"), f)


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


def check_bucket(bucket: Any, f: Findings) -> None:
    name = _str(bucket, "name")
    if name is None:
        return
    problem = bucket_name_problem(name)
    if problem:
        f.add(("bucket", "name"), problem, _bucket_fix(name))


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


def check_labels(labels: Any, path: Path_, f: Findings) -> None:
    if not isinstance(labels, dict):
        return
    if len(labels) > 60:
        f.add(
            path,
            f"{len(labels)} labels; GCP allows 64 per resource and deployer uses 4",
            "keep at most 60 user labels",
        )
    for key, value in labels.items():
        here = (*path, key)
        if not isinstance(key, str) or not _LABEL_KEY.match(key):
            f.add(
                here,
                f"label key {key!r} must start with a lowercase letter and have only lowercase "
                "letters, digits, '_' and '-' (at most 63 characters)",
                f"rename it, e.g. {re.sub(r'[^a-z0-9_-]+', '-', str(key).lower())!r}",
            )
        elif key.startswith(_RESERVED_LABEL_PREFIX):
            f.add(
                here,
                f"label key {key!r} uses the reserved prefix 'deployer-'",
                "choose another key; deployer sets its own deployer-* labels",
            )
        elif isinstance(value, str) and not _LABEL_VALUE.match(value):
            f.add(
                here,
                f"label value {value!r} may have only lowercase letters, digits, '_' and '-' "
                "(at most 63 characters)",
                f"use e.g. {re.sub(r'[^a-z0-9_-]+', '-', value.lower())[:63]!r}",
            )


def _duplicates(
    items: list[tuple[int, dict[str, Any]]], key: str, path: Path_, f: Findings, what: str
) -> None:
    seen: dict[str, int] = {}
    for i, item in items:
        name = _str(item, key)
        if name is None:
            continue
        if name in seen:
            f.add(
                (*path, i, key),
                f"duplicate {what} {name!r} (also at {field_path((*path, seen[name]))})",
                f"rename one of them: each {what} must be unique",
            )
        else:
            seen[name] = i


def _check_local_dir(path_text: str, path: Path_, f: Findings, base_dir: Path) -> None:
    resolved = resolve_local(path_text, base_dir)
    if not resolved.exists():
        f.add(
            path,
            f"artifact directory {str(resolved)!r} does not exist",
            "export the SavedModel there (e.g. scripts/train_mnist.py) or fix the path; "
            "relative paths are resolved against the spec file's directory",
        )
    elif not resolved.is_dir():
        f.add(
            path,
            f"artifact {str(resolved)!r} is a file, not a SavedModel directory",
            "point at the directory that holds saved_model.pb",
        )
    elif not (
        (resolved / "saved_model.pb").is_file() or (resolved / "saved_model.pbtxt").is_file()
    ):
        f.add(
            path,
            f"{str(resolved)!r} holds no saved_model.pb, so it is not a SavedModel",
            "point at a version directory that holds saved_model.pb (e.g. "
            "models/my_mnist_model/0001)",
        )


def _foreign_scheme(text: str) -> bool:
    # s3://, https://, file:// ...: only local paths and gs:// reach Vertex AI.
    return bool(re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text)) and not text.startswith("gs://")


def resolve_local(path_text: str, base_dir: Path) -> Path:
    path = Path(path_text).expanduser()
    return (path if path.is_absolute() else base_dir / path).resolve()


def _check_models(
    data: Any, f: Findings, *, base_dir: Path, check_artifacts: bool
) -> dict[str, list[str]]:
    models = list(_items(data, "models"))
    _duplicates(models, "name", ("models",), f, "model name")
    versions: dict[str, list[str]] = {}
    for i, model in models:
        here: Path_ = ("models", i)
        check_labels(model.get("labels"), (*here, "labels"), f)
        default_image = _str(model, "container")
        if default_image is not None and not _IMAGE.match(default_image):
            f.add(
                (*here, "container"),
                f"container image {default_image!r} is not an image reference",
                f"use a registry path such as {EXAMPLE_CONTAINER}",
            )
        items = list(_items(model, "versions"))
        _duplicates(items, "alias", (*here, "versions"), f, "version alias")
        name = _str(model, "name")
        if name is not None and name not in versions:
            versions[name] = list(
                dict.fromkeys(a for _, v in items if (a := _str(v, "alias")) is not None)
            )
        missing_image: list[str] = []
        for j, version in items:
            vpath: Path_ = (*here, "versions", j)
            if _str(version, "alias") == "default":
                f.add(
                    (*vpath, "alias"),
                    "the alias 'default' is reserved by Vertex AI",
                    "use another alias, e.g. v1",
                )
            image = _str(version, "container")
            if image is not None and not _IMAGE.match(image):
                f.add(
                    (*vpath, "container"),
                    f"container image {image!r} is not an image reference",
                    f"use a registry path such as {EXAMPLE_CONTAINER}",
                )
            if image is None and model.get("container") is None:
                missing_image.append(_str(version, "alias") or f"versions[{j}]")
            check_labels(version.get("labels"), (*vpath, "labels"), f)
            artifact = _str(version, "artifact")
            if artifact is None:
                continue
            if _foreign_scheme(artifact):
                f.add(
                    (*vpath, "artifact"),
                    f"artifact {artifact!r} is neither a local directory nor a gs:// URI",
                    "copy the SavedModel to Cloud Storage (gs://...) or to a local directory",
                )
            elif artifact.startswith("gs:"):
                problem = gs_uri_problem(artifact)
                if problem:
                    f.add(
                        (*vpath, "artifact"),
                        problem,
                        "write gs://BUCKET/path/to/savedmodel_dir (a valid bucket name and a path)",
                    )
            elif check_artifacts:
                _check_local_dir(artifact, (*vpath, "artifact"), f, base_dir)
        if missing_image:
            f.add(
                (*here, "container"),
                f"no serving container image for {', '.join(missing_image)}",
                f"set container: {EXAMPLE_CONTAINER} on the model (or on each version)",
            )
    return versions


def check_ref(ref: str | None, path: Path_, f: Findings, versions: dict[str, list[str]]) -> None:
    if ref is None:
        return
    if "@" not in ref:
        known = versions.get(ref) or ["v1"]
        f.add(
            path,
            f"model reference {ref!r} has no version alias",
            f"write MODEL@ALIAS, e.g. {ref}@{known[-1]}",
        )
        return
    name, _, alias = ref.partition("@")
    if name not in versions:
        hint = suggest(name, versions) or f"models in this spec: {', '.join(versions) or '(none)'}"
        f.add(path, f"no model named {name!r} (in {ref!r})", hint)
    elif alias not in versions[name]:
        listed = ", ".join(versions[name]) or "(none)"
        f.add(
            path,
            f"model {name!r} has no version {alias!r}",
            f"use one of its versions: {listed}, or add {alias} under models[].versions",
        )


def check_machine(machine: str | None, accel: Any, path: Path_, f: Findings) -> None:
    """Machine type known, accelerator offered and fitting the machine."""
    if machine is not None and catalog.machine_shape(machine) is None:
        hint = suggest(machine, catalog.all_machine_types())
        families = ", ".join(f"{fam}-*" for fam in catalog.MACHINE_FAMILIES)
        f.add(
            (*path, "machine_type"),
            f"unknown machine type {machine!r}",
            (f"{hint} " if hint else "") + f"Vertex prediction offers: {families}",
        )
        machine = None
    atype = _str(accel, "type")
    count = _int(accel, "count") if isinstance(accel, dict) and "count" in accel else 1
    if atype is not None:
        if atype in catalog.RETIRED_ACCELERATORS:
            f.add(
                (*path, "accelerator", "type"),
                f"{atype} is retired on Vertex AI",
                f"use {catalog.RETIRED_ACCELERATORS[atype]}",
            )
            return
        if atype not in catalog.ACCELERATOR_TYPES:
            hint = suggest(atype, catalog.ACCELERATOR_TYPES)
            f.add(
                (*path, "accelerator", "type"),
                f"accelerator type {atype!r} is not offered by Vertex AI prediction",
                (f"{hint} " if hint else "") + f"offered: {', '.join(catalog.ACCELERATOR_TYPES)}",
            )
            return
    if machine is None or count is None or (accel is not None and atype is None):
        return
    misfit = catalog.accelerator_fit(machine, atype, count)
    if misfit:
        f.add((*path, "accelerator"), *misfit)


def _check_replicas(item: Any, low_key: str, high_key: str, path: Path_, f: Findings) -> None:
    low, high = _int(item, low_key), _int(item, high_key)
    if low is not None and high is not None and high < low:
        f.add(
            (*path, high_key),
            f"{high_key} ({high}) is below {low_key} ({low})",
            f"set {high_key} to at least {low}",
        )


def _check_endpoints(data: Any, f: Findings, versions: dict[str, list[str]]) -> None:
    endpoints = list(_items(data, "endpoints"))
    _duplicates(endpoints, "name", ("endpoints",), f, "endpoint name")
    for i, endpoint in endpoints:
        here: Path_ = ("endpoints", i)
        check_labels(endpoint.get("labels"), (*here, "labels"), f)
        deployments = list(_items(endpoint, "deployments"))
        shares: list[tuple[str, int]] = []
        sum_known = True  # False once a share is missing or invalid (reported on the field)
        seen: dict[str, int] = {}
        for j, dep in deployments:
            dpath: Path_ = (*here, "deployments", j)
            ref = _str(dep, "model")
            check_ref(ref, (*dpath, "model"), f, versions)
            if ref is not None and ref in seen:
                f.add(
                    (*dpath, "model"),
                    f"{ref} is deployed twice on this endpoint",
                    "deploy each version once; change its replicas instead",
                )
            elif ref is not None:
                seen[ref] = j
            check_machine(_str(dep, "machine_type"), dep.get("accelerator"), dpath, f)
            _check_replicas(dep, "min_replicas", "max_replicas", dpath, f)
            traffic = _int(dep, "traffic")
            if dep.get("traffic") is None:
                if any(
                    (*dpath, key) in f.flagged
                    for key in dep
                    if key not in ("model", "machine_type")
                ):
                    sum_known = False  # e.g. `trafic: 90`: the unknown key is the real problem
                    continue
                if len(deployments) > 1:
                    f.add(
                        (*dpath, "traffic"),
                        "traffic is required when an endpoint has several deployments",
                        "give each deployment a traffic percentage; together they make 100",
                    )
                    sum_known = False
                    continue
                traffic = 100
            if traffic is None or not 0 <= traffic <= 100:
                sum_known = False  # the type or range problem is reported on the field
                continue
            shares.append((ref or f"deployments[{j}]", traffic))
        total = sum(t for _, t in shares)
        if sum_known and shares and total != 100:
            detail = ", ".join(f"{r}: {t}" for r, t in shares)
            f.add(
                (*here, "deployments"),
                f"traffic sums to {total}, not 100 ({detail})",
                "make the deployments' traffic percentages add up to 100",
            )


def _check_batch_jobs(
    data: Any, f: Findings, versions: dict[str, list[str]], *, base_dir: Path, check_artifacts: bool
) -> None:
    jobs = list(_items(data, "batch_jobs"))
    _duplicates(jobs, "name", ("batch_jobs",), f, "batch job name")
    for i, job in jobs:
        here: Path_ = ("batch_jobs", i)
        check_ref(_str(job, "model"), (*here, "model"), f, versions)
        check_machine(_str(job, "machine_type"), job.get("accelerator"), here, f)
        replicas = job.get("replicas")
        _check_replicas(replicas, "starting", "max", (*here, "replicas"), f)
        prefix = _str(job.get("output"), "prefix")
        if prefix is not None and (prefix.startswith(("gs://", "/")) or not prefix.strip("/")):
            f.add(
                (*here, "output", "prefix"),
                f"output prefix {prefix!r} must be a relative object prefix",
                "write a prefix inside the stack bucket, e.g. predictions/",
            )
        inp = job.get("input")
        if not isinstance(inp, dict):
            continue
        ipath: Path_ = (*here, "input")
        paths: list[tuple[Path_, str]] = []
        if "path" in inp and "paths" in inp:
            f.add(
                ipath,
                "input has both path and paths",
                "keep one: path for one input, paths for several",
            )
        elif "path" not in inp and "paths" not in inp:
            f.add(ipath, "input names no data", "add path: data/instances.jsonl (or paths: [...])")
        if isinstance(p := inp.get("path"), str):
            paths.append(((*ipath, "path"), p))
        if isinstance(inp.get("paths"), list):
            if not inp["paths"]:
                f.add(
                    (*ipath, "paths"),
                    "paths is empty",
                    "list at least one input file, folder or gs:// URI",
                )
            paths += [
                ((*ipath, "paths", k), p) for k, p in enumerate(inp["paths"]) if isinstance(p, str)
            ]
        for where, text in paths:
            if _foreign_scheme(text):
                f.add(
                    where,
                    f"batch input {text!r} is neither a local path nor a gs:// URI",
                    "copy the input to Cloud Storage (gs://...) or to a local file or folder",
                )
            elif text.startswith("gs:"):
                problem = gs_uri_problem(text)
                if problem:
                    f.add(
                        where,
                        problem,
                        "write gs://BUCKET/path/to/input (a valid bucket name and a path)",
                    )
            elif check_artifacts and not resolve_local(text, base_dir).exists():
                f.add(
                    where,
                    f"batch input {str(resolve_local(text, base_dir))!r} does not exist",
                    "create it or fix the path; relative paths are resolved against the spec "
                    "file's directory",
                )
        if inp.get("format") is None and paths and infer_format(paths[0][1]) is None:
            f.add(
                (*ipath, "format"),
                f"cannot tell the input format of {paths[0][1]!r} from its extension",
                "add format: jsonl | csv | file-list | tf-record",
            )


def infer_format(path_text: str) -> str | None:
    return _FORMAT_BY_SUFFIX.get(Path(path_text.rstrip("/")).suffix.lower())


def _check_guards(guards: Any, f: Findings) -> None:
    ttl = _str(guards, "ttl")
    if ttl is not None and re.fullmatch(r"0+[mhdw]", ttl):
        f.add(
            ("guards", "ttl"),
            f"ttl {ttl!r} would expire the stack immediately",
            "use a positive duration such as 30m, 4h, 2d or 1w",
        )
