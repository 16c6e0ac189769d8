"""Smoke benchmark of the emulator's GCS uploads: parallel (8 workers) vs sequential, 500 x 64 KB.

Starts its own emulator (free port, temp data dir), then uploads the same tree
with google-cloud-storage three ways, each repeated, to fresh prefixes: the
book's sequential loop (`blob.upload_from_filename` per file), and
`transfer_manager.upload_many_from_filenames` with 8 threads and with 8
processes. Prints median / min / max seconds and the speed-up over sequential.

With `--latency MS` the emulator delays every request that long (`deployer local run
--latency`, jittered by `--jitter MS`, seeded), as a wide-area network would.

Run: `python -m benchmarks.upload_smoke [--files 500] [--size 65536] [--repeats 3]
[--latency 30 --jitter 5]`.
Must not: touch anything but loopback and its temp dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.emulator import EmulatorProcess


def _client(url: str):  # type: ignore[no-untyped-def]
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="bench",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=url),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size", type=int, default=64 * 1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.0, help="ms added per request")
    parser.add_argument("--jitter", type=float, default=0.0, help="+/- ms around --latency")
    args = parser.parse_args()
    latency_args = ["--latency", str(args.latency), "--latency-jitter", str(args.jitter)]

    from google.cloud.storage import transfer_manager

    with tempfile.TemporaryDirectory(prefix="upload-smoke-") as tmp:
        src = Path(tmp) / "tree"
        names = []
        for i in range(args.files):
            name = f"variables/shard-{i:05d}.bin"
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            (src / name).write_bytes(os.urandom(args.size))
            names.append(name)
        with EmulatorProcess(
            data_dir=Path(tmp) / "data", extra_args=[*latency_args, "--seed", "1"]
        ) as emu:
            client = _client(emu.url)
            bucket = client.create_bucket("upload-smoke")

            def sequential(prefix: str) -> None:
                for name in names:
                    bucket.blob(prefix + name).upload_from_filename(str(src / name))

            def parallel(worker_type: str) -> Callable[[str], None]:
                def run(prefix: str) -> None:
                    results = transfer_manager.upload_many_from_filenames(
                        bucket,
                        names,
                        source_directory=str(src),
                        blob_name_prefix=prefix,
                        worker_type=worker_type,
                        max_workers=args.workers,
                        raise_exception=True,
                    )
                    assert all(r is None for r in results)

                return run

            ways = {
                "sequential loop": sequential,
                f"transfer_manager {args.workers} threads": parallel(transfer_manager.THREAD),
                f"transfer_manager {args.workers} processes": parallel(transfer_manager.PROCESS),
            }
            times: dict[str, list[float]] = {k: [] for k in ways}
            for rep in range(args.repeats):
                for label, fn in ways.items():  # interleaved so machine noise hits all alike
                    prefix = f"r{rep}/{label.split()[0]}-{label.split()[-1]}/"
                    started = time.perf_counter()
                    fn(prefix)
                    times[label].append(time.perf_counter() - started)
                    listed = sum(1 for _ in client.list_blobs("upload-smoke", prefix=prefix))
                    assert listed == args.files, (label, listed)
            seq = statistics.median(times["sequential loop"])
            print(
                f"{args.files} files x {args.size // 1024} KB, {args.repeats} repeats, "
                f"latency {args.latency:g} +/- {args.jitter:g} ms, cores={os.cpu_count()}"
            )
            print(
                f"{'way':34} {'median s':>9} {'min s':>7} {'max s':>7} {'files/s':>8} {'vs seq':>7}"
            )
            for label, ts in times.items():
                med = statistics.median(ts)
                print(
                    f"{label:34} {med:9.2f} {min(ts):7.2f} {max(ts):7.2f} {args.files / med:8.0f} "
                    f"{seq / med:6.2f}x"
                )


if __name__ == "__main__":
    main()
