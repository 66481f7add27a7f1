#!/usr/bin/env bash
# test_exports.sh LIBMTMI_SO LIBMTMI_A HEADER: the packaged library shows
# users the public API and nothing else (issue 17: ~300 internal mt_*
# symbols were visible).
#  1. libmtmi.so's defined dynamic symbols are exactly the functions
#     include/mtmi.h declares with MTMI_API: nothing else (an internal
#     symbol let out fails) and none missing (a declaration without
#     MTMI_API, hidden by -fvisibility=hidden, fails).
#  2. In libmtmi.a every defined global symbol of default visibility is
#     mtmi_*: the objects themselves are compiled with hidden visibility,
#     not only filtered by the linker version script.
#  3. The SONAME is libmtmi.so.<MTMI_VERSION_MAJOR>.
set -u
so=$1 ar=$2 hdr=$3
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

nm -D --defined-only "$so" | awk 'NF >= 3 {print $3}' | sort -u >"$tmp/exported"
# Every function declaration of the header (a line that starts with a
# return type, MTMI_API or not, and names an mtmi_* function).
decl='^(MTMI_API )?(const )?[a-z_0-9]+ \**mtmi_[a-z0-9_]+\('
grep -E "$decl" "$hdr" | grep -oE 'mtmi_[a-z0-9_]+\(' | tr -d '(' | sort -u >"$tmp/declared"
no_api=$(grep -E "$decl" "$hdr" | grep -v '^MTMI_API ' || true)
if [ -n "$no_api" ]; then
  echo "FAIL: declared without MTMI_API (hidden by -fvisibility=hidden): $no_api"
  fail=1
fi
n_exp=$(wc -l <"$tmp/exported")
n_dec=$(wc -l <"$tmp/declared")
echo "libmtmi.so exports $n_exp symbols; include/mtmi.h declares $n_dec functions"
if [ "$n_dec" -lt 20 ]; then
  echo "FAIL: only $n_dec function declarations found in $hdr (the parse is broken)"
  fail=1
fi
extra=$(comm -23 "$tmp/exported" "$tmp/declared")
missing=$(comm -13 "$tmp/exported" "$tmp/declared")
if [ -n "$extra" ]; then
  echo "FAIL: exported but not public API ($(echo "$extra" | wc -l)):" $extra | cut -c1-2000
  fail=1
fi
if [ -n "$missing" ]; then
  echo "FAIL: declared in the header but not exported:" $missing
  fail=1
fi

# readelf -s: Num Value Size Type Bind Vis Ndx Name
readelf -sW "$ar" | awk '($5 == "GLOBAL" || $5 == "WEAK") && $6 == "DEFAULT" && $7 != "UND" && NF >= 8 {print $8}' \
  | sort -u >"$tmp/visible"
n_vis=$(wc -l <"$tmp/visible")
leaked=$(grep -v '^mtmi_' "$tmp/visible")
echo "libmtmi.a: $n_vis defined symbols of default visibility"
if [ -n "$leaked" ]; then
  echo "FAIL: libmtmi.a objects not compiled with hidden visibility, default-visibility symbols ($(echo "$leaked" | wc -l)):" \
    $leaked | cut -c1-2000
  fail=1
fi
if [ "$n_vis" -ne "$n_dec" ]; then
  echo "FAIL: libmtmi.a has $n_vis default-visibility symbols, the header declares $n_dec"
  fail=1
fi

major=$(sed -n 's/^#define MTMI_VERSION_MAJOR \([0-9][0-9]*\)$/\1/p' "$hdr")
soname=$(readelf -dW "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
echo "SONAME $soname (MTMI_VERSION_MAJOR $major)"
if [ -z "$major" ] || [ "$soname" != "libmtmi.so.$major" ]; then
  echo "FAIL: SONAME '$soname', want libmtmi.so.$major"
  fail=1
fi
[ $fail = 0 ] && echo "exports: ok"
exit $fail
