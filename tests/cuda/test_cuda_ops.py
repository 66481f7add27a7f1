"""GPU operator checks: small ONNX graphs (the layouts and patterns of the
exported network, plus generic fallbacks) through `mtmi infer --device cuda:0`
in FP16 and FP32, against ONNX Runtime FP32 on the CPU.  Exit 77 without a
GPU (ctest SKIP_RETURN_CODE)."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from mtmi_testutil import compare, run_mtmi, run_ort, test_seed

rng = None  # seeded in main (printed; MTMI_TEST_SEED sets it)

# Per element: |gpu - ort| <= rtol |ort| + atol_scale * max |ort| (the
# output's scale: FP16 storage rounds each intermediate to 2^-11 of its own
# magnitude).  The log prints each output's worst element and the share of
# the tolerance it uses; TOL is ~4x the largest errors of the first GPU run
# (H100, 2026-12-06: the worst output used 10.4 % of (1e-2, 5e-3) in FP16,
# 2.9 % of (1e-4, 1e-5) in FP32).
TOL = {"fp16": (4.2e-3, 2.1e-3), "fp32": (1.2e-5, 1.2e-6)}


def gpu_visible():
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
        return r.returncode == 0 and "GPU" in r.stdout
    except OSError:
        return False


def W(name, *shape, scale=None):
    fan = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    a = rng.standard_normal(shape).astype(np.float32) / np.sqrt(max(fan, 1))
    if scale is not None:
        a *= scale
    return numpy_helper.from_array(a.astype(np.float32), name)


def I64(name, vals):
    return numpy_helper.from_array(np.array(vals, dtype=np.int64), name)


def F(name, v):
    return numpy_helper.from_array(np.array(v, dtype=np.float32), name)


def model(nodes, inits, inputs, outputs, opset=17):
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def case_mix_block():
    """A MiT block at small size: conv patch embed, tokens, LN, attention with
    spatial reduction, MLP with depthwise conv and erf-GELU."""
    C, H, Wd, heads, sr = 32, 32, 32, 1, 4
    d = C // heads
    L = H * Wd
    n = []
    i = []
    i += [W("pe_w", C, 3, 7, 7), W("pe_b", C), F("ln_g", np.ones(C)), F("ln_b", np.zeros(C)),
          W("q_w", C, C), W("q_b", C), W("kv_w", C, 2 * C), W("kv_b", 2 * C), W("sr_w", C, C, sr, sr), W("sr_b", C),
          W("p_w", C, C), W("p_b", C), W("f1_w", C, 4 * C), W("f1_b", 4 * C), W("dw_w", 4 * C, 1, 3, 3), W("dw_b", 4 * C),
          W("f2_w", 4 * C, C), W("f2_b", C), F("g2", rng.standard_normal(C)), F("b2", rng.standard_normal(C)),
          I64("s_tok", [1, C, L]), I64("s_img", [1, C, H, Wd]), I64("s_q", [1, L, heads, d]), I64("s_kv", [1, -1, 2, heads, d]),
          I64("s_o", [1, L, C]), I64("s_img4", [1, 4 * C, H, Wd]), I64("s_tok4", [1, 4 * C, L]),
          I64("s_sr", [1, C, -1]), I64("zero", 0), I64("one", 1), F("scale", 1.0 / np.sqrt(d)), F("sq2", np.sqrt(2.0)),
          F("onef", 1.0), F("half", 0.5)]
    n += [helper.make_node("Conv", ["x", "pe_w", "pe_b"], ["c0"], kernel_shape=[7, 7], strides=[4, 4], pads=[3, 3, 3, 3]),
          helper.make_node("Reshape", ["c0", "s_tok"], ["t0"]),
          helper.make_node("Transpose", ["t0"], ["t1"], perm=[0, 2, 1]),
          helper.make_node("LayerNormalization", ["t1", "ln_g", "ln_b"], ["ln"], axis=-1, epsilon=1e-6),
          helper.make_node("MatMul", ["ln", "q_w"], ["q0"]), helper.make_node("Add", ["q0", "q_b"], ["q1"]),
          helper.make_node("Reshape", ["q1", "s_q"], ["q2"]), helper.make_node("Transpose", ["q2"], ["q"], perm=[0, 2, 1, 3]),
          helper.make_node("Transpose", ["ln"], ["lt"], perm=[0, 2, 1]), helper.make_node("Reshape", ["lt", "s_img"], ["li"]),
          helper.make_node("Conv", ["li", "sr_w", "sr_b"], ["sr"], kernel_shape=[sr, sr], strides=[sr, sr]),
          helper.make_node("Reshape", ["sr", "s_sr"], ["sr1"]), helper.make_node("Transpose", ["sr1"], ["sr2"], perm=[0, 2, 1]),
          helper.make_node("LayerNormalization", ["sr2", "g2", "b2"], ["srn"], axis=-1, epsilon=1e-5),
          helper.make_node("MatMul", ["srn", "kv_w"], ["kv0"]), helper.make_node("Add", ["kv0", "kv_b"], ["kv1"]),
          helper.make_node("Reshape", ["kv1", "s_kv"], ["kv2"]), helper.make_node("Transpose", ["kv2"], ["kv"], perm=[2, 0, 3, 1, 4]),
          helper.make_node("Gather", ["kv", "zero"], ["k"], axis=0), helper.make_node("Gather", ["kv", "one"], ["v"], axis=0),
          helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
          helper.make_node("MatMul", ["q", "kt"], ["s0"]), helper.make_node("Mul", ["s0", "scale"], ["s1"]),
          helper.make_node("Softmax", ["s1"], ["p"], axis=-1), helper.make_node("MatMul", ["p", "v"], ["o0"]),
          helper.make_node("Transpose", ["o0"], ["o1"], perm=[0, 2, 1, 3]), helper.make_node("Reshape", ["o1", "s_o"], ["o2"]),
          helper.make_node("MatMul", ["o2", "p_w"], ["pr0"]), helper.make_node("Add", ["pr0", "p_b"], ["pr"]),
          helper.make_node("Add", ["t1", "pr"], ["r1"]),
          helper.make_node("LayerNormalization", ["r1", "ln_g", "ln_b"], ["ln2"], axis=-1, epsilon=1e-6),
          helper.make_node("MatMul", ["ln2", "f1_w"], ["f0"]), helper.make_node("Add", ["f0", "f1_b"], ["f1"]),
          helper.make_node("Transpose", ["f1"], ["f2"], perm=[0, 2, 1]), helper.make_node("Reshape", ["f2", "s_img4"], ["f3"]),
          helper.make_node("Conv", ["f3", "dw_w", "dw_b"], ["dw"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4 * C),
          helper.make_node("Reshape", ["dw", "s_tok4"], ["dw1"]), helper.make_node("Transpose", ["dw1"], ["dw2"], perm=[0, 2, 1]),
          helper.make_node("Div", ["dw2", "sq2"], ["g0"]), helper.make_node("Erf", ["g0"], ["g1"]),
          helper.make_node("Add", ["g1", "onef"], ["g2_"]), helper.make_node("Mul", ["half", "g2_"], ["g3"]),
          helper.make_node("Mul", ["dw2", "g3"], ["g4"]),
          helper.make_node("MatMul", ["g4", "f2_w"], ["m0"]), helper.make_node("Add", ["m0", "f2_b"], ["m1"]),
          helper.make_node("Add", ["r1", "m1"], ["y"])]
    return model(n, i, [("x", [1, 3, 4 * H, 4 * Wd])], ["y"]), [rng.standard_normal((1, 3, 4 * H, 4 * Wd)).astype(np.float32)]


def case_heads():
    """Seg and depth head shapes: 1x1 conv+ReLU, bilinear resize into a concat,
    3x3 conv, sigmoid, a second output."""
    i = [W("a_w", 16, 32, 1, 1), W("a_b", 16), W("b_w", 16, 64, 1, 1), W("b_b", 16), W("f_w", 19, 32, 1, 1), W("f_b", 19),
         W("c3_w", 8, 35, 3, 3), W("c3_b", 8), W("o_w", 1, 8, 1, 1), W("o_b", 1),
         F("sc2", [1, 1, 2, 2]), F("sc4", [1, 1, 4, 4]), F("roi", [])]
    n = [helper.make_node("Conv", ["f1", "a_w", "a_b"], ["a0"], kernel_shape=[1, 1]), helper.make_node("Relu", ["a0"], ["a"]),
         helper.make_node("Conv", ["f2", "b_w", "b_b"], ["b0"], kernel_shape=[1, 1]), helper.make_node("Relu", ["b0"], ["b1"]),
         helper.make_node("Resize", ["b1", "roi", "sc2"], ["b"], mode="linear", coordinate_transformation_mode="half_pixel"),
         helper.make_node("Concat", ["a", "b"], ["cat"], axis=1),
         helper.make_node("Conv", ["cat", "f_w", "f_b"], ["seg0"], kernel_shape=[1, 1]),
         helper.make_node("Resize", ["seg0", "roi", "sc4"], ["seg"], mode="linear", coordinate_transformation_mode="half_pixel"),
         helper.make_node("Concat", ["seg0", "a"], ["cat2"], axis=1),
         helper.make_node("Resize", ["cat2", "roi", "sc2"], ["up"], mode="linear", coordinate_transformation_mode="align_corners"),
         helper.make_node("Conv", ["up", "c3_w", "c3_b"], ["d0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Relu", ["d0"], ["d1"]),
         helper.make_node("Conv", ["d1", "o_w", "o_b"], ["d2"], kernel_shape=[1, 1]),
         helper.make_node("Sigmoid", ["d2"], ["depth"])]
    m = model(n, i, [("f1", [2, 32, 32, 32]), ("f2", [2, 64, 16, 16])], ["seg", "depth"])
    return m, [rng.standard_normal((2, 32, 32, 32)).astype(np.float32), rng.standard_normal((2, 64, 16, 16)).astype(np.float32)]


def case_generic():
    """Generic fallbacks: Slice with steps, Split, Gather by an index list,
    Expand, Concat on the last axis, Gemm with transB, Softmax, Clip, Pow,
    Sub/Max with broadcasting, Cast."""
    i = [I64("st", [1, 0]), I64("en", [7, 100]), I64("ax", [1, 2]), I64("sp", [2, 3]), I64("idx", [3, 0, 2]),
         I64("split", [2, 3]), I64("exp", [2, 4, 34]), W("gw", 16, 34), W("gb", 16), F("two", 2.0), F("lo", -0.5), F("hi", 0.7)]
    n = [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["s"]),        # [2,3,34]
         helper.make_node("Split", ["x", "split"], ["sa", "sb"], axis=1),
         helper.make_node("Gather", ["sa", "idx"], ["g"], axis=2),                # [2,2,3]
         helper.make_node("Concat", ["s", "g"], ["c"], axis=2),                   # [2,3,37]
         helper.make_node("Softmax", ["c"], ["sm"], axis=-1),
         helper.make_node("Slice", ["sm", "st", "en", "ax"], ["sm2"]),            # [2,2,34]... axes 1,2
         helper.make_node("Identity", ["s"], ["e"]),
         helper.make_node("Reshape", ["e", "rs"], ["e2"]),
         helper.make_node("Gemm", ["e2", "gw", "gb"], ["gm"], transB=1),
         helper.make_node("Clip", ["gm", "lo", "hi"], ["cl"]),
         helper.make_node("Pow", ["cl", "two"], ["pw"]),
         helper.make_node("Sub", ["pw", "gb"], ["sub"]),
         helper.make_node("Max", ["sub", "cl"], ["y1"]),
         helper.make_node("Cast", ["sm2"], ["y2"], to=TensorProto.FLOAT)]
    i.append(I64("rs", [4, 34]))
    m = model(n, i, [("x", [2, 5, 100])], ["y1", "y2"])
    return m, [rng.standard_normal((2, 5, 100)).astype(np.float32)]


CASES = {"mix_block": case_mix_block, "heads": case_heads, "generic": case_generic}


def main():
    global rng
    if not gpu_visible():
        print("skipped: no GPU")
        return 77
    rng = np.random.default_rng(test_seed(2024))
    ok = True
    d = tempfile.mkdtemp(prefix="mtmi_cuda_ops_")
    try:
        for name, fn in CASES.items():
            m, inputs = fn()
            path = os.path.join(d, name + ".onnx")
            onnx.save(m, path)
            ref = run_ort(path, {inp.name: x for inp, x in zip(m.graph.input, inputs)})
            for prec in ("fp16", "fp32"):
                rtol, ascale = TOL[prec]
                print(f"{name} {prec}:")
                os.makedirs(os.path.join(d, f"{name}_{prec}"), exist_ok=True)
                try:
                    got = run_mtmi(path, inputs, extra=["--device", "cuda:0", "--precision", prec],
                                   workdir=os.path.join(d, f"{name}_{prec}"))
                except RuntimeError as e:
                    print(f"  FAIL: {e}")
                    ok = False
                    continue
                for k in ref:
                    ok &= compare(k, got[k], ref[k], rtol, ascale * float(np.abs(ref[k]).max()))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print("all GPU op checks passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
