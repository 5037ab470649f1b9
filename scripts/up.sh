#!/usr/bin/env bash
# Brings the whole local stack up and keeps it running (Ctrl-C stops it).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/bootstrap.sh"
exec "$root/bin/vora" up
