#!/usr/bin/env bash
# Prepares the git-ignored .deps-triton folder that scripts/gpu_triton.sh
# needs on a GPU machine with no network (carried beside .deps/debs):
#
#   .deps-triton/tritonserver.tar.xz   Triton Inference Server from
#       nvidia-pytriton 0.7.0 (the version the CPU tests run), pruned to
#       bin/tritonserver and the libraries it loads (its ldd closure, put in
#       lib/, which its RPATH ${ORIGIN}/../lib finds), stripped.  The wheel is
#       55 MB and would not fit in one call's 64 MiB with the tree and
#       .deps/debs; what tritonserver needs is about 22 MB (the Python
#       backend, its stubs and libpython are left out: the mtmi backend is C).
#   .deps-triton/wheels/cpXY/*.whl     tritonclient (gRPC), grpcio, protobuf,
#       python-rapidjson for CPython X.Y, manylinux: installed there with
#       pip --no-index --no-deps --target.  numpy, packaging and ml_dtypes
#       are in the GPU image (KINDS.md); --with-numpy adds them for a python
#       without them.
#
#   bash scripts/triton_wheels.sh [--python 3.12[,3.11,...]] [--with-numpy]
#
# The GPU image's python3 is 3.12 (KINDS.md, 2026-11); PyTorch images also
# come with 3.10 or 3.11: name those to carry several (each adds ~9 MB).
# Run on the Debian 12 dev machine (network); takes the server and the
# client versions from .venv-triton (scripts/triton_deps.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
pys=3.12 numpy=0
while [ $# -gt 0 ]; do
  case $1 in
    --python) pys=$2; shift 2 ;;
    --python=*) pys=${1#--python=}; shift ;;
    --with-numpy) numpy=1; shift ;;
    -h|--help) sed -n 2,25p "$0"; exit 0 ;;
    *) echo "triton_wheels.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bash scripts/triton_deps.sh
venv=${MTMI_TRITON_VENV:-.venv-triton}
out=.deps-triton
# find_spec, not import: pytriton's Python side needs packages not installed
site=$("$venv/bin/python" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("pytriton").submodule_search_locations[0]))')
ver() { "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtmi-triton-wheels.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- the server: bin/tritonserver and its ldd closure, stripped
stage=$tmp/tritonserver
mkdir -p "$stage/bin" "$stage/lib"
cp "$site/pytriton/tritonserver/bin/tritonserver" "$stage/bin/"
libs=$(LD_LIBRARY_PATH=$site/nvidia_pytriton.libs ldd "$stage/bin/tritonserver" | grep -o '/[^ ]*/nvidia_pytriton\.libs/[^ ]*' | sort -u)
[ -n "$libs" ] || { echo "triton_wheels.sh: ldd found none of nvidia_pytriton.libs for tritonserver" >&2; exit 1; }
cp $libs "$stage/lib/"
# Symbols and debug sections only: the wheel's tritonserver and
# libtritonserver are not stripped (51 MB of 106 MB); the others are.
strip --strip-unneeded "$stage/bin/tritonserver" "$stage"/lib/*.so*
if ldd "$stage/bin/tritonserver" | grep -q "not found"; then
  ldd "$stage/bin/tritonserver" | grep "not found" >&2
  echo "triton_wheels.sh: the pruned server misses libraries" >&2
  exit 1
fi
mkdir -p "$out"
rm -f "$out/tritonserver.tar.xz"
echo "server: $(du -sh "$stage" | cut -f1) unpacked, compressing (xz -9, about a minute) ..."
tar -C "$tmp" -cf - tritonserver | xz -9 -T2 > "$out/tritonserver.tar.xz.part"
mv "$out/tritonserver.tar.xz.part" "$out/tritonserver.tar.xz"

# --- the client wheels, per python version
pkgs="tritonclient==$(ver tritonclient) grpcio==$(ver grpcio) protobuf==$(ver protobuf) python-rapidjson==$(ver python-rapidjson)"
[ $numpy = 1 ] && pkgs="$pkgs numpy==$(ver numpy) ml-dtypes==$(ver ml_dtypes) packaging==$(ver packaging)"
rm -rf "$out/wheels"  # only the versions asked for travel
for py in ${pys//,/ }; do
  tag=cp${py/./}
  mkdir -p "$out/wheels/$tag"
  # --no-deps: exactly these (the GPU image has the rest); every manylinux
  # these wheels come as (pip matches a platform tag exactly).
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: --python-version "$py" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$out/wheels/$tag" $pkgs
done
echo "ready: $out ($(du -sh "$out" | cut -f1): server $(du -h "$out/tritonserver.tar.xz" | cut -f1), wheels for ${pys});"
echo "on the GPU machine, carry .deps/debs and $out: bash scripts/gpu_triton.sh"
