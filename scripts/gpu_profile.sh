#!/usr/bin/env bash
# Where one CUDA-graph replay of the FP16 plan spends its time (device
# machine, one call): builds like gpu_check.sh, then
#  1. the replay time (mtmi_cuda_bench, 200 replays);
#  2. per-kernel device times of one replay, in order, without cache flushes
#     or locked clocks (nsys with graph-node tracing when installed, which also
#     shows the gaps between kernels; else ncu --cache-control none
#     --clock-control none), summed by kind;
#  3. what a graph node costs here (scripts/graph_nodes.cu).
# Usage: scripts/gpu_profile.sh [MODEL]   (logs to $OUT or ./results)
#   PROFILE_ARGS="--precision int8 --cache C" profiles the INT8-heads plan
#   instead (mtmi_cuda_bench's options); GRAPH_NODES=0 skips step 3.
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
mkdir -p "$OUT"
source "$ROOT_DIR/scripts/gpu_env.sh"
BUILD=$ROOT_DIR/build-gpu
gpu_configure "$BUILD" > "$ROOT_DIR/build-gpu.log" 2>&1 && cmake --build "$BUILD" -j 16 --target mtmi_cuda_bench >> "$ROOT_DIR/build-gpu.log" 2>&1 \
  || { tail -40 "$ROOT_DIR/build-gpu.log"; echo "BUILD FAILED"; exit 1; }
MODEL=${1:-$ROOT_DIR/.deps/shared/reference/mtmi_dynamo_opset17.graph.onnx}
BENCH=$(ls "$BUILD"/tests/mtmi_cuda_bench "$BUILD"/mtmi_cuda_bench 2>/dev/null | head -1)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader
"$BENCH" "$MODEL" ${PROFILE_ARGS:-} --iters 200 | grep -E "whole|encoder|seg|depth|steps"
NSYS=$(command -v nsys || ls /usr/local/cuda/bin/nsys /opt/nvidia/nsight-systems*/bin/nsys /usr/local/cuda/nsight-systems*/bin/nsys 2>/dev/null | head -1)
if [ -n "$NSYS" ]; then
  echo "== nsys ($NSYS), graph nodes traced, one replay (the last of 6 in the profiled range)"
  "$NSYS" profile -f true -o "$BUILD/replay" -t cuda --cuda-graph-trace=node --capture-range=cudaProfilerApi \
    "$BENCH" "$MODEL" ${PROFILE_ARGS:-} --ncu > "$BUILD/nsys.log" 2>&1
  "$NSYS" stats -f csv -r cuda_gpu_trace -o "$BUILD/replay" "$BUILD/replay.nsys-rep" >> "$BUILD/nsys.log" 2>&1
  CSV=$(ls "$BUILD"/replay*cuda_gpu_trace*.csv 2>/dev/null | head -1)
  [ -n "$CSV" ] && cp "$CSV" "$OUT/kernels_nsys.csv" || tail -5 "$BUILD/nsys.log"
  MODE=nsys
else
  echo "== ncu, no cache flush, clocks not locked (one replay of 6)"
  ncu --profile-from-start off --cache-control none --clock-control none --metrics gpu__time_duration.sum --csv \
    "$BENCH" "$MODEL" ${PROFILE_ARGS:-} --ncu > "$OUT/kernels_ncu.csv" 2> /dev/null
  MODE=ncu
fi
python3 - "$OUT" "$MODE" <<'PY' | tee "$OUT/kernels.txt"
import csv, sys, os, collections, re
out, mode = sys.argv[1], sys.argv[2]
ks = []  # (name, start_ns or None, dur_ns)
if mode == "nsys":
    rows = list(csv.DictReader(open(os.path.join(out, "kernels_nsys.csv"))))
    for r in rows:
        if r.get("Name", "").startswith("[CUDA mem"): continue
        ks.append((r["Name"], float(r["Start (ns)"]), float(r["Duration (ns)"])))
else:
    rows = [r for r in csv.reader(open(os.path.join(out, "kernels_ncu.csv"))) if len(r) > 10]
    h = rows[0]; ki, vi, ui = h.index("Kernel Name"), h.index("Metric Value"), h.index("Metric Unit")
    for r in rows[1:]:
        u = r[ui]; v = float(r[vi].replace(",", ""))
        v = v if u in ("ns", "nsecond") else v * 1e3 if u in ("us", "usecond") else v * 1e6 if u in ("ms", "msecond") else v * 1e9
        ks.append((r[ki], None, v))
n = len(ks) // 6
ks = ks[-n:]
def kind(name):
    s = name.lower()
    for k, pat in (("attention", "attn"), ("layernorm", "layernorm|k_ln"), ("dwconv", "dw"), ("im2col", "im2col"),
                   ("resize", "resize|bilin"), ("cudnn conv", "cudnn|implicit|conv|xmma|sm90_xmma|fprop"),
                   ("gemm", "gemm|sm90|cutlass|nvjet|gemv|smalln")):
        if re.search(pat, s): return k
    return "other"
tot = collections.Counter(); cnt = collections.Counter(); gaps = 0.0
print("%4s %9s %8s  %s" % ("#", "us", "gap us", "kernel"))
for i, (name, st, d) in enumerate(ks):
    g = (st - (ks[i - 1][1] + ks[i - 1][2])) / 1e3 if st is not None and i else 0.0
    gaps += max(g, 0)
    k = kind(name); tot[k] += d / 1e3; cnt[k] += 1
    print("%4d %9.2f %8.2f  %s" % (i, d / 1e3, g, re.sub(r"\(.*", "", name)[:90]))
busy = sum(tot.values())
span = (ks[-1][1] + ks[-1][2] - ks[0][1]) / 1e3 if ks[0][1] is not None else None
print("\n%d kernels, busy %.1f us" % (n, busy) + (", span %.1f us, gaps %.1f us" % (span, gaps) if span else ""))
for k, v in tot.most_common(): print("  %-11s %3d kernels %8.1f us  %4.1f %%" % (k, cnt[k], v, 100 * v / busy))
PY
[ "${GRAPH_NODES:-1}" = 0 ] && exit 0
echo "== graph node cost"
nvcc -O2 -arch=sm_90 -o "$BUILD/graph_nodes" scripts/graph_nodes.cu && "$BUILD/graph_nodes"
