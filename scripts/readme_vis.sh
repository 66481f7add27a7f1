#!/usr/bin/env bash
# Makes the README's two pictures: docs/img/synth_ground_truth.png, scene 0
# of seed 0's ground truth (`mtmi synth --vis`), and
# docs/img/trained_vis.png, the picture of the trained
# built-in model at work: held-out scene 1 of seed 1000 (never trained on),
# `mtmi run` on the CPU at the training size (1024x1024: depth is read from
# apparent size, docs/GROUND_TRUTH.md), its vis halved to 1536x536 with
# Pillow (in the test venv) to keep the repository small.
# Usage: scripts/readme_vis.sh [build dir]   (needs models/mtmi_trained.onnx,
# and Pillow in .venv: .venv/bin/pip install pillow)
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-build}/mtmi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$M" synth -o "$T/s" --count 2 --size 1024x1024 --seed 1000 > /dev/null
mkdir "$T/one" && cp "$T/s/images/s1000_000001.png" "$T/one/"
"$M" run --images "$T/one" --save vis -o "$T/out" --quiet > /dev/null
"$M" synth -o "$T/gt" --count 1 --size 1024x1024 --seed 0 --vis > /dev/null
.venv/bin/python - "$T/out/s1000_000001_vis.png" docs/img/trained_vis.png "$T/gt/vis/s0_000000.png" docs/img/synth_ground_truth.png <<'PY'
import sys
from PIL import Image
for src, dst in zip(sys.argv[1::2], sys.argv[2::2]):
    im = Image.open(src)
    im.resize((im.width // 2, im.height // 2), Image.LANCZOS).save(dst, optimize=True)
PY
echo "wrote docs/img/trained_vis.png and docs/img/synth_ground_truth.png"
