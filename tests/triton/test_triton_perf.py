"""The load client scripts/triton_perf.py against a real Triton server
(ctest triton_perf, run by scripts/triton_test.sh in .venv-triton).

A 64x64 MTMI network with seeded random weights served on the CPU
(`mtmi triton-repo`, dynamic batching up to 8 with a 20 ms queue delay so
that 4 clients form batches); triton_perf.py runs at concurrency 1 and 4
over gRPC, then 2 with the tensors in system shared memory.  Checked here,
not taken from the client's word:
  - the client exits 0, every response counted correct, none in error;
  - its counts: requests = those asked for, sent = requests + warmup, and
    the server's own success count grew by exactly what the client says it
    sent (references included), read before and after from /v2 stats;
  - latency percentiles positive and ordered (p50 <= p90 <= p99);
  - at concurrency 4 the server ran batches of more than one request
    (requests overlapped), by the client's report and by the server's;
  - the client's references (each frame sent alone) equal `mtmi infer` on
    the same frames (classes equal, depth within 1e-6), so "correct" means
    the engine's answer, not merely the same answer twice;
  - a client told to accept nothing (--depth-tol -1) exits 1 and counts
    every response as an error, none as throughput;
  - the C load generator (mtmi_triton_grpc_load, triton_perf.py
    --c-client) passes the same level checks, and run by itself on inputs
    made here (the requests triton_perf.py sends, the references checked
    against `mtmi infer` above) it counts a reference with one byte
    changed as exactly the requests of that frame in error, and a request
    the server refuses (wrong datatype) as an error with the server's
    message, after which the server still serves.
Seed: MTMI_TEST_SEED (printed)."""
import json
import os
import subprocess
import sys
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_triton import Server, normalize  # noqa: E402  (the same server start as triton_server)

HERE = os.path.dirname(os.path.abspath(__file__))
PERF = os.path.join(HERE, "..", "..", "scripts", "triton_perf.py")
SIZE = 64
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)
    return ok


def server_success(srv, model="mtmi"):
    """The server's count of successful requests, once it stops moving
    (the backend reports a request's statistics just after its response)."""
    last = None
    for _ in range(100):
        with urllib.request.urlopen("http://%s/v2/models/%s/stats" % (srv.http, model), timeout=10) as r:
            st = json.load(r)["model_stats"][0]
        n = int(st["inference_stats"]["success"]["count"])
        if n == last:
            return n
        last = n
        time.sleep(0.1)
    return last


