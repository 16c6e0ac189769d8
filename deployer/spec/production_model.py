"""The production settings of the frozen spec: what Vertex lets a team set beyond the basics.

Owns the frozen dataclasses for the settings of issue 16 (service account, autoscaling
targets, Spot, logging switches, shared resource pools, deploy timeout on a deployed
model; private networking, CMEK and request/response logging on an endpoint; CMEK on a
model; instance shaping, parameters, BigQuery and CMEK on a batch job), named as Vertex
names them in snake_case. `deployer.spec.model` holds one of these per object, defaulting
to "nothing set", so a spec without them builds exactly as before.

Must not: import pydantic or validate (`deployer.spec.production` does), do I/O, or
call an API. Pure data, cheap to import.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class AutoscalingMetric(str, enum.Enum):
    """The v1 AutoscalingMetricSpec.metric_name values for online prediction."""

    CPU_UTILIZATION = "aiplatform.googleapis.com/prediction/online/cpu/utilization"
    ACCELERATOR_DUTY_CYCLE = "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle"
    REQUEST_COUNT = "aiplatform.googleapis.com/prediction/online/request_count"


@dataclass(frozen=True)
class AutoscalingMetricSpec:
    metric_name: str  # an AutoscalingMetric value (plain str: saved plans carry it as JSON)
    target: int  # percent for utilization and duty cycle; requests per minute per replica


@dataclass(frozen=True)
class DeployedModelSettings:
    """DeployedModel fields beyond model, resources and traffic (all optional)."""

    service_account: str | None = None  # the container's identity (an email)
    autoscaling_metric_specs: tuple[AutoscalingMetricSpec, ...] = ()  # dedicated resources
    spot: bool = False  # dedicatedResources.spot
    enable_access_logging: bool = False
    disable_container_logging: bool = False
    shared_resources: str | None = None  # a DeploymentResourcePool, by id or full name
    deploy_timeout_seconds: int | None = None  # how long apply waits for the deploy operation

    @property
    def replace_key(self) -> str:
        """The fields Vertex cannot change on a deployed model: a change means a new one.

        "" when none is set, so deployments that predate these settings keep their identity.
        """
        fixed = (self.service_account, self.spot, self.enable_access_logging, self.shared_resources)
        if fixed == (None, False, False, None):
            return ""
        return "|".join(str(v) for v in fixed)

    @property
    def mutable(self) -> tuple[tuple[str, str], ...]:
        """What mutateDeployedModel changes in place besides replicas, as comparable text."""
        return mutable_settings(self.autoscaling_metric_specs, self.disable_container_logging)

    def shared_pool_name(self, project: str, region: str) -> str | None:
        """The pool's full resource name (Vertex wants one); an id is placed in the stack's."""
        pool = self.shared_resources
        if pool is None or pool.startswith("projects/"):
            return pool
        return f"projects/{project}/locations/{region}/deploymentResourcePools/{pool}"


def mutable_settings(
    specs: tuple[AutoscalingMetricSpec, ...], disable_container_logging: bool
) -> tuple[tuple[str, str], ...]:
    """The in-place settings of a deployed model as text; providers read them back the same way."""
    targets = ",".join(f"{s.metric_name}={s.target}" for s in sorted(specs, key=_by_name))
    return (
        ("autoscaling_metric_specs", targets),
        ("disable_container_logging", str(disable_container_logging).lower()),
    )


def _by_name(spec: AutoscalingMetricSpec) -> str:
    return spec.metric_name


@dataclass(frozen=True)
class PrivateServiceConnectConfig:
    enable_private_service_connect: bool
    project_allowlist: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestResponseLogging:
    """Endpoint.predict_request_response_logging_config."""

    enabled: bool
    sampling_rate: float  # 0..1
    bigquery_output_uri: str | None = None  # bq://project[.dataset[.table]]


@dataclass(frozen=True)
class EndpointSettings:
    network: str | None = None  # projects/{number}/global/networks/{name}
    private_service_connect_config: PrivateServiceConnectConfig | None = None
    kms_key_name: str | None = None  # encryption_spec.kms_key_name
    predict_request_response_logging_config: RequestResponseLogging | None = None
    dedicated_endpoint_enabled: bool = False

    @property
    def fixed(self) -> tuple[tuple[str, str], ...]:
        """The settings Vertex sets only at creation, as comparable text."""
        return fixed_endpoint_settings(
            self.network,
            self.private_service_connect_config,
            self.kms_key_name,
            self.dedicated_endpoint_enabled,
        )

    @property
    def logging(self) -> str:
        """The request/response logging config as comparable text ("" when off)."""
        return logging_text(self.predict_request_response_logging_config)

    @property
    def private(self) -> bool:
        psc = self.private_service_connect_config
        return self.network is not None or (psc is not None and psc.enable_private_service_connect)


def fixed_endpoint_settings(
    network: str | None,
    psc: PrivateServiceConnectConfig | None,
    kms_key_name: str | None,
    dedicated: bool,
) -> tuple[tuple[str, str], ...]:
    enabled = psc is not None and psc.enable_private_service_connect
    allow = ",".join(sorted(psc.project_allowlist)) if psc is not None and enabled else ""
    return (
        ("network", network or ""),
        ("private_service_connect", f"{str(enabled).lower()}:{allow}"),
        ("kms_key_name", kms_key_name or ""),
        ("dedicated_endpoint_enabled", str(dedicated).lower()),
    )


def logging_text(config: RequestResponseLogging | None) -> str:
    if config is None or not config.enabled:
        return ""
    return f"{config.sampling_rate:g}:{config.bigquery_output_uri or ''}"


class PredictionsFormat(str, enum.Enum):
    """BatchPredictionJob.output_config.predictions_format."""

    JSONL = "jsonl"
    CSV = "csv"
    BIGQUERY = "bigquery"


@dataclass(frozen=True)
class InstanceConfig:
    """BatchPredictionJob.instance_config: how input rows become model instances."""

    instance_type: str | None = None  # "object" | "array"
    key_field: str | None = None
    included_fields: tuple[str, ...] = ()
    excluded_fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchJobSettings:
    instance_config: InstanceConfig | None = None
    model_parameters_json: str | None = None  # canonical JSON (sorted keys) of model_parameters
    service_account: str | None = None
    predictions_format: PredictionsFormat = PredictionsFormat.JSONL
    bigquery_source: str | None = None  # bq://project.dataset.table, instead of input paths
    bigquery_destination: str | None = None  # bq://project[.dataset]
    kms_key_name: str | None = None
