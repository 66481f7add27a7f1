#!/usr/bin/env bash
# INT8 heads on the GPU, one command for the GPU machine: build (as
# scripts/gpu_check.sh does, with the carried .deps), calibrate the reference
# model's heads (random weights seed 1) on the carried image, run
# test_cuda_int8 as ctest does (GPU INT8 kernels and model vs the CPU INT8
# reference, on the built-in network) and benchmark the CUDA plan with FP16
# heads against INT8 heads (timings do not depend on the weights); a table
# last.
# Logs and JSON go to $OUT (or ./results).  Usage: scripts/gpu_int8.sh [ITERS [ncu]]
set -u
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
ITERS=${1:-100}
T0=$(date +%s)
source "$ROOT_DIR/scripts/gpu_env.sh"
gpu_bundle_out gpu_int8 # BUNDLE=1: the logs as one gpu_int8_logs.tgz in $OUT
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
echo "== build"
BUILD=$ROOT_DIR/build-gpu
gpu_configure "$BUILD" \
  > "$OUT/build.log" 2>&1 && cmake --build "$BUILD" -j 16 --target mtmi_cli test_cuda_int8 mtmi_cuda_bench >> "$OUT/build.log" 2>&1
if [ $? -ne 0 ]; then tail -30 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; fi
grep -E "^CUDNN_(LIB|INCLUDE)" "$BUILD/CMakeCache.txt" || true
echo "build done at +$(( $(date +%s) - T0 )) s"
BIN=$BUILD/mtmi
TEST=$(ls "$BUILD"/tests/test_cuda_int8 "$BUILD"/test_cuda_int8 2>/dev/null | head -1)
BENCH=$(ls "$BUILD"/tests/mtmi_cuda_bench "$BUILD"/mtmi_cuda_bench 2>/dev/null | head -1)
SH=$ROOT_DIR/.deps/shared
MODEL=$SH/reference/mtmi_dynamo_opset17.graph.onnx
CACHE=$OUT/heads_seed1.cache
rc=0
echo "== calibrate (entropy, random weights seed 1, $(ls "$SH/images" | wc -l) image(s))"
"$BIN" calibrate "$MODEL" --images "$SH/images" --random-weights 1 -o "$CACHE" > "$OUT/calibrate.log" 2>&1 || { tail -5 "$OUT/calibrate.log"; echo "CALIBRATE FAILED"; exit 1; }
tail -1 "$OUT/calibrate.log"
echo "== INT8 kernel and model tests (+$(( $(date +%s) - T0 )) s)"
# the test as ctest runs it (tests/cuda/test_cuda_int8.sh): the built-in
# network with spread weights, whose class map and depth are
# discriminative; the graph-only export with random weights draws one class
# everywhere, and the test refuses such a reference
# --bench: each node's quantize pass and every tile configuration timed
# (and compared bit for bit), the small configurations 11-14 included
MTMI_INT8_TEST_ARGS=${MTMI_INT8_TEST_ARGS:---bench} \
  timeout 240 sh "$ROOT_DIR/tests/cuda/test_cuda_int8.sh" "$BIN" "$TEST" "$BUILD/int8_test_work" > "$OUT/int8_test.log" 2>&1
trc=$?
grep -E "rewrite|QConv|QLinear|INT8 kernels|INT8 wgmma|wgmma|INT8 fused|INT8 resize|INT8 3x3|INT8 features|qupconv|qrescale|qln|agreement|qchain|qresize|FAIL|DIFFERS|passed|error|SUMMARY|^  bench" "$OUT/int8_test.log" | cut -c1-260
echo "test_cuda_int8 exit: $trc"
[ $trc -ne 0 ] && rc=1
echo "== benchmark: FP16 heads vs INT8 heads (+$(( $(date +%s) - T0 )) s)"
timeout 90 "$BENCH" "$MODEL" --precision fp16 --iters "$ITERS" --json "$OUT/bench_fp16.json" > "$OUT/bench_fp16.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_fp16.log"; }
timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" --json "$OUT/bench_int8.json" \
  --profile "$OUT/profile_int8.txt" > "$OUT/bench_int8.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_int8.log"; }
