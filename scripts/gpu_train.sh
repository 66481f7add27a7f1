#!/usr/bin/env bash
# Trains the built-in MTMI network on a GPU machine with PyTorch: builds
# mtmi for the CPU (only `mtmi synth` is needed here), renders the training
# and held-out scenes (once per machine: /tmp/mtmi_train, /tmp/mtmi_val) and
# runs scripts/train_mtmi.py (data, training, held-out check, TorchScript
# opset-17 export with float16 weights).  Needs the carried .deps
# (scripts/gpu_deps.sh: Debian -dev packages and a copy of
# ../shared/reference for mtmi_torch.py).
#
# One call (about 7 minutes on an H100 with --minutes 5):
#   scripts/gpu_train.sh [train_mtmi.py options, e.g. --minutes 5]
#
# One schedule over N calls of at most --wall minutes each (default 8.5,
# or $MTMI_PHASE_MINUTES), back to back on the same machine
# (docs/GROUND_TRUTH.md, "Training over several GPU calls"):
#   scripts/gpu_train.sh --phase 1 --of 3 [--wall 8.5] [train_mtmi.py options]
#   scripts/gpu_train.sh --phase 2 --of 3
#   scripts/gpu_train.sh --phase 3 --of 3
# Phase 1 starts a run whose schedule fits the N calls; phase K > 1 resumes
# it from build-train/ckpt (the same machine), else from the compact
# checkpoint build-train/carry/mtmi_ckpt.pt (carried from the previous
# call's $OUT when the machine was lost), else starts over and says so; the
# last phase ends the schedule and exports.  Every phase stops training in
# time to be done within --wall minutes of its start, and writes to $OUT:
# train_phaseK.log, mtmi_ckpt.pt (the compact checkpoint, ~9.4 MB: carry it
# to the next call), and in the call that ends the run
# mtmi_trained.onnx (~10 MB) and mtmi_trained.json (the record).
set -euo pipefail
t0=$(date +%s)
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
PHASE=0 OF=0 WALL=${MTMI_PHASE_MINUTES:-8.5}
while [ $# -gt 0 ]; do
  case "$1" in
    --phase) PHASE=$2; shift 2 ;;
    --of) OF=$2; shift 2 ;;
    --wall) WALL=$2; shift 2 ;;
    *) break ;;
  esac
done
if [ "$PHASE" != 0 ] && ! { [ "$OF" -ge 1 ] && [ "$PHASE" -ge 1 ] && [ "$PHASE" -le "$OF" ]; }; then
  echo "gpu_train.sh: --phase K --of N needs 1 <= K <= N (got --phase $PHASE --of $OF)"; exit 2
fi
source "$ROOT_DIR/scripts/gpu_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
BUILD=$ROOT_DIR/build-train
if [ -x "$BUILD/mtmi" ]; then  # a later call on the same machine: an up-to-date check only
  cmake --build "$BUILD" --target mtmi_cli > "$OUT/train_build.log" 2>&1 \
    || { tail -30 "$OUT/train_build.log"; echo "BUILD FAILED"; exit 1; }
  echo "mtmi (CPU) already built ($BUILD): up to date in $(( $(date +%s) - t0 )) s"
else
  { gpu_configure "$BUILD" && cmake -S "$ROOT_DIR" -B "$BUILD" -DMTMI_NO_CUDA=ON && cmake --build "$BUILD" -j 16 --target mtmi_cli; } \
    > "$OUT/train_build.log" 2>&1 || { tail -30 "$OUT/train_build.log"; echo "BUILD FAILED"; exit 1; }
  echo "built mtmi (CPU) in $(( $(date +%s) - t0 )) s"
fi
TRAIN=(python3 scripts/train_mtmi.py --mtmi "$BUILD/mtmi" --reference "$ROOT_DIR/.deps/shared/reference")
if [ "$PHASE" = 0 ]; then
  "${TRAIN[@]}" "$@" 2>&1 | tee "$OUT/train.log"
  cp models/mtmi_trained.onnx models/mtmi_trained.json "$OUT/"
  echo "done in $(( $(date +%s) - t0 )) s: $OUT/mtmi_trained.onnx, $OUT/mtmi_trained.json"
  exit 0
