"""The production settings' document models and rules (issue 16).

Owns the YAML shape of the settings Vertex offers beyond the basics, named as Vertex's
v1 API names them in snake_case (`autoscaling_metric_specs`, `private_service_connect_
config`, `encryption_spec.kms_key_name`, `predict_request_response_logging_config`,
`instance_config`, ...), the shapes Vertex documents for their values (service-account
emails, KMS key names, VPC network names, bq:// URIs), and the rules across fields
(autoscaling targets only where replicas can vary, `network` XOR Private Service
Connect, Spot and autoscaling only on dedicated resources, included XOR excluded
fields). `deployer.spec.document` declares these fields on its objects and calls the
cross-field checks from its validators; each check returns (field path, problem) pairs.

Must not: read YAML, call an API, or hold the frozen objects
(`deployer.spec.production_model` does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from deployer.spec import rules
from deployer.spec.docbase import DocModel, field_at, report
from deployer.spec.production_model import (
    AutoscalingMetric,
    AutoscalingMetricSpec,
    BatchJobSettings,
    DeployedModelSettings,
    EndpointSettings,
    InstanceConfig,
    PredictionsFormat,
    PrivateServiceConnectConfig,
    RequestResponseLogging,
)
from deployer.spec.rules import Max, Min, NonEmpty, Pattern

Found = Iterator[tuple[tuple[str | int, ...], rules.Problem]]

SERVICE_ACCOUNT_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}@[a-z0-9][a-z0-9.-]*\.gserviceaccount\.com$"
KMS_KEY_PATTERN = (
    r"^projects/[^/]+/locations/[a-z0-9-]+/keyRings/[A-Za-z0-9_-]+/cryptoKeys/[A-Za-z0-9_-]+$"
)
NETWORK_PATTERN = r"^projects/[0-9]+/global/networks/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
POOL_PATTERN = (
    r"^(projects/[^/]+/locations/[a-z0-9-]+/deploymentResourcePools/)?"
    r"[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
)
PROJECT_REF_PATTERN = r"^([a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})$"
BQ_PROJECT = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"
BQ_NAME = r"[A-Za-z0-9_]{1,1024}"
BQ_TABLE_PATTERN = rf"^bq://{BQ_PROJECT}\.{BQ_NAME}\.[A-Za-z0-9_-]{{1,1024}}$"
BQ_LOGGING_PATTERN = rf"^bq://{BQ_PROJECT}(\.{BQ_NAME}(\.[A-Za-z0-9_-]{{1,1024}})?)?$"
BQ_DATASET_PATTERN = rf"^bq://{BQ_PROJECT}(\.{BQ_NAME})?$"
DURATION_PATTERN = r"^[0-9]+[smh]$"
_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600}
DEPLOY_TIMEOUT_MAX_SECONDS = 24 * 3600
EXAMPLE_KMS = "projects/my-project/locations/us-central1/keyRings/ml/cryptoKeys/vertex"
EXAMPLE_SA = "serving@my-project.iam.gserviceaccount.com"

ServiceAccount = Annotated[
    str | None,  # a field's bounds must sit on the field itself (docbase reads them there)
    Pattern(
        SERVICE_ACCOUNT_PATTERN,
        "be a service account email (NAME@PROJECT.iam.gserviceaccount.com)",
        EXAMPLE_SA,
    ),
]


class EncryptionSpecDoc(DocModel):
    """Customer-managed encryption key (CMEK) for the resource."""

    kms_key_name: Annotated[
        str,
        Pattern(
            KMS_KEY_PATTERN,
            "be a Cloud KMS key name projects/*/locations/*/keyRings/*/cryptoKeys/*",
            EXAMPLE_KMS,
        ),
    ] = Field(
        description="projects/P/locations/L/keyRings/R/cryptoKeys/K; L must be the spec's region."
    )


_METRIC_NAMES = Literal[
    "aiplatform.googleapis.com/prediction/online/cpu/utilization",
    "aiplatform.googleapis.com/prediction/online/accelerator/duty_cycle",
    "aiplatform.googleapis.com/prediction/online/request_count",
]


class AutoscalingMetricSpecDoc(DocModel):
    metric_name: _METRIC_NAMES = Field(
        description="aiplatform.googleapis.com/prediction/online/cpu/utilization, "
        ".../accelerator/duty_cycle or .../request_count."
    )
    target: Annotated[int, Min(1)] = Field(
        60,
        description="Percent (1-100) for utilization and duty cycle; requests per minute per "
        "replica for request_count. Vertex's default is 60.",
    )

    def build(self) -> AutoscalingMetricSpec:
        return AutoscalingMetricSpec(AutoscalingMetric(self.metric_name).value, self.target)


def parse_duration(text: str) -> int:
    """ "90s", "30m", "2h" -> seconds (validated by DURATION_PATTERN first)."""
    return int(text[:-1]) * _DURATION_SECONDS[text[-1]]


def _timeout_rule(text: str) -> rules.Problem | None:
    if not text[:-1].isdigit() or text[-1] not in _DURATION_SECONDS:
        return None  # the Pattern reports it
    seconds = parse_duration(text)
    if 60 <= seconds <= DEPLOY_TIMEOUT_MAX_SECONDS:
        return None
    return (
        f"deploy_timeout {text!r} is outside 1m..24h",
        "use a value such as 30m (a deploy of a large model can take 20 minutes or more)",
    )


class DeployedModelFields(DocModel):
    """The DeployedModel settings, declared on `DeploymentDoc` (see deployer.spec.document)."""

    service_account: ServiceAccount = Field(
        None, description="Service account the serving container runs as (an email)."
    )
    autoscaling_metric_specs: list[AutoscalingMetricSpecDoc] | None = Field(
        None,
        description="Autoscaling targets, one per metric; only where replicas can vary "
        "(max_replicas > min_replicas).",
    )
    spot: bool = Field(False, description="Run the replicas on Spot VMs (dedicated resources).")
    enable_access_logging: bool = Field(
        False, description="Send online prediction access logs to Cloud Logging."
    )
    disable_container_logging: bool = Field(
        False, description="Stop sending the container's stdout/stderr to Cloud Logging."
    )
    shared_resources: Annotated[
        str | None,
        Pattern(
            POOL_PATTERN,
            "be a deployment resource pool id or projects/*/locations/*/deploymentResourcePools/*",
            "shared-pool",
        ),
    ] = Field(
        None,
        description="Deploy onto this deployment resource pool (co-hosting) instead of "
        "dedicated machines; machine_type and replicas then describe the pool for the estimate.",
    )
    deploy_timeout: Annotated[
        str | None,
        Pattern(DURATION_PATTERN, "be a number followed by s, m or h", "30m"),
    ] = Field(None, description="How long apply waits for the deploy, e.g. 30m (1m..24h).")


def deployed_model_problems(
    fields: DeployedModelFields,
    *,
    min_replicas: int,
    max_replicas: int | None,
    has_accelerator: bool,
) -> Found:
    """The rules across a deployment's production fields and its resources."""
    specs = fields.autoscaling_metric_specs or []
    if fields.deploy_timeout is not None:
        problem = _timeout_rule(fields.deploy_timeout)
        if problem:
            yield ("deploy_timeout",), problem
    if fields.shared_resources is not None:
        for name, present in (("spot", fields.spot), ("autoscaling_metric_specs", bool(specs))):
            if present:
                yield (
                    (name,),
                    (
                        f"{name} applies to dedicated resources, not to a shared resource pool",
                        f"remove {name} (the pool {fields.shared_resources!r} sets its own) or "
                        "remove shared_resources",
                    ),
                )
    if specs and (max_replicas is None or max_replicas <= min_replicas):
        yield (
            ("autoscaling_metric_specs",),
            (
                f"autoscaling targets need replicas that can vary, but max_replicas is "
                f"{max_replicas or min_replicas} and min_replicas is {min_replicas}",
                f"set max_replicas above {min_replicas}, or remove autoscaling_metric_specs",
            ),
        )
    seen: set[str] = set()
    for k, spec in enumerate(specs):
        short = spec.metric_name.rsplit("/", 2)[-2:]
        if spec.metric_name in seen:
            yield (
                ("autoscaling_metric_specs", k, "metric_name"),
                (
                    f"metric {'/'.join(short)} is listed twice",
                    "keep one target per metric (Vertex allows at most one)",
                ),
            )
        seen.add(spec.metric_name)
        if (
            spec.metric_name == AutoscalingMetric.ACCELERATOR_DUTY_CYCLE.value
            and not has_accelerator
        ):
            yield (
                ("autoscaling_metric_specs", k, "metric_name"),
                (
                    "accelerator duty cycle needs an accelerator, but this deployment has none",
                    "add accelerator: {type, count}, or target cpu/utilization instead",
                ),
            )
        if spec.metric_name != AutoscalingMetric.REQUEST_COUNT.value and spec.target > 100:
            yield (
                ("autoscaling_metric_specs", k, "target"),
                (
                    f"target must be a percentage (1-100) for {'/'.join(short)}, got {spec.target}",
                    "set target to a value at most 100, e.g. 60",
                ),
            )


