"""A model's serving container in the spec: a pre-built image, or a custom container.

Owns the document's `container:` value (an image reference, or a mapping with the
ModelContainerSpec fields users set: image, command, args, env, ports, grpc_ports,
predict_route, health_route, startup_probe, health_probe, shared_memory_size_mb,
deployment_timeout, and the optional instance/parameters/prediction schemata), the checks
a pre-built image gets offline (it is one Vertex publishes: framework, version, cpu/gpu; the
artifact directory holds what that image loads), and building the frozen `Container`.

Must not: read YAML, call an API, or import a framework.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from deployer.spec import rules
from deployer.spec.docbase import DocModel, ImageRef, field_at, report
from deployer.spec.model import Container, Probe
from deployer.spec.rules import Min, Pattern
from deployer.wire.prebuilt import (
    ARTIFACT_FILES,
    Accelerator,
    Framework,
    check_prebuilt,
    find_artifact,
    looks_prebuilt,
    parse_prebuilt,
)

ROUTE_PATTERN = r"^/[^\s]*$"
DURATION_PATTERN = r"^[0-9]+[smh]$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class ProbeDoc(DocModel):
    exec: list[str] | None = Field(
        None, description="Command run in the container; exit 0 = healthy."
    )
    http_path: Annotated[str | None, Pattern(ROUTE_PATTERN, "start with '/'", "/health")] = Field(
        None, description="HTTP GET path on the serving port; 2xx = healthy."
    )
    period_seconds: Annotated[int | None, Min(1)] = Field(None, description="Seconds between.")
    timeout_seconds: Annotated[int | None, Min(1)] = Field(None, description="Per probe.")
    failure_threshold: Annotated[int | None, Min(1)] = Field(
        None, description="Failures in a row before the container counts as unhealthy."
    )
    initial_delay_seconds: Annotated[int | None, Min(0)] = Field(
        None, description="Wait before the first probe."
    )

    def build(self) -> Probe:
        return Probe(
            exec=tuple(self.exec or ()),
            http_path=self.http_path or "",
            period_seconds=self.period_seconds,
            timeout_seconds=self.timeout_seconds,
            failure_threshold=self.failure_threshold,
            initial_delay_seconds=self.initial_delay_seconds,
        )


class ContainerDoc(DocModel):
    image: ImageRef = Field(
        description="Container image: a pre-built prediction image, or your own (e.g. "
        "us-central1-docker.pkg.dev/PROJECT/REPO/server:1)."
    )
    command: list[str] = Field(
        default_factory=list, description="Replaces the image's ENTRYPOINT; $(VAR) expands."
    )
    args: list[str] = Field(
        default_factory=list, description="Replaces the image's CMD; $(VAR) expands."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables (AIP_* are Vertex's own)."
    )
    ports: list[int] = Field(
        default_factory=list, description="Container ports; Vertex sends requests to the first."
    )
    grpc_ports: list[int] = Field(default_factory=list, description="gRPC ports.")
    predict_route: Annotated[str | None, Pattern(ROUTE_PATTERN, "start with '/'", "/predict")] = (
        Field(None, description="HTTP path of predictions (AIP_PREDICT_ROUTE).")
    )
    health_route: Annotated[str | None, Pattern(ROUTE_PATTERN, "start with '/'", "/health")] = (
        Field(None, description="HTTP path of health checks (AIP_HEALTH_ROUTE).")
    )
    startup_probe: ProbeDoc | None = Field(None, description="Until it passes, no traffic.")
    health_probe: ProbeDoc | None = Field(None, description="Checked while serving.")
    shared_memory_size_mb: Annotated[int | None, Min(1)] = Field(
        None, description="/dev/shm size in MB."
    )
    deployment_timeout: Annotated[str | None, Pattern(DURATION_PATTERN, "be a duration", "30m")] = (
        Field(None, description="How long a deployment may take, e.g. 30m.")
    )
    instance_schema: str | None = Field(None, description="gs:// OpenAPI schema of instances.")
    parameters_schema: str | None = Field(None, description="gs:// schema of parameters.")
    prediction_schema: str | None = Field(None, description="gs:// schema of predictions.")

    @field_validator("ports", "grpc_ports")
    @classmethod
    def _ports(cls, ports: list[int], info: ValidationInfo) -> list[int]:
        for k, port in enumerate(ports):
            if not 1 <= port <= 65535:
                problem = (
                    f"port {port} is not a TCP port",
                    "use a port from 1 to 65535, e.g. 8080",
                )
                report(info, field_at(info, k), problem)
        return ports

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for key in env:
            if not re.match(ENV_NAME_PATTERN, key):
                problem = (
                    f"{key!r} is not an environment variable name",
                    "use letters, digits and '_', not starting with a digit, e.g. LOG_LEVEL",
                )
                report(info, field_at(info, key), problem)
            elif key.startswith("AIP_"):
                problem = (
                    f"{key} is set by Vertex AI itself",
                    "remove it: Vertex gives the container its AIP_* variables",
                )
                report(info, field_at(info, key), problem)
        return env

    def build(self) -> Container:
        timeout = self.deployment_timeout
        return Container(
            image=self.image,
            command=tuple(self.command),
            args=tuple(self.args),
            env=tuple(self.env.items()),
            ports=tuple(self.ports),
            grpc_ports=tuple(self.grpc_ports),
            predict_route=self.predict_route or "",
            health_route=self.health_route or "",
            startup_probe=self.startup_probe.build() if self.startup_probe else None,
            health_probe=self.health_probe.build() if self.health_probe else None,
            shared_memory_size_mb=self.shared_memory_size_mb,
            deployment_timeout_s=_seconds(timeout) if timeout else None,
            instance_schema=self.instance_schema or "",
            parameters_schema=self.parameters_schema or "",
            prediction_schema=self.prediction_schema or "",
        )


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600}[duration[-1]]


def build(value: str | ContainerDoc) -> Container:
    return Container(image=value) if isinstance(value, str) else value.build()


def image_of(value: str | ContainerDoc | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else value.image


def prebuilt_image(reference: str) -> rules.Problem | None:
    """A reference into Vertex's pre-built repository must be an image Vertex publishes."""
    if not looks_prebuilt(reference):
        return None
    image = parse_prebuilt(reference)
    if image is None:
        return (
            f"{reference!r} is not a pre-built prediction image name",
            "use <us|europe|asia>-docker.pkg.dev/vertex-ai/prediction/"
            "<tf2|sklearn|xgboost|pytorch>-<cpu|gpu>.<major>-<minor>:latest, e.g. "
            "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest",
        )
    problem = check_prebuilt(image)
    if problem is None:
        return None
    return (
        f"{reference!r}: {problem}",
        "pick a published version and accelerator (Vertex's list of pre-built prediction "
        "containers)",
    )


