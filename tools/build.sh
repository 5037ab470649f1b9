#!/usr/bin/env bash
# Builds the pinned Go servers (Temporal CLI, MinIO) into a cache outside the repo, keyed by the
# pinned version, so a second run is instant and a version bump rebuilds. Prints the binary paths.
#   tools/build.sh temporal|minio|all
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VORA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vora/bin}

build() { # name package binary
  local name=$1 pkg=$2 bin=$3 mod ver out
  mod="$here/$name"
  ver=$(cd "$mod" && go list -m -f '{{.Version}}' "$(go list -f '{{.Module.Path}}' "$pkg")")
  out="$cache/$name-$ver/$bin"
  if [[ ! -x "$out" ]]; then
    echo "[tools] building $name $ver (first time only, several minutes) -> $out" >&2
    mkdir -p "$(dirname "$out")"
    (cd "$mod" && CGO_ENABLED=0 go build -buildvcs=false -trimpath -ldflags '-s -w' -o "$out.tmp" "$pkg")
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

case "${1:-all}" in
  temporal) build temporal github.com/temporalio/cli/cmd/temporal temporal ;;
  minio) build minio github.com/minio/minio minio ;;
  all) build temporal github.com/temporalio/cli/cmd/temporal temporal; build minio github.com/minio/minio minio ;;
  *) echo "usage: $0 temporal|minio|all" >&2; exit 2 ;;
esac
