"""The spec document: one set of typed models that validate the YAML and build the frozen spec.

Owns the document's shape (keys, types, defaults, descriptions: the JSON Schema comes
from these models) and every rule a valid spec obeys, each beside the field it checks:
value rules as annotated types and field validators (`deployer.spec.rules` holds their
logic), rules across fields as model validators on the object that holds those fields
(replica bounds and accelerator fit on a deployment, traffic sums on an endpoint,
duplicate names and model@alias references on the document). `SpecDoc.to_spec` turns a
valid document into the frozen dataclasses of `deployer.spec.model`.

Every problem at once: validated with a `Findings` as pydantic's context (as
`load_spec` does), rules report to it and let the value through, so one run finds
every rule broken anywhere in the file. Only a problem of shape (a wrong type, a
missing field, a value outside a closed set) stops its object, and with it the
cross-field rules of the objects around it, until it is fixed. Without a `Findings`,
a broken rule raises like any pydantic error, and the rules that need the document read
so far (unique names, model@alias references) are not checked.

Must not: read YAML (`deployer.spec.load` does), call an API, or be imported on the
CLI's fast path (pydantic is heavy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from deployer.spec import containers, production, rules
from deployer.spec.containers import ContainerDoc
from deployer.spec.docbase import (
    DocModel,
    ImageRef,
    Labels,
    MachineType,
    ModelRef,
    Name,
    field_at,
    findings_of,
    local_resolver,
    report,
    rule,
    unique,
)
from deployer.spec.model import (
    Accelerator,
    BatchInput,
    BatchJob,
    Bucket,
    Deployment,
    Endpoint,
    Guards,
    InputFormat,
    Model,
    ModelVersion,
    Spec,
    Target,
    parse_ttl,
)
from deployer.spec.problems import Findings, Path_, resolve_local
from deployer.spec.production import (
    BatchBigQueryDestinationDoc,
    BatchJobFields,
    BigQuerySourceDoc,
    DeployedModelFields,
    EncryptionSpecDoc,
    EndpointFields,
)
from deployer.spec.rollout import RolloutDoc, check_endpoint, effective_policy
from deployer.spec.rules import Max, Min, NonEmpty, Pattern
from deployer.wire.batch_formats import FORMAT_BY_SUFFIX, infer_format

STACK_PATTERN = r"^[a-z][a-z0-9-]{0,39}$"
ALIAS_PATTERN = r"^[a-z]([a-zA-Z0-9-]{0,126}[a-z0-9])?$"
REGION_PATTERN = r"^[a-z]+-[a-z]+[0-9]+$"
PROJECT_PATTERN = r"^([a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$"
TTL_PATTERN = r"^[0-9]+[mhdw]$"

# ---- the document ----


class BucketDoc(DocModel):
    name: Annotated[str, rule(rules.bucket)] = Field(
        description="GCS bucket name (3-63 chars: lowercase letters, digits, - _ .)."
    )
    create: bool = Field(
        True,
        description="true: the stack creates the bucket and teardown deletes it; false: it must "
        "exist.",
    )
    location: str | None = Field(
        None, description="Bucket location; defaults to the region, upper-cased."
    )

    def build(self, region: str) -> Bucket:
        return Bucket(name=self.name, location=self.location or region.upper(), create=self.create)


class ModelVersionDoc(DocModel):
    alias: Annotated[
        str,
        Pattern(
            ALIAS_PATTERN,
            "start with a lowercase letter, use letters, digits and '-', and end with a "
            "lowercase letter or digit",
            "v1",
        ),
        unique("version alias"),
    ] = Field(description="Version alias, unique within the model, e.g. v1.")
    artifact: str = Field(
        description="SavedModel directory (relative to the spec file) or a gs:// URI."
    )
    container: ImageRef | ContainerDoc | None = Field(
        None,
        description="Serving container (an image, or custom-container settings); overrides "
        "the model's.",
    )
    description: str = Field("", description="Shown in the model registry.")
    labels: Labels = Field(default_factory=dict, description="User labels (GCP label rules).")

    @field_validator("alias")
    @classmethod
    def _not_reserved(cls, alias: str, info: ValidationInfo) -> str:
        if alias == "default":
            problem = ("the alias 'default' is reserved by Vertex AI", "use another alias, e.g. v1")
            report(info, field_at(info), problem)
        return alias

    @field_validator("artifact")
    @classmethod
    def _artifact(cls, artifact: str, info: ValidationInfo) -> str:
        report(info, field_at(info), rules.artifact(artifact, local_resolver(info)))
        return artifact

    def build(self, model: ModelDoc, locate: Callable[[str], str]) -> ModelVersion:
        return ModelVersion(
            alias=self.alias,
            artifact=locate(self.artifact),
            container_image=containers.image_of(self.container or model.container) or "",
            description=self.description,
            labels=tuple(sorted(self.labels.items())),
            container=containers.build(chosen)
            if (chosen := self.container or model.container)
            else None,
        )


class ModelDoc(DocModel):
    name: Annotated[Name, unique("model name")] = Field(
        description="Logical model name, unique in the spec."
    )
    container: ImageRef | ContainerDoc | None = Field(
        None,
        description="Default serving container for the versions: a pre-built image, e.g. "
        "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest, or a custom container "
        "({image, command, args, env, ports, predict_route, health_route, ...}).",
    )
    display_name: str | None = Field(None, description="Registry display name; defaults to name.")
    description: str = Field("", description="Shown in the model registry.")
    labels: Labels = Field(
        default_factory=dict, description="User labels on every version (GCP label rules)."
    )
    versions: Annotated[list[ModelVersionDoc], NonEmpty()] = Field(
        description="Oldest first; the last is newest."
    )
    encryption_spec: EncryptionSpecDoc | None = Field(
        None, description="Customer-managed encryption key for every version."
    )

    @model_validator(mode="after")
    def _versions(self, info: ValidationInfo) -> Self:
        if self.container is None:
            missing = [v.alias for v in self.versions if v.container is None]
            if missing:
                problem = (
                    f"no serving container image for {', '.join(missing)}",
                    f"set container: {rules.EXAMPLE_CONTAINER} on the model (or on each version)",
                )
                self._report(info, ("container",), problem)
        self._report(info, ("container",), _prebuilt(self.container))
        resolve = local_resolver(info)
        for j, version in enumerate(self.versions):
            self._report(info, ("versions", j, "container"), _prebuilt(version.container))
            image = containers.image_of(version.container or self.container)
            if resolve is None or image is None or version.artifact.startswith("gs:"):
                continue
            directory = resolve(version.artifact)
            if directory.is_dir():
                found = containers.artifact_content(image, directory)
                self._report(info, ("versions", j, "artifact"), found)
        return self

    def build(self, locate: Callable[[str], str]) -> Model:
        return Model(
            name=self.name,
            versions=tuple(v.build(self, locate) for v in self.versions),
            display_name=self.display_name or self.name,
            description=self.description,
            labels=tuple(sorted(self.labels.items())),
            kms_key_name=self.encryption_spec.kms_key_name if self.encryption_spec else None,
        )


def _prebuilt(container: str | ContainerDoc | None) -> rules.Problem | None:
    image = containers.image_of(container)
    return containers.prebuilt_image(image) if image else None


class AcceleratorDoc(DocModel):
    type: Annotated[str, rule(rules.accelerator_type)] = Field(
        description="Vertex accelerator type, e.g. NVIDIA_TESLA_T4 or NVIDIA_L4."
    )
    count: Annotated[int, Min(1), Max(rules.ACCELERATOR_COUNT_MAX)] = Field(
        1, description="Accelerators per replica."
    )

    def build(self) -> Accelerator:
        return Accelerator(type=self.type, count=self.count)


def _fit(machine: str, accelerator: AcceleratorDoc | None) -> rules.Problem | None:
    if accelerator is None:
        return rules.accelerator_fit(machine, None, 1)
    return rules.accelerator_fit(machine, accelerator.type, accelerator.count)


class DeploymentDoc(DeployedModelFields):  # production fields: deployer.spec.production
    model: ModelRef = Field(description="model@alias, e.g. mnist@v1.")
    traffic: Annotated[int | None, Min(0), Max(100)] = Field(
        None,
        description="Percent of the endpoint's traffic; required when it has several deployments.",
    )
    machine_type: MachineType = Field(
        description="e.g. n1-standard-4, g2-standard-8, a2-highgpu-1g."
    )
    accelerator: AcceleratorDoc | None = Field(
        None, description="GPUs per replica; omit for CPU only."
    )
    min_replicas: Annotated[int, Min(1)] = Field(
        1, description="Replicas always running (and billed)."
    )
    max_replicas: Annotated[int | None, Min(1)] = Field(
        None, description="Defaults to min_replicas."
    )
    rollout: RolloutDoc | None = Field(
        None, description="Overrides fields of the endpoint's rollout policy for this version."
    )

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        bound = rules.replica_bound(
            "min_replicas", self.min_replicas, "max_replicas", self.max_replicas
        )
        self._report(info, ("max_replicas",), bound)
        self._report(info, ("accelerator",), _fit(self.machine_type, self.accelerator))
        for below, problem in production.deployed_model_problems(
            self,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            has_accelerator=self.accelerator is not None,
        ):
            self._report(info, below, problem)
        return self

    def build(self, endpoint: EndpointDoc, locate: Callable[[str], str]) -> Deployment:
        model, _, version = self.model.partition("@")
        traffic = 100 if self.traffic is None else self.traffic
        return Deployment(
            model=model,
            version=version,
            traffic=traffic,
            machine_type=self.machine_type,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas or self.min_replicas,
            accelerator=self.accelerator.build() if self.accelerator else None,
            rollout=effective_policy(endpoint.rollout, self.rollout, traffic, locate),
            settings=production.build_deployed_model(self),
        )


class EndpointDoc(EndpointFields):  # production fields: deployer.spec.production
    name: Annotated[Name, unique("endpoint name")] = Field(
        description="Logical endpoint name, unique in the spec."
    )
    display_name: str | None = Field(None, description="Display name; defaults to name.")
    description: str = Field("", description="Shown on the endpoint.")
    labels: Labels = Field(default_factory=dict, description="User labels (GCP label rules).")
    deployments: Annotated[list[DeploymentDoc], NonEmpty()] = Field(
        description="Model versions served, with their traffic split (sums to 100)."
    )
    rollout: RolloutDoc | None = Field(
        None,
        description="How a new deployment takes its traffic: verified steps, with automatic "
        "rollback (the default for this endpoint's deployments).",
    )

    @model_validator(mode="after")
    def _rollouts(self, info: ValidationInfo) -> Self:
        check_endpoint(
            self.rollout,
            [(d.rollout, d.traffic) for d in self.deployments],
            lambda below, problem: self._report(info, below, problem),
        )
        return self

    @model_validator(mode="after")
    def _traffic_split(self, info: ValidationInfo) -> Self:
        shares: list[tuple[str, int]] = []
        sum_known = True  # False once a share is missing or invalid (reported on the field)
        seen: set[str] = set()
        for j, dep in enumerate(self.deployments):
            if dep.model in seen:
                problem = (
                    f"{dep.model} is deployed twice on this endpoint",
                    "deploy each version once; change its replicas instead",
                )
                self._report(info, ("deployments", j, "model"), problem)
            seen.add(dep.model)
            traffic = dep.traffic
            if traffic is None:
                if dep._unknown_keys or len(self.deployments) > 1:
                    sum_known = False
                if dep._unknown_keys:
                    continue  # e.g. `trafic: 90`: the unknown key is the real problem
                if len(self.deployments) > 1:
                    problem = (
                        "traffic is required when an endpoint has several deployments",
                        "give each deployment a traffic percentage; together they make 100",
                    )
                    self._report(info, ("deployments", j, "traffic"), problem)
                    continue
                traffic = 100
            if not 0 <= traffic <= 100:
                sum_known = False  # reported on the field
                continue
            shares.append((dep.model, traffic))
        total = sum(t for _, t in shares)
        if sum_known and shares and total != 100:
            detail = ", ".join(f"{ref}: {t}" for ref, t in shares)
            problem = (
                f"traffic sums to {total}, not 100 ({detail})",
                "make the deployments' traffic percentages add up to 100",
            )
            self._report(info, ("deployments",), problem)
        for below, found in production.endpoint_problems(self):
            self._report(info, below, found)
        return self

    def build(self, locate: Callable[[str], str]) -> Endpoint:
        return Endpoint(
            name=self.name,
            deployments=tuple(d.build(self, locate) for d in self.deployments),
            display_name=self.display_name or self.name,
            description=self.description,
            labels=tuple(sorted(self.labels.items())),
            settings=production.build_endpoint(self),
        )


class BatchInputDoc(DocModel):
    path: str | None = Field(
        None, description="A local file or folder (relative to the spec) or gs:// URI."
    )
    paths: list[str] | None = Field(None, description="Several inputs; use instead of path.")
    bigquery_source: BigQuerySourceDoc | None = Field(
        None,
        description="A BigQuery table to score ({input_uri: bq://project.dataset.table}); "
        "instead of path or paths.",
    )
    format: Literal["jsonl", "csv", "file-list", "tf-record"] | None = Field(
        None,
        description="Instances format; when omitted, read from the name: .jsonl/.json/.ndjson, "
        ".npy/.npz (converted to JSON Lines), .csv, .txt/.lst (file list), "
        ".tfrecord/.tfrecords/.tfr, or a folder (a file list of its files).",
    )

    _inferred: InputFormat | None = PrivateAttr(default=None)  # from the first input's name

    @field_validator("path")
    @classmethod
    def _check_path(cls, path: str | None, info: ValidationInfo) -> str | None:
        if path is not None:
            report(info, field_at(info), rules.batch_input(path, local_resolver(info)))
        return path

    @field_validator("paths")
    @classmethod
    def _check_paths(cls, paths: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if paths is None:
            return None
        if not paths:
            problem = ("paths is empty", "list at least one input file, folder or gs:// URI")
            report(info, field_at(info), problem)
        for k, path in enumerate(paths):
            report(info, field_at(info, k), rules.batch_input(path, local_resolver(info)))
        return paths

    @model_validator(mode="after")
    def _one_source_of_known_format(self, info: ValidationInfo) -> Self:
        if self.bigquery_source is not None:
            if self.path is not None or self.paths is not None or self.format is not None:
                problem = (
                    "input has bigquery_source and a file input (path, paths or format)",
                    "keep one: bigquery_source for a table, or path/paths for files",
                )
                self._report(info, ("bigquery_source",), problem)
            return self
        if self.path is not None and self.paths is not None:
            problem = (
                "input has both path and paths",
                "keep one: path for one input, paths for several",
            )
            self._report(info, (), problem)
        elif self.path is None and self.paths is None:
            self._report(
                info,
                (),
                ("input names no data", "add path: data/instances.jsonl (or paths: [...])"),
            )
        first = self.path if self.path is not None else next(iter(self.paths or ()), None)
        if self.format is not None or first is None:
            return self
        findings = findings_of(info)
        is_dir = (
            findings is not None
            and findings.base_dir is not None
            and not first.startswith("gs://")
            and findings.resolve(first).is_dir()
        )
        inferred = infer_format(first, is_dir=is_dir)
        if inferred is None:
            problem = (
                f"cannot tell the input format of {first!r} from its extension",
                "add format: jsonl | csv | file-list | tf-record (the names it reads: "
                f"{', '.join(FORMAT_BY_SUFFIX)}, or a folder)",
            )
            self._report(info, ("format",), problem)
        else:
            self._inferred = InputFormat(inferred)
        return self

    def build(self, locate: Callable[[str], str]) -> BatchInput:
        if self.bigquery_source is not None:
            return BatchInput(paths=(), format=InputFormat.BIGQUERY)
        paths = [self.path] if self.path is not None else list(self.paths or ())
        fmt = InputFormat(self.format) if self.format is not None else self._inferred
        if fmt is None:
            raise ValueError(f"no input format for {paths!r}")  # a valid document always has one
        return BatchInput(paths=tuple(locate(p) for p in paths), format=fmt)


class BatchOutputDoc(DocModel):
    prefix: Annotated[str, rule(rules.output_prefix)] = Field(
        "predictions/", description="Object prefix in the stack bucket."
    )
    predictions_format: Literal["jsonl", "csv", "bigquery"] = Field(
        "jsonl", description="jsonl | csv | bigquery (bigquery needs bigquery_destination)."
    )
    bigquery_destination: BatchBigQueryDestinationDoc | None = Field(
        None, description="{output_uri: bq://project[.dataset]} for predictions_format bigquery."
    )


class BatchReplicasDoc(DocModel):
    starting: Annotated[int, Min(1)] = Field(1, description="Replicas the job starts with.")
    max: Annotated[int | None, Min(1)] = Field(None, description="Defaults to starting.")

    @model_validator(mode="after")
    def _bounds_in_order(self, info: ValidationInfo) -> Self:
        self._report(
            info, ("max",), rules.replica_bound("starting", self.starting, "max", self.max)
        )
        return self


class BatchJobDoc(BatchJobFields):  # production fields: deployer.spec.production
    name: Annotated[Name, unique("batch job name")] = Field(
        description="Logical job name, unique in the spec."
    )
    model: ModelRef = Field(description="model@alias of the version to run.")
    input: BatchInputDoc = Field(description="What to score: path or paths, and format.")
    output: BatchOutputDoc = Field(
        default_factory=lambda: BatchOutputDoc.model_validate({}),
        description="Where results go in the stack bucket.",
    )
    machine_type: MachineType = Field(description="e.g. n1-standard-4.")
    accelerator: AcceleratorDoc | None = Field(
        None, description="GPUs per replica; omit for CPU only."
    )
    replicas: BatchReplicasDoc = Field(
        default_factory=lambda: BatchReplicasDoc.model_validate({}),
        description="Replica count range.",
    )
    batch_size: Annotated[int | None, Min(1)] = Field(None, description="Instances per model call.")

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> Self:
        self._report(info, ("accelerator",), _fit(self.machine_type, self.accelerator))
        source = self.input.bigquery_source
        destination = self.output.bigquery_destination
        for below, problem in production.batch_job_problems(
            self,
            input_format="bigquery" if source else self.input.format or self._input_format(),
            predictions_format=self.output.predictions_format,
            bigquery_destination=destination.output_uri if destination else None,
        ):
            self._report(info, below, problem)
        return self

    def _input_format(self) -> str | None:
        inferred = self.input._inferred
        return inferred.value if inferred is not None else None

    def build(self, locate: Callable[[str], str]) -> BatchJob:
        model, _, version = self.model.partition("@")
        prefix = self.output.prefix
        return BatchJob(
            name=self.name,
            model=model,
            version=version,
            input=self.input.build(locate),
            output_prefix=prefix if prefix.endswith("/") else prefix + "/",
            machine_type=self.machine_type,
            starting_replicas=self.replicas.starting,
            max_replicas=self.replicas.max or self.replicas.starting,
            accelerator=self.accelerator.build() if self.accelerator else None,
            batch_size=self.batch_size,
            settings=production.build_batch_job(
                self,
                predictions_format=self.output.predictions_format,
                bigquery_source=(
                    self.input.bigquery_source.input_uri if self.input.bigquery_source else None
                ),
                bigquery_destination=(
                    self.output.bigquery_destination.output_uri
                    if self.output.bigquery_destination
                    else None
                ),
            ),
        )


class GuardsDoc(DocModel):
    max_hourly_usd: Annotated[float | None, Min(0, exclusive=True)] = Field(
        None, description="apply refuses plans whose steady-state cost exceeds this."
    )
    ttl: Annotated[
        str | None,
        Pattern(TTL_PATTERN, "be a number followed by m, h, d or w", "4h"),
        rule(rules.ttl_not_zero),
    ] = Field(
        None,
        description="Expiry after apply, e.g. 30m, 4h, 2d, 1w; `deployer reap` enforces it.",
    )

    def build(self) -> Guards:
        return Guards(
            max_hourly_usd=self.max_hourly_usd,
            ttl_seconds=parse_ttl(self.ttl) if self.ttl else None,
        )


class SpecDoc(DocModel):
    """A deployer stack: a bucket, model versions, endpoints and batch jobs."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="deployer spec",
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            # `x-*` keys hold YAML anchors for reuse; the loader ignores them.
            "patternProperties": {"^x-": {}},
        },
    )

    stack: Annotated[
        str,
        Pattern(
            STACK_PATTERN,
            "start with a lowercase letter and use only lowercase letters, digits and '-' "
            "(at most 40 characters)",
            "mnist",
        ),
    ] = Field(description="Stack name; labels everything it owns.")
    project: Annotated[
        str,
        Pattern(
            PROJECT_PATTERN,
            "be a Google Cloud project id (6-30 lowercase letters, digits or '-')",
            "my-project-123",
        ),
    ] = Field(description="Google Cloud project id; ${VAR:-default} works.")
    region: Annotated[
        str, Pattern(REGION_PATTERN, "be a Google Cloud region name", "us-central1")
    ] = Field(description="e.g. us-central1.")
    target: Literal["local", "vertex"] = Field(
        "local", description="local: the embedded emulator; vertex: real Vertex AI."
    )
    bucket: BucketDoc = Field(description="Bucket for artifacts, batch inputs and outputs.")
    models: Annotated[list[ModelDoc], NonEmpty()] = Field(
        description="Registry models and their versions."
    )
    endpoints: list[EndpointDoc] = Field(
        default_factory=list, description="Online prediction endpoints."
    )
    batch_jobs: list[BatchJobDoc] = Field(
        default_factory=list, description="Batch prediction jobs."
    )
    guards: GuardsDoc = Field(
        default_factory=lambda: GuardsDoc.model_validate({}),
        description="Cost and lifetime limits.",
    )

    @model_validator(mode="after")
    def _keys_in_region(self, info: ValidationInfo) -> Self:
        # Vertex refuses a CMEK key from another region than the resource's.
        owners: list[tuple[Path_, EncryptionSpecDoc | None]] = [
            (("models", i), m.encryption_spec) for i, m in enumerate(self.models)
        ]
        owners += [(("endpoints", i), e.encryption_spec) for i, e in enumerate(self.endpoints)]
        owners += [(("batch_jobs", i), j.encryption_spec) for i, j in enumerate(self.batch_jobs)]
        for where, spec in owners:
            for below, problem in production.model_problems(spec, self.region):
                self._report(info, (*where, *below), problem)
        return self

    @model_validator(mode="after")
    def _gpu_images_have_gpus(self, info: ValidationInfo) -> Self:
        # A GPU pre-built image on a machine without an accelerator fails to deploy on Vertex.
        images = {
            f"{m.name}@{v.alias}": containers.image_of(v.container or m.container)
            for m in self.models
            for v in m.versions
        }
        for i, endpoint in enumerate(self.endpoints):
            for j, dep in enumerate(endpoint.deployments):
                image = images.get(dep.model)
                if image and dep.accelerator is None and containers.gpu_image(image):
                    problem = (
                        f"{dep.model} is served by the GPU image {image}, and this deployment "
                        "has no accelerator",
                        "add accelerator: {type: NVIDIA_TESLA_T4, count: 1} (and a machine "
                        "type that takes it), or use the image's -cpu variant",
                    )
                    self._report(info, ("endpoints", i, "deployments", j, "accelerator"), problem)
        return self

    def to_spec(self, *, source: Path) -> Spec:
        """The frozen spec; local paths resolved against the spec file's directory."""
        base_dir = source.resolve().parent
        resolved: dict[str, str] = {}

        def locate(text: str) -> str:
            if text.startswith("gs://"):
                return text
            if text not in resolved:
                resolved[text] = str(resolve_local(text, base_dir))
            return resolved[text]

        return Spec(
            stack=self.stack,
            project=self.project,
            region=self.region,
            target=Target(self.target),
            bucket=self.bucket.build(self.region),
            models=tuple(m.build(locate) for m in self.models),
            endpoints=tuple(e.build(locate) for e in self.endpoints),
            batch_jobs=tuple(j.build(locate) for j in self.batch_jobs),
            guards=self.guards.build(),
            source=source,
        )


def validate(data: Mapping[str, Any], findings: Findings) -> SpecDoc | None:
    """Validate `data`, reporting every problem to `findings`; the SpecDoc, if it was built."""
    try:
        return SpecDoc.model_validate(data, context=findings)
    except ValidationError as exc:
        findings.add_validation_errors(exc.errors(include_url=False))
        return None
