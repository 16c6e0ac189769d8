"""The benchmark suite: `python -m benchmarks [NAME ...] [--quick]` (see `--help`).

Owns the registry of benchmarks (name -> module). Each module exposes
`TITLE` and `run(ctx: Context) -> BenchResult` and raises `common.Skip` when its
prerequisites are missing. Benchmarks are scripts that measure and report ratios
taken in one run; they are never timed tests.

Must not: import any benchmark module eagerly (one broken benchmark must not stop the
others), or import TensorFlow / google.cloud at import time.
"""

from __future__ import annotations

# CLI name -> module under benchmarks/, in the order issue 8 lists them.
BENCHMARKS: dict[str, str] = {
    "upload": "benchmarks.bench_upload",
    "noop-apply": "benchmarks.bench_noop_apply",
    "serving": "benchmarks.bench_serving",
    "batch": "benchmarks.bench_batch",
    "payload": "benchmarks.bench_payload",
    "memory": "benchmarks.bench_memory",
}
