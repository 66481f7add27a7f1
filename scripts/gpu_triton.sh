#!/usr/bin/env bash
# Triton serving against the engine (issue 19), in one GPU-machine command:
# build (gpu_env.sh's gpu_configure) and install mtmi and the backend,
# unpack Triton Inference Server and its Python client from the carried
# .deps-triton (scripts/triton_wheels.sh; the machine has no network), write
# a model repository with `mtmi triton-repo` for SPEC's placement (all
# stages cuda:0/fp16: KIND_GPU, one instance per GPU, class map + fp16
# depth), start tritonserver on loopback, run scripts/triton_perf.py at
# concurrency 1/4/16 with 1024x1024 frames (synthetic street scenes from
# `mtmi synth`), stop the server, run `mtmi bench` for the same placement
# and outputs, and print one table: server frames/s per concurrency,
# p50/p99, and the ratio to bench's frames/s (target >= 0.8x at 16).
#
#   bash scripts/gpu_triton.sh [--instances 1,2] [--servers 1,2] [--int8] [--requests N] [--levels 1,4,16] [--procs N] [--no-plan]
#                              [--c-threads N] [--no-c-client] [--gdb] [--load-cycles N]
#       GPU machine; carry .deps/debs and .deps-triton (~58 MiB with the tree)
#   bash scripts/gpu_triton.sh --cpu [...]
#       the same steps on this machine with placement cpu at 256x256 and
#       small counts, on the CPU build in build/ (MTMI_BUILD), to check the
#       script before a GPU call; .deps-triton is used when it is there (with
#       .venv-triton's python), else .venv-triton's server and client
#
# If the tree, .deps/debs and .deps-triton ever exceed one call's 64 MiB:
# call 1 carries .deps and runs --build-only, call 2 (back to back, on the
# still-warm machine, where build-gpu/ and .deps/root/ stay) carries
# .deps-triton and runs --no-build.
#
# --instances: a server per entry, with that many instances per GPU
# (instance_group count), each measured in turn.  --servers: for each entry
# N, N tritonserver processes on the same gRPC port (--reuse-grpc-port: the
# kernel spreads the client's connections over them), so that gRPC's
# per-process transport threads are N times as many; each server runs the
# instances of --instances (N > 1: gRPC only, no shared-memory pass, whose
# regions would be registered with one server).  --int8: also the heads in
# INT8 (encoder fp16) with a cache `mtmi calibrate` makes from the scenes.
# Each server is measured two or three times: frames over gRPC by the
# Python client (what a client sees), frames over gRPC by the C client
# (mode cgrpc: src/triton/grpc_load.c through triton_perf.py --c-client,
# one process of --c-threads threads, every response compared bit for bit;
# built against .deps-triton/grpc-c.tar.xz from scripts/grpc_c_deps.sh, or
# the system's libgrpc-dev with --cpu; the target's number when present)
# and in system shared memory (--shm: the server's rate without the
# transport's copies).  Load problems: --load-cycles N starts and stops
# each configuration's servers N times before measuring it (a crash or a
# server never ready is counted, its log kept), --gdb runs every server
# under cuda-gdb so that a crash writes each thread's stack into its log.
# The H100 results (2026-12-07): two servers of 3 instances and the C
# client meet the 0.8x target (docs/PERFORMANCE.md).  Output: $OUT (or ./results):
# triton_results.json (every level of every run, the benches),
# triton_table.md, the first server's log; the rest in gpu-triton-logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
OUT=${OUT:-$ROOT_DIR/results}
cpu=0 int8=0 build=1 measure=1 instances="" servers=1 requests="" levels="" procs="" size="" plan=1 cthreads=4 cclient=1 gdb=0 cycles=0
while [ $# -gt 0 ]; do
  case $1 in
    --cpu) cpu=1 ;;
    --int8) int8=1 ;;
    --build-only) measure=0 ;;
    --no-build) build=0 ;;
    --instances) instances=$2; shift ;;
    --servers) servers=$2; shift ;;
    --requests) requests=$2; shift ;;
    --levels) levels=$2; shift ;;
    --procs) procs=$2; shift ;;
    --no-plan) plan=0 ;;
    --c-threads) cthreads=$2; shift ;;
    --no-c-client) cclient=0 ;;
    --gdb) gdb=1 ;;
    --load-cycles) cycles=$2; shift ;;
    --size) size=$2; shift ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0"; exit 0 ;;
    *) echo "gpu_triton.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
