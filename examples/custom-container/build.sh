#!/usr/bin/env bash
# Build the example's image, localhost/deployer-custom-example:1, with no registry:
#  1. a Debian bookworm root filesystem with python3 (debootstrap from Debian's packages,
#     ~2 min once; cached as a tarball in $DEPLOYER_IMAGE_CACHE, default ~/.cache/deployer),
#     imported as localhost/deployer-python-base:bookworm;
#  2. `build` of the Containerfile on that base (seconds). Skipped when the image already
#     holds this Containerfile and server.py (a content-hash label).
# Uses Podman, or Docker (DEPLOYER_CONTAINER_RUNTIME=docker|podman to choose). Needs root for
# debootstrap. For real Vertex AI, build FROM python:3.12-slim and push to Artifact Registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
RT="${DEPLOYER_CONTAINER_RUNTIME:-}"
if [ -z "$RT" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then RT=docker
  elif command -v podman >/dev/null; then RT=podman
  else echo "error: neither Docker nor Podman is installed (apt-get install podman runc)" >&2; exit 1
  fi
fi
BASE=localhost/deployer-python-base:bookworm
IMAGE="${IMAGE:-localhost/deployer-custom-example:1}"
CACHE="${DEPLOYER_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deployer}"
hash="$(cat "$here/Containerfile" "$here/server.py" | sha256sum | cut -c1-16)"

if [ "$("$RT" image inspect --format '{{ index .Config.Labels "deployer.example.hash" }}' "$IMAGE" 2>/dev/null)" = "$hash" ]; then
  echo "$IMAGE is up to date ($hash)"
  exit 0
fi
if ! "$RT" image inspect "$BASE" >/dev/null 2>&1; then
  tarball="$CACHE/python-base-bookworm.tar"
  if [ ! -s "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
    mkdir -p "$CACHE"
    rootfs="$(mktemp -d "$CACHE/rootfs.XXXXXX")"
    trap 'rm -rf "$rootfs"' EXIT
    echo "building a Debian bookworm root filesystem with python3 (debootstrap, once)..."
    debootstrap --variant=minbase --include=python3 bookworm "$rootfs" http://deb.debian.org/debian >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  fi
  "$RT" import "$tarball" "$BASE" >/dev/null
fi
"$RT" build --pull=never --build-arg "BASE=$BASE" --label "deployer.example.hash=$hash" \
  -t "$IMAGE" -f "$here/Containerfile" "$here" >/dev/null
echo "built $IMAGE ($hash)"
