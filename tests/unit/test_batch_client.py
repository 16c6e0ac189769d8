"""Unit tests of the batch-predict client against the in-memory provider: staging, merge, journal.

`FakeProvider` keeps objects and jobs in memory and records calls, so the decisions (what
gets uploaded, when a job is adopted instead of created, how outputs map back to rows) are
checked without any server.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer.batch import results, runner, staging
from deployer.errors import BatchJobFailed, ConfigError, OperationTimeout
from deployer.providers import JobState, JobStatus
from deployer.providers.fake import FakeProvider
from deployer.spec import BatchInput, BatchJob, Bucket, InputFormat, Spec, Target
from deployer.wire import batch_formats as formats


def _fake() -> FakeProvider:
    """The in-memory provider with the spec's bucket in it."""
    fake = FakeProvider()
    fake.buckets["bkt"] = {}
    return fake


def _sent(fake: FakeProvider, uri: str) -> bytes:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return fake.objects[(bucket, name)].data


def _spec(tmp_path: Path, path: Path, fmt: InputFormat = InputFormat.JSONL) -> Spec:
    job = BatchJob(
        "score", "mnist", "v1", BatchInput((str(path),), fmt), "predictions/", "n1-standard-4", 1, 1
    )
    return Spec(
        "s",
        "p",
        "l",
        Target.LOCAL,
        Bucket("bkt", "US", True),
        (),
        batch_jobs=(job,),
        source=tmp_path / "s.yaml",
    )


def _jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- staging ------------------------------------------------------------------------------------


def test_large_jsonl_is_split_into_parts_uploaded_once_and_keyed_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYER_BATCH_PART_BYTES", "100")
    data = _jsonl(tmp_path / "x.jsonl", [[i, i + 0.5] for i in range(40)])
    backend = _fake()
    first = staging.stage_input(backend, "bkt", "s", [str(data)], "jsonl")
    again = staging.stage_input(backend, "bkt", "s", [str(data)], "jsonl")

    assert len(first.uris) > 3 and first.uploaded_bytes == first.total_bytes
    assert (
        again.uploaded_bytes == 0 and again.uris == first.uris
    )  # content-addressed: nothing re-sent
    assert all(
        u.startswith(f"gs://bkt/batch-inputs/s/{first.content_hash[:32]}/part-") for u in first.uris
    )
    joined = b"".join(_sent(backend, u) for u in first.uris)
    assert joined == data.read_bytes()  # parts are the input, split at row boundaries
    _jsonl(data, [[i, i + 0.5] for i in range(41)])
    assert (
        staging.stage_input(backend, "bkt", "s", [str(data)], "jsonl").content_hash
        != first.content_hash
    )


def test_label_field_is_kept_local_and_not_sent(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "x.jsonl", [{"x": [1, 2], "label": 3}, {"x": [4, 5], "label": 7}])
    backend = _fake()
    staged = staging.stage_input(backend, "bkt", "s", [str(data)], "jsonl")
    sent = _sent(backend, staged.uris[0]).decode().splitlines()
    assert [json.loads(s) for s in sent] == [{"x": [1, 2]}, {"x": [4, 5]}]
    assert staged.labels is not None and list(staged.labels) == [3, 7]
    assert staged.index is not None and staged.index.claim({"x": [4.0, 5.0]}) == 1


def test_csv_parts_repeat_the_header_and_a_label_column_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYER_BATCH_PART_BYTES", "30")
    src = tmp_path / "x.csv"
    src.write_text('"a","label","b"\n' + "".join(f'{i},{i % 2},"t{i}"\n' for i in range(6)))
    backend = _fake()
    staged = staging.stage_input(backend, "bkt", "s", [str(src)], "csv")
    parts = [_sent(backend, u).decode() for u in staged.uris]
    assert len(parts) > 1 and all(p.startswith('"a","b"\n') for p in parts)
    rows = [r for p in parts for _, r in formats.iter_csv(p.splitlines(keepends=True))]
    assert rows == [[float(i), f"t{i}"] for i in range(6)]
    assert staged.labels is not None and list(staged.labels) == [float(i % 2) for i in range(6)]


def test_npz_becomes_jsonl_with_its_labels(tmp_path: Path) -> None:
    np.savez(
        tmp_path / "d.npz", x=np.arange(6, dtype=np.float32).reshape(3, 2), y=np.array([0, 1, 0])
    )
    backend = _fake()
    staged = staging.stage_input(
        backend,
        "bkt",
        "s",
        [str(tmp_path / "d.npz")],
        staging.infer_format(str(tmp_path / "d.npz"), None),
    )
    assert (
        staged.format == "jsonl" and staged.labels is not None and list(staged.labels) == [0, 1, 0]
    )
    sent = _sent(backend, staged.uris[0]).decode().splitlines()
    assert [json.loads(s) for s in sent] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]


