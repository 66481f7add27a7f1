#!/usr/bin/env bash
# Mutation check of the test suite: deliberate one-line bugs, applied one at a
# time to a scratch copy of the tree under /tmp, each rebuilt (CPU build,
# -DMTMI_NO_CUDA=ON) and run against the tests that should catch it.  A
# mutant is "killed" when those tests fail, "SURVIVED" when they pass (a hole
# in the suite); every mutant must be killed.  The working tree is never
# modified.
#
#   bash scripts/mutants.sh                 every mutant, its tests only
#   bash scripts/mutants.sh --full          every mutant against the whole CPU suite (-LE gpu; slow)
#   bash scripts/mutants.sh --quick         the fast subset (kept in scripts/test.sh)
#   bash scripts/mutants.sh --only M03,M11  some mutants
#   bash scripts/mutants.sh --list          the table
#
# Needs a configured .venv (scripts/deps.sh) and ../shared beside the
# repository, as the suite does.  Prints one line per mutant and ends with
# "N mutants: N killed, N survived"; exit 1 if any survived or could not be
# applied.  JOBS (default 2) sets the build parallelism.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${JOBS:-2}

# id <TAB> file <TAB> tests (ctest -R regex) <TAB> bug <TAB> sed expression
# (applied with sed -E to the first line it matches; it must change exactly
# one line).
MUTANTS=$(cat <<'EOF'
M01	src/image/image.c	^image_fit$	mt_image_fit: the x interpolation weight used along y (wrong interpolation weight)	0,/\+ wx \* \(r0\[ix1/s//+ wy * (r0[ix1/
M02	src/image/image.c	^image_fit$	mt_image_fit: centre crop off by one pixel	s/const int x0 = \(src->w - cw\) \/ 2,/const int x0 = (src->w - cw) \/ 2 + 1,/
M03	src/image/image.c	^image_fit$	preprocessing: channel k normalized by another channel's std	s/inv = 1\.0f \/ mt_image_std\[k\];/inv = 1.0f \/ mt_image_std[2 - k];/
M04	src/image/image.c	^test_image$	argmax: the last maximum wins a tie (wrong tie-break)	s/if \(v > bv \|\| \(bv != bv/if (v >= bv || (bv != bv/
M05	src/cpu/nn_resize.c	^(nn_ops|fusion_patterns)$	Resize: linear weight of the first tap taken from the wrong side	s/^( +)w\[0\] = d2;/\1w[0] = d1;/
M06	src/cpu/nn_resize.c	^(nn_ops|ref_models_256)$	Resize: half-pixel coordinate off by 0.05	s/case CT_HALF_PIXEL: return \(o \+ 0\.5f\) \/ scale - 0\.5f;/case CT_HALF_PIXEL: return (o + 0.5f) \/ scale - 0.45f;/
M07	src/cpu/nn_conv.c	^(nn_ops|ref_models_256)$	Conv (im2col): left padding off by one	s/int64_t ix0 = ox \* d->sw - d->pl \+ kx \* d->dw;/int64_t ix0 = ox * d->sw - d->pl + 1 + kx * d->dw;/
M08	src/cpu/nn_conv.c	^(nn_ops|ref_models_256)$	depthwise 3x3 (AVX2 path): weights read transposed (transposed weight layout)	s/wv\[k\] = _mm256_set1_ps\(w\[k\]\);/wv[k] = _mm256_set1_ps(w[k % 3 * 3 + k \/ 3]);/
M09	src/cpu/kernels_nn.c	^(nn_ops|ref_models_256)$	LayerNormalization: variance divided by n - 1	s/sqrt\(sq \/ \(double\)cols \+ \(double\)eps\)/sqrt(sq \/ (double)(cols - 1) + (double)eps)/
M10	src/cpu/kernels_fused.c	^(fusion_patterns|ref_models_256)$	fused Attention: scale halved	s/float scale = mt_attr_float\(n, "scale", 1\.0f \/ sqrtf\(\(float\)a\.d\)\);/float scale = 0.5f * mt_attr_float(n, "scale", 1.0f \/ sqrtf((float)a.d));/
M11	src/cpu/kernels_fused.c	^(fusion_patterns|ref_models_256)$	fused GELU (AVX2 path): 0.55 x instead of 0.5 x	s/const __m256 half = _mm256_set1_ps\(0\.5f\)/const __m256 half = _mm256_set1_ps(0.55f)/
M12	src/graph/fuse.c	^(fusion_patterns|ref_models_256)$	MatMul+Add -> Linear fusion drops its bias	0,/int ins\[3\] = \{x, w, b\};/s//int ins[3] = {x, w, -1};/
M13	src/graph/fuse.c	^(fusion_patterns|nn_ops)$	Conv+BatchNorm fold forgets the running mean	s/NB\[o\] = \(float\)\(\(\(B \? B\[o\] : 0\.0\) - mu\[o\]\) \* s \+ sh\[o\]\);/NB[o] = (float)((B ? B[o] : 0.0) * s + sh[o]);/
M14	src/graph/fuse.c	^(fusion_patterns|ref_models_256)$	Conv/Linear + activation fusion drops the activation	s/mt_node_set_string\(pn, "activation", act\);/mt_node_set_string(pn, "activation", "");/
M15	src/cpu/kernels_quant.c	^(quant_int8_conv|test_pipeline)$	INT8 requantization truncates instead of rounding half to even	0,/return \(int32_t\)__builtin_rintf\(v\);/s//return (int32_t)v;/
M16	src/cpu/kernels_quant.c	^(quant_int8_conv|test_api|test_pipeline)$	INT8 epilogue halves every value	s/y\[t\] = \(float\)acc\[t\] \* mult;/y[t] = (float)acc[t] * mult * 0.5f;/
M17	src/cpu/kernels_quant.c	^(quant_int8_conv|test_api|test_pipeline)$	INT8 epilogue returns zeros	s/y\[t\] = \(float\)acc\[t\] \* mult;/y[t] = 0.0f * (float)acc[t];/
M18	src/quant/rewrite.c	^quant_int8_conv$	INT8 bias rounded down instead of to nearest	s/double r = nearbyint\(bb/double r = floor(bb/
M19	src/quant/rewrite.c	^quant_int8_conv$	INT8 Linear weights read transposed (transposed weight layout)	s/mt_quantize\(linear \? wf\[k \* M \+ c\]/mt_quantize(linear ? wf[c * K + k]/
M20	src/quant/calib.c	^quant_entropy$	entropy calibration: outliers folded into the wrong bin (off by one)	s/\(j == i - 1 \? suffix\[i\] : 0\)/(j == i - 2 ? suffix[i] : 0)/
M21	src/quant/cache.c	^(test_quant|quant_cli)$	calibration cache: hex digits a-f decoded one too high	s/d = c - 'a' \+ 10;/d = c - 'a' + 11;/
M22	src/pipeline/pipeline.c	^(test_pipeline|test_api)$	pipeline: a frame reported done before all its stages ran (a missed head output)	s/sl->callbacks_left = p->nstages;/sl->callbacks_left = p->nstages - 1;/
M23	src/pipeline/pipeline.c	^(test_pipeline|test_api)$	pipeline: frame 3 is handed back without running (a missed frame)	s/^( +)q_push\(&p->st\[0\]\.q, f->slot\);/\1if (sl->f.index == 3) q_push(\&p->done_q, f->slot); else q_push(\&p->st[0].q, f->slot);/
M24	src/graph/weight_init.c	^(test_api|test_pipeline|ref_models_256)$	spread weights: classifier rows not made zero-mean and no gain (one class dominates again)	s/float s = role == R_CONV \? sqrtf\(2\.0f \/ \(float\)per\) : \(rows == 1 \? 4\.0f : 2\.0f\) \/ sqrtf\(\(float\)per\);/float s = role == R_CONV ? sqrtf(2.0f \/ (float)per) : 0.05f \/ sqrtf((float)per);/
M25	src/cpu/kernels_fused.c	^(test_output_forms|pipeline_run)$	mtmi.ClassMap: the last of equal maxima wins (wrong tie-break of the class map)	s/if \(v > bv \|\| \(bv != bv/if (v >= bv || (bv != bv/
M26	src/graph/graph.h	^(test_output_forms|pipeline_run)$	mtmi.SymQuant: int8 codes truncated instead of rounded half to even	s/__builtin_rint\(v\)/__builtin_trunc(v)/
M27	src/synth/render.c	^test_synth$	generator: depth 0.1 % too long (not the hit's camera-axis distance)	s/depth\[row \+ u\] = id == HIT_SKY \? 0\.0f : \(float\)t;/depth[row + u] = id == HIT_SKY ? 0.0f : (float)(t * 1.001);/
M28	src/synth/render.c	^test_synth$	generator: the curb's face labelled terrain instead of sidewalk	s/case HIT_CURB: return MT_CLS_SIDEWALK;/case HIT_CURB: return MT_CLS_TERRAIN;/
M29	src/eval/metrics.c	^(test_eval|eval_cli)$	eval: IoU without the false positives (TP over ground truth)	s/r->iou\[c\] = \(double\)r->tp\[c\] \/ \(double\)\(r->gt\[c\] \+ r->pred\[c\] - r->tp\[c\]\);/r->iou[c] = (double)r->tp[c] \/ (double)r->gt[c];/
M30	src/eval/metrics.c	^(test_eval|eval_cli)$	eval: mIoU over all 19 classes instead of those present	s/r->miou = r->npresent \? sum \/ r->npresent : NAN;/r->miou = r->npresent ? sum \/ r->ncls : NAN;/
M31	src/eval/metrics.c	^(test_eval|eval_cli)$	eval: the model pixel of a ground-truth pixel off by half a pixel	s/\(\(int64_t\)2 \* c \+ 1\) \* model/((int64_t)2 * c + 2) * model/
M32	src/model/builtin.c	^trained_format$	trained weights: the small tensors (depth.cls.bias) not copied	s/if \(j >= 0 && b->values\[j\]\.data/if (0 \&\& j >= 0 \&\& b->values[j].data/
M33	src/quant/qdq_export.c	^quant_qdq_export$	Q/DQ export: weights dequantized along axis 1, not per output channel (wrong axis)	s/\*vd, linear \? 1 : 0\)\)/*vd, linear ? 0 : 1))/
M34	src/quant/qdq_export.c	^quant_qdq_export$	Q/DQ export: the outputs our INT8 run requantizes get no Q/DQ pair	s/    if \(sy > 0\) \{/    if (sy > 0 \&\& 0) {/
M35	src/quant/qdq_export.c	^quant_qdq_export$	Q/DQ export: the int32 bias written as float without its scale	s/return \(float\)bq \* mult;/return (float)bq;/
M36	src/quant/cache.c	^(test_cache_version|quant_qdq_export)$	calibration cache: a cache read and written again gets the default header (its version lost)	s/c->header \? c->header : mt_calib_header\(MT_CALIB_ENTROPY\)/mt_calib_header(MT_CALIB_ENTROPY)/
M37	scripts/triton_perf.py	^triton_perf$	triton_perf.py: each level reports more correct requests than it got (miscounting)	s/lv = \{"concurrency": conc, "requests": res\["ok"\],/lv = {"concurrency": conc, "requests": res["ok"] + conc,/
M38	scripts/triton_perf.py	^triton_perf$	triton_perf.py: the client threads send one at a time (no real concurrency)	s/^( +)r = ch\.infer\(bodies\[i\], req_id, a\["timeout"\]\)/\1with lock: r = ch.infer(bodies[i], req_id, a["timeout"])/
M39	scripts/triton_perf.py	^triton_perf$	triton_perf.py: responses not compared with their frame's reference	s/why = disagreement\(got, refs\[i\], spec, full, a\["depth_tol"\], a\["class_agree"\], inexact\)/why = None/
M40	scripts/triton_perf.py	^triton_perf$	triton_perf.py: p90 and p99 swapped	s/np\.percentile\(ms, \[50, 90, 99\]\)/np.percentile(ms, [50, 99, 90])/
M41	scripts/triton_perf.py	^triton_perf$	triton_perf.py: every 8th response dropped from the latencies (a lost response)	s/^( +)lat\.append\(dt\)/\1if st["n"] % 8: lat.append(dt)/
M42	src/pipeline/planfile.c	^(test_planfile|saved_plan)$	saved plans: the checksum is computed but not compared	s/if \(got != want\) return bad/if (got != want \&\& 0) return bad/
M43	src/pipeline/planfile.c	^(test_planfile|saved_plan)$	saved plans: another model's plan accepted	s/if \(pf->model_key != model_key\)/if (pf->model_key != model_key \&\& 0)/
M44	src/backend/choices.c	^(test_planfile|saved_plan)$	decision lists: a record's value size not compared (another operation's decision reused)	s/rsl == siglen \&\& rvl == vallen/rsl == siglen/
M45	src/triton/grpc_load.c	^triton_perf$	C load client: outputs compared by length only (a wrong answer counted correct)	s/if \(outs\[k\]\.len != want->len \|\| memcmp\(outs\[k\]\.data, want->data, want->len\)\) \{/if (outs[k].len != want->len) {/
M46	src/triton/grpc_load.c	^triton_perf$	C load client: warm-up responses counted as measured (miscounting)	s/\} else if \(s->counted\) \{/} else if (1) {/
M47	scripts/class_bias.py	^class_bias$	logit adjustment: the constants subtracted from the classifier bias	s/nb = \(b \+ off\)\.astype/nb = (b - off).astype/
M48	scripts/class_bias.py	^class_bias$	logit adjustment: IoU without the false positives	s/iou = tp \/ np\.maximum\(gt \+ pr - tp, 1\)/iou = tp \/ np.maximum(gt, 1)/
M49	src/cpu/kernels_quant.c	^test_pipeline$	features handed to INT8 heads quantized with a scale 1 % off	s/dst\[w \* C \+ c\] = \(int8_t\)quantize_fast\(src\[c \* H \* W \+ w\], s\);/dst[w * C + c] = (int8_t)quantize_fast(src[c * H * W + w], s * 1.01f);/
M50	src/graph/graph.c	^test_pipeline$	handover: the stage-boundary features declared NCHW instead of NHWC (transposed codes)	s/const int64_t d\[4\] = \{xv->dims\[0\], xv->dims\[2\], xv->dims\[3\], xv->dims\[1\]\};/const int64_t d[4] = {xv->dims[0], xv->dims[1], xv->dims[2], xv->dims[3]};/
M51	src/cpu/kernels_fused.c	^test_pipeline$	FromHalfNHWC: rows and columns of the features swapped	s/y\[\(\(b \* C \+ c\) \* H \+ h\) \* W \+ w\] = mt_half_to_float\(x\[\(\(b \* H \+ h\) \* W \+ w\) \* C \+ c\]\);/y[((b * C + c) * H + h) * W + w] = mt_half_to_float(x[((b * H + w % H) * W + h % W) * C + c]);/
M52	src/cpu/kernels_quant.c	^test_reassoc$	QUpsampleSum: the bilinear source coordinate half a pixel off	s/    int64_t num = 2 \* o \+ 1 - f; \/\* the source/    int64_t num = 2 * o - f; \/* the source/
EOF
)
QUICK="M01 M04 M07 M12 M16 M19 M22"

mode=subset only="" list=0
for a in "$@"; do
  case $a in
    --full) mode=full ;;
    --quick) only=$QUICK ;;
    --only=*) only=${a#--only=}; only=${only//,/ } ;;
    --list) list=1 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "mutants.sh: unknown argument '$a'"; exit 2 ;;
  esac
done
if [ $list = 1 ]; then
  printf '%s\n' "$MUTANTS" | awk -F'\t' '{printf "%s  %-28s %-44s %s\n", $1, $2, $3, $4}'
  exit 0
fi

py=$ROOT/.venv/bin/python
[ -x "$py" ] || { echo "mutants.sh: no $ROOT/.venv (run scripts/deps.sh)"; exit 1; }
SHARED=$(cd "$ROOT/.." && pwd)/shared
[ -d "$SHARED/reference" ] || { echo "mutants.sh: no $SHARED/reference (the suite needs ../shared)"; exit 1; }

SCRATCH=$(mktemp -d /tmp/mtmi_mutants.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
SRC=$SCRATCH/repo
mkdir -p "$SRC"
# The tracked and new (not ignored) files of the working tree, as they are
# now (without git: everything but build folders and the environments).
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$SRC")
else
  (cd "$ROOT" && tar --exclude='./build*' --exclude=./.venv --exclude=./.deps --exclude=./.git -cf - .) | tar -xf - -C "$SRC"
fi
ln -s "$SHARED" "$SCRATCH/shared" # the tests find ../shared beside the tree
BUILD=$SCRATCH/build
t0=$(date +%s)
echo "scratch copy $SRC; baseline build ..."
if ! cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DMTMI_NO_CUDA=ON -DPython3_EXECUTABLE="$py" >"$SCRATCH/cfg.log" 2>&1 ||
   ! cmake --build "$BUILD" -j"$JOBS" >"$SCRATCH/build.log" 2>&1; then
  tail -30 "$SCRATCH/build.log" "$SCRATCH/cfg.log" 2>/dev/null
  echo "mutants.sh: the unmutated tree does not build"
  exit 1
fi
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# The Triton tests (M37-M41) take the server from this tree's .venv-triton,
# not from the scratch copy (scripts/triton_deps.sh would install it there).
export MTMI_TRITON_VENV=${MTMI_TRITON_VENV:-$ROOT/.venv-triton}
run_tests() { # run_tests REGEX LOG
  if [ $mode = full ]; then
    ctest --test-dir "$BUILD" -j"$JOBS" -LE gpu --timeout 300 >"$2" 2>&1
  else
    ctest --test-dir "$BUILD" -j"$JOBS" -R "$1" --timeout 300 >"$2" 2>&1
  fi
}
# The tests must pass before any mutant: a failing baseline kills everything.
regexes=$(printf '%s\n' "$MUTANTS" | awk -F'\t' '{print $3}' | sed -E 's/^\^\(?//; s/\)?\$$//' | tr '|' '\n' | sort -u | paste -sd'|')
if ! run_tests "^($regexes)\$" "$SCRATCH/baseline.log"; then
  grep -E "Failed|Timeout|tests passed" "$SCRATCH/baseline.log"
  echo "mutants.sh: the unmutated tree fails its tests"
  exit 1
fi
echo "baseline: $(grep -E 'tests passed' "$SCRATCH/baseline.log") ($(( $(date +%s) - t0 )) s)"

total=0 killed=0 survived=0 broken=0
while IFS=$'\t' read -r id file tests what expr; do
  [ -n "$id" ] || continue
  if [ -n "$only" ] && ! [[ " $only " == *" $id "* ]]; then continue; fi
  total=$((total + 1))
  f=$SRC/$file
  cp "$f" "$SCRATCH/orig"
  sed -E -i "$expr" "$f"
  changed=$(diff "$SCRATCH/orig" "$f" | grep -c '^>' || true)
  if [ "$changed" != 1 ]; then
    echo "$id NOT APPLIED ($changed lines changed): $file: $what"
    cp "$SCRATCH/orig" "$f"
    broken=$((broken + 1))
    continue
  fi
  s=$(date +%s)
  if ! cmake --build "$BUILD" -j"$JOBS" >"$SCRATCH/$id.build.log" 2>&1; then
    verdict="killed (does not build)"
    killed=$((killed + 1))
  elif run_tests "$tests" "$SCRATCH/$id.log"; then
    verdict="SURVIVED"
    survived=$((survived + 1))
  else
    by=$(grep -oE '[0-9]+ - [a-z0-9_]+ \((Failed|Timeout|SEGFAULT|Subprocess aborted|Child aborted|Exception)[^)]*\)' "$SCRATCH/$id.log" |
         sed -E 's/^[0-9]+ - //' | paste -sd' ' -)
    verdict="killed by ${by:-?}"
    killed=$((killed + 1))
  fi
  echo "$id $verdict [$(( $(date +%s) - s )) s]: $what ($file)"
  cp "$SCRATCH/orig" "$f"
  touch "$f"
done <<< "$MUTANTS"
# leave the build matching the sources (not needed: the folder goes)
echo "$total mutants: $killed killed, $survived survived, $broken not applied ($(( $(date +%s) - t0 )) s in all)"
[ $survived = 0 ] && [ $broken = 0 ]
