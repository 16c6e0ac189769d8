"""BigQuery tables and CSV predictions of the emulator's batch jobs, in place of the cloud.

Owns: the local stand-in for a BigQuery table, a JSON Lines file of row objects at
`<data dir>/bigquery/<project>.<dataset>.<table>.jsonl` (the place request/response logging
writes, reqlog.py); reading a `bigquerySource` table as instances (`TableInput`); naming and
writing a `bigqueryDestination` output as Vertex names it (`bq://project` -> a new dataset
`prediction_<model>_<timestamp>` with tables `predictions` and `errors`; `bq://project.dataset`
-> tables `predictions_<timestamp>` and `errors_<timestamp>` in it), recorded in
`outputInfo.bigqueryOutputDataset` / `bigqueryOutputTable`; and turning the runner's
result/error shards into Vertex's CSV files `predictions_0001.csv`, `errors_0001.csv`, ...
(a header line, then one row per instance: `instance` (or `key`) and `prediction` (or
`error`) columns, each cell the value's JSON text).

Must not: call replicas, touch job state beyond outputInfo, or import TensorFlow.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployer.emulator.context import EmulatorContext
from deployer.emulator.paths import contained
from deployer.emulator.vertex.batch_formats import InputError, chunked

# bq://project[.dataset[.table]]; a domain-scoped project is `example.com:project`.
_BQ_RE = re.compile(
    r"bq://((?:[a-z0-9.-]+:)?[A-Za-z0-9_-]+)(?:\.([A-Za-z0-9_]+))?(?:\.([A-Za-z0-9_]+))?"
)


def parse_bq_uri(uri: str) -> tuple[str, str | None, str | None]:
    """(project, dataset or None, table or None) of a bq:// URI; ValueError if malformed."""
    m = _BQ_RE.fullmatch(uri)
    if m is None:
        raise ValueError(f"{uri!r} is not bq://project[.dataset[.table]]")
    return m[1], m[2], m[3]


def table_path(data_dir: Path, project: str, dataset: str, table: str) -> Path:
    """The local file standing for one table (checked to stay under the data dir)."""
    return contained(
        Path(data_dir) / "bigquery",
        f"{project}.{dataset}.{table}.jsonl",
        what=f"BigQuery table {project}.{dataset}.{table}",
    )


