#!/usr/bin/env bash
# The test suite: installs dependencies, builds, runs every test (C unit
# tests, ONNX backend node tests, checks against ONNX Runtime, one full
# 1024x1024 check; the library installed and used as a consumer would, the
# Python package), the Python package pip-installed into a fresh venv
# (scripts/test_package.sh), the mutation check (scripts/mutants.sh: every
# deliberate bug must be caught), then an ASan+UBSan build of the unit and
# bad-input tests, a ThreadSanitizer run of the pipeline test and a minute
# of fuzzing per libFuzzer target (ONNX, PNG, .npy, calibration caches,
# placements).  GPU tests run only where a GPU is.  Ends with "N passed, N failed"
# over these suites.
set -euo pipefail
cd "$(dirname "$0")/.."
# Disk: a CI machine may have little of it.  pip keeps no wheel cache, every
# ctest test writes under a TMPDIR that tests/tools/scratch.sh removes when
# it ends, and each sanitizer build is removed once its suite has run
# (KEEP_BUILDS=1 keeps them for a rerun).
export PIP_NO_CACHE_DIR=1
drop_build() { [ "${KEEP_BUILDS:-0}" = 1 ] || rm -rf "$1" "$1.log"; }
df -h . | tail -1 | awk '{print "disk: " $4 " free at the start"}'
bash scripts/deps.sh
bash scripts/build.sh
bash scripts/triton_deps.sh   # .venv-triton: tritonserver and its clients for ctest triton_server
py=$PWD/.venv/bin/python
passed=0
failed=0
suite() { # suite NAME STATUS
  if [ "$2" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "suite $1 FAILED"; fi
}
# Builds quietly; on failure shows the end of the log.
quiet_build() { # quiet_build DIR [TARGET...]
  local log=$1.log dir=$1 targets=()
  shift
  [ $# -gt 0 ] && targets=(--target "$@")
  if ! cmake --build "$dir" -j"${JOBS:-2}" "${targets[@]}" >"$log" 2>&1; then tail -40 "$log"; return 1; fi
}

echo "== ctest"
# Two tests run at once on two cores: idle OpenMP threads must not spin.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
rc=0; ctest --test-dir build --output-on-failure -j"${JOBS:-2}" -LE gpu || rc=1
suite ctest $rc

echo "== package: pip install ./python into a fresh venv, its pytest against ONNX Runtime"
# The installed C library (cmake --install, the example built with
# pkg-config and find_package) was ctest's package_install.
rc=0; bash scripts/test_package.sh --python-only || rc=1
suite package $rc

echo "== mutation check (scripts/mutants.sh: deliberate one-line bugs the suite must catch)"
# About 2.5 minutes on 2 cores: a scratch copy under /tmp, a CPU build, each
# mutant rebuilt and run against the tests that must kill it.
rc=0; bash scripts/mutants.sh || rc=1
suite mutants $rc

echo "== sanitizers (ASan+UBSan)"
rc=0
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMTMI_SANITIZE=ON -DMTMI_NO_CUDA=ON \
      -DPython3_EXECUTABLE="$py" >/dev/null && quiet_build build-asan || rc=1
[ $rc = 0 ] && { ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"${JOBS:-2}" -L sanitize || rc=1; }
suite asan-ubsan $rc
drop_build build-asan

echo "== ThreadSanitizer (pipeline: frames in flight across CPU devices; Triton instances of one model)"
# --quick keeps one OpenMP thread per CPU device: libgomp is not built with
# TSan and would only add false reports.
rc=0
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMTMI_NO_CUDA=ON -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" \
      -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DPython3_EXECUTABLE="$py" >/dev/null && quiet_build build-tsan test_pipeline test_triton_units || rc=1
# OMP_NUM_THREADS=1 for the same reason: the scene generator's rows (the
# synthetic frames of the image-input case) are an OpenMP loop too.
[ $rc = 0 ] && { OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_pipeline --quick | tail -1 || rc=1; }
# the Triton engine: instances of one model loading while others run
[ $rc = 0 ] && { OMP_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_triton_units --instances | tail -1 || rc=1; }
suite tsan $rc
drop_build build-tsan

echo "== fuzz (libFuzzer, clang)"
rc=0
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMTMI_FUZZ=ON -DMTMI_NO_CUDA=ON \
      -DPython3_EXECUTABLE="$py" >/dev/null && quiet_build build-fuzz || rc=1
suite fuzz-build $rc
# A minute per target by default (scripts/fuzz.sh runs them longer): the
# committed seed corpora (minimized from longer runs) get the search deep
# into the readers quickly.
if [ $rc = 0 ]; then
  for f in fuzz/fuzz_*.c; do
    name=$(basename "$f" .c)
    rc=0
    bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}" "$name" || rc=1
    suite "$name" $rc
  done
fi
drop_build build-fuzz
df -h . | tail -1 | awk '{print "disk: " $4 " free at the end"}'
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
