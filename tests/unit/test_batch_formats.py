"""Unit tests of deployer.wire.batch_formats: the row rules and TFRecord framing both sides
share."""

from __future__ import annotations

import gzip
import io

import pytest

from deployer.wire import batch_formats as formats


def test_jsonl_skips_blank_lines_and_numbers_rows_from_one() -> None:
    rows = list(formats.iter_jsonl(["[1, 2]\n", "\n", '{"a": "x"}\n']))
    assert rows == [(1, [1, 2]), (3, {"a": "x"})]


def test_jsonl_names_the_line_of_a_malformed_row() -> None:
    with pytest.raises(formats.FormatError) as info:
        list(formats.iter_jsonl(["[1]\n", "[2,\n"]))
    assert info.value.where == "line 2"


def test_csv_reads_unquoted_values_as_floats_and_quoted_as_strings_like_vertex() -> None:
    rows = list(formats.iter_csv(['"a","b","c"\n', '0.1,1.2,"cat1"\n', '4,5,"cat2"\n']))
    assert rows == [(2, [0.1, 1.2, "cat1"]), (3, [4.0, 5.0, "cat2"])]


def test_csv_rejects_an_unquoted_word_and_a_short_row_with_their_lines() -> None:
    with pytest.raises(formats.FormatError) as info:
        list(formats.iter_csv(["a,b\n", "1,2\n", "1,cat\n"]))
    assert info.value.where == "line 3"
    with pytest.raises(formats.FormatError, match="1 values but the header has 2"):
        list(formats.iter_csv(["a,b\n", "1\n"]))


def test_tfrecord_framing_round_trips_and_matches_tensorflows_bytes() -> None:
    # Bytes tf.io.TFRecordWriter (TF 2.21) wrote for the record b"hello".
    golden = bytes.fromhex("0500000000000000eab2043e68656c6c6fbb1f1c19")
    assert formats.frame_tfrecord(b"hello") == golden
    stream = io.BytesIO(b"".join(formats.frame_tfrecord(d) for d in (b"a", b"", b"x" * 1000)))
    assert list(formats.iter_tfrecords(stream)) == [(1, b"a"), (2, b""), (3, b"x" * 1000)]


def test_tfrecord_reads_gzip_compressed_files() -> None:
    raw = b"".join(formats.frame_tfrecord(d) for d in (b"one", b"two"))
    assert [d for _, d in formats.iter_tfrecords(io.BytesIO(gzip.compress(raw)))] == [
        b"one",
        b"two",
    ]


def test_tfrecord_detects_corruption_and_truncation() -> None:
    good = formats.frame_tfrecord(b"payload")
    flipped = good[:14] + bytes([good[14] ^ 1]) + good[15:]
    with pytest.raises(formats.FormatError, match="bad checksum"):
        list(formats.iter_tfrecords(io.BytesIO(flipped)))
    with pytest.raises(formats.FormatError, match="truncated") as info:
        list(formats.iter_tfrecords(io.BytesIO(good + good[:-3])))
    assert info.value.where == "record 2"
    with pytest.raises(formats.FormatError, match="is this a TFRecord"):
        list(formats.iter_tfrecords(io.BytesIO(b'{"not": "a record"}\n')))


def test_tfrecord_length_is_checked_by_its_own_crc_and_verify_false_skips_both_checks() -> None:
    # The golden bytes above pin the masked CRCs; here: which CRC guards what.
    good = formats.frame_tfrecord(b"payload")
    longer = bytes([good[0] + 1]) + good[1:]  # length 8 instead of 7, length CRC unchanged
    with pytest.raises(formats.FormatError, match="corrupt TFRecord length") as info:
        list(formats.iter_tfrecords(io.BytesIO(longer)))
    assert info.value.where == "record 1"
    bad_footer = good[:-1] + bytes([good[-1] ^ 0xFF])
    with pytest.raises(formats.FormatError, match="corrupt TFRecord data"):
        list(formats.iter_tfrecords(io.BytesIO(bad_footer)))
    assert list(formats.iter_tfrecords(io.BytesIO(bad_footer), verify=False)) == [(1, b"payload")]


def test_shard_names_sort_in_index_order_and_parse_back() -> None:
    names = [formats.shard_name(formats.RESULTS_STEM, i, 12) for i in range(12)]
    assert sorted(names) == names
    assert names[3] == "prediction.results-00003-of-00012"
    assert formats.parse_shard_name("gs://b/p/" + names[3]) == ("prediction.results", 3, 12)
    assert formats.parse_shard_name("prediction.errors_stats-00000-of-00001") == (
        formats.ERRORS_STEM,
        0,
        1,
    )
    assert formats.parse_shard_name("other.txt") is None


def test_instance_key_ignores_int_float_spelling_and_key_order_but_not_values() -> None:
    assert formats.instance_key({"a": 1, "b": [2]}) == formats.instance_key({"b": [2.0], "a": 1.0})
    assert formats.instance_key([1, 2]) != formats.instance_key([2, 1])
    assert formats.instance_key(True) != formats.instance_key(1)
