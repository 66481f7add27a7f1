"""`mtmi eval` end to end on a hand-made case: a folder of block images
(2x2-pixel blocks of pure red, green or blue) with labels that mostly
agree with the colours, and a tiny ONNX model whose class is the colour
(red -> road, green -> building, blue -> car) and whose depth is a fixed
sigmoid of the colour.  The expected confusion matrix, IoU per class, mIoU,
pixel accuracy and depth errors are recomputed here with NumPy from the
definitions (nearest model pixel for classes, bilinear depth, the log
depth encoding), at the model's size, at half of it and through a centre
crop; INT8 heads run too; bad folders fail with one line."""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import mtmi_testutil as tu  # noqa: E402

MTMI = os.environ.get("MTMI_BIN", os.path.join(ROOT, "build", "mtmi"))
NEAR, FAR = 0.5, 80.0  # src/synth/synth.h (checked below against `mtmi eval --help`)
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
CLASS_OF = np.array([0, 2, 13])  # road, building, car
W_DEPTH, B_DEPTH = np.array([0.6, -0.3, 0.2]), 0.1
check = tu.Checks()


def png(path, a, bits=8):
    """Writes a gray (HxW) or RGB (HxWx3) PNG, rows unfiltered."""
    h, w = a.shape[:2]
    ctype = 2 if a.ndim == 3 else 0
    raw = a.astype(">u2" if bits == 16 else np.uint8).reshape(h, -1).view(np.uint8).reshape(h, -1)
    body = b"".join(b"\x00" + raw[y].tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, ctype, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b""))


