"""A starter spec for a model folder (`deployer init`): detect, suggest, write commented YAML.

Owns: the framework detection rules (the files are deployer.wire.prebuilt's ARTIFACT_FILES,
the one table of what each pre-built image loads; here: the order, the label and Vertex
AI's pre-built serving image for each framework), the machine suggested for an artifact's size with
its hourly cost, the names derived from the folder, and the text of the starter YAML
(every field explained by a comment). Lives beside the signature reader because a
SavedModel's serving signature is what the comments describe to the user.

Must not: import TensorFlow or a framework (the signature is read from saved_model.pb's
bytes), call an API, or write anything (the CLI writes the file and owns --force).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from deployer.cost import PriceTable, format_usd
from deployer.errors import ConfigError
from deployer.spec import catalog
from deployer.wire.prebuilt import ARTIFACT_FILES, Framework
from deployer.wire.savedmodel import Signature, SignatureError, TensorSpec, read_signature

REGION = "us-central1"  # what the spec's region defaults to, and where the price is quoted
PROJECT = "${GOOGLE_CLOUD_PROJECT:-local-project}"  # the emulator's project unless set


@dataclass(frozen=True)
class FrameworkRule:
    framework: Framework
    label: str  # how the user reads the framework's name
    container: str  # Vertex AI's pre-built prediction image for the framework
    savedmodel: bool = False  # the artifact is a SavedModel: read its serving signature

    @property
    def markers(self) -> tuple[str, ...]:
        """The files the image loads (deployer.wire.prebuilt's table, in the image's order)."""
        return ARTIFACT_FILES[self.framework]


# A framework's pre-built image, the newest CPU version it publishes. The files that identify
# it are deployer.wire.prebuilt's ARTIFACT_FILES (what Vertex's images load, "Export model
# artifacts for prediction"), the one table the spec, the emulator and this share. A file
# two images load (model.joblib, model.pkl: scikit-learn and XGBoost) names the first rule
# here; a file only one loads (model.bst) wins over it.
FRAMEWORKS: tuple[FrameworkRule, ...] = (
    FrameworkRule(
        Framework.TENSORFLOW,
        "TensorFlow",
        "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest",
        savedmodel=True,
    ),
    FrameworkRule(
        Framework.SKLEARN,
        "scikit-learn",
        "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest",
    ),
    FrameworkRule(
        Framework.XGBOOST,
        "XGBoost",
        "us-docker.pkg.dev/vertex-ai/prediction/xgboost-cpu.1-7:latest",
    ),
    FrameworkRule(
        Framework.PYTORCH,
        "PyTorch",
        "us-docker.pkg.dev/vertex-ai/prediction/pytorch-cpu.2-4:latest",
    ),
)

# Smallest machine whose memory holds the artifact about four times over (the loaded model,
# the server, request buffers): (largest artifact in bytes, machine type).
MACHINES_BY_SIZE: tuple[tuple[float, str], ...] = (
    (1 << 30, "n1-standard-2"),
    (4 << 30, "n1-standard-4"),
    (12 << 30, "n1-highmem-4"),
    (math.inf, "n1-highmem-8"),
)

_DTYPES = {
    "DT_FLOAT": "float32",
    "DT_DOUBLE": "float64",
    "DT_INT32": "int32",
    "DT_INT64": "int64",
    "DT_UINT8": "uint8",
    "DT_STRING": "string",
    "DT_BOOL": "bool",
    "DT_HALF": "float16",
}


@dataclass(frozen=True)
class Starter:
    """Everything the starter spec says, decided before any text is written."""

    stack: str  # also the model name; endpoint is "<stack>-endpoint"
    alias: str  # the one version's alias
    artifact: str  # artifact path as written in the spec (relative to the spec's folder)
    artifact_bytes: int
    rule: FrameworkRule
    marker: str  # the file that identified the framework
    signature: Signature | None  # SavedModels only
    notes: tuple[str, ...]  # comment lines about the image's request shape (not SavedModels)
    machine: str
    hourly_usd: float | None  # one replica of `machine` in REGION, None if not in the table
    price_source: str


def detect(folder: Path) -> tuple[FrameworkRule, str]:
    """The framework rule that matches `folder`'s files, and the file that matched."""
    if not folder.is_dir():
        raise ConfigError(
            f"{folder} is not a folder",
            hint="give the model's artifact folder (the one that holds saved_model.pb, "
            "model.joblib, model.bst, ...)",
        )
    owners = Counter(m for r in FRAMEWORKS for m in r.markers)
    for unique in (True, False):
        for rule in FRAMEWORKS:
            for marker in rule.markers:
                if (owners[marker] == 1) == unique and (folder / marker).is_file():
                    return rule, marker
    looked = ", ".join(dict.fromkeys(m for r in FRAMEWORKS for m in r.markers))
    raise ConfigError(
        f"{folder} holds no model file deployer recognises (looked for {looked})",
        hint="point at the model's artifact folder; for a SavedModel, the version folder "
        "(e.g. models/my_mnist_model/0001)",
    )


