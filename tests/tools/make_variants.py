"""Variants of a reference export for tests.

  resize_model(model, H, W, batch): the same network for another input size
      (multiple of 32) and/or batch.  The exporters hard-code Reshape targets
      and Resize sizes for 1x3x1024x1024; each one is rewritten by comparing
      the old and the new input shape of its node (onnx.shape_inference,
      node by node): a Reshape target is aligned with its input in blocks of
      equal products; a block whose size changed takes the new size, split
      over the spatial dims by the H and W ratios (channels never change).
      Resize sizes keep batch/channels of their input and scale H and W.
  to_opset13(model): LayerNormalization decomposed into ReduceMean, Sub, Pow,
      ReduceMean, Add, Sqrt, Div, Mul, Add as PyTorch's opset-13 exporter
      writes it, and opset_import 13.

Usage: make_variants.py SRC.onnx OUT.onnx [--size HxW] [--batch B] [--opset13]
           [--fill-weights SEED] [--check]
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _dims(vi):
    return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]


def _shapes(model):
    """name -> dims after ONNX shape inference (with data propagation, so the
    Shape->Slice->Concat chains of the TorchScript export resolve)."""
    m = shape_inference.infer_shapes(model, data_prop=True)
    out = {}
    for vi in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output):
        if vi.type.tensor_type.HasField("shape"):
            out[vi.name] = _dims(vi)
    for t in m.graph.initializer:
        out[t.name] = list(t.dims)
    return out


def _constants(model):
    """name -> numpy array for inline initializers and Constant nodes."""
    c = {}
    for t in model.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            c[t.name] = numpy_helper.to_array(t)
    for n in model.graph.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            c[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    return c


def _align(old_in, old_out):
    """Blocks ([input dims], [output dims]) of equal products, in order."""
    blocks, i, j = [], 0, 0
    while i < len(old_in) or j < len(old_out):
        bi, bo = [], []
        pi = po = 1
        if i < len(old_in):
            bi.append(i); pi *= old_in[i]; i += 1
        if j < len(old_out):
            bo.append(j); po *= old_out[j]; j += 1
        while pi != po:
            if pi < po and i < len(old_in):
                bi.append(i); pi *= old_in[i]; i += 1
            elif j < len(old_out):
                bo.append(j); po *= old_out[j]; j += 1
            else:
                raise ValueError(f"cannot align reshape {old_in} -> {old_out}")
        # trailing 1s join the last block
        if i == len(old_in):
            while j < len(old_out) and old_out[j] == 1:
                bo.append(j); j += 1
        if j == len(old_out):
            while i < len(old_in) and old_in[i] == 1:
                bi.append(i); i += 1
        blocks.append((bi, bo))
    return blocks


def _new_target(target, old_in, old_out, new_in, rh, rw, where):
    """The reshape target for the new input shape."""
    new = [int(t) for t in target]
    for bi, bo in _align(old_in, old_out):
        p_old = int(np.prod([old_in[k] for k in bi])) if bi else 1
        p_new = int(np.prod([new_in[k] for k in bi])) if bi else 1
        if p_new == p_old:
            continue
        # dims fixed by the target (not -1 / 0 copies) that may change
        free = [k for k in bo if target[k] not in (-1, 0) and old_out[k] != 1]
        wild = [k for k in bo if target[k] in (-1, 0)]
        if wild:
            # -1 absorbs the change when it is the only non-1 dim of its block
            if free:
                raise ValueError(f"{where}: block {bo} of {list(target)} mixes -1 with fixed dims")
            continue
        fixed = [k for k in bo if target[k] not in (-1, 0)]
        if len(fixed) == 1:  # e.g. the batch dim
            free = fixed
        if len(free) == 1:
            rest = int(np.prod([old_out[k] for k in bo if k != free[0]]))
            new[free[0]] = p_new // rest
        elif len(free) == 2 and p_old * rh * rw == p_new:
            new[free[0]] = int(round(old_out[free[0]] * rh))
            new[free[1]] = int(round(old_out[free[1]] * rw))
        else:
            raise ValueError(f"{where}: cannot map block {bo} of {list(target)} ({p_old} -> {p_new})")
    return new


class _Rewriter:
    def __init__(self, model):
        self.m = model
        self.names = {t.name for t in model.graph.initializer} | {o for n in model.graph.node for o in n.output}

    def set_const(self, node, idx, arr):
        """Points node.input[idx] at a fresh initializer holding arr (the old
        constant may be shared with nodes that need other values)."""
        base = (node.input[idx] or "const") + "_v"
        k = 0
        while f"{base}{k}" in self.names:
            k += 1
        name = f"{base}{k}"
        self.names.add(name)
        self.m.graph.initializer.append(numpy_helper.from_array(arr, name))
        node.input[idx] = name


def _prune(model):
    """Drops Constant nodes and inline initializers nothing reads any more."""
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    keep = [n for n in model.graph.node if not (n.op_type == "Constant" and n.output[0] not in used)]
    del model.graph.node[:]
    model.graph.node.extend(keep)
    inits = [t for t in model.graph.initializer if t.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def resize_model(model, H, W, batch=1):
    """A copy of model for input batch x C x H x W (see the module doc)."""
    if H % 32 or W % 32:
        raise ValueError(f"input size {H}x{W} must be a multiple of 32")
    old = _shapes(model)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    inp = m.graph.input[0]
    in_dims = _dims(inp)
    if len(in_dims) != 4:
        raise ValueError("expected one NCHW input")
    rh, rw = H / in_dims[2], W / in_dims[3]
    new_in_dims = [batch, in_dims[1], H, W]
    for d, v in zip(inp.type.tensor_type.shape.dim, new_in_dims):
        d.Clear()
        d.dim_value = v
    del m.graph.value_info[:]
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    consts = _constants(m)
    prod = {o: n for n in m.graph.node for o in n.output}
    rw_ = _Rewriter(m)
    cur = None
    for idx, n in enumerate(m.graph.node):
        where = f"node {n.name or idx} ({n.op_type})"
        if n.op_type == "Reshape" and n.input[1] in consts:
            cur = cur or _shapes(m)
            tgt = consts[n.input[1]]
            new_in = cur[n.input[0]]
            if -1 in new_in:
                raise ValueError(f"{where}: input shape unknown after inference")
            new = _new_target(tgt, old[n.input[0]], old[n.output[0]], new_in, rh, rw, where)
            if new != [int(t) for t in tgt]:
                rw_.set_const(n, 1, np.array(new, dtype=tgt.dtype))
                cur = None
        elif n.op_type == "Resize" and len(n.input) > 3 and n.input[3]:
            cur = cur or _shapes(m)
            x_new = cur[n.input[0]]
            sizes = n.input[3]
            def want(pos, old_val):
                if pos < 2:
                    return x_new[pos]
                return int(round(old_val * (rh if pos == 2 else rw)))
            if sizes in consts:
                s = consts[sizes]
                new = np.array([want(k, v) for k, v in enumerate(s)], dtype=s.dtype)
                if not np.array_equal(new, s):
                    rw_.set_const(n, 3, new)
                    cur = None
            elif sizes in prod and prod[sizes].op_type == "Concat":
                cat, pos = prod[sizes], 0
                for k, ci in enumerate(cat.input):
                    ln = int(np.prod(old[ci])) if old.get(ci) else 1
                    if ci in consts:
                        s = consts[ci].reshape(-1)
                        if pos < 2 and pos + len(s) > 0:
                            new = np.array([want(pos + q, v) for q, v in enumerate(s)], dtype=s.dtype)
                        else:
                            new = np.array([want(pos + q, v) for q, v in enumerate(s)], dtype=s.dtype)
                        if not np.array_equal(new, s):
                            rw_.set_const(cat, k, new.reshape(consts[ci].shape))
                            cur = None
                    pos += ln
            else:
                raise ValueError(f"{where}: sizes come from {prod[sizes].op_type if sizes in prod else 'an input'}, not handled")
    _prune(m)
    # declared output shapes from the final inference
    fin = _shapes(m)
    for o in m.graph.output:
        if o.name in fin:
            o.CopyFrom(helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, fin[o.name]))
    return m


def to_opset13(model):
    """LayerNormalization -> the opset-13 decomposition of PyTorch's
    exporter; opset_import 13.  Other ops of these exports are unchanged
    between 13 and 17 (Squeeze/Unsqueeze/Split already take their axes or
    split as inputs at 13)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for op in m.opset_import:
        if op.domain in ("", "ai.onnx"):
            op.version = 13
    used = {o for n in m.graph.node for o in n.output} | {t.name for t in m.graph.initializer}
    nodes = []
    for idx, n in enumerate(m.graph.node):
        if n.op_type in ("Squeeze", "Unsqueeze", "Split", "ReduceMean") and any(a.name in ("axes", "split") for a in n.attribute):
            raise ValueError(f"node {n.name}: {n.op_type} with attribute axes/split is not valid at opset 13")
        if n.op_type == "Reshape":
            # allowzero came with Reshape-14; without zeros in the target
            # both settings mean the same
            keep = [a for a in n.attribute if a.name != "allowzero"]
            del n.attribute[:]
            n.attribute.extend(keep)
        if n.op_type != "LayerNormalization":
            nodes.append(n)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        axis = attrs.get("axis", -1)
        eps = attrs.get("epsilon", 1e-5)
        if axis != -1:
            raise ValueError(f"node {n.name}: LayerNormalization axis {axis} (only -1 is decomposed)")
        p = (n.name or f"ln{idx}").replace("LayerNormalization", "").rstrip("/") + "/ln13"
        t = lambda s: f"{p}/{s}"
        x, out = n.input[0], n.output[0]
        two = helper.make_node("Constant", [], [t("two")], value=numpy_helper.from_array(np.array(2.0, np.float32)))
        epsn = helper.make_node("Constant", [], [t("eps")], value=numpy_helper.from_array(np.array(eps, np.float32)))
        seq = [
            helper.make_node("ReduceMean", [x], [t("mean")], axes=[-1], name=t("ReduceMean")),
            helper.make_node("Sub", [x, t("mean")], [t("sub")], name=t("Sub")),
            two,
            helper.make_node("Pow", [t("sub"), t("two")], [t("pow")], name=t("Pow")),
            helper.make_node("ReduceMean", [t("pow")], [t("var")], axes=[-1], name=t("ReduceMean_1")),
            epsn,
            helper.make_node("Add", [t("var"), t("eps")], [t("add")], name=t("Add")),
            helper.make_node("Sqrt", [t("add")], [t("sqrt")], name=t("Sqrt")),
        ]
        has_w = len(n.input) > 1 and n.input[1]
        has_b = len(n.input) > 2 and n.input[2]
        norm = out if not (has_w or has_b) else t("div")
        seq.append(helper.make_node("Div", [t("sub"), t("sqrt")], [norm], name=t("Div")))
        if has_w:
            mo = out if not has_b else t("mul")
            seq.append(helper.make_node("Mul", [norm, n.input[1]], [mo], name=t("Mul")))
            norm = mo
        if has_b:
            seq.append(helper.make_node("Add", [norm, n.input[2]], [out], name=t("Add_1")))
        for s in seq:
            for o in s.output:
                if o in used and o != out:
                    raise ValueError(f"name clash {o}")
        nodes.extend(seq)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.value_info[:]
    return m


