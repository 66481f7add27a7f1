#!/usr/bin/env bash
# Installs what mtmi needs on Debian 12 (run as root): compilers, CMake,
# protobuf-c with ONNX's onnx.proto, OpenBLAS, libspng and libdeflate, gRPC's C core (the
# Triton load client, src/triton/grpc_load.c), and a Python venv
# (.venv) with onnx, onnxruntime, numpy and pytest for the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs="build-essential cmake pkg-config protobuf-c-compiler libprotobuf-c-dev libonnx-dev
      libopenblas-dev libspng-dev libdeflate-dev libgrpc-dev python3 python3-venv clang libclang-rt-14-dev libomp-14-dev"
missing=""
for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  apt-get clean   # the downloaded .deb files: disk a small CI machine may lack
fi
if [ "${MTMI_NO_PY:-0}" != 1 ] && ! .venv/bin/python -c "import onnx, onnxruntime, numpy, pytest" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check onnx onnxruntime numpy pytest
fi
