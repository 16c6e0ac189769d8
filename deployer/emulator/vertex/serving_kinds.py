"""Which replica serves a Model's container: TensorFlow, a pre-built framework, or custom.

Owns: classifying a Model's `containerSpec` (Vertex's pre-built TensorFlow images -> the TF
Serving replica; pre-built scikit-learn / XGBoost / PyTorch images ->
`deployer.serving.prebuilt`, whose PyTorch runtime is an optional extra: without it the
replica exits naming `pip install 'deployer[pytorch]'` and the deploy operation fails so;
any other image -> a custom container under Docker or Podman), checking at upload that the
artifact directory holds what the image loads (Vertex's 400 wording), and the command, health
route and predict route of one replica process for each kind.
Must not: import a framework or TensorFlow (replicas run in their own processes), start
processes (`replicas` does), or know endpoints and traffic.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from deployer import settings
from deployer.emulator.context import EmulatorContext
from deployer.emulator.http import ServiceError
from deployer.emulator.vertex import containers
from deployer.emulator.vertex.containers import ContainerSpec, Placement
from deployer.wire.prebuilt import (
    ARTIFACT_FILES,
    Framework,
    check_prebuilt,
    find_artifact,
    looks_prebuilt,
    parse_prebuilt,
)

PREBUILT_MODULE = "deployer.serving.prebuilt"

# The pre-built TensorFlow 2 prediction images Vertex publishes; they are TF Serving inside,
# which deployer.serving reproduces.
TF_IMAGE_RE = re.compile(
    r"^(?:(?:us|europe|asia)-docker\.pkg\.dev/vertex-ai(?:-restricted)?/prediction"
    r"|(?:(?:us|eu|asia)\.)?gcr\.io/cloud-aiplatform/prediction)"
    r"/tf2-(?P<kind>cpu|gpu)\.[0-9]+-[0-9]+(?::[\w.\-]+|@sha256:[0-9a-f]+)?$"
)


class Kind(str, Enum):
    TENSORFLOW = "tensorflow"  # TF Serving's REST API (deployer.serving.replica)
    PREBUILT = "prebuilt"  # a pre-built framework image (deployer.serving.prebuilt)
    CUSTOM = "custom"  # the user's image, run with Docker or Podman


@dataclass(frozen=True)
class Serving:
    """How the emulator serves one Model's container."""

    kind: Kind
    image: str
    gpu: bool  # a GPU image (served on CPU here)
    framework: Framework | None = None  # PREBUILT: which runtime
    container: ContainerSpec | None = None  # CUSTOM: what to run

    @property
    def artifact_files(self) -> tuple[str, ...]:
        return ARTIFACT_FILES[self.framework] if self.framework else ()


def classify(container_spec: Any) -> Serving:
    """The Serving for a v1 ModelContainerSpec; 400 INVALID_ARGUMENT for an unknown pre-built."""
    image = container_spec.image_uri or ""
    if not image:
        raise ServiceError(400, "INVALID_ARGUMENT", "Model.container_spec.image_uri must be set.")
    tf = TF_IMAGE_RE.match(image)
    if tf is not None:
        return Serving(Kind.TENSORFLOW, image, gpu=tf["kind"] == "gpu")
    if not looks_prebuilt(image) and "/cloud-aiplatform/prediction/" not in image:
        return Serving(
            Kind.CUSTOM, image, gpu=False, container=ContainerSpec.from_proto(container_spec)
        )
    parsed = parse_prebuilt(image)
    problem = "it is not a published pre-built prediction image" if parsed is None else None
    if parsed is not None:
        problem = check_prebuilt(parsed)
    if parsed is None or problem is not None:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Container image {image!r}: {problem}. Pre-built prediction images are named "
            "<us|europe|asia>-docker.pkg.dev/vertex-ai/prediction/"
            "<tf2|sklearn|xgboost|pytorch>-<cpu|gpu>.<major>-<minor>:latest.",
        )
    return Serving(
        Kind.PREBUILT, image, gpu=parsed.accelerator.value == "gpu", framework=parsed.framework
    )


