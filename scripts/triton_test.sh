#!/usr/bin/env bash
# The Triton server test (ctest `triton_server`): installs the build into a
# scratch prefix (`cmake --install`: the backend, and libmtmi.so once the
# backend links it), so that the server loads the backend from where an
# install puts it (lib/triton/backends/mtmi/) with what it needs beside it,
# then runs tests/triton/test_triton.py against a tritonserver on loopback.
#   bash scripts/triton_test.sh [BUILD_DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
bash "$root/scripts/triton_deps.sh"
venv=${MTMI_TRITON_VENV:-$root/.venv-triton}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtmi-triton.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
"$venv/bin/python" "$root/tests/triton/test_triton.py" --backends "$tmp/prefix/lib/triton/backends" \
  --mtmi "${MTMI_BIN:-$build/mtmi}" --work "$tmp" --onnx-python "$root/.venv/bin/python"