def build_deployed_model(fields: DeployedModelFields) -> DeployedModelSettings:
    return DeployedModelSettings(
        service_account=fields.service_account,
        autoscaling_metric_specs=tuple(s.build() for s in fields.autoscaling_metric_specs or ()),
        spot=fields.spot,
        enable_access_logging=fields.enable_access_logging,
        disable_container_logging=fields.disable_container_logging,
        shared_resources=fields.shared_resources,
        deploy_timeout_seconds=(
            parse_duration(fields.deploy_timeout) if fields.deploy_timeout else None
        ),
    )


# ---- endpoint ----


class PrivateServiceConnectConfigDoc(DocModel):
    enable_private_service_connect: bool = Field(
        description="true: the endpoint is reachable only through Private Service Connect."
    )
    project_allowlist: list[str] = Field(
        default_factory=list,
        description="Projects allowed to connect (ids or numbers).",
        json_schema_extra={
            "items": {
                "type": "string",
                # ${VAR} text is interpolated by the loader (as deployer.spec.schema allows)
                "anyOf": [{"pattern": PROJECT_REF_PATTERN}, {"pattern": r"\$\{[A-Za-z_]"}],
            }
        },
    )

    @field_validator("project_allowlist")
    @classmethod
    def _projects(cls, projects: list[str], info: ValidationInfo) -> list[str]:
        # Each entry reported at its index (a bound on the list would see the list, not items).
        for k, project in enumerate(projects):
            if not re.match(PROJECT_REF_PATTERN, project):
                problem = (
                    f"project_allowlist entry {project!r} is not a project id or number",
                    "use a project id such as 'my-project-123' or a project number",
                )
                report(info, field_at(info, k), problem)
        return projects


