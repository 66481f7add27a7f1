#!/usr/bin/env python3
"""Per-op CPU benchmark of the reference network's hot ops at 1024x1024:
one small ONNX model per op (with the Relu/bias/GELU the network fuses into
it), timed in `mtmi infer` and in ONNX Runtime with the same thread count.
Not a test: prints a table (best of K runs, ms) and the ratio mtmi/ORT.

  scripts/bench_nn_ops.py [--mtmi build/mtmi] [--threads 2] [--repeat 5] [filter]
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(0)


def rnd(*s, scale=1.0):
    return (rng.standard_normal(s) * scale).astype(np.float32)


def mk(nodes, x_shape, inits, opset=17):
    g = helper.make_graph(nodes, "b", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def conv_relu(cin, cout, h, w, k, s=1, p=None, group=1, act="Relu"):
    p = k // 2 if p is None else p
    wt = rnd(cout, cin // group, k, k, scale=1 / np.sqrt(cin // group * k * k))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c" if act else "y"], kernel_shape=[k, k], strides=[s, s],
                              pads=[p] * 4, group=group)]
    if act == "Relu":
        nodes.append(helper.make_node("Relu", ["c"], ["y"]))
    elif act == "Gelu":
        nodes += [helper.make_node("Div", ["c", "sq2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                  helper.make_node("Add", ["e", "one"], ["f"]), helper.make_node("Mul", ["c", "f"], ["g"]),
                  helper.make_node("Mul", ["g", "half"], ["y"])]
    inits = [("w", wt), ("b", rnd(cout)), ("sq2", np.array(1.4142135, np.float32)), ("one", np.array(1.0, np.float32)),
             ("half", np.array(0.5, np.float32))]
    return mk(nodes, [1, cin, h, w], inits), [1, cin, h, w]


def linear(n, k, nout):
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["y"])]
    return mk(nodes, [1, n, k], [("w", rnd(k, nout, scale=1 / np.sqrt(k))), ("b", rnd(nout))]), [1, n, k]


def resize(c, h, w, oh, ow):
    nodes = [helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="linear", coordinate_transformation_mode="half_pixel")]
    return mk(nodes, [1, c, h, w], [("sz", np.array([1, c, oh, ow], np.int64))]), [1, c, h, w]


def layernorm(n, c):
    nodes = [helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-6)]
    return mk(nodes, [1, n, c], [("s", rnd(c)), ("b", rnd(c))]), [1, n, c]


CASES = {
    "depth fuse.0 3x3 96->32 @512": lambda: conv_relu(96, 32, 512, 512, 3),
    "depth fuse.1 3x3 224->64 @256": lambda: conv_relu(224, 64, 256, 256, 3),
    "depth fuse.2 3x3 416->160 @128": lambda: conv_relu(416, 160, 128, 128, 3),
    "depth fuse.3 3x3 256->256 @64": lambda: conv_relu(256, 256, 64, 64, 3),
    "seg fuse 1x1 512->128 @256": lambda: conv_relu(512, 128, 256, 256, 1),
    "seg conv0 1x1 32->128 @256": lambda: conv_relu(32, 128, 256, 256, 1),
    "depth cls 1x1 32->1 @512": lambda: conv_relu(32, 1, 512, 512, 1, act=""),
    "stem 7x7 s4 3->32 @1024": lambda: conv_relu(3, 32, 1024, 1024, 7, s=4, act=""),
    "embed1 3x3 s2 32->64 @256": lambda: conv_relu(32, 64, 256, 256, 3, s=2, act=""),
    "sr conv k=s=8 32 @256": lambda: conv_relu(32, 32, 256, 256, 8, s=8, p=0, act=""),
    "dwconv+gelu 128 @256": lambda: conv_relu(128, 128, 256, 256, 3, group=128, act="Gelu"),
    "dwconv+gelu 256 @128": lambda: conv_relu(256, 256, 128, 128, 3, group=256, act="Gelu"),
    "fc1 65536x32->128": lambda: linear(65536, 32, 128),
    "fc2 65536x128->32": lambda: linear(65536, 128, 32),
    "fc1 16384x64->256": lambda: linear(16384, 64, 256),
    "fc2 16384x256->64": lambda: linear(16384, 256, 64),
    "layernorm 65536x32": lambda: layernorm(65536, 32),
    "resize x4 19 @256->1024": lambda: resize(19, 256, 256, 1024, 1024),
    "resize x2 96 @256->512": lambda: resize(96, 256, 256, 512, 512),
    "resize 128 @64->256": lambda: resize(128, 64, 64, 256, 256),
}


def time_ort(path, x, threads, repeat):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    sess.run(None, {"x": x})
    best = 1e30
    for _ in range(repeat):
        t = time.perf_counter()
        sess.run(None, {"x": x})
        best = min(best, (time.perf_counter() - t) * 1e3)
    return best


def time_mtmi(binary, path, xpath, threads, repeat, d):
    # OpenBLAS's worker threads spin for ~0.1 s after the library starts
    # (our kernels never wake them again); a few runs of a 5 ms op would
    # all fall in that window and share the cores with the spinner, which a
    # full-network run does not.  OPENBLAS_THREAD_TIMEOUT=4 makes them sleep
    # at once, so the per-op numbers match what the op costs in the network.
    env = dict(os.environ, OPENBLAS_THREAD_TIMEOUT="4")
    r = subprocess.run([binary, "infer", path, "--input", xpath, "--threads", str(threads), "--repeat", str(repeat + 1), "-o", d],
                       capture_output=True, text=True, env=env)
    if r.returncode:
        raise RuntimeError(r.stderr.strip())
    return float(re.search(r"run: ([0-9.]+) ms", r.stdout).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mtmi", default=os.path.join(os.path.dirname(__file__), "..", "build", "mtmi"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("filter", nargs="?", default="")
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="mtmi_bench_")
    print(f"{'case':36s} {'mtmi ms':>9s} {'ORT ms':>9s} {'ratio':>6s}")
    tot_m = tot_o = 0.0
    for name, fn in CASES.items():
        if a.filter and a.filter not in name:
            continue
        m, shape = fn()
        path = os.path.join(d, "m.onnx")
        onnx.save(m, path)
        x = rnd(*shape)
        xp = os.path.join(d, "x.npy")
        np.save(xp, x)
        to = time_ort(path, x, a.threads, a.repeat)
        tm = time_mtmi(a.mtmi, path, xp, a.threads, a.repeat, d)
        tot_m += tm
        tot_o += to
        print(f"{name:36s} {tm:9.2f} {to:9.2f} {tm / to:6.2f}", flush=True)
    print(f"{'total':36s} {tot_m:9.2f} {tot_o:9.2f} {tot_m / max(tot_o, 1e-9):6.2f}")


if __name__ == "__main__":
    sys.exit(main())
