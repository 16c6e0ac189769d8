"""Replica processes of the serving runtime, and the artifact cache they load from.

Owns: fetching a model's artifact tree from the emulated bucket into a cache keyed by
its content (`<data_dir>/vertex/artifacts/<sha256>/`), starting replica processes for
the Model's container (`serving_kinds` decides: the TF Serving replica
`python -m deployer.serving.replica`, a pre-built framework replica
`python -m deployer.serving.prebuilt`, or a custom container under Docker/Podman,
which reads its artifacts through the emulator's Cloud Storage), waiting until the
health route answers, keep-alive HTTP connection pools per replica (blocking, for batch
jobs and health checks; async on the emulator's event loop, for the predict hot path),
and stopping them (SIGTERM, then SIGKILL after a grace period); at start, removing
containers a killed emulator left behind (by label).

Interface for other emulator surfaces (batch jobs):

    manager = ReplicaManager(ctx)
    replica = manager.start("gs://bucket/model/", name="job-123",
                            container=model.container_spec)      # blocks until warm
    status, body = replica.post_predict(b'{"instances": [[...]]}')   # {"predictions": ...}
    body = replica.predict(b'{"instances": [...]}')  # same, raises ReplicaError on non-200
    replica.stop()

Must not: import TensorFlow, a framework or deployer.serving (replicas run in their
own processes), or know endpoints and traffic.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from deployer import settings
from deployer.emulator.context import EmulatorContext, project_number
from deployer.emulator.http import ServiceError
from deployer.emulator.objects import parse_gs_uri
from deployer.emulator.paths import contained
from deployer.emulator.vertex import containers, serving_kinds
from deployer.emulator.vertex.containers import Placement
from deployer.httpserve import AsyncPool, ClientError

log = logging.getLogger("deployer.emulator.vertex")

STOP_GRACE_S = 10.0
# deployer.serving.replica exits with this status when its port cannot be bound.
EXIT_PORT_TAKEN = 2
PORT_ATTEMPTS = 3
# deployer.serving.replica prints its cause on a line of its own with this prefix before exiting.
ERROR_PREFIX = "error: "
_JSON_TYPE = {"Content-Type": "application/json"}
# How often a starting replica's health route is asked: its ready moment is seen this late at
# most (was 0.2 s: a tenth of a second of every deploy's ready time, on average). A health
# check costs the replica a fraction of a millisecond.
READY_POLL_S = 0.05


class _PortTaken(Exception):
    """The replica could not bind the port it was given."""


class ReplicaError(Exception):
    """A replica answered non-200, could not be reached, or failed to start."""

    def __init__(self, message: str, *, http_status: int = 503, body: bytes = b"") -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status  # the replica's status (503 if unreachable)
        self.body = body  # the replica's response body, if any


class Replica:
    """One running replica process serving one SavedModel under `model_name`."""

    def __init__(
        self,
        *,
        name: str,
        model_name: str,
        port: int,
        process: subprocess.Popen[bytes],
        log_path: Path,
        predict_path: str = "",
        health_path: str = "",
        kind: str = "tensorflow",
    ) -> None:
        self.name = name  # owner-chosen label, e.g. "<endpoint id>/<deployed model id>#0"
        self.model_name = model_name  # the name the replica serves under /v1/models/NAME
        self.port = port
        self.process = process
        self.log_path = log_path  # stdout+stderr of the process
        self.url = f"http://127.0.0.1:{port}"
        # TF Serving's routes unless the replica serves Vertex's (pre-built framework, custom).
        self.predict_path = predict_path or f"/v1/models/{model_name}:predict"
        self.health_path = health_path or f"/v1/models/{model_name}"
        self.kind = kind  # serving_kinds.Kind value: tensorflow | prebuilt | custom
        self._pool: list[http.client.HTTPConnection] = []
        self._pool_lock = threading.Lock()
        self._stopped = False
        # The predict hot path's connections, on the emulator's event loop (made there).
        self._apool: AsyncPool | None = None

    # -- HTTP ------------------------------------------------------------------------

    def _conn(self) -> http.client.HTTPConnection:
        with self._pool_lock:
            if self._pool:
                return self._pool.pop()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        conn.connect()
        # Small requests and answers: without TCP_NODELAY each costs a delayed-ACK wait.
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._pool_lock:
            if not self._stopped and len(self._pool) < 64:
                self._pool.append(conn)
                return
        conn.close()

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """One HTTP exchange over a pooled keep-alive connection (retried once on a stale one)."""
        headers = _JSON_TYPE if body is not None else {}
        for attempt in (0, 1):
            try:
                conn = self._conn()
            except OSError as exc:
                raise ReplicaError(f"replica {self.name} is unreachable: {exc}") from exc
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                if attempt == 0:
                    continue  # a pooled connection the replica closed meanwhile
                raise ReplicaError(f"replica {self.name} failed: {exc}") from exc
            if resp.will_close:
                conn.close()
            else:
                self._release(conn)
            return resp.status, data
        raise AssertionError("unreachable")

    def post_predict(self, body: bytes) -> tuple[int, bytes]:
        """POST a TF Serving REST predict body; (status, response body)."""
        return self.request("POST", self.predict_path, body)

    async def post_predict_async(self, body: bytes) -> tuple[int, bytes]:
        """post_predict on the event loop, over the loop's own keep-alive connections."""
        pool = self._apool
        if pool is None:
            if self._stopped:
                raise ReplicaError(f"replica {self.name} is stopped")
            pool = self._apool = AsyncPool("127.0.0.1", self.port)
        try:
            return await pool.request("POST", self.predict_path, body, _JSON_TYPE)
        except ClientError as exc:
            raise ReplicaError(f"replica {self.name} failed: {exc}") from exc

    def predict(self, body: bytes) -> bytes:
        """Like post_predict, but raises ReplicaError (with the replica's message) on non-200."""
        status, data = self.post_predict(body)
        if status != 200:
            raise ReplicaError(error_message(data), http_status=status, body=data)
        return data

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (the replica drains in-flight requests), SIGKILL after a grace period."""
        with self._pool_lock:
            self._stopped = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()
        if self._apool is not None:
            self._apool.close_threadsafe()
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            except ProcessLookupError:
                pass


def error_message(body: bytes) -> str:
    """The `error` text of a TF Serving error body, else the body itself (truncated)."""
    try:
        obj = json.loads(body)
        if isinstance(obj, dict) and "error" in obj:
            err = obj["error"]
            return err if isinstance(err, str) else json.dumps(err)
    except ValueError:
        pass
    return body[:2000].decode("utf-8", "replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ReplicaManager:
    """Starts and tracks replica processes; stops them all at emulator shutdown."""

    def __init__(self, ctx: EmulatorContext) -> None:
        self.ctx = ctx
        self.root = ctx.data_dir / "vertex"
        self.cache = self.root / "artifacts"
        self.logs = self.root / "replica-logs"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        for stale in self.cache.glob(".tmp-*"):  # half-fetched trees of a killed emulator
            shutil.rmtree(stale, ignore_errors=True)
        # Custom containers carry this label; ones a killed run left are removed (a runtime
        # call of a second or so: off the start-up path).
        self.owner = containers.owner_label(str(ctx.data_dir))
        threading.Thread(
            target=containers.sweep, args=(self.owner,), daemon=True, name="container-sweep"
        ).start()
        self._live: set[Replica] = set()
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._closed = False
        ctx.on_shutdown(self.stop_all)

    @property
    def closed(self) -> bool:
        """True once stop_all ran (the emulator is shutting down)."""
        return self._closed

    # -- artifacts ------------------------------------------------------------------

    def fetch_artifact(self, artifact_uri: str) -> Path:
        """A local directory holding the objects under `artifact_uri`, cached by content.

        The cache key hashes (relative name, md5, size) of every object, so an
        unchanged tree is fetched once and a changed one never reuses stale files.
        """
        bucket, prefix = parse_gs_uri(artifact_uri)
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        if not self.ctx.objects.bucket_exists(bucket):
            raise ServiceError(
                400, "FAILED_PRECONDITION", f"Bucket of artifact {artifact_uri} does not exist."
            )
        metas = [m for m in self.ctx.objects.list(bucket, prefix) if not m.name.endswith("/")]
        if not metas:
            raise ServiceError(
                400, "FAILED_PRECONDITION", f"No objects under artifact {artifact_uri}."
            )
        digest = hashlib.sha256()
        for m in metas:
            digest.update(f"{m.name[len(prefix) :]}\0{m.md5_hash}\0{m.size}\n".encode())
        target = self.cache / digest.hexdigest()
        with self._fetch_lock:
            if target.is_dir():
                return target
            tmp = (
                self.cache / f".tmp-{digest.hexdigest()[:16]}-{os.getpid()}-{threading.get_ident()}"
            )
            # Object names become paths here: every one is checked before anything is written,
            # so a hostile name fails the whole fetch and leaves nothing behind.
            places = [
                (
                    m,
                    contained(
                        tmp,
                        m.name[len(prefix) :],
                        what=f"Object gs://{bucket}/{m.name} of artifact {artifact_uri}",
                    ),
                )
                for m in metas
            ]
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                for m, dest in places:
                    self._place(bucket, m.name, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            os.replace(tmp, target)  # atomic publish: a crash never leaves a half tree
        return target

    def _place(self, bucket: str, name: str, dest: Path) -> None:
        """Put one object's bytes at `dest` (a path `contained` under the fetch's temp dir)."""
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = self.ctx.objects.local_path(bucket, name)
            try:
                # Blob files are immutable (an overwrite writes a new one), so a
                # hard link is a safe zero-copy snapshot.
                os.link(src, dest)
            except OSError:
                with self.ctx.objects.open(bucket, name) as fh, open(dest, "wb") as out:
                    shutil.copyfileobj(fh, out, 1 << 20)
        except OSError as exc:
            # E.g. both "a" and "a/b" exist: a file where a directory must go.
            raise ServiceError(
                400,
                "FAILED_PRECONDITION",
                f"Object gs://{bucket}/{name} cannot be copied to the local model directory: "
                f"{exc.strerror or exc}.",
            ) from exc

    # -- processes --------------------------------------------------------------------

    def start(
        self,
        artifact_uri: str,
        *,
        name: str,
        model_name: str = "model",
        container: Any = None,
        endpoint: str = "",
        timeout: float | None = None,
        cancelled: threading.Event | None = None,
    ) -> Replica:
        """Fetch the artifact, start one replica, and wait until it serves the model.

        `container` is the Model's containerSpec (None: a pre-built TensorFlow image): it
        decides what runs (`serving_kinds`); `endpoint` is the endpoint's resource name, for a
        container's AIP_* variables. Raises ReplicaError (with the tail of the replica's log)
        if it exits or is not ready within `timeout` (None: $DEPLOYER_REPLICA_READY_TIMEOUT);
        the process is stopped in that case.
        """
        serving = (
            serving_kinds.classify(container)
            if container is not None
            else serving_kinds.Serving(serving_kinds.Kind.TENSORFLOW, "", gpu=False)
        )
        serving_kinds.check_deployable(serving)
        # A custom container reads its artifacts through Cloud Storage itself (AIP_STORAGE_URI).
        model_dir = (
            None if serving.kind is serving_kinds.Kind.CUSTOM else self.fetch_artifact(artifact_uri)
        )
        parts = endpoint.split("/")
        where = Placement(
            endpoint_id=parts[-1] if endpoint else f"batch-{name}",
            deployed_model_id=model_name,
            project_number=project_number(parts[1]) if len(parts) > 1 else "0",
            storage_uri=artifact_uri,
            emulator_url=self.ctx.reader_url,
            port=0,
        )
        for attempt in range(PORT_ATTEMPTS):
            try:
                return self._start_once(
                    serving,
                    model_dir,
                    where,
                    name=name,
                    model_name=model_name,
                    timeout=settings.REPLICA_READY_TIMEOUT.get() if timeout is None else timeout,
                    cancelled=cancelled,
                )
            except _PortTaken:
                # Another process took the port between our probe and the replica's bind
                # (the machine is shared): try another one.
                log.info(
                    "replica %s: port taken, retrying (%d/%d)", name, attempt + 1, PORT_ATTEMPTS
                )
        raise ReplicaError(f"replica {name}: no free port after {PORT_ATTEMPTS} attempts")

    def _start_once(
        self,
        serving: serving_kinds.Serving,
        model_dir: Path | None,
        where: Placement,
        *,
        name: str,
        model_name: str,
        timeout: float,
        cancelled: threading.Event | None,
    ) -> Replica:
        if self._closed:
            raise ReplicaError("the emulator is shutting down")
        port = _free_port()
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        log_path = contained(self.logs, f"{safe}.log", what=f"The log of replica {name!r}")
        launch = serving_kinds.launch(
            serving,
            model_dir=model_dir,
            model_name=model_name,
            port=port,
            placement=dataclasses.replace(where, port=port),
            replica_name=name,
            owner=self.owner,
        )
        with open(log_path, "ab") as log_file:
            proc = subprocess.Popen(
                launch.command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # a Ctrl-C to the emulator's group must not kill replicas mid-drain
                start_new_session=True,
            )
        replica = Replica(
            name=name,
            model_name=model_name,
            port=port,
            process=proc,
            log_path=log_path,
            predict_path=launch.predict_path,
            health_path=launch.health_path,
            kind=serving.kind.value,
        )
        with self._lock:
            self._live.add(replica)
        log.info(
            "replica %s starting on port %d (pid %d, %s %s)",
            name,
            port,
            proc.pid,
            serving.kind.value,
            model_dir or serving.image,
        )
        try:
            self._wait_ready(replica, launch.ready_marker, timeout, cancelled)
        except BaseException:
            self.stop(replica)
            if replica.process.returncode == EXIT_PORT_TAKEN:
                raise _PortTaken from None
            raise
        log.info("replica %s ready on port %d", name, port)
        return replica

    def _wait_ready(
        self,
        replica: Replica,
        marker: bytes,
        timeout: float,
        cancelled: threading.Event | None,
    ) -> None:
        deadline = time.monotonic() + timeout
        path = replica.health_path
        while True:
            if replica.process.poll() is not None:
                raise ReplicaError(
                    f"replica {replica.name} exited with status {replica.process.returncode} while "
                    f"loading the model: {self._failure_cause(replica)}",
                    http_status=500,
                )
            if cancelled is not None and cancelled.is_set():
                raise ReplicaError(f"replica {replica.name}: start cancelled", http_status=499)
            try:
                status, body = replica.request("GET", path)
                if status == 200 and marker in body:
                    return
            except ReplicaError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise ReplicaError(
                    f"replica {replica.name} not ready after {timeout:.0f}s: "
                    f"{self._failure_cause(replica)}",
                    http_status=504,
                )
            time.sleep(READY_POLL_S)

    @staticmethod
    def _failure_cause(replica: Replica, limit: int = 1500) -> str:
        """Why a replica did not come up, for the operation's error message: the last
        `error: ...` line the replica printed (its own cause, see deployer.serving.replica)
        and where the full log is; the log's tail when it printed none (a crash, a hang)."""
        try:
            with open(replica.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 64 * 1024))
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        errors = [line for line in text.splitlines() if line.startswith(ERROR_PREFIX)]
        if errors:
            return f"{errors[-1][len(ERROR_PREFIX) :].strip()} (full log: {replica.log_path})"
        tail = text[-limit:].strip().replace("\n", " | ")
        return f"{tail or '(empty log)'} (log: {replica.log_path})"

    def stop(self, replica: Replica) -> None:
        """Stop one replica; it stays tracked until it has exited, so stop_all can wait for it."""
        try:
            replica.stop()
        finally:
            with self._lock:
                self._live.discard(replica)

    def stop_all(self) -> None:
        """Stop every replica (emulator shutdown): SIGTERM all first, then wait, so drains
        overlap."""
        with self._lock:
            self._closed = True
            live, self._live = list(self._live), set()
        for r in live:
            if r.process.poll() is None:
                try:
                    r.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for r in live:
            r.stop()
        if live:
            log.info("stopped %d replica process(es)", len(live))
