"""`mtmi calibrate --qdq`: the model with QuantizeLinear/DequantizeLinear
pairs (issue 15, the export half), and the cache header's version.

On the reference MTMI network at 256x256 (mtmi make-model, spread weights),
calibrated on four generated street scenes (mtmi synth), evaluated on a
fifth (decoded here, fed as the same .npy to every runner):

 1. structure: standard ONNX only (checker, no custom domain, opset >= 13);
    each of the heads' 15 convolutions reads QuantizeLinear -> Dequantize-
    Linear (the cache's scale of its input tensor, int8 zero point 0) and
    int8 weights behind DequantizeLinear(axis 0) whose values and scales are
    recomputed here in NumPy from the model's float weights (s_w = max|w| /
    127, w_q = clip(rne(w / s_w), -127, 127), as graph/qops.h); every
    output the INT8 contract requantizes (a scale in the cache and not
    reaching a graph output through float ops) is read only through its own
    pair, the others (logits, depth) are not; the encoder stays float;
 2. ONNX Runtime (CPU, graph optimizations off and on) runs the file, and
    its outputs match our INT8 CPU run (`mtmi accuracy --dump`, the
    reference kernels) on the same cache: seg class agreement >= 99.5 %,
    depth within 2 steps of the scale of the depth head's last quantized
    activation everywhere, and depth closer to our INT8 than our INT8 is to
    FP32 (the pairs really quantize, as we do);
 3. --subgraph seg puts pairs on the seg head only; --from-cache writes the
    same bytes as calibrating; an opset-12 model is raised to 13, one with
    an op whose meaning changed by 13 is refused;
 4. the header: TRT-8601-... by default, --trt-version N writes N, a cache
    read with --from-cache keeps its header as read (overrides applied), or
    gets --trt-version's number; bad numbers, --qdq over the model or over
    -o, --from-cache with --images: one-line errors, nothing written."""
import os
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

import mtmi_testutil as tu

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
check = tu.Checks()


def mtmi(*args):
    r = subprocess.run([tu.MTMI_BIN] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"mtmi {' '.join(map(str, args))} failed: {r.stderr.strip()}")
    return r.stdout


def mtmi_fails(args, words, outputs=(), rc=None, what=""):
    r = subprocess.run([tu.MTMI_BIN] + [str(a) for a in args], capture_output=True, text=True)
    problems, msg = tu.error_problems(r.returncode, r.stderr, words, outputs, want_rc=rc)
    print(f"  refused: {what:40s} {'ok' if not problems else 'FAIL'}: {msg[:140]}")
    check(not problems, f"{what}: {problems}")


def read_png_rgb(path):
    """An 8-bit RGB(A), non-interlaced PNG as HxWx3 uint8 (every filter)."""
    data = open(path, "rb").read()
    pos, idat = 8, b""
    while pos < len(data):
        n, t = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if t == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
        elif t == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = 3 if ctype == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w * bpp + 1)
    prev = np.zeros(w * bpp, np.int32)
    rows = []
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f in (0, 2):
            cur = (line + (prev if f == 2 else 0)) & 255
        else:
            cur = np.zeros_like(line)
            for i in range(len(line)):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) >> 1
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[i] = (line[i] + p) & 255
        rows.append(cur)
        prev = cur
    return np.stack(rows).reshape(h, w, bpp)[:, :, :3].astype(np.uint8)


def read_cache(path):
    lines = open(path).read().splitlines()
    scales = {}
    for l in lines[1:]:
        if l.strip():
            name, hexs = l.rsplit(":", 1)
            scales[name.strip()] = struct.unpack(">f", bytes.fromhex(hexs.strip()))[0]
    return lines[0], scales


