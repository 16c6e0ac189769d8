"""Batch jobs with CSV predictions and BigQuery input and output, on the emulator: through the
official GAPIC client (Vertex's output names: `predictions_0001.csv`; a new dataset or
`predictions_<timestamp>` table, named in outputInfo) and through `deployer batch-predict`
(CSV results merged home in input order; a BigQuery output is not downloaded: the command says
which table, and which local file stands for it). The scikit-learn iris example serves: its
instances are 4 floats, as a BigQuery row's columns become by default (instance_type array).
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from deployer.providers.retry import poll_until
from tests.support.emulator import EmulatorProcess
from tests.support.frameworks import ROOT, in_process, rows, train_all
from tests.support.stacks import json_out, run_cli

pytestmark = pytest.mark.timeout(600)

SKLEARN = "us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width")


def _write_table(emu: EmulatorProcess, name: str, instances: list[list[float]]) -> None:
    """A BigQuery table as the emulator reads it: one JSON object per row, columns in order."""
    path = emu.data_dir / "bigquery" / f"{name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join(json.dumps(dict(zip(COLUMNS, r, strict=True))) + "\n" for r in instances)
    )


def _table_rows(emu: EmulatorProcess, name: str) -> list[dict[str, Any]]:
    path = emu.data_dir / "bigquery" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_gapic_bigquery_in_csv_out_and_bigquery_out(
    emulator: EmulatorProcess, storage_client: Any, tmp_path: Path
) -> None:
    from google.cloud import aiplatform_v1 as v1

    from tests.integration._vertex import gapic_clients, put_tree, upload_model

    models, data = train_all(tmp_path)
    instances = rows(data, "iris")
    want = in_process("iris", models, instances)
    _write_table(emulator, "test-project.iris.rows", instances)
    clients = gapic_clients(emulator.url)
    artifact = put_tree(storage_client, "tables", "iris", models / "sklearn_iris")
    model = upload_model(clients, artifact, model_id="iris", image=SKLEARN).model

    def run(output: Any, predictions_format: str) -> Any:
        job = clients.job.create_batch_prediction_job(
            parent="projects/test-project/locations/us-central1",
            batch_prediction_job=v1.BatchPredictionJob(
                display_name=f"iris-{predictions_format}",
                model=model,
                input_config=v1.BatchPredictionJob.InputConfig(
                    instances_format="bigquery",
                    bigquery_source=v1.BigQuerySource(input_uri="bq://test-project.iris.rows"),
                ),
                output_config=v1.BatchPredictionJob.OutputConfig(
                    predictions_format=predictions_format, **output
                ),
                dedicated_resources=v1.BatchDedicatedResources(
                    machine_spec=v1.MachineSpec(machine_type="n1-standard-2"),
                    starting_replica_count=1,
                    max_replica_count=1,
                ),
            ),
        )
        return poll_until(
            lambda: clients.job.get_batch_prediction_job(name=job.name),
            lambda j: j.state.name in ("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"),
            timeout=300,
            fixed=0.5,
        )

    # BigQuery rows in, Vertex's CSV files out.
    done = run({"gcs_destination": v1.GcsDestination(output_uri_prefix="gs://tables/csv")}, "csv")
    assert done.state.name == "JOB_STATE_SUCCEEDED", done.error
    assert done.completion_stats.successful_count == len(want)
    bucket, _, directory = done.output_info.gcs_output_directory.removeprefix("gs://").partition(
        "/"
    )
    names = [b.name.rsplit("/", 1)[-1] for b in storage_client.list_blobs(bucket, prefix=directory)]
    assert names == ["predictions_0001.csv"]  # no errors file: nothing failed
    text = (
        storage_client.bucket(bucket).blob(f"{directory}/predictions_0001.csv").download_as_text()
    )
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["instance", "prediction"]
    assert [json.loads(p) for _, p in table[1:]] == want
    assert json.loads(table[1][0]) == dict(zip(COLUMNS, instances[0], strict=True))

    # BigQuery out, into a given dataset: a predictions_<timestamp> table (a local file here).
    done = run(
        {"bigquery_destination": v1.BigQueryDestination(output_uri="bq://test-project.results")},
        "bigquery",
    )
    assert done.state.name == "JOB_STATE_SUCCEEDED", done.error
    info = done.output_info
    assert info.bigquery_output_dataset == "bq://test-project.results"
    assert re.fullmatch(
        r"predictions_\d{4}_\d\d_\d\dT\d\d_\d\d_\d\d_\d{3}Z", info.bigquery_output_table
    )
    out = _table_rows(emulator, f"test-project.results.{info.bigquery_output_table}")
    assert [r["prediction"] for r in out] == want
    assert {k: out[0][k] for k in COLUMNS} == dict(zip(COLUMNS, instances[0], strict=True))

    # Into a project only: a new dataset prediction_<model>_<timestamp>, table `predictions`.
    done = run(
        {"bigquery_destination": v1.BigQueryDestination(output_uri="bq://test-project")},
        "bigquery",
    )
    assert done.state.name == "JOB_STATE_SUCCEEDED", done.error
    dataset = done.output_info.bigquery_output_dataset.removeprefix("bq://")
    assert dataset.startswith("test-project.prediction_mnist_")  # the model's display name
    assert done.output_info.bigquery_output_table == "predictions"
    assert [r["prediction"] for r in _table_rows(emulator, f"{dataset}.predictions")] == want


def test_gapic_refuses_a_bigquery_source_without_a_table(emulator: EmulatorProcess) -> None:
    from google.api_core.exceptions import BadRequest
    from google.cloud import aiplatform_v1 as v1

    from tests.integration._vertex import gapic_clients

    clients = gapic_clients(emulator.url)
    with pytest.raises(BadRequest, match=r"bq://project\.dataset\.table"):
        clients.job.create_batch_prediction_job(
            parent="projects/test-project/locations/us-central1",
            batch_prediction_job=v1.BatchPredictionJob(
                display_name="no-table",
                model="projects/test-project/locations/us-central1/models/x",
                input_config=v1.BatchPredictionJob.InputConfig(
                    instances_format="bigquery",
                    bigquery_source=v1.BigQuerySource(input_uri="bq://test-project.iris"),
                ),
                output_config=v1.BatchPredictionJob.OutputConfig(
                    predictions_format="jsonl",
                    gcs_destination=v1.GcsDestination(output_uri_prefix="gs://b/o"),
                ),
            ),
        )


def test_batch_predict_cli_csv_predictions_and_bigquery_tables(
    emulator: EmulatorProcess, tmp_path: Path
) -> None:
    (tmp_path / "configs").mkdir()
    spec = tmp_path / "configs" / "sklearn.yaml"
    base = (ROOT / "configs" / "sklearn.yaml").read_text()
    jobs = (
        "  - name: iris-csv-out\n"
        "    model: iris@v1\n"
        "    input: {path: ../data/iris_batch.jsonl, format: jsonl}\n"
        "    output: {prefix: predictions-csv-out/, predictions_format: csv}\n"
        "    machine_type: n1-standard-2\n"
        "  - name: iris-bq\n"
        "    model: iris@v1\n"
        "    input: {bigquery_source: {input_uri: bq://tables-project.iris.rows}}\n"
        "    output:\n"
        "      predictions_format: bigquery\n"
        "      bigquery_destination: {output_uri: bq://tables-project.results}\n"
        "    machine_type: n1-standard-2\n"
    )
    spec.write_text(base.replace("guards:", jobs + "guards:"))
    models, data = train_all(tmp_path)
    instances = rows(data, "iris")
    want = in_process("iris", models, instances)
    _write_table(emulator, "tables-project.iris.rows", instances)
    run_cli(["apply", str(spec), "--yes"], emulator.url)

    # CSV predictions: downloaded, merged in input order as for JSON Lines.
    result = tmp_path / "csv-out.jsonl"
    run_cli(
        ["batch-predict", str(spec), "--job", "iris-csv-out", "--output", str(result)],
        emulator.url,
    )
    assert [json.loads(x) for x in result.read_text().splitlines()] == want

    # BigQuery in and out: nothing downloaded; the table and its local file are named.
    out = run_cli(["batch-predict", str(spec), "--job", "iris-bq", "--json"], emulator.url)
    doc = json_out(out)
    table = doc["bigquery_output"]
    assert re.fullmatch(r"bq://tables-project\.results\.predictions_\S+", table), doc
    local = Path(doc["local_table_file"])
    assert local == emulator.data_dir / "bigquery" / f"{table.removeprefix('bq://')}.jsonl"
    assert [json.loads(x)["prediction"] for x in local.read_text().splitlines()] == want
    assert doc["predictions"] == len(want)
    assert str(local) in " ".join(out.stderr.split()), out.stderr
