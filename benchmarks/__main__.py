"""Entry point of the benchmark suite: run the chosen benchmarks, print a table, write markdown.

Owns argument parsing, the run `Context` handed to every benchmark (quick mode, temp work dir,
a shared emulator started on first use), isolation of failures (a benchmark that raises is
reported as skipped with the reason; the run goes on), and output: a text table on stdout and
the generated block of BENCHMARKS.md (environment + table + notes).

Must not: measure anything itself, or import a benchmark module before it is run.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import BENCHMARKS
from benchmarks.common import (
    REPO_ROOT,
    BenchResult,
    Emulator,
    Skip,
    environment,
    markdown_report,
    temp_dir,
    text_table,
    write_markdown,
)


@dataclass
class Context:
    """What a benchmark gets: knobs and shared resources of this run."""

    quick: bool  # fewer repeats and smaller inputs (a smoke run of the suite)
    workdir: Path  # temp dir removed after the run; benchmarks make subdirs in it
    repeat: int | None = None  # override of each benchmark's repeat count
    _emulator: Emulator | None = field(default=None, repr=False)
    _emulator_error: str | None = field(default=None, repr=False)

    def repeats(self, full: int, quick: int) -> int:
        if self.repeat is not None:
            return self.repeat
        return quick if self.quick else full

    def emulator(self) -> Emulator:
        """The run's shared emulator, started on first use (Skip if it cannot start)."""
        if self._emulator_error is not None:
            raise Skip(self._emulator_error)
        if self._emulator is None:
            try:
                self._emulator = Emulator(self.workdir).start()
            except Skip as exc:
                self._emulator_error = str(exc)
                raise
        return self._emulator

    def close(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None


def run_one(name: str, ctx: Context) -> BenchResult:
    module_name = BENCHMARKS[name]
    t0 = time.monotonic()
    title = name
    try:
        module = importlib.import_module(module_name)
        title = getattr(module, "TITLE", name)
        print(f"== {title}", file=sys.stderr, flush=True)
        result: BenchResult = module.run(ctx)
    except Skip as exc:
        result = BenchResult(name=name, title=title, skipped=str(exc))
    except Exception as exc:
        traceback.print_exc()
        result = BenchResult(name=name, title=title, skipped=f"failed: {type(exc).__name__}: {exc}")
    result.seconds = time.monotonic() - t0
    if result.skipped:
        print(f"   skipped: {result.skipped}", file=sys.stderr, flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure deployer against what users would otherwise do; ratios from one run.",
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats and smaller inputs (minutes, not tens of minutes)",
    )
    parser.add_argument("--repeat", type=int, default=None, help="override every repeat count")
    parser.add_argument(
        "--markdown",
        type=Path,
        default=None,
        help="write the generated block here (default: BENCHMARKS.md for a full, "
        "non-quick run; nothing otherwise)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help="also write the measurements as JSON here and draw the charts beside it "
        "(default: benchmarks/charts/results.json for a full, non-quick run; redraw with "
        "`python -m benchmarks.charts`)",
    )
    args = parser.parse_args(argv)

    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    names = args.names or list(BENCHMARKS)
    # A SIGTERM (timeout, CI cancel) unwinds like Ctrl-C, so every `finally` stops its servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = environment()
    results: list[BenchResult] = []
    with temp_dir() as work:
        ctx = Context(quick=args.quick, workdir=work, repeat=args.repeat)
        try:
            for name in names:
                results.append(run_one(name, ctx))
        finally:
            ctx.close()

    print()
    print("\n".join(f"{k}: {v}" for k, v in env.items()))
    print()
    print(text_table(results))
    for res in results:
        for note in res.notes:
            print(f"  [{res.name}] {note}")

    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    full = not args.names and not args.quick
    results_path = args.results
    if results_path is None and full:
        from benchmarks.charts import RESULTS_FILE

        results_path = RESULTS_FILE
    if results_path is not None:
        from benchmarks import charts

        charts.write_results(results_path, results, env, command.strip())
        print(f"\nwrote {results_path}")
        for png in charts.draw_all(charts.load_results(results_path), results_path.parent):
            print(f"wrote {png}")
    target = args.markdown
    if target is None and full:
        target = REPO_ROOT / "BENCHMARKS.md"
    if target is not None:
        write_markdown(target, markdown_report(results, env, command.strip()))
        print(f"\nwrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
