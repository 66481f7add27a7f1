"""INT8 convolution (and Linear) kernels against a NumPy integer reference,
bit for bit: quantize = rne(x / s) clamped, per-output-channel weight
scales, int32 bias, int32 accumulation, float32 epilogue, requantization of
outputs that feed another quantized layer.  Models are built here; the
calibration cache is hand-written in TensorRT's format."""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mtmi_testutil as tu

F32 = np.float32


def hexs(s):
    return struct.pack(">f", s).hex()


def quant(x, s):
    v = x.astype(F32) / F32(s)
    return np.clip(np.rint(v), -128, 127).astype(np.int64)


def qweights(w2d, sx):
    """w2d [M, K] -> (wq [M,K] int64, sw [M] f32, mult [M] f32)."""
    mx = np.abs(w2d).max(axis=1).astype(F32)
    sw = np.where(mx > 0, mx / F32(127), F32(1)).astype(F32)
    wq = np.clip(np.rint(w2d.astype(F32) / sw[:, None]), -127, 127).astype(np.int64)
    return wq, sw, (F32(sx) * sw).astype(F32)


def qbias(b, sx, sw, K):
    r = np.rint(b.astype(np.float64) / (np.float64(sx) * sw.astype(np.float64)))
    lim = 2**31 - 1 - K * 16256
    return np.clip(r, -lim, lim).astype(np.int64)


