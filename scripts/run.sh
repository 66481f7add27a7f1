#!/usr/bin/env bash
# The main job on built-in defaults: installs dependencies, builds, and runs
# `mtmi run` (built-in MTMI model, synthetic or given frames, GPU if present).
set -euo pipefail
cd "$(dirname "$0")/.."
MTMI_NO_PY=1 bash scripts/deps.sh
bash scripts/build.sh
exec ./build/mtmi run "$@"
