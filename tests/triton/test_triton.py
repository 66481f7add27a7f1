"""The mtmi backend in a real Triton Inference Server (ctest triton_server,
run by scripts/triton_test.sh in .venv-triton).

A 64x64 MTMI network with seeded random weights and a small two-head
network of any size (tests/triton/make_dynamic_model.py); `mtmi triton-repo`
writes three models of them into a repository: `mtmi` (the MTMI network:
uint8 frames or the float input, dynamic batching up to 8, int8 logits too),
`mtmi_any` (the any-size network: uint8 frames of every size, no batch
dimension, fp16 depth) and `mtmi_fixed_any` (the 64x64 network declared for
any size: other sizes reach mtmi, which refuses them).  tritonserver runs
on 127.0.0.1 with free ports and the installed backend; every answer is
compared per element with `mtmi infer` on the same input (same engine, same
CPU: classes and depth must be equal), over HTTP and gRPC, one request at a
time, a batch in one request, and 16 client threads at once (the dynamic
batcher must form batches of more than one).  Malformed requests get a
one-line error and the next good request is served.  The server is stopped
with SIGINT and must exit cleanly; it is killed whatever happens.
Seed: MTMI_TEST_SEED (printed)."""
import argparse
import concurrent.futures
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
SIZE = 64
DEPTH_TOL = 1e-6  # same engine, same placement: equal in practice (the max seen is printed)

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


# ------------------------------------------------------------- references
def normalize(img):
    """uint8 HxWx3 -> float32 1x3xHxW, the arithmetic of mtmi's preprocess
    ((x - mean) * (1 / std) in float32), so both paths see the same floats."""
    x = (img.astype(np.float32) - MEAN) * (np.float32(1) / STD)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


class Reference:
    """`mtmi infer` (CPU FP32, the whole model as one plan) per frame."""

    def __init__(self, mtmi, model, work):
        self.mtmi, self.model, self.work, self.cache = mtmi, model, work, {}
        self.lock = threading.Lock()

    def __call__(self, img):
        with self.lock:
            return self._ref(img)

    def _ref(self, img):
        key = (img.shape, img.tobytes())
        if key not in self.cache:
            d = os.path.join(self.work, "ref%d" % len(self.cache))
            os.makedirs(d)
            np.save(os.path.join(d, "x.npy"), normalize(img))
            subprocess.run([self.mtmi, "infer", self.model, "--input", os.path.join(d, "x.npy"), "-o", d], check=True,
                           stdout=subprocess.DEVNULL)
            seg = np.load(os.path.join(d, "seg.npy"))[0]
            depth = np.load(os.path.join(d, "depth.npy"))[0]
            self.cache[key] = (seg, depth)
        return self.cache[key]


def int8_ref(seg):
    """The int8 result form (include/mtmi.h): scale max|x|/127, round half even."""
    m = np.float32(np.abs(seg).max())
    scale = np.float32(m / np.float32(127)) if m > 0 else np.float32(1)
    return np.clip(np.rint(seg / scale), -127, 127).astype(np.int8), scale


max_depth_diff = [0.0]


def compare(what, img, got, ref):
    """got: {'classes', 'depth', ['logits', 'logits_scale']} of one frame."""
    seg, depth = ref(img)
    ok = check(got["classes"].dtype == np.uint8 and np.array_equal(got["classes"], seg.argmax(0)), what + ": classes equal")
    d = got["depth"].astype(np.float32)
    ok &= check(d.shape == depth.shape, what + ": depth shape %s" % (d.shape,))
    if d.shape == depth.shape:
        diff = float(np.abs(d - depth).max())
        # fp16 depth: the float rounded to nearest, within half an ulp (2^-12 below 1)
        tol = DEPTH_TOL if got["depth"].dtype == np.float32 else 2.0 ** -12
        max_depth_diff[0] = max(max_depth_diff[0], diff) if got["depth"].dtype == np.float32 else max_depth_diff[0]
        ok &= check(diff <= tol, what + ": depth within %g (max diff %.3g)" % (tol, diff))
    if "logits" in got:
        q, scale = int8_ref(seg)
        s = float(got["logits_scale"].reshape(-1)[0])
        ok &= check(abs(s - scale) <= 1e-6 * scale, what + ": logits scale %.6g (ref %.6g)" % (s, scale))
        ok &= check(np.abs(got["logits"].astype(np.int32) - q).max() <= 1, what + ": int8 logits within 1 code")
    return ok


