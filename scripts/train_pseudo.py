#!/usr/bin/env python3
"""Pseudo-trained weights for the MTMI reference network (GPU machine, PyTorch).

No trained MTMI weights can be fetched, and random weights give the heads
near-constant, spiky activations on which INT8 calibration methods cannot be
compared meaningfully (docs/ACCURACY.md).  This trains the reference network
(../shared/reference/mtmi_torch.py) for a short while on the street scenes
with pseudo-labels, so that its activations have the statistics of a trained
network (learned BatchNorm scales, heavy-tailed channels):

  * seg: 19 classes = k-means clusters of (R, G, B, 2*y/H) over the scenes'
    pixels (spatially coherent regions: sky, road, vegetation, ...);
  * depth: a target in (0, 1) growing towards the bottom of the frame
    (nearer), with a little of the pixel's brightness mixed in.

Training: random 512x512 crops of the scenes given (calibration scenes only,
so the evaluation scene stays unseen), flips, AdamW, bf16 autocast.  Then the
model is exported (TorchScript exporter, opset 17, 1x3x1024x1024) with its
float weights in two external files (each under the device tool's 16 MiB
return limit): OUT/mtmi_pseudo.onnx, OUT/mtmi_pseudo_w0.bin, _w1.bin.

usage: train_pseudo.py --reference DIR --images DIR --out DIR [--steps N]
       [--train-images 1,2,3,4]
"""
import argparse
import glob
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)


def kmeans(x, k, iters, gen):
    c = x[torch.randperm(x.shape[0], generator=gen, device="cpu")[:k].to(x.device)]
    for _ in range(iters):
        lab = torch.cdist(x, c).argmin(1)
        for j in range(k):
            m = lab == j
            if m.any():
                c[j] = x[m].mean(0)
    return c


def labels_of(img, centers):
    """img [3,H,W] 0..255 -> seg labels [H,W] (nearest centre) and depth target [H,W]."""
    _, H, W = img.shape
    y = torch.linspace(0, 1, H, device=img.device).view(H, 1).expand(H, W)
    feat = torch.stack([img[0] / 255, img[1] / 255, img[2] / 255, 2 * y], -1).reshape(-1, 4)
    seg = torch.cdist(feat, centers).argmin(1).reshape(H, W)
    luma = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]) / 255
    depth = (0.05 + 0.75 * y + 0.15 * luma).clamp(0.02, 0.98)
    return seg, depth


def export_split(model, path, wfiles):
    import onnx
    from onnx import TensorProto

    x = torch.zeros(1, 3, 1024, 1024)
    kw = dict(opset_version=17, input_names=["input"], output_names=["seg_logits", "depth"])
    try:
        torch.onnx.export(model, (x,), path, dynamo=False, **kw)
    except TypeError:
        torch.onnx.export(model, (x,), path, **kw)
    m = onnx.load(path, load_external_data=True)
    big = []
    for t in m.graph.initializer:
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if t.data_type == TensorProto.FLOAT and n > 16:
            big.append((t, n))
    total = sum(n for _, n in big)
    outs = [open(os.path.join(os.path.dirname(path), f), "wb") for f in wfiles]
    off = [0] * len(outs)
    acc = 0
    for t, n in big:
        k = 0 if acc < total / 2 else 1
        acc += n
        data = onnx.numpy_helper.to_array(t).astype(np.float32).tobytes()
        outs[k].write(data)
        t.ClearField("raw_data")
        t.ClearField("float_data")
        t.data_location = TensorProto.EXTERNAL
        del t.external_data[:]
        for key, val in (("location", wfiles[k]), ("offset", str(off[k])), ("length", str(len(data)))):
            e = t.external_data.add()
            e.key, e.value = key, val
        off[k] += len(data)
    for f in outs:
        f.close()
    onnx.save(m, path)
    return len(big), total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--train-images", default="1,2,3,4")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    sys.path.insert(0, a.reference)
    from mtmi_torch import MTMI, randomize

    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    dev = "cuda"
    names = [os.path.join(a.images, "%s.png" % s) for s in a.train_images.split(",")]
    imgs = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"))).permute(2, 0, 1).float() for p in names]).to(dev)
    N, _, H, W = imgs.shape
    # k-means on a sample of (R, G, B, 2y) of the training scenes
    ys = torch.linspace(0, 1, H, device=dev).view(1, H, 1).expand(N, H, W)
    feat = torch.stack([imgs[:, 0] / 255, imgs[:, 1] / 255, imgs[:, 2] / 255, 2 * ys], -1).reshape(-1, 4)
    sample = feat[torch.randint(0, feat.shape[0], (200000,), generator=gen).to(dev)]
    centers = kmeans(sample, 19, 25, gen)
    segs, depths = zip(*(labels_of(im, centers) for im in imgs))
    segs, depths = torch.stack(segs), torch.stack(depths)
    x_all = (imgs - MEAN.to(dev)) / STD.to(dev)

    model = randomize(MTMI(sdpa=True), seed=a.seed).to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=6e-4, total_steps=a.steps, pct_start=0.1)
    t0 = time.time()
    B, C = 4, 512
    for step in range(a.steps):
        idx = torch.randint(0, N, (B,), generator=gen)
        oy = torch.randint(0, H - C + 1, (B,), generator=gen)
        ox = torch.randint(0, W - C + 1, (B,), generator=gen)
        xb = torch.stack([x_all[i, :, y:y + C, x:x + C] for i, y, x in zip(idx, oy, ox)])
        sb = torch.stack([segs[i, y:y + C, x:x + C] for i, y, x in zip(idx, oy, ox)])
        db = torch.stack([depths[i, y:y + C, x:x + C] for i, y, x in zip(idx, oy, ox)])
        if torch.rand(1, generator=gen).item() < 0.5:
            xb, sb, db = xb.flip(-1), sb.flip(-1), db.flip(-1)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            seg, d = model(xb)
        loss = F.cross_entropy(seg.float(), sb) + 5.0 * F.l1_loss(d.float()[:, 0], db)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == a.steps - 1:
            with torch.no_grad():
                acc = (seg.argmax(1) == sb).float().mean().item()
            print("step %5d  loss %.4f  pseudo-label pixel accuracy %.3f  (%.0f s)" % (step, loss.item(), acc, time.time() - t0),
                  flush=True)
    # Exported through the explicit-attention path (same parameters): the
    # TorchScript exporter's opset-17 graph, like the shared reference export.
    export_model = MTMI(sdpa=False)
    export_model.load_state_dict(model.float().cpu().state_dict())
    model = export_model.eval()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "mtmi_pseudo.onnx")
    n, total = export_split(model, path, ["mtmi_pseudo_w0.bin", "mtmi_pseudo_w1.bin"])
    print("exported %s: %d float initializers, %.1f M values in two external files" % (path, n, total / 1e6))


if __name__ == "__main__":
    main()