# --gdb: each server under cuda-gdb (which also debugs host code): a
# crash prints every thread's stack into the server's log
DBG=()
if [ $gdb = 1 ]; then
  command -v cuda-gdb > /dev/null || { echo "gpu_triton.sh: --gdb needs cuda-gdb" >&2; exit 2; }
  DBG=(cuda-gdb -q -batch -ex "set pagination off" -ex "set print thread-events off" -ex "handle SIGPIPE nostop noprint"
       -ex run -ex "thread apply all bt 25" --args)
fi
T0=$(date +%s)
since() { echo "+$(( $(date +%s) - T0 )) s"; }
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mtmi-gpu-triton.XXXXXX")
LOGS=$ROOT_DIR/gpu-triton-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
SERVER_PIDS=""
cleanup() {
  local p
  for p in $SERVER_PIDS; do kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ $cpu = 1 ]; then
  # The dev machine: a CPU build, the CPU's own INT8 as the int8 placement.
  BUILD=$(cd "${MTMI_BUILD:-$ROOT_DIR/build}" && pwd)
  SPEC_PLACE=cpu INT8_PLACE="encoder=cpu/fp32,seg=cpu/int8,depth=cpu/int8"
  size=${size:-256x256} levels=${levels:-1,4} requests=${requests:-24} procs=${procs:-1} instances=${instances:-1}
  WARMUP=4 BENCH_FRAMES=10 BENCH_WARMUP=3 SCENES=4
  TOL=(--depth-tol 0 --class-agree 1)  # one CPU, one engine: equal bytes
  cmake --build "$BUILD" -j2 --target mtmi_cli triton_mtmi > "$LOGS/build.log" 2>&1 ||
    { tail -20 "$LOGS/build.log"; echo "gpu_triton.sh: build failed" >&2; exit 1; }
  if [ $cclient = 1 ] && [ -f /usr/include/grpc/grpc.h ]; then
    cmake --build "$BUILD" -j2 --target mtmi_triton_grpc_load > "$LOGS/build_c_client.log" 2>&1 ||
      { tail -5 "$LOGS/build_c_client.log"; echo "gpu_triton.sh: the C client did not build: Python client only"; }
  fi
else
  source "$ROOT_DIR/scripts/gpu_env.sh"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  BUILD=$ROOT_DIR/build-gpu
  SPEC_PLACE="encoder=cuda:0/fp16,seg=cuda:0/fp16,depth=cuda:0/fp16"
  INT8_PLACE="encoder=cuda:0/fp16,seg=cuda:0/int8,depth=cuda:0/int8"
  # procs: the Python client spends ~6 ms of a core per 1024x1024 request
  # over gRPC (measured against a stub server on the dev box), so 16 in
  # flight are spread over 8 processes of 2 threads.
  size=${size:-1024x1024} levels=${levels:-1,4,16} requests=${requests:-800} procs=${procs:-8} instances=${instances:-1,2}
  WARMUP=32 BENCH_FRAMES=400 BENCH_WARMUP=30 SCENES=8
  # Two instances may choose other kernels than the one that answered the
  # reference: a few fp16 ulps of depth, a few class pixels at ties (a wrong
  # frame disagrees on most pixels).  Reported when not bit for bit.
  TOL=(--depth-tol 0.004 --class-agree 0.999)
  # What an install needs (mtmi, both libraries, the backend), not the tests.
  # gRPC's C core for the C client (scripts/grpc_c_deps.sh), kept beside
  # .deps/root so that a --no-build call on the same machine finds it
  GRPC_C=$ROOT_DIR/.deps/grpc-c
  if [ $cclient = 1 ] && [ -f "$ROOT_DIR/.deps-triton/grpc-c.tar.xz" ] && [ ! -d "$GRPC_C" ]; then
    mkdir -p "$ROOT_DIR/.deps" && tar -C "$ROOT_DIR/.deps" -xJf "$ROOT_DIR/.deps-triton/grpc-c.tar.xz"
  fi
  if [ $build = 1 ]; then
    GRPC_ARGS=()
    [ -d "$GRPC_C" ] && GRPC_ARGS=(-DMTMI_GRPC_INCLUDE="$GRPC_C/include" -DMTMI_GRPC_LIB="$GRPC_C/lib/libgrpc.so"
                                   -DMTMI_GPR_LIB="$GRPC_C/lib/libgpr.so")
    { gpu_configure "$BUILD" && cmake -S "$ROOT_DIR" -B "$BUILD" "${GRPC_ARGS[@]}" &&
      cmake --build "$BUILD" -j 16 --target mtmi_cli mtmi_shared mtmi_static triton_mtmi; } \
      > "$LOGS/build.log" 2>&1 || { tail -30 "$LOGS/build.log"; echo "gpu_triton.sh: build failed" >&2; exit 1; }
    if [ -d "$GRPC_C" ]; then
      cmake --build "$BUILD" -j 16 --target mtmi_triton_grpc_load > "$LOGS/build_c_client.log" 2>&1 ||
        { tail -5 "$LOGS/build_c_client.log"; echo "gpu_triton.sh: the C client did not build: Python client only"; }
    fi
  elif [ ! -x "$BUILD/mtmi" ]; then
    echo "gpu_triton.sh: --no-build, but $BUILD has no mtmi (run --build-only first, on this machine)" >&2
    exit 1
  fi
