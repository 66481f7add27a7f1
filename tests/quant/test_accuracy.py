"""INT8 heads against FP32 on real images (calibrate on 4 of ../shared's
street scenes, evaluate on the fifth; a missing ../shared is a failure):

 1. a small two-head conv network built here (conv encoder, SegFormer-like
    seg head, DEST-like depth head; He-initialized random weights), whose
    activations keep the images' structure, and the same with folded-BN-like
    channel gains: entropy must do at least as well as min-max on both heads
    (seg agreement, depth mean error) with the gains;
 2. the reference MTMI network (mtmi make-model, 256x256, spread weights).
Every model's FP32 output on the evaluation image is first checked to be
discriminative (many classes, depth over a wide range), then each method's
class agreement and depth errors are bounded near what they achieve (BOUNDS,
measured values beside them); the agreement is recomputed here from the
dumped FP32 and INT8 outputs.

Also checks that the feature cache makes a second calibration skip the
encoder, and that mtmi_plan_create(precision=int8) matches the runner.
`--report` prints the markdown table of docs/ACCURACY.md."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import mtmi_testutil as tu



def small_model(path, size, seed=0, gain_sigma=0.0):
    """gain_sigma > 0: each output channel's weights of the conv+ReLU layers
    (those that carry a BatchNorm in such networks; not the classifiers)
    scaled by a log-normal gain (geometric mean 1), as folding trained
    BatchNorms leaves them: channels of very different magnitude, hence
    heavy-tailed tensors."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def conv(x, cin, cout, k, s, name, act="Relu"):
        # As the spread init (src/graph/weight_init.c): He weights, the
        # classifiers' gain 2 (4 before the sigmoid), zero-mean rows past
        # the first layer, so no common offset swamps the classes.
        gain = np.sqrt(2.0) if act == "Relu" else (4.0 if cout == 1 else 2.0)
        w = rng.standard_normal((cout, cin, k, k)) * gain / np.sqrt(cin * k * k)
        if cin > 3:
            w -= w.mean(axis=(1, 2, 3), keepdims=True)
        if gain_sigma > 0 and act == "Relu":  # conv+BN+ReLU layers; the classifiers have no BN
            w *= np.exp(rng.normal(0, gain_sigma, (cout, 1, 1, 1)) - gain_sigma ** 2 / 2)
        w = w.astype(np.float32)
        b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        inits.extend([numpy_helper.from_array(w, name + ".w"), numpy_helper.from_array(b, name + ".b")])
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, name + ".w", name + ".b"], [name + ".c"], kernel_shape=[k, k],
                                      strides=[s, s], pads=[p] * 4, name=name))
        if not act:
            return name + ".c"
        nodes.append(helper.make_node(act, [name + ".c"], [name + ".a"], name=name + ".act"))
        return name + ".a"

    def resize(x, f, name):
        inits.append(numpy_helper.from_array(np.array([1, 1, f, f], np.float32), name + ".s"))
        nodes.append(helper.make_node("Resize", [x, "", name + ".s"], [name], mode="linear", name=name))
        return name

    def concat(xs, name):
        nodes.append(helper.make_node("Concat", xs, [name], axis=1, name=name))
        return name

    e1 = conv("image", 3, 16, 3, 2, "enc1")
    f1 = conv(e1, 16, 32, 3, 2, "enc2")        # 1/4
    f2 = conv(f1, 32, 64, 3, 2, "enc3")        # 1/8
    s1 = conv(f1, 32, 32, 1, 1, "seg.c1")
    s2 = resize(conv(f2, 64, 32, 1, 1, "seg.c2"), 2, "seg.up2")
    s = conv(concat([s1, s2], "seg.cat"), 64, 32, 1, 1, "seg.fuse")
    s = conv(s, 32, 19, 1, 1, "seg.cls", act=None)
    nodes.append(helper.make_node("Resize", [s, "", "seg.up4.s"], ["seg"], mode="linear", name="seg.up4"))
    inits.append(numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "seg.up4.s"))
    d2 = resize(conv(f2, 64, 32, 1, 1, "depth.c2"), 2, "depth.up2")
    d = conv(concat([d2, conv(f1, 32, 32, 1, 1, "depth.c1")], "depth.cat"), 64, 32, 3, 1, "depth.fuse")
    d = conv(d, 32, 1, 1, 1, "depth.cls", act="Sigmoid")
    nodes.append(helper.make_node("Resize", [d, "", "depth.up4.s"], ["depth"], mode="linear", name="depth.up4"))
    inits.append(numpy_helper.from_array(np.array([1, 1, 4, 4], np.float32), "depth.up4.s"))
    g = helper.make_graph(nodes, "small2head", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
                          [helper.make_tensor_value_info("seg", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("depth", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def mtmi(*args, env=None):
    r = subprocess.run([tu.MTMI_BIN] + [str(a) for a in args], capture_output=True, text=True,
                       env=dict(os.environ, **env) if env else None)
    if r.returncode:
        raise RuntimeError(f"mtmi {args[0]} failed: {r.stderr.strip()}")
    return r.stdout


# (min seg agreement %, max depth mean abs error, max depth max abs error)
# per model, for every method.  Measured over the three methods (calibrate on
# scenes 1-4, evaluate on 5): small 96.6-97.0 %, 0.0057-0.0062, 0.049-0.094;
# small_bn 87.1-89.7 %, 0.018-0.022, 0.57-0.82 (its max error is one pixel
# of a heavy-tailed map: not bounded); MTMI 97.3-97.8 %, 0.0066-0.0078,
# 0.038-0.058.  The bounds leave ~1.4x on the errors.
BOUNDS = {"small": (95.5, 0.0085, 0.13), "small_bn": (85.0, 0.03, None), "ref": (96.5, 0.0105, 0.08)}
# The FP32 class maps must hold this many classes of >= 1 % each: small_bn's
# folded-BN-like gains let a few channels dominate its 32 features, so fewer
# classes win there (6 measured); still far from a constant map.
MIN_CLASSES = {"small": 8, "small_bn": 5, "ref": 8}


def evaluate(model, calib, evals, d, tag, extra=()):
    res = {}
    for method in ["entropy", "minmax", "percentile:99.99"]:
        cache = os.path.join(d, f"{tag}_{method.split(':')[0]}.cache")
        args = ["calibrate", model, "-o", cache, "--method", method, "--features", os.path.join(d, tag + ".features"), "--threads", "2"]
        for f in calib:
            args += ["--images", f]
        out = mtmi(*args, *extra)
        args = ["accuracy", model, "--cache", cache, "--json", "-", "--features", os.path.join(d, tag + ".features"), "--threads", "2"]
        for f in evals:
            args += ["--images", f]
        if method == "entropy":  # the public API's int8 plan must give the same bits
            args.append("--check-api")
        dump = os.path.join(d, f"{tag}_{method.split(':')[0]}_dump")
        args += ["--dump", dump]
        res[method] = (json.loads(mtmi(*args, *extra)), out.strip())
        res[method][0]["dump"] = {(o, k): np.load(os.path.join(dump, f"{o}_{k}.npy"))
                                  for o in ("seg", "depth") for k in ("fp32", "int8")}
    return res


def bounded(tag, method, j):
    """FP32 output discriminative, INT8 within BOUNDS[tag]; the agreement
    recomputed from the dumped outputs must match the tool's."""
    dmp = j["dump"]
    ok = tu.nondegenerate(f"{tag} FP32", dmp[("seg", "fp32")], dmp[("depth", "fp32")], min_classes=MIN_CLASSES[tag])
    agree = float(np.mean(np.argmax(dmp[("seg", "int8")], 1) == np.argmax(dmp[("seg", "fp32")], 1))) * 100
    dd = np.abs(dmp[("depth", "int8")].astype(np.float64) - dmp[("depth", "fp32")])
    a_min, mean_max, max_max = BOUNDS[tag]
    good = agree >= a_min and dd.mean() <= mean_max and (max_max is None or dd.max() <= max_max)
    good &= abs(agree - j["seg"]["agreement_pct"]) < 1e-3
    print(f"  {tag:9s} {method:17s} agreement {agree:.3f}% (>= {a_min}; tool: {j['seg']['agreement_pct']:.3f}%), depth mean abs "
          f"{dd.mean():.4f} (<= {mean_max}), max {dd.max():.4f} (<= {max_max})  {'ok' if good else 'FAIL'}")
    return ok and good


def row(name, method, j):
    s, dp = j.get("seg", {}), j.get("depth", {})
    return (f"| {name} | {method} | {s.get('agreement_pct', float('nan')):.3f} | {s.get('miou_pct', float('nan')):.2f} | "
            f"{dp.get('mean_abs', float('nan')):.3g} | {dp.get('max_abs', float('nan')):.3g} |")


def main():
    report = "--report" in sys.argv
    tu.need_shared("test_accuracy.py")
    # Fixed weights: the bounds and the SPEC's entropy >= min-max are
    # measured on these networks (other seeds give other numbers).
    seeds = {"small": 0, "small_bn": 0, "ref": 1}
    print(f"weight seeds {seeds} (fixed)")
    images = sorted(glob.glob(os.path.join(tu.SHARED, "images", "*.png")))
    if len(images) < 5:
        print(f"FAIL: {len(images)} images in {os.path.join(tu.SHARED, 'images')}, need 5")
        return 1
    ok = True
    rows = []
    with tempfile.TemporaryDirectory() as d:
        calib, evals, src = images[:4], images[4:5], "real street scenes (4 calibration, 1 evaluation)"
        print("inputs:", src)

        # Plain He-initialized weights, then the same net with folded-BN-like
        # channel gains (heavy-tailed tensors, as trained networks have).
        # The SPEC's entropy >= min-max is asserted with the gains (plain He
        # weights: too thin a margin to be a stable test; reported).
        for tag, sigma, must in [("small", 0.0, False), ("small_bn", 1.0, True)]:
            path = os.path.join(d, tag + ".onnx")
            small_model(path, 256, seed=seeds[tag], gain_sigma=sigma)
            res = evaluate(path, calib, evals, d, tag)
            name = "small conv net" + (", BN-like channel gains" if sigma else ", He init")
            for m, (j, line) in res.items():
                print(f"  {tag:9s} {m:17s} seg agreement {j['seg']['agreement_pct']:.3f}%  mIoU {j['seg']['miou_pct']:.2f}%  "
                      f"depth mean abs {j['depth']['mean_abs']:.3g} max {j['depth']['max_abs']:.3g}")
                rows.append(row(name, m, j))
                ok &= bounded(tag, m, j)
            e, mm = res["entropy"][0], res["minmax"][0]
            better_seg = e["seg"]["agreement_pct"] >= mm["seg"]["agreement_pct"] - 1e-9
            better_depth = e["depth"]["mean_abs"] <= mm["depth"]["mean_abs"]
            print(f"  {tag:9s} entropy vs min-max: seg {'>=' if better_seg else '<'}, depth error {'<=' if better_depth else '>'}"
                  f"{'' if must else ' (reported only)'}")
            if must and not (better_seg and better_depth):
                print("FAIL: entropy calibration does worse than min-max")
                ok = False
            # Later calibrations reused the first one's features.
            if "4 with cached features" not in res["minmax"][1]:
                print("FAIL: features were not reused:", res["minmax"][1])
                ok = False

        ref = os.path.join(d, "mtmi256.onnx")
        mtmi("make-model", "-o", ref, "--size", "256x256", "--seed", str(seeds["ref"]))
        res = evaluate(ref, calib, evals, d, "ref")
        for m, (j, _) in res.items():
            print(f"  MTMI      {m:17s} seg agreement {j['seg']['agreement_pct']:.3f}%  mIoU {j['seg']['miou_pct']:.2f}%  "
                  f"depth mean abs {j['depth']['mean_abs']:.3g} max {j['depth']['max_abs']:.3g}  ({j['quantized_nodes']} convs INT8)")
            rows.append(row("MTMI 256x256 (spread weights)", m, j))
            ok &= bounded("ref", m, j)
            if j["quantized_nodes"] != 15:
                print(f"FAIL: {j['quantized_nodes']} convs in INT8, expected the heads' 15")
                ok = False
        # The seg head's fuse conv reassociated in exact integers
        # (MTMI_INT8_REASSOC=1, src/quant/reassoc.c): the same bounds, within
        # half a point of the Q/DQ order's agreement, and the public API's
        # int8 plan (which applies it too on the CPU) the same bits.
        j0 = res["entropy"][0]
        args = ["accuracy", ref, "--cache", os.path.join(d, "ref_entropy.cache"), "--json", "-", "--features",
                os.path.join(d, "ref.features"), "--threads", "2", "--check-api", "--dump", os.path.join(d, "ref_reassoc_dump")]
        for f in evals:
            args += ["--images", f]
        j = json.loads(mtmi(*args, env={"MTMI_INT8_REASSOC": "1"}))
        j["dump"] = {(o, k): np.load(os.path.join(d, "ref_reassoc_dump", f"{o}_{k}.npy")) for o in ("seg", "depth") for k in ("fp32", "int8")}
        a0, a1 = j0["seg"]["agreement_pct"], j["seg"]["agreement_pct"]
        moved = not np.array_equal(j["dump"][("seg", "int8")], j0["dump"][("seg", "int8")])
        print(f"  MTMI      reassociated      seg agreement {a1:.3f}% (Q/DQ order {a0:.3f}%), logits changed: {moved}")
        rows.append(row("MTMI 256x256, fuse conv reassociated (MTMI_INT8_REASSOC=1)", "entropy", j))
        ok &= bounded("ref", "entropy reassoc", j)
        if not moved or a1 < a0 - 0.5:
            print("FAIL: the reassociated seg head did not run, or lost more than half a point of agreement")
            ok = False
        if report and len(images) >= 5:
            # Leave-one-out over the five scenes: calibrate on four, evaluate
            # on the fifth, five times; means (max of the max errors).
            rows.append("| **5-fold leave-one-out means** | | | | | |")
            models = [("small conv net, He init", os.path.join(d, "small.onnx")),
                      ("small conv net, BN-like channel gains", os.path.join(d, "small_bn.onnx")),
                      ("MTMI 256x256 (spread weights)", ref)]
            for name, path in models:
                acc = {}
                for k in range(5):
                    res = evaluate(path, images[:k] + images[k + 1:], images[k:k + 1], d, f"fold{k}_" + os.path.basename(path)[:-5])
                    for m, (j, _) in res.items():
                        a = acc.setdefault(m, {"seg": {"agreement_pct": 0, "miou_pct": 0}, "depth": {"mean_abs": 0, "max_abs": 0}})
                        a["seg"]["agreement_pct"] += j["seg"]["agreement_pct"] / 5
                        a["seg"]["miou_pct"] += j["seg"]["miou_pct"] / 5
                        a["depth"]["mean_abs"] += j["depth"]["mean_abs"] / 5
                        a["depth"]["max_abs"] = max(a["depth"]["max_abs"], j["depth"]["max_abs"])
                for m, a in acc.items():
                    rows.append(row(name, m, a))
    if report:
        print("\n| model | method | seg agreement % | seg mIoU % (INT8 vs FP32 maps) | depth mean abs err | depth max abs err |")
        print("|---|---|---|---|---|---|")
        print("\n".join(rows))
    print("accuracy checks passed" if ok else "accuracy checks FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
