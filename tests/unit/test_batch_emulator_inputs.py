"""The emulator's batch input side on a real ObjectStore (no server): wildcards, streaming
rows with their positions, file lists, and input errors that name file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.emulator.objects import ObjectStore
from deployer.emulator.vertex.batch_formats import (
    InputError,
    count_valid_instances,
    expand_sources,
    iter_instances,
)
from deployer.wire import batch_formats as formats


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    s = ObjectStore(tmp_path, fsync=False)
    s.create_bucket("bkt")
    return s


def test_wildcards_expand_in_name_order_and_a_pattern_matching_nothing_fails(
    store: ObjectStore,
) -> None:
    for name in ("in/b.jsonl", "in/a.jsonl", "in/a.csv", "other/a.jsonl"):
        store.put("bkt", name, b"[1]\n")
    assert expand_sources(store, ["gs://bkt/in/*.jsonl", "gs://bkt/other/a.jsonl"]) == [
        ("bkt", "in/a.jsonl"),
        ("bkt", "in/b.jsonl"),
        ("bkt", "other/a.jsonl"),
    ]
    with pytest.raises(InputError, match=r"gs://bkt/in/\*.txt matches no files"):
        expand_sources(store, ["gs://bkt/in/*.txt"])
    with pytest.raises(InputError, match="bucket nope does not exist"):
        expand_sources(store, ["gs://nope/x.jsonl"])
    with pytest.raises(InputError, match=r"gs://bkt/in/c.jsonl does not exist"):
        expand_sources(store, ["gs://bkt/in/c.jsonl"])


def test_instances_stream_with_their_source_and_line(store: ObjectStore) -> None:
    store.put("bkt", "x.jsonl", b'[1, 2]\n\n{"k": "v"}\n')
    got = [(i.value, i.where) for i in iter_instances(store, [("bkt", "x.jsonl")], "jsonl")]
    assert got == [([1, 2], "line 1"), ({"k": "v"}, "line 3")]


def test_a_file_list_sends_each_files_bytes_as_b64_and_counts_without_reading_them(
    store: ObjectStore,
) -> None:
    store.put("bkt", "img/1.png", b"\x89PNG one")
    store.put("bkt", "img/2.png", b"\x89PNG two")
    store.put("bkt", "list.txt", b"gs://bkt/img/2.png\ngs://bkt/img/1.png\n")
    sources = [("bkt", "list.txt")]
    assert count_valid_instances(store, sources, "file-list") == 2
    assert [i.value for i in iter_instances(store, sources, "file-list")] == [
        formats.b64_instance(b"\x89PNG two"),
        formats.b64_instance(b"\x89PNG one"),
    ]
    store.put("bkt", "list.txt", b"gs://bkt/img/1.png\ngs://bkt/img/3.png\n")
    with pytest.raises(InputError, match=r"line 2: gs://bkt/img/3.png does not exist"):
        count_valid_instances(store, sources, "file-list")


def test_malformed_rows_fail_with_file_and_line(store: ObjectStore) -> None:
    store.put("bkt", "x.csv", b'"a","b"\n1,2\n3,word\n')
    with pytest.raises(InputError, match=r"Malformed csv input gs://bkt/x.csv, line 3"):
        count_valid_instances(store, [("bkt", "x.csv")], "csv")
    store.put("bkt", "x.bin", b"\xff\xfe not utf-8")
    with pytest.raises(InputError, match="not UTF-8"):
        count_valid_instances(store, [("bkt", "x.bin")], "jsonl")
    with pytest.raises(InputError, match="Unsupported instancesFormat 'bigquery'"):
        count_valid_instances(store, [("bkt", "x.csv")], "bigquery")
