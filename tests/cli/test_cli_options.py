"""The command line's one option parser (issue 17), every command:

- help lists only accepted options: every option `mtmi CMD --help` lists is
  taken by the parser, as `--name VALUE`, `--name=VALUE`, and `-x VALUE` /
  `-xVALUE` for its short name (each followed by an unknown option, which
  must then be the error: the parser reads in order, so nothing runs);
- usage errors: unknown options (long, short, abbreviated), a missing value,
  a malformed number or choice, a flag given a value, an extra argument:
  exit 2 and one line naming the command and the option; `--` ends the
  options;
- docs/CLI.md holds each command's help exactly (so it lists exactly the
  options the parser accepts; `--update-docs` rewrites those blocks);
- -o/--output: where each command's product goes (a file or a folder), in
  its short, long, `=` and older (--output-dir) spellings, and missing where
  required;
- --json FILE in run, bench, eval and accuracy: the file is written and
  parses; `--json -`: stdout is the report alone (the text report goes to
  stderr); a report that would replace an input is refused;
- JSON escaping: a model, cache and output paths holding a quote and a
  backslash come back intact from every JSON file (report, manifest,
  trace);
- info --shape (once listed in help but refused): the optimized graph of a
  dynamic model at the shape given."""
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import mtmi_testutil as tu

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(ROOT, "docs", "CLI.md")
MTMI = tu.MTMI_BIN
check = tu.Checks()
END = "--zzz-end"  # an option no command has: the error every accepted option must reach