def test_folder_as_file_list_uploads_each_file_once_by_content(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, data in (("a.png", b"AAA"), ("b.png", b"BBB"), ("c.png", b"AAA")):
        (folder / name).write_bytes(data)
    backend = _fake()
    staged = staging.stage_input(backend, "bkt", "s", [str(folder)], "file-list")
    listed = _sent(backend, staged.uris[0]).decode().splitlines()
    assert len(listed) == 3 and listed[0] == listed[2]  # same bytes, one object
    uploaded = [n for m, a in backend.calls if m == "upload_files" for n in a["names"]]
    assert sum(n.startswith("batch-inputs/s/files/") for n in uploaded) == 2
    assert staged.index is not None
    assert [staged.index.claim(formats.b64_instance(b"AAA")) for _ in range(2)] == [0, 2]


def test_malformed_local_input_is_refused_before_any_upload(tmp_path: Path) -> None:
    data = tmp_path / "x.jsonl"
    data.write_text('[1]\n{"a": \n')
    backend = _fake()
    with pytest.raises(ConfigError, match=r"x.jsonl, line 2"):
        staging.stage_input(backend, "bkt", "s", [str(data)], "jsonl")
    assert backend.calls == []


# --- results ------------------------------------------------------------------------------------


def _shard(path: Path, rows: list[dict[str, Any]]) -> Path:
    return _jsonl(path, rows)


def test_merge_places_out_of_order_outputs_on_their_rows_and_numbers_errors(tmp_path: Path) -> None:
    data = _jsonl(tmp_path / "x.jsonl", [[0], [1], [2], [1], [4]])
    staged = staging.stage_input(_fake(), "bkt", "s", [str(data)], "jsonl")
    r1 = _shard(
        tmp_path / "prediction.results-00001-of-00002",
        [{"instance": [4], "prediction": 40}, {"instance": [1], "prediction": 10}],
    )
    r0 = _shard(
        tmp_path / "prediction.results-00000-of-00002",
        [{"instance": [0], "prediction": 0}, {"instance": [1.0], "prediction": 11}],
    )
    e0 = _shard(
        tmp_path / "prediction.errors_stats-00000-of-00002",
        [{"instance": [2], "error": {"code": 3, "message": "bad shape"}}],
    )
    merged = results.merge([r1, r0], [e0], staged.index, spool=tmp_path / "spool")
    assert merged.predictions() == [0, 11, None, 10, 40]  # duplicates claimed in input order
    assert merged.succeeded == 4
    assert merged.errors == [results.RowError(2, str(data), 3, "bad shape")]
    out = tmp_path / "out.npy"
    results.write_output(merged, out, "npy")
    np.testing.assert_array_equal(np.load(out), np.array([0, 11, np.nan, 10, 40], np.float32))


def test_score_gives_accuracy_and_confusion_matrix() -> None:
    s = results.score([[0.1, 0.9], [0.8, 0.2], None, {"output_0": [0.3, 0.7]}], [1, 1, 0, 1.0])
    assert (s.total, s.correct, s.skipped) == (3, 2, 1)
    assert s.classes == (0, 1) and s.matrix == ((0, 0), (1, 2))
    with pytest.raises(ConfigError, match="2 labels for 4 input rows"):
        results.score([None] * 4, [0, 1])


# --- runner -------------------------------------------------------------------------------------


def test_rerun_reattaches_to_the_journaled_live_job_and_a_lost_journal_adopts_by_label(
    tmp_path: Path,
) -> None:
    spec = _spec(tmp_path, _jsonl(tmp_path / "x.jsonl", [[1], [2]]))
    backend = _fake()
    job = spec.batch_jobs[0]
    staged = runner.stage(backend, spec, job, None)
    journal = runner.BatchJobJournal.for_spec(spec)
    first, attached1 = runner.start_or_attach(
        backend, spec, job, staged, "m@1", journal, resume=False
    )
    second, attached2 = runner.start_or_attach(
        backend, spec, job, staged, "m@1", journal, resume=False
    )
    journal.path.unlink()
    third, attached3 = runner.start_or_attach(
        backend, spec, job, staged, "m@1", journal, resume=False
    )
    assert (attached1, attached2, attached3) == (False, True, True)
    assert first.resource == second.resource == third.resource
    assert backend.mutating_calls.count("create_job") == 1
    assert dict(first.labels)["deployer-input"] == staged.content_hash[:12]
    # Once the job ended, a plain re-run starts a new one; --resume re-attaches to the old.
    backend.set_job(first.resource, state=JobState.SUCCEEDED)
    resumed, _ = runner.start_or_attach(backend, spec, job, staged, "m@1", journal, resume=True)
    fresh, attached4 = runner.start_or_attach(
        backend, spec, job, staged, "m@1", journal, resume=False
    )
    assert resumed.resource == first.resource and not attached4 and fresh.resource != first.resource


def test_a_create_whose_response_was_lost_is_adopted_not_repeated(tmp_path: Path) -> None:
    spec = _spec(tmp_path, _jsonl(tmp_path / "x.jsonl", [[1]]))
    backend = _fake()
    backend.drop_next("create_job")  # the job is created, then the response is lost
    job = spec.batch_jobs[0]
    staged = runner.stage(backend, spec, job, None)
    got, _ = runner.start_or_attach(
        backend, spec, job, staged, "m@1", runner.BatchJobJournal.for_spec(spec), resume=False
    )
    assert list(backend.jobs) == [got.resource] and backend.mutating_calls.count("create_job") == 1
    assert [m for m, _ in backend.calls].count("find_jobs") == 2  # before, and to adopt


def test_wait_follows_the_job_until_it_ends_and_a_timeout_names_its_state(tmp_path: Path) -> None:
    spec = _spec(tmp_path, _jsonl(tmp_path / "x.jsonl", [[1]]))
    backend = _fake()
    job = spec.batch_jobs[0]
    staged = runner.stage(backend, spec, job, None)
    journal = runner.BatchJobJournal.for_spec(spec)
    started, _ = runner.start_or_attach(backend, spec, job, staged, "m@1", journal, resume=False)
    seen: list[JobState] = []

    def progress(status: JobStatus) -> None:  # the service moves the job on meanwhile
        seen.append(status.state)
        after = {1: JobState.RUNNING, 3: JobState.SUCCEEDED}.get(len(seen))
        if after is not None:
            backend.set_job(status.resource, state=after)

    final = runner.wait(backend, started.resource, on_status=progress, sleep=lambda s: None)
    assert final.state is JobState.SUCCEEDED
    assert seen == [JobState.QUEUED, JobState.RUNNING, JobState.RUNNING, JobState.SUCCEEDED]

    backend.set_job(started.resource, state=JobState.RUNNING)
    with pytest.raises(OperationTimeout, match="still RUNNING after 0s") as info:
        runner.wait(backend, started.resource, timeout=0.05)
    assert "--resume" in (info.value.hint or "")


def test_failed_job_raises_batch_job_failed_with_the_jobs_error() -> None:
    status = JobStatus("j/1", "d", JobState.FAILED, error="Input file gs://b/x does not exist.")
    with pytest.raises(BatchJobFailed, match="gs://b/x does not exist") as info:
        runner.raise_if_failed(status)
    assert info.value.exit_code == 8


def test_version_not_applied_says_run_apply(tmp_path: Path) -> None:
    spec = _spec(tmp_path, tmp_path / "x.jsonl")
    job = replace(spec.batch_jobs[0], version="v9")
    with pytest.raises(ConfigError) as info:
        runner.resolve_version(_fake(), spec, job)
    assert "deployer apply" in (info.value.hint or "")


def test_resume_follows_the_journaled_job_even_when_the_local_input_is_gone(tmp_path: Path) -> None:
    spec = _spec(tmp_path, _jsonl(tmp_path / "x.jsonl", [[1]]))
    backend = _fake()
    job = spec.batch_jobs[0]
    journal = runner.BatchJobJournal.for_spec(spec)
    started, _ = runner.start_or_attach(
        backend, spec, job, runner.stage(backend, spec, job, None), "m@1", journal, resume=False
    )
    resumed, attached = runner.start_or_attach(
        backend, spec, job, None, "m@1", journal, resume=True
    )
    assert attached and resumed.resource == started.resource
    journal.path.unlink()
    with pytest.raises(ConfigError, match="no journaled run"):
        runner.start_or_attach(backend, spec, job, None, "m@1", journal, resume=True)


def test_without_an_index_shard_order_is_input_order_and_jsonl_output_streams(
    tmp_path: Path,
) -> None:
    r1 = _shard(
        tmp_path / "prediction.results-00001-of-00002", [{"instance": [9], "prediction": [0.5]}]
    )
    r0 = _shard(
        tmp_path / "prediction.results-00000-of-00002",
        [{"instance": [1], "prediction": [0.1]}, {"instance": [2], "prediction": [0.2]}],
    )
    e1 = _shard(
        tmp_path / "prediction.errors_stats-00001-of-00002", [{"instance": "x", "error": "boom"}]
    )
    merged = results.merge([r1, r0], [e1], None, spool=tmp_path / "spool")
    out = tmp_path / "out.jsonl"
    results.write_output(merged, out, "jsonl")
    assert out.read_text().splitlines() == ["[0.1]", "[0.2]", "[0.5]"]
    assert merged.errors == [results.RowError(None, "", None, "boom")] and merged.unmatched == 0
