#!/usr/bin/env python3
"""Trains the built-in MTMI network on generated street scenes (GPU, PyTorch).

One command on a GPU machine (about 8 minutes of an H100 with the defaults):

    python3 scripts/train_mtmi.py --mtmi build-train/mtmi

  1. data: `mtmi synth` renders --scenes scenes of 1024x1024 with --seed 1
     (training) and --val-scenes with --val-seed 2 (held out; `mtmi run`'s
     synthetic frames are seed 0, the eval targets use seed 1000): RGB,
     labels (Cityscapes train IDs, 255 = ignore) and depth (metres x 256);
  2. the network of ../shared/reference/mtmi_torch.py, trained from scratch
     on random 512x512 crops (scale 0.7-1.3, flips) and, one sample in four,
     2x2 mosaics of whole scenes at 256x256 (segmentation only: the model
     also sees scenes at a quarter of the size), AdamW, bf16 autocast, for
     --minutes of wall time (warm-up, then cosine decay over the time);
     loss = class-weighted cross-entropy (ignore 255) + --depth-weight x L1
     between the depth head's sigmoid output and the encoded target depth;
  3. the depth encoding is src/synth/synth.h's (read from it here, so there
     is one definition): z = NEAR * (FAR / NEAR) ** (1 - d), d = sigmoid;
     a crop scaled by s shows the scene as a camera with s times the focal
     length, so its target depth is z / s;
  4. a check on the held-out scenes (mIoU, AbsRel, delta < 1.25 in PyTorch);
  5. export by PyTorch's TorchScript exporter at opset 17 (1x3x1024x1024,
     explicit attention as the reference export), then every float
     initializer stored as float16 with a Cast to float in front of its
     users: models/mtmi_trained.onnx (~10 MB, one file), which `mtmi run`,
     `bench`, `calibrate`, `accuracy` and `eval` load by default;
  6. models/mtmi_trained.json: the command, times, data, steps, losses and
     the held-out numbers.

--dry-run checks everything that needs no PyTorch (the header's constants,
the data generation on a few small scenes and their decoding, the float16
packing on `mtmi make-model`'s network), for machines without a GPU.
"""
import argparse
import json
import os
import re
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_CLASSES = 19
IGNORE = 255


# ------------------------------------------------------------ depth encoding
def depth_encoding(header=os.path.join(ROOT, "src", "synth", "synth.h")):
    """(NEAR, FAR) of the depth head's encoding, from src/synth/synth.h."""
    text = open(header).read()
    vals = {}
    for name in ("MT_DEPTH_NEAR", "MT_DEPTH_FAR"):
        m = re.search(r"#define\s+%s\s+([0-9.eE+-]+)" % name, text)
        if not m:
            raise SystemExit("train_mtmi: %s not found in %s" % (name, header))
        vals[name] = float(m.group(1))
    return vals["MT_DEPTH_NEAR"], vals["MT_DEPTH_FAR"]


def depth_to_unit(z, near, far):
    """Metres -> the sigmoid output encoding them (numpy or torch); z <= 0 stays invalid (-1)."""
    lib = np if isinstance(z, np.ndarray) else __import__("torch")
    zc = lib.clip(z, near, far) if lib is np else z.clamp(near, far)
    d = 1.0 - lib.log(zc / near) / np.log(far / near)
    return lib.where(z > 0, d, -1.0 + 0 * d)


def unit_to_depth(d, near, far):
    return near * np.exp((1.0 - np.clip(d, 0, 1)) * np.log(far / near))


