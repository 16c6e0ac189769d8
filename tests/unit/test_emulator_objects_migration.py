"""A data dir written before objects had properties, storage classes and versions opens and
keeps its buckets and objects (the new columns are added with their defaults)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from deployer.emulator.objects import ObjectStore

_OLD_SCHEMA = """
CREATE TABLE buckets (name TEXT PRIMARY KEY, location TEXT NOT NULL, storage_class TEXT NOT NULL,
    labels TEXT NOT NULL, project TEXT, metageneration INTEGER NOT NULL,
    time_created TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE objects (bucket TEXT NOT NULL, name TEXT NOT NULL, generation INTEGER NOT NULL,
    metageneration INTEGER NOT NULL, size INTEGER NOT NULL, md5 TEXT NOT NULL,
    crc32c TEXT NOT NULL, content_type TEXT NOT NULL, metadata TEXT NOT NULL,
    time_created TEXT NOT NULL, updated TEXT NOT NULL, blob TEXT NOT NULL,
    PRIMARY KEY (bucket, name)) WITHOUT ROWID;
"""


def test_an_older_data_dir_opens_with_its_objects(tmp_path: Path) -> None:
    root = tmp_path / "gcs"
    (root / "blobs" / "ab").mkdir(parents=True)
    (root / "blobs" / "ab" / "ab12").write_bytes(b"old")
    db = sqlite3.connect(root / "meta.sqlite3")
    db.executescript(_OLD_SCHEMA)
    db.execute("INSERT INTO buckets VALUES ('b','US','STANDARD','{}',NULL,1,'t','t')")
    db.execute(
        "INSERT INTO objects VALUES ('b','o',5,1,3,'md5','crc','text/plain','{}','t','t','ab/ab12')"
    )
    db.commit()
    db.close()
    store = ObjectStore(tmp_path, fsync=False)
    try:
        meta = store.require("b", "o")
        assert (meta.generation, meta.storage_class, meta.properties) == (5, "STANDARD", {})
        assert store.read_bytes("b", "o") == b"old"
        assert store.require_bucket("b")["versioning"] is False
        store.update_bucket("b", versioning=True)
        store.put("b", "o", b"new")
        versions = store.list_page("b", versions=True).items
        assert [m.generation for m in versions][:1] == [5] and len(versions) == 2
    finally:
        store.close()
