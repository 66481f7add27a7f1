#!/usr/bin/env python3
# ncu_table.py CSV: one line per kernel launch of an `ncu --csv --page raw` run
# (sections SpeedOfLight, WarpStateStats, Occupancy, LaunchStats and the
# metric smsp__inst_executed.sum): time, registers, grid, block, achieved
# occupancy, SM and memory throughput, instructions and the leading stall
# reasons (used by gpu_int8.sh and gpu_qconv_ncu.sh).
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 20]
if len(rows) < 3: print("ncu: no rows"); sys.exit(0)
h, data = rows[0], rows[2:]  # row 1: units
def col(sub, exact=False):
    for i, n in enumerate(h):
        if (n == sub) if exact else (sub in n): return i
    return None
def num(r, i):
    try: return float(r[i].replace(",", ""))
    except (TypeError, ValueError, IndexError): return float("nan")
it, ireg, igrid, iblk = col("gpu__time_duration.sum"), col("launch__registers_per_thread"), col("launch__grid_size"), col("launch__block_size")
iocc, ism, idram = col("sm__warps_active.avg.pct_of_peak_sustained_active"), col("sm__throughput.avg.pct_of_peak_sustained_elapsed"), col("gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed")
iinst = col("smsp__inst_executed.sum", True)
stall = [(i, n) for i, n in enumerate(h) if n.startswith("smsp__average_warp_latency_issue_stalled_") and n.endswith(".ratio")
         or n.startswith("smsp__average_warps_issue_stalled_") and n.endswith("_per_issue_active.ratio")]
print("%7s %4s %6s %4s %5s %5s %5s %9s  %s" % ("us", "reg", "grid", "blk", "occ%", "sm%", "mem%", "inst", "leading stalls (cycles per issued instruction)"))
for r in data:
    st = sorted(((num(r, i), n.split("stalled_")[1].split("_per_")[0].replace(".ratio", "")) for i, n in stall), reverse=True)[:4]
    print("%7.1f %4.0f %6.0f %4.0f %5.1f %5.1f %5.1f %9.0f  %s" % (num(r, it) / (1e3 if h and "ns" in rows[1][it] else 1), num(r, ireg), num(r, igrid), num(r, iblk),
          num(r, iocc), num(r, ism), num(r, idram), num(r, iinst), ", ".join("%s %.1f" % (n, v) for v, n in st)))
# extra columns: any metric whose name contains one of the substrings given
# after the CSV (e.g. "pipe_tensor" "bank"), as name=value per launch
extra = sys.argv[2:]
if extra:
    ex = [(i, n) for i, n in enumerate(h) if any(e in n for e in extra)]
    for r in data:
        print("   " + ", ".join("%s=%s" % (n.replace("__", ":")[:60], r[i]) for i, n in ex if r[i] not in ("", "n/a"))[:1500])
