"""Custom serving containers under Vertex's contract, run with Docker or Podman.

Owns: finding a working container runtime (Docker when its daemon answers, else Podman;
`DEPLOYER_CONTAINER_RUNTIME=docker|podman` forces one), the container's settings from a
Model's `containerSpec` (image, command, args, env, ports, routes), the environment Vertex
gives a serving container (`AIP_HTTP_PORT`, `AIP_HEALTH_ROUTE`, `AIP_PREDICT_ROUTE`,
`AIP_STORAGE_URI`, `AIP_MODE`, `AIP_DEPLOYED_MODEL_ID`, `AIP_ENDPOINT_ID`,
`AIP_PROJECT_NUMBER`, plus `STORAGE_EMULATOR_HOST` so the artifacts are readable from inside
through the emulator's Cloud Storage), the command that runs one container as a replica
process (under `replica_launch`'s parent watchdog, `container_replica` removes the container
when the emulator dies, even by SIGKILL), and the sweep, by label, of containers a killed
emulator left behind.

Local differences from Vertex, on purpose: the container shares the host's network
(`--network=host`; the emulator and the container talk over loopback, and no registry or
bridge network is needed), so AIP_HTTP_PORT is a free host port rather than the spec's first
container port (several replicas of one model cannot all listen on 8080); servers must listen
on AIP_HTTP_PORT, as Vertex's documentation asks.
Must not: import a framework, or know endpoints and traffic.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployer import settings

log = logging.getLogger("deployer.emulator.vertex")

LABEL = "deployer.emulator"  # value: which emulator (its data directory) owns the container
CONTAINER_MODULE = "deployer.emulator.vertex.container_replica"
_RUNTIMES = ("docker", "podman")
_cached_runtime: str | None = None


class ContainerRuntimeMissing(RuntimeError):
    """Neither Docker nor Podman can run containers here."""


def find_runtime() -> str:
    """Path of a working runtime binary: Docker if its daemon answers, else Podman."""
    global _cached_runtime
    if _cached_runtime is not None:
        return _cached_runtime
    forced = settings.CONTAINER_RUNTIME.get()
    candidates = (forced,) if forced else _RUNTIMES
    tried: list[str] = []
    for name in candidates:
        path = shutil.which(name)
        if path is None:
            tried.append(f"{name}: not found on PATH")
            continue
        # `docker info` needs the daemon; `podman info` checks storage and the OCI runtime.
        try:
            probe = subprocess.run(
                [path, "info"], capture_output=True, timeout=30, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{name}: {exc}")
            continue
        if probe.returncode == 0:
            _cached_runtime = path
            return path
        first = (probe.stderr or probe.stdout).decode(errors="replace").strip().splitlines()
        tried.append(f"{name}: `{name} info` failed: {first[-1] if first else probe.returncode}")
    raise ContainerRuntimeMissing(
        "Custom containers need Docker or Podman, and neither works here ("
        + "; ".join(tried)
        + "). Install one (e.g. `apt-get install podman runc`) or start the Docker daemon."
    )


@dataclass(frozen=True)
class ContainerSpec:
    """What a Model's containerSpec asks for, as the emulator runs it."""

    image: str
    command: tuple[str, ...] = ()  # replaces the image's ENTRYPOINT when set
    args: tuple[str, ...] = ()  # replaces the image's CMD when set
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[int, ...] = ()  # containerPort values; Vertex serves the first one
    predict_route: str = ""  # "" = Vertex's default for the deployed model
    health_route: str = ""

    @classmethod
    def from_proto(cls, spec: Any) -> ContainerSpec:
        """From a v1 ModelContainerSpec message."""
        return cls(
            image=spec.image_uri,
            command=tuple(spec.command),
            args=tuple(spec.args),
            env=tuple((e.name, e.value) for e in spec.env),
            ports=tuple(p.container_port for p in spec.ports),
            predict_route=spec.predict_route,
            health_route=spec.health_route,
        )


