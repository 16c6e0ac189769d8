"""The emulator's batchPredictionJobs through the official GAPIC JobServiceClient (REST).

Formats (csv typed as Vertex types it, tf-record framing parsed without TensorFlow,
wildcards), list filters and pagination, cancel honoured mid-run, delete refused while
running, a job whose every row fails ends FAILED, and a job in flight when the emulator
stops ends FAILED after the restart instead of hanging.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deployer.wire import batch_formats as formats
from tests.integration._vertex import (
    PARENT,
    gapic_clients,
    put_tree,
    replica_pids,
    upload_model,
    wait_for,
)
from tests.integration.conftest import make_storage_client
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.timeout(300)
BUCKET = "batch-emu"


@pytest.fixture
def env(emulator: EmulatorProcess, tmp_path: Path) -> dict[str, Any]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform_v1 as v1

    storage = make_storage_client(emulator.url)
    storage.create_bucket(BUCKET)
    jobs = v1.JobServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": emulator.url},
    )
    return {
        "storage": storage,
        "jobs": jobs,
        "clients": gapic_clients(emulator.url),
        "tmp": tmp_path,
    }


def _model(env: dict[str, Any], builder: str, **kw: Any) -> tuple[str, Path]:
    from tests.support import savedmodels

    model_dir = getattr(savedmodels, builder)(env["tmp"] / builder, **kw)
    uri = put_tree(env["storage"], BUCKET, f"models/{builder}", model_dir)
    resp = upload_model(env["clients"], uri, display_name=builder)
    return f"{resp.model}@{resp.model_version_id}", model_dir


def _job(
    env: dict[str, Any],
    model: str,
    uris: list[str],
    fmt: str,
    *,
    batch_size: int = 16,
    labels: dict[str, str] | None = None,
) -> Any:
    from google.cloud import aiplatform_v1 as v1

    job = v1.BatchPredictionJob(
        display_name="t",
        model=model,
        labels=labels or {},
        input_config=v1.BatchPredictionJob.InputConfig(
            instances_format=fmt, gcs_source=v1.GcsSource(uris=uris)
        ),
        output_config=v1.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl",
            gcs_destination=v1.GcsDestination(output_uri_prefix=f"gs://{BUCKET}/out"),
        ),
        dedicated_resources=v1.BatchDedicatedResources(
            machine_spec=v1.MachineSpec(machine_type="n1-standard-4"),
            starting_replica_count=1,
            max_replica_count=1,
        ),
        manual_batch_tuning_parameters=v1.ManualBatchTuningParameters(batch_size=batch_size),
    )
    return env["jobs"].create_batch_prediction_job(parent=PARENT, batch_prediction_job=job)


def _wait(env: dict[str, Any], name: str, timeout: float = 120) -> Any:
    return wait_for(
        lambda: (
            (j := env["jobs"].get_batch_prediction_job(name=name)).state.name
            in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED")
            and j
        ),
        timeout=timeout,
    )


def _outputs(env: dict[str, Any], job: Any, stem: str) -> list[dict[str, Any]]:
    prefix = job.output_info.gcs_output_directory.removeprefix(f"gs://{BUCKET}/") + "/"
    blobs = sorted(env["storage"].list_blobs(BUCKET, prefix=prefix), key=lambda b: b.name)
    return [
        json.loads(line)
        for b in blobs
        if stem in b.name
        for line in b.download_as_text().splitlines()
    ]


def test_csv_over_a_wildcard_keeps_file_then_row_order_with_vertex_typing(
    env: dict[str, Any],
) -> None:
    from tests.support.savedmodels import reference_predict

    model, model_dir = _model(env, "make_mnist_like_model", input_shape=(3,), hidden=(4,))
    x = np.random.default_rng(0).random((90, 3)).round(4)
    b = env["storage"].bucket(BUCKET)
    for part in range(3):  # in/a-0.csv, in/a-1.csv, in/a-2.csv + a file the pattern skips
        rows = "".join(",".join(map(str, r)) + "\n" for r in x[part * 30 : (part + 1) * 30])
        b.blob(f"in/a-{part}.csv").upload_from_string('"p","q","r"\n' + rows)
    b.blob("in/b.txt").upload_from_string("not csv")

    job = _wait(env, _job(env, model, [f"gs://{BUCKET}/in/a-*.csv"], "csv").name)

    assert job.state.name == "JOB_STATE_SUCCEEDED", job.error
    got = _outputs(env, job, "prediction.results")
    assert [r["instance"] for r in got] == x.tolist()  # unquoted CSV values arrive as numbers
    ref = reference_predict(model_dir, {"flatten_input": x.astype(np.float32)})["output_0"]
    np.testing.assert_allclose([r["prediction"] for r in got], ref, rtol=1e-5, atol=1e-6)
    assert job.completion_stats.successful_count == 90


def test_tfrecord_records_are_sent_as_b64_and_a_corrupt_file_fails_the_job(
    env: dict[str, Any],
) -> None:
    model, _ = _model(env, "make_bytes_model")
    records = [bytes([i]) * (i + 1) for i in range(40)]
    b = env["storage"].bucket(BUCKET)
    b.blob("in/r.tfrecord").upload_from_string(b"".join(formats.frame_tfrecord(r) for r in records))
    b.blob("in/bad.tfrecord").upload_from_string(formats.frame_tfrecord(b"ok") + b"\x05garbage")

    job = _wait(env, _job(env, model, [f"gs://{BUCKET}/in/r.tfrecord"], "tf-record").name)
    bad = _wait(env, _job(env, model, [f"gs://{BUCKET}/in/bad.tfrecord"], "tf-record").name)

    got = _outputs(env, job, "prediction.results")
    assert [base64.b64decode(r["instance"]["b64"]) for r in got] == records
    assert [r["prediction"]["length"] for r in got] == [len(r) for r in records]
    assert bad.state.name == "JOB_STATE_FAILED"
    assert "gs://batch-emu/in/bad.tfrecord, record 2: truncated TFRecord" in bad.error.message


def test_list_filters_by_label_and_state_and_pages(env: dict[str, Any]) -> None:
    model, _ = _model(env, "make_mnist_like_model", input_shape=(3,), hidden=(4,))
    env["storage"].bucket(BUCKET).blob("in/x.jsonl").upload_from_string("[1, 2, 3]\n")
    names = [
        _job(env, model, [f"gs://{BUCKET}/in/x.jsonl"], "jsonl", labels={"team": t}).name
        for t in ("a", "a", "b")
    ]
    for n in names:
        _wait(env, n)
    jobs = env["jobs"]
    mine = [
        j.name
        for j in jobs.list_batch_prediction_jobs(
            request={"parent": PARENT, "filter": 'labels.team="a"'}
        )
    ]
    done = list(
        jobs.list_batch_prediction_jobs(
            request={"parent": PARENT, "filter": 'labels.team="b" AND state=JOB_STATE_SUCCEEDED'}
        )
    )
    pages = list(jobs.list_batch_prediction_jobs(request={"parent": PARENT, "page_size": 2}).pages)
    assert mine == names[:2]
    assert [j.name for j in done] == names[2:]
    assert [len(p.batch_prediction_jobs) for p in pages] == [2, 1]
    jobs.delete_batch_prediction_job(name=names[0]).result(timeout=30)
    from google.api_core.exceptions import NotFound

    with pytest.raises(NotFound):
        jobs.get_batch_prediction_job(name=names[0])


def test_cancel_is_honoured_between_batches_and_running_jobs_cannot_be_deleted(
    env: dict[str, Any], emulator: EmulatorProcess
) -> None:
    from google.api_core.exceptions import BadRequest

    model, _ = _model(env, "make_mnist_like_model", input_shape=(3,), hidden=(4,))
    env["storage"].bucket(BUCKET).blob("in/x.jsonl").upload_from_string("[1, 2, 3]\n" * 20_000)
    name = _job(env, model, [f"gs://{BUCKET}/in/x.jsonl"], "jsonl", batch_size=1).name
    jobs = env["jobs"]
    wait_for(
        lambda: jobs.get_batch_prediction_job(name=name).completion_stats.successful_count > 0,
        timeout=120,
    )
    with pytest.raises(BadRequest, match="cancel it"):
        jobs.delete_batch_prediction_job(name=name)

    jobs.cancel_batch_prediction_job(name=name)

    job = _wait(env, name, timeout=30)
    assert job.state.name == "JOB_STATE_CANCELLED"
    assert 0 < job.completion_stats.successful_count < 20_000
    assert job.completion_stats.incomplete_count == 20_000 - job.completion_stats.successful_count
    assert _outputs(env, job, "prediction.") == []  # nothing half-written is published
    wait_for(lambda: not replica_pids(emulator.data_dir), timeout=30)


def test_a_job_whose_every_row_fails_ends_failed_with_errors_stats(env: dict[str, Any]) -> None:
    model, _ = _model(env, "make_mnist_like_model", input_shape=(3,), hidden=(4,))
    env["storage"].bucket(BUCKET).blob("in/x.jsonl").upload_from_string('[1]\n"text"\n')

    job = _wait(env, _job(env, model, [f"gs://{BUCKET}/in/x.jsonl"], "jsonl").name)

    assert job.state.name == "JOB_STATE_FAILED"
    assert "All 2 instances failed" in job.error.message
    assert job.completion_stats.failed_count == 2


def test_a_job_in_flight_when_the_emulator_stops_ends_failed_after_restart(
    env: dict[str, Any], emulator: EmulatorProcess
) -> None:
    model, _ = _model(env, "make_mnist_like_model", input_shape=(3,), hidden=(4,))
    env["storage"].bucket(BUCKET).blob("in/x.jsonl").upload_from_string("[1, 2, 3]\n")
    emulator.admin({"op_delay": 60})
    name = _job(env, model, [f"gs://{BUCKET}/in/x.jsonl"], "jsonl").name

    emulator.restart(kill=True)

    job = env["jobs"].get_batch_prediction_job(name=name)
    assert job.state.name == "JOB_STATE_FAILED"
    assert "emulator stopped" in job.error.message


def test_instance_config_echoes_the_key_and_drops_excluded_fields(env: dict[str, Any]) -> None:
    from google.cloud import aiplatform_v1 as v1

    from tests.support.savedmodels import reference_predict

    model, model_dir = _model(env, "make_mnist_like_model", input_shape=(3,), hidden=(4,))
    x = np.random.default_rng(1).random((12, 3)).round(4)
    rows = [
        {"id": f"row-{i}", "label": i % 2, "flatten_input": r} for i, r in enumerate(x.tolist())
    ]
    env["storage"].bucket(BUCKET).blob("in/keyed.jsonl").upload_from_string(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    job = v1.BatchPredictionJob(
        display_name="keyed",
        model=model,
        input_config=v1.BatchPredictionJob.InputConfig(
            instances_format="jsonl",
            gcs_source=v1.GcsSource(uris=[f"gs://{BUCKET}/in/keyed.jsonl"]),
        ),
        instance_config=v1.BatchPredictionJob.InstanceConfig(
            instance_type="object", key_field="id", excluded_fields=["label"]
        ),
        output_config=v1.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl",
            gcs_destination=v1.GcsDestination(output_uri_prefix=f"gs://{BUCKET}/keyed"),
        ),
        dedicated_resources=v1.BatchDedicatedResources(
            machine_spec=v1.MachineSpec(machine_type="n1-standard-4"),
            starting_replica_count=1,
            max_replica_count=1,
        ),
    )
    name = env["jobs"].create_batch_prediction_job(parent=PARENT, batch_prediction_job=job).name
    done = _wait(env, name)
    assert done.state.name == "JOB_STATE_SUCCEEDED", done.error
    assert done.instance_config.key_field == "id"  # stored and returned as sent
    got = _outputs(env, done, "prediction.results")
    # The key in place of the instance; the model saw only flatten_input (label excluded).
    assert [r["key"] for r in got] == [r["id"] for r in rows]
    assert all("instance" not in r for r in got)
    ref = reference_predict(model_dir, {"flatten_input": x.astype(np.float32)})["output_0"]
    np.testing.assert_allclose([r["prediction"] for r in got], ref, rtol=1e-5, atol=1e-6)