class BigQueryDestinationDoc(DocModel):
    output_uri: Annotated[
        str,
        Pattern(
            BQ_LOGGING_PATTERN,
            "be bq://PROJECT, bq://PROJECT.DATASET or bq://PROJECT.DATASET.TABLE",
            "bq://my-project.logs.predictions",
        ),
    ] = Field(description="bq://project[.dataset[.table]] (Vertex creates what is missing).")


class RequestResponseLoggingDoc(DocModel):
    enabled: bool = Field(description="Log sampled requests and responses to BigQuery.")
    sampling_rate: Annotated[float, Min(0), Max(1)] = Field(
        0.0, description="Fraction of requests logged, 0..1."
    )
    bigquery_destination: BigQueryDestinationDoc | None = Field(
        None, description="Where the rows go: {output_uri: bq://...}."
    )


class EndpointFields(DocModel):
    """The Endpoint settings, declared on `EndpointDoc` (see deployer.spec.document)."""

    network: Annotated[
        str | None,
        Pattern(
            NETWORK_PATTERN,
            "be a VPC network name projects/PROJECT_NUMBER/global/networks/NETWORK",
            "projects/123456789012/global/networks/default",
        ),
    ] = Field(
        None,
        description="VPC network for private services access "
        "(projects/PROJECT_NUMBER/global/networks/NAME); excludes Private Service Connect.",
    )
    private_service_connect_config: PrivateServiceConnectConfigDoc | None = Field(
        None, description="Private Service Connect; excludes network."
    )
    encryption_spec: EncryptionSpecDoc | None = Field(
        None, description="Customer-managed encryption key for the endpoint."
    )
    predict_request_response_logging_config: RequestResponseLoggingDoc | None = Field(
        None, description="Request/response logging to BigQuery (changed in place)."
    )
    dedicated_endpoint_enabled: bool = Field(
        False, description="Serve from a dedicated DNS name, isolated from other users' traffic."
    )


