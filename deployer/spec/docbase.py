"""The base of the spec's document models: how a rule reports, and where it is.

Owns `DocModel`, the pydantic base every document object derives from, and the
helpers its validators use. Validated with a `Findings` as pydantic's context (as
`load_spec` does), a broken rule is reported to the Findings with its field path and
the value is let through, so one run finds every problem in the file; each object
announces its path around its own validation (pydantic tells validators no location),
and reports unknown keys with a "did you mean". Without a Findings, a broken rule
raises like any pydantic error.

Also owns the annotated field types the document shares (`Name`, `ModelRef`, `Labels`,
`ImageRef`, `MachineType`): a type and the rule it obeys, declared once.

Must not: hold the spec's objects or the logic of its rules (`deployer.spec.document`
and `deployer.spec.rules` do), read YAML, or call an API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from deployer.spec import rules
from deployer.spec.problems import Findings, Located, Path_, field_path, suggest
from deployer.spec.rules import Pattern


def findings_of(info: ValidationInfo) -> Findings | None:
    return info.context if isinstance(info.context, Findings) else None


def report(info: ValidationInfo, path: Path_, problem: rules.Problem | None) -> None:
    if problem is None:
        return
    findings = findings_of(info)
    if findings is None:
        message, fix = problem
        raise PydanticCustomError(
            "spec_rule", "{message} (fix: {fix})", {"message": message, "fix": fix}
        )
    findings.add(path, *problem)


def field_at(info: ValidationInfo, *below: str | int) -> Path_:
    """The path of the field being validated (pydantic does not say; Findings tracks it)."""
    findings = findings_of(info)
    here = findings.here if findings is not None else ()
    return (*here, info.field_name or "", *below)


def rule(check: Callable[[Any], rules.Problem | None]) -> AfterValidator:
    """A field validator that reports `check`'s problem on the field and keeps the value."""

    def validate(value: Any, info: ValidationInfo) -> Any:
        report(info, field_at(info), check(value))
        return value

    return AfterValidator(validate)


def _check_labels(values: dict[str, str], info: ValidationInfo) -> dict[str, str]:
    for key, problem in rules.labels(values):
        report(info, field_at(info) if key is None else field_at(info, key), problem)
    return values


def local_resolver(info: ValidationInfo) -> Callable[[str], Path] | None:
    """How to find local paths on disk, or None when the load does not check them."""
    findings = findings_of(info)
    if findings is None or findings.base_dir is None or not findings.check_artifacts:
        return None
    return findings.resolve


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
ImageRef = Annotated[str, rule(rules.image)]
MachineType = Annotated[str, rule(rules.machine_type)]


class DocModel(BaseModel):
    # Unknown keys are errors (typos must not be silently ignored); values are
    # coerced laxly so `${VAR}` interpolation can fill numbers and booleans.
    model_config = ConfigDict(extra="forbid", frozen=True)

    _path: Path_ = PrivateAttr(default=())  # where this object is in the document
    _unknown_keys: tuple[str, ...] = PrivateAttr(default=())  # reported and dropped

    @model_validator(mode="wrap")
    @classmethod
    def _locate(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self], info: ValidationInfo
    ) -> Self:
        # Announce this object's path to the validators of its fields, and report unknown
        # keys here (with "did you mean") instead of failing the object on them.
        findings = findings_of(info)
        if findings is None or not isinstance(data, Located):
            return handler(data)
        fields = _fields(cls)
        unknown = tuple(key for key in data if key not in fields)
        if unknown:
            allowed = ", ".join(fields)
            for key in unknown:
                hint = suggest(key, fields)
                findings.add(
                    (*data.path, key),
                    f"unknown key {key!r}",
                    f"{hint} (allowed keys here: {allowed})"
                    if hint
                    else f"remove it (allowed keys here: {allowed})",
                )
            data = Located(((k, v) for k, v in data.items() if k not in unknown), data.path)
        findings.enter(data.path)
        try:
            doc = handler(data)
        finally:
            findings.leave()
        doc._path = data.path
        doc._unknown_keys = unknown
        return doc

    @field_validator("*")
    @classmethod
    def _bounds(cls, value: Any, info: ValidationInfo) -> Any:
        # The Min/Max/Pattern/NonEmpty a field declares (also its JSON Schema constraint).
        if value is None or info.field_name is None:
            return value
        for bound in _fields(cls)[info.field_name]:
            report(info, field_at(info), bound.problem(info.field_name, value))
        return value

    def _report(self, info: ValidationInfo, below: Path_, problem: rules.Problem | None) -> None:
        report(info, (*self._path, *below), problem)


_FIELDS: dict[type[BaseModel], dict[str, tuple[rules.Bound, ...]]] = {}


def _fields(cls: type[BaseModel]) -> dict[str, tuple[rules.Bound, ...]]:
    """A document class's fields, in order, with the bounds each declares (computed once)."""
    found = _FIELDS.get(cls)
    if found is None:
        found = _FIELDS[cls] = {
            name: tuple(m for m in info.metadata if isinstance(m, rules.Bound))
            for name, info in cls.model_fields.items()
        }
    return found


def unique(what: str) -> AfterValidator:
    """A name unique in its list (e.g. "model name"): a second one is reported where it is.

    Checked as each item is validated, so a broken sibling does not hide it. Needs the
    Findings of a load (which keeps the names declared so far); not checked without.
    """

    def validate(name: str, info: ValidationInfo) -> str:
        findings = findings_of(info)
        earlier = findings.declare(findings.here, name) if findings is not None else None
        if earlier is not None:
            problem = (
                f"duplicate {what} {name!r} (also at {field_path(earlier)})",
                f"rename one of them: each {what} must be unique",
            )
            report(info, field_at(info), problem)
        return name

    return AfterValidator(validate)


NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"
_NAME_RULE = (
    "start with a lowercase letter and use only lowercase letters, digits and '-' "
    "(at most 63 characters)"
)
Name = Annotated[str, Pattern(NAME_PATTERN, _NAME_RULE, "mnist-endpoint")]


class _ModelVersions(Mapping[str, list[str]]):
    """The models declared so far (name -> version aliases), read from the Findings."""

    def __init__(self, findings: Findings) -> None:
        self._findings = findings
        self._models = findings.declared(("models",))

    def __getitem__(self, name: str) -> list[str]:
        return list(self._findings.declared((*self._models[name], "versions")))

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


def _check_ref(ref: str, info: ValidationInfo) -> str:
    # The document validates `models` before `endpoints` and `batch_jobs` (field order), so
    # every model and alias is declared by the time a reference is checked.
    findings = findings_of(info)
    if findings is not None:
        report(info, field_at(info), rules.model_ref(ref, _ModelVersions(findings)))
    return ref


ModelRef = Annotated[str, AfterValidator(_check_ref)]
