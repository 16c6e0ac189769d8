"""The spec: one YAML file -> one validated, frozen `Spec`.

`load_spec` (`deployer.spec.load`) reads the YAML; the typed models of
`deployer.spec.document` validate every field and every rule across fields (reporting
all problems at once as a `SpecError` with file, line, field and fix) and build the
frozen dataclasses of `deployer.spec.model` that the core works with. The JSON Schema
(`deployer.spec.schema`) comes from the same models. Nothing here does I/O beyond
reading the spec and checking local artifact paths, and nothing here calls an API.
"""

from __future__ import annotations

from deployer.spec.load import load_spec
from deployer.spec.model import (
    Accelerator,
    AgreementCheck,
    BatchInput,
    BatchJob,
    Bucket,
    Deployment,
    Endpoint,
    Guards,
    InputFormat,
    Model,
    ModelVersion,
    OnFailure,
    RolloutPolicy,
    SmokeCheck,
    Spec,
    Target,
    parse_ttl,
)

__all__ = [
    "Accelerator",
    "AgreementCheck",
    "BatchInput",
    "BatchJob",
    "Bucket",
    "Deployment",
    "Endpoint",
    "Guards",
    "InputFormat",
    "Model",
    "ModelVersion",
    "OnFailure",
    "RolloutPolicy",
    "SmokeCheck",
    "Spec",
    "Target",
    "load_spec",
    "parse_ttl",
]
