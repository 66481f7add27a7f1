#!/usr/bin/env bash
# One command for a GPU machine with PyTorch (about 8-9 minutes on an H100):
# builds mtmi for the CPU (only `mtmi synth` is needed here), renders the
# training and held-out scenes and trains the built-in MTMI network
# (scripts/train_mtmi.py: data, training, held-out check, TorchScript
# opset-17 export with float16 weights), then copies
# models/mtmi_trained.onnx (~10 MB) and models/mtmi_trained.json (the
# record: command, times, data, losses, held-out numbers) to $OUT.
# Needs the carried .deps (scripts/gpu_deps.sh: Debian -dev packages and a
# copy of ../shared/reference for mtmi_torch.py).
# Usage: scripts/gpu_train.sh [train_mtmi.py options, e.g. --minutes 6]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
source "$ROOT_DIR/scripts/gpu_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
BUILD=$ROOT_DIR/build-train
t0=$(date +%s)
{ gpu_configure "$BUILD" && cmake -S "$ROOT_DIR" -B "$BUILD" -DMTMI_NO_CUDA=ON && cmake --build "$BUILD" -j 16 --target mtmi_cli; } \
  > "$OUT/train_build.log" 2>&1 || { tail -30 "$OUT/train_build.log"; echo "BUILD FAILED"; exit 1; }
echo "built mtmi (CPU) in $(( $(date +%s) - t0 )) s"
python3 scripts/train_mtmi.py --mtmi "$BUILD/mtmi" --reference "$ROOT_DIR/.deps/shared/reference" "$@" 2>&1 | tee "$OUT/train.log"
cp models/mtmi_trained.onnx models/mtmi_trained.json "$OUT/"
echo "done in $(( $(date +%s) - t0 )) s: $OUT/mtmi_trained.onnx, $OUT/mtmi_trained.json"