def weights_int8(w):
    """Our contract (graph/qops.h), independently: per output channel
    s_w = max|w| / 127 in float32 (1 if all zero), w_q = clip(rne(w / s_w),
    -127, 127) with float32 division."""
    w = w.astype(np.float32)
    mx = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    sw = np.where(mx > 0, mx / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.rint(w / sw.reshape((-1,) + (1,) * (w.ndim - 1)))
    return np.clip(q, -127, 127).astype(np.int8), sw


class Graph:
    def __init__(self, model):
        self.m = model
        self.init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        self.prod = {o: n for n in model.graph.node for o in n.output}
        self.cons = {}
        for n in model.graph.node:
            for i in n.input:
                self.cons.setdefault(i, []).append(n)

    def attr(self, n, name, default=None):
        for a in n.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default

    def ancestors(self, t):
        seen, stack = set(), [t]
        while stack:
            n = self.prod.get(stack.pop())
            if n is not None and id(n) not in seen:
                seen.add(id(n))
                stack.extend(n.input)
        return seen


def check_structure(q, model, cache_scales, expect_convs, expect_float):
    """Part 1: expect_convs quantized convolutions, expect_float of whose
    outputs stay float.  Returns {conv name: its input's scale}."""
    g, ref = Graph(q), Graph(model)
    onnx.checker.check_model(q, full_check=True)
    doms = {n.domain for n in q.graph.node} | {o.domain for o in q.opset_import}
    check(doms <= {"", "ai.onnx"}, f"custom domains in the Q/DQ model: {doms}")
    opset = max(o.version for o in q.opset_import if o.domain in ("", "ai.onnx"))
    check(opset >= 13, f"opset {opset} < 13")
    quantized, float_convs, exact = {}, 0, 0
    for n in q.graph.node:
        if n.op_type != "Conv":
            continue
        wdq = g.prod.get(n.input[1])
        if wdq is None or wdq.op_type != "DequantizeLinear":
            float_convs += 1
            check(n.input[1] in g.init and g.init[n.input[1]].dtype == np.float32, f"{n.name}: float weight missing")
            continue
        # weights: int8 initializer, per-channel float scale, int8 zero point 0, axis 0
        wq, sw, zp = (g.init.get(i) for i in wdq.input)
        orig = wdq.input[0][:-len("_int8")] if wdq.input[0].endswith("_int8") else None
        check(orig in ref.init, f"{n.name}: int8 weight '{wdq.input[0]}' does not name a float weight of the model")
        want_q, want_s = weights_int8(ref.init[orig]) if orig in ref.init else (None, None)
        good = (wq is not None and wq.dtype == np.int8 and zp is not None and zp.dtype == np.int8 and not zp.any() and
                g.attr(wdq, "axis", 1) == 0 and sw is not None and sw.dtype == np.float32 and want_q is not None and
                sw.shape == want_s.shape and np.array_equal(wq, want_q) and np.array_equal(sw.view(np.uint32), want_s.view(np.uint32)))
        check(good, f"{n.name}: weights are not our int8 per-channel quantization (axis {g.attr(wdq, 'axis', 1)}, "
                    f"{0 if wq is None or want_q is None or wq.shape != want_q.shape else int((wq != want_q).sum())} values differ)")
        exact += good
        # input: QuantizeLinear -> DequantizeLinear, the cache's scale of the tensor, int8 zero point 0
        xdq = g.prod.get(n.input[0])
        xq = g.prod.get(xdq.input[0]) if xdq is not None and xdq.op_type == "DequantizeLinear" else None
        good = xq is not None and xq.op_type == "QuantizeLinear"
        if good:
            s, z = g.init.get(xq.input[1]), g.init.get(xq.input[2])
            sd, zd = g.init.get(xdq.input[1]), g.init.get(xdq.input[2])
            x = xq.input[0]
            good = (s is not None and s.shape == () and z is not None and z.dtype == np.int8 and z == 0 and x in cache_scales and
                    np.float32(cache_scales[x]) == s and sd == s and zd is not None and zd.dtype == np.int8 and zd == 0)
            quantized[n.name] = float(s) if good else None
        check(good, f"{n.name}: its input is not QuantizeLinear -> DequantizeLinear at the cache's scale")
    print(f"  {len(quantized)} convolutions with Q/DQ ({exact} with int8 weights equal to NumPy's), {float_convs} float")
    check(len(quantized) == expect_convs, f"{len(quantized)} quantized convolutions, expected {expect_convs}")
    # Requantized outputs: the output of each quantized conv (after its
    # Relu / Sigmoid) that has a scale and does not reach a graph output
    # through float ops alone must be read only by its QuantizeLinear.
    qconv = {n.name for n in q.graph.node if n.name in quantized}
    tail = {o.name for o in q.graph.output}
    for n in reversed(q.graph.node):
        if n.name not in qconv and any(o in tail for o in n.output):
            tail.update(n.input)
    requant = notq = 0
    for n in q.graph.node:
        if n.name not in qconv:
            continue
        y = n.output[0]
        c = g.cons.get(y, [])
        if len(c) == 1 and c[0].op_type in ("Relu", "Sigmoid"):
            y = c[0].output[0]
        readers = g.cons.get(y, [])
        if y in cache_scales and y not in tail:
            requant += 1
            ok = (len(readers) == 1 and readers[0].op_type == "QuantizeLinear" and
                  g.init[readers[0].input[1]] == np.float32(cache_scales[y]))
            check(ok, f"{n.name}: output '{y}' is requantized by our INT8 run but not by a lone QuantizeLinear at its scale")
        else:
            notq += 1
            check(all(r.op_type != "QuantizeLinear" for r in readers), f"{n.name}: output '{y}' must stay float")
    print(f"  requantized outputs {requant}, float outputs {notq}")
    check(requant > 0 and notq == expect_float, f"requantized {requant}, float {notq} (want {expect_float} float: the last layers)")
    return quantized


def last_scale(q, output):
    """The input scale of the last quantized conv before a graph output."""
    g = Graph(q)
    n = g.prod[output]
    while n.op_type in ("Resize", "Sigmoid", "Relu"):
        n = g.prod[n.input[0]]
    return float(g.init[g.prod[n.input[0]].input[1]])


def ort_run(path, x, optimize):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {s.get_inputs()[0].name: x[None]})))


