#!/usr/bin/env bash
# The packaged library as a user gets it (issue 17), after scripts/build.sh:
#  1. `cmake --install build` into a temporary prefix: the tool, the header,
#     libmtmi.so.<major> and libmtmi.a, mtmi.pc, the CMake package.
#  2. examples/classify.c built against that prefix only, four ways:
#     pkg-config with plain cc (libmtmi.so; libmtmi.a with --static's
#     Libs.private) and CMake find_package (mtmi::mtmi, mtmi::mtmi_static);
#     each run on a generated street scene with a model the installed tool
#     makes; its class histogram must sum to the output's H x W.
#  3. `pip install ./python` into a fresh venv (the library bundled from
#     the prefix) and the package's pytest against ONNX Runtime.
# Usage: bash scripts/test_package.sh [--c-only | --python-only]  ($MTMI_BUILD_DIR:
# the CMake build to install, default build/; ctest's package_install runs
# --c-only, scripts/test.sh --python-only)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
build=${MTMI_BUILD_DIR:-build}
case $build in /*) ;; *) build=$src/$build ;; esac
mode=${1:-all}
work=$(mktemp -d /tmp/mtmi_package.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >"$work/install.log"
major=$(sed -n 's/^#define MTMI_VERSION_MAJOR \([0-9][0-9]*\)$/\1/p' include/mtmi.h)
pc=$(find "$prefix" -name mtmi.pc)
libdir=$(dirname "$(dirname "$pc")")
for f in "$prefix/bin/mtmi" "$prefix/include/mtmi.h" "$libdir/libmtmi.so" "$libdir/libmtmi.so.$major" "$libdir/libmtmi.a" \
         "$libdir/cmake/mtmi/mtmiConfig.cmake" "$libdir/cmake/mtmi/mtmiConfigVersion.cmake"; do
  [ -e "$f" ] || bad "not installed: ${f#$prefix/}"
done
echo "installed into $prefix: $(cd "$prefix" && find . -type f | sort | tr '\n' ' ')"

if [ "$mode" != --python-only ]; then
  # The model and the image from the installed tool (which needs no libmtmi.so).
  "$prefix/bin/mtmi" make-model -o "$work/model.onnx" --size 128x128 --seed 3 >/dev/null
  "$prefix/bin/mtmi" synth -o "$work/scenes" --count 1 --size 256x512 --seed 5 >/dev/null
  png=$(find "$work/scenes/images" -name '*.png' | head -1)

  ex=$work/examples
  mkdir -p "$ex"
  export PKG_CONFIG_PATH=$(dirname "$pc")
  echo "pkg-config --cflags --libs mtmi: $(pkg-config --cflags --libs mtmi)"
  echo "pkg-config --static --libs mtmi: $(pkg-config --static --libs mtmi)"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror -o "$ex/pc_shared" examples/classify.c $(pkg-config --cflags --libs mtmi) || bad "pkg-config build (shared)"
  # The archive by name (-l:libmtmi.a: the .so beside it would win -lmtmi),
  # with the libraries --static adds from Libs.private.
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror -o "$ex/pc_static" examples/classify.c $(pkg-config --cflags mtmi) \
     $(pkg-config --static --libs mtmi | sed 's/-lmtmi\b/-l:libmtmi.a/') || bad "pkg-config build (static)"
  cmake -S examples -B "$ex/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" >"$ex/cmake.log" 2>&1 \
    && cmake --build "$ex/cmake" >>"$ex/cmake.log" 2>&1 || { tail -20 "$ex/cmake.log"; bad "CMake find_package build"; }
  grep -o "mtmi [0-9.]* from .*" "$ex/cmake.log" || bad "find_package(mtmi) did not report the package"

  check_run() { # check_run NAME BINARY STATIC(0|1): runs it, checks the histogram
    local name=$1 bin=$2 static=$3 out
    [ -x "$bin" ] || { bad "$name: not built"; return; }
    if readelf -dW "$bin" | grep -q "NEEDED.*libmtmi\.so"; then
      [ "$static" = 0 ] || bad "$name: linked against libmtmi.so, not the archive"
    else
      [ "$static" = 1 ] || bad "$name: does not need libmtmi.so"
    fi
    if ! out=$(LD_LIBRARY_PATH=$libdir "$bin" "$work/model.onnx" "$png" 2>&1); then
      echo "$out"; bad "$name: exit status $?"; return
    fi
    # "output 'seg' 1x19x128x128: class histogram of 128x128 = 16384 pixels", "  class  k name  count", "total N"
    local hw sum total classes
    hw=$(echo "$out" | sed -n 's/.*class histogram of \([0-9]*\)x\([0-9]*\) = .*/\1 \2/p' | awk '{print $1 * $2}')
    sum=$(echo "$out" | awk '/^  class/ {s += $NF} END {print s + 0}')
    classes=$(echo "$out" | awk '/^  class/ && $NF > 0 {n++} END {print n + 0}')
    total=$(echo "$out" | sed -n 's/^total \([0-9]*\)$/\1/p')
    echo "$name: $(echo "$out" | head -1); H x W = ${hw:-?}, histogram sum $sum over $classes classes, total ${total:-?}"
    if [ -z "$hw" ] || [ "$hw" != 16384 ] || [ "$sum" != "$hw" ] || [ "$total" != "$hw" ]; then
      echo "$out"; bad "$name: histogram sum $sum, total $total, want H x W = 128 x 128"
    fi
    # An error is the library's one line: the missing file named.
    if out=$(LD_LIBRARY_PATH=$libdir "$bin" "$work/model.onnx" "$work/none.png" 2>&1 >/dev/null); then
      bad "$name: a missing image was accepted"
    elif ! echo "$out" | grep -q "^classify: image: $work/none.png: cannot open"; then
      bad "$name: missing image reported as: $out"
    fi
  }
  check_run "pkg-config, libmtmi.so" "$ex/pc_shared" 0
  check_run "pkg-config, libmtmi.a" "$ex/pc_static" 1
  check_run "CMake mtmi::mtmi" "$ex/cmake/classify" 0
  check_run "CMake mtmi::mtmi_static" "$ex/cmake/classify_static" 1
fi

if [ "$mode" != --c-only ]; then
  # A fresh venv: pip install ./python with the installed library bundled
  # into the package, then its tests (against ONNX Runtime) with the
  # installed package, from outside the source tree.
  venv=$work/venv
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check numpy onnx onnxruntime pytest
  MTMI_LIBRARY=$libdir/libmtmi.so "$venv/bin/pip" install -q --disable-pip-version-check ./python
  rm -rf python/build python/*.egg-info
  where=$(cd "$work" && env -u MTMI_LIBRARY "$venv/bin/python" -c \
    'import mtmi; print(mtmi.__file__, mtmi.library_path(), mtmi.version())') || bad "import mtmi in the fresh venv"
  echo "installed package: $where"
  case "$where" in
    "$venv"/lib/python3*/site-packages/mtmi/__init__.py\ "$venv"/lib/python3*/site-packages/mtmi/libmtmi.so.$major\ *) ;;
    *) bad "the package or its library is not the installed one: $where" ;;
  esac
  (cd "$work" && env -u MTMI_LIBRARY MTMI_ABI_LAYOUT="$build/tests/abi_layout" MTMI_BIN="$prefix/bin/mtmi" \
     MTMI_SOURCE_DIR="$src" "$venv/bin/python" -m pytest -q -p no:cacheprovider -m "not gpu" "$src/python/tests") \
     || bad "pytest of the installed package"
fi
[ $fail = 0 ] && echo "package: ok" || echo "package: FAILED"
exit $fail
