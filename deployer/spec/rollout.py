"""The spec's `rollout:` policy: how a new version takes an endpoint's traffic, verified.

Owns the document models of a rollout policy (`RolloutDoc`, `ChecksDoc`, `SmokeDoc`,
`AgreementDoc`), the rules a policy obeys (steps strictly increasing within 1..100, a wait
or a request count per step, at least one check, check files that exist and parse), how a
deployment's `rollout:` overrides its endpoint's field by field (`effective_policy`), and
the reader of check files (`read_check_file`), shared by validation and the rollout engine.

An endpoint's policy ends at 100; a deployment that inherits it with less traffic stops at
its own share (steps 10, 50, 100 for a deployment at 90% become 10, 50, 90). Steps a
deployment declares itself must end at its traffic.

Must not: call an API or read anything but the check files the spec names.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from deployer.spec.docbase import DocModel, field_at, local_resolver, report
from deployer.spec.model import (
    AgreementCheck,
    OnFailure,
    RolloutPolicy,
    SmokeCheck,
)
from deployer.spec.problems import Path_
from deployer.spec.rules import Max, Min, Pattern, Problem

DURATION_PATTERN = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$"
_DURATION = re.compile(DURATION_PATTERN)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_CHECK_CASES = 10_000  # a check file is a smoke set, not a data set


def parse_duration(text: str) -> float:
    """ "500ms", "30s", "2m", "1h" -> seconds; ValueError for anything else."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"bad duration {text!r}: use e.g. 30s, 500ms, 2m")
    return float(text[: m.start(2)]) * _UNIT_SECONDS[m[2]]


def read_check_file(path: Path, *, smoke: bool) -> list[Any]:
    """A check file's cases: JSON Lines (blank lines skipped), one instance per line, or for a
    smoke set one {"instance": ..., "expected": ...} per line. ValueError names the line."""
    cases: list[Any] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {n} is not JSON ({exc.msg})") from None
            if smoke and not (isinstance(case, dict) and {"instance", "expected"} <= set(case)):
                raise ValueError(f'line {n} is not {{"instance": ..., "expected": ...}}')
            cases.append(case)
            if len(cases) > MAX_CHECK_CASES:
                raise ValueError(f"more than {MAX_CHECK_CASES} cases")
    if not cases:
        raise ValueError("it holds no cases")
    return cases


def _check_file(text: str, info: ValidationInfo, *, smoke: bool) -> None:
    resolve = local_resolver(info)
    if resolve is None:
        return
    path = resolve(text)
    shape = (
        'JSON Lines, one {"instance": ..., "expected": ...} per line'
        if smoke
        else "JSON Lines, one instance per line"
    )
    if not path.is_file():
        problem = (
            f"check file {str(path)!r} does not exist",
            f"fix the path (resolved against the spec file's directory); it holds {shape}",
        )
    else:
        try:
            read_check_file(path, smoke=smoke)
            return
        except (ValueError, OSError) as exc:
            problem = (f"check file {text!r}: {exc}", f"write it as {shape}")
    report(info, field_at(info), problem)


class SmokeDoc(DocModel):
    file: str = Field(
        description='JSON Lines of {"instance": ..., "expected": ...}, relative to the spec.'
    )
    tolerance: Annotated[float, Min(0)] = Field(
        1e-6, description="Largest difference between a number and its expected value."
    )

    @field_validator("file")
    @classmethod
    def _file(cls, file: str, info: ValidationInfo) -> str:
        _check_file(file, info, smoke=True)
        return file


class AgreementDoc(DocModel):
    file: str = Field(description="JSON Lines of instances, relative to the spec.")
    min_percent: Annotated[float, Min(0), Max(100)] = Field(
        description="The new version must agree with the version it replaces on at least this "
        "percent of the instances."
    )
    tolerance: Annotated[float, Min(0)] = Field(
        1e-6,
        description="Numbers closer than this agree; lists of class scores agree on the argmax.",
    )

    @field_validator("file")
    @classmethod
    def _file(cls, file: str, info: ValidationInfo) -> str:
        _check_file(file, info, smoke=False)
        return file


class ChecksDoc(DocModel):
    smoke: SmokeDoc | None = Field(None, description="Instances with expected outputs.")
    agreement: AgreementDoc | None = Field(
        None, description="Agreement with the version being replaced."
    )
    max_error_rate: Annotated[float | None, Min(0), Max(1)] = Field(
        None, description="Most errors per request of the new version, 0..1 (e.g. 0.01)."
    )
    max_p99_ms: Annotated[float | None, Min(0, exclusive=True)] = Field(
        None, description="Most p99 latency of the new version, in ms, measured by deployer."
    )

    def is_empty(self) -> bool:
        return not any(getattr(self, f) is not None for f in type(self).model_fields)


class RolloutDoc(DocModel):
    steps: list[int] | None = Field(
        None,
        description="The new version's traffic percent per step, strictly increasing, ending "
        "at its traffic, e.g. [10, 50, 100].",
    )
    wait: Annotated[
        str | None, Pattern(DURATION_PATTERN, "be a number followed by ms, s, m or h", "30s")
    ] = Field(None, description="How long each step lasts, e.g. 30s (or use requests).")
    requests: Annotated[int | None, Min(1)] = Field(
        None, description="Check requests sent at each step (or use wait)."
    )
    checks: ChecksDoc | None = Field(None, description="What each step must pass.")
    on_failure: Literal["rollback", "hold"] | None = Field(
        None,
        description="rollback (default): restore the previous split and undeploy the new "
        "version; hold: stay at the last verified step.",
    )

    @model_validator(mode="after")
    def _own_rules(self, info: ValidationInfo) -> Self:
        self._report(info, ("steps",), _steps_problem(self.steps))
        if self.wait is not None and self.requests is not None:
            problem = ("rollout has both wait and requests", "keep one: wait: 30s or requests: 50")
            self._report(info, ("requests",), problem)
        return self


