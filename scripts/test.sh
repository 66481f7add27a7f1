#!/usr/bin/env bash
# The test suite: installs dependencies, builds, runs every test (C unit
# tests, ONNX backend node tests, checks against ONNX Runtime, one full
# 1024x1024 check), then an ASan+UBSan build of the unit and bad-input tests
# and short runs of the fuzz targets.  GPU tests run only where a GPU is.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh
status=0
# Two tests run at once on two cores: idle OpenMP threads must not spin.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ctest --test-dir build --output-on-failure -j"${JOBS:-2}" -LE gpu || status=1

echo "== sanitizers (ASan+UBSan)"
py=$PWD/.venv/bin/python
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMTMI_SANITIZE=ON -DMTMI_NO_CUDA=ON \
      -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build build-asan -j"${JOBS:-2}" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"${JOBS:-2}" -L sanitize || status=1

echo "== ThreadSanitizer (pipeline: frames in flight across CPU devices)"
# --quick keeps one OpenMP thread per CPU device: libgomp is not built with
# TSan and would only add false reports.
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMTMI_NO_CUDA=ON -DCMAKE_C_FLAGS="-fsanitize=thread -g -O1" \
      -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build build-tsan -j"${JOBS:-2}" --target test_pipeline >/dev/null
TSAN_OPTIONS=halt_on_error=1 build-tsan/tests/test_pipeline --quick | tail -1 || status=1

echo "== fuzz smoke (libFuzzer, clang)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMTMI_FUZZ=ON -DMTMI_NO_CUDA=ON \
      -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build build-fuzz -j"${JOBS:-2}" >/dev/null
for f in build-fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus=fuzz/corpus/${name#fuzz_}
  mkdir -p "build-fuzz/corpus-$name"
  # A minute each by default: the committed seed corpus (minimized from
  # longer runs) gets the search deep into the loaders quickly.
  "$f" -max_total_time="${FUZZ_SECONDS:-60}" -rss_limit_mb=4096 -max_len=200000 \
      "build-fuzz/corpus-$name" $( [ -d "$corpus" ] && echo "$corpus" ) \
      >"build-fuzz/$name.log" 2>&1 || { echo "$name FAILED"; tail -30 "build-fuzz/$name.log"; status=1; }
  echo "$name: $(grep -c . "build-fuzz/$name.log") log lines, $(grep -oE 'Done [0-9]+ runs' "build-fuzz/$name.log" || echo 'no summary')"
done
exit $status
