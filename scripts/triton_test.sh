#!/usr/bin/env bash
# The Triton server tests (ctest `triton_server`, `triton_perf`): installs
# the build into a scratch prefix (`cmake --install`: the backend, and
# libmtmi.so once the backend links it), so that the server loads the
# backend from where an install puts it (lib/triton/backends/mtmi/) with
# what it needs beside it, then runs a test of tests/triton (default
# test_triton.py; test_triton_perf.py: the load client) against a
# tritonserver on loopback.
#   bash scripts/triton_test.sh [BUILD_DIR] [TEST.py]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bash "$root/scripts/triton_deps.sh"
venv=${MTMI_TRITON_VENV:-$root/.venv-triton}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtmi-triton.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
"$venv/bin/python" "$root/tests/triton/${2:-test_triton.py}" --backends "$tmp/prefix/lib/triton/backends" \
  --mtmi "${MTMI_BIN:-$build/mtmi}" --work "$tmp" --onnx-python "$root/.venv/bin/python"