def check_ort(model_path, seed=0):
    """Runs the variant in ONNX Runtime on a seeded input; returns outputs."""
    import onnxruntime as ort
    m = onnx.load(model_path, load_external_data=False)
    dims = _dims(m.graph.input[0])
    x = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {m.graph.input[0].name: x})
    for o, v in zip(sess.get_outputs(), outs):
        if not np.all(np.isfinite(v)):
            raise RuntimeError(f"{model_path}: output {o.name} not finite")
    return x, dict(zip([o.name for o in sess.get_outputs()], outs))


def make_variant(src, dst, size=None, batch=1, opset13=False, fill_seed=None):
    """Loads src (graph only), applies the variants, saves dst (weights
    external beside it when filled)."""
    model = onnx.load(src, load_external_data=False)
    if size or batch != 1:
        dims = _dims(model.graph.input[0])
        H, W = size or (dims[2], dims[3])
        model = resize_model(model, H, W, batch)
    if opset13:
        model = to_opset13(model)
    if fill_seed is not None:
        from mtmi_testutil import fill_external_weights, save_model
        fill_external_weights(model, fill_seed)
        onnx.checker.check_model(model)
        save_model(model, dst)
    else:
        onnx.save(model, dst)
    return dst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--size", help="HxW, multiples of 32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--opset13", action="store_true")
    ap.add_argument("--fill-weights", type=int, metavar="SEED", help="fill external weights with seeded values")
    ap.add_argument("--check", action="store_true", help="run the result in ONNX Runtime (needs --fill-weights)")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x")) if a.size else None
    make_variant(a.src, a.dst, size, a.batch, a.opset13, a.fill_weights)
    if a.check:
        _, outs = check_ort(a.dst)
        for k, v in outs.items():
            print(f"{k}: {v.shape} mean {v.mean():.4g} std {v.std():.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