# ----------------------------------------------------------------- server
def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def tritonserver_path():
    import importlib.util
    base = importlib.util.find_spec("pytriton").submodule_search_locations[0]
    return os.path.join(base, "tritonserver", "bin", "tritonserver"), os.path.join(os.path.dirname(base), "nvidia_pytriton.libs")


class Server:
    """tritonserver on loopback with free ports.  grpc_port and extra: a
    given gRPC port and more options (several servers on one port with
    --reuse-grpc-port=true); name: the log file's."""

    def __init__(self, repo, backends, work, grpc_port=None, extra=(), name="server"):
        self.http_port, self.grpc_port = free_ports(2)
        if grpc_port:
            self.grpc_port = grpc_port
        binary, libs = tritonserver_path()
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = libs + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        self.log_path = os.path.join(work, name + ".log")
        self.log = open(self.log_path, "w")
        cmd = [binary, "--model-repository=" + repo, "--backend-directory=" + backends,
               "--http-address=127.0.0.1", "--grpc-address=127.0.0.1",
               "--http-port=%d" % self.http_port, "--grpc-port=%d" % self.grpc_port,
               "--allow-metrics=false", "--exit-timeout-secs=20", "--strict-readiness=true"] + list(extra)
        print("server:", " ".join(cmd), flush=True)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.http = "127.0.0.1:%d" % self.http_port
        self.grpc = "127.0.0.1:%d" % self.grpc_port

    def wait_ready(self, timeout=120):
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen("http://%s/v2/health/ready" % self.http, timeout=2) as r:
                    if r.status == 200:
                        print("server ready in %.1f s" % (time.time() - t0), flush=True)
                        return True
            except OSError:
                pass
            time.sleep(0.25)
        return False

    def log_text(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGINT (Triton's clean shutdown); the exit status, or None if it
        had to be killed."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ----------------------------------------------------------------- clients
OUTS = ["classes", "depth", "logits", "logits_scale"]


def http_infer(url, model, name, arr, outs=OUTS):
    dt = "UINT8" if arr.dtype == np.uint8 else "FP32"
    inp = httpclient.InferInput(name, list(arr.shape), dt)
    inp.set_data_from_numpy(arr, binary_data=True)
    # A client per call, closed: open keep-alive connections would hold the
    # server's shutdown until its exit timeout.
    with httpclient.InferenceServerClient(url) as c:
        r = c.infer(model, [inp], outputs=[httpclient.InferRequestedOutput(o, binary_data=True) for o in outs])
    return {o: r.as_numpy(o) for o in outs}


def grpc_infer(url, model, name, arr, outs=OUTS):
    dt = "UINT8" if arr.dtype == np.uint8 else "FP32"
    inp = grpcclient.InferInput(name, list(arr.shape), dt)
    inp.set_data_from_numpy(arr)
    with grpcclient.InferenceServerClient(url) as c:
        r = c.infer(model, [inp], outputs=[grpcclient.InferRequestedOutput(o) for o in outs])
    return {o: r.as_numpy(o) for o in outs}


def item(res, i):
    return {k: v[i] for k, v in res.items()}


def frames(rng, n):
    """Noise, smooth gradients and blocks: class maps and depth that vary."""
    out = []
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    for k in range(n):
        if k % 3 == 0:
            img = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        elif k % 3 == 1:
            img = np.stack([(x * 4 + 30 * k) % 256, (y * 4) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)
        else:
            img = np.kron(rng.integers(0, 256, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)
        out.append(img)
    return out


def expect_error(what, fn, must=()):
    try:
        fn()
    except InferenceServerException as e:
        msg = str(e)
        one_line = "\n" not in msg.strip()
        has = all(m.lower() in msg.lower() for m in must)
        return check(one_line and has, "%s: error '%s'" % (what, msg.strip()[:200]))
    return check(False, what + ": no error")


# ------------------------------------------------------------------- tests
def test_single(srv, ref, imgs):
    for i, img in enumerate(imgs[:4]):
        compare("http frame %d" % i, img, item(http_infer(srv.http, "mtmi", "image", img[None]), 0), ref)
    compare("grpc frame 4", imgs[4], item(grpc_infer(srv.grpc, "mtmi", "image", imgs[4][None]), 0), ref)
    # The float input runs the same network on the same numbers.
    compare("http float input", imgs[1], item(http_infer(srv.http, "mtmi", "input", normalize(imgs[1])), 0), ref)
    # No outputs named: Triton asks the backend for every output.
    inp = httpclient.InferInput("image", [1, SIZE, SIZE, 3], "UINT8")
    inp.set_data_from_numpy(imgs[5][None])
    with httpclient.InferenceServerClient(srv.http) as c:
        r = c.infer("mtmi", [inp])
    got = {o: r.as_numpy(o) for o in OUTS}
    if check(all(v is not None for v in got.values()), "http, no outputs named: all four sent"):
        compare("http, no outputs named", imgs[5], item(got, 0), ref)
    batch = np.stack(imgs[:3])
    res = http_infer(srv.http, "mtmi", "image", batch)
    for i in range(3):
        compare("http one request of 3 frames, item %d" % i, imgs[i], item(res, i), ref)


def batch_sizes(srv, model):
    with urllib.request.urlopen("http://%s/v2/models/%s/stats" % (srv.http, model), timeout=10) as r:
        st = json.load(r)
    return {int(b["batch_size"]): int(b["compute_infer"]["count"]) for b in st["model_stats"][0].get("batch_stats", [])}


def test_concurrent(srv, ref, imgs, infer, url, label, threads=16, per_thread=3):
    before = batch_sizes(srv, "mtmi")

    def worker(t):
        ok = True
        for k in range(per_thread):
            i = (t * per_thread + k) % len(imgs)
            got = item(infer(url, "mtmi", "image", imgs[i][None]), 0)
            seg, depth = ref(imgs[i])
            ok &= np.array_equal(got["classes"], seg.argmax(0)) and float(np.abs(got["depth"] - depth).max()) <= DEPTH_TOL
        return ok

    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        results = list(ex.map(worker, range(threads)))
    check(all(results), "%s: %d threads x %d requests, every answer equal to mtmi infer" % (label, threads, per_thread))
    after = batch_sizes(srv, "mtmi")
    grown = {b: after.get(b, 0) - before.get(b, 0) for b in after if after.get(b, 0) > before.get(b, 0)}
    check(any(b > 1 for b in grown), "%s: the dynamic batcher formed batches > 1 (executions by batch size: %s)" % (label, grown))


def test_malformed(srv, ref, imgs):
    good = lambda what: compare(what + ", then a good request", imgs[0], item(http_infer(srv.http, "mtmi", "image", imgs[0][None]), 0), ref)
    f32 = imgs[0][None].astype(np.float32)
    expect_error("wrong dtype (FP32 'image')", lambda: http_infer(srv.http, "mtmi", "image", f32), ["image"])
    good("wrong dtype")
    expect_error("wrong shape (64x48 frame)", lambda: http_infer(srv.http, "mtmi", "image", imgs[0][None, :, :48]), ["shape"])
    good("wrong shape")
    expect_error("wrong channel count (4)", lambda: grpc_infer(srv.grpc, "mtmi", "image", np.zeros((1, SIZE, SIZE, 4), np.uint8)),
                 ["shape"])
    good("4 channels")
    # Both optional inputs given, then none: the backend's own messages.
    def both():
        a = httpclient.InferInput("image", [1, SIZE, SIZE, 3], "UINT8")
        a.set_data_from_numpy(imgs[0][None])
        b = httpclient.InferInput("input", [1, 3, SIZE, SIZE], "FP32")
        b.set_data_from_numpy(normalize(imgs[0]))
        with httpclient.InferenceServerClient(srv.http) as c:
            c.infer("mtmi", [a, b])

    def none():
        with httpclient.InferenceServerClient(srv.http) as c:
            c.infer("mtmi", [])
    expect_error("both inputs", both, ["2 inputs", "give one"])
    good("both inputs")
    expect_error("missing input", none, ["input"])
    good("missing input")
    # Fewer bytes than the shape says (raw JSON body).
    body = json.dumps({"inputs": [{"name": "image", "shape": [1, SIZE, SIZE, 3], "datatype": "UINT8", "data": [1, 2, 3]}]}).encode()
    req = urllib.request.Request("http://%s/v2/models/mtmi/infer" % srv.http, body, {"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=30)
        check(False, "short data: no error")
    except urllib.error.HTTPError as e:
        msg = json.load(e).get("error", "")
        # Triton parses the JSON itself and answers 500 for this one (2.51)
        check(e.code in (400, 500) and "data" in msg and "\n" not in msg, "short data: HTTP %d '%s'" % (e.code, msg[:200]))
    good("short data")
    # A fixed-size network declared for any size: mtmi's one-line message.
    expect_error("32x32 frame to the 64x64 network", lambda: http_infer(srv.http, "mtmi_fixed_any", "image", np.zeros((1, 32, 32, 3), np.uint8),
                                                                         ["classes", "depth"]), ["fixed in the model"])
    good("a size mtmi refuses")
    compare("mtmi_fixed_any at its own size", imgs[3], item(http_infer(srv.http, "mtmi_fixed_any", "image", imgs[3][None],
                                                                       ["classes", "depth"]), 0), ref)


def test_any_size(srv, ref_dyn, rng):
    """mtmi_any: no batch dimension, fp16 depth, frames of several sizes
    (a pipeline per size, built on first use; more sizes than the 4 kept)."""
    for k, (h, w) in enumerate([(64, 64), (32, 48), (30, 30), (96, 64), (64, 64), (17, 120)]):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        infer, proto = (http_infer, "http") if k % 2 == 0 else (grpc_infer, "grpc")
        got = infer(srv.http if k % 2 == 0 else srv.grpc, "mtmi_any", "image", img, ["classes", "depth"])
        check(got["depth"].dtype == np.float16 and got["classes"].shape == (h, w), "mtmi_any %dx%d: fp16 depth, classes %s" % (h, w, got["classes"].shape))
        compare("mtmi_any %dx%d over %s" % (h, w, proto), img, got, ref_dyn)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", required=True, help="the folder holding mtmi/libtriton_mtmi.so")
    ap.add_argument("--mtmi", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--onnx-python", required=True, help="a python with onnx (.venv's), for the any-size network")
    a = ap.parse_args()
    seed = int(os.environ.get("MTMI_TEST_SEED", "19"))
    print("seed", seed, flush=True)
    rng = np.random.default_rng(seed)
    model = os.path.join(a.work, "m.onnx")
    subprocess.run([a.mtmi, "make-model", "-o", model, "--size", "%dx%d" % (SIZE, SIZE), "--seed", str(seed)], check=True,
                   stdout=subprocess.DEVNULL)
    dyn = os.path.join(a.work, "dyn.onnx")
    subprocess.run([a.onnx_python, os.path.join(os.path.dirname(__file__), "make_dynamic_model.py"), dyn, str(seed)], check=True)
    repo = os.path.join(a.work, "repo")
    # saved plans (mtmi build): one that fits the 'mtmi' model's instance
    # (served from it), one made for float input that does not fit
    # 'mtmi_fixed_any''s uint8 frames (compiled at load, the log says why)
    plan, plan_float = os.path.join(a.work, "m.plan"), os.path.join(a.work, "m_float.plan")
    for p, more in ((plan, []), (plan_float, ["--host-preprocess"])):
        subprocess.run([a.mtmi, "build", "--model", model, "--place", "cpu", "-o", p] + more, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([a.mtmi, "triton-repo", "--model", model, "-o", repo, "--place", "cpu", "--max-batch", "8",
                    "--queue-delay-us", "20000", "--inflight", "3", "--logits", "--plan", plan], check=True)
    subprocess.run([a.mtmi, "triton-repo", "--model", dyn, "-o", repo, "--name", "mtmi_any", "--place", "cpu",
                    "--size", "any", "--inputs", "image", "--max-batch", "0", "--depth", "fp16"], check=True)
    subprocess.run([a.mtmi, "triton-repo", "--model", model, "-o", repo, "--name", "mtmi_fixed_any", "--size", "any",
                    "--inputs", "image", "--max-batch", "1", "--plan", plan_float], check=True)
    # triton-repo never writes over a model, and says so on one line.
    r = subprocess.run([a.mtmi, "triton-repo", "--model", model, "-o", repo], capture_output=True, text=True)
    check(r.returncode == 1 and "exists" in r.stderr and r.stderr.count("\n") == 1, "triton-repo over an existing model: %r" % r.stderr)
    r = subprocess.run([a.mtmi, "triton-repo", "-o", repo, "--depth=fp64"], capture_output=True, text=True)
    check(r.returncode == 2 and "--depth expects fp32 or fp16, got 'fp64'" in r.stderr, "triton-repo --depth=fp64: %r" % r.stderr)
    with open(os.path.join(repo, "mtmi", "config.pbtxt")) as f:
        cfg = f.read()
    check('backend: "mtmi"' in cfg and "dims: [ 64, 64, 3 ]" in cfg and "KIND_CPU" in cfg, "config.pbtxt: mtmi backend, 64x64 frames, KIND_CPU")
    ref = Reference(a.mtmi, model, a.work)
    os.makedirs(os.path.join(a.work, "dyn"))
    ref_dyn = Reference(a.mtmi, dyn, os.path.join(a.work, "dyn"))
    imgs = frames(rng, 6)
    for img in imgs:  # before the server: the references take the cores for a while
        ref(img)
    srv = Server(repo, a.backends, a.work)
    try:
        if not check(srv.wait_ready(), "server ready on %s / %s" % (srv.http, srv.grpc)):
            print(srv.log_text()[-4000:])
            return 1
        log = srv.log_text()
        check("mtmi backend: libmtmi" in log, "server log names the mtmi backend")
        check(re.search(r"mtmi instance 'mtmi_0[^']*': placement \S+, uint8 input 64x64 ready \(from the saved plan\)", log) is not None,
              "the 'mtmi' instance started from its saved plan")
        check(re.search(r"mtmi instance 'mtmi_fixed_any[^']*': plan_file not used, compiled at load: .*float input", log) is not None,
              "a plan that does not fit is noted and the instance compiled")
        test_single(srv, ref, imgs)
        test_concurrent(srv, ref, imgs, http_infer, srv.http, "http concurrent")
        test_concurrent(srv, ref, imgs, grpc_infer, srv.grpc, "grpc concurrent")
        test_malformed(srv, ref, imgs)
        test_any_size(srv, ref_dyn, rng)
        print("max depth difference (fp32) vs mtmi infer: %.3g" % max_depth_diff[0], flush=True)
        rc = srv.stop()
        log = srv.log_text()
        check(rc == 0, "server exits cleanly on SIGINT (status %s)" % rc)
        check("successfully unloaded 'mtmi'" in log, "models unloaded at shutdown")
    finally:
        srv.kill()
        if failures:
            with open(srv.log_path, errors="replace") as f:
                print("--- server log (end) ---\n" + f.read()[-6000:], flush=True)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
