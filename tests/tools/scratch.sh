#!/usr/bin/env bash
# scratch.sh CMD [ARGS...]: runs one test with TMPDIR set to a fresh folder
# of its own and removes that folder afterwards, whatever the test left in
# it.  Every CTest test runs through this (tests/CMakeLists.txt), so that a
# test that forgets its temporary files (models, scenes, references of a
# few hundred MB) cannot fill the disk of a small CI machine, and two tests
# running at once never share a scratch file.  Exits with the test's status.
set -u
base=${TMPDIR:-/tmp}
dir=$(mktemp -d "$base/mtmi_test.XXXXXX") || { echo "scratch.sh: cannot make a folder in $base" >&2; exit 1; }
cleanup() { rm -rf "$dir"; }
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
export TMPDIR=$dir
"$@"
