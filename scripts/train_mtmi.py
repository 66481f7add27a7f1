#!/usr/bin/env python3
"""Trains the built-in MTMI network on generated street scenes (GPU, PyTorch).

One call on a GPU machine (about 7 minutes of an H100 for --minutes 5):

    python3 scripts/train_mtmi.py --mtmi build-train/mtmi --minutes 5

or one schedule over several calls (scripts/gpu_train.sh --phase K --of N
does this; docs/GROUND_TRUTH.md has the procedure):

    python3 scripts/train_mtmi.py ... --total-minutes 21 --deadline T1        # call 1
    python3 scripts/train_mtmi.py ... --resume --deadline T2                  # call 2
    python3 scripts/train_mtmi.py ... --resume --last --deadline T3           # call 3: ends it, exports

  1. data: `mtmi synth` renders --scenes scenes of 1024x1024 with --seed 1
     (training) and --val-scenes with --val-seed 2 (held out; `mtmi run`'s
     synthetic frames are seed 0, the eval targets use seed 1000): RGB,
     labels (Cityscapes train IDs, 255 = ignore) and depth (metres x 256);
     not again when the folder holds them (synth.json), and the decoded
     arrays are cached beside them (.npy), so a later call on the same
     machine loads them in seconds;
  2. the network of ../shared/reference/mtmi_torch.py, trained from scratch
     on 512x512 crops (scale 0.7-1.3, flips) and, one sample in four
     (--mosaic), 2x2 mosaics of whole scenes at 256x256 (segmentation only:
     the model also sees scenes at a quarter of the size).  Half the crops
     (--balanced) are centred on a pixel of a class drawn with probability
     ~ frequency^-alpha (--alpha 1: every class present alike), found in a
     per-class index of the label maps sampled every 4 pixels: small rare
     objects (riders, motorcycles, bicycles) show 5-12x more pixels than in
     uniform crops.  AdamW (heads at 3x the encoder's rate), bf16 autocast;
     loss = class-weighted cross-entropy (ignore 255; weights from the class
     shares the crops actually show) + --depth-weight x L1 between the depth
     head's sigmoid output and the encoded target depth (L1 on log depth);
  3. the schedule: linear warm-up over 3 %, cosine decay to 1 %, over
     --total-minutes of training (or --minutes for a single call; or
     --total-steps) across calls: each call trains for --minutes or until
     --deadline, saves a checkpoint (--ckpt: model, optimizer, step,
     schedule position, RNG states, times, losses; every --ckpt-every
     minutes too, and a float16 compact one at --compact-out, ~9.4 MB), and
     --resume continues it (from --carry's compact checkpoint if the full
     one is gone: optimizer restarted with a short re-warm-up; with neither
     it starts over and says so).  The call that reaches the end of the
     schedule (--last forces it, compressing what is left into its time)
     does steps 5-7; the others stop after a quick check on a few held-out
     scenes.  Resumed runs are bit for bit the uninterrupted run on the CPU
     (tests/eval/test_train_resume.py);
  4. the depth encoding is src/synth/synth.h's (read from it here, so there
     is one definition): z = NEAR * (FAR / NEAR) ** (1 - d), d = sigmoid;
     every scene is seen by one camera (focal length MT_SYNTH_FOCAL of the
     image height), and a crop scaled by s gets target depth z / s
     (--scaled-depth over_s, the default): what that camera would see of
     things s times nearer, so apparent size keeps meaning one distance.
     --scaled-depth same keeps z (exact for a camera with s times the focal
     length: it trains the network on several cameras, which it cannot
     tell apart, as when the generator drew the focal length per scene);
  5. a check on the held-out scenes (mIoU, AbsRel, delta < 1.25 in PyTorch);
  6. export by PyTorch's TorchScript exporter at opset 17 (1x3x1024x1024,
     explicit attention as the reference export), then every float
     initializer stored as float16 with a Cast to float in front of its
     users: models/mtmi_trained.onnx (~10 MB, one file), which `mtmi run`,
     `bench`, `calibrate`, `accuracy` and `eval` load by default;
  7. models/mtmi_trained.json: the commands, times, data, steps, losses,
     every call (phase) with its times, steps and schedule positions, and
     the held-out numbers.

--dry-run checks everything that needs no PyTorch (the header's constants,
the data generation on a few small scenes, their decoding and cache, the
float16 packing on `mtmi make-model`'s network, the class-balanced sampler
against uniform crops on 48 generated scenes, the schedule across calls and
the choice of checkpoint), for machines without a GPU.
"""
import argparse
import json
import math
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
CLASS_NAMES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation", "terrain", "sky",
               "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")


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
    """images [N,H,W,3] uint8, labels [N,H,W] uint8, depth [N,H,W] uint16 (metres x 256, 0 = none), stems.

    The arrays are allocated once and filled by a thread pool (zlib releases
    the GIL); depth stays in the PNG's 16 bits (half the memory of float32:
    2400 scenes of 1024x1024 take 14.4 GB in all)."""
    stems = sorted(f[:-4] for f in os.listdir(os.path.join(folder, "images")) if f.endswith(".png"))[:limit]
    if not stems:
        raise SystemExit("train_mtmi: no images in %s/images" % folder)
    from concurrent.futures import ThreadPoolExecutor
    first = png_read(os.path.join(folder, "images", stems[0] + ".png"))
    h, w = first.shape[:2]
    imgs = np.empty((len(stems), h, w, 3), np.uint8)
    labs = np.empty((len(stems), h, w), np.uint8)
    deps = np.empty((len(stems), h, w), np.uint16)

    def one(k):
        s = stems[k]
        imgs[k] = png_read(os.path.join(folder, "images", s + ".png"))
        labs[k] = png_read(os.path.join(folder, "labels", s + ".png"))
        deps[k] = png_read(os.path.join(folder, "depth", s + ".png"))

    with ThreadPoolExecutor(max(1, min(32, os.cpu_count() or 1))) as ex:
        list(ex.map(one, range(len(stems))))
    return imgs, labs, deps, stems


