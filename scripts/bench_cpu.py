#!/usr/bin/env python3
"""CPU FP32 benchmark: the full reference network at 1024x1024 in mtmi
(`mtmi infer --threads N --repeat K`) and in ONNX Runtime with the same
thread count (intra_op_num_threads=N, inter_op_num_threads=1), on the same
machine, same seeded weights and input.  Prints both times (best and median
of K runs after a warm-up) and the ratio mtmi / ORT (target <= 1.0).

Not a test: run it by hand and record the numbers in docs/PERFORMANCE.md.

  scripts/bench_cpu.py [--model PATH] [--threads N] [--repeat K] [--size HxW]
                       [--mtmi build/mtmi] [--profile]
"""
import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tools"))
import onnx  # noqa: E402

from make_variants import make_variant  # noqa: E402


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def ort_profile(path, x, threads):
    """ORT's own per-op times (one profiled run after a warm-up)."""
    import collections
    import json
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.enable_profiling = True
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x})
    sess.run(None, {name: x})
    with open(sess.end_profiling()) as f:
        ev = [e for e in json.load(f) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    ev = ev[len(ev) // 2:]
    agg, cnt = collections.Counter(), collections.Counter()
    for e in ev:
        agg[e["args"]["op_name"]] += e["dur"] / 1e3
        cnt[e["args"]["op_name"]] += 1
    tot = sum(agg.values())
    print(f"ORT profile (second run): {tot:.1f} ms")
    for k, v in agg.most_common(12):
        print(f"  {k:28s} {cnt[k]:4d} {v:9.2f} ms {100 * v / tot:5.1f}%")


def bench_ort(path, x, threads, repeat):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    sess.run(None, {name: x})  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        sess.run(None, {name: x})
        times.append((time.perf_counter() - t) * 1e3)
    return times, ort.__version__


def bench_mtmi(binary, path, x, threads, repeat, tmp, profile, passive=False):
    xp = os.path.join(tmp, "x.npy")
    np.save(xp, x)
    args = [binary, "infer", path, "--input", xp, "--threads", str(threads), "--repeat", str(repeat + 1),
            "-o", os.path.join(tmp, "out")]
    if profile:
        args.append("--profile")
    env = dict(os.environ)
    if passive:
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"mtmi failed: {r.stderr.strip()}")
    m = re.search(r"run: ([\d.]+) ms \(best of (\d+)\)(?:, median ([\d.]+) ms)?", r.stdout)
    if not m:
        sys.exit("could not parse mtmi output:\n" + r.stdout)
    if profile:
        print("\n".join(l for l in r.stdout.splitlines() + r.stderr.splitlines() if not l.startswith("output ")))
    best = float(m.group(1))
    med = float(m.group(3)) if m.group(3) else None
    return best, med


def main():
    ap = argparse.ArgumentParser(description="mtmi vs ONNX Runtime, CPU FP32")
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "shared", "reference",
                                                    "mtmi_dynamo_opset17.graph.onnx"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--size", default=None, help="HxW variant (default: the export's 1024x1024)")
    ap.add_argument("--mtmi", default=os.environ.get("MTMI_BIN", os.path.join(HERE, "..", "build", "mtmi")))
    ap.add_argument("--profile", action="store_true", help="also print mtmi's per-op times")
    ap.add_argument("--omp-passive", action="store_true",
                    help="run mtmi with OMP_WAIT_POLICY=PASSIVE (OpenMP workers sleep instead of spinning, "
                         "which leaves the cores to OpenBLAS's own threads)")
    ap.add_argument("--ort-profile", action="store_true", help="also print ORT's per-op times")
    ap.add_argument("--rounds", type=int, default=1, help="alternate ORT and mtmi this many times; best of all")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="mtmi_bench_")
    size = tuple(int(v) for v in a.size.lower().split("x")) if a.size else None
    path = make_variant(a.model, os.path.join(tmp, "model.onnx"), size, 1, False, fill_seed=0)
    dims = [d.dim_value for d in onnx.load(path, load_external_data=False).graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical CPUs; model {os.path.basename(a.model)} "
          f"input {'x'.join(map(str, dims))}; threads {a.threads}; repeat {a.repeat}")
    if a.ort_profile:
        ort_profile(path, x, a.threads)
    ort_t, bests, meds = [], [], []
    for r in range(a.rounds):  # alternate, so load from elsewhere hits both
        t, ort_ver = bench_ort(path, x, a.threads, a.repeat)
        ort_t += t
        b, m = bench_mtmi(a.mtmi, path, x, a.threads, a.repeat, tmp, a.profile and r == 0, a.omp_passive)
        bests.append(b)
        if m:
            meds.append(m)
        print(f"round {r + 1}: ORT best {min(t):.1f} ms, mtmi best {b:.1f} ms")
    best, med = min(bests), (float(np.median(meds)) if meds else None)
    ob, om = min(ort_t), float(np.median(ort_t))
    print(f"ONNX Runtime {ort_ver}: best {ob:.1f} ms, median {om:.1f} ms")
    print(f"mtmi{' (OMP_WAIT_POLICY=PASSIVE)' if a.omp_passive else ''}: best {best:.1f} ms" + (f", median {med:.1f} ms" if med else ""))
    print(f"ratio mtmi/ORT (best): {best / ob:.3f}" + (f"  (median: {med / om:.3f})" if med else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
