#!/usr/bin/env python3
"""Load client for the mtmi model on a running Triton server (gRPC).

Sends uint8 RGB frames (`image` input) asking for `classes` and `depth`, at
each concurrency level in turn (1, 4, 16 by default): that many requests in
flight at once, each from a thread of its own with its own gRPC channel (and
with --procs, spread over that many processes, so that Python's GIL does not
bound the client).  Per level: requests, frames/s, p50/p90/p99 latency,
errors, and from the server's statistics the requests it counted and the
mean batch its dynamic batcher formed.

Only correct responses count.  Before the load, every distinct frame is sent
once alone; that answer is its reference.  Every response then must carry
the request's id and outputs of the declared shape and type, and agree with
its frame's reference (in full every --check-every responses, else on a
pixel sample).  Any error, wrong response, or a server count that differs
from what was sent makes the exit status 1: a benchmark that measures
errors as throughput cannot pass.

Each frame's request is serialized once and sent with the gRPC stub of
Triton's service.proto (tritonclient's infer() would rebuild a 3 MB request
every time); health, config and statistics go through tritonclient.  --shm
puts the frames and outputs in system shared memory instead of the
messages: the server's rate without gRPC's copies of the tensors.

Runs with .venv-triton's python (tritonclient[grpc], numpy; PNG --images are
read with Pillow when it is there, else with zlib).  Example:
  .venv-triton/bin/python scripts/triton_perf.py --url 127.0.0.1:8001 \\
      --size 1024x1024 --concurrency 1,4,16 --requests 400 --json perf.json
"""
import argparse
import json
import multiprocessing as mp
import os
import shutil
import struct
import subprocess
import tempfile
import sys
import threading
import time
import urllib.request

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2
from tritonclient.utils import InferenceServerException


def die(msg):
    print("triton_perf: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


# ------------------------------------------------------------------ frames
def generated_frames(n, h, w, seed):
    """Street-like scenes (sky, buildings, road, noise), each different, so
    the class maps and depth differ between frames and within one."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    out = []
    for k in range(n):
        img = np.empty((h, w, 3), np.float32)
        horizon = int(h * rng.uniform(0.35, 0.6))
        sky = np.array(rng.uniform([90, 130, 180], [150, 190, 250]), np.float32)
        img[:] = sky * (0.7 + 0.3 * y[..., None] / h)
        for _ in range(rng.integers(3, 9)):  # buildings, poles, cars
            x0, x1 = sorted(rng.integers(0, w, 2))
            y0 = int(rng.integers(0, horizon))
            img[y0:horizon + int(rng.integers(0, h // 4)), x0:x1 + 1] = rng.uniform(20, 235, 3)
        road = np.array(rng.uniform([60, 60, 60], [120, 120, 120]), np.float32)
        img[horizon:] = road * (0.6 + 0.6 * (y[horizon:, :, None] - horizon) / max(h - horizon, 1))
        img[horizon:, ((x + 7 * k) % 64 < 6)[0]] += 90  # lane marks
        img += rng.normal(0, 6 + 4 * (k % 3), (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def fit(img, h, w):
    """Nearest-neighbour resize to h x w (the frames only need to vary)."""
    ys = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
    xs = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
    return np.ascontiguousarray(img[ys][:, xs, :3])


def read_png(path):
    """An 8-bit RGB/RGBA PNG as HxWx3 uint8, with numpy and zlib only (the
    client's venv need not have Pillow); Pillow is used when it is there."""
    try:
        from PIL import Image
        return np.asarray(Image.open(path).convert("RGB"))
    except ImportError:
        pass
    import struct
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        die("%s: not a PNG file" % path)
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + n
    if not hdr or hdr[2] != 8 or hdr[3] not in (2, 6) or hdr[6] != 0:
        die("%s: only 8-bit RGB/RGBA non-interlaced PNG without Pillow" % path)
    w, h, ch = hdr[0], hdr[1], 3 if hdr[3] == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * ch)
    out = np.zeros((h, w * ch), np.uint8)
    prev = np.zeros(w * ch, np.uint8)
    for y in range(h):  # undo the row filters (PNG spec 9.2)
        ft, row = raw[y, 0], raw[y, 1:].copy()
        if ft == 1:
            row = np.cumsum(row.reshape(w, ch), axis=0, dtype=np.uint8).ravel()
        elif ft == 2:
            row = row + prev
        elif ft in (3, 4):  # sequential per pixel: slow, rare in our files
            r = row.astype(np.int32)
            p = prev.astype(np.int32)
            for x in range(w * ch):
                a = r[x - ch] if x >= ch else 0
                if ft == 3:
                    r[x] = (r[x] + (a + p[x]) // 2) & 255
                else:
                    c = p[x - ch] if x >= ch else 0
                    pa, pb, pc = abs(p[x] - c), abs(a - c), abs(a + p[x] - 2 * c)
                    r[x] = (r[x] + (a if pa <= pb and pa <= pc else p[x] if pb <= pc else c)) & 255
            row = r.astype(np.uint8)
        elif ft != 0:
            die("%s: bad PNG filter type %d" % (path, ft))
        out[y] = prev = row
    return out.reshape(h, w, ch)[:, :, :3]


def folder_frames(folder, n, h, w):
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith((".png", ".npy")))
    if not names:
        die("--images %s: no .png or .npy files" % folder)
    out = []
    for f in names[:n]:
        p = os.path.join(folder, f)
        a = np.load(p) if f.lower().endswith(".npy") else read_png(p)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] < 3:
            die("%s: not an HxWx3 uint8 image" % p)
        out.append(fit(a, h, w))
    return out