def load_set(folder, limit=None):
    """read_set with a cache: the decoded arrays are kept as .npy files beside
    the PNGs (keyed by synth.json), so a later call on the same machine (the
    next training phase) loads them in seconds instead of decoding the PNGs
    again.  A cache that cannot be written (disk full) is skipped."""
    key = json.load(open(os.path.join(folder, "synth.json"))) if os.path.exists(os.path.join(folder, "synth.json")) else None
    names = [os.path.join(folder, "cache_%s.npy" % n) for n in ("images", "labels", "depth")]
    meta = os.path.join(folder, "cache.json")
    if key is not None and os.path.exists(meta) and all(os.path.exists(n) for n in names):
        try:
            m = json.load(open(meta))
            if m.get("synth") == key and m.get("limit") == limit:
                arrs = [np.load(n) for n in names]
                return arrs[0], arrs[1], arrs[2], m["stems"], True
        except (ValueError, OSError, KeyError) as e:
            print("train_mtmi: cache in %s unusable (%s); decoding the PNGs" % (folder, e), flush=True)
    imgs, labs, deps, stems = read_set(folder, limit)
    if key is not None:
        try:
            if os.path.exists(meta):
                os.remove(meta)
            for n, arr in zip(names, (imgs, labs, deps)):
                np.save(n, arr)
            json.dump({"synth": key, "limit": limit, "stems": stems}, open(meta, "w"))
        except OSError as e:
            print("train_mtmi: cannot write the cache in %s (%s); going on without it" % (folder, e), flush=True)
            for n in names + [meta]:
                if os.path.exists(n):
                    os.remove(n)
    return imgs, labs, deps, stems, False


def class_pixels(folder, labs):
    """Pixels of each class: synth.json's count when it covers exactly these
    scenes, else counted (a few seconds for 2400 scenes)."""
    try:
        j = json.load(open(os.path.join(folder, "synth.json")))
        if j.get("count") == len(labs) and j.get("first", 0) == 0:
            v = list(j["pixels"].values())[:NUM_CLASSES]
            if len(v) == NUM_CLASSES:
                return np.array(v, np.int64)
    except (OSError, ValueError, KeyError):
        pass
    return np.bincount(labs.reshape(-1), minlength=256)[:NUM_CLASSES].astype(np.int64)


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


# ------------------------------------------------------- crops and weights
def class_weights(freq):
    """(median frequency / frequency) ** 0.5, clipped to [0.5, 5]: thin classes count more.
    freq: the share of each class among the pixels the loss sees."""
    freq = np.asarray(freq, np.float64)
    med = np.median(freq[freq > 0])
    w = np.where(freq > 0, np.sqrt(med / np.maximum(freq, 1e-12)), 1.0)
    return np.clip(w, 0.5, 5.0)