# A/B of the qchain fusion (fuse_qchain.c, on by default), same call: without it
MTMI_CUDA_NO_FUSE=qchain timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_noqchain.json" > "$OUT/bench_int8_noqchain.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_int8_noqchain.log"; }
# ... and of the qresize fusion (fuse_qresize.c, on by default): without it
MTMI_CUDA_NO_FUSE=qresize timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_noqresize.json" > "$OUT/bench_int8_noqresize.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_int8_noqresize.log"; }
# ... and of the opt-in qupconv fusion (fuse_qupconv.c): with it
MTMI_CUDA_FUSE_OPT=qupconv timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_qupconv.json" > "$OUT/bench_int8_qupconv.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_int8_qupconv.log"; }
grep -E "steps" "$OUT/bench_int8_qupconv.log" | head -1 | sed 's/^/  +qupconv: /'
# ... and of the rescaling writer of fuse_qresize.c (on by default): without it
MTMI_CUDA_NO_FUSE=qrescale timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_qrescale.json" > "$OUT/bench_int8_qrescale.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_int8_qrescale.log"; }
# ... and of the encoder's int8 features (fuse_qln.c, on by default): without it
MTMI_CUDA_NO_FUSE=qln timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_noqln.json" > "$OUT/bench_int8_noqln.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_int8_noqln.log"; }
# ... and of the reassociated seg fuse conv (MTMI_INT8_REASSOC=1, opt-in;
# its upsample-sum in level 0's GEMM, fuse_qupsum.c), and without that fusion
MTMI_INT8_REASSOC=1 timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_reassoc.json" --profile "$OUT/profile_int8_reassoc.txt" > "$OUT/bench_int8_reassoc.log" 2>&1 \
  || { rc=1; tail -3 "$OUT/bench_int8_reassoc.log"; }
MTMI_INT8_REASSOC=1 MTMI_CUDA_NO_FUSE=qupsum timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_reassoc_nofuse.json" > "$OUT/bench_int8_reassoc_nofuse.log" 2>&1 || { rc=1; tail -3 "$OUT/bench_int8_reassoc_nofuse.log"; }
# ... and of the 3x3 convs on the wgmma kernel (MTMI_QCONV_WGMMA=1, sm_90a)
MTMI_QCONV_WGMMA=1 timeout 90 "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters "$ITERS" \
  --json "$OUT/bench_int8_wgmma.json" --profile "$OUT/profile_int8_wgmma.txt" > "$OUT/bench_int8_wgmma.log" 2>&1 \
  || { rc=1; tail -3 "$OUT/bench_int8_wgmma.log"; }
grep -E "^fusions" "$OUT/bench_int8_reassoc.log" | head -1 | sed 's/^/  reassoc plan /'
# the seg head's steps (part 1), eager, with and without the rewrite
for f in profile_int8 profile_int8_reassoc; do
  awk -v f=$f '$1 == "step" && $4 == 1 {n++; t += $6; s = s sprintf(" %s %.1f,", $5, $6 * 1000)} END {printf "  %s seg steps: %d, %.1f us:%s\n", f, n, t * 1000, s}' "$OUT/$f.txt" 2>/dev/null
done
# the depth head's steps (part 2), eager, with and without the wgmma 3x3 kernel
for f in profile_int8 profile_int8_wgmma; do
  awk -v f=$f '$1 == "step" && $4 == 2 {n++; t += $6; s = s sprintf(" %s %.1f,", $5, $6 * 1000)} END {printf "  %s depth steps: %d, %.1f us:%s\n", f, n, t * 1000, s}' "$OUT/$f.txt" 2>/dev/null
done
grep -E "^fusions" "$OUT/bench_int8.log" | head -1 | sed 's/^/  int8 plan /'
# "ncu" as the second argument: the INT8 GEMM kernels of one graph replay
# under Nsight Compute (clocks left alone): time, registers, achieved
# occupancy, SM / DRAM throughput, instructions and the leading stall
# reasons, to say where a small layer's time goes
if [ "${2:-}" = ncu ] && command -v ncu > /dev/null; then
  # every kernel of one INT8 replay, time only, in launch order: the
  # heads' kernels are the ones after the encoder's (printed: the heads'
  # total by kernel name, then each of their launches)
  echo "== ncu: every kernel of one replay, device time (+$(( $(date +%s) - T0 )) s)"
  timeout 120 ncu --profile-from-start off --clock-control none --cache-control none --launch-count 400 \
    --metrics gpu__time_duration.sum --csv "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters 1 --ncu \
    > "$OUT/ncu_all.csv" 2> "$OUT/ncu_all.err" || tail -3 "$OUT/ncu_all.err"
  python3 - "$OUT/ncu_all.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
