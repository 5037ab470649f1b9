#!/usr/bin/env bash
# Runs every test: type check, the native crate's cargo tests, TS unit tests, and integration tests
# against real PostgreSQL, MinIO, Temporal, ClickHouse and Varnish that the harness starts itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
step() { printf '\033[1m[test]\033[0m %s\n' "$*" >&2; }
step "typecheck + lint"; npx tsc --noEmit -p tsconfig.json; npx tsc --noEmit -p web/tsconfig.json; npx eslint src/worker/workflows
step "cargo test"; cargo test --release -p vora-native --quiet
step "unit tests"; npx vitest run --project unit
step "integration tests"; npx vitest run --project integration
