#!/usr/bin/env bash
# Fuzzes every libFuzzer target (fuzz/fuzz_*.c: ONNX, PNG, .npy, calibration
# caches, placement strings) for a set time each, with ASan + UBSan.
#
#   bash scripts/fuzz.sh [SECONDS] [--update-corpus] [TARGET ...]
#
# SECONDS per target: 600 by default (a short value, e.g. 30, for a smoke
# run).  TARGETs are names like npy or fuzz_npy; all by default.  Each
# target starts from the seed corpus in the repository (fuzz/corpus/<name>/)
# plus its working corpus in build-fuzz/corpus-fuzz_<name>/ (kept between
# runs); crashes, leaks and slow inputs go to build-fuzz/artifacts-<name>/.
# --update-corpus merges what a run found into the seed corpus, minimized
# (libFuzzer -merge=1): the committed corpus stays small.  Exit status 1 if
# any target found a problem.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=600
update=0
targets=()
for a in "$@"; do
  case "$a" in
    --update-corpus) update=1 ;;
    ''|*[!0-9]*) targets+=("fuzz_${a#fuzz_}") ;;
    *) secs=$a ;;
  esac
done
py=$PWD/.venv/bin/python
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DMTMI_FUZZ=ON -DMTMI_NO_CUDA=ON \
  -DPython3_EXECUTABLE="$py" >/dev/null
cmake --build build-fuzz -j"${JOBS:-2}" >build-fuzz/build.log 2>&1 || { tail -40 build-fuzz/build.log; exit 1; }
if [ ${#targets[@]} = 0 ]; then
  for f in fuzz/fuzz_*.c; do targets+=("$(basename "$f" .c)"); done
fi
failed=0
for t in "${targets[@]}"; do
  bin=build-fuzz/$t
  name=${t#fuzz_}
  [ -x "$bin" ] || { echo "$t: no such target"; failed=1; continue; }
  seeds=fuzz/corpus/$name work=build-fuzz/corpus-$t art=build-fuzz/artifacts-$name
  mkdir -p "$seeds" "$work" "$art"
  # -timeout: an input taking over 25 s is a hang (a quadratic parse, a
  # blocking read); -rss_limit_mb: a memory bomb.
  rc=0
  "$bin" -max_total_time="$secs" -timeout=25 -rss_limit_mb=4096 -max_len=200000 \
    -artifact_prefix="$art/" "$work" "$seeds" >"build-fuzz/$t.log" 2>&1 || rc=$?
  echo "$t: $(grep -oE 'Done [0-9]+ runs' "build-fuzz/$t.log" || echo 'no summary'), $(grep -oE 'cov: [0-9]+' "build-fuzz/$t.log" | tail -1)"
  if [ $rc != 0 ]; then
    failed=1
    echo "$t: FAILED (exit $rc), inputs in $art/:"
    grep -E 'ERROR|SUMMARY|artifact' "build-fuzz/$t.log" | head -10
  elif [ $update = 1 ]; then
    tmp=$(mktemp -d)
    if "$bin" -merge=1 "$tmp" "$seeds" "$work" >/dev/null 2>&1 && [ -n "$(ls "$tmp")" ]; then
      rm -rf "$seeds" && mv "$tmp" "$seeds"
      echo "$t: seed corpus now $(ls "$seeds" | wc -l) files, $(du -sh "$seeds" | cut -f1)"
    else
      rm -rf "$tmp"
      echo "$t: merge failed; seed corpus left as it was"
    fi
  fi
done
exit $failed
