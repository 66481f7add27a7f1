#!/usr/bin/env bash
# The app at the engine's speed (issue 12), in one GPU-machine command: build
# (carried .deps, as gpu_check.sh), the GPU tests of the result forms and
# the pipeline, then in the same process call for each bench the engine's
# own whole-network time (`mtmi bench --vs-engine`: the whole model as one
# CUDA plan on the encoder's GPU) beside what the pipeline delivers:
#   - all stages cuda:0/fp16, class map + fp16 depth to the host   (target >= 0.90x)
#   - the original deployment's outputs: int8 logits + fp32 depth  (target >= 0.75x)
#   - results left in device memory (no copy)
#   - `mtmi run` over 200 1024x1024 PNGs: --save classes,depth      (target >= 200 fps)
#                                         --save classes,depth,vis  (target >= 60 fps)
# Carry: .deps.  Usage: scripts/gpu_app.sh [FRAMES]   Output: $OUT (or ./results).
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
FRAMES=${1:-400}
LOGS=$ROOT_DIR/gpu-app-logs
mkdir -p "$OUT" "$LOGS"
T0=$(date +%s)
source "$ROOT_DIR/scripts/gpu_env.sh"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nproc
BUILD=$ROOT_DIR/build-gpu
gpu_configure "$BUILD" > "$LOGS/build.log" 2>&1 &&
  cmake --build "$BUILD" -j 16 --target mtmi_cli test_output_forms test_pipeline_gpu test_pipeline_results >> "$LOGS/build.log" 2>&1 ||
  { tail -30 "$LOGS/build.log"; echo "BUILD FAILED"; exit 1; }
echo "build done at +$(( $(date +%s) - T0 )) s"
M=$BUILD/mtmi
rc=0
echo "== GPU tests: result forms (FP16 / FP32 plans, fused resize + class map), pipeline"
timeout 300 "$BUILD/tests/test_output_forms" --gpu > "$LOGS/test_output_forms.log" 2>&1 || { rc=1; echo "test_output_forms --gpu FAILED"; }
grep -E "cuda|FAIL|passed" "$LOGS/test_output_forms.log"
timeout 300 "$BUILD/tests/test_pipeline_results" --gpu > "$LOGS/test_pipeline_results.log" 2>&1 || { rc=1; echo "test_pipeline_results --gpu FAILED"; }
grep -E "cuda|FAIL|passed" "$LOGS/test_pipeline_results.log"
timeout 300 "$BUILD/tests/test_pipeline_gpu" > "$LOGS/test_pipeline_gpu.log" 2>&1 || { rc=1; echo "test_pipeline_gpu FAILED"; }
tail -3 "$LOGS/test_pipeline_gpu.log"
bench() { # name results placement [extra]
  local name=$1 res=$2 place=$3; shift 3
  echo "== bench $name: --results $res --place $place $* (+$(( $(date +%s) - T0 )) s)"
  timeout 300 "$M" bench --place "$place" --results "$res" --frames "$FRAMES" --warmup 30 --vs-engine --quiet \
    --json "$OUT/bench_$name.json" "$@" > "$LOGS/bench_$name.log" 2>&1 || { rc=1; tail -3 "$LOGS/bench_$name.log"; }
  grep -E "^summary|^results|^engine|device memory|peak RSS" "$LOGS/bench_$name.log"
}
FP16="encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16"
bench classes_depth16 classes,depth:fp16 "$FP16"
bench logits8_depth32 logits,depth "$FP16"
bench classes_depth32 classes,depth "$FP16"
bench float_logits logits:fp32,depth "$FP16"
bench on_device classes,depth:fp16 "$FP16" --on-device
bench inflight3 classes,depth:fp16 "$FP16" --inflight 3
echo "== run over 200 PNG frames (the shared images, copied) (+$(( $(date +%s) - T0 )) s)"
FR=/tmp/mtmi_frames
rm -rf "$FR"; mkdir -p "$FR"
for i in $(seq 0 199); do cp "$ROOT_DIR/.deps/shared/images/$(( i % 5 + 1 )).png" "$FR/f$(printf %03d $i).png"; done
runapp() { # name save [extra]
  local name=$1 save=$2; shift 2
  rm -rf /tmp/mtmi_res_$name
  /usr/bin/time -v "$M" run --images "$FR" --place "$FP16" --save "$save" -o /tmp/mtmi_res_$name --quiet \
    --json "$OUT/run_$name.json" "$@" > "$LOGS/run_$name.log" 2> "$LOGS/run_$name.time" || { rc=1; tail -3 "$LOGS/run_$name.log" "$LOGS/run_$name.time"; }
  echo "== run $name (--save $save $*): $(grep -E '^summary' "$LOGS/run_$name.log")"
  grep -E "^io|^wrote|^overall|device memory|^results" "$LOGS/run_$name.log"
  grep -E "Maximum resident|Elapsed|Percent of CPU" "$LOGS/run_$name.time" | sed 's/^\s*/   /'
  echo "   files: $(ls /tmp/mtmi_res_$name | wc -l)"
}
runapp cd classes,depth
runapp cdv classes,depth,vis
runapp seed logits,depth --format seed
cp /tmp/mtmi_res_cdv/f001_vis.png "$OUT/" 2>/dev/null
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(n):
    try: return json.load(open(os.path.join(out, n)))
    except Exception: return {}
print("\n%-18s %-28s %9s %9s %8s %8s %10s %9s" % ("bench", "results", "fps", "engine", "ratio", "MB/frm", "copy GB/s", "dev MiB"))
targets = {"classes_depth16": 0.90, "logits8_depth32": 0.75}
for n in ("classes_depth16", "logits8_depth32", "classes_depth32", "float_logits", "on_device", "inflight3"):
    j = load("bench_%s.json" % n)
    if not j: continue
    eng = 1000.0 / j["engine_ms"] if j.get("engine_ms") else 0
    mem = j.get("memory", {}).get("gpu_device_bytes", {}).get("cuda:0", 0) / 1048576.0
    t = targets.get(n)
    print("%-18s %-28s %9.1f %9.1f %7.3fx %8.2f %10.1f %9.1f %s" % (n, j.get("results", ""), j["fps"], eng, j.get("engine_fraction", 0),
          j.get("d2h_bytes_per_frame", 0) / 1e6, j.get("copy_gbps", -1), mem,
          "" if t is None else ("target %.2fx %s" % (t, "MET" if j.get("engine_fraction", 0) >= t else "MISSED"))))
for n, t in (("cd", 200), ("cdv", 60), ("seed", None)):
    j = load("run_%s.json" % n)
    if j: print("run %-5s %-28s pipeline %7.1f fps, overall (files written) %7.1f fps %s" % (n, j.get("results", ""), j["fps"], j.get("overall_fps", 0),
                "" if t is None else ("target %d %s" % (t, "MET" if j.get("overall_fps", 0) >= t else "MISSED"))))
PY
echo "total +$(( $(date +%s) - T0 )) s, rc $rc"
exit $rc
