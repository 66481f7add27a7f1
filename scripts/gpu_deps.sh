#!/usr/bin/env bash
# Prepares the git-ignored .deps folder that scripts/gpu_check.sh needs on a
# GPU machine that has CUDA, cuDNN, cmake, PyTorch and onnxruntime but none
# of Debian's -dev libraries: the Debian packages of protobuf-c, OpenBLAS,
# libspng, libdeflate and onnx.proto (unpacked there with dpkg -x), and a copy of
# ../shared/reference plus one street image (../shared does not travel).
# Run on a Debian 12 dev machine; then pass `.deps` as a carried path.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/debs .deps/shared
(cd .deps/debs && apt-get download libgfortran5 libonnx-dev libopenblas-dev libopenblas-pthread-dev \
    libopenblas0-pthread libopenblas0 libprotobuf-c-dev libprotobuf-c1 libprotobuf32 libprotoc32 \
    libspng-dev libspng0 libdeflate-dev libdeflate0 protobuf-c-compiler zlib1g)
shared=${MTMI_SHARED:-../shared}
cp -r "$shared/reference" .deps/shared/
mkdir -p .deps/shared/images
cp "$shared"/images/*.png .deps/shared/images/ 2>/dev/null || true  # 7.6 MB: calibration (4) + evaluation (1)
# pytest for the Python package's GPU tests (the GPU machine has no network):
# wheels installed there with pip --no-index (scripts/gpu_env.sh)
mkdir -p .deps/wheels
python3 -m pip download -q -d .deps/wheels pytest 2>/dev/null || .venv/bin/pip download -q -d .deps/wheels pytest
echo "ready: .deps ($(du -sh .deps | cut -f1)); on the GPU machine: bash scripts/gpu_check.sh"
