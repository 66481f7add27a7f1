#!/usr/bin/env bash
# The pipeline on a GPU machine: builds with the carried dependencies
# (.deps/debs, as scripts/gpu_check.sh), runs the CPU pipeline test there,
# then `mtmi bench` / `mtmi run` with CUDA placements.  Output under $OUT.
# Carry: .deps/debs .deps/shared
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/results}
mkdir -p "$OUT"
DEPS=/tmp/mtmi-deps
mkdir -p $DEPS
for f in .deps/debs/*.deb; do dpkg -x "$f" $DEPS; done
LIBD=$DEPS/usr/lib/x86_64-linux-gnu
export LD_LIBRARY_PATH=$LIBD:$LIBD/openblas-pthread:${LD_LIBRARY_PATH:-}
export PKG_CONFIG_PATH=$LIBD/pkgconfig PKG_CONFIG_SYSROOT_DIR=$DEPS
CUDNN=()
if ! ls /usr/local/cuda/include/cudnn.h >/dev/null 2>&1; then
  D=$(python3 -c 'import nvidia.cudnn,os;print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)
  if [ -n "$D" ] && [ -f "$D/include/cudnn.h" ]; then
    CUDNN=(-DCUDNN_LIB="$(ls "$D"/lib/libcudnn.so* | head -1)" -DCUDNN_INCLUDE="$D/include")
    export LD_LIBRARY_PATH=$D/lib:$LD_LIBRARY_PATH
  fi
fi
B=$ROOT/build-gpu-pipe
cmake -S . -B $B -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DONNX_PROTO_DIR="$DEPS/usr/include/onnx" -DPROTOC_C="$DEPS/usr/bin/protoc-c" \
  -DCBLAS_INCLUDE="$DEPS/usr/include/x86_64-linux-gnu/openblas-pthread" \
  -DOPENBLAS_LIB="$LIBD/openblas-pthread/libopenblas.so" -DSPNG_LIB="$LIBD/libspng.so" \
  -DCMAKE_C_FLAGS="-I$DEPS/usr/include" "${CUDNN[@]}" > $OUT/build.log 2>&1 &&
  cmake --build $B -j 16 --target mtmi_cli test_pipeline >> $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
M=$B/mtmi
echo "== CPU pipeline test";  $B/tests/test_pipeline | grep -E "FAIL|passed|exact|overlap|memory" | head -20
G=encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16
echo "== bench, all on cuda:0 fp16";  $M bench --place $G --frames 100 --warmup 10 --compare --json $OUT/bench_gpu.json --quiet
echo "== bench, cuda:0 fp32";  $M bench --place cuda:0/fp32 --frames 30 --warmup 5 --quiet | head -9
echo "== bench 256x256, encoder on GPU, heads on CPU devices";  $M bench --size 256x256 --place encoder=cuda:0/fp16,seg=cpu:1,depth=cpu:2 --frames 20 --warmup 3 --compare --quiet
echo "== run, auto"; $M run --images .deps/shared/images --frames 4 -o $OUT/res --trace $OUT/trace.json --json $OUT/run.json | grep -v "^wrote"
echo "== run, --place auto";  $M run --place auto --frames 6 -o /tmp/res_auto --quiet | head -12
echo "== errors"; $M run --place encoder=cuda:0.sm16/int8 --frames 1 -o /tmp/e; $M run --place encoder=cuda:3/fp16 --frames 1 -o /tmp/e
$M run --place $G --frames 6 --inject-error 1:2 -o /tmp/e --quiet; echo "rc $?"
cp $OUT/res/*_vis.png $OUT/ 2>/dev/null; rm -rf $OUT/res; ls $OUT