def perf(srv, work, name, *args):
    """Runs triton_perf.py; (exit status, its JSON or None, its output)."""
    out = os.path.join(work, name + ".json")
    cmd = [sys.executable, PERF, "--url", srv.grpc, "--model", "mtmi", "--json", out] + list(args)
    print("client:", " ".join(cmd[1:]), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    print(r.stdout + r.stderr, end="", flush=True)
    doc = None
    if os.path.exists(out):
        with open(out) as f:
            doc = json.load(f)
    return r.returncode, doc


def check_levels(label, doc, requests, warmup_total, want_overlap):
    for lv in doc["levels"]:
        c = lv["concurrency"]
        what = "%s, concurrency %d" % (label, c)
        check(lv["requests"] == requests and lv["errors"] == 0,
              "%s: %d correct responses of %d asked, %d errors" % (what, lv["requests"], requests, lv["errors"]))
        # every thread warms up at least once
        warm = max(warmup_total, c)
        check(lv["sent"] == requests + warm and lv["warmup"] == warm,
              "%s: sent %d = %d measured + %d warmup" % (what, lv["sent"], requests, lv["warmup"]))
        check(lv["server_success"] == lv["sent"],
              "%s: the server's statistics counted %d, the client sent %d" % (what, lv["server_success"], lv["sent"]))
        p = (lv["p50_ms"], lv["p90_ms"], lv["p99_ms"])
        check(0 < p[0] <= p[1] <= p[2] and lv["fps"] > 0,
              "%s: p50 %.2f <= p90 %.2f <= p99 %.2f ms, all > 0; %.1f frames/s" % ((what,) + p + (lv["fps"],)))
        if want_overlap and c > 1:
            big = {b: n for b, n in lv["batch_executions"].items() if int(b) > 1}
            check(lv["mean_batch"] > 1 and big, "%s: requests overlapped: mean batch %.2f, executions by batch size %s" % (
                what, lv["mean_batch"], lv["batch_executions"]))


def check_refs(refs, mtmi, model, work, n):
    """The client's references against `mtmi infer` (CPU FP32, one plan)."""
    for i in range(n):
        frame = np.load(os.path.join(refs, "frame%d.npy" % i))
        d = os.path.join(work, "infer%d" % i)
        os.makedirs(d)
        np.save(os.path.join(d, "x.npy"), normalize(frame))
        subprocess.run([mtmi, "infer", model, "--input", os.path.join(d, "x.npy"), "-o", d], check=True, stdout=subprocess.DEVNULL)
        seg, depth = np.load(os.path.join(d, "seg.npy"))[0], np.load(os.path.join(d, "depth.npy"))[0]
        classes, got_depth = np.load(os.path.join(refs, "classes%d.npy" % i)), np.load(os.path.join(refs, "depth%d.npy" % i))
        diff = float(np.abs(got_depth.astype(np.float32) - depth).max())
        check(np.array_equal(classes, seg.argmax(0)) and diff <= 1e-6,
              "reference %d equals mtmi infer: classes equal (%d classes in it), depth max diff %.3g" % (
                  i, len(np.unique(classes)), diff))


def c_client_checks(srv, a, work, refs, seed):
    """The C load generator: through triton_perf.py, then alone on inputs
    made here from the references that check_refs verified."""
    exe = os.path.join(os.path.dirname(os.path.abspath(a.mtmi)), "mtmi_triton_grpc_load")
    if not os.path.exists(exe):
        # built wherever gRPC's C core is (CI installs libgrpc-dev): a missing
        # binary there is a failure, not a skip
        check(not os.path.exists("/usr/include/grpc/grpc.h"), "mtmi_triton_grpc_load built (gRPC's C core is installed)")
        return
    rc, doc = perf(srv, work, "cgrpc", "--concurrency", "1,4", "--requests", "32", "--warmup", "4", "--distinct", "6",
                   "--seed", seed, "--c-client", exe)
    if check(rc == 0 and doc and doc["ok"] and doc["client"].startswith("C"), "triton_perf --c-client: exit %d" % rc):
        check_levels("C client", doc, 32, 4, True)

    sys.path.insert(0, os.path.dirname(PERF))
    import triton_perf as tp  # noqa: E402  (tritonclient is in this venv)
    frames = [np.load(os.path.join(refs, "frame%d.npy" % i)) for i in range(3)]
    ref = [{"classes": np.load(os.path.join(refs, "classes%d.npy" % i)).tobytes(),
            "depth": np.load(os.path.join(refs, "depth%d.npy" % i)).tobytes()} for i in range(3)]
    bodies = [tp.request_bytes("mtmi", f, True) for f in frames]

    def run(name, bodies, ref, count=12):
        d = os.path.join(work, name)
        tp.write_c_client_inputs(d, bodies, ref)
        out = os.path.join(d, "out.json")
        r = subprocess.run([exe, "--url", srv.grpc, "--dir", d, "--concurrency", "3", "--threads", "1", "--count", str(count),
                            "--warmup", "3", "--json", out], capture_output=True, text=True, timeout=300)
        j = json.load(open(out)) if os.path.exists(out) else {}
        print("C client %s: exit %d, %s" % (name, r.returncode, {k: j.get(k) for k in ("sent", "ok", "warm_ok", "errors", "first_errors")}))
        return r.returncode, j

    rc, j = run("c_good", bodies, ref)
    check(rc == 0 and j.get("ok") == 12 and j.get("errors") == 0 and j.get("sent") == 15 and len(j.get("lat", [])) == 12,
          "C client alone: 12 correct of 12 (+3 warm-up), 12 latencies")
    # frame 0's depth with one byte changed: exactly frame 0's requests fail
    # (request n of the one thread uses frame n mod 3: 5 of the 15)
    bad = [dict(r) for r in ref]
    dep = bytearray(bad[0]["depth"])
    dep[len(dep) // 2] ^= 0x40
    bad[0]["depth"] = bytes(dep)
    rc, j = run("c_badref", bodies, bad)
    check(rc == 1 and j.get("errors") == 5 and j.get("ok") + j.get("warm_ok") == 10 and
          any("'depth' differs" in e and "(frame 0)" in e for e in j.get("first_errors", [])),
          "C client: a reference with one byte changed fails exactly frame 0's 5 requests")
    # a request the server refuses: its message comes back, one per request
    wrong = [b.replace(b"UINT8", b"INT16", 1) for b in bodies]
    rc, j = run("c_wrongtype", wrong, ref, count=3)
    check(rc == 1 and j.get("errors") == 6 and j.get("ok") == 0 and
          any("status" in e and "INT16" in e for e in j.get("first_errors", [])),
          "C client: requests of the wrong datatype are errors with the server's message")
    rc, j = run("c_after", bodies, ref, count=6)
    check(rc == 0 and j.get("ok") == 6, "the server still serves after the refused requests")


def two_servers(repo, backends, work):
    """Two servers on one gRPC port (--reuse-grpc-port, as gpu_triton.sh
    --servers 2): the client's connections land on either, and
    --stats-http sums both servers' statistics, so its server check (the
    servers counted what it sent) holds for the pair; each server's own
    count is read here too, and their sum must equal the client's."""
    first = Server(repo, backends, work, extra=["--reuse-grpc-port=true"], name="server_a")
    second = Server(repo, backends, work, grpc_port=first.grpc_port, extra=["--reuse-grpc-port=true"], name="server_b")
    pair = (first, second)
    try:
        if not check(all(s.wait_ready() for s in pair), "two servers ready on one gRPC port %d" % first.grpc_port):
            for s in pair:
                print(s.log_text()[-2000:])
            return
        before = [server_success(s) for s in pair]
        rc, doc = perf(first, work, "two", "--concurrency", "6", "--requests", "24", "--warmup", "6", "--distinct", "3",
                       "--stats-http", ",".join(s.http for s in pair))
        after = [server_success(s) for s in pair]
        got = [b - a for a, b in zip(before, after)]
        if check(rc == 0 and doc and doc["ok"] and doc.get("servers") == 2, "triton_perf against two servers: exit %d" % rc):
            lv = doc["levels"][0]
            sent = doc["reference_requests"] + lv["sent"]
            check(lv["requests"] == 24 and lv["errors"] == 0 and lv["server_success"] == lv["sent"],
                  "two servers: %d correct, %d errors, the servers' summed count %d = %d sent" % (
                      lv["requests"], lv["errors"], lv["server_success"], lv["sent"]))
            check(sum(got) == sent, "the two servers counted %s requests (sum %d), the client sent %d with its references" % (
                got, sum(got), sent))
        for s in pair:
            rc = s.stop()
            check(rc == 0, "%s exits cleanly (status %s)" % (os.path.basename(s.log_path), rc))
    finally:
        for s in pair:
            s.kill()


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", required=True)
    ap.add_argument("--mtmi", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--onnx-python", help="unused (triton_test.sh passes it to every server test)")
    a = ap.parse_args()
    seed = os.environ.get("MTMI_TEST_SEED", "19")
    print("seed", seed, flush=True)
    model = os.path.join(a.work, "m.onnx")
    subprocess.run([a.mtmi, "make-model", "-o", model, "--size", "%dx%d" % (SIZE, SIZE), "--seed", seed], check=True,
                   stdout=subprocess.DEVNULL)
    repo = os.path.join(a.work, "repo")
    subprocess.run([a.mtmi, "triton-repo", "--model", model, "-o", repo, "--place", "cpu", "--max-batch", "8",
                    "--queue-delay-us", "20000", "--inputs", "image"], check=True)
    srv = Server(repo, a.backends, a.work)
    try:
        if not check(srv.wait_ready(), "server ready on %s / %s" % (srv.http, srv.grpc)):
            print(srv.log_text()[-4000:])
            return 1
        refs = os.path.join(a.work, "refs")
        before = server_success(srv)
        rc, doc = perf(srv, a.work, "grpc", "--concurrency", "1,4", "--requests", "32", "--warmup", "4", "--distinct", "6",
                       "--seed", seed, "--save-refs", refs)
        after = server_success(srv)
        if check(rc == 0 and doc and doc["ok"], "triton_perf over gRPC: exit %d" % rc):
            check_levels("gRPC", doc, 32, 4, True)
            sent = doc["reference_requests"] + sum(lv["sent"] for lv in doc["levels"])
            check(after - before == sent, "the server counted %d requests in the whole run, the client reports %d (%d references)" % (
                after - before, sent, doc["reference_requests"]))
            check_refs(refs, a.mtmi, model, a.work, 6)

        rc, doc = perf(srv, a.work, "shm", "--concurrency", "2", "--requests", "12", "--warmup", "2", "--distinct", "3", "--shm")
        if check(rc == 0 and doc and doc["ok"] and doc["transport"] == "system shared memory",
                 "triton_perf with tensors in shared memory: exit %d" % rc):
            check_levels("shared memory", doc, 12, 2, False)

        # A tolerance no answer meets (depth within -1): every response is
        # an error, none is counted as throughput, the exit status says so.
        rc, doc = perf(srv, a.work, "reject", "--concurrency", "1", "--requests", "4", "--warmup", "1", "--distinct", "2",
                       "--depth-tol", "-1")
        lv = doc["levels"][0] if doc else {}
        check(rc == 1 and doc and not doc["ok"] and lv.get("requests") == 0 and lv.get("errors", 0) >= 5 and lv.get("fps") == 0,
              "a client that accepts no answer exits %d with %s correct, %s errors, %s frames/s" % (
                  rc, lv.get("requests"), lv.get("errors"), lv.get("fps")))
        c_client_checks(srv, a, a.work, refs, seed)
        rc = srv.stop()
        check(rc == 0, "server exits cleanly on SIGINT (status %s)" % rc)
    finally:
        srv.kill()
        if failures:
            with open(srv.log_path, errors="replace") as f:
                print("--- server log (end) ---\n" + f.read()[-4000:], flush=True)
    two_servers(repo, a.backends, a.work)
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
