#!/usr/bin/env bash
# The pipeline on a GPU machine, in one command: build (carried .deps, as
# gpu_check.sh), the GPU pipeline test (partitions, pipelined == one at a
# time, INT8 heads, error shutdown), then `mtmi bench --compare` (serial vs
# 2 frames in flight) for the SPEC's placements at 1024x1024, a calibrated
# INT8 run, and `mtmi run` with a Chrome trace.  Logs, JSON and the trace go
# to $OUT (or ./results); a table last.
# Carry: .deps/debs .deps/shared.   Usage: scripts/gpu_pipeline.sh [FRAMES]
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
FRAMES=${1:-200}
LOGS=$ROOT_DIR/gpu-pipeline-logs   # everything; $OUT gets the summary files only
mkdir -p "$OUT" "$LOGS"
T0=$(date +%s)
source "$ROOT_DIR/scripts/gpu_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
BUILD=$ROOT_DIR/build-gpu
gpu_configure "$BUILD" > "$LOGS/build.log" 2>&1 &&
  cmake --build "$BUILD" -j 16 --target mtmi_cli test_pipeline_gpu >> "$LOGS/build.log" 2>&1 ||
  { tail -30 "$LOGS/build.log"; echo "BUILD FAILED"; exit 1; }
echo "build done at +$(( $(date +%s) - T0 )) s"
M=$BUILD/mtmi
SH=$ROOT_DIR/.deps/shared
rc=0
echo "== GPU pipeline test"
timeout 300 "$BUILD/tests/test_pipeline_gpu" > "$LOGS/test_pipeline_gpu.log" 2>&1 || rc=1
grep -vE "^$" "$LOGS/test_pipeline_gpu.log" | cut -c1-300
echo "== the built-in network as ONNX (seed 1), its heads calibrated (entropy, the shared images)"
MODEL=$LOGS/mtmi_seed1.onnx
CACHE=$LOGS/heads.cache
"$M" make-model -o "$MODEL" --seed 1 > "$LOGS/make_model.log" 2>&1 || { tail -3 "$LOGS/make_model.log"; rc=1; }
"$M" calibrate "$MODEL" --images "$SH/images" -o "$CACHE" > "$LOGS/calibrate.log" 2>&1 || { tail -3 "$LOGS/calibrate.log"; rc=1; }
tail -1 "$LOGS/calibrate.log"
bench() { # name placement [extra args]
  local name=$1 place=$2; shift 2
  echo "== bench $name: $place (+$(( $(date +%s) - T0 )) s)"
  timeout 120 "$M" bench ${MODEL:+--model "$MODEL"} --place "$place" --frames "$FRAMES" --warmup 20 --compare --json "$LOGS/bench_$name.json" \
    --quiet "$@" > "$LOGS/bench_$name.log" 2>&1 || { rc=1; tail -3 "$LOGS/bench_$name.log"; }
  grep -E "summary|encoder|seg|depth|end to end|speedup|device memory|sync" "$LOGS/bench_$name.log" | head -24
}
bench fp16 "encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16"
bench int8 "encoder=cuda:0/fp16,seg=cuda:0/int8,depth=cuda:0/int8" --cache "$CACHE"
bench soc "encoder=cuda:0/fp16,depth=cuda:0.sm16/int8,seg=cuda:0.sm16/int8" --cache "$CACHE"
bench soc16 "encoder=cuda:0/fp16,depth=cuda:0.sm16/fp16,seg=cuda:0.sm16/fp16"
# A/B of the int8 features handed from the encoder to the INT8 heads
# (mt_quant_handover, on by default): the same two placements without it
MTMI_NO_INT8_HANDOVER=1 bench int8_noho "encoder=cuda:0/fp16,seg=cuda:0/int8,depth=cuda:0/int8" --cache "$CACHE"
MTMI_NO_INT8_HANDOVER=1 bench soc_noho "encoder=cuda:0/fp16,depth=cuda:0.sm16/int8,seg=cuda:0.sm16/int8" --cache "$CACHE"
# ... and of the float16 NHWC features handed to FP16 heads (mt_pipeline_handover_f16, on by default)
MTMI_NO_F16_HANDOVER=1 bench fp16_noho "encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16"
MTMI_NO_F16_HANDOVER=1 bench soc16_noho "encoder=cuda:0/fp16,depth=cuda:0.sm16/fp16,seg=cuda:0.sm16/fp16"
# one head INT8 (depth, faster than FP16 on an H100), the other FP16
bench mixed "encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/int8" --cache "$CACHE"
# the reassociated seg fuse conv (opt-in, src/quant/reassoc.c, fuse_qupsum.c)
MTMI_INT8_REASSOC=1 bench int8_reassoc "encoder=cuda:0/fp16,seg=cuda:0/int8,depth=cuda:0/int8" --cache "$CACHE"
MTMI_INT8_REASSOC=1 bench soc_reassoc "encoder=cuda:0/fp16,depth=cuda:0.sm16/int8,seg=cuda:0.sm16/int8" --cache "$CACHE"
# The heads do more FLOPs than the encoder (66 vs 51 GFLOP): half the GPU for them.
bench soc64 "encoder=cuda:0/fp16,depth=cuda:0.sm64/int8,seg=cuda:0.sm64/int8" --cache "$CACHE" --trace "$OUT/trace_bench_soc64.json"
python3 scripts/trace_png.py "$OUT/trace_bench_soc64.json" "$OUT/timeline_bench_soc64.png" --frames 8 || true
bench soc64h "encoder=cuda:0/fp16,depth=cuda:0.sm64/fp16,seg=cuda:0.sm64/fp16"
echo "== bench --place auto (measures the candidates, keeps the fastest)"
timeout 200 "$M" bench --model "$MODEL" --cache "$CACHE" --place auto --frames "$FRAMES" --warmup 20 --json "$LOGS/bench_auto.json" \
  > "$LOGS/bench_auto.log" 2>&1 || { rc=1; tail -3 "$LOGS/bench_auto.log"; }
