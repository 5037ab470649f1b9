#!/usr/bin/env bash
# Builds the pinned Go servers (Temporal CLI, MinIO) into a cache outside the repo, keyed by the
# pinned version, so a second run is instant and a version bump rebuilds. Prints the binary paths.
#   tools/build.sh temporal|minio|all
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${VORA_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vora/bin}

build() { # name module package binary
  local name=$1 module=$2 pkg=$3 bin=$4 mod ver out
  mod="$here/$name"
  # The version is read from go.mod, so a cache hit needs neither the network nor the module cache.
  ver=$(awk -v m="$module" '$1 == m { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$mod/go.mod")
  [[ -n "$ver" ]] || { echo "[tools] $module is not pinned in $mod/go.mod" >&2; exit 1; }
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
  temporal) build temporal github.com/temporalio/cli github.com/temporalio/cli/cmd/temporal temporal ;;
  minio) build minio github.com/minio/minio github.com/minio/minio minio ;;
  all)
    build temporal github.com/temporalio/cli github.com/temporalio/cli/cmd/temporal temporal
    build minio github.com/minio/minio github.com/minio/minio minio
    ;;
  *) echo "usage: $0 temporal|minio|all" >&2; exit 2 ;;
esac
