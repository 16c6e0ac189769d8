"""Two hostile loads from issue 15, measured against an emulator of any tree (before/after).

1. Memory: one 250 MB JSON body to a JSON route (declared length, and chunked), and to the
   resumable-upload initiation (a streaming route that reads its JSON whole): the emulator's
   peak RSS (VmHWM) before and after each, and the answer it gave.
2. Burst: 2,000 connections each make a request and stay idle, all close, and 1,000 uploads
   connect at once right after: how many of the 3,000 requests were reset (or refused)
   before an answer. Also reports the listen backlog the kernel really gives (the server asks
   for `BACKLOG`, net.core.somaxconn caps it) as `ss` shows it.

    python -m benchmarks.hostile_load [--tree /path/to/other/worktree] [--skip-memory]

Loopback only. Must not: leave its emulator running, or run in a loop (one run takes about a
minute on two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIG = 250 * 1000 * 1000
IDLE = 2000
BURST = 1000
IDLE_REQUESTS = True  # each idle connection first makes one request (--silent-idle: none)


def _vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


class Emulator:
    """`python -m deployer local run` of `tree` on a free port (the port it reports)."""

    def __init__(self, tree: Path) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hostile-load-"))
        env = {**os.environ, "PYTHONPATH": str(tree)}
        env.pop("DEPLOYER_EMULATOR_TOKEN", None)
        self.err = open(self.tmp / "stderr.log", "wb")  # closed in stop()
        cmd = [sys.executable, "-m", "deployer", "local", "run", "--port", "0"]
        cmd += ["--data-dir", str(self.tmp / "data"), "--log-level", "WARNING"]
        self.proc = subprocess.Popen(
            cmd,
            cwd=tree,
            env=env,
            stdout=self.err,
            stderr=self.err,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(rb"listening on http://127\.0\.0\.1:(\d+)", self.log())
            if match:
                self.port = int(match.group(1))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise SystemExit(f"emulator did not start: {self.log()[-2000:].decode(errors='replace')}")

    def log(self) -> bytes:
        return (self.tmp / "stderr.log").read_bytes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.err.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _send_big(port: int, path: str, *, chunked: bool) -> str:
    """POST a ~250 MB JSON body; the status line, or what happened to the connection."""
    head = b'{"name": "big-body", "labels": {"x": "'
    tail = b'"}}'
    filler = BIG - len(head) - len(tail)

    def chunks() -> Iterator[bytes]:
        yield head
        block = b"x" * (1 << 20)
        left = filler
        while left > 0:
            yield block[: min(left, len(block))]
            left -= len(block)
        yield tail

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    headers = {"Content-Type": "application/json", "Host": f"127.0.0.1:{port}"}
    try:
        if chunked:
            conn.request("POST", path, body=chunks(), headers=headers, encode_chunked=True)
        else:
            headers["Content-Length"] = str(BIG)
            conn.putrequest("POST", path, skip_host=True)
            for key, value in headers.items():
                conn.putheader(key, value)
            conn.endheaders()
            for piece in chunks():
                conn.send(piece)
        resp = conn.getresponse()
        return f"{resp.status} {resp.read()[:80]!r}"
    except (BrokenPipeError, ConnectionResetError) as exc:
        # The server answered early and closed: read what it said.
        with contextlib.suppress(Exception):
            resp = conn.getresponse()
            return f"{resp.status} (answered before the body was sent; {type(exc).__name__})"
        return f"connection {type(exc).__name__}"
    finally:
        conn.close()


def memory(tree: Path) -> None:
    for label, path, chunked in (
        ("bucket insert, Content-Length", "/storage/v1/b?project=p", False),
        ("bucket insert, chunked", "/storage/v1/b?project=p", True),
        (
            "resumable upload start, chunked",
            "/upload/storage/v1/b/big/o?uploadType=resumable",
            True,
        ),
    ):
        emu = Emulator(tree)  # a fresh one each: VmHWM is the peak of a process's lifetime
        try:
            port = emu.port
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/storage/v1/b?project=p", body=b'{"name": "big"}')
            conn.getresponse().read()
            conn.close()
            before = _vm(emu.proc.pid, "VmHWM")
            started = time.monotonic()
            outcome = _send_big(port, path, chunked=chunked)
            took = time.monotonic() - started
            time.sleep(0.3)
            after = _vm(emu.proc.pid, "VmHWM")
            print(
                f"memory  {label:34s} peak RSS {before / 2**20:7.0f} -> {after / 2**20:7.0f} MiB"
                f" (+{(after - before) / 2**20:.0f} MiB) in {took:5.1f} s: {outcome}"
            )
        finally:
            emu.stop()


async def _request(port: int, raw: bytes) -> str:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return "refused"
    except OSError as exc:
        return f"connect {type(exc).__name__}"
    try:
        writer.write(raw)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 120)
        if not line:
            return "closed"
        return line.split()[1].decode()
    except ConnectionResetError:
        return "reset"
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _burst(port: int) -> tuple[Counter[str], Counter[str]]:
    host = f"127.0.0.1:{port}".encode()
    # Each idle connection makes one request (so the server has accepted and served it),
    # then stays open and quiet, like a pool of keep-alive clients.
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    idle_status: Counter[str] = Counter()
    get = b"GET /storage/v1/b?project=p HTTP/1.1\r\nHost: " + host + b"\r\n\r\n"

    async def open_idle() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            status = "connected"
            if IDLE_REQUESTS:
                writer.write(get)
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 120)
                status = line.split()[1].decode() if line else "closed"
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass
            idle_status[status] += 1
            idle.append((reader, writer))
        except ConnectionResetError:
            idle_status["reset"] += 1
        except OSError as exc:
            idle_status[type(exc).__name__] += 1

    # Open them in waves of 500 (the client's own connect rate is not what is measured).
    for start in range(0, IDLE, 500):
        await asyncio.gather(*(open_idle() for _ in range(min(500, IDLE - start))))
    await asyncio.sleep(1.0)
    for _, writer in idle:
        writer.close()
    body = b"x" * 1024
    uploads = [
        (
            f"POST /upload/storage/v1/b/burst/o?uploadType=media&name=o{i} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        + body
        for i in range(BURST)
    ]
    results = await asyncio.gather(*(_request(port, raw) for raw in uploads))
    return idle_status, Counter(results)


def _listen_backlog(port: int) -> str:
    try:
        out = subprocess.run(
            ["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no ss)"
    return out[2] if len(out) > 2 else "unknown"


def burst(tree: Path) -> None:
    somaxconn = Path("/proc/sys/net/core/somaxconn").read_text().strip()
    emu = Emulator(tree)
    try:
        port = emu.port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/storage/v1/b?project=p", body=b'{"name": "burst"}')
        assert conn.getresponse().status == 200
        conn.close()
        print(
            f"burst   net.core.somaxconn={somaxconn}; the listening socket's backlog "
            f"(ss Send-Q): {_listen_backlog(port)}"
        )
        started = time.monotonic()
        idle_status, results = asyncio.run(_burst(port))
        took = time.monotonic() - started
        ok = ("200", "connected")
        lost = sum(n for status, n in (idle_status + results).items() if status not in ok)
        print(f"burst   {IDLE} idle connections: {dict(idle_status)}")
        print(f"burst   {BURST} uploads right after they closed: {dict(results)} in {took:.1f} s")
        total = BURST + (IDLE if IDLE_REQUESTS else 0)
        print(f"burst   not answered 200: {lost} of {total} requests")
    finally:
        emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="source tree to run")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-burst", action="store_true")
    parser.add_argument(
        "--silent-idle", action="store_true", help="idle connections send nothing before closing"
    )
    args = parser.parse_args()
    global IDLE_REQUESTS
    IDLE_REQUESTS = not args.silent_idle
    print(f"tree {args.tree.resolve()}")
    if not args.skip_memory:
        memory(args.tree.resolve())
    if not args.skip_burst:
        burst(args.tree.resolve())


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        socket.setdefaulttimeout(None)
        main()
