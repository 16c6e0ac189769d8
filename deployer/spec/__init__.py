"""The spec: one YAML file -> one validated, frozen `Spec`.

`load_spec` reads the YAML, validates every field and every cross-field rule (reporting
all problems at once as a `SpecError` with file, line, field and fix) and returns the
frozen dataclasses the core works with. Nothing here does I/O beyond reading the spec and
checking local artifact paths, and nothing here calls an API.
"""

from __future__ import annotations

from deployer.spec.load import (
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
    load_spec,
    parse_ttl,
)

__all__ = [
    "Accelerator",
    "BatchInput",
    "BatchJob",
    "Bucket",
    "Deployment",
    "Endpoint",
    "Guards",
    "InputFormat",
    "Model",
    "ModelVersion",
    "Spec",
    "Target",
    "load_spec",
    "parse_ttl",
]