def mtmi(*args, cwd=None, timeout=300):
    return subprocess.run([MTMI] + [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout)


def one_error(r, code, words, tag):
    """Exit `code`, stderr exactly one 'mtmi: error:' line holding `words`."""
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    ok = r.returncode == code and len(lines) == 1 and lines[0].startswith("mtmi: error: ") and all(w in lines[0] for w in words)
    check(ok, f"{tag}: want exit {code} and one error line with {words}; got exit {r.returncode}, stderr {lines[:3]}")
    return ok


# ------------------------------------------------------------------ commands
r = mtmi("--help")
check(r.returncode == 0, f"mtmi --help: exit {r.returncode}")
COMMANDS = re.findall(r"^  ([a-z][a-z-]*)\b", r.stdout.split("commands:", 1)[1].split("\n\n", 1)[0], re.M)
check(len(COMMANDS) == 14, f"mtmi --help lists {len(COMMANDS)} commands: {COMMANDS}")
r = mtmi()
check(r.returncode == 2 and "usage: mtmi" in r.stderr, f"mtmi without a command: exit {r.returncode}")
one_error(mtmi("frobnicate"), 2, ["unknown command 'frobnicate'"], "unknown command")

OPT_RE = re.compile(r"^  (?:-(?P<s>\w), |    )--(?P<l>[a-z0-9][a-z0-9-]*)(?: (?P<m>\S+))?(?:  |$)")


def help_of(cmd):
    r = mtmi(cmd, "--help")
    check(r.returncode == 0 and r.stdout.startswith(f"usage: mtmi {cmd}"), f"{cmd} --help: exit {r.returncode}, {r.stdout[:60]!r}")
    check(r.stderr == "", f"{cmd} --help writes to stderr: {r.stderr[:200]}")
    r2 = mtmi(cmd, "-h")
    check(r2.returncode == 0 and r2.stdout == r.stdout, f"{cmd} -h differs from --help")
    return r.stdout


def options_in(help_text):
    """[(short or None, long, meta or None)] of the options: section."""
    sec = help_text.split("\noptions:\n", 1)
    check(len(sec) == 2, "no 'options:' section")
    out = []
    for line in sec[1].split("\n\n", 1)[0].splitlines():
        m = OPT_RE.match(line)
        if m:
            out.append((m["s"], m["l"], m["m"]))
    return out


HELP = {c: help_of(c) for c in COMMANDS}
OPTS = {c: options_in(HELP[c]) for c in COMMANDS}
for c in COMMANDS:
    names = [l for _, l, _ in OPTS[c]]
    check(names and names[-1] == "help", f"{c}: help is not the last option listed ({names[-3:]})")
    check(len(names) == len(set(names)), f"{c}: an option listed twice: {names}")


# A value each kind of option accepts (by its placeholder in help).
SAMPLE = {"N": "1", "SEED": "1", "BYTES": "0", "MS": "0", "I": "0", "S": "1", "M": "10", "HxW": "64x64", "1x3xHxW": "1x3x64x64",
          "S:F": "1:1", "NAME=SCALE": "x=0.5", "P": "auto", "LIST": "classes", "METHOD": "entropy", "PART": "heads",
          "NAME,NAME,..": "a", "DEV": "cpu"}
CHOICE = re.compile(r"[a-z0-9]+(\|[a-z0-9]+)+")


def sample(meta):
    if meta in SAMPLE:
        return SAMPLE[meta]
    if CHOICE.fullmatch(meta):
        return meta.split("|")[-1]
    return "some.file"  # FILE, DIR, M.onnx, CACHE, X.npy, OUT, DIR|FILE


INT_METAS = {"N", "SEED", "BYTES", "MS", "I", "S", "M"}
accepted = 0
JOBS = []  # (argv, exit code, words of the one error line, tag, option spellings it accepts)


def expect(args, code, words, tag, n=0):
    JOBS.append((args, code, words, tag, n))


for c in COMMANDS:
    opts = [o for o in OPTS[c] if o[1] != "help"]
    # Every option of the command in one command line per spelling, then
    # END: the parser reads in order, so an option it refused (or a value
    # it did not take) would be the error instead of END.
    spellings = {"--name=VALUE": [], "--name VALUE": [], "-x VALUE": [], "-xVALUE": [], "-x=VALUE": [], "--flag": [], "-f": []}
    for s, l, meta in opts:
        if meta:
            v = sample(meta)
            spellings["--name=VALUE"].append([f"--{l}={v}"])
            spellings["--name VALUE"].append([f"--{l}", v])
            if s:
                spellings["-x VALUE"] += [[f"-{s}", v]]
                spellings["-xVALUE"] += [[f"-{s}{v}"]]
                spellings["-x=VALUE"] += [[f"-{s}={v}"]]
        else:
            spellings["--flag"].append([f"--{l}"])
            if s:
                spellings["-f"].append([f"-{s}"])
    for form, args in spellings.items():
        if args:
            flat = [a for arg in args for a in arg]
            expect([c, *flat, END], 2, [f"{c}: unknown option '{END}'"], f"{c}, all options as {form}: {flat}", len(args))
    # each option's own errors
    for s, l, meta in opts:
        if meta:
            expect([c, f"--{l}"], 2, [f"{c}: option '--{l}' needs a value ({meta})"], f"{c} --{l} without a value")
            if meta in INT_METAS:
                expect([c, f"--{l}=12abc"], 2, [f"{c}: --{l} expects", "'12abc'"], f"{c} --{l}=12abc")
            if CHOICE.fullmatch(meta):
                expect([c, f"--{l}=nonsense"], 2, [f"{c}: --{l} expects", "'nonsense'"], f"{c} --{l}=nonsense")
        else:
            expect([c, f"--{l}=1"], 2, [f"{c}: option '--{l}' takes no value"], f"{c} --{l}=1")
    valued = [(s, l, m) for s, l, m in opts if m]
    if valued:
        _, l, _ = valued[0]
        expect([c, f"--{l}", "--quiet"], 2, [f"'--{l}' needs a value", "'--quiet'"], f"{c} --{l} followed by an option")
        expect([c, f"--{l}="], 2, [f"'--{l}' needs a value"], f"{c} --{l}= (empty)")
    ints = [l for _, l, m in opts if m in INT_METAS]
    if ints:
        expect([c, f"--{ints[0]}", "-99999999999999999999"], 2, [f"{c}: --{ints[0]} expects"], f"{c} --{ints[0]} out of range")
    # unknown options: long, short, an abbreviation of a real one
    expect([c, "--no-such-option"], 2, [f"{c}: unknown option '--no-such-option'", f"mtmi {c} --help"], f"{c} unknown long")
    expect([c, "-Z"], 2, [f"{c}: unknown option '-Z'"], f"{c} unknown short")
    longest = max((l for _, l, _ in OPTS[c]), key=len)
    expect([c, f"--{longest[:-1]}"], 2, [f"{c}: unknown option '--{longest[:-1]}'"], f"{c} abbreviation --{longest[:-1]}")
    expect([c, "--help=1"], 2, [f"{c}: unknown option '--help'"], f"{c} --help=1")
# run the parser-only command lines a few at a time (nothing runs: each
# ends in a usage error), then check them in order
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    results = list(pool.map(lambda j: mtmi(*j[0]), JOBS))
for (args, code, words, tag, n), r in zip(JOBS, results):
    accepted += n * one_error(r, code, words, tag)
print(f"{accepted} option spellings accepted over {len(COMMANDS)} commands ({len(JOBS)} command lines)")
check(accepted > 200, f"only {accepted} option spellings checked")

# positional arguments: too many; `--` ends the options
one_error(mtmi("info", "a.onnx", "b.onnx"), 2, ["info: unexpected argument 'b.onnx'"], "info: two models")
one_error(mtmi("ops", "x"), 2, ["ops: unexpected argument 'x'"], "ops: an argument")
one_error(mtmi("make-model", "x.onnx"), 2, ["make-model: unexpected argument 'x.onnx'"], "make-model: a positional output")
r = mtmi("info", "--", "--zzz.onnx")
one_error(r, 1, ["--zzz.onnx"], "info -- --zzz.onnx: a model path, not an option")
check("unknown option" not in r.stderr, f"info --: {r.stderr.strip()}")

# ---------------------------------------------------------------- docs/CLI.md
BLOCK = re.compile(r"<!-- help: (?P<cmd>[a-z-]+) -->\n```text\n(?P<text>.*?)```\n", re.S)
doc = open(DOC).read()
if "--update-docs" in sys.argv:
    def repl(m):
        return f"<!-- help: {m['cmd']} -->\n```text\n{HELP.get(m['cmd'], m['text'])}```\n"
    doc = BLOCK.sub(repl, doc)
    open(DOC, "w").write(doc)
    print("docs/CLI.md: help blocks rewritten")
blocks = {m["cmd"]: m["text"] for m in BLOCK.finditer(doc)}
check(sorted(blocks) == sorted(COMMANDS), f"docs/CLI.md has help blocks for {sorted(blocks)}, the commands are {sorted(COMMANDS)}")
for c in COMMANDS:
    if c in blocks:
        got, want = options_in(blocks[c]), OPTS[c]
        check(got == want, f"docs/CLI.md lists for {c}: {sorted(set(got) ^ set(want))} differently from its parser's table")
        check(blocks[c] == HELP[c], f"docs/CLI.md's help of {c} differs from `mtmi {c} --help` (rerun this test with --update-docs)")
    check(f"\n## {c}\n" in doc, f"docs/CLI.md has no '## {c}' section")
for var in re.findall(r'\{"(MTMI_[A-Z0-9_]+)"', open(os.path.join(ROOT, "src", "app", "env.c")).read()) + ["MTMI_NN_WINOGRAD",
                                                                                                             "MTMI_CUDA_TRACE_DEST",
                                                                                                             "MTMI_TRAINED_MODEL"]:
    check(f"`{var}`" in doc, f"docs/CLI.md does not list the environment variable {var}")

# ------------------------------------------------------------ -o and --json
tmp = tempfile.mkdtemp(prefix="mtmi_cli_")
seed = tu.test_seed(17)
odd = os.path.join(tmp, 'we"ird\\dir')  # a quote and a backslash in every path below
os.makedirs(odd)


def ok(r, tag):
    check(r.returncode == 0, f"{tag}: exit {r.returncode}: {r.stderr.strip()[-400:]}")
    return r.returncode == 0


def load_json(path, tag):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception as e:  # noqa: BLE001
        check(False, f"{tag}: {path} is not valid JSON ({e})")
        return None


def stdout_json(r, tag):
    try:
        return json.loads(r.stdout)
    except Exception as e:  # noqa: BLE001
        check(False, f"{tag}: stdout is not one JSON document ({e}): {r.stdout[:300]!r}")
        return None


# make-model: -o FILE (required)
model = os.path.join(odd, 'm"1\\.onnx')
ok(mtmi("make-model", "-o", model, "--size", "64x64", "--seed", seed), "make-model -o")
check(os.path.isfile(model), "make-model -o FILE: no file")
m2 = os.path.join(tmp, "m2.onnx")
ok(mtmi("make-model", f"--output={m2}", "--size=64x64"), "make-model --output=")
check(os.path.isfile(m2), "make-model --output=FILE: no file")
one_error(mtmi("make-model", "--size", "64x64"), 2, ["make-model: no output file given (-o"], "make-model without -o")

# simplify: IN OUT, IN -o OUT, IN --output=OUT; OUT given twice is an error
for tag, args, out in (("positional", [model, os.path.join(tmp, "s1.onnx")], "s1.onnx"),
                       ("-o", [model, "-o", os.path.join(tmp, "s2.onnx")], "s2.onnx"),
                       ("--output=", [f"--output={os.path.join(tmp, 's3.onnx')}", model], "s3.onnx")):
    ok(mtmi("simplify", *args), f"simplify {tag}")
    check(os.path.isfile(os.path.join(tmp, out)), f"simplify {tag}: no {out}")
one_error(mtmi("simplify", model, os.path.join(tmp, "s4.onnx"), "-o", os.path.join(tmp, "s5.onnx")), 2, ["simplify: OUT given twice"],
          "simplify OUT and -o OUT")
check(not os.path.exists(os.path.join(tmp, "s4.onnx")) and not os.path.exists(os.path.join(tmp, "s5.onnx")), "simplify: OUT twice wrote")
one_error(mtmi("simplify", model), 2, ["simplify: no output file given"], "simplify without OUT")
r = mtmi("simplify", model, "--", "-dash.onnx", cwd=tmp)
ok(r, "simplify IN -- -dash.onnx")
check(os.path.isfile(os.path.join(tmp, "-dash.onnx")), "simplify after --: the file named -dash.onnx")

# split: -o DIR (also --output-dir, its older name)
for flag in ("-o", "--output", "--output-dir"):
    d = os.path.join(odd, "split" + flag.strip("-"))
    ok(mtmi("split", model, flag, d), f"split {flag}")
    check(os.path.isfile(os.path.join(d, "encoder.onnx")) and len(os.listdir(d)) >= 3, f"split {flag} DIR: {os.listdir(d) if os.path.isdir(d) else 'no folder'}")
one_error(mtmi("split", model), 2, ["split: no output folder given (-o DIR)"], "split without -o")

# infer: -o DIR (default the current folder)
x = os.path.join(tmp, "x.npy")
np.save(x, np.random.default_rng(seed).standard_normal((1, 3, 64, 64)).astype(np.float32))
for tag, args, d in (("-o", ["-o", os.path.join(odd, "inf")], os.path.join(odd, "inf")), ("default", [], tmp)):
    before = set(os.listdir(d)) if os.path.isdir(d) else set()
    ok(mtmi("infer", model, "--input", x, *args, cwd=tmp), f"infer {tag}")
    new = set(os.listdir(d)) - before if os.path.isdir(d) else set()
    check({"seg.npy", "depth.npy"} <= new or len([f for f in new if f.endswith(".npy")]) == 2, f"infer {tag}: wrote {sorted(new)}")

# synth: -o DIR
data = os.path.join(odd, "data")
ok(mtmi("synth", "--output", data, "--count=2", "--size", "64x64", "--seed", seed), "synth --output")
check(len(os.listdir(os.path.join(data, "images"))) == 2 and load_json(os.path.join(data, "synth.json"), "synth.json") is not None,
      "synth --output DIR: images and synth.json")
one_error(mtmi("synth", "--count", "1"), 2, ["synth: no output folder given (-o DIR)"], "synth without -o")

# triton-repo: -o REPO (a folder; the model's own folder inside it)
repo = os.path.join(odd, "repo")
for k, flag in enumerate(("-o", "--output", "--output=")):
    r_dir = f"{repo}{k}"
    args = [flag + r_dir] if flag.endswith("=") else [flag, r_dir]
    ok(mtmi("triton-repo", "--model", model, *args, "--depth=fp16"), f"triton-repo {flag}")
    cfg = os.path.join(r_dir, "mtmi", "config.pbtxt")
    check(os.path.isfile(cfg) and "TYPE_FP16" in open(cfg).read(), f"triton-repo {flag}: no config.pbtxt with fp16 depth")
one_error(mtmi("triton-repo", "--model", model), 2, ["triton-repo: no repository given (-o REPO)"], "triton-repo without -o")

# calibrate: -o CACHE
cache = os.path.join(odd, 'c"a\\che.cache')
ok(mtmi("calibrate", model, "--images", os.path.join(data, "images"), "-o", cache, "--threads=2"), "calibrate -o")
check(os.path.isfile(cache) and open(cache).readline().startswith("TRT-"), "calibrate -o CACHE: no cache")
one_error(mtmi("calibrate", model, "--images", os.path.join(data, "images")), 2, ["calibrate: no output cache given (-o CACHE)"],
          "calibrate without -o")

# run: -o DIR, --json FILE, --trace FILE, the manifest
run_out = os.path.join(odd, "run out")
rep, trace = os.path.join(odd, 'run"report.json'), os.path.join(odd, 'tr"ace.json')
ok(mtmi("run", "--model", model, "--images", os.path.join(data, "images"), "--frames=2", f"--output={run_out}", "--json", rep,
        "--trace", trace, "--threads", "2", "-q"), "run -o --json --trace")
j = load_json(rep, "run --json")
check(j is not None and j["command"] == "run" and model in j["model"] and j["frames"] == 2, f"run --json: {str(j)[:300]}")
man = load_json(os.path.join(run_out, "manifest.json"), "run manifest")
check(man is not None and model in man["model"] and len(man["frames"]) == 2 and man["frames"][0]["source"].startswith(data),
      f"manifest.json: the model and the image paths ({str(man)[:300]})")
check(load_json(trace, "run --trace") is not None, "run --trace parses")
r = mtmi("run", "--model", model, "--frames", "1", "-o", os.path.join(tmp, "run2"), "--json", "-", "--threads", "2")
j = stdout_json(r, "run --json -")
check(ok(r, "run --json -") and j is not None and j["command"] == "run", "run --json -: the report on stdout")
check("summary:" in r.stderr and "loop: 0" in r.stderr, f"run --json -: the text report on stderr ({r.stderr[:200]!r})")
one_error(mtmi("run", "--model", model, "--frames", "1", "-o", os.path.join(tmp, "run3"), "--json", rep, "--trace", rep), 1,
          ["is given for two outputs"], "run --json F --trace F")
before = open(model, "rb").read()
one_error(mtmi("run", "--model", model, "--frames", "1", "-o", os.path.join(tmp, "run4"), "--json", model), 1,
          ["refusing to overwrite"], "run --json MODEL")
check(open(model, "rb").read() == before, "run --json MODEL changed the model")

# bench: --json FILE and -
brep = os.path.join(odd, 'bench".json')
ok(mtmi("bench", "--model", model, "--frames", "2", "--warmup", "0", "--threads", "2", "--json", brep, "--quiet"), "bench --json")
j = load_json(brep, "bench --json")
check(j is not None and j["command"] == "bench" and model in j["model"], f"bench --json: {str(j)[:200]}")
r = mtmi("bench", "--model", model, "--frames", "2", "--warmup", "0", "--threads", "2", "--json=-")
j = stdout_json(r, "bench --json=-")
check(ok(r, "bench --json=-") and j is not None and j["frames_measured"] == 2 and "summary:" in r.stderr, "bench --json=-")

# eval: --json FILE and -
erep = os.path.join(odd, 'eval"\\.json')
ok(mtmi("eval", "--model", model, "--data", data, "--json", erep, "--threads", "2"), "eval --json")
j = load_json(erep, "eval --json")
check(j is not None and j["command"] == "eval" and j["data"] == data and model in j["model"] and j["frames"] == 2,
      f"eval --json: {str(j)[:300]}")
r = mtmi("eval", "--model", model, "--data", data, "--json", "-", "--threads", "2")
j = stdout_json(r, "eval --json -")
check(ok(r, "eval --json -") and j is not None and j["frames"] == 2 and "mIoU" in r.stderr, "eval --json -: report on stdout, text on stderr")

# accuracy: --json FILE and - (it once printed JSON for a bare --json, and wrote invalid JSON for a quote in a path)
arep = os.path.join(odd, 'acc"\\.json')
r = mtmi("accuracy", model, "--cache", cache, "--images", os.path.join(data, "images"), "--json", arep, "--threads", "2")
ok(r, "accuracy --json FILE")
j = load_json(arep, "accuracy --json FILE")
check(j is not None and j["model"] == model and j["cache"] == cache and j["images"] == 2 and "agreement_pct" in j["seg"],
      f"accuracy --json FILE: {str(j)[:300]}")
check("class-map agreement" in r.stdout, "accuracy --json FILE: the text report still on stdout")
r = mtmi("accuracy", model, "--cache", cache, "--images", os.path.join(data, "images"), "--json", "-", "--threads", "2")
j = stdout_json(r, "accuracy --json -")
check(ok(r, "accuracy --json -") and j is not None and j["model"] == model and "class-map agreement" in r.stderr,
      "accuracy --json -: the report on stdout, the text on stderr")
one_error(mtmi("accuracy", model, "--cache", cache, "--images", os.path.join(data, "images"), "--json"), 2,
          ["accuracy: option '--json' needs a value (FILE)"], "accuracy --json without FILE")
before = open(cache, "rb").read()
one_error(mtmi("accuracy", model, "--cache", cache, "--images", os.path.join(data, "images"), "--json", cache), 1,
          ["refusing to overwrite"], "accuracy --json CACHE")
check(open(cache, "rb").read() == before, "accuracy --json CACHE changed the cache")

# info --shape: a dynamic model's optimized graph at the shape given
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

w = numpy_helper.from_array(np.random.default_rng(seed).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
dyn = os.path.join(tmp, "dyn.onnx")
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), dyn)
r = mtmi("info", dyn)
check(ok(r, "info dynamic") and "not available" in r.stdout, "info on a dynamic model without --shape: no optimized graph")
r = mtmi("info", dyn, "--shape=2x3x32x48")
check(ok(r, "info --shape") and re.search(r"^output y\s+2x4x32x48$", r.stdout, re.M), f"info --shape 2x3x32x48: {r.stdout[-300:]}")
one_error(mtmi("info", dyn, "--shape", "1x4x32x32"), 1, ["1x4x32x32"], "info --shape that does not fit")
one_error(mtmi("info", dyn, "--shape", "banana"), 2, ["info: bad --shape 'banana'"], "info --shape banana")

left = [os.path.join(r_, f) for r_, _, fs in os.walk(tmp) for f in fs if ".tmp." in f]
check(not left, f"temporary files left: {left}")
shutil.rmtree(tmp, ignore_errors=True)
check.finish("cli options")