# ------------------------------------------------------------------ checks
TYPES = {"UINT8": np.uint8, "FP16": np.float16, "FP32": np.float32}


class Spec:
    """What a response must be: the outputs' types and shapes."""

    def __init__(self, h, w, batched, depth_dtype):
        b = (1,) if batched else ()
        self.batched = batched
        self.shape = {"classes": b + (h, w), "depth": b + (1, h, w)}
        self.datatype = {"classes": "UINT8", "depth": "FP16" if depth_dtype == np.float16 else "FP32"}
        self.nbytes = {"classes": h * w, "depth": h * w * np.dtype(depth_dtype).itemsize}


def outputs(resp, spec, shm=None):
    """{name: raw bytes} of a ModelInferResponse's two outputs (in the
    message, or with shm in that memoryview, classes then depth), or None
    and a one-line reason they are wrong."""
    got = {}
    for k, o in enumerate(resp.outputs):
        if o.name in spec.shape:
            if o.datatype != spec.datatype[o.name] or tuple(o.shape) != spec.shape[o.name]:
                return None, "%s is %s %s, expected %s %s" % (o.name, o.datatype, tuple(o.shape), spec.datatype[o.name],
                                                              spec.shape[o.name])
            if shm is not None:
                off = 0 if o.name == "classes" else spec.nbytes["classes"]
                got[o.name] = bytes(shm[off:off + spec.nbytes[o.name]])
            elif k >= len(resp.raw_output_contents):
                return None, "no data for '%s'" % o.name
            else:
                got[o.name] = resp.raw_output_contents[k]
    for name in spec.shape:
        if name not in got:
            return None, "no '%s' in the response" % name
    return got, None


def as_array(raw, spec, name):
    return np.frombuffer(raw, TYPES[spec.datatype[name]]).reshape(spec.shape[name])


def disagreement(got, ref, spec, full, tol, agree, inexact=None):
    """None if the outputs got (raw bytes) match the reference's (full: every
    pixel; else a strided sample).  Equal bytes is the fast path: the same
    engine on the same frame gives the same numbers.  inexact: a list that
    gets (class agreement, depth diff) of each match within the tolerances
    that is not bit for bit (GPU instances may choose other kernels)."""
    if full and tol >= 0 and agree <= 1 and same_bytes(got["classes"], ref["classes"]) and same_bytes(got["depth"], ref["depth"]):
        return None
    c, d = as_array(got["classes"], spec, "classes").ravel(), as_array(got["depth"], spec, "depth").ravel()
    rc, rd = as_array(ref["classes"], spec, "classes").ravel(), as_array(ref["depth"], spec, "depth").ravel()
    if not full:  # every 61st pixel: cheap, and still catches a wrong frame
        c, d, rc, rd = c[::61], d[::61], rc[::61], rd[::61]
    same = float(np.count_nonzero(c == rc)) / c.size
    diff = float(np.abs(d.astype(np.float32) - rd.astype(np.float32)).max())
    if same < agree or not diff <= tol:
        return "classes agree on %.4f%% of pixels (need %.4f%%), depth max diff %.3g (tolerance %.3g)" % (
            100 * same, 100 * agree, diff, tol)
    if inexact is not None and (same < 1 or diff > 0):
        inexact.append((same, diff))
    return None


# ------------------------------------------------------------------ client
def shm_params(t, region, size, offset):
    t.parameters["shared_memory_region"].string_param = region
    t.parameters["shared_memory_byte_size"].int64_param = size
    t.parameters["shared_memory_offset"].int64_param = offset


