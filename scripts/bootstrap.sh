#!/usr/bin/env bash
# Installs what the stack and the tests need, and nothing twice: Debian packages, the pinned Go
# servers (Temporal CLI, MinIO), npm packages, the native module. Safe to run on every start.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }
t0=$SECONDS

# 1. Debian packages: FFmpeg 5.1 dev libraries + CLI (tests decode with ffprobe), clang for bindgen,
#    the servers, nginx (the peer the gateway benchmark is measured against), and Chromium (the
#    browser end-to-end tests drive it with playwright-core; no browser is ever downloaded).
apt_pkgs=(pkg-config clang libclang-dev ffmpeg libavcodec-dev libavformat-dev libavutil-dev libavfilter-dev
  libavdevice-dev libswscale-dev libswresample-dev postgresql clickhouse-server clickhouse-client varnish nginx
  util-linux chromium)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts packaged servers on install where it can; the stack runs its own instances.
  for svc in postgresql clickhouse-server varnish nginx; do $sudo service "$svc" stop >/dev/null 2>&1 || true; done
fi

# 2. Go-built servers, cached outside the repo by pinned version.
step "Go tools: $(tools/build.sh all | xargs -n1 basename | paste -sd' ')"

# 3. npm packages from the lockfile, when it changed since the last install. Not `npm ci`: the
#    registry reachable here lacks some optional per-platform packages of @napi-rs/cli's
#    cross-toolchain (android/darwin/win32 builds), which npm leaves out of the lockfile and `npm ci`
#    then rejects as "out of sync". `npm install --no-save` installs the same pinned tree and never
#    rewrites the lockfile.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  step "npm install (from package-lock.json)"
  npm install --no-save --no-audit --no-fund --loglevel=error
fi

# 4. The native module, when its sources changed (stamp = hash of the crate's inputs).
stamp_src=$(cat Cargo.toml Cargo.lock native/Cargo.toml native/build.rs $(find native/src -type f | sort) 2>/dev/null | sha256sum | cut -c1-16)
node_file=$(ls native/*.node 2>/dev/null | head -1 || true)
if [[ -z "$node_file" || "$(cat native/.build-stamp 2>/dev/null)" != "$stamp_src" ]]; then
  step "building the native module (cargo, release)"
  npm run --silent build:native
  echo "$stamp_src" > native/.build-stamp
fi
# 5. The web app (web/ -> web/dist, served by the API at /), when its sources changed.
# src/common/video-state.ts: the one server module the app bundles in.
web_stamp=$(cat web/index.html web/vite.config.ts package-lock.json src/common/video-state.ts $(find web/src -type f | sort) 2>/dev/null | sha256sum | cut -c1-16)
if [[ ! -f web/dist/index.html || "$(cat web/dist/.build-stamp 2>/dev/null)" != "$web_stamp" ]]; then
  step "building the web app (vite)"
  npx --no-install vite build web --logLevel warn
  echo "$web_stamp" > web/dist/.build-stamp
fi
step "ready in $((SECONDS - t0))s"
