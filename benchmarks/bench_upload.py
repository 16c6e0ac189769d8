"""Benchmark 1: artifact upload, deployer's content-addressed parallel upload vs the book's loop.

Owns: generating SavedModel-shaped trees of random bytes (so nothing compresses or dedups by
accident) and timing, round-robin against one emulator on loopback:
- on the issue-12 tree (500 files x 64 KB; --quick: 100), the sequential loop users write
  (`for f in files: bucket.blob(name).upload_from_filename(f)` with google-cloud-storage)
  against deployer's `upload_artifact` through the real GCS provider (8 workers, the default
  of DEPLOYER_UPLOAD_WORKERS), into a fresh bucket each time (a first upload: nothing to skip);
  and the same two again against a second emulator started with `--latency 30
  --latency-jitter 5 --seed 1` (every request waits 25-35 ms, as on a wide-area network),
  where the parallel uploader's win comes from overlapping those waits;
- on the round-1 tree (500 files x 64 KB + 2 x 32 MB variables shards; --quick: 100 + 2 x 8 MB),
  the row its >= 20x target was set on: deployer's first upload against its re-upload of the
  unchanged tree (the re-apply case: hash, one list call, send nothing), with the per-process
  hash memo cleared first so it costs what a new `deployer apply` process pays.

Must not: leave the trees behind (they live in the run's temp dir).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    MB,
    BenchResult,
    Skip,
    fmt_num,
    ratio_of,
    repeat_interleaved,
    spread_text,
    summarize,
)
from benchmarks.procfs import process_cpu_seconds

TITLE = "1. Artifact upload"


def make_tree(root: Path, *, small: int, small_size: int, big: int, big_size: int) -> Path:
    """A SavedModel-shaped tree: saved_model.pb, variables/ shards, many assets files."""
    (root / "variables").mkdir(parents=True)
    (root / "assets").mkdir()
    (root / "saved_model.pb").write_bytes(os.urandom(small_size))
    (root / "variables" / "variables.index").write_bytes(os.urandom(small_size))
    for i in range(big):
        (root / "variables" / f"variables.data-{i:05d}-of-{big:05d}").write_bytes(
            os.urandom(big_size)
        )
    for i in range(small - 2):  # the .pb and .index count among the small files
        (root / "assets" / f"part-{i:04d}.bin").write_bytes(os.urandom(small_size))
    return root


def _self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def files_of(root: Path) -> list[tuple[Path, str]]:
    return sorted((p, p.relative_to(root).as_posix()) for p in root.rglob("*") if p.is_file())


def real_provider(emu: Any) -> Any:
    """The storage half of deployer's Vertex provider (`GcsStore`), pointed at the emulator.

    `upload_artifact` only needs list_objects / copy_objects / upload_files, which the
    provider delegates to `GcsStore`: the code path `deployer apply` takes.
    """
    try:
        from deployer.providers.clients import ClientTarget, make_clients
        from deployer.providers.gcs import GcsStore
        from deployer.providers.retry import RetryPolicy
    except ImportError as exc:
        raise Skip(f"deployer.providers (gcs, clients) is not importable ({exc})") from exc
    target = ClientTarget("local", "bench-project", "us-central1", emu.url, emu.url)
    return GcsStore(make_clients(target).storage, RetryPolicy.from_env(), lambda n: None)


# The wide-area case: every request waits 30 +/- 5 ms (seeded) before the emulator handles it.
LATENCY_ARGS = ("--latency", "30", "--latency-jitter", "5", "--seed", "1")


def run(ctx: Any) -> BenchResult:
    res = BenchResult(name="upload", title=TITLE)
    try:
        from deployer.reconcile import upload as deployer_upload
    except ImportError as exc:
        raise Skip(f"deployer.reconcile.upload is not importable ({exc})") from exc
    from benchmarks.common import Emulator
    from benchmarks.emulator_setup import storage_client

    emu = ctx.emulator()
    small = 100 if ctx.quick else 500
    tree = make_tree(
        ctx.workdir / "upload-tree", small=small, small_size=64 * 1024, big=0, big_size=0
    )
    files = files_of(tree)
    total = sum(p.stat().st_size for p, _ in files)
    # The round-1 tree: the re-upload target (>= 20x the full upload) was set on it; the two big
    # shards are most of its bytes, so the full upload is long against the one list call.
    r1_tree = make_tree(
        ctx.workdir / "upload-tree-r1",
        small=small,
        small_size=64 * 1024,
        big=2,
        big_size=(8 if ctx.quick else 32) * MB,
    )
    r1_files = files_of(r1_tree)
    r1_total = sum(p.stat().st_size for p, _ in r1_files)
    repeat = ctx.repeats(full=5, quick=2)

    # deployer remembers tree hashes across runs in $DEPLOYER_HOME/cache (keyed by path, size,
    # mtime): a private home lets "first" start cold and "re-upload" find what "first" wrote.
    home = ctx.workdir / "deployer-home"
    os.environ["DEPLOYER_HOME"] = str(home)

    def ways(target: Any, tag: str) -> tuple[dict[str, Any], Any, list[Any]]:
        """The timed alternatives against one emulator, and their untimed set-up."""
        client = storage_client(target)
        provider = real_provider(target)
        counter = {"sequential loop": 0, "deployer upload (first)": 0, "round-1 first": 0}
        buckets: dict[str, str] = {}
        reports: list[Any] = []

        def fresh_bucket(kind: str) -> None:
            """Untimed: each first upload goes to an empty bucket with no remembered hashes."""
            deployer_upload._cache.clear()  # a new process has an empty in-memory memo
            if kind not in counter:
                return
            shutil.rmtree(home / "cache", ignore_errors=True)
            counter[kind] += 1
            short = {"sequential loop": "seq", "deployer upload (first)": "dep"}.get(kind, "r1")
            name = f"bench-up{tag}-{short}-{counter[kind]:03d}"
            client.create_bucket(name)
            buckets[kind] = name

        def sequential() -> None:
            bucket = client.bucket(buckets["sequential loop"])
            for path, rel in files:
                bucket.blob(f"model/{rel}").upload_from_filename(str(path))

        def deployer(bucket: str, root: Path = tree) -> Any:
            # What `deployer apply` does for one version: hash (plan), then upload under it.
            digest = deployer_upload.hash_tree(root)
            return deployer_upload.upload_artifact(
                provider, bucket, f"artifacts/bench/model/{digest.content_hash}/", root
            )

        fns = {
            "sequential loop": sequential,
            "deployer upload (first)": lambda: deployer(buckets["deployer upload (first)"]),
            "round-1 first": lambda: deployer(buckets["round-1 first"], r1_tree),
            # Into the bucket the round-1 first upload just filled: everything is there.
            "deployer re-upload (unchanged)": lambda: reports.append(
                deployer(buckets["round-1 first"], r1_tree)
            ),
        }
        return fns, fresh_bucket, reports

    # CPU seconds spent by the emulator and by this (client) process per call: with 2 cores,
    # (emulator + client CPU) / cores bounds how fast any parallel upload can be here.
    cpu: dict[str, list[tuple[float, float]]] = {}

    def with_cpu(name: str, pid: int, fn: Any) -> Any:
        def call() -> None:
            e0, c0 = process_cpu_seconds(pid), _self_cpu()
            fn()
            cpu.setdefault(name, []).append((process_cpu_seconds(pid) - e0, _self_cpu() - c0))

        return call

    fns, fresh, reports = ways(emu, "")
    samples = repeat_interleaved(
        {
            "sequential loop": with_cpu("seq", emu.pid, fns["sequential loop"]),
            "deployer upload (first)": with_cpu("first", emu.pid, fns["deployer upload (first)"]),
        },
        repeat,
        warmup=1,
        before_each=fresh,
    )
    seq = summarize(samples["sequential loop"])
    first = summarize(samples["deployer upload (first)"])
    # The round-1 row: a first upload of the round-1 tree, then its unchanged re-upload.
    r1_samples = repeat_interleaved(
        {name: fns[name] for name in ("round-1 first", "deployer re-upload (unchanged)")},
        repeat,
        warmup=1,
        before_each=fresh,
    )
    r1_first = summarize(r1_samples["round-1 first"])
    again = summarize(r1_samples["deployer re-upload (unchanged)"])
    sent = {r.bytes_uploaded for r in reports}

    # The same first upload against an emulator 30 ms away (the sequential loop then takes
    # ~16 s for 500 files, so fewer repeats).
    wan = Emulator(ctx.workdir, extra_args=LATENCY_ARGS).start()
    try:
        wan_fns, wan_fresh, _ = ways(wan, "-wan")
        wan_samples = repeat_interleaved(
            {
                "sequential loop": with_cpu("wan-seq", wan.pid, wan_fns["sequential loop"]),
                "deployer upload (first)": with_cpu(
                    "wan-first", wan.pid, wan_fns["deployer upload (first)"]
                ),
            },
            ctx.repeats(full=3, quick=1),
            warmup=1,
            before_each=wan_fresh,
        )
    finally:
        wan.stop()
    wan_seq = summarize(wan_samples["sequential loop"])
    wan_first = summarize(wan_samples["deployer upload (first)"])

    def cpu_text(name: str) -> str:
        emu_s = summarize([e for e, _ in cpu[name]]).median
        cli_s = summarize([c for _, c in cpu[name]]).median
        return f"; CPU emulator {emu_s:.2f} s + client {cli_s:.2f} s"

    res.add(
        "sequential loop (upload_from_filename)",
        seq.median,
        "s",
        spread=spread_text(seq, unit="s")
        + f"; {len(files) / seq.median:.0f} files/s"
        + cpu_text("seq"),
    )
    r1 = ratio_of(seq, first)
    res.add(
        "deployer upload (first, 8 workers)",
        first.median,
        "s",
        spread=spread_text(first, unit="s")
        + f"; {len(files) / first.median:.0f} files/s"
        + cpu_text("first"),
        ratio=r1,
        baseline="sequential loop",
        target=">= 2x",
        met=r1 >= 2,
    )
    res.add(
        "deployer upload (first, round-1 tree)",
        r1_first.median,
        "s",
        spread=spread_text(r1_first, unit="s")
        + f"; {len(r1_files)} files, {r1_total / MB:.0f} MB; {r1_total / MB / r1_first.median:.0f}"
        " MB/s",
    )
    r2 = ratio_of(r1_first, again)
    res.add(
        "deployer re-upload (unchanged)",
        again.median,
        "s",
        spread=spread_text(again, unit="s")
        + f"; round-1 tree; sent {', '.join(fmt_num(b) for b in sent)} B",
        ratio=r2,
        baseline="full upload",
        target=">= 20x",
        met=r2 >= 20 and sent == {0},
    )
    res.add(
        "at 30 ms latency: sequential loop",
        wan_seq.median,
        "s",
        spread=spread_text(wan_seq, unit="s")
        + f"; {len(files) / wan_seq.median:.0f} files/s"
        + cpu_text("wan-seq"),
    )
    r3 = ratio_of(wan_seq, wan_first)
    res.add(
        "at 30 ms latency: deployer upload (first, 8 workers)",
        wan_first.median,
        "s",
        spread=spread_text(wan_first, unit="s")
        + f"; {len(files) / wan_first.median:.0f} files/s"
        + cpu_text("wan-first"),
        ratio=r3,
        baseline="sequential loop at 30 ms",
        target=">= 6x",
        met=r3 >= 6,
    )

    # Where the time goes: hashing the tree happens before any byte is sent (the prefix is the
    # hash), and it is all an unchanged re-upload does besides one list call.
    hashes = []
    os.environ["DEPLOYER_NO_HASH_CACHE"] = "1"
    try:
        for _ in range(3):
            deployer_upload._cache.clear()
            t0 = time.perf_counter()
            deployer_upload.hash_tree(tree)
            hashes.append(time.perf_counter() - t0)
    finally:
        del os.environ["DEPLOYER_NO_HASH_CACHE"]
        os.environ.pop("DEPLOYER_HOME", None)
    h = summarize(hashes)
    res.add(
        "  of which: hashing the tree (cold)",
        h.median,
        "s",
        spread=spread_text(h, unit="s") + f"; {total / MB / h.median:.0f} MB/s; "
        f"{h.median / first.median:.0%} of the first upload",
    )
    emu_first = summarize([e for e, _ in cpu["first"]]).median
    cli_first = summarize([c for _, c in cpu["first"]]).median
    seq_emu = summarize([e for e, _ in cpu["seq"]]).median
    seq_cli = summarize([c for _, c in cpu["seq"]]).median
    res.notes.append(
        f"What bounds the first upload on loopback: CPU. Per object the emulator spends "
        f"{emu_first / len(files) * 1000:.2f} ms (in the parallel run; "
        f"{seq_emu / len(files) * 1000:.2f} ms in the sequential one, which gets no group "
        f"commits) and the client {cli_first / len(files) * 1000:.2f} ms (deployer: hashing, "
        f"then google-cloud-storage's request; the loop {seq_cli / len(files) * 1000:.2f} ms). "
        "The sequential loop pays client, emulator and one disk sync per object one after the "
        "other; 8 workers overlap them on the 2 cores and share syncs, so the parallel upload "
        f"cannot beat max(client, emulator, (client + emulator) / 2) = "
        f"{max(cli_first, emu_first, (cli_first + emu_first) / 2):.2f} s here. At 30 ms each "
        "request waits on the network instead, and 8 workers overlap 8 waits: <= 8x."
    )
    res.notes.append(
        f"Trees: {len(files)} files, {total / MB:.0f} MB for the sequential loop and the first "
        f"uploads; the round-1 tree ({len(r1_files)} files, {r1_total / MB:.0f} MB: as many "
        "64 KB files plus two large variables shards) for the re-upload row and its full-upload "
        f"baseline. {repeat} interleaved repeats after 1 warmup on loopback, "
        f"{ctx.repeats(full=3, quick=1)} at 30 ms (`deployer local run {' '.join(LATENCY_ARGS)}`);"
        " first uploads go to a fresh bucket with deployer's hash cache ($DEPLOYER_HOME/cache) "
        "emptied, so they hash every byte; re-uploads start with an empty in-memory memo (as a "
        "new `deployer apply` process does) and find the on-disk cache the first upload of the "
        "round-1 tree, just before, wrote."
    )
    return res
