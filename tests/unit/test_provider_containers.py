"""The spec's container as UploadModel's containerSpec, shaped as Vertex documents it."""

from __future__ import annotations

from google.cloud.aiplatform_v1.types import model as model_t

from deployer.providers.containers import container_spec, predict_schemata
from deployer.spec.model import Container, Probe


def _wire(message: object) -> dict[str, object]:
    from google.protobuf import json_format

    out: dict[str, object] = json_format.MessageToDict(type(message).pb(message))  # type: ignore[attr-defined]
    return out


def test_an_image_only_container_sends_the_image_alone() -> None:
    image = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
    assert _wire(container_spec(image, None)) == {"imageUri": image}
    assert _wire(container_spec(image, Container(image=image))) == {"imageUri": image}
    assert predict_schemata(Container(image=image)) is None


def test_custom_container_fields_map_to_model_container_spec() -> None:
    container = Container(
        image="us-central1-docker.pkg.dev/p/r/server:1",
        command=("python3", "/app/server.py"),
        args=("--workers", "2"),
        env=(("LOG_LEVEL", "debug"),),
        ports=(7080,),
        grpc_ports=(7443,),
        predict_route="/score",
        health_route="/ok",
        startup_probe=Probe(exec=("cat", "/tmp/ready"), period_seconds=5),
        health_probe=Probe(http_path="/ok", timeout_seconds=3, failure_threshold=2),
        shared_memory_size_mb=256,
        deployment_timeout_s=1800,
        instance_schema="gs://b/s/instance.yaml",
    )
    assert _wire(container_spec(container.image, container)) == {
        "imageUri": "us-central1-docker.pkg.dev/p/r/server:1",
        "command": ["python3", "/app/server.py"],
        "args": ["--workers", "2"],
        "env": [{"name": "LOG_LEVEL", "value": "debug"}],
        "ports": [{"containerPort": 7080}],
        "grpcPorts": [{"containerPort": 7443}],
        "predictRoute": "/score",
        "healthRoute": "/ok",
        "startupProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 5},
        "healthProbe": {"httpGet": {"path": "/ok"}, "timeoutSeconds": 3, "failureThreshold": 2},
        "sharedMemorySizeMb": "256",
        "deploymentTimeout": "1800s",
    }
    schemata = predict_schemata(container)
    assert isinstance(schemata, model_t.PredictSchemata)
    assert schemata.instance_schema_uri == "gs://b/s/instance.yaml"
