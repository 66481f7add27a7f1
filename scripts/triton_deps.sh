#!/usr/bin/env bash
# What the Triton backend's server test needs (tests/triton, ctest label
# `triton`): a venv of its own, .venv-triton, with Triton Inference Server
# from PyPI (nvidia-pytriton's wheel carries the tritonserver binary and
# libtritonserver; installed without its Python dependencies, only the
# server is used) and tritonclient (HTTP and gRPC) with numpy.
#
# A venv apart from .venv because tritonclient[grpc] needs protobuf < 7 and
# ml-dtypes <= 0.5.4, which onnx in .venv has outgrown.  Idempotent: a
# complete venv is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MTMI_TRITON_VENV:-.venv-triton}
py=$venv/bin/python
server() { "$py" - <<'PY'
import importlib.util, os, sys
spec = importlib.util.find_spec("pytriton")
path = os.path.join(spec.submodule_search_locations[0], "tritonserver", "bin", "tritonserver")
sys.exit(0 if os.access(path, os.X_OK) else 1)
PY
}
if [ -x "$py" ] && "$py" -c "import numpy, tritonclient.http, tritonclient.grpc" 2>/dev/null && server 2>/dev/null; then
  exit 0
fi
python3 -m venv "$venv"
pip="$venv/bin/pip install -q --disable-pip-version-check"
# 0.7.0: Triton 2.51 (backend API 1.19), a manylinux_2_35 wheel (Debian 12 has glibc 2.36).
$pip --no-deps "nvidia-pytriton==0.7.0"
$pip "tritonclient[http,grpc]>=2.50,<3" numpy
server || { echo "triton_deps: no tritonserver binary in $venv's nvidia-pytriton" >&2; exit 1; }
