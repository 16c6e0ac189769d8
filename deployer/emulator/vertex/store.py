"""Persistent state of the emulated Vertex AI: models, endpoints, deployments, operations.

Owns the SQLite database `<data_dir>/vertex.sqlite3` (WAL, synchronous=FULL):
every mutation runs in one `BEGIN IMMEDIATE` transaction, so a crash or
`kill -9` leaves either the old or the new state, never a torn one. Resources
are stored as binary v1 protos (exact round trip). Also owns name resolution
for models (`models/ID`, `models/ID@3`, `models/ID@alias`), which batch jobs
(deployer.emulator.vertex.batch_jobs) use through `resolve_model`.

Operations: a row per long-running operation. `state` is `running` while a
worker (deploy) still has to act, `done` once its result is final; the result
becomes visible only at `done_at` (= creation + the --op-delay fault), so
clients see `done: false` that long. After a restart, `running_operations()`
lists what a worker must resume or fail (see endpoints.recover).

Must not: talk HTTP, start processes, or import TensorFlow.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from google.cloud.aiplatform_v1.types import endpoint as endpoint_t
from google.cloud.aiplatform_v1.types import model as model_t
from google.longrunning.operations_pb2 import Operation
from google.rpc import status_pb2

from deployer.emulator.http import ServiceError
from deployer.emulator.vertex import protos
from deployer.emulator.vertex.names import ModelName, parse_model_name

Model = protos.pb(model_t.Model)
Endpoint = protos.pb(endpoint_t.Endpoint)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    base TEXT NOT NULL,            -- projects/p/locations/l/models/ID
    version INTEGER NOT NULL,      -- version id (1, 2, ...)
    parent TEXT NOT NULL,          -- projects/p/locations/l
    body BLOB NOT NULL,            -- google.cloud.aiplatform.v1.Model, serialized
    PRIMARY KEY (base, version)
);
CREATE INDEX IF NOT EXISTS models_parent ON models(parent);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,         -- projects/p/locations/l/endpoints/ID
    parent TEXT NOT NULL,
    created REAL NOT NULL,
    body BLOB NOT NULL             -- google.cloud.aiplatform.v1.Endpoint, serialized
);
CREATE INDEX IF NOT EXISTS endpoints_parent ON endpoints(parent);
CREATE TABLE IF NOT EXISTS deployments (
    endpoint TEXT NOT NULL,
    deployed_model_id TEXT NOT NULL,
    model_base TEXT NOT NULL,      -- the model, without @version
    version INTEGER NOT NULL,      -- the version deployed
    state TEXT NOT NULL,           -- 'deploying' (operation running) | 'deployed'
    operation TEXT,                -- the deploy operation while deploying
    body BLOB NOT NULL,            -- DeployedModel (as requested while deploying)
    PRIMARY KEY (endpoint, deployed_model_id)
);
CREATE INDEX IF NOT EXISTS deployments_model ON deployments(model_base, version);
CREATE TABLE IF NOT EXISTS operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    resource TEXT NOT NULL,        -- the resource the operation sits under
    kind TEXT NOT NULL,            -- 'upload', 'deploy', ... (resume/fail on restart)
    state TEXT NOT NULL,           -- 'running' | 'done'
    done_at REAL NOT NULL,         -- epoch seconds from which a done result is shown
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL             -- google.longrunning.Operation incl. its final result
);
CREATE INDEX IF NOT EXISTS operations_resource ON operations(resource);
"""