# ------------------------------------------------------------------- PNG in
def png_read(path):
    """Decodes a PNG into a numpy array (H x W, H x W x 3; 8 or 16 bits).

    Fast path for what `mtmi synth` writes (no interlace, every row filtered
    with None or Up: a cumulative sum down the rows); Pillow otherwise."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s: not a PNG" % path)
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    w, h, bits, ctype, _, _, interlace = ihdr
    chans = {0: 1, 2: 3}.get(ctype)
    if chans and bits in (8, 16) and not interlace:
        stride = w * chans * bits // 8
        raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, stride + 1)
        filt = raw[:, 0]
        if np.all((filt == 0) | (filt == 2)):
            rows = raw[:, 1:].astype(np.uint32)
            # Up adds the decoded row above; None restarts the sum.
            out = np.empty_like(rows)
            start = 0
            for r in list(np.nonzero(filt == 0)[0][1:]) + [h]:
                out[start:r] = np.cumsum(rows[start:r], axis=0)
                start = r
            out = (out & 0xFF).astype(np.uint8)
            if bits == 16:
                out = out.reshape(h, w * chans, 2)
                out = (out[..., 0].astype(np.uint16) << 8) | out[..., 1]
            return out.reshape((h, w) if chans == 1 else (h, w, chans))
    from PIL import Image  # any other PNG
    return np.asarray(Image.open(path))


def read_set(folder, limit=None):
    """images [N,H,W,3] uint8, labels [N,H,W] uint8, depth [N,H,W] float32 metres (0 = none)."""
    stems = sorted(f[:-4] for f in os.listdir(os.path.join(folder, "images")) if f.endswith(".png"))[:limit]
    if not stems:
        raise SystemExit("train_mtmi: no images in %s/images" % folder)
    from concurrent.futures import ThreadPoolExecutor  # zlib releases the GIL

    def one(s):
        return (png_read(os.path.join(folder, "images", s + ".png")), png_read(os.path.join(folder, "labels", s + ".png")),
                png_read(os.path.join(folder, "depth", s + ".png")).astype(np.float32) / 256.0)

    with ThreadPoolExecutor(max(1, min(32, os.cpu_count() or 1))) as ex:
        items = list(ex.map(one, stems))
    return (np.stack([i[0] for i in items]), np.stack([i[1] for i in items]), np.stack([i[2] for i in items]), stems)


def synth(mtmi, folder, count, seed, size):
    """Renders the scenes with `mtmi synth` unless the folder already holds them."""
    have = os.path.join(folder, "synth.json")
    if os.path.exists(have):
        j = json.load(open(have))
        if j.get("count") == count and j.get("seed") == seed and j.get("height") == size:
            return 0.0
    t0 = time.time()
    cmd = [mtmi, "synth", "-o", folder, "--count", str(count), "--seed", str(seed), "--size", "%dx%d" % (size, size)]
    print("+ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return time.time() - t0


# ------------------------------------------------------------- ONNX packing
def pack_fp16(model, min_elems=16):
    """Stores every float initializer of more than min_elems values as float16 and
    puts a Cast to float in front of its users (same names, so the graph is
    unchanged); small and integer tensors stay.  Returns (tensors, values)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    casts, kept, count, values = [], [], 0, 0
    for t in model.graph.initializer:
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if t.data_type != TensorProto.FLOAT or n <= min_elems:
            kept.append(t)
            continue
        a = numpy_helper.to_array(t).astype(np.float16)
        h = numpy_helper.from_array(a, t.name + "__fp16")
        kept.append(h)
        casts.append(helper.make_node("Cast", [h.name], [t.name], name=t.name + "__cast", to=TensorProto.FLOAT))
        count, values = count + 1, values + n
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return count, values


# --------------------------------------------------------------- training
def class_weights(labels):
    """(median frequency / frequency) ** 0.5, clipped to [0.5, 5]: thin classes count more."""
    hist = np.bincount(labels[labels < NUM_CLASSES].ravel(), minlength=NUM_CLASSES).astype(np.float64)
    freq = hist / max(hist.sum(), 1)
    med = np.median(freq[freq > 0])
    w = np.where(freq > 0, np.sqrt(med / np.maximum(freq, 1e-12)), 1.0)
    return np.clip(w, 0.5, 5.0), hist


