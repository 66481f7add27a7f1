#!/usr/bin/env bash
# Opcode histogram of one kernel's SASS (device machine: needs cuobjdump).
# Usage: scripts/sass_hist.sh BINARY NAME_SUBSTRING
set -u
cuobjdump -sass "$1" | awk -v pat="$2" '
  /Function : / { on = index($0, pat) > 0 }
  on && /^ +\/\*[0-9a-f]+\*\// { sub(/^ +\/\*[0-9a-f]+\*\/ +/, ""); sub(/^@!?U?P[0-9T] +/, ""); split($0, w, /[ ;]/); op = w[1]; n[op]++; tot++ }
  END { for (o in n) printf "%6d %s\n", n[o], o; printf "%6d total\n", tot }' | sort -rn | head -40