def compare_runs(d, model, cache, qdq, x_path, x):
    """Part 2: ONNX Runtime on the Q/DQ model against our INT8 CPU run."""
    dump = os.path.join(d, "dump")
    mtmi("accuracy", model, "--cache", cache, "--images", x_path, "--dump", dump, "--threads", "2", "--no-feature-cache")
    ours = {k: np.load(os.path.join(dump, f"{k}_int8.npy")) for k in ("seg", "depth")}
    fp32 = {k: np.load(os.path.join(dump, f"{k}_fp32.npy")) for k in ("seg", "depth")}
    q = onnx.load(qdq)
    step = last_scale(q, "depth")
    bound = 2 * step
    int8_vs_fp32 = np.abs(ours["depth"] - fp32["depth"]).mean()
    for optimize in (False, True):
        o = ort_run(qdq, x, optimize)
        agree = float(np.mean(o["seg"].argmax(1) == ours["seg"].argmax(1))) * 100
        dd = np.abs(o["depth"].astype(np.float64) - ours["depth"])
        tag = "ORT optimized" if optimize else "ORT plain"
        print(f"  {tag:13s} Q/DQ vs our INT8: seg agreement {agree:.4f} % (>= 99.5), depth max {dd.max():.3g} "
              f"(<= 2 x {step:.4g} = {bound:.4g}), mean {dd.mean():.3g} (our INT8 vs FP32: {int8_vs_fp32:.3g}); "
              f"seg logits max {np.abs(o['seg'] - ours['seg']).max():.3g}")
        check(agree >= 99.5, f"{tag}: seg class agreement {agree:.4f} % < 99.5 %")
        check(dd.max() <= bound, f"{tag}: depth differs by {dd.max():.4g} > {bound:.4g}")
        check(dd.mean() < 0.25 * int8_vs_fp32, f"{tag}: depth mean error {dd.mean():.3g} not well below INT8 vs FP32 {int8_vs_fp32:.3g}")
    fagree = float(np.mean(ours["seg"].argmax(1) == fp32["seg"].argmax(1))) * 100
    print(f"  for scale: our INT8 vs FP32 seg agreement {fagree:.3f} %, depth mean {int8_vs_fp32:.3g}")


