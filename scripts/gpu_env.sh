# Sourced by the GPU-machine scripts (gpu_check.sh, gpu_int8.sh): unpacks the
# carried Debian packages (.deps/debs, see gpu_deps.sh) into .deps/root, points
# the loader and pkg-config at them, finds cuDNN (the toolkit's, else the pip
# wheel's), and defines gpu_configure to configure a build against them.
# Expects ROOT_DIR (the repository root) to be set.
DEPS=$ROOT_DIR/.deps/root
if [ -d "$ROOT_DIR/.deps/debs" ] && [ ! -x "$DEPS/usr/bin/protoc-c" ]; then
  mkdir -p "$DEPS"
  for f in "$ROOT_DIR"/.deps/debs/*.deb; do dpkg -x "$f" "$DEPS"; done
fi
if [ -d "$ROOT_DIR/.deps/wheels" ] && ! python3 -c "import pytest" 2>/dev/null; then
  python3 -m pip install -q --no-index --find-links "$ROOT_DIR/.deps/wheels" pytest > /dev/null 2>&1 ||
    python3 -m pip install -q --break-system-packages --no-index --find-links "$ROOT_DIR/.deps/wheels" pytest > /dev/null 2>&1 || true
fi
LIBD=$DEPS/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIBD:$LIBD/openblas-pthread:${LD_LIBRARY_PATH:-}
export PKG_CONFIG_PATH=$LIBD/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$DEPS
CUDNN_ARGS=()
if ! ls /usr/local/cuda/include/cudnn.h >/dev/null 2>&1; then
  CUDNN_DIR=$(python3 -c 'import nvidia.cudnn,os;print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
  if [ -n "$CUDNN_DIR" ] && [ -f "$CUDNN_DIR/include/cudnn.h" ]; then
    CUDNN_LIBF=$(ls "$CUDNN_DIR"/lib/libcudnn.so* | head -1)
    CUDNN_ARGS=(-DCUDNN_LIB="$CUDNN_LIBF" -DCUDNN_INCLUDE="$CUDNN_DIR/include")
    export LD_LIBRARY_PATH=$CUDNN_DIR/lib:$LD_LIBRARY_PATH
  fi
fi

# gpu_bundle_out NAME: with BUNDLE=1, the calling script's logs go to a
# scratch folder (OUT is pointed there) and come back as one
# NAME_logs.tgz in the OUT it had, when the script exits (the device tool
# returns at most 8 files).  Without BUNDLE, nothing.
gpu_bundle_out() {
  [ "${BUNDLE:-0}" = 1 ] || return 0
  GPU_BUNDLE_DEST=$OUT
  GPU_BUNDLE_NAME=$1
  OUT=$(mktemp -d)
  mkdir -p "$GPU_BUNDLE_DEST"
  trap 'tar czf "$GPU_BUNDLE_DEST/${GPU_BUNDLE_NAME}_logs.tgz" -C "$OUT" --exclude="*.features" . 2>/dev/null' EXIT
}

# gpu_configure BUILD_DIR: configures a Release sm_90a build against .deps.
gpu_configure() {
  cmake -S "$ROOT_DIR" -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    -DONNX_PROTO_DIR="$DEPS/usr/include/onnx" -DPROTOC_C="$DEPS/usr/bin/protoc-c" \
    -DCBLAS_INCLUDE="$DEPS/usr/include/x86_64-linux-gnu/openblas-pthread" \
    -DOPENBLAS_LIB="$LIBD/openblas-pthread/libopenblas.so" \
    -DSPNG_LIB="$LIBD/libspng.so" -DDEFLATE_LIB="$LIBD/libdeflate.so" -DDEFLATE_INCLUDE="$DEPS/usr/include" -DCMAKE_C_FLAGS="-I$DEPS/usr/include" -DMTMI_SHARED_DIR="$ROOT_DIR/.deps/shared" \
    "${CUDNN_ARGS[@]}"
}
