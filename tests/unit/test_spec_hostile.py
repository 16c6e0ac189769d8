"""Hostile spec files (issue 15): alias bombs, absurd nesting and huge specs are refused or
loaded quickly, always as a located spec problem, never a traceback or a memory blow-up."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from deployer.errors import SpecError
from deployer.spec import load_spec
from deployer.spec.load import ALIAS_FLOOR, MAX_DEPTH

SPECS = Path(__file__).parent / "specs"
HEAD = (
    "stack: mnist\n"
    "project: local-project\n"
    "region: us-central1\n"
    "bucket: {name: abc-def}\n"
    "models: [{name: m, container: a.io/b:1, versions: [{alias: v1, artifact: gs://abc/d}]}]\n"
)


def problems(path: Path) -> list[tuple[int | None, str, str]]:
    with pytest.raises(SpecError) as info:
        load_spec(path, environ={})
    return [(p.line, p.field, p.message) for p in info.value.problems]


def billion_laughs(levels: int, fanout: int) -> str:
    lines = ['x-lol0: &l0 "lol"']
    for n in range(1, levels + 1):
        refs = ", ".join([f"*l{n - 1}"] * fanout)
        lines.append(f"x-lol{n}: &l{n} [{refs}]")
    return HEAD + "\n".join(lines) + "\n"


@pytest.mark.timeout(60)
def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    # 12 lines that expand to 9**9 (387 million) strings: 8.8 s and 1.2 GB before the bound.
    path = tmp_path / "spec.yaml"
    path.write_text(billion_laughs(levels=9, fanout=9))
    start = time.process_time()
    found = problems(path)
    assert time.process_time() - start < 5  # measured without expanding anything
    ((line, field, message),) = found
    assert (line, field) == (1, "(yaml)")
    assert "YAML aliases would expand this document to 490,329,090 nodes" in message
    assert f"at most {ALIAS_FLOOR:,} are accepted" in message


def test_aliases_for_shared_settings_stay_within_the_bound(tmp_path: Path) -> None:
    shared = "x-gpu: &gpu {machine_type: g2-standard-8, accelerator: {type: NVIDIA_L4}}\n"
    endpoints = "".join(
        f"  - {{name: e{i}, deployments: [{{<<: *gpu, model: m@v1}}]}}\n" for i in range(300)
    )
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + shared + "endpoints:\n" + endpoints)
    spec = load_spec(path, environ={})
    assert len(spec.endpoints) == 300
    assert {d.machine_type for e in spec.endpoints for d in e.deployments} == {"g2-standard-8"}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 20, 10_000])
@pytest.mark.parametrize("style", ["flow", "block"])
def test_absurd_nesting_is_a_spec_problem_not_a_recursion_error(
    tmp_path: Path, depth: int, style: str
) -> None:
    if style == "flow":
        deep = "x-deep: " + "[" * depth + "]" * depth + "\n"
    else:
        deep = "x-deep:\n" + "".join(" " * n + "- \n" for n in range(depth))
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + deep)
    found = problems(path)
    assert len(found) == 1
    line, field, message = found[0]
    assert field == "(yaml)" and line is not None
    assert f"the YAML nests more than {MAX_DEPTH} levels deep" in message


def test_absurd_nesting_without_libyaml_is_still_a_spec_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)  # the pure-Python composer recurses
    path = tmp_path / "spec.yaml"
    path.write_text(HEAD + "x-deep: " + "[" * 10_000 + "]" * 10_000 + "\n")
    ((_, field, message),) = problems(path)
    assert field == "(yaml)" and "nests more than" in message


def test_yaml_syntax_errors_read_the_same_with_or_without_libyaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = SPECS / "bad" / "yaml_syntax.yaml"
    with_libyaml = problems(path)
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    assert problems(path) == with_libyaml


def big_spec(jobs: int) -> str:
    return (
        HEAD
        + "batch_jobs:\n"
        + "".join(
            f"  - name: job-{i}\n"
            "    model: m@v1\n"
            f"    input: {{path: gs://abc/in/{i}.jsonl, format: jsonl}}\n"
            "    output: {prefix: predictions/}\n"
            "    machine_type: n1-standard-4\n"
            "    accelerator: {type: NVIDIA_TESLA_T4, count: 1}\n"
            "    replicas: {starting: 1, max: 5}\n"
            "    batch_size: 64\n"
            for i in range(jobs)
        )
    )


@pytest.mark.timeout(120)
def test_ten_thousand_batch_jobs_validate_in_seconds(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(big_spec(10_000))
    start = time.process_time()
    spec = load_spec(path, environ={})
    cpu = time.process_time() - start
    assert len(spec.batch_jobs) == 10_000 and spec.batch_jobs[-1].name == "job-9999"
    # CPU time, not wall time (the machine is shared): ~1.5 s here; 9 s before the fix (the
    # pure-Python YAML composer under a garbage collector re-scanning its growing heap).
    assert cpu < 6, f"{cpu:.1f} s of CPU"


@pytest.mark.timeout(120)
def test_every_problem_of_a_huge_spec_is_still_reported(tmp_path: Path) -> None:
    text = big_spec(2_000).replace("model: m@v1", "model: m@v9")
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    found = problems(path)
    assert len(found) == 2_000
    assert {message for _, _, message in found} == {"model 'm' has no version 'v9'"}
    assert [line for line, _, _ in found] == sorted(line or 0 for line, _, _ in found)