if len(rows) < 2: print("ncu: no rows"); sys.exit(0)
h = rows[0]; ki, vi, ui, ii = h.index("Kernel Name"), h.index("Metric Value"), h.index("Metric Unit"), h.index("ID")
ks = []
for r in rows[1:]:
    try: v = float(r[vi].replace(",", ""))
    except ValueError: continue
    u = r[ui]
    v = v / 1e3 if u in ("ns", "nsecond") else v * 1e3 if u in ("ms", "msecond") else v
    # "void <unnamed>::k_x<...>(...)" -> "k_x" (the anonymous namespace
    # stripped first: cut at its '<', every such kernel was named "")
    ks.append((int(r[ii]), r[ki].replace("void ", "").replace("<unnamed>::", "").split("(")[0].split("<")[0][:48], v))
ks.sort()
# one replay: the launches up to the second appearance of the first kernel
n = next((i for i in range(1, len(ks)) if ks[i][1] == ks[0][1]), len(ks))
rep = ks[:n]
first_q = next((i for i, k in enumerate(rep) if "qconv" in k[1] or "qgemm" in k[1] or "qquant" in k[1]), len(rep))
# the heads start at the first INT8 kernel's predecessor quantize pass or resize: take from the first INT8-related kernel
heads = rep[first_q:]
print("one replay: %d kernels, %.1f us; from the first INT8 kernel on (the heads): %d kernels, %.1f us"
      % (len(rep), sum(k[2] for k in rep), len(heads), sum(k[2] for k in heads)))
tot = collections.Counter(); cnt = collections.Counter()
for _, name, v in heads: tot[name] += v; cnt[name] += 1
for name, v in tot.most_common(12): print("  %8.1f us  %3d x  %s" % (v, cnt[name], name))
print("  launches: " + ", ".join("%s %.1f" % (name.replace("k_", "")[:22], v) for _, name, v in heads))
PY
  echo "== ncu: the INT8 GEMM kernels (tiled, halo, narrow), one replay (+$(( $(date +%s) - T0 )) s)"
  timeout 240 ncu --profile-from-start off --clock-control none --kernel-name regex:'k_qgemm|k_qconv_halo|k_qconv_narrow|k_qconv_wg' --launch-count 15 \
    --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --metrics smsp__inst_executed.sum --csv --page raw \
    "$BENCH" "$MODEL" --precision int8 --cache "$CACHE" --iters 1 --ncu > "$OUT/ncu_qgemm.csv" 2> "$OUT/ncu_qgemm.err" || tail -3 "$OUT/ncu_qgemm.err"
  python3 "$ROOT_DIR/scripts/ncu_table.py" "$OUT/ncu_qgemm.csv"
  # the SASS of one tiled configuration (128x64, no fused quantize) and of
  # the halo kernel: their instruction mix, to count what the epilogue and
  # the loader cost per output
  OBJ=$(find "$BUILD" -name "qconv.cu.o" | head -1)
  if [ -n "$OBJ" ] && command -v cuobjdump > /dev/null; then
    for fn in "k_qgemm_tiledILi128ELi64ELi32ELi32ELi4ELi2ELi0ELb0E:128x64 (cfg 4)" "k_qconv_haloILi32ELi3E:halo 32 (cfg 18)"; do
      cuobjdump -sass "$OBJ" 2>/dev/null | awk -v pat="${fn%%:*}" '/Function :/ {on = index($0, pat) > 0; next} on && /\/\*[0-9a-f]+\*\// {op = $2; if (op ~ /^@/) op = $3; print op}' \
        | sed 's/\..*//; s/;//' | sort | uniq -c | sort -rn | head -25 | awk '{printf "%s %s, ", $2, $1} END {print ""}' | sed "s/^/  SASS ${fn#*:}: /"
    done
  fi
