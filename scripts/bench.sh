#!/usr/bin/env bash
# Run the benchmark suite (issue 8) and refresh BENCHMARKS.md.
#
#   scripts/bench.sh              all benchmarks, full repeats, rewrites BENCHMARKS.md's table
#   scripts/bench.sh --quick      fewer repeats / smaller inputs (writes nothing unless --markdown)
#   scripts/bench.sh upload memory   only these (see `python -m benchmarks --help`)
#
# Uses the project venv (.venv) when it exists; starts its own emulator on a free port and
# cleans up its temp data. Benchmarks are scripts, not tests: they print ratios measured in
# one run, so figures from a noisy shared machine stay comparable.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${VIRTUAL_ENV:-}" && -f .venv/bin/activate ]]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
exec python -m benchmarks "$@"