def artifact_content(reference: str, directory: Path) -> rules.Problem | None:
    """The local artifact directory holds what the pre-built image loads (None: custom)."""
    image = parse_prebuilt(reference)
    if image is None:
        return None  # a custom container loads whatever it likes
    names = {p.name for p in directory.iterdir() if p.is_file()}
    # (A saved_model.pb is parsed, and its signature checked, by rules.artifact already.)
    if find_artifact(image.framework, names) is not None:
        return None
    if image.framework is Framework.TENSORFLOW:
        return (
            f"{str(directory)!r} holds no saved_model.pb, so it is not a SavedModel",
            "point at a version directory that holds saved_model.pb (e.g. "
            "models/my_mnist_model/0001)",
        )
    wanted = ARTIFACT_FILES[image.framework]
    others = [
        f.value
        for f in Framework
        if f is not image.framework and find_artifact(f, names) is not None
    ]
    hint = (
        f"this directory holds a {others[0]} model: use a {others[0]} pre-built image"
        if others
        else f"save the model as {' or '.join(wanted)} in it"
    )
    return (
        f"{str(directory)!r} holds none of {', '.join(wanted)}, which the "
        f"{image.framework.value} image {reference} loads",
        hint,
    )


def gpu_image(reference: str) -> bool:
    image = parse_prebuilt(reference)
    return image is not None and image.accelerator is Accelerator.GPU
