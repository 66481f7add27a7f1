#!/usr/bin/env bash
# The 3x3 convolutions on wgmma with resident weights (wgconv.cuh: INT8
# k_qconv_wr, FP16 k_hconv_wr; built in the eighth session without a GPU),
# checked and measured on the device machine.  Two parts, each one call
# (each fits the 10-minute limit; together they may not):
#   int8: gpu_int8.sh 50 -- cuda_int8 (every wgmma configuration bit for
#         bit against the automatic choice, the resident ones at SM budgets
#         0/1/3; the whole model with qconv_wgmma=1 and =0), the --bench
#         sweep of every configuration on every node, and FP16 vs INT8 vs
#         +wgmma (MTMI_QCONV_WGMMA=1) heads with the depth head's steps;
#   fp16: gpu_ab.sh -- cuda_hconv (the FP16 kernel vs a CPU reference, every
#         configuration, SM budgets 0/1/3) and cuda_fusion (pass wgconv vs
#         the unfused plan), then the whole network with and without
#         MTMI_CUDA_FUSE_OPT=wgconv (and with upconv off) in alternating
#         rounds, then
#         test_cuda_hconv --bench (each configuration on the depth head's
#         four layers at 1024x1024).
# Usage: scripts/gpu_wr.sh int8|fp16   (logs in $OUT or ./results)
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
case ${1:-} in
  int8)
    BUNDLE=${BUNDLE:-1} OUT=$OUT bash "$ROOT_DIR/scripts/gpu_int8.sh" 50 ;;
  fp16)
    # wgconv beside the upconv kernel (which keeps fuse.0), and instead of
    # it (fuse.0 as resize-cat + the wgmma conv: predicted ~55 us against
    # the upconv kernel's ~78)
    OUT=$OUT bash "$ROOT_DIR/scripts/gpu_ab.sh" -R "cuda_hconv|cuda_fusion" -r 3 none MTMI_CUDA_FUSE_OPT=wgconv \
      MTMI_CUDA_FUSE_OPT=wgconv+MTMI_CUDA_NO_FUSE=upconv
    rc=$?
    # the shared main loop's barriers and shared-memory accesses under
    # compute-sanitizer (the FP16 kernel's quick cases; racecheck may not
    # see the tensor cores' asynchronous reads, memcheck sees every access)
    for tool in memcheck racecheck; do
      timeout 240 compute-sanitizer --tool $tool --error-exitcode 9 "$ROOT_DIR/build-gpu/tests/test_cuda_hconv" --quick \
        > "$OUT/hconv_$tool.log" 2>&1
      echo "compute-sanitizer $tool on test_cuda_hconv --quick: exit $? ($(grep -c 'ERROR SUMMARY: 0 errors\|RACECHECK SUMMARY: 0 hazards' "$OUT/hconv_$tool.log") clean summaries)"
      grep -E "ERROR SUMMARY|RACECHECK SUMMARY|FAIL" "$OUT/hconv_$tool.log" | head -3
    done
    echo "== test_cuda_hconv --bench"
    timeout 120 "$ROOT_DIR/build-gpu/tests/test_cuda_hconv" --bench > "$OUT/hconv_bench.log" 2>&1 || rc=1
    grep -E "bench|FAIL|runs|all ok|FAILED|skipped" "$OUT/hconv_bench.log" | tail -20
    exit $rc ;;
  *)
    echo "usage: scripts/gpu_wr.sh int8|fp16" >&2
    exit 2 ;;
esac