def check_deployable(serving: Serving) -> None:
    """400 FAILED_PRECONDITION when this emulator cannot run the image (said before deploying).

    Every pre-built framework is served; a missing optional runtime (PyTorch) is the
    replica's own error, in the failed deploy operation, since only the replica's
    interpreter can tell (the control plane never imports a framework).
    """
    if serving.kind is Kind.CUSTOM:
        try:
            containers.find_runtime()
        except containers.ContainerRuntimeMissing as exc:
            raise ServiceError(400, "FAILED_PRECONDITION", str(exc)) from exc


def check_artifact(ctx: EmulatorContext, serving: Serving, uri: str) -> None:
    """Upload-time check: the artifact directory exists and holds what the image loads."""
    from deployer.emulator.objects import parse_gs_uri

    if serving.kind is Kind.CUSTOM and not uri:
        return  # a custom container may bring its model inside the image
    if not uri:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            "Model.artifact_uri must be set for a pre-built container.",
        )
    if not uri.startswith("gs://"):
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"artifact_uri {uri!r} must be a Cloud Storage directory (gs://bucket/path/).",
        )
    bucket, prefix = parse_gs_uri(uri)
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    if not ctx.objects.bucket_exists(bucket):
        raise ServiceError(
            400, "INVALID_ARGUMENT", f"Bucket {bucket!r} of artifact_uri {uri!r} does not exist."
        )
    if serving.kind is Kind.CUSTOM:
        return
    wanted = (
        ARTIFACT_FILES[Framework.TENSORFLOW]
        if serving.kind is Kind.TENSORFLOW
        else serving.artifact_files
    )
    found = {n for n in wanted if ctx.objects.stat(bucket, prefix + n)}
    framework = serving.framework or Framework.TENSORFLOW
    ok = (
        len(found) == 1
        if serving.kind is Kind.TENSORFLOW
        else bool(find_artifact(framework, found))
    )
    if not ok:
        raise ServiceError(
            400,
            "INVALID_ARGUMENT",
            f"Model directory {uri} is expected to contain exactly one of: [{', '.join(wanted)}].",
        )


@dataclass(frozen=True)
class Launch:
    """One replica process to start, and how to talk to it."""

    command: list[str]
    health_path: str  # GET: 200 when ready
    predict_path: str  # POST {"instances": [...]}
    ready_marker: bytes = b""  # the health body must contain this (TF: b"AVAILABLE")
    container_name: str = ""  # CUSTOM: the container, for removal


def launch(
    serving: Serving,
    *,
    model_dir: Path | None,
    model_name: str,
    port: int,
    placement: Placement,
    replica_name: str,
    owner: str,
) -> Launch:
    """The replica command for `serving`, listening on 127.0.0.1:`port`."""
    watchdog = [
        sys.executable,
        "-m",
        "deployer.emulator.vertex.replica_launch",
        "--parent",
        str(os.getpid()),
        "--module",
    ]
    if serving.kind is Kind.TENSORFLOW:
        args = ["--saved-model", str(model_dir), "--model-name", model_name]
        return Launch(
            command=[*watchdog, settings.REPLICA_MODULE.get(), "--", *args, *_listen(port)],
            health_path=f"/v1/models/{model_name}",
            predict_path=f"/v1/models/{model_name}:predict",
            ready_marker=b"AVAILABLE",
        )
    if serving.kind is Kind.PREBUILT:
        assert serving.framework is not None
        health, predict = containers.routes(ContainerSpec(image=serving.image), placement)
        args = ["--framework", serving.framework.value, "--artifact", str(model_dir)]
        args += ["--health-route", health, "--predict-route", predict]
        return Launch(
            command=[*watchdog, PREBUILT_MODULE, "--", *args, *_listen(port)],
            health_path=health,
            predict_path=predict,
        )
    assert serving.container is not None
    health, predict = containers.routes(serving.container, placement)
    name = "deployer-" + "".join(c if c.isalnum() or c in "-_." else "-" for c in replica_name)
    name = f"{name}-{owner[:8]}-{port}"
    run_args = containers.run_args(serving.container, placement, owner=owner)
    return Launch(
        command=containers.launch_command(containers.find_runtime(), name, run_args),
        health_path=health,
        predict_path=predict,
        container_name=name,
    )


def _listen(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]