def make_batch(torch, F, data, batch, crop, gen, near, far):
    """Random crops (scale 0.7-1.3, flips; depth / scale) and one in four 2x2
    mosaics of whole scenes at crop/2 (depth masked)."""
    imgs, labs, deps = data
    N, H, W, _ = imgs.shape
    dev = imgs.device
    xs, ys, ds = [], [], []
    for _ in range(batch):
        if torch.rand(1, generator=gen).item() < 0.25:
            idx = torch.randint(0, N, (4,), generator=gen)
            half = crop // 2
            x = F.interpolate(imgs[idx].permute(0, 3, 1, 2).float(), size=(half, half), mode="bilinear", antialias=True,
                              align_corners=False)
            y = F.interpolate(labs[idx][:, None].float(), size=(half, half), mode="nearest")[:, 0].long()
            x = torch.cat([torch.cat([x[0], x[1]], 2), torch.cat([x[2], x[3]], 2)], 1)
            y = torch.cat([torch.cat([y[0], y[1]], 1), torch.cat([y[2], y[3]], 1)], 0)
            d = torch.full((crop, crop), -1.0, device=dev)
        else:
            i = torch.randint(0, N, (1,), generator=gen).item()
            s = 0.7 + 0.6 * torch.rand(1, generator=gen).item()
            cs = min(int(round(crop / s)), H, W)
            oy = torch.randint(0, H - cs + 1, (1,), generator=gen).item()
            ox = torch.randint(0, W - cs + 1, (1,), generator=gen).item()
            s = crop / cs
            x = F.interpolate(imgs[i, oy:oy + cs, ox:ox + cs].permute(2, 0, 1)[None].float(), size=(crop, crop), mode="bilinear",
                              align_corners=False, antialias=s < 1)[0]
            y = F.interpolate(labs[i, oy:oy + cs, ox:ox + cs][None, None].float(), size=(crop, crop), mode="nearest")[0, 0].long()
            z = F.interpolate(deps[i, oy:oy + cs, ox:ox + cs][None, None], size=(crop, crop), mode="nearest")[0, 0]
            d = depth_to_unit(z / s, near, far)
            if torch.rand(1, generator=gen).item() < 0.5:
                x, y, d = x.flip(-1), y.flip(-1), d.flip(-1)
        xs.append(x)
        ys.append(y)
        ds.append(d)
    mean = torch.tensor([123.675, 116.28, 103.53], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375], device=dev).view(1, 3, 1, 1)
    return (torch.stack(xs) - mean) / std, torch.stack(ys), torch.stack(ds)


def evaluate(torch, model, data, near, far, max_depth=80.0, device_type="cuda"):
    """mIoU over the classes present, AbsRel and delta < 1.25 on whole scenes (the definitions of src/eval)."""
    imgs, labs, deps = data
    conf = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64, device=imgs.device)
    abs_rel, d1, n = 0.0, 0.0, 0
    mean = torch.tensor([123.675, 116.28, 103.53], device=imgs.device).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375], device=imgs.device).view(1, 3, 1, 1)
    model.eval()
    with torch.no_grad(), torch.autocast(device_type, dtype=torch.bfloat16, enabled=device_type == "cuda"):
        for i in range(imgs.shape[0]):
            x = (imgs[i:i + 1].permute(0, 3, 1, 2).float() - mean) / std
            seg, d = model(x)
            pred = seg.float().argmax(1)[0]
            gt = labs[i].long()
            ok = gt < NUM_CLASSES
            conf += torch.bincount(gt[ok] * NUM_CLASSES + pred[ok], minlength=NUM_CLASSES ** 2).view(NUM_CLASSES, NUM_CLASSES)
            z = deps[i]
            v = (z > 0) & (z <= max_depth)
            p = near * torch.exp((1 - d.float()[0, 0].clamp(0, 1)) * np.log(far / near))
            abs_rel += ((p[v] - z[v]).abs() / z[v]).sum().item()
            d1 += (torch.maximum(p[v] / z[v], z[v] / p[v]) < 1.25).sum().item()
            n += int(v.sum().item())
    model.train()
    conf = conf.double()
    tp, gtn, prn = conf.diag(), conf.sum(1), conf.sum(0)
    present = gtn > 0
    iou = tp / (gtn + prn - tp).clamp(min=1)
    return {"miou_pct": 100 * iou[present].mean().item(), "classes_present": int(present.sum().item()),
            "iou_pct": {i: round(100 * iou[i].item(), 2) for i in range(NUM_CLASSES) if present[i]},
            "pixel_acc_pct": 100 * (tp.sum() / conf.sum()).item(), "abs_rel": abs_rel / max(n, 1), "delta1": d1 / max(n, 1)}