fi

# Phase K of N.  The schedule of a run that starts in this phase: the
# training minutes that the remaining R = N - K + 1 calls leave, estimated
# (each call ~0.8 min of loading, saving and margin; the first ~1.9 more:
# build, rendering and decoding 2400 scenes; the last ~0.5 more: check and
# export).  A resumed run keeps its own schedule; the last call fits what is
# left of it into the time it has.
R=$(( OF - PHASE + 1 ))
TOTAL=$(awk -v r=$R -v w="$WALL" 'BEGIN { t = r * (w - 0.8) - 1.9 - 0.5; printf "%.2f", t < 1 ? 1 : t }')
DEADLINE=$(awk -v t0=$t0 -v w="$WALL" 'BEGIN { printf "%d", t0 + w * 60 - 15 }')
ARGS=(--total-minutes "$TOTAL" --deadline "$DEADLINE" --reserve-final 50 --compact-out "$OUT/mtmi_ckpt.pt")
[ "$PHASE" -gt 1 ] && ARGS+=(--resume)
[ "$PHASE" = "$OF" ] && ARGS+=(--last)
echo "=== PHASE $PHASE OF $OF: $WALL minutes from $(date -u -d @$t0 +%H:%M:%S) UTC, training stops in time for $(date -u -d @$DEADLINE +%H:%M:%S);" \
     "$([ "$PHASE" = 1 ] && echo "a new run, schedule $TOTAL training minutes" || echo "resuming (a new run of $TOTAL minutes if nothing to resume)")"
"${TRAIN[@]}" "${ARGS[@]}" "$@" 2>&1 | tee "$OUT/train_phase$PHASE.log" || {
  echo "=== PHASE $PHASE OF $OF FAILED after $(( $(date +%s) - t0 )) s (log: $OUT/train_phase$PHASE.log;" \
       "$([ -f "$OUT/mtmi_ckpt.pt" ] && echo "$OUT/mtmi_ckpt.pt is the last periodic checkpoint" || echo "no checkpoint in \$OUT"))"
  exit 1
}
STATE=$(python3 -c '
import json, sys
m = json.load(open(sys.argv[1]))
p = m["phases"][-1]
print("run %s: call %d (%s) trained steps %d-%d (%.1f steps/s, %.0f s), schedule %.1f %% -> %.1f %%, %s" % (m["run_id"], p["call"],
      {"fresh": "new run", "full": "resumed on this machine", "compact": "resumed from the carried compact checkpoint",
       "none": "STARTED OVER: nothing to resume"}[p["from"]], p["step_from"], p["step_to"], p["steps_per_s"], p["train_s"],
      100 * p["schedule_from"], 100 * p["schedule_to"], "RUN COMPLETE" if m["finished"] else "not complete"))
' "$BUILD/ckpt/last.json" 2>/dev/null || echo "no checkpoint record")
if grep -q "^record: " "$OUT/train_phase$PHASE.log"; then  # this call ended the run and exported
  cp models/mtmi_trained.onnx models/mtmi_trained.json "$OUT/"
  echo "=== PHASE $PHASE OF $OF DONE in $(( $(date +%s) - t0 )) s: $STATE"
  echo "=== the model: $OUT/mtmi_trained.onnx, $OUT/mtmi_trained.json (copy both into models/ and commit)"
else
  echo "=== PHASE $PHASE OF $OF DONE in $(( $(date +%s) - t0 )) s: $STATE"
  [ "$PHASE" = "$OF" ] && { echo "=== THE LAST PHASE WROTE NO MODEL"; exit 1; }
  echo "=== next: on your side copy this call's mtmi_ckpt.pt (files_at) to build-train/carry/mtmi_ckpt.pt, then at once: bash scripts/gpu_train.sh --phase $(( PHASE + 1 )) --of $OF (carry .deps and build-train/carry)"
fi
