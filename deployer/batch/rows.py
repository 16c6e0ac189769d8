"""The on-disk row table of one staged batch input: keys, positions, labels, output offsets.

Owns `RowIndex`: for each input row (0-based, input order) the canonical key of
its instance, the file and line it came from, its known label (if any), and,
once outputs are merged, where its prediction sits in the merge spool. All of
it lives in a private temporary SQLite database (a file in the temp dir beyond a
2 MiB page cache), so the client's memory does not grow
with the input: a million-row input costs tens of MB of disk, a few MB of RAM
(SQLite's page cache plus a small insert buffer).

Must not: keep anything per row in Python memory (beyond the bounded insert
buffer), or know about file formats (staging computes keys with `formats`).
"""

from __future__ import annotations

import json
import sqlite3
import weakref
from collections.abc import Iterator
from typing import Any

from deployer.wire import batch_formats as formats

_FLUSH_ROWS = 4096  # inserts buffered before one executemany: bounded memory, few round trips
_CACHE_KIB = 2 * 1024  # SQLite page cache: a constant, whatever the row count
_FETCH_ROWS = 4096  # rows per fetch when streaming in input order


class RowIndex:
    """Where each input row came from, a key to find it again in the outputs, and its label.

    Duplicate instances (equal keys) are claimed in input order. Rows are appended
    by `add` (staging), then `claim`ed by merged outputs; the key index is built on
    the first claim (one sort beats a B-tree updated per insert).
    """

    def __init__(self) -> None:
        # "": SQLite's private temporary database. Its file (in $SQLITE_TMPDIR / $TMPDIR) is
        # unlinked as soon as it is opened, so even a killed CLI leaves nothing behind;
        # pages beyond the cache below spill to it. check_same_thread=False: the CLI may
        # stage in one thread and merge in another; calls are never concurrent.
        self._db = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self._db.executescript(f"""
            PRAGMA journal_mode = OFF;
            PRAGMA synchronous = OFF;
            PRAGMA cache_size = -{_CACHE_KIB};
            CREATE TABLE rows (row INTEGER PRIMARY KEY, source INTEGER NOT NULL,
                               line INTEGER NOT NULL, key BLOB, out INTEGER);
            CREATE TABLE labels (n INTEGER PRIMARY KEY, value TEXT NOT NULL);
        """)
        self._finalizer = weakref.finalize(self, self._db.close)
        self.sources: list[
            str
        ] = []  # input files, in the order first seen (one per file, not per row)
        self._source_ids: dict[str, int] = {}
        self._pending: list[tuple[int, int, int, bytes]] = []
        self._pending_labels: list[tuple[int, str]] = []
        self._rows = 0
        self._labels = 0
        self._indexed = False
        self._open_claims = 0  # claims in the open transaction (committed every _FLUSH_ROWS)

    # -- staging -------------------------------------------------------------------------

    def add(self, instance: Any, source: str, line: int) -> None:
        sid = self._source_ids.get(source)
        if sid is None:
            sid = self._source_ids[source] = len(self.sources)
            self.sources.append(source)
        self._pending.append((self._rows, sid, line, formats.instance_key(instance)))
        self._rows += 1
        if len(self._pending) >= _FLUSH_ROWS:
            self._flush()

    def add_label(self, value: Any) -> None:
        """The next row's known label (labels are numbered in the order they are added)."""
        self._pending_labels.append((self._labels, json.dumps(value)))
        self._labels += 1
        if len(self._pending_labels) >= _FLUSH_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Write buffered inserts (readers on this connection see open claims without a commit)."""
        if self._pending or self._pending_labels:
            if self._open_claims:  # rows added after claims: close that transaction first
                self._db.execute("COMMIT")
                self._open_claims = 0
            with self._db:  # one transaction per batch: inserts at disk-sort speed
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO rows (row, source, line, key) VALUES (?, ?, ?, ?)", self._pending
                )
                self._db.executemany(
                    "INSERT INTO labels (n, value) VALUES (?, ?)", self._pending_labels
                )
            self._pending.clear()
            self._pending_labels.clear()

    def __len__(self) -> int:
        return self._rows

    @property
    def label_count(self) -> int:
        return self._labels

    # -- merging -------------------------------------------------------------------------

    def _ready(self) -> None:
        self._flush()
        if not self._indexed:
            # Index entries for one key are ordered by rowid: the first unclaimed duplicate
            # is the first entry, and a claimed row leaves the index (its key becomes NULL).
            self._db.execute("CREATE INDEX IF NOT EXISTS rows_key ON rows (key)")
            self._indexed = True

    def claim(self, instance: Any, *, output: int | None = None) -> int | None:
        """The first unclaimed row holding this instance (duplicates in input order), now claimed.

        `output` (a spool offset) is recorded on the row; `outputs()` yields it in input order.
        """
        self._ready()
        if not self._open_claims:
            # Claims are grouped in transactions: one per UPDATE would write pages every time.
            self._db.execute("BEGIN")
        self._open_claims += 1
        if self._open_claims >= _FLUSH_ROWS:
            self._db.execute("COMMIT")
            self._db.execute("BEGIN")
            self._open_claims = 1
        found = self._db.execute(
            "UPDATE rows SET key = NULL, out = ? WHERE row = "
            "(SELECT row FROM rows WHERE key = ? ORDER BY row LIMIT 1) RETURNING row",
            (output, formats.instance_key(instance)),
        ).fetchone()
        return None if found is None else int(found[0])

    def position(self, row: int) -> tuple[str, int]:
        """(input file, line or record number) of a row."""
        self._flush()
        source, line = self._db.execute(
            "SELECT source, line FROM rows WHERE row = ?", (row,)
        ).fetchone()
        return self.sources[source], int(line)

    def outputs(self) -> Iterator[int | None]:
        """Each row's recorded output offset, in input order (None: no output claimed it)."""
        self._flush()
        cursor = self._db.execute("SELECT out FROM rows ORDER BY row")
        while batch := cursor.fetchmany(_FETCH_ROWS):
            for (out,) in batch:
                yield out

    def labels(self) -> Iterator[Any]:
        """The known labels, in input order."""
        self._flush()
        cursor = self._db.execute("SELECT value FROM labels ORDER BY n")
        while batch := cursor.fetchmany(_FETCH_ROWS):
            for (value,) in batch:
                yield json.loads(value)

    def close(self) -> None:
        """Close the table, which deletes it (also done when the index is garbage-collected)."""
        self._finalizer()


class Labels:
    """The known labels of a staged input, read from its `RowIndex` in input order (not in
    memory)."""

    def __init__(self, index: RowIndex) -> None:
        self._index = index

    def __len__(self) -> int:
        return self._index.label_count

    def __iter__(self) -> Iterator[Any]:
        return self._index.labels()
