#!/usr/bin/env bash
# Prepares .deps-triton/grpc-c.tar.xz, what the C load generator
# (src/triton/grpc_load.c, mtmi_triton_grpc_load) needs to build and run on
# the GPU machine, which has no network and none of Debian's -dev packages:
#   include/grpc/...   gRPC's C core headers (Debian's libgrpc-dev)
#   lib/               libgrpc.so.29, libgpr.so.29 and their ldd closure
#                      (abseil, re2, c-ares, upb, address_sorting), with the
#                      libgrpc.so / libgpr.so names to link against
# The C and C++ runtimes, zlib and OpenSSL are left out (the GPU image has
# them; gpu_triton.sh checks with ldd and skips the C client, saying so,
# if one is missing).  About 3 MB: carried in .deps-triton beside the
# server.  Run on the Debian 12 dev machine (installs libgrpc-dev if needed).
#   bash scripts/grpc_c_deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f /usr/include/grpc/grpc.h ]; then
  apt-get install -y -q libgrpc-dev > /dev/null
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/mtmi-grpc-c.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
stage=$tmp/grpc-c
mkdir -p "$stage/include" "$stage/lib"
cp -r /usr/include/grpc "$stage/include/"
libdir=/usr/lib/x86_64-linux-gnu
skip='^(libc|libm|libstdc\+\+|libgcc_s|ld-linux-x86-64|linux-vdso|libz|libssl|libcrypto|libpthread|libdl|librt)\.so'
for f in $(ldd "$libdir/libgrpc.so.29" | awk '$3 ~ /^\// {print $3}') "$libdir/libgrpc.so.29" "$libdir/libgpr.so.29"; do
  b=$(basename "$f")
  [[ $b =~ $skip ]] && continue
  cp -L "$f" "$stage/lib/$b"
done
ln -s libgrpc.so.29 "$stage/lib/libgrpc.so"
ln -s libgpr.so.29 "$stage/lib/libgpr.so"
strip --strip-unneeded "$stage"/lib/*.so.* 2>/dev/null || true
mkdir -p .deps-triton
tar -C "$tmp" -cf - grpc-c | xz -9 -T2 > .deps-triton/grpc-c.tar.xz.part
mv .deps-triton/grpc-c.tar.xz.part .deps-triton/grpc-c.tar.xz
echo "ready: .deps-triton/grpc-c.tar.xz ($(du -h .deps-triton/grpc-c.tar.xz | cut -f1), $(ls "$stage/lib" | wc -l) libraries)"