class TableInput:
    """A `bigquerySource` table read from its local file, one row object per instance."""

    def __init__(self, data_dir: Path, uri: str) -> None:
        try:
            project, dataset, table = parse_bq_uri(uri)
        except ValueError as exc:
            raise InputError(f"inputConfig.bigquerySource.inputUri: {exc}.") from exc
        if dataset is None or table is None:
            raise InputError(
                f"inputConfig.bigquerySource.inputUri {uri} must name a table: "
                "bq://project.dataset.table."
            )
        self.uri = uri
        self.path = table_path(data_dir, project, dataset, table)
        if not self.path.is_file():
            raise InputError(
                f"BigQuery table {uri} does not exist (the emulator reads it from {self.path})."
            )

    def rows(self) -> Iterator[bytes]:
        """Each row, as its JSON object text (sent and echoed as is); InputError on a line
        that is not an object."""
        with open(self.path, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                text = line.strip()
                if not text:
                    continue
                try:
                    row = json.loads(text)
                except ValueError as exc:
                    raise InputError(f"BigQuery table {self.uri}, row {n}: {exc}") from exc
                if not isinstance(row, dict):
                    raise InputError(
                        f"BigQuery table {self.uri}, row {n}: a row must be a JSON object."
                    )
                yield text

    def count(self) -> int:
        return sum(1 for _ in self.rows())

    def batches(self, size: int) -> Iterator[list[bytes]]:
        """The rows in input order as lists of `size` JSON texts (what
        batch_formats.iter_batches yields for instances that are not JSON Lines blocks)."""
        return chunked(self.rows(), size)


def _stamp(now: datetime) -> str:
    """Vertex's timestamp in BigQuery names: YYYY_MM_DDThh_mm_ss_sssZ."""
    return now.strftime("%Y_%m_%dT%H_%M_%S_%f")[:-3] + "Z"


def output_tables(uri: str, model_display_name: str, now: datetime) -> tuple[str, str, str, str]:
    """(project, dataset, predictions table, errors table) of a `bigqueryDestination`."""
    project, dataset, table = parse_bq_uri(uri)
    stamp = _stamp(now)
    if table is not None:
        return project, dataset or "", table, f"errors_{stamp}"
    if dataset is None:
        safe = re.sub(r"[^A-Za-z0-9_]", "_", model_display_name)
        return project, f"prediction_{safe}_{stamp}", "predictions", "errors"
    return project, dataset, f"predictions_{stamp}", f"errors_{stamp}"


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    """The runner's shard rows ({"instance"|"key": ..., "prediction"|"error": ...})."""
    if not path.is_file():
        return
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _table_row(row: dict[str, Any]) -> dict[str, Any]:
    """An output table row: the instance's own columns when it is an object (Vertex puts the
    instance's columns first), else an `instance` column; then prediction (or errors)."""
    out: dict[str, Any] = {}
    instance = row.get("instance")
    if "key" in row:
        out["key"] = row["key"]
    elif isinstance(instance, dict):
        out.update(instance)
    else:
        out["instance"] = instance
    if "error" in row:
        out["errors"] = row["error"]
    else:
        out["prediction"] = row.get("prediction")
    return out


def write_tables(
    data_dir: Path,
    job: Any,
    shards: list[tuple[Path, Path]],
    model_display_name: str,
    now: datetime,
) -> Path:
    """Write the shards' rows into the output tables' local files, record outputInfo; returns
    the predictions table's file."""
    uri = job.output_config.bigquery_destination.output_uri
    project, dataset, predictions, errors = output_tables(uri, model_display_name, now)
    targets = {
        "results": table_path(data_dir, project, dataset, predictions),
        "errors": table_path(data_dir, project, dataset, errors),
    }
    targets["results"].parent.mkdir(parents=True, exist_ok=True)
    with open(targets["results"], "w") as ok, open(targets["errors"], "w") as bad:
        for results, failures in shards:
            for row in _rows(results):
                ok.write(json.dumps(_table_row(row), separators=(",", ":")) + "\n")
            for row in _rows(failures):
                bad.write(json.dumps(_table_row(row), separators=(",", ":")) + "\n")
    job.output_info.bigquery_output_dataset = f"bq://{project}.{dataset}"
    job.output_info.bigquery_output_table = predictions
    return targets["results"]


def csv_files(shards: list[tuple[Path, Path]], work: Path) -> list[tuple[str, Path]]:
    """Vertex's CSV output files from the shards: [(object name, local file)], predictions
    then errors (error files only where an instance failed)."""
    out: list[tuple[str, Path]] = []
    for i, (results, failures) in enumerate(shards, start=1):
        for stem, source, value in (
            ("predictions", results, "prediction"),
            ("errors", failures, "error"),
        ):
            rows = list(_rows(source))
            if stem == "errors" and not rows:
                continue
            first = "key" if rows and "key" in rows[0] else "instance"
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow([first, value])
            for row in rows:
                writer.writerow(
                    [
                        json.dumps(row.get(first), separators=(",", ":")),
                        json.dumps(row.get(value), separators=(",", ":")),
                    ]
                )
            local = work / f"{stem}_{i:04d}.csv"
            local.write_text(buf.getvalue())
            out.append((local.name, local))
    return out


def publish(
    ctx: EmulatorContext,
    job: Any,
    shards: list[tuple[Path, Path]],
    model_display_name: str,
    directory: str,
) -> None:
    """Write a finished job's rows as its output_config asks: CSV files under the job's output
    directory (`directory` in the output bucket), or the BigQuery output tables' local files
    (outputInfo names them)."""
    if job.output_config.predictions_format == "bigquery":
        write_tables(ctx.data_dir, job, shards, model_display_name or "model", datetime.now(UTC))
        return
    if not shards:
        return
    bucket = job.output_info.gcs_output_directory.removeprefix("gs://").split("/", 1)[0]
    for name, local in csv_files(shards, shards[0][0].parent):
        ctx.objects.put(bucket, f"{directory}/{name}", local, content_type="text/csv")