def conv_model(path, opset, softmax=False):
    """conv -> relu -> conv (-> softmax): one output, at an older opset."""
    rng = np.random.default_rng(3)
    inits = [numpy_helper.from_array((rng.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32), "w1"),
             numpy_helper.from_array((rng.standard_normal(8) * 0.1).astype(np.float32), "b1"),
             numpy_helper.from_array((rng.standard_normal((4, 8, 1, 1)) * 0.3).astype(np.float32), "w2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["y0" if softmax else "y"], name="conv2")]
    if softmax:
        nodes.append(helper.make_node("Softmax", ["y0"], ["y"], axis=1, name="softmax"))
    g = helper.make_graph(nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)


def check_variants(d, model, cache, qdq, calib):
    """Part 3."""
    ref = Graph(onnx.load(model))
    seg_only = ref.ancestors("seg") - ref.ancestors("depth")
    n_seg = sum(1 for n in ref.m.graph.node if n.op_type == "Conv" and id(n) in seg_only)
    qs = os.path.join(d, "seg_qdq.onnx")
    mtmi("calibrate", model, "--from-cache", cache, "--subgraph", "seg", "--qdq", qs, "--threads", "2")
    gs = Graph(onnx.load(qs))
    nq = sum(1 for n in gs.m.graph.node if n.op_type == "Conv" and n.input[1] in gs.prod)
    print(f"  --subgraph seg: {nq} convolutions with int8 weights (the seg head has {n_seg})")
    check(nq == n_seg, f"--subgraph seg quantized {nq} convs, the seg head has {n_seg}")
    again = os.path.join(d, "again.onnx")
    mtmi("calibrate", model, "--from-cache", cache, "--qdq", again, "--threads", "2")
    check(open(again, "rb").read() == open(qdq, "rb").read(), "--from-cache CACHE --qdq differs from calibrate's --qdq")
    # An opset-12 model: raised to 13, runs, matches our INT8 run.
    m12, c12, q12 = (os.path.join(d, f) for f in ("m12.onnx", "m12.cache", "m12_qdq.onnx"))
    conv_model(m12, 12)
    rng = np.random.default_rng(5)
    xs = []
    for k in range(3):
        xs.append(os.path.join(d, f"x12_{k}.npy"))
        np.save(xs[-1], rng.standard_normal((3, 16, 16)).astype(np.float32))
    mtmi("calibrate", m12, "--images", xs[0], "--images", xs[1], "-o", c12, "--qdq", q12, "--subgraph", "all", "--threads", "2")
    q = onnx.load(q12)
    op = max(o.version for o in q.opset_import if o.domain in ("", "ai.onnx"))
    check(op == 13, f"opset-12 model written at opset {op}, want 13")
    check_structure(q, onnx.load(m12), read_cache(c12)[1], 2, 1)
    mtmi("accuracy", m12, "--cache", c12, "--images", xs[2], "--dump", os.path.join(d, "d12"), "--threads", "2")
    ours = np.load(os.path.join(d, "d12", "y_int8.npy"))
    got = ort_run(q12, np.load(xs[2]), False)["y"]
    err, bound = np.abs(got - ours).max(), 2 * last_scale(q, "y")
    print(f"  opset 12 -> {op}: ORT vs our INT8 max abs {err:.3g} (<= {bound:.3g})")
    check(err <= bound, f"opset-12 model: ORT on the Q/DQ file differs from our INT8 run by {err} > {bound}")
    m11 = os.path.join(d, "m11.onnx")
    conv_model(m11, 11, softmax=True)
    mtmi("calibrate", m11, "--images", xs[0], "-o", os.path.join(d, "m11.cache"), "--subgraph", "all", "--threads", "2")
    mtmi_fails(["calibrate", m11, "--from-cache", os.path.join(d, "m11.cache"), "--subgraph", "all", "--qdq",
                os.path.join(d, "m11_qdq.onnx"), "-o", os.path.join(d, "m11_b.cache")], ["opset 11", "Softmax"],
               [os.path.join(d, "m11_qdq.onnx"), os.path.join(d, "m11_b.cache")], 1, "opset 11 with Softmax")


def check_header(d, model, cache, calib, feats):
    """Part 4."""
    header, scales = read_cache(cache)
    check(header == "TRT-8601-EntropyCalibration2", f"default header {header}")
    c2 = os.path.join(d, "v.cache")
    args = ["calibrate", model, "--features", feats, "--threads", "2", "--method", "minmax"]
    for f in calib:
        args += ["--images", f]
    mtmi(*args, "-o", c2, "--trt-version", "10300")
    h2 = read_cache(c2)[0]
    check(h2 == "TRT-10300-MinMaxCalibration", f"--trt-version 10300 wrote '{h2}'")
    # A cache as another TensorRT wrote it: read, overridden, written back.
    trt = os.path.join(d, "trt.cache")
    with open(cache) as f:
        lines = f.read().splitlines()
    with open(trt, "w") as f:
        f.write("\r\n".join(["TRT-8501-EntropyCalibration2"] + lines[1:]) + "\r\n")
    name = sorted(scales)[0]
    out = os.path.join(d, "rewritten.cache")
    mtmi("calibrate", model, "--from-cache", trt, "--override", f"{name}=0.125", "-o", out)
    h3, s3 = read_cache(out)
    check(h3 == "TRT-8501-EntropyCalibration2", f"a cache read and rewritten got header '{h3}', not the one read")
    want = dict(scales)
    want[name] = 0.125
    check(s3 == want, "a cache read and rewritten lost or changed scales")
    mtmi("calibrate", model, "--from-cache", trt, "--trt-version", "10300", "-o", out)
    h4 = read_cache(out)[0]
    check(h4 == "TRT-10300-EntropyCalibration2", f"--from-cache with --trt-version 10300 wrote '{h4}'")
    print(f"  headers: default {header}, --trt-version {h2}, read-rewritten {h3}, re-versioned {h4}")
    nope = os.path.join(d, "nope.cache")
    for bad in ("86a1", "", "1234567890", "-8601", "0", "8601 "):
        words = ["--trt-version", "expects an integer"] if bad else ["--trt-version", "needs a value"]
        mtmi_fails(args + ["-o", nope, "--trt-version", bad], words, [nope], 2, f"--trt-version '{bad}'")
    before = open(model, "rb").read()
    mtmi_fails(["calibrate", model, "--from-cache", cache, "--qdq", model], ["refusing to overwrite"], [], None, "--qdq over the model")
    check(open(model, "rb").read() == before, "the model was changed")
    mtmi_fails(["calibrate", model, "--from-cache", cache, "--qdq", nope, "-o", nope], ["given for two outputs"], [nope], None,
               "--qdq and -o the same file")
    mtmi_fails(["calibrate", model, "--from-cache", cache, "--images", calib[0], "-o", nope], ["--from-cache"], [nope], 2,
               "--from-cache with --images")
    mtmi_fails(["calibrate", model, "--from-cache", os.path.join(d, "missing.cache"), "--qdq", nope], ["missing.cache"], [nope],
               None, "--from-cache of a missing file")
    # --qdq alone: no cache written.
    only = os.path.join(d, "only_qdq.onnx")
    before = set(os.listdir(d))
    mtmi(*args, "--qdq", only)
    new = set(os.listdir(d)) - before
    check(new == {"only_qdq.onnx"}, f"--qdq without -o wrote {sorted(new)}")


def main():
    with tempfile.TemporaryDirectory() as d:
        model, cache, qdq = (os.path.join(d, f) for f in ("mtmi256.onnx", "c.cache", "qdq.onnx"))
        mtmi("make-model", "-o", model, "--size", "256x256", "--seed", "1")
        mtmi("synth", "-o", os.path.join(d, "syn"), "--count", "5", "--size", "256x256", "--seed", str(tu.test_seed(11)))
        imgs = sorted(os.path.join(d, "syn", "images", f) for f in os.listdir(os.path.join(d, "syn", "images")))
        calib, feats = imgs[:4], os.path.join(d, "features")
        args = ["calibrate", model, "-o", cache, "--qdq", qdq, "--features", feats, "--threads", "2"]
        for f in calib:
            args += ["--images", f]
        print(" ", mtmi(*args).strip().replace("\n", "\n  "))
        x = ((read_png_rgb(imgs[4]).astype(np.float32) - MEAN) / STD).transpose(2, 0, 1).copy()
        x_path = os.path.join(d, "eval.npy")
        np.save(x_path, x)
        print("structure:")
        check_structure(onnx.load(qdq), onnx.load(model), read_cache(cache)[1], 15, 2)
        print("ONNX Runtime against our INT8 run:")
        compare_runs(d, model, cache, qdq, x_path, x)
        print("variants:")
        check_variants(d, model, cache, qdq, calib)
        print("cache header version and bad input:")
        check_header(d, model, cache, calib, feats)
    check.finish("qdq export")


if __name__ == "__main__":
    main()
