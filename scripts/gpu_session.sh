#!/usr/bin/env bash
# Several GPU scripts in one device-machine call, most important first, each
# under a time limit that keeps the whole call inside the machine's
# per-command limit (a call that starts is worth using fully: starts are
# rare and cost minutes).  Each part's full output goes to $OUT/<name>.txt,
# its last lines to stdout.
#   bash scripts/gpu_session.sh TOTAL_SECONDS "name:cap:command" ...
# e.g. bash scripts/gpu_session.sh 590 "triton:300:bash scripts/gpu_triton.sh --instances 2,3" \
#        "plans:200:bash scripts/gpu_plans.sh"
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/results}
mkdir -p "$OUT"
total=$1; shift
t0=$(date +%s)
for part in "$@"; do
  name=${part%%:*}; rest=${part#*:}; cap=${rest%%:*}; cmd=${rest#*:}
  left=$(( total - ($(date +%s) - t0) - 5 ))
  [ "$cap" -gt "$left" ] && cap=$left
  if [ "$cap" -lt 30 ]; then echo "== $name: skipped (${left} s left)"; continue; fi
  echo "== $name (limit $cap s, at +$(( $(date +%s) - t0 )) s): $cmd"
  OUT="$OUT/$name" timeout "$cap" bash -c "$cmd" > "$OUT/$name.txt" 2>&1
  echo "   exit $?"
  tail -n "${TAIL_LINES:-40}" "$OUT/$name.txt"
done
echo "== all done at +$(( $(date +%s) - t0 )) s"