grep -E "^auto:|^placement|^summary|device memory" "$LOGS/bench_auto.log"
MODEL_SAVED=$MODEL; MODEL=  # the built-in network at 256x256 (a file's input size is fixed)
bench gpu_cpu "encoder=cuda:0/fp16,seg=cpu:1,depth=cpu:2" --size 256x256
MODEL=$MODEL_SAVED
echo "== run with a trace (+$(( $(date +%s) - T0 )) s)"
"$M" run --model "$MODEL" --images "$SH/images" --cache "$CACHE" \
  --place "encoder=cuda:0/fp16,depth=cuda:0.sm16/int8,seg=cuda:0.sm16/int8" \
  --frames 40 -o "$LOGS/res" --trace "$OUT/trace_run_soc.json" --json "$LOGS/run_soc.json" > "$LOGS/run_soc.log" 2>&1 || rc=1
tail -12 "$LOGS/run_soc.log"
python3 scripts/trace_png.py "$OUT/trace_run_soc.json" "$OUT/timeline_run_soc.png" --frames 8 || true
"$M" run --frames 4 -o "$LOGS/res_auto" > "$LOGS/run_auto.log" 2>&1 || rc=1
grep -E "placement|summary|device memory" "$LOGS/run_auto.log"
cp "$LOGS"/res/1_vis.png "$OUT/" 2>/dev/null
echo "== errors"
"$M" run --place encoder=cuda:0.sm1000/fp16 --frames 1 -o /tmp/e 2>&1 | tail -1
"$M" run --place encoder=cuda:0.sm2/fp16 --frames 1 -o /tmp/e 2>&1 | tail -1
"$M" run --place encoder=cuda:3/fp16 --frames 1 -o /tmp/e 2>&1 | tail -1
"$M" run --place seg=cuda:0/int8 --frames 1 -o /tmp/e 2>&1 | tail -1
"$M" run --place cuda:0/fp16 --frames 6 --inject-error 1:2 -o /tmp/e --quiet 2>&1 | tail -1
python3 - "$LOGS" "$OUT" <<'PY'
import json, os, sys
logs, out = sys.argv[1], sys.argv[2]
allj = {}
print("\n%-10s %-62s %9s %9s %7s %10s" % ("bench", "placement", "sync fps", "pipe fps", "ratio", "dev MiB"))
for n in ("fp16", "fp16_noho", "int8", "int8_noho", "int8_reassoc", "mixed", "soc", "soc_noho", "soc_reassoc", "soc16", "soc16_noho", "soc64", "soc64h", "auto", "gpu_cpu"):
    try: j = json.load(open(os.path.join(logs, "bench_%s.json" % n)))
    except Exception: continue
    allj[n] = j
    mem = j.get("memory", {}).get("gpu_device_bytes", {}).get("cuda:0", 0) / 1048576.0
    s = (j.get("sync") or {}).get("fps")
    print("%-10s %-62s %9s %9.1f %7s %10.1f" % (n, j.get("placement", "")[:62], "%.1f" % s if s else "-", j.get("fps", 0),
          "%.2f" % (j["fps"] / s) if s else "-", mem))
json.dump(allj, open(os.path.join(out, "benches.json"), "w"), indent=1)
PY
echo "total +$(( $(date +%s) - T0 )) s, rc $rc"
exit $rc
