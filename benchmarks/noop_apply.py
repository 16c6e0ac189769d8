"""No-op apply on an applied stack of N endpoints and N model versions: wall time and API calls.

Usage: python -m benchmarks.noop_apply [--n 10] [--repeat 5]

A thin front to the suite's benchmark 2 (benchmarks/bench_noop_apply.py owns the spec, the
emulator and the timing): this runs only that measurement, with N chosen on the command line,
and prints its table. Targets: 0 mutating calls, <= 15 calls, < 2 s after interpreter start.
Must not: leave the emulator or its replicas running (bench_noop_apply stops them).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from benchmarks import bench_noop_apply
from benchmarks.common import BenchResult, bench_env, summarize, text_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="endpoints (and model versions)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="noop-apply-") as tmp:
        ctx = SimpleNamespace(
            quick=False, workdir=Path(tmp), repeats=lambda full, quick: args.repeat
        )
        res = BenchResult(name="noop-apply", title=f"No-op apply, {args.n} endpoints")
        env = bench_env()
        bare = summarize(
            [bench_noop_apply.timed([sys.executable, "-c", "pass"], env)[0] for _ in range(3)]
        )
        bench_noop_apply.measure_stack(res, ctx, n=args.n, repeat=args.repeat, bare_s=bare.median)
    print(text_table([res]))
    for note in res.notes:
        print("-", note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
