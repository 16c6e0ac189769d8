"""Shared helpers for the Vertex emulator tests (test_vertex_*.py): official clients and artifacts.

Owns: GAPIC v1 REST clients bound to an emulator URL, uploading a SavedModel tree
into the emulated bucket with google-cloud-storage, and the session-wide MNIST-size
SavedModel (784 -> 10, fixed weights) every deploy test serves.
Must not: import the emulator in-process: tests drive it only through the clients.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import EmulatorProcess

TF_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"
PARENT = "projects/test-project/locations/us-central1"


def project_number(project: str) -> str:
    """The number the emulator gives a project id, computed here as the README documents it
    (12 digits: 100000000000 + SHA-256 of the id, big-endian, mod 900000000000)."""
    import hashlib

    digest = int.from_bytes(hashlib.sha256(project.encode()).digest(), "big")
    return str(100_000_000_000 + digest % 900_000_000_000)


# PARENT as Vertex names it in what it returns: by project number.
PARENT_BY_NUMBER = f"projects/{project_number('test-project')}/locations/us-central1"


@dataclass
class Clients:
    model: Any  # aiplatform_v1.ModelServiceClient
    endpoint: Any  # aiplatform_v1.EndpointServiceClient
    prediction: Any  # aiplatform_v1.PredictionServiceClient
    job: Any  # aiplatform_v1.JobServiceClient


def gapic_clients(url: str) -> Clients:
    """GAPIC v1 clients with the REST transport; api_endpoint takes the http:// URL as is."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1

    opts = {"api_endpoint": url}
    kw: dict[str, Any] = {
        "transport": "rest",
        "client_options": opts,
        "credentials": AnonymousCredentials(),
    }
    return Clients(
        v1.ModelServiceClient(**kw),
        v1.EndpointServiceClient(**kw),
        v1.PredictionServiceClient(**kw),
        v1.JobServiceClient(**kw),
    )


def put_tree(storage_client: Any, bucket: str, prefix: str, local_dir: Path) -> str:
    """Upload every file under `local_dir` to gs://bucket/prefix/...; returns the gs:// directory
    URI."""
    b = storage_client.bucket(bucket)
    if not b.exists():
        b = storage_client.create_bucket(bucket)
    for f in sorted(Path(local_dir).rglob("*")):
        if f.is_file():
            b.blob(f"{prefix}/{f.relative_to(local_dir).as_posix()}").upload_from_filename(str(f))
    return f"gs://{bucket}/{prefix}/"


def upload_model(
    clients: Clients,
    artifact_uri: str,
    *,
    model_id: str | None = None,
    display_name: str = "mnist",
    parent_model: str = "",
    aliases: list[str] | None = None,
    labels: dict[str, str] | None = None,
    image: str = TF_IMAGE,
    timeout: float = 60,
) -> Any:
    """UploadModel through GAPIC, waiting for the operation; returns the UploadModelResponse."""
    from google.cloud import aiplatform_v1 as v1

    req = v1.UploadModelRequest(
        parent=PARENT,
        model_id=model_id or "",
        parent_model=parent_model,
        model=v1.Model(
            display_name=display_name,
            artifact_uri=artifact_uri,
            labels=labels or {},
            version_aliases=aliases or [],
            container_spec=v1.ModelContainerSpec(image_uri=image),
        ),
    )
    return clients.model.upload_model(request=req).result(timeout=timeout)


def dedicated(machine_type: str = "n1-standard-2", replicas: int = 1, **spec: Any) -> Any:
    from google.cloud import aiplatform_v1 as v1

    return v1.DedicatedResources(
        machine_spec=v1.MachineSpec(machine_type=machine_type, **spec),
        min_replica_count=replicas,
        max_replica_count=replicas,
    )


@contextmanager
def sdk_session(url: str, bucket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The high-level SDK pointed at the emulator, with a fresh staging bucket; undone after."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    from tests.integration.conftest import make_storage_client

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
    make_storage_client(url).create_bucket(bucket)
    # staging_bucket always: without it Model.upload asks Resource Manager (gRPC, off-box).
    aiplatform.init(
        project="sdk-project",
        location="us-central1",
        api_endpoint=url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
        staging_bucket=f"gs://{bucket}",
    )
    try:
        yield aiplatform
    finally:
        # Undo init for later tests in this process (the SDK keeps it in a global).
        aiplatform.initializer.global_config.__init__()


# The module's emulator and GAPIC clients; a test module takes them with
# `emu = _vertex.emu` and `clients = _vertex.clients`.
@pytest.fixture(scope="module")
def emu(module_emulator: EmulatorProcess) -> EmulatorProcess:
    return module_emulator


@pytest.fixture(scope="module")
def clients(emu: EmulatorProcess) -> Clients:
    return gapic_clients(emu.url)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MNIST-size SavedModel (784-300-100-10 MLP, fixed weights, input `flatten_input` [None,
    784])."""
    from tests.support.savedmodels import make_mnist_like_model

    return make_mnist_like_model(
        tmp_path_factory.mktemp("mnist") / "0001", input_shape=(784,), seed=1
    )


@pytest.fixture(scope="session")
def mnist_dir_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second version (different weights) of the MNIST-size SavedModel."""
    from tests.support.savedmodels import make_mnist_like_model

    return make_mnist_like_model(
        tmp_path_factory.mktemp("mnist") / "0002", input_shape=(784,), seed=2
    )


@contextmanager
def raises_status(cls: type[BaseException], status: str) -> Iterator[Any]:
    """pytest.raises for an api_core exception, also checking Google's `status` string.

    Over REST, api_core picks the exception class from the HTTP status alone:
    409 -> Conflict (not its subclass AlreadyExists), 400 -> BadRequest (for
    INVALID_ARGUMENT and FAILED_PRECONDITION alike), as against real Vertex AI.
    """
    with pytest.raises(cls) as info:
        yield info
    payload = info.value.response.json()  # type: ignore[attr-defined]
    assert payload["error"]["status"] == status, payload


def replica_pids(data_dir: Path) -> list[int]:
    """Pids of live replica processes serving from this emulator's data dir (via /proc)."""
    needle = str(data_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        zombie = stat.rsplit(")", 1)[-1].split()[0] == "Z"
        if b"deployer.serving.replica" in cmd and needle in cmd and not zombie:
            pids.append(int(entry.name))
    return pids


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until predicate() is truthy; returns its value or fails the test."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)
