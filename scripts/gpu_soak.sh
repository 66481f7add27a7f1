#!/usr/bin/env bash
# Hardening on the GPU (issue 13), in one GPU-machine command: a 10,000-frame
# soak of `mtmi bench` with INT8 heads on SM partitions (device memory and
# host RSS after 1,000 frames against after 10,000: flat means no growth per
# frame), a pipeline that cannot fit in device memory (one-line error,
# nothing left on the device: test_pipeline_gpu's out-of-memory case), and
# two `mtmi` processes sharing the GPU at once.  Carry: .deps.
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
source "$ROOT_DIR/scripts/gpu_env.sh"
BUILD=$ROOT_DIR/build-gpu
gpu_configure "$BUILD" > "$OUT/build.log" 2>&1 && cmake --build "$BUILD" -j 16 --target mtmi_cli test_pipeline_gpu >> "$OUT/build.log" 2>&1 ||
  { tail -20 "$OUT/build.log"; exit 1; }
M=$BUILD/mtmi
rc=0
echo "== out of memory (test_pipeline_gpu)"
"$BUILD/tests/test_pipeline_gpu" > "$OUT/pipeline_gpu.log" 2>&1 || rc=1
grep -aE "out of memory|FAIL|passed" "$OUT/pipeline_gpu.log"
echo "== the model and an entropy cache of its heads (the shared images)"
"$M" make-model -o /tmp/soak.onnx --seed 1 > /dev/null && \
  "$M" calibrate /tmp/soak.onnx --images "$ROOT_DIR/.deps/shared/images" -o /tmp/soak.cache > "$OUT/calibrate.log" 2>&1 || { rc=1; tail -2 "$OUT/calibrate.log"; }
SOC="encoder=cuda:0/fp16,seg=cuda:0.sm16/int8,depth=cuda:0.sm16/int8"
for n in 1000 10000; do
  echo "== soak: $n frames, $SOC"
  /usr/bin/time -v "$M" bench --model /tmp/soak.onnx --cache /tmp/soak.cache --place "$SOC" --frames $n --warmup 20 --quiet \
    --json "$OUT/soak_$n.json" > "$OUT/soak_$n.log" 2> "$OUT/soak_$n.time" || { rc=1; tail -3 "$OUT/soak_$n.log" "$OUT/soak_$n.time"; }
  grep -E "^summary|device memory|peak RSS" "$OUT/soak_$n.log"
  grep -E "Maximum resident" "$OUT/soak_$n.time"
done
echo "== two processes on one GPU"
FP16="encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16"
"$M" bench --place "$FP16" --frames 2000 --warmup 20 --quiet > "$OUT/two_a.log" 2>&1 & pa=$!
"$M" bench --place "$FP16" --frames 2000 --warmup 20 --quiet > "$OUT/two_b.log" 2>&1 & pb=$!
wait $pa || { rc=1; echo "process a failed"; tail -2 "$OUT/two_a.log"; }
wait $pb || { rc=1; echo "process b failed"; tail -2 "$OUT/two_b.log"; }
grep -H "^summary" "$OUT/two_a.log" "$OUT/two_b.log"
"$M" bench --place "$FP16" --frames 2000 --warmup 20 --quiet > "$OUT/one.log" 2>&1 || rc=1
grep -H "^summary" "$OUT/one.log"
echo "rc $rc"
exit $rc