fi
echo "build done ($(since))"
# The C client: where it was built and every library it needs is found
# (only its own invocation gets gRPC's libraries: the server keeps its own)
CCLIENT="" CCLIENT_LIBS=""
if [ $cclient = 1 ] && [ -x "$BUILD/mtmi_triton_grpc_load" ]; then
  [ $cpu = 0 ] && [ -d "${GRPC_C:-}" ] && CCLIENT_LIBS=$GRPC_C/lib
  if LD_LIBRARY_PATH=${CCLIENT_LIBS:+$CCLIENT_LIBS:}${LD_LIBRARY_PATH:-} ldd "$BUILD/mtmi_triton_grpc_load" | grep -q "not found"; then
    LD_LIBRARY_PATH=${CCLIENT_LIBS:+$CCLIENT_LIBS:}${LD_LIBRARY_PATH:-} ldd "$BUILD/mtmi_triton_grpc_load" | grep "not found"
    echo "gpu_triton.sh: the C client misses libraries (above): Python client only"
  else
    CCLIENT=$BUILD/mtmi_triton_grpc_load
    echo "C client: $CCLIENT, $cthreads thread(s)"
  fi
elif [ $cclient = 1 ]; then
  echo "C client: not built (no gRPC C core: scripts/grpc_c_deps.sh, or libgrpc-dev with --cpu): Python client only"
fi
[ $measure = 1 ] || exit 0
PREFIX=$WORK/prefix
cmake --install "$BUILD" --prefix "$PREFIX" > "$LOGS/install.log" 2>&1 ||
  { tail -20 "$LOGS/install.log"; echo "gpu_triton.sh: cmake --install failed" >&2; exit 1; }
M=$PREFIX/bin/mtmi
BACKENDS=$PREFIX/lib/triton/backends

# --- Triton: the pruned server and the client wheels (.deps-triton), offline
PY=python3
[ $cpu = 1 ] && PY=$ROOT_DIR/.venv-triton/bin/python  # numpy is there, not in the system's python
[ $cpu = 1 ] && bash "$ROOT_DIR/scripts/triton_deps.sh"
tag=$("$PY" -c 'import sys; print("cp%d%d" % sys.version_info[:2])')
if [ -f "$ROOT_DIR/.deps-triton/tritonserver.tar.xz" ]; then
  tar -C "$WORK" -xJf "$ROOT_DIR/.deps-triton/tritonserver.tar.xz"
  TS=$WORK/tritonserver/bin/tritonserver TS_LIBS="" from=".deps-triton (pruned)"
