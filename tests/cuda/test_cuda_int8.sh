#!/bin/sh
# test_cuda_int8.sh MTMI_BIN TEST_BIN [WORKDIR]: calibrates the reference
# model's heads (random weights, seed 1) on the shared images once, then runs
# test_cuda_int8 (GPU INT8 kernels and model vs the CPU INT8 reference).
# Exit 77 (skip) without the shared reference folder; the test binary itself
# exits 77 without a GPU.  Extra test arguments: $MTMI_INT8_TEST_ARGS.
BIN=$1; TEST=$2; WORK=${3:-${TMPDIR:-/tmp}/mtmi_int8_test}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SH=
for d in "${MTMI_SHARED:-}" "$ROOT/../shared" "$ROOT/.deps/shared"; do
  if [ -n "$d" ] && [ -f "$d/reference/mtmi_dynamo_opset17.graph.onnx" ] && [ -d "$d/images" ]; then SH=$d; break; fi
done
if [ -z "$SH" ]; then echo "skipped: no shared reference folder with images"; exit 77; fi
MODEL=$SH/reference/mtmi_dynamo_opset17.graph.onnx
mkdir -p "$WORK" || exit 1
CACHE=$WORK/heads_seed1.cache
if [ ! -s "$CACHE" ]; then
  "$BIN" calibrate "$MODEL" --images "$SH/images" --random-weights 1 --limit 2 -o "$CACHE" || exit 1
fi
# shellcheck disable=SC2086
exec "$TEST" "$MODEL" "$CACHE" ${MTMI_INT8_TEST_ARGS:-}