def request_bytes(model, frame, batched, shm=None):
    """A frame's ModelInferRequest, serialized once.  The client's own cost
    must stay far below the server's: tritonclient's infer() copies a
    1024x1024 frame into a new request every time (~4 ms of a core), so the
    load threads send these bytes with the request's id appended (protobuf
    merges concatenated messages), through the same gRPC method.
    shm = (input region, offset, output region, spec): the frame is read
    from and the outputs written to registered system shared memory."""
    r = service_pb2.ModelInferRequest(model_name=model)
    t = r.inputs.add(name="image", datatype="UINT8")
    t.shape.extend(([1] if batched else []) + list(frame.shape))
    outs = [r.outputs.add(name=name) for name in ("classes", "depth")]
    if shm is None:
        r.raw_input_contents.append(frame.tobytes())
    else:
        in_region, offset, out_region, spec = shm
        shm_params(t, in_region, frame.nbytes, offset)
        shm_params(outs[0], out_region, spec.nbytes["classes"], 0)
        shm_params(outs[1], out_region, spec.nbytes["depth"], spec.nbytes["classes"])
    return r.SerializeToString()


class ShmRegions:
    """--shm: this process's frames in one system shared memory region and
    an output region per thread, registered with the server (Triton's
    system shared memory extension): the gRPC messages then carry no tensor
    data, which shows the server's rate without the transport's copies."""

    def __init__(self, a, frames, spec, threads):
        from multiprocessing import shared_memory
        self.client = grpcclient.InferenceServerClient(a["url"])
        self.regions, self.names = [], []
        tag = "mtmi_perf_%d_%s" % (os.getpid(), a["tag"])
        size = frames[0].nbytes
        self.input = self.add(shared_memory, tag + "_in", size * len(frames))
        for i, f in enumerate(frames):
            self.input.buf[i * size:(i + 1) * size] = f.tobytes()
        self.outs = [self.add(shared_memory, "%s_out%d" % (tag, k), spec.nbytes["classes"] + spec.nbytes["depth"])
                     for k in range(threads)]
        self.bodies = [[request_bytes(a["model"], f, spec.batched, (tag + "_in", i * size, "%s_out%d" % (tag, k), spec))
                        for i, f in enumerate(frames)] for k in range(threads)]

    def add(self, shared_memory, name, size):
        m = shared_memory.SharedMemory(name=name, create=True, size=size)
        self.regions.append(m)
        self.client.register_system_shared_memory(name, "/" + name, size)
        self.names.append(name)
        return m

    def close(self):
        for n in self.names:
            try:
                self.client.unregister_system_shared_memory(n)
            except InferenceServerException:
                pass
        for m in self.regions:
            m.close()
            m.unlink()
        self.client.close()


def _varint(b, i):
    """(value, next index) of the protobuf varint at b[i]."""
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


class RawResponse:
    """A ModelInferResponse read from its wire bytes without copying its
    tensors (service.proto: id = 3, outputs = 5, raw_output_contents = 6):
    id, outputs (the small InferOutputTensor messages, parsed) and
    raw_output_contents as read-only memoryviews into the message.  The
    protobuf parse that this replaces copied the 3 MB of outputs of a
    1024x1024 frame, ~2 ms of the client's CPU (and of each request's
    latency) against a stub server on the dev box."""

    __slots__ = ("id", "outputs", "raw_output_contents")

    def __init__(self, data):
        mv = memoryview(data)
        self.id, self.outputs, self.raw_output_contents = "", [], []
        i, n = 0, len(data)
        while i < n:
            key, i = _varint(data, i)
            field, wire = key >> 3, key & 7
            if wire == 2:
                size, i = _varint(data, i)
                if i + size > n:
                    raise ValueError("truncated response")
                if field == 3:
                    self.id = bytes(mv[i:i + size]).decode()
                elif field == 5:
                    self.outputs.append(service_pb2.ModelInferResponse.InferOutputTensor.FromString(bytes(mv[i:i + size])))
                elif field == 6:
                    self.raw_output_contents.append(mv[i:i + size])
                i += size
            elif wire == 0:
                _, i = _varint(data, i)
            elif wire in (1, 5):
                i += 8 if wire == 1 else 4
            else:
                raise ValueError("response with wire type %d" % wire)


def same_bytes(a, b):
    """a == b for bytes or memoryviews (memoryview == bytes compares element
    by element in Python: 5 ms for 3 MB; a copy and memcmp take 0.15)."""
    return (a.tobytes() if isinstance(a, memoryview) else a) == (b.tobytes() if isinstance(b, memoryview) else b)


class Channel:
    """One gRPC connection and its ModelInfer call (service.proto's); the
    response comes back as a RawResponse."""

    def __init__(self, url):
        # a connection of its own (gRPC shares one between channels of a
        # process by default): with servers sharing the port
        # (--reuse-grpc-port), each connection lands on one of them
        self.channel = grpc.insecure_channel(url, options=[("grpc.max_send_message_length", -1),
                                                           ("grpc.max_receive_message_length", -1),
                                                           ("grpc.use_local_subchannel_pool", 1)])
        self.call = self.channel.unary_unary("/inference.GRPCInferenceService/ModelInfer", response_deserializer=RawResponse)

    def infer(self, body, req_id, timeout):
        """The response, or raises RuntimeError with the server's message."""
        try:
            return self.call(body + service_pb2.ModelInferRequest(id=req_id).SerializeToString(), timeout=timeout)
        except grpc.RpcError as e:
            raise RuntimeError("%s: %s" % (e.code().name, e.details()))

    def close(self):
        self.channel.close()