elif [ $cpu = 1 ]; then
  read -r TS TS_LIBS < <("$PY" -c 'import importlib.util as u, os
b = u.find_spec("pytriton").submodule_search_locations[0]
print(os.path.join(b, "tritonserver", "bin", "tritonserver"), os.path.join(os.path.dirname(b), "nvidia_pytriton.libs"))')
  from=".venv-triton"
else
  echo "gpu_triton.sh: no .deps-triton/tritonserver.tar.xz (make it with scripts/triton_wheels.sh and carry .deps-triton)" >&2
  exit 1
fi
if [ -d "$ROOT_DIR/.deps-triton/wheels/$tag" ]; then
  # --target, not a venv: the image's python3 is itself a venv (PyTorch's)
  # whose numpy and Pillow a new venv would not see; PYTHONPATH puts these
  # wheels ahead of its own grpcio and protobuf.
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir \
    --target "$WORK/site" "$ROOT_DIR/.deps-triton/wheels/$tag"/*.whl > "$LOGS/pip.log" 2>&1 ||
    { tail -5 "$LOGS/pip.log"; echo "gpu_triton.sh: installing the client wheels failed" >&2; exit 1; }
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
  echo "triton: server from $from, client from .deps-triton/wheels/$tag ($(since))"
elif [ $cpu = 1 ]; then
  echo "triton: server from $from, client from .venv-triton"
else
  echo "gpu_triton.sh: no .deps-triton/wheels/$tag for $PY (scripts/triton_wheels.sh --python X.Y)" >&2
  exit 1
fi
"$PY" -c "import numpy, tritonclient.grpc" 2> "$LOGS/import.log" ||
  { tail -3 "$LOGS/import.log"; echo "gpu_triton.sh: $PY cannot import numpy and tritonclient.grpc" >&2; exit 1; }

# --- frames: street scenes (the trained model's kind of input)
"$M" synth -o "$WORK/scenes" --count $SCENES --size "$size" > "$LOGS/synth.log" 2>&1 ||
  { cat "$LOGS/synth.log"; echo "gpu_triton.sh: mtmi synth failed" >&2; exit 1; }
CACHE=""
if [ $int8 = 1 ]; then
  CACHE=$WORK/heads.cache
  "$M" calibrate -o "$CACHE" --images "$WORK/scenes/images" --size "$size" > "$LOGS/calibrate.log" 2>&1 ||
    { tail -5 "$LOGS/calibrate.log"; echo "gpu_triton.sh: mtmi calibrate failed" >&2; exit 1; }
  echo "int8: calibration cache from $SCENES scenes ($(since))"
fi

# start_servers NAME REPO SERVERS LOG [quiet]: SERVERS tritonservers of
# REPO on one free gRPC port (GP; their HTTP ports in HPS, STATS), each
# ready or 1 (the log's tail printed unless quiet)
start_servers() {
  local name=$1 repo=$2 nserv=$3 log=$4 quiet=${5:-} ports k hp t=0 pid reuse=()
  ports=$("$PY" -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]) + 1)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])' "$nserv")
  read -r GP HTTP_PORTS <<< "$ports"
  HPS=($HTTP_PORTS) STATS=""
  [ "$nserv" -gt 1 ] && reuse=(--reuse-grpc-port=true)
  SERVER_PIDS=""
  for ((k = 0; k < nserv; k++)); do
    hp=${HPS[$k]}
    STATS="$STATS${STATS:+,}127.0.0.1:$hp"
    LD_LIBRARY_PATH=${TS_LIBS:+$TS_LIBS:}${LD_LIBRARY_PATH:-} "${DBG[@]}" "$TS" --model-repository="$repo" --backend-directory="$BACKENDS" \
      --http-address=127.0.0.1 --grpc-address=127.0.0.1 --http-port="$hp" --grpc-port="$GP" "${reuse[@]}" \
      --grpc-infer-allocation-pool-size=64 --allow-metrics=false --exit-timeout-secs=30 --strict-readiness=true \
      > "${log%.log}$([ $k -gt 0 ] && echo "_$k").log" 2>&1 &
    SERVER_PIDS="$SERVER_PIDS $!"
  done
  for hp in "${HPS[@]}"; do
    until "$PY" -c "import urllib.request as u, sys; sys.exit(u.urlopen('http://127.0.0.1:$hp/v2/health/ready', timeout=2).status != 200)" 2>/dev/null; do
      local dead=0
      for pid in $SERVER_PIDS; do kill -0 "$pid" 2>/dev/null || dead=1; done
      if [ $dead = 1 ] || [ $t -ge 600 ]; then
        if [ -z "$quiet" ]; then
          tail -25 "$log"
          [ $gdb = 1 ] && grep -E "^(#[0-9]|Thread .* received|Program received)" "$log" | head -60
          echo "gpu_triton.sh: the server did not become ready ($name)" >&2
        fi
        for pid in $SERVER_PIDS; do kill -9 "$pid" 2>/dev/null || true; done
        for pid in $SERVER_PIDS; do wait "$pid" 2>/dev/null || true; done
        SERVER_PIDS=""
        return 1
      fi
      sleep 0.5
      t=$((t + 1))
    done
  done
  READY_S=$((t / 2))
}
# stop_servers: SIGINT to each, 1 if one exited with a non-zero status
stop_servers() {
  local src=0 s pid
  for pid in $SERVER_PIDS; do kill -INT "$pid"; done
  for pid in $SERVER_PIDS; do
    s=0
    wait "$pid" || s=$?
    [ $s = 0 ] || { src=$s; echo "gpu_triton.sh: a server exited with status $s" >&2; }
  done
  SERVER_PIDS=""
  [ $src = 0 ]
}

rc=0
# serve NAME PLACEMENT INSTANCES SERVERS [triton-repo options]: a
# repository with one model, SERVERS servers for it on one gRPC port,
# triton_perf.py against them, the servers stopped.
serve() {
  local name=$1 place=$2 inst=$3 nserv=$4
  shift 4
  local repo=$WORK/repo_$name log=$LOGS/server_$name.log
  rm -rf "$repo"  # the same configuration twice (--instances 3,3)
  local ropts=(--place "$place" --size "$size" --inputs image --depth fp16 --max-batch 16 --queue-delay-us 500 --inflight 2
               --instances "$inst" "$@")
  "$M" triton-repo -o "$repo" "${ropts[@]}" > "$LOGS/repo_$name.log" 2>&1 ||
    { cat "$LOGS/repo_$name.log"; echo "gpu_triton.sh: triton-repo failed" >&2; return 1; }
  if [ $plan = 1 ]; then
    # One saved plan (mtmi build of the repository's model file) for every
    # instance: they start without searching and run the same kernels, so
    # their answers are the same bits (without it each instance times its
    # own algorithm choices, and responses differ in the last bits).
    local m1=$WORK/model_$name.onnx
    cp "$repo/mtmi/1/model.onnx" "$m1" && rm -rf "$repo" &&
      "$M" build --model "$m1" "${ropts[@]:0:4}" "$@" -o "$WORK/$name.plan" > "$LOGS/plan_$name.log" 2>&1 &&
      "$M" triton-repo -o "$repo" --model "$m1" --plan "$WORK/$name.plan" "${ropts[@]}" > "$LOGS/repo_$name.log" 2>&1 ||
      { cat "$LOGS/plan_$name.log" "$LOGS/repo_$name.log"; echo "gpu_triton.sh: the saved plan failed" >&2; return 1; }
    grep -E "saved plan" "$LOGS/plan_$name.log" || true
  fi
  echo "== $name: placement $place, $inst instance(s) per device, $nserv server(s) on one gRPC port, $size ($(since))"
  if [ "$cycles" -gt 0 ]; then
    # --load-cycles: start and stop the servers N times (a load that
    # crashes or never gets ready is counted and its log kept)
    local c bad=0
    for ((c = 1; c <= cycles; c++)); do
      if start_servers "$name" "$repo" "$nserv" "$LOGS/cycle_${name}_$c.log" quiet; then
        stop_servers || { bad=$((bad + 1)); echo "load cycle $c: a server did not exit cleanly"; }
      else
        bad=$((bad + 1))
        echo "load cycle $c: FAILED (log: gpu-triton-logs/cycle_${name}_$c.log)"
        grep -E "Segmentation|signal|error|^#[0-9]" "$LOGS/cycle_${name}_$c.log" | head -40
      fi
    done
    echo "load cycles ($name): $cycles, $bad failed ($(since))"
    [ $bad = 0 ] || return 1
  fi
  start_servers "$name" "$repo" "$nserv" "$log" || return 1
  local gp=$GP stats=$STATS
  echo "server(s) ready in $READY_S s$(cat "${log%.log}"*.log | grep -c 'from the saved plan' | sed 's/^/; instances from the saved plan: /')"
  # The frames over gRPC (what a client sees), then in shared memory (the
  # server's rate without the transport's copies of the tensors).
  local prc=0 mode modes="grpc shm" multi=() how=() ldp
  [ -n "$CCLIENT" ] && modes="grpc cgrpc shm"
  [ "$nserv" -gt 1 ] && modes=${modes% shm} multi=(--stats-http "$stats")
  for mode in $modes; do
    case $mode in
      grpc) how=(--procs "$procs" "${TOL[@]}") ;;
      cgrpc) how=(--c-client "$CCLIENT" --c-threads "$cthreads") ;;  # bit for bit: one saved plan
      shm) how=(--procs "$procs" "${TOL[@]}" --shm) ;;
    esac
    ldp=${LD_LIBRARY_PATH:-}
    [ $mode = cgrpc ] && [ -n "$CCLIENT_LIBS" ] && ldp=$CCLIENT_LIBS${ldp:+:$ldp}
    LD_LIBRARY_PATH=$ldp timeout 300 "$PY" "$ROOT_DIR/scripts/triton_perf.py" --url "127.0.0.1:$gp" --model mtmi --size "$size" \
      --concurrency "$levels" --requests "$requests" --warmup $WARMUP --images "$WORK/scenes/images" \
      --distinct $SCENES "${how[@]}" "${multi[@]}" --json "$LOGS/triton_${name}_$mode.json" \
      > "$LOGS/perf_${name}_$mode.log" 2>&1 || prc=1
    echo "-- $name over $mode"
    cat "$LOGS/perf_${name}_$mode.log"
  done
  local src=0
  stop_servers || src=1
  [ $prc = 0 ] && [ $src = 0 ]
}
# bench NAME PLACEMENT [options]: the engine's pipeline on the same model,
# placement and outputs, nothing else running.
bench() {
  local name=$1 place=$2
  shift 2
  echo "== bench $name: $place ($(since))"
  "$M" bench --place "$place" --size "$size" --results classes,depth:fp16 --inflight 2 --frames $BENCH_FRAMES \
    --warmup $BENCH_WARMUP --quiet --json "$LOGS/bench_$name.json" "$@" > "$LOGS/bench_$name.log" 2>&1 ||
    { tail -5 "$LOGS/bench_$name.log"; echo "gpu_triton.sh: mtmi bench failed ($name)" >&2; return 1; }
  grep -E "^summary|^results" "$LOGS/bench_$name.log" || true
}

# serve_all PREFIX PLACEMENT [triton-repo options]: every --servers x
# --instances configuration, named <prefix>_i<instances>[_s<servers>] (one
# server: no suffix)
names=""
serve_all() {
  local prefix=$1 place=$2 ns inst n
  shift 2
  for ns in ${servers//,/ }; do
    for inst in ${instances//,/ }; do
      n=${prefix}_i$inst
      [ "$ns" -eq 1 ] || n=${n}_s$ns
      serve "$n" "$place" "$inst" "$ns" "$@" || rc=1
      names="$names $n"
    done
  done
}
serve_all spec "$SPEC_PLACE"
bench spec "$SPEC_PLACE" || rc=1
if [ $int8 = 1 ]; then
  serve_all int8 "$INT8_PLACE" --cache "$CACHE"
  bench int8 "$INT8_PLACE" --cache "$CACHE" || rc=1
fi
# What comes back ($OUT: at most 8 files): one JSON of every result, the
# table, the first server's log.
cp "$LOGS"/server_spec_i1.log "$OUT/" 2>/dev/null || true
"$PY" - "$LOGS" "$OUT" "$names" <<'PY' | tee "$OUT/triton_table.md"
import json, os, sys
logs, out, names = sys.argv[1], sys.argv[2], sys.argv[3].split()
def load(n):
    try:
        with open(os.path.join(logs, n)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
every = {}
print("\n| config | transport | concurrency | frames/s | p50 ms | p99 ms | mean batch | client ms CPU/req | vs bench | target |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for n in names:
    b = load("bench_%s.json" % n.split("_")[0])
    bfps = b["fps"] if b else 0.0
    for mode in ("grpc", "cgrpc", "shm"):
        t = load("triton_%s_%s.json" % (n, mode))
        every["triton_%s_%s" % (n, mode)] = t
        if not t:
            if (mode == "shm" and "_s" in n) or (mode == "cgrpc" and not os.path.exists(os.path.join(logs, "perf_%s_cgrpc.log" % n))):
                continue  # several servers: gRPC only; no C client: not run
            print("| %s | %s | no result | | | | | | | |" % (n, mode))
            continue
        top = max(l["concurrency"] for l in t["levels"])
        for l in t["levels"]:
            ratio = l["fps"] / bfps if bfps else 0.0
            target = ("0.8x %s" % ("MET" if ratio >= 0.8 else "MISSED")) if l["concurrency"] == top and mode != "shm" else ""
            print("| %s | %s | %d | %.1f | %.2f | %.2f | %.2f | %.2f | %.3fx | %s |" % (
                n, mode, l["concurrency"], l["fps"], l["p50_ms"], l["p99_ms"], l["mean_batch"],
                l["client_cpu_ms_per_request"], ratio, target))
for k in ("spec", "int8"):
    b = load("bench_%s.json" % k)
    every["bench_" + k] = b
    if b:
        print("\nmtmi bench %s: %s, %.1f frames/s, latency p50 %.2f ms p99 %.2f ms" % (k, b["placement"], b["fps"],
              b["latency_ms"]["p50"], b["latency_ms"]["p99"]))
with open(os.path.join(out, "triton_results.json"), "w") as f:
    json.dump(every, f, indent=1)
PY
echo "total $(since), rc $rc"
exit $rc
