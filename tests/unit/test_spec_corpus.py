"""The malformed spec corpus: each file in tests/unit/specs/bad/ must fail with its message.

Each row: file, the line and field path the first problem names, a fragment of its
message, a fragment of its fix, and how many problems the file yields in all (so
a change that adds noise, or drops a finding, shows up here). None of these
reach any API: load_spec never makes a call, and the network guard would fail
the test if anything tried.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.errors import SpecError
from deployer.spec import load_spec

BAD = Path(__file__).parent / "specs" / "bad"

# file stem: (line, field, message fragment, fix fragment, problem count)
CORPUS: dict[str, tuple[int | None, str, str, str, int]] = {
    "yaml_syntax": (16, "(yaml)", "YAML syntax error: expected ',' or '}'", "fix the YAML", 1),
    "yaml_indentation": (8, "(yaml)", "YAML syntax error", "indentation", 1),
    "empty": (1, "(top level)", "the spec file is empty", "deployer schema", 1),
    "comments_only": (1, "(top level)", "the spec file is empty", "deployer schema", 1),
    "top_level_list": (
        1,
        "(top level)",
        "must be a mapping (key: value), not a list",
        "stack: NAME",
        1,
    ),
    "top_level_scalar": (1, "(top level)", "not a str", "stack: NAME", 1),
    "duplicate_yaml_key": (5, "region", "duplicate key 'region'", "silently drop", 1),
    "unknown_key": (
        15,
        "endpoints[0].deployments[0].trafic",
        "unknown key 'trafic'",
        "did you mean 'traffic'?",
        1,
    ),
    "unknown_top_level_key": (
        17,
        "batch_job",
        "unknown key 'batch_job'",
        "did you mean 'batch_jobs'?",
        1,
    ),
    "wrong_type_int": (
        16,
        "endpoints[0].deployments[1].max_replicas",
        "must be a whole number, got str 'two'",
        "whole number",
        1,
    ),
    "wrong_type_list": (14, "endpoints[0].deployments", "must be a list, got dict", "as a list", 1),
    "missing_required": (
        11,
        "models[0].versions[1].artifact",
        "missing required field 'artifact'",
        "add artifact: to models[0].versions[1]",
        1,
    ),
    "missing_bucket": (None, "bucket", "missing required field 'bucket'", "add bucket:", 1),
    "duplicate_model": (
        12,
        "models[1].name",
        "duplicate model name 'mnist' (also at models[0])",
        "must be unique",
        1,
    ),
    "duplicate_alias": (
        11,
        "models[0].versions[1].alias",
        "duplicate version alias 'v1'",
        "must be unique",
        3,
    ),
    "duplicate_endpoint": (
        17,
        "endpoints[1].name",
        "duplicate endpoint name 'mnist-endpoint'",
        "must be unique",
        1,
    ),
    "duplicate_batch_job": (
        23,
        "batch_jobs[1].name",
        "duplicate batch job name 'mnist-batch'",
        "must be unique",
        1,
    ),
    "traffic_sum": (
        14,
        "endpoints[0].deployments",
        "traffic sums to 110, not 100 (mnist@v1: 90, mnist@v2: 20)",
        "add up to 100",
        1,
    ),
    "traffic_range": (
        15,
        "endpoints[0].deployments[0].traffic",
        "traffic must be at most 100, got 190",
        "at most 100",
        1,
    ),
    "traffic_missing": (
        16,
        "endpoints[0].deployments[1].traffic",
        "traffic is required when an endpoint has several deployments",
        "together they make 100",
        1,
    ),
    "ref_unknown_version": (
        15,
        "endpoints[0].deployments[0].model",
        "model 'mnist' has no version 'v9'",
        "v1, v2",
        1,
    ),
    "ref_unknown_model": (
        15,
        "endpoints[0].deployments[0].model",
        "no model named 'nomodel'",
        "models in this spec: mnist",
        1,
    ),
    "ref_missing_at": (
        15,
        "endpoints[0].deployments[0].model",
        "model reference 'mnist' has no version alias",
        "MODEL@ALIAS, e.g. mnist@v2",
        1,
    ),
    "ref_deployed_twice": (
        16,
        "endpoints[0].deployments[1].model",
        "mnist@v1 is deployed twice",
        "deploy each version once",
        1,
    ),
    "artifact_missing": (
        11,
        "models[0].versions[1].artifact",
        "artifacts/mnist/0003' does not exist",
        "resolved against the spec file's directory",
        1,
    ),
    "artifact_not_savedmodel": (
        11,
        "models[0].versions[1].artifact",
        "holds no saved_model.pb",
        "holds saved_model.pb",
        1,
    ),
    "savedmodel_corrupt_truncated": (
        11,
        "models[0].versions[1].artifact",
        "corrupt_truncated/saved_model.pb is not a readable SavedModel: truncated",
        "corrupt or cut short: export the SavedModel again",
        1,
    ),
    "savedmodel_corrupt_random": (
        11,
        "models[0].versions[1].artifact",
        "corrupt_random/saved_model.pb is not a readable SavedModel",
        "corrupt or cut short: export the SavedModel again",
        1,
    ),
    "savedmodel_no_signature": (
        11,
        "models[0].versions[1].artifact",
        "no_signature/saved_model.pb has no signature 'serving_default' (it has: none)",
        "with a 'serving_default' signature",
        1,
    ),
    "gs_uri_malformed": (
        11,
        "models[0].versions[1].artifact",
        "malformed gs:// URI 'gs://My_Bucket/models/2'",
        "gs://BUCKET/path",
        1,
    ),
    "gs_uri_no_object": (
        11,
        "models[0].versions[1].artifact",
        "names a bucket but no object path",
        "gs://BUCKET/path",
        1,
    ),
    "bucket_uppercase": (
        5,
        "bucket.name",
        "may contain only lowercase letters",
        "'local-project-mnist'",
        1,
    ),
    "bucket_goog_prefix": (5, "bucket.name", "must not start with 'goog'", "'my-googly-eyes'", 1),
    "bucket_ip_address": (5, "bucket.name", "must not be an IP address", "'bucket-192-168-5-4'", 1),
    "bucket_too_short": (
        5,
        "bucket.name",
        "must be 3-63 characters long (it has 2)",
        "'ab-bucket'",
        1,
    ),
    "bucket_edge_char": (
        5,
        "bucket.name",
        "must start and end with a letter or digit",
        "'local-project'",
        1,
    ),
    "replicas_min_above_max": (
        15,
        "endpoints[0].deployments[0].max_replicas",
        "max_replicas (5) is below min_replicas (6)",
        "at least 6",
        1,
    ),
    "replicas_zero": (
        15,
        "endpoints[0].deployments[0].min_replicas",
        "min_replicas must be at least 1, got 0",
        "at least 1",
        1,
    ),
    "batch_replicas": (
        22,
        "batch_jobs[0].replicas.max",
        "max (2) is below starting (3)",
        "at least 3",
        1,
    ),
    "accelerator_not_offered": (
        16,
        "endpoints[0].deployments[1].accelerator.type",
        "'NVIDIA_TESLA_T5' is not offered by Vertex AI",
        "did you mean 'NVIDIA_TESLA_T4'?",
        1,
    ),
    "accelerator_l4_on_n1": (
        16,
        "endpoints[0].deployments[1].accelerator",
        "NVIDIA_L4 runs only on g2-standard-* machine types, not n1-standard-4",
        "machine_type: g2-standard-4",
        1,
    ),
    "accelerator_a100_on_n1": (
        16,
        "endpoints[0].deployments[1].accelerator",
        "NVIDIA_TESLA_A100 runs only on a2-highgpu-*",
        "machine_type: a2-highgpu-1g",
        1,
    ),
    "accelerator_t4_on_g2": (
        16,
        "endpoints[0].deployments[1].accelerator",
        "g2-standard-8 comes with NVIDIA_L4, not NVIDIA_TESLA_T4",
        "machine_type: n1-standard-4",
        1,
    ),
    "accelerator_count": (
        16,
        "endpoints[0].deployments[1].accelerator",
        "NVIDIA_TESLA_T4 comes in counts of 1, 2, 4 per replica, not 3",
        "count: 2",
        1,
    ),
    "accelerator_builtin_missing": (
        16,
        "endpoints[0].deployments[1].accelerator",
        "a2-highgpu-1g comes with 1 NVIDIA_TESLA_A100, but no accelerator",
        "accelerator: {type: NVIDIA_TESLA_A100, count: 1}",
        1,
    ),
    "accelerator_k80": (
        16,
        "endpoints[0].deployments[1].accelerator.type",
        "NVIDIA_TESLA_K80 is retired",
        "use NVIDIA_TESLA_T4 or NVIDIA_L4",
        1,
    ),
    "machine_unknown": (
        15,
        "endpoints[0].deployments[0].machine_type",
        "unknown machine type 'n1-standard-5'",
        "n1-standard-*, n1-highmem-*",
        1,
    ),
    "machine_family_unknown": (
        21,
        "batch_jobs[0].machine_type",
        "unknown machine type 'm1-ultramem-40'",
        "g2-standard-*",
        1,
    ),
    "region_format": (
        4,
        "region",
        "region 'US Central' must be a Google Cloud region name",
        "'us-central1'",
        1,
    ),
    "stack_name": (2, "stack", "stack 'My_Stack' must start with a lowercase letter", "'mnist'", 1),
    "project_format": (
        3,
        "project",
        "project 'My Project' must be a Google Cloud project id",
        "'my-project-123'",
        1,
    ),
    "target_unknown": (5, "target", "'gcp' is not a valid target", "'local' or 'vertex'", 1),
    "ttl_bad": (
        23,
        "guards.ttl",
        "ttl '4 hours' must be a number followed by m, h, d or w",
        "'4h'",
        1,
    ),
    "ttl_zero": (23, "guards.ttl", "would expire the stack immediately", "30m, 4h, 2d or 1w", 1),
    "budget_negative": (
        23,
        "guards.max_hourly_usd",
        "max_hourly_usd must be more than 0, got -5",
        "more than 0",
        1,
    ),
    "env_unset": (
        3,
        "project",
        "environment variable DEPLOYER_TEST_UNSET_VAR is not set",
        "${DEPLOYER_TEST_UNSET_VAR:-default}",
        1,
    ),
    "models_empty": (6, "models", "models is empty", "at least one entry", 4),
    "batch_format": (
        20,
        "batch_jobs[0].input.format",
        "'parquet' is not a valid format",
        "'jsonl', 'csv', 'file-list' or 'tf-record'",
        1,
    ),
    "batch_format_unknown_suffix": (
        20,
        "batch_jobs[0].input.format",
        "cannot tell the input format of '../data/instances.parquet' from its extension",
        "add format: jsonl | csv | file-list | tf-record (the names it reads: .jsonl",
        1,
    ),
    "batch_version_missing": (
        19,
        "batch_jobs[0].model",
        "model 'mnist' has no version 'v3'",
        "v1, v2",
        1,
    ),
    "batch_input_missing": (
        20,
        "batch_jobs[0].input.path",
        "data/missing.jsonl' does not exist",
        "fix the path",
        1,
    ),
    "batch_input_both": (20, "batch_jobs[0].input", "input has both path and paths", "keep one", 1),
    "label_key": (
        8,
        "models[0].labels.Team",
        "label key 'Team' must start with a lowercase letter",
        "'team'",
        1,
    ),
    "label_value": (
        8,
        "models[0].labels.team",
        "label value 'Machine Learning'",
        "'machine-learning'",
        1,
    ),
    "label_reserved": (
        8,
        "models[0].labels.deployer-stack",
        "reserved prefix 'deployer-'",
        "choose another key",
        1,
    ),
    "no_container": (
        7,
        "models[0].container",
        "no serving container image for v1, v2",
        "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu",
        1,
    ),
    "rollout_steps_decreasing": (
        14,
        "endpoints[0].rollout.steps",
        "steps must increase strictly (50 then 30)",
        "smallest first",
        1,
    ),
    "rollout_step_range": (
        14,
        "endpoints[0].rollout.steps",
        "step 150 is outside 1..100",
        "[10, 50, 100]",
        1,
    ),
    "rollout_no_checks": (
        14,
        "endpoints[0].rollout.checks",
        "rollout has no checks: nothing would be verified",
        "add checks: {smoke: {file: smoke.jsonl}",
        1,
    ),
    "rollout_steps_end": (
        17,
        "endpoints[0].deployments[1].rollout.steps",
        "steps end at 60, not at this deployment's traffic (50)",
        "end the steps at 50",
        1,
    ),
    "rollout_wait_and_requests": (
        14,
        "endpoints[0].rollout.requests",
        "rollout has both wait and requests",
        "keep one",
        1,
    ),
    "rollout_on_failure": (
        14,
        "endpoints[0].rollout.on_failure",
        "'retry' is not a valid on_failure",
        "'rollback' or 'hold'",
        1,
    ),
    "rollout_smoke_missing": (
        18,
        "endpoints[0].rollout.checks.smoke.file",
        "no-such-smoke.jsonl' does not exist",
        "resolved against the spec file's directory",
        1,
    ),
    "rollout_smoke_shape": (
        18,
        "endpoints[0].rollout.checks.smoke.file",
        'line 1 is not {"instance": ..., "expected": ...}',
        "JSON Lines",
        1,
    ),
}


def test_the_corpus_and_the_table_match() -> None:
    files = {p.stem for p in BAD.glob("*.yaml")}
    assert files == set(CORPUS)
    assert len(files) >= 25


@pytest.mark.parametrize("stem", sorted(CORPUS))
def test_malformed_spec_is_refused_with_its_message(stem: str) -> None:
    line, field, message, fix, count = CORPUS[stem]
    path = BAD / f"{stem}.yaml"
    with pytest.raises(SpecError) as info:
        load_spec(path, environ={})
    problems = info.value.problems
    first = problems[0]
    assert (first.line, first.field) == (line, field), info.value.render()
    assert message in first.message, info.value.render()
    assert fix in first.fix, info.value.render()
    assert len(problems) == count, info.value.render()
    for problem in problems:
        assert problem.file == str(path)
        assert problem.message and problem.fix
    rendered = info.value.render()
    assert rendered.startswith(f"{count} problem")
    where = f"{path}:{line}: {field}:" if line else f"{path}: {field}:"
    assert where in rendered


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "stack: Bad_Stack\n"  # 1
        "project: ${DEPLOYER_TEST_UNSET_VAR}\n"  # 2
        "region: uscentral\n"  # 3
        "bucket: {name: goog}\n"  # 4
        "models:\n"  # 5
        "  - name: m\n"  # 6
        "    container: img.example.com/x/y:1\n"  # 7
        "    versions: [{alias: v1, artifact: ./nowhere}]\n"  # 8
        "endpoints:\n"  # 9
        "  - name: e\n"  # 10
        "    deployments:\n"  # 11
        "      - {model: m@v1, traffic: 50, machine_type: n1-standard-4, min_replicas: 0}\n"  # 12
        "      - {model: m@v2, traffic: 40, machine_type: n9-standard-4}\n"  # 13
        "guards: {ttl: soon}\n"  # 14
    )
    with pytest.raises(SpecError) as info:
        load_spec(spec, environ={})
    found = [(p.line, p.field) for p in info.value.problems]
    assert found == [
        (1, "stack"),
        (2, "project"),
        (3, "region"),
        (4, "bucket.name"),
        (8, "models[0].versions[0].artifact"),
        (11, "endpoints[0].deployments"),
        (12, "endpoints[0].deployments[0].min_replicas"),
        (13, "endpoints[0].deployments[1].model"),
        (13, "endpoints[0].deployments[1].machine_type"),
        (14, "guards.ttl"),
    ]
    assert "traffic sums to 90, not 100 (m@v1: 50, m@v2: 40)" in info.value.render()
