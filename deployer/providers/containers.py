"""A spec's serving container as the v1 API's ModelContainerSpec and PredictSchemata.

Owns the one mapping from `deployer.spec.model.Container` (what users set) to the request
fields Vertex documents for UploadModel: image_uri, command, args, env, ports, grpc_ports,
predict_route, health_route, startup_probe, health_probe, shared_memory_size_mb,
deployment_timeout, and the model's predict_schemata. Unset fields are left unset, so an
image-only container sends exactly `{"imageUri": ...}` as before.
Must not: call an API (the provider does), or import google at module level.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployer.spec.model import Container, Probe


def container_spec(image: str, container: Container | None) -> Any:
    """The ModelContainerSpec for an upload (image alone when `container` is None)."""
    from google.cloud.aiplatform_v1.types import env_var, model
    from google.protobuf import duration_pb2

    spec = model.ModelContainerSpec(image_uri=container.image if container else image)
    if container is None:
        return spec
    spec.command = list(container.command)
    spec.args = list(container.args)
    spec.env = [env_var.EnvVar(name=k, value=v) for k, v in container.env]
    spec.ports = [model.Port(container_port=p) for p in container.ports]
    spec.grpc_ports = [model.Port(container_port=p) for p in container.grpc_ports]
    if container.predict_route:
        spec.predict_route = container.predict_route
    if container.health_route:
        spec.health_route = container.health_route
    if container.startup_probe is not None:
        spec.startup_probe = _probe(model, container.startup_probe)
    if container.health_probe is not None:
        spec.health_probe = _probe(model, container.health_probe)
    if container.shared_memory_size_mb is not None:
        spec.shared_memory_size_mb = container.shared_memory_size_mb
    if container.deployment_timeout_s is not None:
        spec.deployment_timeout = duration_pb2.Duration(seconds=container.deployment_timeout_s)
    return spec


def predict_schemata(container: Container | None) -> Any:
    """The Model's PredictSchemata, or None when the container names no schema."""
    if container is None or not (
        container.instance_schema or container.parameters_schema or container.prediction_schema
    ):
        return None
    from google.cloud.aiplatform_v1.types import model

    return model.PredictSchemata(
        instance_schema_uri=container.instance_schema,
        parameters_schema_uri=container.parameters_schema,
        prediction_schema_uri=container.prediction_schema,
    )


def _probe(model: Any, probe: Probe) -> Any:
    out = model.Probe(
        period_seconds=probe.period_seconds or 0,
        timeout_seconds=probe.timeout_seconds or 0,
        failure_threshold=probe.failure_threshold or 0,
        initial_delay_seconds=probe.initial_delay_seconds or 0,
    )
    if probe.exec:
        out.exec_ = model.Probe.ExecAction(command=list(probe.exec))
    if probe.http_path:
        out.http_get = model.Probe.HttpGetAction(path=probe.http_path)
    return out