def endpoint_problems(fields: EndpointFields, region: str | None = None) -> Found:
    psc = fields.private_service_connect_config
    if fields.network is not None and psc is not None:
        yield (
            ("private_service_connect_config",),
            (
                "network (private services access) and private_service_connect_config exclude "
                "each other",
                "keep one: network for VPC peering, or private_service_connect_config for PSC",
            ),
        )
    if psc is not None and not psc.enable_private_service_connect and psc.project_allowlist:
        yield (
            ("private_service_connect_config", "project_allowlist"),
            (
                "project_allowlist is set but enable_private_service_connect is false",
                "set enable_private_service_connect: true, or remove project_allowlist",
            ),
        )
    logging = fields.predict_request_response_logging_config
    if logging is not None and logging.enabled:
        where = ("predict_request_response_logging_config",)
        if logging.bigquery_destination is None:
            yield (
                (*where, "bigquery_destination"),
                (
                    "request/response logging is enabled but names no BigQuery destination",
                    "add bigquery_destination: {output_uri: bq://PROJECT.DATASET.TABLE}",
                ),
            )
        if logging.sampling_rate == 0:
            yield (
                (*where, "sampling_rate"),
                (
                    "request/response logging is enabled with sampling_rate 0, so it logs nothing",
                    "set sampling_rate above 0 (e.g. 0.1 logs one request in ten)",
                ),
            )
    yield from _kms_region(fields.encryption_spec, region)


def _kms_region(spec: EncryptionSpecDoc | None, region: str | None) -> Found:
    parts = spec.kms_key_name.split("/") if spec is not None else []
    if region is not None and len(parts) == 8 and parts[3] != region:
        yield (
            ("encryption_spec", "kms_key_name"),
            (
                f"the key is in {parts[3]!r}, but Vertex needs it in the resource's region "
                f"{region!r}",
                f"use a key ring in {region}",
            ),
        )


def build_endpoint(fields: EndpointFields) -> EndpointSettings:
    psc = fields.private_service_connect_config
    logging = fields.predict_request_response_logging_config
    return EndpointSettings(
        network=fields.network,
        private_service_connect_config=(
            PrivateServiceConnectConfig(
                psc.enable_private_service_connect, tuple(psc.project_allowlist)
            )
            if psc is not None
            else None
        ),
        kms_key_name=fields.encryption_spec.kms_key_name if fields.encryption_spec else None,
        predict_request_response_logging_config=(
            RequestResponseLogging(
                enabled=logging.enabled,
                sampling_rate=logging.sampling_rate,
                bigquery_output_uri=(
                    logging.bigquery_destination.output_uri
                    if logging.bigquery_destination
                    else None
                ),
            )
            if logging is not None
            else None
        ),
        dedicated_endpoint_enabled=fields.dedicated_endpoint_enabled,
    )


def model_problems(spec: EncryptionSpecDoc | None, region: str | None) -> Found:
    yield from _kms_region(spec, region)


# ---- batch job ----


class InstanceConfigDoc(DocModel):
    instance_type: Literal["object", "array"] | None = Field(
        None, description="object | array: the shape each instance is converted to."
    )
    key_field: str | None = Field(
        None,
        description="Field echoed as `key` in the output in place of the instance; not sent "
        "to the model.",
    )
    included_fields: Annotated[list[str] | None, NonEmpty()] = Field(
        None, description="Only these fields are sent (in this order for array)."
    )
    excluded_fields: Annotated[list[str] | None, NonEmpty()] = Field(
        None, description="These fields are not sent; exclusive with included_fields."
    )


class BigQuerySourceDoc(DocModel):
    input_uri: Annotated[
        str,
        Pattern(BQ_TABLE_PATTERN, "be bq://PROJECT.DATASET.TABLE", "bq://my-project.ml.instances"),
    ] = Field(description="The table to score: bq://project.dataset.table.")


class BatchBigQueryDestinationDoc(DocModel):
    output_uri: Annotated[
        str,
        Pattern(BQ_DATASET_PATTERN, "be bq://PROJECT or bq://PROJECT.DATASET", "bq://my-project"),
    ] = Field(description="bq://project[.dataset]; Vertex creates the predictions table.")