def derive_name(folder: Path) -> str:
    """A stack/model name from the folder: a numeric version folder is named after its parent."""
    base = Path(os.path.abspath(folder))  # not resolve(): a symlinked folder keeps its name
    if base.name.isdigit() and base.parent.name:
        base = base.parent
    name = re.sub(r"[^a-z0-9-]+", "-", base.name.lower())
    name = re.sub(r"-{2,}", "-", name).lstrip("-0123456789")[:40].rstrip("-")
    return name or "model"


def check_name(name: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,39}", name):
        raise ConfigError(
            f"--name {name!r} is not a valid stack name",
            hint="start with a lowercase letter and use only lowercase letters, digits and '-' "
            "(at most 40 characters)",
        )
    return name


def suggest_machine(artifact_bytes: int) -> str:
    return next(machine for limit, machine in MACHINES_BY_SIZE if artifact_bytes <= limit)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def plan_starter(folder: Path, spec_path: Path, name: str | None, prices: PriceTable) -> Starter:
    """Decide the starter spec for `folder`, to be written at `spec_path`."""
    rule, marker = detect(folder)
    signature = None
    if rule.savedmodel and marker == "saved_model.pb":
        try:
            signature = read_signature(folder)
        except SignatureError as exc:
            raise ConfigError(
                f"{folder / marker}: {exc}", hint="export the model with a serving signature"
            ) from exc
    size = folder_bytes(folder)
    machine = suggest_machine(size)
    stack = check_name(name) if name else derive_name(folder)
    # abspath, not resolve(): the spec names the folder the way the user did (symlinks kept).
    relative = os.path.relpath(os.path.abspath(folder), os.path.abspath(spec_path.parent))
    alias = f"v{int(folder.name)}" if folder.name.isdigit() and int(folder.name) > 0 else "v1"
    return Starter(
        stack=stack,
        alias=alias,
        artifact=Path(relative).as_posix(),
        artifact_bytes=size,
        rule=rule,
        marker=marker,
        signature=signature,
        notes=_notes(rule, folder / marker),
        machine=machine,
        hourly_usd=prices.machine_hourly(machine, REGION),
        price_source=prices.describe(),
    )


def _notes(rule: FrameworkRule, artifact: Path) -> tuple[str, ...]:
    """What a request to the framework's pre-built image looks like, as comment lines."""
    if rule.framework is Framework.TENSORFLOW:
        return ()
    if rule.framework is not Framework.PYTORCH:
        return (
            'Request: {"instances": [[<feature>, ...], ...]} (one row of numbers per instance);',
            "a prediction is what the model's predict() answers for the row.",
        )
    handler = _mar_handler(artifact)
    return (
        f"TorchServe archive, handler {handler}: the instances go to it as one list;",
        "base_handler answers the model's output per instance. Locally this needs",
        "pip install 'deployer[pytorch]'.",
    )


