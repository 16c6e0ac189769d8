"""BigQuery table names and CSV prediction files of the emulator's batch jobs, and the client's
merge of CSV output files (deployer.emulator.vertex.batch_tables, deployer.batch.results)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployer.batch.results import csv_shard, merge
from deployer.emulator.vertex import batch_tables
from deployer.emulator.vertex.batch_formats import InputError

NOW = datetime(2026, 12, 1, 17, 5, 9, 123456, tzinfo=UTC)


def test_bq_uris_parse_into_project_dataset_table() -> None:
    assert batch_tables.parse_bq_uri("bq://p-1.ds.t_1") == ("p-1", "ds", "t_1")
    assert batch_tables.parse_bq_uri("bq://p-1.ds") == ("p-1", "ds", None)
    assert batch_tables.parse_bq_uri("bq://p-1") == ("p-1", None, None)
    assert batch_tables.parse_bq_uri("bq://example.com:p.d.t") == ("example.com:p", "d", "t")
    for bad in ("gs://b/o", "bq://", "bq://p.d.t.x", "bq://p.d/t"):
        with pytest.raises(ValueError):
            batch_tables.parse_bq_uri(bad)


def test_output_tables_are_named_as_vertex_names_them() -> None:
    # A dataset given: predictions_<timestamp> and errors_<timestamp> in it.
    assert batch_tables.output_tables("bq://p.results", "iris", NOW) == (
        "p",
        "results",
        "predictions_2026_12_01T17_05_09_123Z",
        "errors_2026_12_01T17_05_09_123Z",
    )
    # A project only: a new dataset prediction_<model>_<timestamp> with predictions and errors.
    assert batch_tables.output_tables("bq://p", "my model", NOW) == (
        "p",
        "prediction_my_model_2026_12_01T17_05_09_123Z",
        "predictions",
        "errors",
    )


def test_a_missing_or_malformed_input_table_fails_the_job(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        batch_tables.TableInput(tmp_path, "bq://p.d.t")
    with pytest.raises(InputError, match="must name a table"):
        batch_tables.TableInput(tmp_path, "bq://p.d")
    path = tmp_path / "bigquery" / "p.d.t.jsonl"
    path.parent.mkdir()
    path.write_text('{"a": 1, "b": 2}\n\n[1, 2]\n')
    table = batch_tables.TableInput(tmp_path, "bq://p.d.t")
    rows = table.rows()
    assert next(rows) == b'{"a": 1, "b": 2}'
    with pytest.raises(InputError, match="row 3: a row must be a JSON object"):
        next(rows)


def test_table_rows_come_in_batches_of_the_job_size_in_order(tmp_path: Path) -> None:
    path = tmp_path / "bigquery" / "p.d.t.jsonl"
    path.parent.mkdir()
    path.write_text("".join(f'{{"x": {i}}}\n' for i in range(5)))
    table = batch_tables.TableInput(tmp_path, "bq://p.d.t")
    assert table.count() == 5
    assert list(table.batches(2)) == [
        [b'{"x": 0}', b'{"x": 1}'],
        [b'{"x": 2}', b'{"x": 3}'],
        [b'{"x": 4}'],
    ]


def _shards(tmp_path: Path) -> list[tuple[Path, Path]]:
    r0, e0, r1, e1 = (tmp_path / n for n in ("r0", "e0", "r1", "e1"))
    r0.write_text('{"instance":[1,2],"prediction":0}\n{"instance":[3,4],"prediction":[1,"x"]}\n')
    e0.write_text('{"instance":[5],"error":{"code":3,"message":"bad, shape"}}\n')
    r1.write_text('{"instance":{"a":"q,\\"t"},"prediction":2}\n')
    e1.write_text("")
    return [(r0, e0), (r1, e1)]


def test_csv_files_hold_json_cells_and_round_trip_through_the_client_merge(
    tmp_path: Path,
) -> None:
    files = batch_tables.csv_files(_shards(tmp_path), tmp_path)
    assert [name for name, _ in files] == [
        "predictions_0001.csv",
        "errors_0001.csv",
        "predictions_0002.csv",  # no errors_0002.csv: nothing failed in that shard
    ]
    first = files[0][1].read_text().splitlines()
    assert first[0] == "instance,prediction"
    assert first[1] == '"[1,2]",0'
    assert csv_shard("dir/predictions_0002.csv") == ("predictions", 2)
    assert csv_shard("prediction.results-00000-of-00001") is None
    results = [p for n, p in files if n.startswith("predictions")]
    errors = [p for n, p in files if n.startswith("errors")]
    merged = merge(list(reversed(results)), errors, None, spool=tmp_path / "spool")
    try:
        assert list(merged.iter_predictions()) == [0, [1, "x"], 2]
        assert [e.message for e in merged.errors] == ["bad, shape"]
    finally:
        merged.close()


def test_table_rows_put_the_instance_columns_first_then_the_prediction(tmp_path: Path) -> None:
    from google.cloud import aiplatform_v1 as v1

    job = v1.BatchPredictionJob.pb()()
    job.output_config.bigquery_destination.output_uri = "bq://p.d"
    path = batch_tables.write_tables(tmp_path, job, _shards(tmp_path), "m", NOW)
    assert path == tmp_path / "bigquery" / "p.d.predictions_2026_12_01T17_05_09_123Z.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    assert rows == [
        {"instance": [1, 2], "prediction": 0},
        {"instance": [3, 4], "prediction": [1, "x"]},
        {"a": 'q,"t', "prediction": 2},
    ]
    errors = path.with_name("p.d.errors_2026_12_01T17_05_09_123Z.jsonl").read_text()
    assert json.loads(errors) == {"instance": [5], "errors": {"code": 3, "message": "bad, shape"}}
    assert (job.output_info.bigquery_output_dataset, job.output_info.bigquery_output_table) == (
        "bq://p.d",
        "predictions_2026_12_01T17_05_09_123Z",
    )