def _steps_problem(steps: list[int] | None) -> Problem | None:
    if steps is None:
        return None
    if not steps:
        return "steps is empty", "list the traffic percent of each step, e.g. [10, 50, 100]"
    bad = [s for s in steps if not 1 <= s <= 100]
    if bad:
        return f"step {bad[0]} is outside 1..100", "use percents from 1 to 100, e.g. [10, 50, 100]"
    for before, after in itertools.pairwise(steps):
        if after <= before:
            return (
                f"steps must increase strictly ({before} then {after})",
                "list each percent once, smallest first, e.g. [10, 50, 100]",
            )
    return None


def _merge(base: DocModel | None, override: DocModel | None) -> Any:
    """`override`'s fields set in the YAML win over `base`'s (one level into `checks`)."""
    if base is None or override is None:
        return override if base is None else base
    update = {f: getattr(override, f) for f in override.model_fields_set}
    if isinstance(base, RolloutDoc):
        # A step is timed one way: an override's wait replaces the endpoint's requests.
        for one, other in (("wait", "requests"), ("requests", "wait")):
            if one in update and other not in update:
                update[other] = None
    if isinstance(base, RolloutDoc) and "checks" in update:
        update["checks"] = _merge(base.checks, update["checks"])
    return base.model_copy(update=update)


def _completeness(policy: RolloutDoc) -> list[tuple[str, Problem]]:
    found: list[tuple[str, Problem]] = []
    if policy.steps is None:
        found.append(("steps", ("rollout has no steps", "add steps: [10, 50, 100]")))
    if policy.wait is None and policy.requests is None:
        found.append(("wait", ("rollout has no wait or requests per step", "add wait: 30s")))
    if policy.checks is None or policy.checks.is_empty():
        problem = (
            "rollout has no checks: nothing would be verified",
            "add checks: {smoke: {file: smoke.jsonl}, max_error_rate: 0.01} (or agreement, "
            "max_p99_ms)",
        )
        found.append(("checks", problem))
    elif policy.checks.smoke is None and policy.checks.agreement is None:
        problem = (
            "the checks have no instances to send",
            "add smoke: {file: smoke.jsonl} or agreement: {file: instances.jsonl, "
            "min_percent: 95}; each step sends their instances through the endpoint",
        )
        found.append(("checks", problem))
    return found


def check_endpoint(
    endpoint: RolloutDoc | None,
    deployments: list[tuple[RolloutDoc | None, int | None]],
    report_at: Callable[[Path_, Problem], None],
) -> None:
    """The rules on the effective policies of an endpoint: its own (ending at 100) and each
    deployment's that overrides it (ending at the deployment's traffic)."""
    if endpoint is not None:
        for leaf, problem in _completeness(endpoint):
            report_at(("rollout", leaf), problem)
        if endpoint.steps and _steps_problem(endpoint.steps) is None and endpoint.steps[-1] != 100:
            problem = (
                f"the endpoint's steps end at {endpoint.steps[-1]}, not 100",
                "end them at 100; a deployment with less traffic stops at its share",
            )
            report_at(("rollout", "steps"), problem)
    for j, (own, traffic) in enumerate(deployments):
        if own is None:
            continue
        where: Path_ = ("deployments", j, "rollout")
        policy = _merge(endpoint, own)
        for leaf, problem in _completeness(policy):
            if endpoint is None or leaf in own.model_fields_set:
                report_at((*where, leaf), problem)
        steps = own.steps
        share = 100 if traffic is None else traffic
        if steps and _steps_problem(steps) is None and steps[-1] != share:
            problem = (
                f"steps end at {steps[-1]}, not at this deployment's traffic ({share})",
                f"end the steps at {share}",
            )
            report_at((*where, "steps"), problem)


def effective_policy(
    endpoint: RolloutDoc | None,
    own: RolloutDoc | None,
    traffic: int,
    locate: Callable[[str], str],
) -> RolloutPolicy | None:
    """The frozen policy of one deployment of a valid document; None: no rollout."""
    policy: RolloutDoc | None = _merge(endpoint, own)
    if policy is None or policy.steps is None or traffic == 0:
        return None
    steps = list(policy.steps)
    if own is None or "steps" not in own.model_fields_set:
        steps = [s for s in steps if s < traffic] + [traffic]
    checks = policy.checks or ChecksDoc.model_validate({})
    smoke = checks.smoke
    agreement = checks.agreement
    return RolloutPolicy(
        steps=tuple(steps),
        wait_seconds=parse_duration(policy.wait) if policy.wait is not None else None,
        requests=policy.requests,
        smoke=SmokeCheck(locate(smoke.file), smoke.tolerance) if smoke else None,
        agreement=AgreementCheck(locate(agreement.file), agreement.min_percent, agreement.tolerance)
        if agreement
        else None,
        max_error_rate=checks.max_error_rate,
        max_p99_ms=checks.max_p99_ms,
        on_failure=OnFailure(policy.on_failure or "rollback"),
    )
