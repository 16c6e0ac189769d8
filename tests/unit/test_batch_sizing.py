"""deployer.batch.sizing: row counts of local batch inputs for the plan's cost bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deployer.batch.sizing import local_rows_upper_bound
from deployer.wire.batch_formats import frame_tfrecord


def test_counts_each_format_without_parsing(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text('{"x": 1}\n{"x": 2}\n{"x": 3}')  # no newline after the last row
    assert local_rows_upper_bound([str(jsonl)], "jsonl") == 3
    csv = tmp_path / "b.csv"
    csv.write_text("x,y\n1,2\n3,4\n")
    assert local_rows_upper_bound([str(csv)], "csv") == 2  # the header is not a row
    records = tmp_path / "c.tfrecord"
    records.write_bytes(b"".join(frame_tfrecord(bytes([i]) * (i * 100)) for i in range(5)))
    assert local_rows_upper_bound([str(records)], "tf-record") == 5
    arr = tmp_path / "d.npy"
    np.save(arr, np.zeros((7, 28, 28), np.float32))
    assert local_rows_upper_bound([str(arr)], "jsonl") == 7
    images = tmp_path / "pngs"
    images.mkdir()
    for i in range(4):
        (images / f"{i}.png").write_bytes(b"png")
    (images / ".hidden").write_bytes(b"")
    assert local_rows_upper_bound([str(images)], "file-list") == 4
    assert local_rows_upper_bound([str(jsonl), str(arr)], "jsonl") == 10


def test_unknown_when_remote_missing_truncated_or_too_big(tmp_path: Path) -> None:
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text("{}\n" * 100)
    assert local_rows_upper_bound(["gs://b/in.jsonl"], "jsonl") is None
    assert local_rows_upper_bound([str(jsonl), "gs://b/in.jsonl"], "jsonl") is None
    assert local_rows_upper_bound([str(tmp_path / "missing.jsonl")], "jsonl") is None
    assert local_rows_upper_bound([str(jsonl)], "jsonl", max_bytes=100) is None
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(frame_tfrecord(b"x" * 50) + b"\x01\x02")
    assert local_rows_upper_bound([str(cut)], "tf-record") is None