def worker_thread(a, bodies, shm, refs, spec, tid, warmup, count, barrier, go, res, lock):
    """One client, one request in flight at a time: `warmup` requests, the
    barrier (every thread warmed up), go, then `count` measured requests (or
    until the duration is over).  Adds its numbers to res under lock."""
    lat, first_errors, inexact = [], [], []
    st = {"ok": 0, "warm_ok": 0, "errors": 0, "n": 0}
    ch = Channel(a["url"])

    def one(counted):
        n = st["n"]
        st["n"] += 1
        i = (tid * 7 + n) % len(bodies)  # threads start on different frames
        req_id = "%s-%d-%d" % (a["tag"], tid, n)
        full = a["check_every"] > 0 and n % a["check_every"] == 0
        t = time.perf_counter()
        try:
            r = ch.infer(bodies[i], req_id, a["timeout"])
            dt = time.perf_counter() - t
            got, why = outputs(r, spec, shm)
            if not why and r.id != req_id:
                why = "answered as '%s'" % r.id
            if not why:
                why = disagreement(got, refs[i], spec, full, a["depth_tol"], a["class_agree"], inexact)
        except Exception as e:  # the server's error, or anything else: counted as an error
            why = (str(e).strip().splitlines() or [type(e).__name__])[0]
        if not why:
            if counted:
                lat.append(dt)
            st["ok" if counted else "warm_ok"] += 1
            return
        st["errors"] += 1
        if len(first_errors) < 3:
            first_errors.append("request %s (frame %d): %s" % (req_id, i, why))

    t0 = t1 = None
    try:
        for _ in range(warmup):
            one(False)
        barrier.wait()
        go.wait()
        t0 = time.monotonic()
        k = 0
        while (k < count) if a["duration"] is None else (time.monotonic() - t0 < a["duration"]):
            one(True)
            k += 1
        t1 = time.monotonic()
    except threading.BrokenBarrierError:
        first_errors.append("thread %d: another client thread failed" % tid)
    except Exception as e:
        first_errors.append("thread %d: %s: %s" % (tid, type(e).__name__, e))
        barrier.abort()
    finally:
        ch.close()
    with lock:
        res["lat"].extend(lat)
        res["ok"] += st["ok"]
        res["warm_ok"] += st["warm_ok"]
        res["errors"] += st["errors"] + (t1 is None)
        res["sent"] += st["n"]
        res["first_errors"].extend(first_errors)
        res["inexact"].extend(inexact)
        if t1 is not None:
            res["t0"], res["t1"] = min(res["t0"], t0), max(res["t1"], t1)


def run_threads(a, frames, bodies, refs, spec, threads, first_tid, counts, warmups, go=None, ready=None):
    """This process's share of a level: one thread per concurrent request.
    In a child process, ready/go synchronize with the parent's other
    children after every thread has warmed up."""
    res = {"lat": [], "ok": 0, "warm_ok": 0, "errors": 0, "sent": 0, "first_errors": [], "inexact": [], "t0": float("inf"),
           "t1": 0.0}
    lock, local_go = threading.Lock(), threading.Event()
    barrier = threading.Barrier(threads + 1)
    shm = ShmRegions(a, frames, spec, threads) if a["shm"] else None
    ts = [threading.Thread(target=worker_thread,
                           args=(a, shm.bodies[k] if shm else bodies, shm.outs[k].buf if shm else None, refs, spec, first_tid + k,
                                 warmups[k], counts[k], barrier, local_go, res, lock)) for k in range(threads)]
    for t in ts:
        t.start()
    try:
        barrier.wait(timeout=a["timeout"] * (1 + max(warmups)))
    except threading.BrokenBarrierError:
        pass  # a thread failed: it is counted as an error, the rest go on
    if ready is not None:
        ready.put(os.getpid())
        go.wait()
    c0 = time.process_time()  # every thread of this process, gRPC's own too
    local_go.set()
    for t in ts:
        t.join()
    res["cpu_s"] = time.process_time() - c0
    if shm:
        shm.close()
    return res


def child_main(a, frames, bodies, refs, spec, threads, first_tid, counts, warmups, ready, go, out):
    try:
        out.put(run_threads(a, frames, bodies, refs, spec, threads, first_tid, counts, warmups, go, ready))
    except BaseException as e:  # the parent reports it; never hang it
        ready.put(-1)
        out.put({"crash": "%s: %s" % (type(e).__name__, e)})


