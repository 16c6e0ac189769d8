"""The batch client's memory does not grow with the input: rows live on disk, merge and score
stream.

Pins the design of issue 8 / benchmark 6: staging, merging, writing and scoring N
rows keep no per-row Python objects (the row index, output placements and labels are
in a SQLite temp file). Measured with tracemalloc (Python allocations only, which is
what a per-row structure would show up in), comparing two input sizes 5x apart.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from deployer.batch import results, rows, staging


class _DiscardingStore:
    """A StagingStore that accepts uploads and keeps nothing (the test measures the client)."""

    def list_objects(self, bucket: str, prefix: str) -> dict[str, Any]:
        return {}

    def upload_files(self, bucket: str, files: Any, progress: Any = None) -> None:
        list(files)


def _write_input_and_shards(root: Path, n: int) -> tuple[Path, Path, Path]:
    """n labelled rows, and the job's outputs for them: results in two shards, a few errors."""
    root.mkdir()
    data = root / "x.jsonl"
    with open(data, "w") as fh:
        fh.writelines(json.dumps({"x": [i % 997, i % 13], "label": i % 3}) + "\n" for i in range(n))
    r0 = root / "prediction.results-00000-of-00002"
    r1 = root / "prediction.results-00001-of-00002"
    errors = root / "prediction.errors_stats-00000-of-00002"
    with open(r0, "w") as f0, open(r1, "w") as f1, open(errors, "w") as fe:
        for i in range(n):
            instance = {"x": [i % 997, i % 13]}
            if i % 1000 == 7:  # a bounded number of failed rows (errors are kept, one per failure)
                fe.write(json.dumps({"instance": instance, "error": {"message": "bad"}}) + "\n")
                continue
            scores = [0.0, 0.0, 0.0]
            scores[(i * 7) % 3] = 1.0
            (f1 if i % 2 else f0).write(
                json.dumps({"instance": instance, "prediction": scores}) + "\n"
            )
    return data, r0, r1


def _peak_python_bytes(root: Path, n: int) -> tuple[int, results.Score]:
    data, r0, r1 = _write_input_and_shards(root, n)
    errors = root / "prediction.errors_stats-00000-of-00002"
    tracemalloc.start()
    try:
        staged = staging.stage_input(
            _DiscardingStore(), "bkt", "s", [str(data)], "jsonl", work_dir=root
        )
        assert staged.index is not None and staged.labels is not None
        merged = results.merge([r1, r0], [errors], staged.index, spool=root / "spool")
        results.write_output(merged, root / "out.jsonl", "jsonl")
        results.write_output(merged, root / "out.npy", "npy")
        scored = results.score(merged.iter_predictions(), staged.labels, rows=merged.rows)
        merged.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    staged.index.close()
    return peak, scored


def test_staging_merging_and_scoring_keep_no_per_row_python_objects(tmp_path: Path) -> None:
    small_n, big_n = 6_000, 30_000  # both above the insert/fetch buffers (4,096 rows)
    small, _ = _peak_python_bytes(tmp_path / "small", small_n)
    big, scored = _peak_python_bytes(tmp_path / "big", big_n)
    # The old in-memory index, offsets and labels cost ~400 bytes a row: 24,000 more rows added ~10
    # MB.
    # Allow 8 bytes a row (a bare array would need that) plus the errors, which are per failure.
    failures = big_n // 1000 - small_n // 1000
    assert big - small < (big_n - small_n) * 8 + failures * 2_000, (small, big)
    assert scored.total == big_n - big_n // 1000 and scored.classes == (0, 1, 2)
    assert sum(map(sum, scored.matrix)) == scored.total


def test_merge_output_is_in_input_order_with_failed_rows_null(tmp_path: Path) -> None:
    data, r0, r1 = _write_input_and_shards(tmp_path / "d", 2_500)
    staged = staging.stage_input(_DiscardingStore(), "bkt", "s", [str(data)], "jsonl")
    assert staged.index is not None
    merged = results.merge(
        [r1, r0],
        [tmp_path / "d" / "prediction.errors_stats-00000-of-00002"],
        staged.index,
        spool=tmp_path / "spool",
    )
    got = merged.predictions()
    assert len(got) == 2_500 and merged.succeeded == 2_500 - 3
    for i in (0, 1, 2, 1234, 2499):  # the shards interleave rows; the merge undoes it
        expected = [0.0, 0.0, 0.0]
        expected[(i * 7) % 3] = 1.0
        assert got[i] == expected
    assert [i for i, p in enumerate(got) if p is None] == [7, 1007, 2007]
    assert [(e.row, e.line) for e in merged.errors] == [(7, 8), (1007, 1008), (2007, 2008)]
    results.write_output(merged, tmp_path / "out.npy", "npy")
    assert np.isnan(np.load(tmp_path / "out.npy")[[7, 1007, 2007]]).all()


def test_the_row_index_claims_duplicates_in_input_order_and_keeps_positions_and_labels() -> None:
    index = rows.RowIndex()
    for i in range(10):
        index.add([i % 4], "in.jsonl", i + 1)
    index.add_label(1)
    assert [index.claim([1.0], output=i) for i in range(4)] == [
        1,
        5,
        9,
        None,
    ]  # duplicates in order
    assert index.position(5) == ("in.jsonl", 6) and len(index) == 10
    assert list(index.outputs()) == [None, 0, None, None, None, 1, None, None, None, 2]
    assert list(rows.Labels(index)) == [1]
    index.close()


def test_label_files_stream_and_score_counts_pairs(tmp_path: Path) -> None:
    text = tmp_path / "labels.txt"
    text.write_text("1\n0\n\n1\n")
    npy = tmp_path / "labels.npy"
    np.save(npy, np.array([1, 0, 1]))
    for path in (text, npy):
        labels = results.load_labels(path)
        assert not isinstance(labels, list) and len(labels) == 3 and list(labels) == [1, 0, 1]
        s = results.score(iter([[0.2, 0.8], [0.9, 0.1], [0.7, 0.3]]), labels, rows=3)
        assert (s.total, s.correct, s.matrix) == (3, 2, ((1, 0), (1, 1)))
