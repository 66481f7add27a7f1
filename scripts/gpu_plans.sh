#!/usr/bin/env bash
# Saved plans and start-up time on the GPU (issue 16, "plans that start at
# once"), one device-machine command: build (gpu_env.sh's gpu_configure,
# incremental in build-gpu/), then
#  1. where a CUDA plan's build time goes, by phase (mtmi_cuda_bench's
#     "plan build" line: setup, libraries, steps + weights, fusion, memory,
#     finalize = the algorithm searches, first run, graph capture), FP16 at
#     batch 1 and 8;
#  2. `mtmi build` of the SPEC placement and of all-fp16, then `mtmi bench`
#     with and without --plan: the app's "built in" time both ways and the
#     choices reused;
#  3. the outputs of `mtmi run` with and without the plan are the same bytes
#     (same algorithms, same bits);
#  4. refusals: a plan whose GPU line says another GPU, a plan of another
#     size, a damaged plan: one line each, exit 1.
# Usage: scripts/gpu_plans.sh [MODEL]   (logs to $OUT or ./results)
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
T0=$(date +%s)
since() { echo "+$(( $(date +%s) - T0 )) s"; }
source "$ROOT_DIR/scripts/gpu_env.sh"
BUILD=$ROOT_DIR/build-gpu
{ gpu_configure "$BUILD" && cmake --build "$BUILD" -j 16 --target mtmi_cli mtmi_cuda_bench; } > "$OUT/plans_build.log" 2>&1 \
  || { tail -30 "$OUT/plans_build.log"; echo "BUILD FAILED"; exit 1; }
echo "== build done $(since)"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
BIN=$BUILD/mtmi
BENCH=$(ls "$BUILD"/tests/mtmi_cuda_bench "$BUILD"/mtmi_cuda_bench 2>/dev/null | head -1)
MODEL=${1:-$ROOT_DIR/.deps/shared/reference/mtmi_dynamo_opset17.graph.onnx}
rc=0
echo "== 1. CUDA plan build by phase (mtmi_cuda_bench, dynamo export, random weights)"
for b in 1 8; do
  "$BENCH" "$MODEL" --iters 20 --batch $b 2>&1 | grep -E "mtmi cuda|plan build|graph \(|whole" | sed "s/^/  batch $b: /"
done
W=$(mktemp -d)
SPEC="encoder=cuda:0/fp16,seg=cuda:0.sm16/fp16,depth=cuda:0.sm16/fp16"
ALL="encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16"
echo "== 2. mtmi build, then bench with and without --plan (built-in trained model, 1024x1024) $(since)"
for P in "$ALL" "$SPEC"; do
  tag=$( [ "$P" = "$ALL" ] && echo all || echo spec )
  "$BIN" build --place "$P" -o "$W/$tag.plan" > "$OUT/plans_build_$tag.log" 2>&1 || { cat "$OUT/plans_build_$tag.log"; rc=1; continue; }
  grep -E "placement|saved plan" "$OUT/plans_build_$tag.log" | sed 's/^/  build: /'
  for k in 1 2; do
    "$BIN" bench --place "$P" --frames 20 -q 2>&1 | grep -E "^placement|^summary" | sed "s/^/  no plan #$k: /"
    "$BIN" bench --plan "$W/$tag.plan" --frames 20 -q 2>&1 | grep -E "^placement|^summary|error" | sed "s/^/  --plan  #$k: /"
  done
done
echo "== 3. the same bytes with and without the plan $(since)"
"$BIN" run --plan "$W/all.plan" --frames 4 -q -o "$W/with" > /dev/null 2>&1 && "$BIN" run --place "$ALL" --frames 4 -q -o "$W/without" > /dev/null 2>&1
if diff -r -q "$W/with" "$W/without" -x manifest.json > /dev/null; then echo "  identical: $(ls "$W/with" | wc -l) files"
else echo "  OUTPUTS DIFFER"; diff -r -q "$W/with" "$W/without" | head -5; rc=1; fi
echo "== 4. refusals $(since)"
# the encoder stage's identity line says another GPU; the checksum is
# recomputed (tests/tools/mtmi_testutil.py), so only the GPU differs
PYTHONPATH=$ROOT_DIR/tests/tools python3 -c 'import sys, mtmi_testutil as tu
tu.rewrite_plan(sys.argv[1], sys.argv[2], rb"(?m)^(stage encoder \S+ \d+ )[^,\n]*, sm_\d+, \d+ SMs", rb"\1NVIDIA A100-SXM4-80GB, sm_80, 108 SMs")' \
  "$W/all.plan" "$W/other_gpu.plan" || rc=1
for t in "other GPU:--plan $W/other_gpu.plan" "other size:--plan $W/all.plan --size 512x512" "damaged:--plan $OUT/plans_build.log"; do
  what=${t%%:*}; args=${t#*:}
  msg=$("$BIN" bench $args --frames 1 -q 2>&1 > /dev/null); code=$?
  echo "  $what: exit $code: $msg"
  [ $code -eq 1 ] && [ $(echo "$msg" | wc -l) -eq 1 ] || rc=1
done
rm -rf "$W"
echo "== done $(since), rc $rc"
exit $rc
