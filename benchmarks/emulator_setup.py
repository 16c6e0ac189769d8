"""Put the MNIST example on a benchmark's emulator the way a user would: official SDKs only.

Owns: uploading a SavedModel dir to the emulated bucket (google-cloud-storage), registering a
model (`aiplatform.Model.upload`), creating an endpoint and deploying to it
(`Endpoint.create`, `model.deploy`), and the SDK/client settings that point them at the
emulator (REST transport, anonymous credentials, `STORAGE_EMULATOR_HOST`, always
`staging_bucket`). Benchmarks 3, 4 and 6 share it.

Must not: use deployer's own reconciler (the benchmarks of deployer's upload/apply measure that
separately), or import google.cloud at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.common import Skip

if TYPE_CHECKING:
    from benchmarks.common import Emulator

PROJECT = "bench-project"
REGION = "us-central1"
BUCKET = "bench-artifacts"
IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-12:latest"


def storage_client(emu: Emulator) -> Any:
    """A google-cloud-storage client bound to the emulator."""
    os.environ["STORAGE_EMULATOR_HOST"] = emu.url  # the client reads it at construction
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project=PROJECT, credentials=AnonymousCredentials())


def ensure_bucket(client: Any, name: str = BUCKET) -> Any:
    from google.api_core import exceptions

    try:
        return client.create_bucket(name)
    except exceptions.Conflict:
        return client.bucket(name)


def upload_tree(bucket: Any, local: Path, prefix: str) -> str:
    """Upload every file under `local` to gs://bucket/prefix/...; returns the gs:// URI."""
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        bucket.blob(f"{prefix}/{path.relative_to(local).as_posix()}").upload_from_filename(
            str(path)
        )
    return f"gs://{bucket.name}/{prefix}/"


def init_aiplatform(emu: Emulator) -> Any:
    try:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import aiplatform
    except ImportError as exc:
        raise Skip(f"google-cloud-aiplatform is not installed ({exc})") from exc
    aiplatform.init(
        project=PROJECT,
        location=REGION,
        api_endpoint=emu.url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
        staging_bucket=f"gs://{BUCKET}",
    )
    return aiplatform


def register_model(emu: Emulator, model_dir: Path, *, name: str) -> Any:
    """Upload the artifact and register it as a model; returns the SDK `Model`."""
    aiplatform = init_aiplatform(emu)
    bucket = ensure_bucket(storage_client(emu))
    uri = upload_tree(bucket, model_dir, f"models/{name}")
    return aiplatform.Model.upload(
        display_name=name,
        artifact_uri=uri,
        serving_container_image_uri=IMAGE,
        sync=True,
    )


def deploy_endpoint(emu: Emulator, model_dir: Path, *, name: str) -> str:
    """Register, create an endpoint, deploy one replica; returns the endpoint's :predict URL.

    Raises Skip when the emulator cannot do it yet (the reason is the SDK's error).
    """
    try:
        aiplatform = init_aiplatform(emu)
        model = register_model(emu, model_dir, name=name)
        endpoint = aiplatform.Endpoint.create(display_name=f"{name}-endpoint", sync=True)
        model.deploy(
            endpoint=endpoint,
            machine_type="n1-standard-4",
            min_replica_count=1,
            max_replica_count=1,
            traffic_percentage=100,
            sync=True,
        )
    except Skip:
        raise
    except Exception as exc:
        raise Skip(
            f"could not deploy on the emulator: {type(exc).__name__}: {str(exc)[:300]}"
        ) from exc
    return f"{emu.url}/v1/{endpoint.resource_name}:predict"