def conv_int(xq, wq, kh, kw, stride, pads, dil):
    """xq [C,H,W] int64, wq [M, C*kh*kw] -> acc [M, OH, OW] (exact)."""
    C, H, W = xq.shape
    pt, pl, pb, pr = pads
    xp = np.zeros((C, H + pt + pb, W + pl + pr), np.int64)
    xp[:, pt:pt + H, pl:pl + W] = xq
    OH = (H + pt + pb - (kh - 1) * dil - 1) // stride + 1
    OW = (W + pl + pr - (kw - 1) * dil - 1) // stride + 1
    cols = np.zeros((C, kh, kw, OH, OW), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            cols[:, ky, kx] = xp[:, ky * dil: ky * dil + stride * (OH - 1) + 1: stride, kx * dil: kx * dil + stride * (OW - 1) + 1: stride]
    return (wq @ cols.reshape(C * kh * kw, OH * OW)).reshape(-1, OH, OW)


def ref_conv(x, w, b, sx, sy, act, stride=1, pads=(0, 0, 0, 0), dil=1):
    M, C, kh, kw = w.shape
    wq, sw, mult = qweights(w.reshape(M, -1), sx)
    acc = conv_int(quant(x[0], sx), wq, kh, kw, stride, pads, dil)
    if b is not None:
        acc = acc + qbias(b, sx, sw, C * kh * kw)[:, None, None]
    assert np.abs(acc).max() < 2**31
    y = acc.astype(F32) * mult[:, None, None]
    if act == "Relu":
        y = np.where(y > 0, y, F32(0)).astype(F32)
    if sy:
        y = (quant(y, sy).astype(F32) * F32(sy)).astype(F32)
    return y[None]


def main():
    rng = np.random.default_rng(tu.test_seed(3))
    H, W = 17, 23
    x = (rng.standard_normal((1, 3, H, W)) * 1.5).astype(F32)
    wa = (rng.standard_normal((20, 3, 3, 3)) * 0.3).astype(F32)
    ba = (rng.standard_normal(20) * 0.2).astype(F32)
    wb = (rng.standard_normal((7, 20, 1, 1)) * 0.3).astype(F32)
    bb = (rng.standard_normal(7) * 0.1).astype(F32)
    wc = (rng.standard_normal((5, 3, 3, 3)) * 0.3).astype(F32)
    wl = (rng.standard_normal((W, 6)) * 0.3).astype(F32)
    wg = (rng.standard_normal((6, 1, 3, 3)) * 0.3).astype(F32)   # grouped: 3 groups of 1 -> 2
    bg = (rng.standard_normal(6) * 0.2).astype(F32)
    bg[0], bg[3] = 1e6, -1e6   # beyond int32 at these scales: the bias clamp
    bl = (rng.standard_normal(6) * 0.1).astype(F32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             [(wa, "wa"), (ba, "ba"), (wb, "wb"), (bb, "bb"), (wc, "wc"), (wl, "wl"), (bl, "bl"),
              (wg, "wg"), (bg, "bg")]]
    nodes = [
        helper.make_node("Conv", ["x", "wa", "ba"], ["ca"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], name="conv_a"),
        helper.make_node("Relu", ["ca"], ["t1"], name="relu_a"),
        helper.make_node("Conv", ["t1", "wb", "bb"], ["y1"], kernel_shape=[1, 1], name="conv_b"),
        helper.make_node("Conv", ["x", "wc"], ["y2"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 0, 1], dilations=[2, 2], name="conv_c"),
        helper.make_node("MatMul", ["x", "wl"], ["ml"], name="mm"),
        helper.make_node("Add", ["ml", "bl"], ["y3"], name="add"),
        helper.make_node("Conv", ["x", "wg", "bg"], ["y4"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=3, name="conv_g"),
    ]
    g = helper.make_graph(nodes, "qconv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, H, W])],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ["y1", "y2", "y3", "y4"]], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    sx, s1 = F32(0.031), F32(0.017)
    ok = True
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, "q.onnx")
        onnx.save(model, mp)
        np.save(os.path.join(d, "x.npy"), x[0])
        cache = os.path.join(d, "q.cache")
        # As TensorRT would write it: the fused-away 'ca' too, and the outputs.
        with open(cache, "w") as f:
            f.write("TRT-8601-EntropyCalibration2\n")
            for n, s in [("x", sx), ("ca", F32(0.02)), ("t1", s1), ("y1", F32(0.05)), ("y2", F32(0.04)), ("ml", F32(0.1)), ("y3", F32(0.1)), ("y4", F32(0.1))]:
                f.write(f"{n}: {hexs(s)}\n")
        r = subprocess.run([tu.MTMI_BIN, "accuracy", mp, "--cache", cache, "--images", os.path.join(d, "x.npy"), "--dump",
                            os.path.join(d, "out"), "--no-feature-cache", "--threads", "2"], capture_output=True, text=True)
        print(r.stdout.strip())
        if r.returncode:
            print("mtmi accuracy failed:", r.stderr.strip())
            return 1
        names = ["y1", "y2", "y3", "y4"]
        got = {n: np.load(os.path.join(d, "out", f"{n}_int8.npy")) for n in names}
        fp = {n: np.load(os.path.join(d, "out", f"{n}_fp32.npy")) for n in names}
        t1 = ref_conv(x, wa, ba, sx, s1, "Relu", pads=(1, 1, 1, 1))
        want = {"y1": ref_conv(t1, wb, bb, s1, 0, ""),
                "y2": ref_conv(x, wc, None, sx, 0, "", stride=2, pads=(1, 0, 0, 1), dil=2)}
        # Linear: rows of x against W [K, N], per-output-column weight scales.
        wq, sw, mult = qweights(wl.T, sx)
        acc = quant(x, sx).reshape(-1, W) @ wq.T + qbias(bl, sx, sw, W)[None]
        want["y3"] = (acc.astype(F32) * mult[None]).reshape(1, 3, H, 6)
        want["y4"] = np.concatenate([ref_conv(x[:, g:g + 1], wg[2 * g:2 * g + 2], bg[2 * g:2 * g + 2], sx, 0, "", pads=(1, 1, 1, 1))
                                     for g in range(3)], axis=1)
        for n in names:
            same = got[n].shape == want[n].shape and np.array_equal(got[n].view(np.uint32), want[n].astype(F32).view(np.uint32))
            if n == "y3" and not same and np.array_equal(got[n], fp[n]):
                # The INT8 Linear path is what this case tests: a fusion that
                # did not fire is a failure, not a skip.
                print(f"  {n}: FAIL: MatMul+Add was not fused into Linear, so it ran in float: the INT8 Linear is untested")
                ok = False
                continue
            diff = float(np.abs(got[n] - want[n]).max()) if got[n].shape == want[n].shape else float("nan")
            err = float(np.abs(got[n] - fp[n]).max())
            print(f"  {n}: {'bit-exact' if same else 'MISMATCH'} vs the NumPy integer reference (max diff {diff:.3g}); "
                  f"int8 vs fp32 max abs {err:.3g}")
            ok &= bool(same) and err > 0
        # The same bits with any number of threads (the tiles split the work
        # differently; integer sums and per-element epilogues do not care).
        for t in ["1", "3"]:
            od = os.path.join(d, "out" + t)
            r = subprocess.run([tu.MTMI_BIN, "accuracy", mp, "--cache", cache, "--images", os.path.join(d, "x.npy"), "--dump", od,
                                "--no-feature-cache", "--threads", t], capture_output=True, text=True)
            same = r.returncode == 0 and all(
                np.array_equal(np.load(os.path.join(od, f"{n}_int8.npy")).view(np.uint32), got[n].view(np.uint32)) for n in names)
            print(f"  {t} thread(s): {'same bits' if same else 'DIFFERENT'}")
            ok &= same
    print("INT8 kernels are bit-exact" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