def class_index(labs, alpha, rng, stride=0, cap=1 << 20):
    """Where each class is, for class-balanced crops: the label maps sampled
    every `stride` pixels (4 at 1024x1024: 65,536 points a scene) and, per
    class, the flat indices of its points in that grid (at most `cap`, drawn
    at random, for the large classes).  A balanced crop draws a class with
    probability proportional to frequency ** -alpha (alpha 1: every class
    present alike), then one of its points.  Seconds for 2400 scenes."""
    N, H, W = labs.shape
    st = stride or max(1, min(H, W) // 256)
    sub = np.ascontiguousarray(labs[:, st // 2::st, st // 2::st])
    flat = sub.reshape(-1)
    dt = np.int32 if flat.size < 2 ** 31 else np.int64
    pools, counts = {}, np.zeros(NUM_CLASSES, np.int64)
    for c in range(NUM_CLASSES):
        k = np.flatnonzero(flat == c)
        counts[c] = len(k)
        if len(k) == 0:
            continue
        if len(k) > cap:
            k = np.sort(k[rng.integers(0, len(k), cap)])
        pools[c] = k.astype(dt)
    classes = sorted(pools)
    freq = counts / max(counts.sum(), 1)
    probs = np.array([freq[c] ** -alpha for c in classes], np.float64)
    probs /= probs.sum()
    return {"stride": st, "shape": sub.shape, "sub": sub, "pools": pools, "classes": classes, "probs": probs,
            "freq": freq, "alpha": alpha}


def sample_windows(rng, count, shape, crop, index=None, p_balanced=0.0, p_mosaic=0.25, scale=(0.7, 1.3)):
    """What one batch shows, as plain numbers (the GPU work is make_batch's):
    ("mosaic", [4 scenes]) for one sample in four (p_mosaic), else
    ("crop", scene, y, x, size, flip): a square of `size` = crop / s pixels
    (s uniform in `scale`) that is resized to crop x crop.  With probability
    p_balanced the square is centred (give or take a quarter of its size) on
    a point of a class drawn by class_index's probabilities, else it lies
    anywhere in a random scene."""
    N, H, W = shape
    out = []
    for _ in range(count):
        if rng.random() < p_mosaic:
            out.append(("mosaic", [int(v) for v in rng.integers(0, N, 4)]))
            continue
        s = scale[0] + (scale[1] - scale[0]) * rng.random()
        cs = min(int(round(crop / s)), H, W)
        if index is not None and rng.random() < p_balanced:
            c = index["classes"][rng.choice(len(index["classes"]), p=index["probs"])]
            pool = index["pools"][c]
            i, sy, sx = np.unravel_index(int(pool[rng.integers(len(pool))]), index["shape"])
            st, j = index["stride"], cs // 4
            y, x = sy * st + st // 2, sx * st + st // 2
            oy = int(np.clip(y - cs // 2 + rng.integers(-j, j + 1), 0, H - cs))
            ox = int(np.clip(x - cs // 2 + rng.integers(-j, j + 1), 0, W - cs))
        else:
            i = rng.integers(0, N)
            oy, ox = int(rng.integers(0, H - cs + 1)), int(rng.integers(0, W - cs + 1))
        out.append(("crop", int(i), oy, ox, cs, bool(rng.random() < 0.5)))
    return out


def window_class_share(index, wins):
    """The share of each class among the labelled pixels that the windows
    show, counted on class_index's grid (a mosaic: its four whole scenes,
    each a quarter of the sample)."""
    sub, st = index["sub"], index["stride"]
    tot = np.zeros(NUM_CLASSES + 1)
    scene = {}
    for w in wins:
        if w[0] == "mosaic":
            for i in w[1]:
                if i not in scene:
                    scene[i] = np.bincount(np.minimum(sub[i], NUM_CLASSES).ravel(), minlength=NUM_CLASSES + 1)
                h = scene[i]
                tot += 0.25 * h / max(h.sum(), 1)
        else:
            _, i, oy, ox, cs, _ = w
            h = np.bincount(np.minimum(sub[i, oy // st:(oy + cs) // st, ox // st:(ox + cs) // st], NUM_CLASSES).ravel(),
                            minlength=NUM_CLASSES + 1)
            tot += h / max(h.sum(), 1)
    tot = tot[:NUM_CLASSES]
    return tot / max(tot.sum(), 1e-12)


def depth_metres(torch, t):
    """Stored depth (uint16 metres x 256, kept as int16 on the device: older
    PyTorch has no uint16) -> float metres."""
    return (t.int() & 0xFFFF).float() / 256.0


def make_batch(torch, F, data, wins, crop, near, far, depth_over_s=False):
    """The windows of sample_windows cut from the scenes on the device: crops
    resized to crop x crop (bilinear, antialiased when shrinking; labels and
    depth nearest), flips; mosaics of four whole scenes at crop/2 (depth
    masked).  A crop resized by s is exactly what a camera with s times the
    focal length sees from the same place, so its depth stays z; with
    depth_over_s it becomes z / s (the same apparent sizes as at the scene's
    own focal length, but things s times shallower along the view)."""
    imgs, labs, deps = data
    dev = imgs.device
    xs, ys, ds = [], [], []
    for w in wins:
        if w[0] == "mosaic":  # (stacked views: an index tensor would be a host-to-device copy, which waits for the GPU)
            half = crop // 2
            x = F.interpolate(torch.stack([imgs[i] for i in w[1]]).permute(0, 3, 1, 2).float(), size=(half, half), mode="bilinear",
                              antialias=True, align_corners=False)
            y = F.interpolate(torch.stack([labs[i] for i in w[1]])[:, None].float(), size=(half, half), mode="nearest")[:, 0].long()
            x = torch.cat([torch.cat([x[0], x[1]], 2), torch.cat([x[2], x[3]], 2)], 1)
            y = torch.cat([torch.cat([y[0], y[1]], 1), torch.cat([y[2], y[3]], 1)], 0)
            d = torch.full((crop, crop), -1.0, device=dev)
        else:
            _, i, oy, ox, cs, flip = w
            s = crop / cs
            x = F.interpolate(imgs[i, oy:oy + cs, ox:ox + cs].permute(2, 0, 1)[None].float(), size=(crop, crop), mode="bilinear",
                              align_corners=False, antialias=s < 1)[0]
            y = F.interpolate(labs[i, oy:oy + cs, ox:ox + cs][None, None].float(), size=(crop, crop), mode="nearest")[0, 0].long()
            z = F.interpolate(depth_metres(torch, deps[i, oy:oy + cs, ox:ox + cs])[None, None], size=(crop, crop), mode="nearest")[0, 0]
            d = depth_to_unit(z / s if depth_over_s else z, near, far)
            if flip:
                x, y, d = x.flip(-1), y.flip(-1), d.flip(-1)
        xs.append(x)
        ys.append(y)
        ds.append(d)
    mean, std = _norm(torch, dev)
    return (torch.stack(xs) - mean) / std, torch.stack(ys), torch.stack(ds)


_NORM = {}


def _norm(torch, dev):
    """The input normalisation's mean and std on the device, made once (a
    tensor made from a list every step is a copy that waits for the GPU)."""
    if str(dev) not in _NORM:
        _NORM[str(dev)] = (torch.tensor([123.675, 116.28, 103.53], device=dev).view(1, 3, 1, 1),
                           torch.tensor([58.395, 57.12, 57.375], device=dev).view(1, 3, 1, 1))
    return _NORM[str(dev)]


# ------------------------------------------------- schedule, phases, checkpoints
WARM = 0.03
CKPT_FORMAT = "mtmi-train-checkpoint-1"
COMPACT_FORMAT = "mtmi-train-compact-1"


def lr_factor(p, warm=WARM):
    """The learning rate over the run, p = 0..1 of its schedule: linear warm-up
    over the first 3 %, then cosine decay to 1 %."""
    if p < warm:
        return p / warm
    p = min(p, 1.0)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (p - warm) / (1 - warm)))


def call_budget(now, minutes, deadline, reserve):
    """Training seconds this call may spend: --minutes, and before --deadline
    (a Unix time) less `reserve` seconds for what follows the training."""
    b = minutes * 60.0 if minutes else float("inf")
    if deadline:
        b = min(b, deadline - now - reserve)
    return max(b, 0.0)


def plan_call(meta, budget_s, max_steps, last):
    """How far this call takes the run (meta: total_s or total_steps,
    sched_s, step).  One schedule spans the calls: the schedule position is
    the training time spent so far over total_s (or steps over total_steps).
    A call trains for its budget, or less if the schedule ends first; a call
    marked `last` must end the schedule, so it runs what is left of it
    faster (rate > 1: the same cosine, compressed into its budget).
    Returns rate (schedule seconds per training second), train_s, stop_step,
    finishes (whether reaching train_s / stop_step ends the schedule)."""
    inf = float("inf")
    if meta["total_steps"]:
        stop = meta["total_steps"] if not max_steps else min(meta["total_steps"], meta["step"] + max_steps)
        return {"rate": 1.0, "train_s": budget_s, "stop_step": stop, "finishes": stop >= meta["total_steps"]}
    left = max(meta["total_s"] - meta["sched_s"], 0.0)
    stop = meta["step"] + max_steps if max_steps else inf
    if left <= budget_s:
        return {"rate": 1.0, "train_s": left, "stop_step": stop, "finishes": True}
    if last:
        b = max(budget_s, 10.0)
        return {"rate": left / b, "train_s": b, "stop_step": stop, "finishes": True}
    return {"rate": 1.0, "train_s": budget_s, "stop_step": stop, "finishes": False}


def choose_checkpoint(full, compact):
    """Which checkpoint a --resume continues from, given their metas (or None):
    of one run, the one further on (the full one on a tie: it has the
    optimizer); of different runs, the one saved last."""
    if full and compact:
        if full["run_id"] == compact["run_id"]:
            return "full" if full["step"] >= compact["step"] else "compact"
        return "full" if full["saved_at"] >= compact["saved_at"] else "compact"
    return "full" if full else "compact" if compact else None


def schedule_pos(meta):
    return meta["step"] / meta["total_steps"] if meta["total_steps"] else meta["sched_s"] / max(meta["total_s"], 1e-9)


def load_checkpoint(torch, path):
    """A checkpoint file (full or compact), or None if absent or unreadable."""
    if not path or not os.path.exists(path):
        return None
    try:
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
        except TypeError:  # PyTorch without weights_only
            ck = torch.load(path, map_location="cpu")
    except Exception as e:  # a truncated file: say so and go on without it
        print("train_mtmi: checkpoint %s unreadable (%s)" % (path, str(e).splitlines()[0][:200]), flush=True)
        return None
    if not isinstance(ck, dict) or ck.get("format") not in (CKPT_FORMAT, COMPACT_FORMAT):
        print("train_mtmi: %s is not a training checkpoint" % path, flush=True)
        return None
    return ck


def save_checkpoints(torch, a, model, opt, meta, rng):
    """The full checkpoint (model, optimizer, RNG states, meta: ~60 MB) in
    --ckpt, for the next call on this machine, and the compact one (model
    weights as float16, meta, sampler RNG: ~9.4 MB) at --compact-out, small
    enough to come back from a GPU machine and be carried to the next call
    if the machine is lost.  Both written atomically (temporary + rename)."""
    meta = dict(meta, saved_at=time.time())
    rs = {"np": rng.bit_generator.state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rs["cuda"] = torch.cuda.get_rng_state_all()
    sd = model.state_dict()
    os.makedirs(a.ckpt, exist_ok=True)
    path = os.path.join(a.ckpt, "last.pt")
    torch.save({"format": CKPT_FORMAT, "meta": meta, "model": {k: v.detach().cpu() for k, v in sd.items()},
                "opt": opt.state_dict(), "rng": rs}, path + ".tmp")
    os.replace(path + ".tmp", path)
    json.dump({k: v for k, v in meta.items() if k != "losses"}, open(os.path.join(a.ckpt, "last.json"), "w"), indent=1)
    if a.compact_out:
        os.makedirs(os.path.dirname(os.path.abspath(a.compact_out)), exist_ok=True)
        half = {k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()) for k, v in sd.items()}
        torch.save({"format": COMPACT_FORMAT, "meta": meta, "model": half, "rng": {"np": rs["np"], "torch": rs["torch"]}},
                   a.compact_out + ".tmp")
        os.replace(a.compact_out + ".tmp", a.compact_out)


def banner(*lines):
    bar = "#" * 78
    print("\n".join([bar] + ["### " + line for line in lines] + [bar]), flush=True)


# --------------------------------------------------------------- training
def evaluate(torch, model, data, near, far, max_depth=80.0, device_type="cuda", limit=None):
    """mIoU over the classes present, AbsRel and delta < 1.25 on whole scenes (the definitions of src/eval)."""
    imgs, labs, deps = (t[:limit] for t in data)
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
            z = depth_metres(torch, deps[i])
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
    dev = a.device
    cuda = dev.startswith("cuda")
    dtype_dev = "cuda" if cuda else "cpu"
    devname = torch.cuda.get_device_name(0) if cuda else dev
    # which run this call continues
    full_path = os.path.join(a.ckpt, "last.pt")
    ck, source = None, "fresh"
    if a.resume:
        full = load_checkpoint(torch, full_path)
        comp = load_checkpoint(torch, a.carry) if a.carry else None
        pick = choose_checkpoint(full and full["meta"], comp and comp["meta"])
        ck = full if pick == "full" else comp if pick == "compact" else None
        source = pick or "none"
        if ck is None:
            banner("--resume: NO CHECKPOINT (%s: %s; %s: %s)" % (full_path, "unreadable" if os.path.exists(full_path) else "absent",
                                                                a.carry, "unreadable" if a.carry and os.path.exists(a.carry) else "absent"),
                   "STARTING OVER: a new run, its schedule set by this call's --total-minutes / --total-steps",
                   "(the machine was probably lost between calls and no compact checkpoint was carried)")
        else:
            m = ck["meta"]
            print("resuming run %s from the %s checkpoint (%s): step %d, schedule %.1f %%, %.0f s trained in %d call(s)%s" %
                  (m["run_id"], pick, full_path if pick == "full" else a.carry, m["step"], 100 * schedule_pos(m), m["train_s"],
                   len(m["phases"]), "" if pick == "full" else "; optimizer state restarts (re-warm-up over %d steps)" % a.rewarm), flush=True)
    elif os.path.exists(full_path):  # a new run: an older checkpoint is kept aside, never continued by mistake
        os.replace(full_path, full_path + ".prev")
    t_data = synth(a.mtmi, a.data, a.scenes, a.seed, a.size) + synth(a.mtmi, a.val_data, a.val_scenes, a.val_seed, a.size)
    t0 = time.time()
    imgs, labs, deps, _, cached = load_set(a.data, a.scenes)
    vimgs, vlabs, vdeps, _, _ = load_set(a.val_data, a.val_scenes)
    t_read = time.time() - t0
    print("data: %d training scenes (seed %d), %d held out (seed %d), %dx%d; rendered in %.0f s, %s in %.0f s" %
          (len(imgs), a.seed, len(vimgs), a.val_seed, a.size, a.size, t_data, "loaded from the cache" if cached else "decoded", t_read),
          flush=True)
    t0 = time.time()
    index = class_index(labs, a.alpha, np.random.default_rng([a.seed, 1]))
    hist = class_pixels(a.data, labs)
    if ck is not None:
        weights, share = np.array(ck["meta"]["class_weights"]), np.array(ck["meta"]["class_share"])
    else:
        if a.weights == "sampled":  # the class shares of what the loss will see: crops (balanced or not) and mosaics
            share = window_class_share(index, sample_windows(np.random.default_rng([a.seed, 2]), 4000, labs.shape, a.crop, index,
                                                             a.balanced, a.mosaic))
        else:
            share = hist / max(hist.sum(), 1)
        weights = class_weights(share)
    print("class index (every %d px) and weights in %.1f s; balanced crops %.0f %% (class ~ frequency^-%.2f), mosaics %.0f %%; "
          "loss weights %s" % (index["stride"], time.time() - t0, 100 * a.balanced, a.alpha, 100 * a.mosaic,
                               " ".join("%.2f" % w for w in weights)), flush=True)
    torch.manual_seed(a.seed)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    data = (torch.from_numpy(imgs).to(dev), torch.from_numpy(labs).to(dev), torch.from_numpy(deps.view(np.int16)).to(dev))
    vdata = (torch.from_numpy(vimgs).to(dev), torch.from_numpy(vlabs).to(dev), torch.from_numpy(vdeps.view(np.int16)).to(dev))
    shape = labs.shape
    del imgs, labs, deps, vimgs, vlabs, vdeps
    model = MTMI(sdpa=hasattr(F, "scaled_dot_product_attention")).to(dev).train()
    params = [{"params": [p for n, p in model.named_parameters() if not n.startswith("enc.")], "lr": a.lr * 3},
              {"params": list(model.enc.parameters()), "lr": a.lr}]
    fused = {"fused": True} if cuda else {}
    opt = torch.optim.AdamW(params, lr=a.lr, weight_decay=0.01, **fused)
    base = [g["lr"] for g in opt.param_groups]
    rng = np.random.default_rng(a.seed)  # every crop, mosaic and flip
    cfg = {"scenes": a.scenes, "seed": a.seed, "size": a.size, "crop": a.crop, "batch": a.batch, "lr": a.lr, "depth_weight": a.depth_weight,
           "balanced": a.balanced, "alpha": a.alpha, "mosaic": a.mosaic, "weights": a.weights, "scaled_depth": a.scaled_depth}
    rewarm = 0
    if ck is None:
        total_steps = a.total_steps or (a.steps if a.steps and not (a.minutes or a.total_minutes) else 0)
        meta = {"run_id": os.urandom(6).hex(), "created": time.strftime("%Y-%m-%d %H:%M:%S"), "step": 0, "sched_s": 0.0,
                "total_s": 0.0 if total_steps else 60.0 * (a.total_minutes or a.minutes or 5.5), "total_steps": total_steps,
                "train_s": 0.0, "losses": [], "phases": [], "class_weights": [float(w) for w in weights],
                "class_share": [float(v) for v in share], "config": cfg, "finished": False}
    else:
        meta = dict(ck["meta"])
        diff = {k: (meta["config"].get(k), v) for k, v in cfg.items() if meta["config"].get(k) != v}
        if diff:
            print("train_mtmi: WARNING: options differ from the run's first call (first, now): %s; going on with this call's" % diff,
                  flush=True)
        model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in ck["model"].items()})
        if ck["format"] == CKPT_FORMAT:
            opt.load_state_dict(ck["opt"])
            for g in opt.param_groups:  # as built here (a checkpoint from another device)
                if "fused" in g:
                    g["fused"] = bool(fused)
        else:
            rewarm = a.rewarm
        rng.bit_generator.state = ck["rng"]["np"]
        torch.set_rng_state(ck["rng"]["torch"])
        if cuda and "cuda" in ck["rng"]:
            try:
                torch.cuda.set_rng_state_all(ck["rng"]["cuda"])
            except (RuntimeError, IndexError):
                pass
        del ck
    cw = torch.tensor(weights, dtype=torch.float32, device=dev)
    phase = {"call": len(meta["phases"]) + 1, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "from": source, "device": devname,
             "command": " ".join([os.path.basename(sys.executable)] + sys.argv), "data_s": round(t_data + t_read, 1),
             "step_from": meta["step"], "schedule_from": round(schedule_pos(meta), 4)}
    phases_before = list(meta["phases"])
    step0, sched0, train0 = meta["step"], meta["sched_s"], meta["train_s"]
    now = time.time()
    plan = plan_call(meta, call_budget(now, a.minutes, a.deadline, a.reserve_final), a.steps, a.last)
    if not plan["finishes"]:
        plan = plan_call(meta, call_budget(now, a.minutes, a.deadline, a.reserve), a.steps, a.last)
    phase["setup_s"] = round(now - t_start, 1)
    if meta["finished"]:
        plan = dict(plan, train_s=0.0, stop_step=step0, finishes=True)
        print("the run's schedule is already complete (step %d): no training, the held-out check and export again" % step0, flush=True)
    else:
        print("call %d of run %s: schedule at %.1f %% (step %d); this call trains %s%s and %s the schedule" %
              (phase["call"], meta["run_id"], 100 * schedule_pos(meta), step0,
               "%d steps" % (plan["stop_step"] - step0) if meta["total_steps"] else "%.0f s" % plan["train_s"],
               " (%.2fx the schedule's pace: the last call ends it)" % plan["rate"] if plan["rate"] > 1.0001 else "",
               "ends" if plan["finishes"] else "does not end"), flush=True)
    step, reason, last_save = step0, "schedule" if meta["finished"] else None, 0.0

    def snapshot(t, sched_s, finished, **extra):
        meta.update(step=step, sched_s=sched_s, train_s=round(train0 + t, 2), finished=finished)
        phase.update(train_s=round(t, 1), step_to=step, schedule_to=round(schedule_pos(meta), 4),
                     steps_per_s=round((step - step0) / max(t, 1e-9), 2), **extra)
        meta["phases"] = phases_before + [dict(phase)]

    t_train = time.time()
    while reason is None:
        t = time.time() - t_train
        if meta["total_steps"]:
            if step >= plan["stop_step"]:
                reason = "schedule" if step >= meta["total_steps"] else "steps"
                break
            if t >= plan["train_s"]:
                reason = "budget"
                break
            p = step / meta["total_steps"]
        else:
            if t >= plan["train_s"]:
                reason = "schedule" if plan["finishes"] else "budget"
                break
            if step >= plan["stop_step"]:
                reason = "steps"
                break
            p = (sched0 + plan["rate"] * t) / meta["total_s"]
        f = lr_factor(p) * (min(1.0, (step - step0 + 1) / rewarm) if rewarm else 1.0)
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * f
        x, y, d = make_batch(torch, F, data, sample_windows(rng, a.batch, shape, a.crop, index, a.balanced, a.mosaic), a.crop, near, far,
                             a.scaled_depth == "over_s")
        with torch.autocast(dtype_dev, dtype=torch.bfloat16, enabled=cuda):  # CPU smoke runs: float32
            seg, dp = model(x)
        seg_loss = F.cross_entropy(seg.float(), y, weight=cw, ignore_index=IGNORE)
        valid = (d >= 0).float()  # a masked mean: no host sync (a boolean index would wait for the GPU every step)
        dep_loss = ((dp.float()[:, 0] - d).abs() * valid).sum() / valid.sum().clamp(min=1.0)
        loss = seg_loss + a.depth_weight * dep_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0:
            tt = time.time() - t_train
            meta["losses"] = meta["losses"] + [[step, round(train0 + tt, 1), round(seg_loss.item(), 4), round(dep_loss.item(), 4)]]
            print("step %6d  %6.0f s  schedule %5.1f %%  lr x%.3f  seg CE %.4f  depth L1 %.4f" %
                  (step, train0 + tt, 100 * p, f, seg_loss.item(), dep_loss.item()), flush=True)
        step += 1
        if a.ckpt_every and time.time() - t_train - last_save >= a.ckpt_every * 60:
            last_save = time.time() - t_train
            sched = meta["sched_s"] if meta["total_steps"] else min(meta["total_s"], sched0 + plan["rate"] * last_save)
            snapshot(last_save, sched, False, ended="running")
            save_checkpoints(torch, a, model, opt, meta, rng)
    if cuda:
        torch.cuda.synchronize()
    t = time.time() - t_train if step > step0 else 0.0
    finished = reason == "schedule"
    if meta["total_steps"]:
        sched = 0.0
    else:
        sched = meta["total_s"] if finished else min(meta["total_s"], sched0 + plan["rate"] * t)
    snapshot(t, sched, finished, ended=reason, rate=round(plan["rate"], 3))
    print("call %d: %d steps in %.0f s (%.2f steps/s), stopped by %s; run at step %d, schedule %.1f %%, %.0f s trained in all" %
          (phase["call"], step - step0, t, phase["steps_per_s"], reason, step, 100 * schedule_pos(meta), meta["train_s"]), flush=True)
    if not finished:
        if a.phase_check:
            q = evaluate(torch, model, vdata, near, far, device_type=dtype_dev, limit=a.phase_check)
            phase["check"] = {"scenes": min(a.phase_check, len(vdata[0])), "miou_pct": round(q["miou_pct"], 2), "abs_rel": round(q["abs_rel"], 4)}
            meta["phases"] = phases_before + [dict(phase)]
            print("quick check on %d held-out scenes: mIoU %.2f %%, AbsRel %.4f (not the final numbers)" %
                  (phase["check"]["scenes"], q["miou_pct"], q["abs_rel"]), flush=True)
        save_checkpoints(torch, a, model, opt, meta, rng)
        print("checkpoint: %s (full), %s (compact, %.1f MB); the schedule is not complete: continue with --resume" %
              (full_path, a.compact_out, os.path.getsize(a.compact_out) / 1e6 if a.compact_out else 0), flush=True)
        print("call done in %.0f s (not the final call: no export)" % (time.time() - t_start), flush=True)
        return False
    save_checkpoints(torch, a, model, opt, meta, rng)  # the finished run stays continuable (fine-tuning)
    held = evaluate(torch, model, vdata, near, far, device_type=dtype_dev)
    print("held out (%d scenes, PyTorch %s): mIoU %.2f %% over %d classes, pixel acc %.2f %%, AbsRel %.4f, delta1 %.4f" %
          (len(vdata[0]), "bf16" if cuda else "fp32", held["miou_pct"], held["classes_present"], held["pixel_acc_pct"], held["abs_rel"],
           held["delta1"]), flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    n, vals, size, exporter = export(torch, MTMI, model, a.out, a.size)
    print("exported %s: %d float16 initializers (%.2f M values), %.1f MB" % (a.out, n, vals / 1e6, size / 1e6), flush=True)
    tr = {"run_id": meta["run_id"], "steps": step, "batch": a.batch, "crop": a.crop, "lr": a.lr, "depth_weight": a.depth_weight,
          "balanced_crops": a.balanced, "balance_alpha": a.alpha, "mosaic": a.mosaic, "loss_weights": a.weights,
          "scaled_depth": a.scaled_depth,
          "schedule": {"total_s": meta["total_s"], "total_steps": meta["total_steps"], "warm_up": WARM, "lr_end": 0.01},
          "calls": len(meta["phases"]), "train_s": round(meta["train_s"], 1), "phases": meta["phases"],
          "data_s": round(t_data + t_read, 1), "total_s": round(time.time() - t_start, 1), "loss_log": meta["losses"]}
    rec = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "torch": torch.__version__, "device": devname,
           "git": subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip(),
           "data": {"train": {"seed": a.seed, "scenes": a.scenes, "size": a.size},
                    "held_out": {"seed": a.val_seed, "scenes": a.val_scenes, "size": a.size},
                    "class_pixels": {str(i): int(v) for i, v in enumerate(hist)}, "class_share_trained": [round(v, 6) for v in share],
                    "class_weights": [round(float(w), 3) for w in weights]},
           "training": tr,
           "depth_encoding": {"near_m": near, "far_m": far, "metres": "near * (far / near) ** (1 - sigmoid)"},
           "held_out_pytorch": held, "onnx": {"path": os.path.relpath(a.out, ROOT), "bytes": size, "fp16_initializers": n, "exporter": exporter,
                    "opset": 17}}
    json.dump(rec, open(os.path.splitext(a.out)[0] + ".json", "w"), indent=1)
    print("record: %s.json; %.0f s in all" % (os.path.splitext(a.out)[0], time.time() - t_start), flush=True)
    return True


def check_sampler(a, folder, count=48, size=512, crop=256, windows=4000):
    """Class-balanced crops against uniform ones on generated scenes: the share
    of the rare classes' pixels in what the crops show (asserted: up by a
    large factor), and the loss weights that follow."""
    synth(a.mtmi, folder, count, a.seed, size)
    t0 = time.time()
    imgs, labs, deps, _, _ = load_set(folder)
    index = class_index(labs, a.alpha, np.random.default_rng(0))
    t_index = time.time() - t0
    uni = window_class_share(index, sample_windows(np.random.default_rng(1), windows, labs.shape, crop, index, 0.0, a.mosaic))
    bal = window_class_share(index, sample_windows(np.random.default_rng(1), windows, labs.shape, crop, index, a.balanced, a.mosaic))
    rare = [c for c in range(NUM_CLASSES) if 0 < uni[c] < 0.002]
    print("balanced crops (%d scenes of %dx%d, crops of %d, %d windows; %.0f %% balanced, alpha %.2f; index in %.2f s):" %
          (count, size, size, crop, windows, 100 * a.balanced, a.alpha, t_index))
    print("  class          uniform %   balanced %   gain   weight uniform -> balanced")
    wu, wb = class_weights(uni), class_weights(bal)
    for c in range(NUM_CLASSES):
        if uni[c] > 0 or bal[c] > 0:
            print("  %-14s %9.3f %12.3f %6.1fx %7.2f -> %.2f%s" % (CLASS_NAMES[c], 100 * uni[c], 100 * bal[c], bal[c] / max(uni[c], 1e-12),
                                                            wu[c], wb[c], "  (rare)" if c in rare else ""))
    gain = bal[rare].sum() / max(uni[rare].sum(), 1e-12)
    print("  the classes under 0.2 %% of the pixels (%s): %.3f %% -> %.3f %% of the pixels shown (%.1fx)" %
          (", ".join(CLASS_NAMES[c] for c in rare), 100 * uni[rare].sum(), 100 * bal[rare].sum(), gain))
    if a.balanced >= 0.5 and a.alpha >= 0.5:  # the defaults' promise (other settings: shown, not asserted)
        assert len(rare) >= 3, "too few rare classes in the generated scenes: %s" % rare
        assert gain >= 2.5, "balanced crops raise the rare classes' share only %.2fx" % gain
        assert all(bal[c] / uni[c] >= 1.2 for c in rare), "a rare class gains less than 1.2x"
        # small objects gain the most (a crop centred on one shows it whole); long thin ones (walls, fences) are in
        # most crops anyway
        assert all(bal[c] / uni[c] >= 3.0 for c in (12, 17, 18) if c in rare), "rider, motorcycle or bicycle gains less than 3x"
    # the sampler is exact about where it puts a balanced crop: every window lies inside its scene
    wins = sample_windows(np.random.default_rng(2), 2000, labs.shape, crop, index, 1.0, 0.0)
    assert all(0 <= w[2] and w[2] + w[4] <= labs.shape[1] and 0 <= w[3] and w[3] + w[4] <= labs.shape[2] for w in wins)


def check_schedule():
    """Phases continue one schedule; the last call ends it; which checkpoint a resume takes."""
    meta = {"total_s": 1000.0, "total_steps": 0, "sched_s": 0.0, "step": 0}
    pos, lrs = [], []
    for budget, last in ((300.0, False), (400.0, False), (200.0, True)):
        pl = plan_call(meta, budget, 0, last)
        start = meta["sched_s"] / meta["total_s"]
        meta["sched_s"] = meta["total_s"] if pl["finishes"] else meta["sched_s"] + pl["rate"] * pl["train_s"]
        pos.append((round(start, 3), round(meta["sched_s"] / meta["total_s"], 3), round(pl["rate"], 3), pl["finishes"]))
        lrs.append((lr_factor(start), lr_factor(meta["sched_s"] / meta["total_s"])))
    assert pos == [(0.0, 0.3, 1.0, False), (0.3, 0.7, 1.0, False), (0.7, 1.0, 1.5, True)], pos
    assert all(abs(lrs[i][1] - lrs[i + 1][0]) < 1e-12 for i in range(2)) and abs(lrs[-1][1] - 0.01) < 1e-12
    pl = plan_call({"total_s": 1000.0, "total_steps": 0, "sched_s": 900.0, "step": 0}, 300.0, 0, False)
    assert pl["finishes"] and pl["train_s"] == 100.0  # a call with more time than the schedule has left ends it early
    pl = plan_call({"total_s": 0, "total_steps": 10, "sched_s": 0, "step": 4}, float("inf"), 3, False)
    assert pl["stop_step"] == 7 and not pl["finishes"]
    pl = plan_call({"total_s": 0, "total_steps": 10, "sched_s": 0, "step": 7}, float("inf"), 0, False)
    assert pl["stop_step"] == 10 and pl["finishes"]
    assert abs(lr_factor(WARM) - 1.0) < 1e-12 and lr_factor(0) == 0 and abs(lr_factor(1.0) - 0.01) < 1e-12
    assert call_budget(1000.0, 9, 1500.0, 60) == 440.0 and call_budget(1000.0, 5, 0, 60) == 300.0
    A = {"run_id": "a", "step": 10, "saved_at": 5.0}
    assert choose_checkpoint(A, dict(A, step=8)) == "full" and choose_checkpoint(A, dict(A, step=12)) == "compact"
    assert choose_checkpoint(A, A) == "full" and choose_checkpoint(None, A) == "compact" and choose_checkpoint(A, None) == "full"
    assert choose_checkpoint(A, {"run_id": "b", "step": 1, "saved_at": 6.0}) == "compact" and choose_checkpoint(None, None) is None
    print("schedule: 3 calls of 300/400/200 s over a 1000 s schedule -> positions %s; the last runs 1.5x to end it; "
          "checkpoint choice ok" % [p[:2] for p in pos])


def dry_run(a, near, far):
    """What can be checked without PyTorch: constants, data, decoding, packing,
    the class-balanced sampler, the schedule across calls."""
    import onnx
    print("depth encoding from synth.h: near %.3g m, far %.3g m; 10 m -> d = %.4f -> %.4f m" %
          (near, far, depth_to_unit(np.array([10.0]), near, far)[0], unit_to_depth(depth_to_unit(np.array([10.0]), near, far), near, far)[0]))
    folder = os.path.join(a.data, "dry")
    synth(a.mtmi, folder, 2, a.seed, 128)
    imgs, labs, deps, stems, _ = load_set(folder)
    imgs2, labs2, deps2, _, cached = load_set(folder)
    assert cached and np.array_equal(imgs, imgs2) and np.array_equal(labs, labs2) and np.array_equal(deps, deps2), "the .npy cache"
    hist = class_pixels(folder, labs)
    assert np.array_equal(hist, np.bincount(labs.ravel(), minlength=256)[:NUM_CLASSES]), "synth.json's class pixels"
    z = deps.astype(np.float32) / 256
    print("data: %s %s %s, classes present %d, depth %.2f..%.2f m; cache reloads equal" %
          (imgs.shape, labs.shape, deps.shape, int((hist > 0).sum()), z[z > 0].min(), z.max()))
    path = os.path.join(folder, "mm.onnx")
    subprocess.run([a.mtmi, "make-model", "-o", path, "--size", "64x64"], check=True, capture_output=True)
    m = onnx.load(path)
    n, vals = pack_fp16(m)
    onnx.save(m, path + ".fp16.onnx")
    print("pack_fp16: %d initializers (%.2f M values) -> %.1f MB" % (n, vals / 1e6, os.path.getsize(path + ".fp16.onnx") / 1e6))
    check_sampler(a, os.path.join(a.data, "dry_balanced"))
    check_schedule()
    print("dry run ok (training needs PyTorch and a GPU)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mtmi", default=os.path.join(ROOT, "build", "mtmi"), help="the mtmi binary (for `mtmi synth`)")
    ap.add_argument("--reference", default=os.path.join(ROOT, "..", "shared", "reference"), help="folder of mtmi_torch.py")
    ap.add_argument("--data", default="/tmp/mtmi_train", help="training scenes (made with mtmi synth when absent; .npy cache beside)")
    ap.add_argument("--val-data", default="/tmp/mtmi_val", help="held-out scenes")
    ap.add_argument("--scenes", type=int, default=2400)
    ap.add_argument("--val-scenes", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--val-seed", type=int, default=2)
    ap.add_argument("--size", type=int, default=1024, help="scene size (square), also the export size")
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-4, help="encoder learning rate (heads x3)")
    ap.add_argument("--depth-weight", type=float, default=10.0)
    ap.add_argument("--balanced", type=float, default=0.5, help="share of the crops centred on a class drawn by --alpha (0: uniform crops)")
    ap.add_argument("--alpha", type=float, default=1.0, help="balanced crops draw a class with probability ~ frequency^-alpha (1: all alike)")
    ap.add_argument("--mosaic", type=float, default=0.25, help="share of the samples that are 2x2 mosaics of whole scenes")
    ap.add_argument("--scaled-depth", choices=("same", "over_s"), default="over_s",
                    help="target depth of a crop resized by s: z / s (over_s: the generator's one camera seeing things s times "
                         "nearer) or z (same: a camera with s times the focal length; see docs/GROUND_TRUTH.md)")
    ap.add_argument("--weights", choices=("sampled", "scenes"), default="sampled",
                    help="loss weights from the class shares the crops show (sampled) or from the scenes' pixels")
    ap.add_argument("--minutes", type=float, default=None, help="training wall time of this call (default: the whole schedule)")
    ap.add_argument("--total-minutes", type=float, default=None,
                    help="training minutes of the whole schedule (warm-up + cosine) over all calls (default --minutes, else 5.5)")
    ap.add_argument("--steps", type=int, default=0, help="stop this call after this many steps (alone: a run of that many steps)")
    ap.add_argument("--total-steps", type=int, default=0, help="a schedule over steps instead of time (tests, reproducible runs)")
    ap.add_argument("--deadline", type=float, default=0, help="Unix time by which this call must be done (training stops in time "
                    "for the checkpoint, or the held-out check and export)")
    ap.add_argument("--reserve", type=float, default=20, help="seconds kept before --deadline after a call that does not end the run")
    ap.add_argument("--reserve-final", type=float, default=75, help="seconds kept before --deadline for the check and export")
    ap.add_argument("--resume", action="store_true", help="continue the run of --ckpt (or of --carry); none: start over, loudly")
    ap.add_argument("--last", action="store_true", help="this call ends the schedule, faster if it must (the final phase)")
    ap.add_argument("--ckpt", default=os.path.join(ROOT, "build-train", "ckpt"), help="folder of the full checkpoint (last.pt)")
    ap.add_argument("--ckpt-every", type=float, default=2.0, help="minutes between checkpoints during a call (0: only at its end)")
    ap.add_argument("--compact-out", default=None, help="where to write the compact checkpoint (float16 model: ~9.4 MB; default: in --ckpt)")
    ap.add_argument("--carry", default=os.path.join(ROOT, "build-train", "carry", "mtmi_ckpt.pt"),
                    help="a compact checkpoint brought from an earlier call, used by --resume when the full one is missing")
    ap.add_argument("--rewarm", type=int, default=200, help="steps of LR re-warm-up after resuming without optimizer state")
    ap.add_argument("--phase-check", type=int, default=10, help="held-out scenes checked at the end of a call that does not end the run")
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "mtmi_trained.onnx"))
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke run on small data")
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args()
    if a.crop % 32 or a.crop < 512:
        ap.error("--crop must be a multiple of 32 and at least 512")
    if not 0 <= a.balanced <= 1 or not 0 <= a.mosaic <= 1:
        ap.error("--balanced and --mosaic are shares (0..1)")
    if a.compact_out is None:
        a.compact_out = os.path.join(a.ckpt, "mtmi_ckpt.pt")
    near, far = depth_encoding()
    if a.dry_run:
        dry_run(a, near, far)
    else:
        train(a, near, far)


if __name__ == "__main__":
    main()
