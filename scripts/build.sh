#!/usr/bin/env bash
# Configures and builds into build/ (Release).  Extra args go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
py=python3
[ -x .venv/bin/python ] && py=$PWD/.venv/bin/python
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE="$py" "$@" >/dev/null
cmake --build build -j"${JOBS:-2}"
