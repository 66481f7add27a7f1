#!/usr/bin/env python3
"""Post-hoc logit adjustment of a trained MTMI model's segmentation classes.

Why: train_mtmi.py centres half of its crops on a class drawn with
probability ~ frequency^-alpha (class-balanced crops), so that rare classes
get seen at all.  That also raises the rare classes' prior in what the
network learned: on held-out scenes the trained model (2026-12-07) finds
98.6 % of the truck pixels, but 56 % of the pixels it calls truck are road
(bus: 63 %).  The standard correction (logit adjustment, Menon et al. 2021,
"Long-tail learning via logit adjustment") adds a per-class constant to the
logits.  A constant per class commutes with the head's bilinear upsampling
(its weights sum to 1), so it is exactly a change of the classifier conv's
bias: the model keeps its graph and size.

What it does: runs the model (ONNX Runtime, CPU) over a Cityscapes-style
folder that was NOT used for training and is NOT the evaluation set
(default: `mtmi synth --seed 2`, the training script's held-out seed; the
targets use seed 1000), keeps every STRIDE-th pixel's logits, and finds the
offsets by coordinate ascent on mIoU over the classes present (a grid of
steps per class, a few rounds, the largest gain first).  It writes the
model with seg.cls.bias + offsets (float16, as stored) and records the
offsets, the data and the before / after mIoU in the model's JSON record.

    python3 scripts/class_bias.py --model models/mtmi_trained.onnx \
        --data /tmp/val2 --out models/mtmi_trained.onnx --record models/mtmi_trained.json

(--data made with: mtmi synth -o /tmp/val2 --count 64 --seed 2 --size 1024x1024)
"""
import argparse
import datetime
import glob
import json
import os
import sys
import time

import numpy as np

NUM_CLASSES = 19
MEAN = np.array([123.675, 116.28, 103.53], np.float32).reshape(3, 1, 1)
STD = np.array([58.395, 57.12, 57.375], np.float32).reshape(3, 1, 1)
BIAS = "seg.cls.bias__fp16"


def read_png(path):
    from PIL import Image
    return np.asarray(Image.open(path))


def collect(model, data, stride, limit):
    """Logits (float16, classes x pixels) and labels of every stride-th pixel of the folder's scenes."""
    import onnxruntime as ort
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    stems = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(data, "images", "*.png")))
    if limit:
        stems = stems[:limit]
    if not stems:
        sys.exit("class_bias: no images in %s/images" % data)
    logits, labels = [], []
    t0 = time.time()
    for i, s in enumerate(stems):
        img = read_png(os.path.join(data, "images", s + ".png"))[:, :, :3]
        lab = read_png(os.path.join(data, "labels", s + ".png"))
        x = ((img.transpose(2, 0, 1).astype(np.float32) - MEAN) / STD)[None]
        seg = sess.run(["seg"], {"input": x})[0][0]
        logits.append(seg[:, ::stride, ::stride].reshape(NUM_CLASSES, -1).astype(np.float16))
        labels.append(lab[::stride, ::stride].reshape(-1))
        print("\r  %d / %d scenes, %.0f s" % (i + 1, len(stems), time.time() - t0), end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    L = np.concatenate(logits, axis=1).astype(np.float32)
    y = np.concatenate(labels).astype(np.int64)
    keep = y < NUM_CLASSES
    return L[:, keep], y[keep], len(stems)


def miou(L, y, off):
    pred = np.argmax(L + off[:, None], axis=0)
    conf = np.bincount(y * NUM_CLASSES + pred, minlength=NUM_CLASSES ** 2).reshape(NUM_CLASSES, NUM_CLASSES).astype(np.float64)
    tp, gt, pr = np.diag(conf), conf.sum(1), conf.sum(0)
    present = gt > 0
    iou = tp / np.maximum(gt + pr - tp, 1)
    return 100 * iou[present].mean(), 100 * iou, present


def search(L, y, steps, rounds):
    off = np.zeros(NUM_CLASSES, np.float32)
    best, _, present = miou(L, y, off)
    start = best
    for r in range(rounds):
        gained = False
        for c in np.nonzero(present)[0]:
            cand = [(miou(L, y, np.where(np.arange(NUM_CLASSES) == c, off + d, off))[0], d) for d in steps]
            m, d = max(cand)
            if m > best + 1e-4:
                off[c] += d
                best, gained = m, True
        print("  round %d: mIoU %.3f %%" % (r + 1, best), file=sys.stderr, flush=True)
        if not gained:
            break
    return off, start, best


def write_model(model, out, off):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(model)
    for i, init in enumerate(m.graph.initializer):
        if init.name == BIAS:
            b = numpy_helper.to_array(init).astype(np.float32)
            nb = (b + off).astype(np.float16)
            m.graph.initializer[i].CopyFrom(numpy_helper.from_array(nb, BIAS))
            onnx.save(m, out)
            return b, nb.astype(np.float32)
    sys.exit("class_bias: %s has no initializer %s (not a train_mtmi.py export)" % (model, BIAS))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True, help="held-out scenes (images/ + labels/), not the evaluation set")
    ap.add_argument("--out", required=True)
    ap.add_argument("--record", help="the model's JSON record: adds a 'class_bias' entry")
    ap.add_argument("--stride", type=int, default=4, help="keep every STRIDE-th pixel in each direction")
    ap.add_argument("--limit", type=int, default=0, help="at most this many scenes (0: all)")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    steps = [d for d in np.arange(-3.0, 3.01, 0.25) if abs(d) > 1e-6]
    L, y, n = collect(a.model, a.data, a.stride, a.limit)
    print("class_bias: %d scenes, %d labelled pixels (stride %d)" % (n, y.size, a.stride), file=sys.stderr)
    off, before, _ = search(L, y, steps, a.rounds)
    old, new = write_model(a.model, a.out, off)
    after, iou, present = miou(L, y, new - old)  # what the float16-rounded bias gives
    _, iou0, _ = miou(L, y, np.zeros(NUM_CLASSES, np.float32))
    print("class_bias: mIoU on %s %.2f %% -> %.2f %%; offsets %s" %
          (a.data, before, after, " ".join("%d:%+.2f" % (c, o) for c, o in enumerate(new - old) if abs(o) > 1e-3)))
    if a.record:
        rec = json.load(open(a.record))
        rec["class_bias"] = {
            "command": " ".join(["python3", "scripts/class_bias.py"] + sys.argv[1:]),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "why": "logit adjustment: the class-balanced crops of training raise rare classes' priors; "
                   "a per-class constant added to the classifier bias, chosen on held-out scenes",
            "data": {"dir": a.data, "scenes": n, "stride": a.stride, "pixels": int(y.size)},
            "offsets": [round(float(o), 4) for o in (new - old)],
            "miou_pct_before": round(float(before), 3), "miou_pct_after": round(float(after), 3),
            "iou_pct_before": {int(c): round(float(iou0[c]), 2) for c in range(NUM_CLASSES) if present[c]},
            "iou_pct_after": {int(c): round(float(iou[c]), 2) for c in range(NUM_CLASSES) if present[c]},
        }
        with open(a.record, "w") as f:
            json.dump(rec, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
