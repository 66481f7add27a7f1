#!/usr/bin/env bash
# A/B of the CUDA plan's step fusions on the device machine, in one call:
# builds like gpu_check.sh, runs the chosen GPU tests, then times the whole
# network (mtmi_cuda_bench, 200 CUDA-graph replays) with each setting of
# MTMI_CUDA_NO_FUSE, alternating the settings for ROUNDS rounds so that
# clock and neighbour drift hit all of them alike.
# Usage: scripts/gpu_ab.sh [-R CTEST_REGEX] [-r ROUNDS] [SETTING ...]
#   SETTING: a value of MTMI_CUDA_NO_FUSE ("" or none = every fusion on,
#   all = every fusion off, or pass names such as mlp,upconv), or
#   VAR=VALUE[,...] to set another variable instead (every fusion on), e.g.
#   MTMI_ATTN_CFG=0,0 for the first-generation attention kernel; several
#   joined by '+' (MTMI_CUDA_FUSE_OPT=wgconv+MTMI_CUDA_NO_FUSE=upconv).
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
REGEX=cuda_; ROUNDS=3; SETTINGS=()
while [ $# -gt 0 ]; do
  case $1 in
    -R) REGEX=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    *) SETTINGS+=("$1"); shift ;;
  esac
done
[ ${#SETTINGS[@]} -eq 0 ] && SETTINGS=(none all)
source "$ROOT_DIR/scripts/gpu_env.sh"
export MTMI_SHARED=$ROOT_DIR/.deps/shared
BUILD=$ROOT_DIR/build-gpu
gpu_configure "$BUILD" > "$ROOT_DIR/build-gpu.log" 2>&1 && cmake --build "$BUILD" -j 16 >> "$ROOT_DIR/build-gpu.log" 2>&1 \
  || { grep -E "error" -A3 "$ROOT_DIR/build-gpu.log" | head -40; echo "BUILD FAILED"; exit 1; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
rc=0
if [ "$REGEX" != none ]; then
  echo "== GPU tests matching '$REGEX'"
  (cd "$BUILD" && ctest -L gpu -R "$REGEX" --output-on-failure 2>&1) > "$OUT/tests.log"; [ $? -ne 0 ] && rc=1
  grep -E "ok  |FAIL|agreement|max abs|Passed|Failed|passed|skipped|error" "$OUT/tests.log" | sed 's/^[0-9]*: //' | tail -60
fi
MODEL=$ROOT_DIR/.deps/shared/reference/mtmi_dynamo_opset17.graph.onnx
BENCH=$(ls "$BUILD"/tests/mtmi_cuda_bench "$BUILD"/mtmi_cuda_bench 2>/dev/null | head -1)
echo "== whole network, batch 1, ms (median of 200 replays), $ROUNDS alternating rounds"
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  for st in "${SETTINGS[@]}"; do
    if [[ $st == *=* ]]; then
      # shellcheck disable=SC2086
      res=$(env ${st//+/ } "$BENCH" "$MODEL" --iters 200 2>&1)
    else
      v=$([ "$st" = none ] && echo "" || echo "$st")
      res=$(MTMI_CUDA_NO_FUSE=$v "$BENCH" "$MODEL" --iters 200 2>&1)
    fi
    w=$(echo "$res" | awk '/whole/ {print $2}'); e=$(echo "$res" | awk '/encoder/ {print $2}')
    d=$(echo "$res" | awk '/depth/ {print $2}'); sg=$(echo "$res" | awk '/ seg/ {print $2}')
    n=$(echo "$res" | sed -n 's/.*, \([0-9]*\) steps.*/\1/p')
    line="$line  [off=${st}] whole $w enc $e seg $sg depth $d ($n steps)"
    [ -z "$w" ] && { echo "$res" | tail -3; rc=1; }
  done
  echo "$line"
done
exit $rc