def tiny_model(path):
    """feat = identity 1x1 conv (the shared part); seg = 1x1 conv: logit of road
    = R, building = G, car = B, others -10; depth = sigmoid(w . x + b)."""
    eye = np.eye(3, dtype=np.float32).reshape(3, 3, 1, 1)
    ws = np.zeros((19, 3, 1, 1), np.float32)
    bs = np.full(19, -10.0, np.float32)
    for k, c in enumerate(CLASS_OF):
        ws[c, k, 0, 0], bs[c] = 1.0, 0.0
    wd = W_DEPTH.astype(np.float32).reshape(1, 3, 1, 1)
    bd = np.array([B_DEPTH], np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in ((eye, "eye"), (np.zeros(3, np.float32), "zero"), (ws, "ws"), (bs, "bs"),
                                                          (wd, "wd"), (bd, "bd"))]
    nodes = [helper.make_node("Conv", ["input", "eye", "zero"], ["feat"]), helper.make_node("Conv", ["feat", "ws", "bs"], ["seg"]),
             helper.make_node("Conv", ["feat", "wd", "bd"], ["dlogit"]), helper.make_node("Sigmoid", ["dlogit"], ["depth"])]
    g = helper.make_graph(nodes, "tiny_eval", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "H", "W"])],
                          [helper.make_tensor_value_info("seg", TensorProto.FLOAT, [1, 19, "H", "W"]),
                           helper.make_tensor_value_info("depth", TensorProto.FLOAT, [1, 1, "H", "W"])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    onnx.save(m, path)


def make_set(folder, rng, n, h, w):
    """n frames of h x w: colour blocks, labels (70 % the colour's class, else
    road / building / vegetation / ignore), depth 2-60 m per block, some none."""
    for sub in ("images", "labels", "depth"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    frames = []
    for i in range(n):
        cb = rng.integers(0, 3, (h // 2, w // 2))
        lab = np.where(rng.random(cb.shape) < 0.7, CLASS_OF[cb], rng.choice([0, 2, 8, 255], cb.shape))
        dep = np.where(rng.random(cb.shape) < 0.1, 0, np.round(rng.uniform(2, 60, cb.shape) * 256))
        up = lambda a: np.repeat(np.repeat(a, 2, 0), 2, 1)  # noqa: E731
        img, lab, dep = COLOURS[up(cb)], up(lab).astype(np.uint8), up(dep).astype(np.uint16)
        stem = f"f{i:02d}"
        png(os.path.join(folder, "images", stem + ".png"), img)
        png(os.path.join(folder, "labels", stem + ".png"), lab)
        png(os.path.join(folder, "depth", stem + ".png"), dep, 16)
        frames.append((img, lab, dep))
    return frames


def expected(frames, mh, mw, max_depth=80.0):
    """Confusion matrix and depth sums from the definitions."""
    conf = np.zeros((19, 19), np.int64)
    abs_rel, sq, n, d1, unmapped = 0.0, 0.0, 0, 0, 0
    for img, lab, dep in frames:
        gh, gw = lab.shape
        cw, ch = (gh * mw // mh, gh) if gw * mh > gh * mw else (gw, gw * mh // mw)
        x0, y0 = (gw - cw) // 2, (gh - ch) // 2
        unmapped += gw * gh - cw * ch
        crop = img[y0:y0 + ch, x0:x0 + cw].astype(np.float64)
        f = cw // mw  # 1 or 2: block averages are exact for 2x2 blocks
        model_img = crop.reshape(mh, f, mw, f, 3).mean((1, 3))
        x = (model_img - MEAN) / STD
        logits = np.full((mh, mw, 19), -10.0)
        for k, c in enumerate(CLASS_OF):
            logits[..., c] = x[..., k]
        pred = logits.argmax(-1)
        sig = 1 / (1 + np.exp(-(x @ W_DEPTH + B_DEPTH)))
        ys, xs = np.arange(ch), np.arange(cw)
        ny, nx = (2 * ys + 1) * mh // (2 * ch), (2 * xs + 1) * mw // (2 * cw)
        p = pred[ny][:, nx]
        g = lab[y0:y0 + ch, x0:x0 + cw].astype(np.int64)
        ok = g < 19
        conf += np.bincount(g[ok] * 19 + p[ok], minlength=361).reshape(19, 19)

        def taps(c, crop_n, model_n):
            t = np.maximum((c + 0.5) * model_n / crop_n - 0.5, 0)
            i0 = np.minimum(t.astype(int), model_n - 1)
            return i0, np.minimum(i0 + 1, model_n - 1), np.minimum(t - i0, 1)
        iy0, iy1, wy = taps(ys, ch, mh)
        ix0, ix1, wx = taps(xs, cw, mw)
        a = sig[iy0][:, ix0] + wx * (sig[iy0][:, ix1] - sig[iy0][:, ix0])
        b = sig[iy1][:, ix0] + wx * (sig[iy1][:, ix1] - sig[iy1][:, ix0])
        dd = a + wy[:, None] * (b - a)
        pm = NEAR * (FAR / NEAR) ** (1 - np.clip(dd, 0, 1))
        z = dep[y0:y0 + ch, x0:x0 + cw] / 256.0
        v = (z > 0) & (z <= max_depth)
        abs_rel += (np.abs(pm[v] - z[v]) / z[v]).sum()
        sq += ((pm[v] - z[v]) ** 2).sum()
        d1 += (np.maximum(pm[v] / z[v], z[v] / pm[v]) < 1.25).sum()
        n += v.sum()
    tp = np.diag(conf).astype(np.float64)
    gt, pr = conf.sum(1), conf.sum(0)
    present = gt > 0
    iou = np.where(present, tp / np.maximum(gt + pr - tp, 1), np.nan)
    return {"conf": conf, "iou": iou, "miou": np.nanmean(iou), "acc": tp.sum() / conf.sum(), "abs_rel": abs_rel / n,
            "rmse": np.sqrt(sq / n), "delta1": d1 / n, "depth_n": n, "unmapped": unmapped}


def run_eval(model, data, size, place, tmp, tag, extra=()):
    out = os.path.join(tmp, tag + ".json")
    r = subprocess.run([MTMI, "eval", "--model", model, "--data", data, "--size", size, "--place", place, "--threads", "2",
                        "--json", out] + list(extra), capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, f"{tag}: eval failed: {r.stderr.strip()}")
    return (json.load(open(out)) if r.returncode == 0 else None), r.stdout


def compare(tag, j, ref):
    if j is None:
        return
    conf = np.array(j["seg"]["confusion"]["matrix"])
    check(conf.shape == (19, 19) and (conf == ref["conf"]).all(), f"{tag}: confusion matrix differs from the recount")
    worst = 0.0
    for c in j["seg"]["classes"]:
        want = ref["iou"][c["id"]]
        if np.isnan(want):
            check(not c["present"] and c["iou_pct"] is None, f"{tag}: class {c['id']} should be absent: {c}")
        else:
            check(c["present"], f"{tag}: class {c['id']} should be present")
            worst = max(worst, abs(c["iou_pct"] - 100 * want))
    check(worst < 1e-6, f"{tag}: IoU differs by {worst:.3g} points")
    check(abs(j["seg"]["miou_pct"] - 100 * ref["miou"]) < 1e-6 and abs(j["seg"]["pixel_acc_pct"] - 100 * ref["acc"]) < 1e-6,
          f"{tag}: mIoU {j['seg']['miou_pct']} vs {100 * ref['miou']}, accuracy {j['seg']['pixel_acc_pct']} vs {100 * ref['acc']}")
    d = j["depth"]
    check(d["pixels"] == ref["depth_n"] and abs(d["abs_rel"] / ref["abs_rel"] - 1) < 1e-5 and abs(d["rmse_m"] / ref["rmse"] - 1) < 1e-5
          and abs(d["delta1"] - ref["delta1"]) < 1e-9, f"{tag}: depth {d} vs {ref}")
    check(j["seg"]["unmapped"] == ref["unmapped"], f"{tag}: unmapped {j['seg']['unmapped']} vs {ref['unmapped']}")
    print(f"{tag}: mIoU {j['seg']['miou_pct']:.4f} % over {j['seg']['classes_present']} classes (recount {100 * ref['miou']:.4f}), "
          f"IoU worst difference {worst:.2g} points, AbsRel {d['abs_rel']:.6f} (recount {ref['abs_rel']:.6f}), "
          f"delta1 {d['delta1']:.4f}, {ref['unmapped']} pixels outside the crop")


seed = tu.test_seed(5)
rng = np.random.default_rng(seed)
tmp = tempfile.mkdtemp(prefix="mtmi_eval_")
model = os.path.join(tmp, "tiny.onnx")
tiny_model(model)
r = subprocess.run([MTMI, "eval", "--help"], capture_output=True, text=True)
check(f"{NEAR:g} * ({FAR:g} / {NEAR:g})" in r.stdout, "the depth encoding's constants differ from synth.h's")
square = os.path.join(tmp, "square")
frames = make_set(square, rng, 3, 64, 64)
place = "encoder=cpu,seg=cpu:1,depth=cpu:1"
j, text = run_eval(model, square, "64x64", place, tmp, "same size")
compare("same size", j, expected(frames, 64, 64))
check("absent" in text and "mIoU" in text and "AbsRel" in text, "text report")
j, _ = run_eval(model, square, "32x32", place, tmp, "half size")
compare("half size", j, expected(frames, 32, 32))
wide = os.path.join(tmp, "wide")
wframes = make_set(wide, rng, 2, 64, 96)
j, _ = run_eval(model, wide, "32x32", place, tmp, "centre crop")
compare("centre crop", j, expected(wframes, 32, 32))
j, _ = run_eval(model, square, "64x64", place, tmp, "max depth 20", ["--max-depth", "20"])
compare("max depth 20", j, expected(frames, 64, 64, max_depth=20.0))

# INT8 heads (CPU reference kernels) with a cache from `mtmi calibrate`
cache = os.path.join(tmp, "tiny.cache")
r = subprocess.run([MTMI, "calibrate", model, "--images", os.path.join(square, "images"), "--size", "64x64", "-o", cache],
                   capture_output=True, text=True)
check(r.returncode == 0, f"calibrate failed: {r.stderr.strip()}")
jq, _ = run_eval(model, square, "64x64", "encoder=cpu,seg=cpu:1/int8,depth=cpu:1/int8", tmp, "int8", ["--cache", cache])
if jq and j:
    fp = expected(frames, 64, 64)
    print(f"int8 heads: mIoU {jq['seg']['miou_pct']:.3f} % (fp32 {100 * fp['miou']:.3f}), AbsRel {jq['depth']['abs_rel']:.5f} "
          f"(fp32 {fp['abs_rel']:.5f}); placement {jq['placement']}")
    check("int8" in jq["placement"], "int8 placement")
    check(abs(jq["seg"]["miou_pct"] - 100 * fp["miou"]) < 0.5 and abs(jq["depth"]["abs_rel"] - fp["abs_rel"]) < 0.01,
          "int8 heads far from fp32 on a case they represent well")

# bad folders: one line, exit 1
bad = os.path.join(tmp, "bad")
shutil.copytree(square, bad)
os.remove(os.path.join(bad, "depth", "f01.png"))
for tag, data, want in (("no folder", os.path.join(tmp, "nope"), "images"), ("missing depth", bad, "f01.png")):
    r = subprocess.run([MTMI, "eval", "--model", model, "--data", data, "--size", "64x64"], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and want in lines[0], f"{tag}: rc {r.returncode}, {r.stderr.strip()!r}")
os.remove(os.path.join(bad, "labels", "f00.png"))
png(os.path.join(bad, "labels", "f00.png"), np.zeros((64, 64), np.uint16), 16)
shutil.rmtree(os.path.join(bad, "depth"))
r = subprocess.run([MTMI, "eval", "--model", model, "--data", bad, "--size", "64x64"], capture_output=True, text=True)
check(r.returncode == 1 and "8-bit" in r.stderr and len(r.stderr.strip().splitlines()) == 1, f"16-bit labels: {r.stderr.strip()!r}")

shutil.rmtree(tmp, ignore_errors=True)
check.finish("eval cli")
