"""The production settings on the wire: spec settings <-> Vertex v1 messages (issue 16).

Owns how each setting is sent as Vertex documents it (DeployModel's DeployedModel,
CreateEndpoint's Endpoint, UploadModel's Model, CreateBatchPredictionJob's job, the
mutateDeployedModel and endpoint-patch masks) and how the observed messages are read
back into the comparable text `deployer.spec.production_model` defines, so plan can tell
a change from none. Used by vertex_endpoints.py, vertex.py and batch_jobs.py.

Must not: decide anything (plan does), call the API (the callers do), or import the GAPIC
types at module import (they are heavy: imported inside the functions).
"""

from __future__ import annotations

from typing import Any

from deployer.spec.production_model import (
    AutoscalingMetricSpec,
    BatchJobSettings,
    DeployedModelSettings,
    EndpointSettings,
    PrivateServiceConnectConfig,
    RequestResponseLogging,
    fixed_endpoint_settings,
    logging_text,
    mutable_settings,
)

# The DeployedModel fields mutateDeployedModel accepts besides the replica counts (v1).
MUTATE_SETTINGS_MASK = ("dedicated_resources.autoscaling_metric_specs", "disable_container_logging")


def autoscaling_specs(settings: DeployedModelSettings) -> list[Any]:
    from google.cloud.aiplatform_v1.types.machine_resources import AutoscalingMetricSpec as Msg

    return [
        Msg(metric_name=s.metric_name, target=s.target) for s in settings.autoscaling_metric_specs
    ]


def deployed_model(dm: Any, settings: DeployedModelSettings, project: str, region: str) -> None:
    """Set `settings` on the DeployedModel message `dm` (which has dedicated_resources)."""
    if settings.service_account:
        dm.service_account = settings.service_account
    dm.enable_access_logging = settings.enable_access_logging
    dm.disable_container_logging = settings.disable_container_logging
    pool = settings.shared_pool_name(project, region)
    if pool is not None:
        # The pool brings the machines: a DeployedModel has one kind of resources.
        dm.shared_resources = pool
        return
    dm.dedicated_resources.spot = settings.spot
    if settings.autoscaling_metric_specs:
        dm.dedicated_resources.autoscaling_metric_specs = autoscaling_specs(settings)


def mutated_model(dm: Any, settings: DeployedModelSettings) -> None:
    dm.dedicated_resources.autoscaling_metric_specs = autoscaling_specs(settings)
    dm.disable_container_logging = settings.disable_container_logging


def logging_config(config: RequestResponseLogging | None) -> Any:
    from google.cloud.aiplatform_v1.types import endpoint as ep
    from google.cloud.aiplatform_v1.types import io

    if config is None:
        return ep.PredictRequestResponseLoggingConfig(enabled=False)
    msg = ep.PredictRequestResponseLoggingConfig(
        enabled=config.enabled, sampling_rate=config.sampling_rate
    )
    if config.bigquery_output_uri:
        msg.bigquery_destination = io.BigQueryDestination(output_uri=config.bigquery_output_uri)
    return msg


def endpoint_fields(settings: EndpointSettings) -> dict[str, Any]:
    """The Endpoint constructor's keyword arguments for `settings` (only those set)."""
    from google.cloud.aiplatform_v1.types import encryption_spec
    from google.cloud.aiplatform_v1.types import service_networking as sn

    fields: dict[str, Any] = {}
    if settings.network:
        fields["network"] = settings.network
    psc = settings.private_service_connect_config
    if psc is not None:
        fields["private_service_connect_config"] = sn.PrivateServiceConnectConfig(
            enable_private_service_connect=psc.enable_private_service_connect,
            project_allowlist=list(psc.project_allowlist),
        )
    if settings.kms_key_name:
        fields["encryption_spec"] = encryption_spec.EncryptionSpec(
            kms_key_name=settings.kms_key_name
        )
    if settings.predict_request_response_logging_config is not None:
        fields["predict_request_response_logging_config"] = logging_config(
            settings.predict_request_response_logging_config
        )
    if settings.dedicated_endpoint_enabled:
        fields["dedicated_endpoint_enabled"] = True
    return fields


def encryption(kms_key_name: str | None) -> Any:
    from google.cloud.aiplatform_v1.types import encryption_spec

    return encryption_spec.EncryptionSpec(kms_key_name=kms_key_name) if kms_key_name else None


def batch_job(job: Any, settings: BatchJobSettings) -> None:
    """Set `settings` on the BatchPredictionJob message `job` (input/output already GCS)."""
    from google.cloud.aiplatform_v1.types import batch_prediction_job as bpj
    from google.cloud.aiplatform_v1.types import io
    from google.protobuf import json_format, struct_pb2

    config = settings.instance_config
    if config is not None:
        job.instance_config = bpj.BatchPredictionJob.InstanceConfig(
            instance_type=config.instance_type or "",
            key_field=config.key_field or "",
            included_fields=list(config.included_fields),
            excluded_fields=list(config.excluded_fields),
        )
    if settings.model_parameters_json is not None:
        value = struct_pb2.Value()
        json_format.Parse(settings.model_parameters_json, value)
        job.model_parameters = value
    if settings.service_account:
        job.service_account = settings.service_account
    if settings.kms_key_name:
        job.encryption_spec = encryption(settings.kms_key_name)
    if settings.bigquery_source:
        job.input_config.gcs_source = None
        job.input_config.bigquery_source = io.BigQuerySource(input_uri=settings.bigquery_source)
        job.input_config.instances_format = "bigquery"
    job.output_config.predictions_format = settings.predictions_format.value
    if settings.bigquery_destination:
        job.output_config.gcs_destination = None
        job.output_config.bigquery_destination = io.BigQueryDestination(
            output_uri=settings.bigquery_destination
        )


# ---- reading back ----


def observed_deployment_settings(dm: Any) -> tuple[tuple[str, str], ...]:
    specs = tuple(
        AutoscalingMetricSpec(s.metric_name, s.target)
        for s in dm.dedicated_resources.autoscaling_metric_specs
    )
    return mutable_settings(specs, bool(dm.disable_container_logging))


def observed_endpoint_settings(e: Any) -> tuple[tuple[tuple[str, str], ...], str]:
    """(create-only settings, logging config) of an Endpoint message, as comparable text."""
    psc_msg = e.private_service_connect_config
    psc = (
        PrivateServiceConnectConfig(
            bool(psc_msg.enable_private_service_connect), tuple(psc_msg.project_allowlist)
        )
        if psc_msg.enable_private_service_connect
        else None
    )
    fixed = fixed_endpoint_settings(
        e.network or None,
        psc,
        e.encryption_spec.kms_key_name or None,
        bool(e.dedicated_endpoint_enabled),
    )
    log = e.predict_request_response_logging_config
    config = RequestResponseLogging(
        bool(log.enabled), float(log.sampling_rate), log.bigquery_destination.output_uri or None
    )
    return fixed, logging_text(config)
