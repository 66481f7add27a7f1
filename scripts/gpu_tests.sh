#!/usr/bin/env bash
# Builds everything on the GPU machine (carried .deps) and runs every `gpu`
# test verbosely into $OUT/gpu_tests.log; prints the verdicts.
set -u
ROOT_DIR=$PWD; source scripts/gpu_env.sh
export MTMI_SHARED=$ROOT_DIR/.deps/shared
T0=$(date +%s)
gpu_configure build-gpu > $OUT/build.log 2>&1 && cmake --build build-gpu -j 16 >> $OUT/build.log 2>&1 || { tail -30 $OUT/build.log; exit 1; }
echo "build +$(( $(date +%s) - T0 )) s"
cd build-gpu && timeout 420 ctest -L gpu -V > $OUT/gpu_tests.log 2>&1; echo "ctest rc $?"
echo "tests +$(( $(date +%s) - T0 )) s"
grep -aE "Test +#|Passed|Failed|FAIL|tests passed|tests failed" $OUT/gpu_tests.log | tail -30