def split(total, parts):
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def run_level(a, frames, bodies, refs, spec, conc):
    """All of one concurrency level; returns the merged results."""
    procs = max(1, min(a["procs"], conc))
    per_proc = split(conc, procs)
    counts = split(a["requests"], conc) if a["duration"] is None else [0] * conc
    # warmup: at least one request per thread, so every channel is connected
    warmups = [max(1, w) for w in split(a["warmup"], conc)]
    if a["shm"]:  # a full /dev/shm would kill a client with SIGBUS mid-run
        need = procs * len(frames) * frames[0].nbytes + conc * (spec.nbytes["classes"] + spec.nbytes["depth"])
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize < need * 1.1:
            die("--shm needs %.0f MB in /dev/shm, %.0f MB free" % (need / 1e6, st.f_bavail * st.f_frsize / 1e6))
    if procs == 1:
        return run_threads(a, frames, bodies, refs, spec, conc, 0, counts, warmups), 1
    ctx = mp.get_context("spawn")  # no fork: gRPC does not survive one
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    children, tid = [], 0
    for p in range(procs):
        n = per_proc[p]
        c = ctx.Process(target=child_main, args=(a, frames, bodies, refs, spec, n, tid, counts[tid:tid + n], warmups[tid:tid + n],
                                                 ready, go, out))
        c.start()
        children.append(c)
        tid += n
    for _ in children:
        ready.get(timeout=600)
    go.set()
    parts = [out.get(timeout=3600) for _ in children]
    for c in children:
        c.join()
    crash = [p["crash"] for p in parts if "crash" in p]
    if crash:
        die("a client process failed: " + crash[0])
    res = {"lat": [], "ok": 0, "warm_ok": 0, "errors": 0, "sent": 0, "first_errors": [], "inexact": [], "t0": float("inf"),
           "t1": 0.0, "cpu_s": 0.0}
    for p in parts:
        for k in ("lat", "first_errors", "inexact"):
            res[k].extend(p[k])
        for k in ("ok", "warm_ok", "errors", "sent", "cpu_s"):
            res[k] += p[k]
        res["t0"], res["t1"] = min(res["t0"], p["t0"]), max(res["t1"], p["t1"])
    return res, procs


def write_c_client_inputs(folder, bodies, refs):
    """The C client's inputs (src/triton/grpc_load.c): req_<i>.bin, frame
    i's serialized request without an id, and ref_<i>.bin, its reference
    outputs as (name, NUL, u64 little-endian length, bytes) records."""
    os.makedirs(folder, exist_ok=True)
    for i, (body, ref) in enumerate(zip(bodies, refs)):
        with open(os.path.join(folder, "req_%d.bin" % i), "wb") as f:
            f.write(body)
        with open(os.path.join(folder, "ref_%d.bin" % i), "wb") as f:
            for name in ("classes", "depth"):
                data = bytes(ref[name])
                f.write(name.encode() + b"\0" + struct.pack("<Q", len(data)) + data)


def run_c_client(a, folder, conc):
    """One level by the C client: its JSON, as run_level's results (every
    response compared in full, bit for bit); the CPU is the client process's."""
    out = os.path.join(folder, "level_c%d.json" % conc)
    cmd = [a["c_client"], "--url", a["url"], "--dir", folder, "--concurrency", str(conc), "--count", str(a["requests"]),
           "--warmup", str(a["warmup"]), "--timeout", str(a["timeout"]), "--threads", str(max(1, min(a["c_threads"], conc))),
           "--json", out]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in (0, 1) or not os.path.exists(out):
        die("the C client failed (exit %d): %s" % (r.returncode, (r.stderr.strip().splitlines() or ["no message"])[-1]))
    j = json.load(open(out))
    res = {k: j[k] for k in ("lat", "ok", "warm_ok", "errors", "sent", "first_errors", "t0", "t1", "cpu_s")}
    res["inexact"] = []
    return res, 1


# ------------------------------------------------------------- server side
def one_server_stats(st):
    """model_stats' tuple of one server's statistics (JSON; gRPC's gives
    64-bit counts as strings, HTTP's as numbers)."""
    i = st.get("inference_stats", {})
    bs = st.get("batch_stats", [])
    batches = {int(b["batch_size"]): int(b.get("compute_infer", {}).get("count", 0)) for b in bs}
    compute_ns = sum(int(b.get("compute_infer", {}).get("ns", 0)) for b in bs)
    return (int(i.get("success", {}).get("count", 0)), int(st.get("inference_count", 0)), int(st.get("execution_count", 0)),
            batches, int(i.get("queue", {}).get("ns", 0)), compute_ns)