def export(torch, MTMI, model, path, size):
    """TorchScript exporter, opset 17, explicit attention; weights packed as float16."""
    import onnx
    m = MTMI(sdpa=False)
    m.load_state_dict({k: (v.float() if v.is_floating_point() else v).cpu() for k, v in model.state_dict().items()})
    m.eval()
    tmp = path + ".fp32.onnx"
    x = torch.zeros(1, 3, size, size)
    kw = dict(opset_version=17, input_names=["input"], output_names=["seg", "depth"])
    exporter = "torchscript"
    try:
        torch.onnx.export(m, (x,), tmp, dynamo=False, **kw)
    except TypeError:  # older PyTorch: no dynamo argument
        torch.onnx.export(m, (x,), tmp, **kw)
    except Exception as e:  # a PyTorch without the TorchScript exporter: the dynamo one
        print("TorchScript exporter failed (%s); exporting with dynamo=True" % str(e).splitlines()[0][:200], flush=True)
        torch.onnx.export(m, (x,), tmp, dynamo=True, **kw)
        exporter = "dynamo"
    mo = onnx.load(tmp, load_external_data=True)
    n, vals = pack_fp16(mo)
    onnx.save(mo, path)
    for f in os.listdir(os.path.dirname(tmp) or "."):  # the float32 export and any external data of it
        if f.startswith(os.path.basename(tmp)):
            os.remove(os.path.join(os.path.dirname(tmp) or ".", f))
    return n, vals, os.path.getsize(path), exporter


def train(a, near, far):
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, a.reference)
    from mtmi_torch import MTMI

    t_start = time.time()
    t_data = synth(a.mtmi, a.data, a.scenes, a.seed, a.size) + synth(a.mtmi, a.val_data, a.val_scenes, a.val_seed, a.size)
    t0 = time.time()
    imgs, labs, deps, _ = read_set(a.data)
    vimgs, vlabs, vdeps, _ = read_set(a.val_data)
    t_read = time.time() - t0
    weights, hist = class_weights(labs)
    print("data: %d training scenes (seed %d), %d held out (seed %d), %dx%d; rendered in %.0f s, read in %.0f s" %
          (len(imgs), a.seed, len(vimgs), a.val_seed, a.size, a.size, t_data, t_read), flush=True)
    dev = a.device
    dtype_dev = "cuda" if dev.startswith("cuda") else "cpu"
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    data = (torch.from_numpy(imgs).to(dev), torch.from_numpy(labs).to(dev), torch.from_numpy(deps).to(dev))
    vdata = (torch.from_numpy(vimgs).to(dev), torch.from_numpy(vlabs).to(dev), torch.from_numpy(vdeps).to(dev))
    del imgs, labs, deps, vimgs, vlabs, vdeps
    model = MTMI(sdpa=hasattr(F, "scaled_dot_product_attention")).to(dev).train()
    params = [{"params": [p for n, p in model.named_parameters() if not n.startswith("enc.")], "lr": a.lr * 3},
              {"params": list(model.enc.parameters()), "lr": a.lr}]
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01, **({"fused": True} if dtype_dev == "cuda" else {}))
    base = [g["lr"] for g in opt.param_groups]
    cw = torch.tensor(weights, dtype=torch.float32, device=dev)
    budget, step, losses = a.minutes * 60.0, 0, []
    t_train = time.time()
    while True:
        p = (time.time() - t_train) / budget
        if p >= 1 or (a.steps and step >= a.steps):
            break
        # warm-up over the first 3 % of the time, then cosine decay to 1 %
        f = p / 0.03 if p < 0.03 else 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * (p - 0.03) / 0.97))
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * f
        x, y, d = make_batch(torch, F, data, a.batch, a.crop, gen, near, far)
        with torch.autocast(dtype_dev, dtype=torch.bfloat16, enabled=dtype_dev == "cuda"):  # CPU smoke runs: float32
            seg, dp = model(x)
        seg_loss = F.cross_entropy(seg.float(), y, weight=cw, ignore_index=IGNORE)
        valid = d >= 0
        dep_loss = (dp.float()[:, 0] - d).abs()[valid].mean() if valid.any() else seg_loss * 0
        loss = seg_loss + a.depth_weight * dep_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            losses.append([step, round(time.time() - t_train, 1), round(seg_loss.item(), 4), round(dep_loss.item(), 4)])
            print("step %5d  %5.0f s  lr x%.3f  seg CE %.4f  depth L1 %.4f" % (step, time.time() - t_train, f, seg_loss.item(),
                                                                         dep_loss.item()), flush=True)
        step += 1
    t_train = time.time() - t_train
    held = evaluate(torch, model, vdata, near, far, device_type=dtype_dev)
    print("held out (%d scenes, PyTorch %s): mIoU %.2f %% over %d classes, pixel acc %.2f %%, AbsRel %.4f, delta1 %.4f" %
          (len(vdata[0]), "bf16" if dtype_dev == "cuda" else "fp32", held["miou_pct"], held["classes_present"], held["pixel_acc_pct"], held["abs_rel"], held["delta1"]), flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    n, vals, size, exporter = export(torch, MTMI, model, a.out, a.size)
    print("exported %s: %d float16 initializers (%.2f M values), %.1f MB" % (a.out, n, vals / 1e6, size / 1e6), flush=True)
    rec = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "torch": torch.__version__, "device": torch.cuda.get_device_name(0) if dtype_dev == "cuda" else dev,
           "git": subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "data": {"train": {"seed": a.seed, "scenes": a.scenes, "size": a.size},
                    "held_out": {"seed": a.val_seed, "scenes": a.val_scenes, "size": a.size},
                    "class_pixels": {str(i): int(v) for i, v in enumerate(hist)}, "class_weights": [round(float(w), 3) for w in weights]},
           "training": {"steps": step, "batch": a.batch, "crop": a.crop, "lr": a.lr, "depth_weight": a.depth_weight,
                        "train_s": round(t_train, 1), "data_s": round(t_data + t_read, 1), "total_s": round(time.time() - t_start, 1),
                        "loss_log": losses},
           "depth_encoding": {"near_m": near, "far_m": far, "metres": "near * (far / near) ** (1 - sigmoid)"},
           "held_out_pytorch": held, "onnx": {"path": os.path.relpath(a.out, ROOT), "bytes": size, "fp16_initializers": n, "exporter": exporter,
                    "opset": 17}}
    json.dump(rec, open(os.path.splitext(a.out)[0] + ".json", "w"), indent=1)
    print("record: %s.json; %.0f s in all" % (os.path.splitext(a.out)[0], time.time() - t_start), flush=True)