class BatchJobFields(DocModel):
    """The BatchPredictionJob settings, declared on `BatchJobDoc` (see deployer.spec.document)."""

    instance_config: InstanceConfigDoc | None = Field(
        None, description="How input rows become instances: instance_type, key_field, fields."
    )
    model_parameters: dict[str, Any] | None = Field(
        None, description="Parameters sent with every prediction (the model's parameters schema)."
    )
    service_account: ServiceAccount = Field(
        None, description="Service account the job runs as (an email)."
    )
    encryption_spec: EncryptionSpecDoc | None = Field(
        None, description="Customer-managed encryption key for the job and its outputs."
    )


_FIELDS_NEED = ("jsonl", "bigquery", "tf-record")  # included/excluded: JSONL objects, BQ, TFRecord


def batch_job_problems(
    fields: BatchJobFields,
    *,
    input_format: str | None,
    predictions_format: str,
    bigquery_destination: str | None,
    region: str | None = None,
) -> Found:
    config = fields.instance_config
    if config is not None:
        if config.included_fields and config.excluded_fields:
            yield (
                ("instance_config", "excluded_fields"),
                (
                    "included_fields and excluded_fields exclude each other",
                    "keep one: included_fields to pick fields, or excluded_fields to drop some",
                ),
            )
        for name, values in (
            ("included_fields", config.included_fields),
            ("excluded_fields", config.excluded_fields),
        ):
            if values and input_format is not None and input_format not in _FIELDS_NEED:
                yield (
                    ("instance_config", name),
                    (
                        f"{name} needs JSON Lines objects, BigQuery or TFRecord input, not "
                        f"{input_format}",
                        f"remove {name}, or use format: jsonl",
                    ),
                )
        if config.instance_type is not None and input_format in ("csv", "file-list", "tf-record"):
            yield (
                ("instance_config", "instance_type"),
                (
                    f"instance_type does not apply to {input_format} input",
                    "remove instance_type (it shapes JSON Lines and BigQuery rows)",
                ),
            )
        if config.key_field is not None and input_format == "file-list":
            yield (
                ("instance_config", "key_field"),
                (
                    "key_field needs JSON Lines objects, CSV, BigQuery or TFRecord input, not "
                    "file-list",
                    "remove key_field",
                ),
            )
        if config.key_field is not None and config.key_field in (config.excluded_fields or ()):
            yield (
                ("instance_config", "key_field"),
                (
                    f"key_field {config.key_field!r} is also in excluded_fields",
                    "remove it from excluded_fields (the key is never sent to the model anyway)",
                ),
            )
    if predictions_format == "bigquery" and bigquery_destination is None:
        yield (
            ("output", "bigquery_destination"),
            (
                "predictions_format bigquery needs a BigQuery destination",
                "add bigquery_destination: {output_uri: bq://PROJECT.DATASET}",
            ),
        )
    if bigquery_destination is not None and predictions_format != "bigquery":
        yield (
            ("output", "predictions_format"),
            (
                f"bigquery_destination is set but predictions_format is {predictions_format}",
                "set predictions_format: bigquery, or remove bigquery_destination",
            ),
        )
    yield from _kms_region(fields.encryption_spec, region)


def build_batch_job(
    fields: BatchJobFields,
    *,
    predictions_format: str,
    bigquery_source: str | None,
    bigquery_destination: str | None,
) -> BatchJobSettings:
    config = fields.instance_config
    return BatchJobSettings(
        instance_config=(
            InstanceConfig(
                instance_type=config.instance_type,
                key_field=config.key_field,
                included_fields=tuple(config.included_fields or ()),
                excluded_fields=tuple(config.excluded_fields or ()),
            )
            if config is not None
            else None
        ),
        model_parameters_json=(
            json.dumps(fields.model_parameters, sort_keys=True, separators=(",", ":"))
            if fields.model_parameters is not None
            else None
        ),
        service_account=fields.service_account,
        predictions_format=PredictionsFormat(predictions_format),
        bigquery_source=bigquery_source,
        bigquery_destination=bigquery_destination,
        kms_key_name=fields.encryption_spec.kms_key_name if fields.encryption_spec else None,
    )


def relative(found: Found, prefix: Sequence[str | int] = ()) -> Found:
    for path, problem in found:
        yield (*prefix, *path), problem