class VertexStore:
    """Thread-safe access to the Vertex database; one connection, serialised by a lock.

    Reads and writes both go through `tx()`; SQLite calls take microseconds, and
    the predict hot path never touches the store (it uses the in-memory routing table).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed transaction survives power loss, not only process death.
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_SCHEMA)
        self._depth = 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (nested calls join the outer one)."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    # -- models -------------------------------------------------------------

    def model_versions(self, base: str) -> list[Any]:
        """All versions of a model (Model protos), oldest first; [] if none."""
        with self.tx() as c:
            rows = c.execute(
                "SELECT body FROM models WHERE base=? ORDER BY version", (base,)
            ).fetchall()
        return [protos.loads(r[0], Model) for r in rows]

    def put_model(self, model: Any) -> None:
        """Store a model version; every write gives it a fresh `etag` (read-modify-write)."""
        name = parse_model_name(model.name)
        model.etag = uuid.uuid4().hex[:16]
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO models(base, version, parent, body) VALUES (?,?,?,?)",
                (name.base, int(model.version_id), name.parent, protos.dumps(model)),
            )

    def delete_model(self, base: str, version: int | None = None) -> None:
        with self.tx() as c:
            if version is None:
                c.execute("DELETE FROM models WHERE base=?", (base,))
            else:
                c.execute("DELETE FROM models WHERE base=? AND version=?", (base, version))

    def models_in(self, parent: str) -> list[Any]:
        """Every version of every model under a location (Model protos)."""
        with self.tx() as c:
            rows = c.execute(
                "SELECT body FROM models WHERE parent=? ORDER BY base, version", (parent,)
            ).fetchall()
        return [protos.loads(r[0], Model) for r in rows]

    def resolve_model(self, name: str) -> Any:
        """The Model proto a name designates: `models/ID` -> the default version,
        `models/ID@3` -> version 3, `models/ID@alias` -> the version holding the alias.

        For batch jobs: the returned proto carries `artifact_uri`, `container_spec`,
        `version_id` and the full `name` (without @). Raises ServiceError 404 NOT_FOUND.
        """
        parsed = parse_model_name(name)
        versions = self.model_versions(parsed.base)
        found = pick_version(versions, parsed)
        if found is None:
            what = f"Model {parsed.base}" + (
                f" version/alias {parsed.version!r}" if parsed.version else ""
            )
            raise ServiceError(404, "NOT_FOUND", f"{what} not found.")
        return found

    # -- endpoints ------------------------------------------------------------

    def get_endpoint(self, name: str) -> Any | None:
        with self.tx() as c:
            row = c.execute("SELECT body FROM endpoints WHERE name=?", (name,)).fetchone()
        return protos.loads(row[0], Endpoint) if row else None

    def require_endpoint(self, name: str) -> Any:
        ep = self.get_endpoint(name)
        if ep is None:
            raise ServiceError(404, "NOT_FOUND", f"Endpoint {name} not found.")
        return ep

    def put_endpoint(self, ep: Any, *, parent: str) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO endpoints(name, parent, created, body) VALUES (?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET body=excluded.body",
                (ep.name, parent, time.time(), protos.dumps(ep)),
            )

    def delete_endpoint(self, name: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM endpoints WHERE name=?", (name,))

    def endpoints_in(self, parent: str) -> list[Any]:
        with self.tx() as c:
            rows = c.execute(
                "SELECT body FROM endpoints WHERE parent=? ORDER BY created, name", (parent,)
            ).fetchall()
        return [protos.loads(r[0], Endpoint) for r in rows]

    def all_endpoints(self) -> list[Any]:
        with self.tx() as c:
            rows = c.execute("SELECT body FROM endpoints ORDER BY created").fetchall()
        return [protos.loads(r[0], Endpoint) for r in rows]

    # -- deployments (endpoint x deployed model) -----------------------------------

    def deployments(
        self,
        *,
        endpoint: str | None = None,
        model_base: str | None = None,
        version: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of the deployments table as dicts, filtered by the given keys."""
        sql = (
            "SELECT endpoint, deployed_model_id, model_base, version, state, operation, body "
            "FROM deployments"
        )
        where, args = [], []
        for col, val in (("endpoint", endpoint), ("model_base", model_base), ("version", version)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self.tx() as c:
            rows = c.execute(sql, args).fetchall()
        keys = (
            "endpoint",
            "deployed_model_id",
            "model_base",
            "version",
            "state",
            "operation",
            "body",
        )
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def put_deployment(
        self,
        *,
        endpoint: str,
        deployed_model_id: str,
        model_base: str,
        version: int,
        state: str,
        operation: str | None,
        body: bytes,
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO deployments VALUES (?,?,?,?,?,?,?)",
                (endpoint, deployed_model_id, model_base, version, state, operation, body),
            )

    def delete_deployment(self, endpoint: str, deployed_model_id: str) -> None:
        with self.tx() as c:
            c.execute(
                "DELETE FROM deployments WHERE endpoint=? AND deployed_model_id=?",
                (endpoint, deployed_model_id),
            )

    # -- operations -------------------------------------------------------------

    def insert_operation(
        self, op: Operation, *, resource: str, kind: str, state: str, done_at: float
    ) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO operations(name, resource, kind, state, done_at, body) VALUES "
                "(?,?,?,?,?,?)",
                (op.name, resource, kind, state, done_at, op.SerializeToString()),
            )

    def finish_operation(
        self, name: str, *, response: Any = None, error: status_pb2.Status | None = None
    ) -> None:
        """Record an operation's final result (shown once its done_at has passed)."""
        with self.tx() as c:
            row = c.execute("SELECT body FROM operations WHERE name=?", (name,)).fetchone()
            if row is None:
                return  # deleted by the client meanwhile: nothing to record
            op = protos.loads(row[0], Operation)
            op.done = True
            if error is not None:
                op.error.CopyFrom(error)
            elif response is not None:
                op.response.CopyFrom(response)
            c.execute(
                "UPDATE operations SET state='done', body=? WHERE name=?",
                (op.SerializeToString(), name),
            )

    def operation_row(self, name: str) -> dict[str, Any] | None:
        with self.tx() as c:
            row = c.execute(
                "SELECT name, resource, kind, state, done_at, cancel_requested, body "
                "FROM operations WHERE name=?",
                (name,),
            ).fetchone()
        if row is None:
            return None
        keys = ("name", "resource", "kind", "state", "done_at", "cancel_requested", "body")
        return dict(zip(keys, row, strict=True))

    def visible_operation(self, name: str) -> Operation | None:
        """The operation as a client may see it now (done only once done_at has passed)."""
        row = self.operation_row(name)
        return None if row is None else _visible(row)

    def operations_under(self, resource: str) -> list[Operation]:
        with self.tx() as c:
            rows = c.execute(
                "SELECT name, resource, kind, state, done_at, cancel_requested, body FROM "
                "operations "
                "WHERE resource=? OR resource LIKE ? ORDER BY seq",
                (resource, resource.rstrip("/") + "/%"),
            ).fetchall()
        keys = ("name", "resource", "kind", "state", "done_at", "cancel_requested", "body")
        return [_visible(dict(zip(keys, r, strict=True))) for r in rows]

    def request_cancel(self, name: str) -> None:
        with self.tx() as c:
            c.execute("UPDATE operations SET cancel_requested=1 WHERE name=?", (name,))

    def delete_operation(self, name: str) -> bool:
        with self.tx() as c:
            cur = c.execute("DELETE FROM operations WHERE name=?", (name,))
            return cur.rowcount > 0

    def running_operations(self) -> list[dict[str, Any]]:
        """Operations whose worker had not finished (after a crash: to resume or fail)."""
        with self.tx() as c:
            rows = c.execute(
                "SELECT name, resource, kind, state, done_at, cancel_requested, body "
                "FROM operations WHERE state='running' ORDER BY seq"
            ).fetchall()
        keys = ("name", "resource", "kind", "state", "done_at", "cancel_requested", "body")
        return [dict(zip(keys, r, strict=True)) for r in rows]


def _visible(row: dict[str, Any]) -> Operation:
    op = protos.loads(row["body"], Operation)
    if row["state"] != "done" or time.time() < row["done_at"]:
        op.done = False
        op.ClearField("result")
    return op


def pick_version(versions: list[Any], name: ModelName) -> Any | None:
    """The version a parsed name designates among a model's versions (None if none)."""
    if not versions:
        return None
    wanted = name.version or "default"
    for v in versions:
        if v.version_id == wanted:
            return v
    for v in versions:
        if wanted in v.version_aliases:
            return v
    return None