@dataclass(frozen=True)
class Placement:
    """Where one replica of a deployed model runs: Vertex's identifiers and our loopback."""

    endpoint_id: str
    deployed_model_id: str
    project_number: str
    storage_uri: str  # the model's artifactUri (gs://...), "" when it has none
    emulator_url: str  # http://127.0.0.1:PORT, the emulator's GCS for STORAGE_EMULATOR_HOST
    port: int  # the host port the server must listen on (AIP_HTTP_PORT)


def routes(spec: ContainerSpec, where: Placement) -> tuple[str, str]:
    """(health route, predict route): the spec's, else Vertex's defaults for the deployment."""
    base = f"/v1/endpoints/{where.endpoint_id}/deployedModels/{where.deployed_model_id}"
    return spec.health_route or base, spec.predict_route or f"{base}:predict"


def container_env(spec: ContainerSpec, where: Placement) -> dict[str, str]:
    """The spec's env, then Vertex's AIP_* variables (which a spec cannot override)."""
    health, predict = routes(spec, where)
    env = dict(spec.env)
    env.update(
        {
            "AIP_HTTP_PORT": str(where.port),
            "AIP_HEALTH_ROUTE": health,
            "AIP_PREDICT_ROUTE": predict,
            "AIP_MODE": "PREDICTION",
            "AIP_DEPLOYED_MODEL_ID": where.deployed_model_id,
            "AIP_ENDPOINT_ID": where.endpoint_id,
            "AIP_PROJECT_NUMBER": where.project_number,
            "STORAGE_EMULATOR_HOST": where.emulator_url,
        }
    )
    if where.storage_uri:
        env["AIP_STORAGE_URI"] = where.storage_uri
    return env


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Vertex's `$(VAR)` references in command and args (an unknown one stays as written)."""
    return _VAR.sub(lambda m: env.get(m[1], m[0]), value)


def owner_label(data_dir: str) -> str:
    """The label value naming one emulator (by its data directory) as a container's owner."""
    return hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]


def run_args(spec: ContainerSpec, where: Placement, *, owner: str) -> list[str]:
    """The arguments after `<runtime> run --rm --name NAME`."""
    env = container_env(spec, where)
    args = ["--network=host", "--label", f"{LABEL}={owner}", "--pull=never"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    if spec.command:
        args += ["--entrypoint", json.dumps([expand(c, env) for c in spec.command])]
    args.append(spec.image)
    args += [expand(a, env) for a in spec.args]
    return args


def launch_command(
    runtime: str, name: str, args: list[str], *, parent_pid: int | None = None
) -> list[str]:
    """The replica process: watchdog -> container_replica -> `<runtime> run --rm --name NAME`.

    The watchdog stops the container when `parent_pid` (default: this process, which must be
    the one that starts the command) stops being its parent.
    """
    return [
        sys.executable,
        "-m",
        "deployer.emulator.vertex.replica_launch",
        "--parent",
        str(os.getpid() if parent_pid is None else parent_pid),
        "--module",
        CONTAINER_MODULE,
        "--",
        "--runtime",
        runtime,
        "--name",
        name,
        "--",
        *args,
    ]


def sweep(owner: str) -> int:
    """Remove containers labelled as this emulator's (left by a SIGKILLed run); how many."""
    try:
        runtime = find_runtime()
    except ContainerRuntimeMissing:
        return 0
    try:
        listed = subprocess.run(
            [runtime, "ps", "-a", "-q", "--filter", f"label={LABEL}={owner}"],
            capture_output=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot list leftover containers: %s", exc)
        return 0
    ids = listed.stdout.decode().split()
    if ids:
        subprocess.run(
            [runtime, "rm", "-f", *ids], capture_output=True, timeout=120, stdin=subprocess.DEVNULL
        )
        log.info("removed %d container(s) a previous emulator run left behind", len(ids))
    return len(ids)