def model_stats(client, model, stats_http=()):
    """(success count, inference count, execution count, {batch size:
    executions}, queue ns summed over requests, compute ns summed over
    executions) of the model so far.  Per-request compute times count a
    batch once per request in it, so the executions' own come from the
    batch statistics.  stats_http: the HTTP addresses of servers that share
    one gRPC port (--reuse-grpc-port): their statistics, summed (over the
    shared port each call would reach just one of them)."""
    if not stats_http:
        return one_server_stats(client.get_inference_statistics(model, as_json=True)["model_stats"][0])
    total = [0, 0, 0, {}, 0, 0]
    for url in stats_http:
        with urllib.request.urlopen("http://%s/v2/models/%s/stats" % (url, model), timeout=10) as r:
            one = one_server_stats(json.load(r)["model_stats"][0])
        for k in (0, 1, 2, 4, 5):
            total[k] += one[k]
        for b, n in one[3].items():
            total[3][b] = total[3].get(b, 0) + n
    return tuple(total)


def wait_ready(client, model, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if client.is_server_ready() and client.is_model_ready(model):
                return
        except InferenceServerException:
            pass
        time.sleep(0.5)
    die("model '%s' not ready after %d s" % (model, timeout))


def model_spec(client, a):
    """The frame size and output types from the model's config."""
    cfg = client.get_model_config(a.model, as_json=True)["config"]
    mbs = int(cfg.get("max_batch_size", 0))
    img = [i for i in cfg.get("input", []) if i["name"] == "image"]
    if not img:
        die("model '%s' has no 'image' input (mtmi triton-repo --inputs image|both)" % a.model)
    dims = [int(d) for d in img[0]["dims"]]
    outs = {o["name"]: o for o in cfg.get("output", [])}
    if "classes" not in outs or "depth" not in outs:
        die("model '%s' does not declare outputs classes and depth" % a.model)
    h, w = dims[0], dims[1]
    if a.size:
        sh, sw = a.size
        if (h > 0 and h != sh) or (w > 0 and w != sw):
            die("--size %dx%d: model '%s' takes %dx%d frames" % (sh, sw, a.model, h, w))
        h, w = sh, sw
    elif h <= 0 or w <= 0:
        h, w = 1024, 1024
    depth = np.float16 if outs["depth"]["data_type"] == "TYPE_FP16" else np.float32
    return h, w, mbs > 0, depth


# -------------------------------------------------------------------- main
def percentiles(lat):
    if not lat:
        return 0.0, 0.0, 0.0, 0.0
    ms = np.array(lat) * 1000.0
    return tuple(float(v) for v in np.percentile(ms, [50, 90, 99])) + (float(ms.mean()),)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True, help="the server's gRPC address, HOST:PORT")
    ap.add_argument("--model", default="mtmi")
    ap.add_argument("--size", help="HxW of the frames (default: the model's, else 1024x1024)")
    ap.add_argument("--concurrency", default="1,4,16", help="requests in flight per level (default 1,4,16)")
    ap.add_argument("--requests", type=int, default=200, help="measured requests per level (default 200)")
    ap.add_argument("--duration", type=float, help="seconds per level instead of --requests")
    ap.add_argument("--warmup", type=int, default=16, help="requests per level before measuring (default 16; >= 1 a thread)")
    ap.add_argument("--images", help="a folder of PNG or HxWx3 uint8 .npy frames (resized to --size); default generated")
    ap.add_argument("--distinct", type=int, default=8, help="distinct frames (default 8)")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--procs", type=int, default=1, help="client processes per level (default 1)")
    ap.add_argument("--check-every", type=int, default=1,
                    help="compare every Nth response in full with its reference, the rest on a sample (default 1: all)")
    ap.add_argument("--depth-tol", type=float, default=0.0, help="largest depth difference from the reference (default 0)")
    ap.add_argument("--class-agree", type=float, default=1.0, help="smallest fraction of equal class pixels (default 1)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds a request may take (default 120)")
    ap.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the model (default 300)")
    ap.add_argument("--shm", action="store_true",
                    help="frames and outputs in system shared memory (the server's rate without gRPC's copies of the "
                         "tensors; the references still come over gRPC)")
    ap.add_argument("--no-server-check", action="store_true",
                    help="do not require the server's request count to equal ours (other clients share the server)")
    ap.add_argument("--stats-http", default="",
                    help="HOST:PORT,... the HTTP addresses of several servers sharing --url's port (tritonserver "
                         "--reuse-grpc-port): their request counts are summed for the server check")
    ap.add_argument("--c-client", help="run the measured requests with this C load generator (mtmi_triton_grpc_load: "
                    "one process, gRPC's C core, every response compared in full, bit for bit) instead of Python clients")
    ap.add_argument("--c-threads", type=int, default=4, help="the C client's threads (default 4)")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--markdown", help="write the table (markdown) to this file")
    ap.add_argument("--save-refs", help="write the frames and their reference outputs as .npy to this folder")
    a = ap.parse_args()
    if a.size:
        try:
            a.size = tuple(int(v) for v in a.size.lower().split("x"))
            assert len(a.size) == 2 and min(a.size) > 0
        except (ValueError, AssertionError):
            die("--size expects HxW, got '%s'" % a.size)
    try:
        levels = [int(c) for c in a.concurrency.split(",")]
        assert levels and min(levels) > 0
    except (ValueError, AssertionError):
        die("--concurrency expects a list of counts like 1,4,16, got '%s'" % a.concurrency)
    if a.requests < 1 or a.distinct < 1 or a.procs < 1 or a.warmup < 0 or (a.duration is not None and a.duration <= 0):
        die("--requests, --distinct, --procs must be >= 1, --warmup >= 0, --duration > 0")

    if a.c_client and (a.shm or a.duration is not None or a.depth_tol != 0 or a.class_agree != 1 or a.c_threads < 1):
        die("--c-client compares every response bit for bit over gRPC: not with --shm, --duration or tolerances")
    if a.c_client and not os.access(a.c_client, os.X_OK):
        die("--c-client %s: not an executable" % a.c_client)
    stats_http = [u for u in a.stats_http.split(",") if u]
    if stats_http and a.shm:
        die("--shm with --stats-http: shared-memory regions are registered with one server, and requests reach any")
    client = grpcclient.InferenceServerClient(a.url)
    wait_ready(client, a.model, a.ready_timeout)
    h, w, batched, depth_dtype = model_spec(client, a)
    spec = Spec(h, w, batched, depth_dtype)
    frames = folder_frames(a.images, a.distinct, h, w) if a.images else generated_frames(a.distinct, h, w, a.seed)
    print("model %s on %s: %dx%d uint8 frames (%s), %d distinct, outputs classes uint8 + depth %s%s" % (
        a.model, a.url, h, w, a.images or "generated", len(frames), np.dtype(depth_dtype).name,
        ", batched" if batched else ""), "; tensors in system shared memory" if a.shm else "", flush=True)

    # The references: each frame alone, nothing else in flight.
    shared = {"url": a.url, "model": a.model, "batched": batched, "timeout": a.timeout, "check_every": a.check_every,
              "depth_tol": a.depth_tol, "class_agree": a.class_agree, "duration": a.duration, "requests": a.requests,
              "warmup": a.warmup, "procs": a.procs, "shm": a.shm, "tag": "ref", "c_client": a.c_client, "c_threads": a.c_threads}
    bodies = [request_bytes(a.model, f, batched) for f in frames]
    refs, ch = [], Channel(a.url)
    for i, body in enumerate(bodies):
        try:
            r = ch.infer(body, "ref-%d" % i, a.timeout)
        except RuntimeError as e:
            die("reference request for frame %d: %s" % (i, e))
        got, why = outputs(r, spec)
        if why:
            die("reference request for frame %d: %s" % (i, why))
        refs.append({k: bytes(v) for k, v in got.items()})  # bytes: they go to the client processes
    ch.close()
    classes_seen = len(np.unique(np.concatenate([as_array(r["classes"], spec, "classes").ravel() for r in refs])))
    depths = [as_array(r["depth"], spec, "depth") for r in refs]
    dmin, dmax = min(float(d.min()) for d in depths), max(float(d.max()) for d in depths)
    distinct = len({(r["classes"], r["depth"]) for r in refs})
    print("references: %d distinct answers for %d frames, %d classes seen, depth %.4g..%.4g" % (
        distinct, len(frames), classes_seen, dmin, dmax), flush=True)
    if len(frames) > 1 and distinct < 2:
        die("every frame got the same answer: a check against these references would prove nothing")
    if a.save_refs:
        os.makedirs(a.save_refs, exist_ok=True)
        for i, (f, r) in enumerate(zip(frames, refs)):
            np.save(os.path.join(a.save_refs, "frame%d.npy" % i), f)
            np.save(os.path.join(a.save_refs, "classes%d.npy" % i), as_array(r["classes"], spec, "classes").reshape(h, w))
            np.save(os.path.join(a.save_refs, "depth%d.npy" % i), as_array(r["depth"], spec, "depth").reshape(1, h, w))

    c_dir = None
    if a.c_client:
        c_dir = tempfile.mkdtemp(prefix="mtmi_triton_c_")
        write_c_client_inputs(c_dir, bodies, refs)
    header = "| concurrency | requests | frames/s | p50 ms | p90 ms | p99 ms | mean batch | errors |"
    rows, levels_out, failed = [header, "| --- | --- | --- | --- | --- | --- | --- | --- |"], [], False
    print(header, flush=True)
    for conc in levels:
        before = model_stats(client, a.model, stats_http)
        if c_dir:
            res, procs = run_c_client(shared, c_dir, conc)
        else:
            res, procs = run_level(dict(shared, tag="c%d" % conc), frames, bodies, refs, spec, conc)
        # The backend reports a request's statistics just after sending its
        # response, so the last ones may land a moment after we have them.
        t_wait = time.time()
        while True:
            after = model_stats(client, a.model, stats_http)
            if after[0] - before[0] >= res["sent"] or time.time() - t_wait > 5:
                break
            time.sleep(0.05)
        wall = max(res["t1"] - res["t0"], 1e-9)
        p50, p90, p99, mean = percentiles(res["lat"])
        succ, infer, execs = (after[k] - before[k] for k in range(3))
        batches = {b: n - before[3].get(b, 0) for b, n in after[3].items() if n > before[3].get(b, 0)}
        mean_batch = infer / execs if execs else 0.0
        lv = {"concurrency": conc, "requests": res["ok"], "sent": res["sent"], "warmup": res["warm_ok"], "errors": res["errors"],
              "seconds": wall, "fps": res["ok"] / wall, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "mean_ms": mean,
              "server_success": succ, "server_inferences": infer, "server_executions": execs, "mean_batch": mean_batch,
              "batch_executions": {str(b): n for b, n in sorted(batches.items())},
              "server_queue_ms": (after[4] - before[4]) / 1e6 / max(succ, 1),
              "server_compute_ms": (after[5] - before[5]) / 1e6 / max(execs, 1),
              "client_procs": procs, "client_cpu_cores": res["cpu_s"] / wall,
              "client_cpu_ms_per_request": 1000.0 * res["cpu_s"] / max(res["ok"] + res["errors"], 1),
              "inexact": len(res["inexact"]), "min_class_agreement": min([1.0] + [x[0] for x in res["inexact"]]),
              "max_depth_diff": max([0.0] + [x[1] for x in res["inexact"]]), "first_errors": res["first_errors"]}
        # Our own count against the server's: a client that loses or
        # invents responses would differ here.
        if res["ok"] + res["warm_ok"] + res["errors"] != res["sent"] or len(res["lat"]) != res["ok"]:
            lv["first_errors"].append("client bookkeeping: %d correct + %d warmup + %d errors != %d sent (%d latencies)" % (
                res["ok"], res["warm_ok"], res["errors"], res["sent"], len(res["lat"])))
            lv["errors"] += 1
        if not a.no_server_check and succ != res["sent"]:
            lv["first_errors"].append("the server counted %d successful requests, this client sent %d" % (succ, res["sent"]))
            lv["errors"] += 1
        if a.duration is None and res["sent"] - res["warm_ok"] < a.requests:
            lv["first_errors"].append("%d of %d measured requests sent" % (res["sent"] - res["warm_ok"], a.requests))
            lv["errors"] += 1
        levels_out.append(lv)
        row = "| %d | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %d |" % (conc, lv["requests"], lv["fps"], p50, p90, p99, mean_batch, lv["errors"])
        rows.append(row)
        print(row, flush=True)
        print("   server: %d requests in %d executions, batches %s, queue %.2f ms a request, compute %.2f ms a batch; client %d proc(s)%s" % (
            infer, execs, lv["batch_executions"], lv["server_queue_ms"], lv["server_compute_ms"], procs,
            ", %.2f cores busy, %.2f ms CPU a request" % (lv["client_cpu_cores"], lv["client_cpu_ms_per_request"])), flush=True)
        if lv["inexact"]:
            print("   %d responses within the tolerances but not bit for bit: classes agree >= %.5f, depth diff <= %.3g" % (
                lv["inexact"], lv["min_class_agreement"], lv["max_depth_diff"]), flush=True)
        for e in lv["first_errors"]:
            print("   ERROR " + e, flush=True)
        failed |= lv["errors"] > 0
    client.close()
    if c_dir:
        shutil.rmtree(c_dir, ignore_errors=True)
    doc = {"model": a.model, "url": a.url, "transport": "system shared memory" if a.shm else "grpc",
           "client": "C (mtmi_triton_grpc_load)" if a.c_client else "Python (grpcio)", "size": [h, w], "frames": a.images or "generated", "distinct": len(frames),
           "depth_type": np.dtype(depth_dtype).name, "warmup": a.warmup, "check_every": a.check_every,
           "reference_requests": len(bodies), "servers": max(1, len(stats_http)), "levels": levels_out, "ok": not failed}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(doc, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write("\n".join(rows) + "\n")
    if failed:
        print("triton_perf: FAILED: errors above", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