fi
cat "$OUT/bench_fp16.log" "$OUT/bench_int8.log"
grep -E "^step .*qconv-int8" "$OUT/profile_int8.txt" 2>/dev/null | awk '{s+=$6; n++} END {if (n) printf "qconv-int8 steps (eager, one run): %d, %.3f ms in all\n", n, s}'
# every step of the INT8 plan outside the encoder (part 0), longest first:
# where the heads' time goes besides the GEMMs
awk '$1 == "step" && $4 != 0 {t[$5] += $6; n[$5]++; tot += $6} END {for (k in t) printf "  %-12s %3d steps %7.1f us\n", k, n[k], t[k] * 1000; printf "  heads, eager: %.1f us\n", tot * 1000}' \
  "$OUT/profile_int8.txt" 2>/dev/null | sort -k4 -nr
awk '$1 == "step" && $4 != 0' "$OUT/profile_int8.txt" 2>/dev/null | sort -k6 -nr | head -12 | cut -c1-150
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(n):
    try: return json.load(open(os.path.join(out, n)))
    except Exception: return {}
f, i, c, qr = load("bench_fp16.json"), load("bench_int8.json"), load("bench_int8_noqchain.json"), load("bench_int8_noqresize.json")
qu, qs, ql = load("bench_int8_qupconv.json"), load("bench_int8_qrescale.json"), load("bench_int8_noqln.json")
ra, rn, wg = load("bench_int8_reassoc.json"), load("bench_int8_reassoc_nofuse.json"), load("bench_int8_wgmma.json")
summ = ""
try:
    summ = [l for l in open(os.path.join(out, "int8_test.log")) if l.startswith("SUMMARY")][-1]
except Exception: pass
kv = dict(x.split("=", 1) for x in summ.split() if "=" in x)
def ms(v):
    return f"{v:9.3f}" if isinstance(v, (int, float)) else "        -"
print("\n%-28s %9s %9s %8s %9s %9s %9s %9s %9s %9s %9s %9s %8s" % ("CUDA plan, batch 1, ms", "FP16", "INT8hd", "int8/fp16", "-qchain", "-qresize", "+qupconv", "-qrescale", "-qln", "+reassoc", "re-qupsum", "+wgmma", "wg/fp16"))
for k, name in (("whole_ms", "whole net"), ("encoder_ms", "encoder (FP16 in both)"), ("seg_ms", "seg head"), ("depth_ms", "depth head")):
    a, b = f.get(k), i.get(k)
    r = f"{b / a:8.2f}x" if a and b else "       -"
    w = wg.get(k)
    rw = f"{w / a:7.2f}x" if a and w else "       -"
    print("%-28s %s %s %s %s %s %s %s %s %s %s %s %s" % (name, ms(a), ms(b), r, ms(c.get(k)), ms(qr.get(k)), ms(qu.get(k)), ms(qs.get(k)), ms(ql.get(k)),
          ms(ra.get(k)), ms(rn.get(k)), ms(w), rw))
if kv:
    print("INT8 kernels vs CPU reference: %s nodes, %s outputs, %s not bit-identical (max %s ulp); int32 acc %s checked, %s wrong"
          % (kv.get("nodes"), kv.get("outputs"), kv.get("mismatches"), kv.get("max_ulp"), kv.get("acc_checked"), kv.get("acc_bad")))
    print("whole model, seg agreement / depth max err: GPU INT8 vs CPU INT8 %s / %s; GPU FP16 vs CPU FP32 %s / %s; CPU INT8 vs FP32 %s / %s"
          % (kv.get("gpu_int8_vs_cpu_int8_agree"), kv.get("gpu_int8_vs_cpu_int8_depth_max"), kv.get("gpu_fp16_vs_cpu_fp32_agree"),
             kv.get("gpu_fp16_vs_cpu_fp32_depth_max"), kv.get("cpu_int8_vs_fp32_agree"), kv.get("cpu_int8_vs_fp32_depth_max")))
print("memory fp16: %s MiB, int8: %s MiB (cudaMemGetInfo delta)" % (f.get("device_delta_mib"), i.get("device_delta_mib")))
PY
echo "total +$(( $(date +%s) - T0 )) s, rc $rc"
exit $rc
