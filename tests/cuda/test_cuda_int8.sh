#!/bin/sh
# test_cuda_int8.sh MTMI_BIN TEST_BIN [WORKDIR]: the built-in MTMI network
# at 1024x1024 (`mtmi make-model`, spread weights, seed 1: a discriminative
# class map and depth, unlike the graph-only export filled with
# normal / sqrt(fan_in) values), its heads calibrated on the shared images
# once, then test_cuda_int8 (GPU INT8 kernels and model vs the CPU INT8
# reference).  A missing shared folder is a failure; only the test binary's
# "no GPU" exits 77 (skip).  Extra test arguments: $MTMI_INT8_TEST_ARGS.
BIN=$1; TEST=$2; WORK=${3:-${TMPDIR:-/tmp}/mtmi_int8_test}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SH=
for d in "${MTMI_SHARED:-}" "$ROOT/../shared" "$ROOT/.deps/shared"; do
  if [ -n "$d" ] && [ -f "$d/reference/mtmi_dynamo_opset17.graph.onnx" ] && [ -d "$d/images" ]; then SH=$d; break; fi
done
if [ -z "$SH" ]; then echo "FAIL: no shared folder with reference/ and images/ (../shared, \$MTMI_SHARED or .deps/shared)"; exit 1; fi
mkdir -p "$WORK" || exit 1
MODEL=$WORK/mtmi_spread_seed1.onnx
CACHE=$WORK/heads_spread_seed1.cache
if [ ! -s "$MODEL" ]; then
  "$BIN" make-model -o "$MODEL" --seed 1 --external-data 4096 || exit 1
fi
if [ ! -s "$CACHE" ]; then
  "$BIN" calibrate "$MODEL" --images "$SH/images" --limit 2 -o "$CACHE" || exit 1
fi
# shellcheck disable=SC2086
exec "$TEST" "$MODEL" "$CACHE" ${MTMI_INT8_TEST_ARGS:-}
