"""Bad nn-operator attributes and shapes: every case must fail with a one-line
error naming the node and op, a non-zero exit and no crash."""
import sys, os, subprocess, tempfile

import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto
def mk(op, x_shape, inits, **attrs):
    names = ["x"] + [n for n, _ in inits]
    g = helper.make_graph([helper.make_node(op, names, ["y"], **attrs)], "b",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]); m.ir_version = 8
    return m
W = np.ones((4, 3, 3, 3), np.float32)
cases = {
 "conv kernel too big": mk("Conv", [1, 3, 2, 2], [("w", W)]),
 "conv group 0": mk("Conv", [1, 3, 8, 8], [("w", W)], group=0),
 "conv bad group": mk("Conv", [1, 3, 8, 8], [("w", W)], group=2),
 "conv negative pads": mk("Conv", [1, 3, 8, 8], [("w", W)], pads=[-1, 0, 0, 0]),
 "conv stride 0": mk("Conv", [1, 3, 8, 8], [("w", W)], strides=[0, 1]),
 "conv bad auto_pad": mk("Conv", [1, 3, 8, 8], [("w", W)], auto_pad="FOO"),
 "conv channel mismatch": mk("Conv", [1, 5, 8, 8], [("w", W)]),
 "conv 3d weight 4d": mk("Conv", [1, 3, 8, 8, 8], [("w", W)]),
 "maxpool no kernel": mk("MaxPool", [1, 3, 8, 8], []),
 "avgpool kernel too big": mk("AveragePool", [1, 3, 2, 2], [], kernel_shape=[5, 5]),
 "matmul mismatch": mk("MatMul", [3, 4], [("w", np.ones((5, 2), np.float32))]),
 "gemm bad C": mk("Gemm", [3, 4], [("w", np.ones((4, 2), np.float32)), ("c", np.ones((3, 3), np.float32))]),
 "resize neg scale": mk("Resize", [1, 3, 4, 4], [("r", np.array([], np.float32)), ("s", np.array([1, 1, -2, 2], np.float32))]),
 "resize wrong count": mk("Resize", [1, 3, 4, 4], [("r", np.array([], np.float32)), ("s", np.array([2, 2], np.float32))]),
 "resize bad mode": mk("Resize", [1, 3, 4, 4], [("r", np.array([], np.float32)), ("s", np.array([1, 1, 2, 2], np.float32))], mode="foo"),
 "layernorm bad axis": mk("LayerNormalization", [2, 3], [("s", np.ones(3, np.float32))], axis=5),
 "batchnorm bad stats": mk("BatchNormalization", [2, 3, 4], [(n, np.ones(2, np.float32)) for n in "sbmv"]),
 "convt bad outpad": mk("ConvTranspose", [1, 4, 3, 3], [("w", np.ones((4, 2, 3, 3), np.float32))], output_padding=[5, 5]),
}
d = tempfile.mkdtemp()
np.save(f"{d}/x.npy", np.ones((1,), np.float32))
bad = 0
for name, m in cases.items():
    p = f"{d}/m.onnx"; onnx.save(m, p)
    shape = [dd.dim_value for dd in m.graph.input[0].type.tensor_type.shape.dim]
    np.save(f"{d}/x.npy", np.ones(shape, np.float32))
    r = subprocess.run([os.environ["MTMI_BIN"], "infer", p, "--input", f"{d}/x.npy", "-o", d], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    ok = r.returncode not in (0,) and r.returncode < 128 and len(lines) == 1
    bad += not ok
    print(f"{'ok ' if ok else 'BAD'} {name}: rc={r.returncode} {r.stderr.strip()[:200]}")
sys.exit(1 if bad else 0)