def dry_run(a, near, far):
    """What can be checked without PyTorch: constants, data, decoding, packing."""
    import onnx
    print("depth encoding from synth.h: near %.3g m, far %.3g m; 10 m -> d = %.4f -> %.4f m" %
          (near, far, depth_to_unit(np.array([10.0]), near, far)[0], unit_to_depth(depth_to_unit(np.array([10.0]), near, far), near, far)[0]))
    folder = os.path.join(a.data, "dry")
    synth(a.mtmi, folder, 2, a.seed, 128)
    imgs, labs, deps, stems = read_set(folder)
    w, hist = class_weights(labs)
    print("data: %s %s %s, classes present %d, depth %.2f..%.2f m" % (imgs.shape, labs.shape, deps.shape, int((hist > 0).sum()),
                                                                     deps[deps > 0].min(), deps.max()))
    path = os.path.join(folder, "mm.onnx")
    subprocess.run([a.mtmi, "make-model", "-o", path, "--size", "64x64"], check=True, capture_output=True)
    m = onnx.load(path)
    n, vals = pack_fp16(m)
    onnx.save(m, path + ".fp16.onnx")
    print("pack_fp16: %d initializers (%.2f M values) -> %.1f MB" % (n, vals / 1e6, os.path.getsize(path + ".fp16.onnx") / 1e6))
    print("dry run ok (training needs PyTorch and a GPU)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mtmi", default=os.path.join(ROOT, "build", "mtmi"), help="the mtmi binary (for `mtmi synth`)")
    ap.add_argument("--reference", default=os.path.join(ROOT, "..", "shared", "reference"), help="folder of mtmi_torch.py")
    ap.add_argument("--data", default="/tmp/mtmi_train", help="training scenes (made with mtmi synth when absent)")
    ap.add_argument("--val-data", default="/tmp/mtmi_val", help="held-out scenes")
    ap.add_argument("--scenes", type=int, default=1600)
    ap.add_argument("--val-scenes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--val-seed", type=int, default=2)
    ap.add_argument("--size", type=int, default=1024, help="scene size (square), also the export size")
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-4, help="encoder learning rate (heads x3)")
    ap.add_argument("--depth-weight", type=float, default=10.0)
    ap.add_argument("--minutes", type=float, default=5.5, help="training wall time (the whole script: about 1.5 more)")
    ap.add_argument("--steps", type=int, default=0, help="stop after this many steps (0 = time only)")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "mtmi_trained.onnx"))
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke run on small data")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    if a.crop % 32 or a.crop < 512:
        ap.error("--crop must be a multiple of 32 and at least 512")
    near, far = depth_encoding()
    if a.dry_run:
        dry_run(a, near, far)
    else:
        train(a, near, far)


if __name__ == "__main__":
    main()