def _mar_handler(path: Path) -> str:
    """The handler a TorchServe archive's manifest names (read with zipfile; no torch)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as mar:
            manifest = json.loads(mar.read("MAR-INF/MANIFEST.json"))
        handler = manifest["model"].get("handler") or "base_handler"
    except (OSError, KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
        raise ConfigError(
            f"{path}: not a TorchServe model archive ({type(exc).__name__}: {exc})",
            hint="pack it with torch-model-archiver --model-name model (a zip holding "
            "MAR-INF/MANIFEST.json)",
        ) from exc
    return str(handler)


def _tensor(t: TensorSpec) -> str:
    dtype = _DTYPES.get(t.dtype, t.dtype.removeprefix("DT_").lower())
    shape = "unknown rank" if t.shape is None else "[" + ", ".join(map(str, t.shape)) + "]"
    return f"{t.name}  {dtype} {shape}"


def _signature_comment(sig: Signature | None, indent: str) -> list[str]:
    if sig is None:
        return []
    if not sig.inputs:
        return [f"{indent}# saved_model.pb has no {sig.name!r} signature: predictions will fail."]
    lines = [f"{indent}# Serving signature {sig.name!r} (-1: any size; the first is the batch):"]
    lines += [f"{indent}#   input   {_tensor(t)}" for t in sig.inputs]
    lines += [f"{indent}#   output  {_tensor(t)}" for t in sig.outputs]
    if len(sig.inputs) == 1 and sig.inputs[0].shape:
        lines.append(f"{indent}# Request: {_request_shape(sig.inputs[0])}")
    return lines


def _request_shape(t: TensorSpec) -> str:
    """What one request looks like for a single-input signature (Vertex's JSON form)."""
    row = (t.shape or ())[1:]
    if t.dtype == "DT_STRING" and not row:
        # Bytes travel base64-encoded: `deployer predict --file` does it for you.
        return '{"instances": [{"b64": "<base64 of one file>"}, ...]} (deployer predict --file)'
    if not row:
        return '{"instances": [<one value per row>, ...]}'
    return f'{{"instances": [<one [{", ".join(map(str, row))}] array per row>, ...]}}'


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def render(s: Starter, *, command: str, spec: str) -> str:
    """The starter spec's YAML text, a comment above each field."""
    shape = catalog.machine_shape(s.machine)
    machine_desc = f"{shape.vcpus} vCPU, {shape.memory_gb:g} GB" if shape else s.machine
    price = (
        f"about {format_usd(s.hourly_usd)}/hour per replica in {REGION}"
        if s.hourly_usd is not None
        else f"no price for it in {REGION} in the price table"
    )
    max_replicas = 2
    budget = max(1, math.ceil(2 * (s.hourly_usd or 0.5) * max_replicas))
    # A bucket name has at most 63 characters; a project id at most 30.
    bucket = f"{PROJECT}-{s.stack[:32].rstrip('-')}"
    lines = [
        f"# Starter spec written by `{command}`.",
        f"# Check it: deployer validate {spec}; see the cost: deployer plan {spec};",
        f"# deploy: deployer apply {spec}. `deployer schema --format markdown` lists every field.",
        "#",
        "# Stack name: every resource apply creates is labelled with it; teardown removes those.",
        f"stack: {s.stack}",
        "# Google Cloud project; ${VAR:-default} reads the environment (the emulator: any id).",
        f"project: {PROJECT}",
        f"region: {REGION}",
        "# local: the embedded emulator, no account needed; vertex: real Vertex AI (set project).",
        "target: local",
        "# Bucket for the uploaded artifact and batch outputs, named after the project;",
        "# create: true means apply creates it and teardown deletes it.",
        f'bucket: {{name: "{bucket}", create: true}}',
        "models:",
        f"  - name: {s.stack}",
        f"    # {s.rule.label} (found {s.marker}): Vertex AI's pre-built serving image.",
        f"    container: {s.rule.container}",
        *(f"    # {note}" for note in s.notes),
        "    versions:",
        *_signature_comment(s.signature, "      "),
        f"      # The artifact folder ({_size(s.artifact_bytes)}), relative to this file;"
        " apply uploads it.",
        f"      - alias: {s.alias}",
        f"        artifact: {s.artifact}",
        "endpoints:",
        f"  - name: {s.stack}-endpoint",
        "    deployments:",
        "      # One deployment takes all the traffic (traffic: percent of requests).",
        f"      # {s.machine} ({machine_desc}) holds a {_size(s.artifact_bytes)} model with room"
        " to spare:",
        f"      # {price} ({s.price_source}).",
        "      # min_replicas run (and are billed) all the time; autoscaling adds up to max.",
        f"      - model: {s.stack}@{s.alias}",
        "        traffic: 100",
        f"        machine_type: {s.machine}",
        "        min_replicas: 1",
        f"        max_replicas: {max_replicas}",
        "# apply refuses a plan above max_hourly_usd; `deployer reap` tears the stack down once",
        "# ttl has passed since apply.",
        f"guards: {{max_hourly_usd: {budget}, ttl: 24h}}",
    ]
    return "\n".join(lines) + "\n"
