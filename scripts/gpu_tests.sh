#!/usr/bin/env bash
# Builds everything on the GPU machine (carried .deps), runs every `gpu`
# test (ctest -j 2; pipeline_gpu alone: RUN_SERIAL) into $OUT/gpu_tests.log,
# the backend-ops test's failures in full, then compute-sanitizer (memcheck)
# on the kernel and upconv tests; prints the verdicts.  ~3-4 min on an H100.
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
source scripts/gpu_env.sh
export MTMI_SHARED=$ROOT_DIR/.deps/shared
T0=$(date +%s)
gpu_configure build-gpu > $OUT/build.log 2>&1 && cmake --build build-gpu -j 16 >> $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build +$(( $(date +%s) - T0 )) s"
rc=0
(cd build-gpu && timeout 420 ctest -L gpu -j 2 --output-on-failure > $OUT/gpu_tests.log 2>&1) || rc=1
grep -aE "Test +#|tests passed|tests failed" $OUT/gpu_tests.log | tail -20
grep -aE "^FAIL" $OUT/gpu_tests.log | head -20
echo "tests +$(( $(date +%s) - T0 )) s"
for t in test_cuda_kernels test_cuda_upconv; do
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/tests/$t > $OUT/sanitizer_$t.log 2>&1
  src=$?
  echo "compute-sanitizer $t: rc $src, $(grep -aE 'ERROR SUMMARY' $OUT/sanitizer_$t.log | tail -1)"
  [ $src -ne 0 ] && rc=1
done
echo "total +$(( $(date +%s) - T0 )) s, rc $rc"
exit $rc
