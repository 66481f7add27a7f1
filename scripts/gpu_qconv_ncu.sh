#!/usr/bin/env bash
# The INT8 3x3 convolutions of the depth head under Nsight Compute, one
# command for the GPU machine: build, test_cuda_int8 with its timing
# sweep (every kernel configuration, the wgmma ones included, checked bit
# for bit and timed), then ncu of the 3x3 kernels (halo: k_qconv_halo; wgmma:
# k_qconv_wr where its weights fit, else k_qconv_wg, MTMI_QCONV_WGMMA=1) in
# one replay of the INT8 plan: time,
# occupancy, throughput, stall reasons and the tensor pipes' activity.
# Usage: scripts/gpu_qconv_ncu.sh   (logs in $OUT or ./results)
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
T0=$(date +%s)
source "$ROOT_DIR/scripts/gpu_env.sh"
gpu_bundle_out gpu_qconv_ncu # BUNDLE=1: the logs as one gpu_qconv_ncu_logs.tgz in $OUT
mkdir -p "$OUT"
BUILD=$ROOT_DIR/build-gpu
{ gpu_configure "$BUILD" && cmake --build "$BUILD" -j 16 --target mtmi_cli test_cuda_int8 mtmi_cuda_bench; } > "$OUT/build.log" 2>&1 \
  || { tail -30 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; }
echo "build done at +$(( $(date +%s) - T0 )) s"
SH=$ROOT_DIR/.deps/shared
MODEL=$SH/reference/mtmi_dynamo_opset17.graph.onnx
CACHE=$OUT/heads_seed1.cache
"$BUILD/mtmi" calibrate "$MODEL" --images "$SH/images" --random-weights 1 -o "$CACHE" > "$OUT/calibrate.log" 2>&1 || { tail -3 "$OUT/calibrate.log"; exit 1; }
rc=0
MTMI_INT8_TEST_ARGS=--bench timeout 300 sh "$ROOT_DIR/tests/cuda/test_cuda_int8.sh" "$BUILD/mtmi" "$BUILD/tests/test_cuda_int8" "$BUILD/int8_test_work" \
  > "$OUT/int8_test.log" 2>&1 || rc=1
grep -E "wgmma|FAIL|DIFFERS|all INT8|error" "$OUT/int8_test.log" | cut -c1-240
# every configuration's time on the depth head's nodes (us; [c] as mtk_qconv_cfg_name)
grep -E "^  bench /depth" "$OUT/int8_test.log" | sed 's/; fused.*//' | cut -c1-600
echo "test_cuda_int8 rc $rc (+$(( $(date +%s) - T0 )) s)"
for wg in 0 1; do
  echo "== ncu, MTMI_QCONV_WGMMA=$wg: the depth head's 3x3 kernels"
  MTMI_QCONV_WGMMA=$wg timeout 200 ncu --profile-from-start off --clock-control none --kernel-name regex:'k_qconv_halo|k_qconv_wg|k_qconv_wr' --launch-count 3 \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis \
    --section MemoryWorkloadAnalysis --metrics smsp__inst_executed.sum --csv --page raw \
    "$BUILD/tests/mtmi_cuda_bench" "$MODEL" --precision int8 --cache "$CACHE" --iters 1 --ncu > "$OUT/ncu_wg$wg.csv" 2> "$OUT/ncu_wg$wg.err" \
    || tail -3 "$OUT/ncu_wg$wg.err"
  python3 "$ROOT_DIR/scripts/ncu_table.py" "$OUT/ncu_wg$wg.csv" pipe_tensor bank_conflict pipe_lsu_wavefronts_mem_shared l1tex__t_bytes lts__t_bytes.sum dram__bytes
done
# the SASS instruction mix of the wgmma kernels (BN 32, MT 2) and of the halo one
OBJ=$(find "$BUILD" -name "qconv.cu.o" | head -1)
for fn in "k_qconv_wrILi32ELi2ELi3ELi3E:wgmma resident 32x2" "k_qconv_wgILi32ELi2ELi3E:wgmma 32x2" "k_qconv_haloILi32ELi3ELb0ELi2E:halo 32"; do
  cuobjdump -sass "$OBJ" 2>/dev/null | awk -v pat="${fn%%:*}" '/Function :/ {on = index($0, pat) > 0; next} on && /\/\*[0-9a-f]+\*\// {op = $2; if (op ~ /^@/) op = $3; print op}' \
    | sed 's/;//' | sort | uniq -c | sort -rn | head -30 | awk '{printf "%s %s, ", $2, $1} END {print ""}' | sed "s/^/  SASS ${fn#*:}: /"
done
echo "total +$(( $(date +%s) - T0 )) s, rc $rc"
exit $rc
