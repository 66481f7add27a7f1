#!/usr/bin/env python3
"""Renders a `mtmi run/bench --trace` Chrome trace as a timeline PNG (for
docs; Perfetto is the interactive view).  One row per stage track, one box
per frame coloured by frame number, a window of the trace's last frames.
Standard library only (zlib + struct), so it runs anywhere.

usage: scripts/trace_png.py TRACE.json OUT.png [--frames N] [--width PX]
"""
import argparse
import json
import struct
import zlib

# 5x7 bitmap font for labels: digits, lowercase, a few symbols.
GLYPHS = {
    "0": "01110100011001110101110011000101110", "1": "00100011000010000100001000010001110",
    "2": "01110100010000100010001000100011111", "3": "11111000100010000010000011000101110",
    "4": "00010001100101010010111110001000010", "5": "11111100001111000001000011000101110",
    "6": "00110010001000011110100011000101110", "7": "11111000010001000100010000100001000",
    "8": "01110100011000101110100011000101110", "9": "01110100011000101111000010001001100",
    "a": "00000000000111000001011111000101111", "b": "10000100001011011001100011000111110",
    "c": "00000000000111010000100001000101110", "d": "00001000010110110011100011000101111",
    "e": "00000000000111010001111111000001110", "f": "00110010010100011100010000100001000",
    "g": "00000011111000110001011110000101110", "h": "10000100001011011001100011000110001",
    "i": "00100000000110000100001000010001110", "j": "00010000000011000010000101001001100",
    "k": "10000100001001010100110001010010010", "l": "01100001000010000100001000010001110",
    "m": "00000000001101010101101011000110001", "n": "00000000001011011001100011000110001",
    "o": "00000000000111010001100011000101110", "p": "00000000001111010001111101000010000",
    "q": "00000000000110110011011110000100001", "r": "00000000001011011001100001000010000",
    "s": "00000000000111010000011100000111110", "t": "01000010001110001000010000100100110",
    "u": "00000000001000110001100011001101101", "v": "00000000001000110001100010101000100",
    "w": "00000000001000110001101011010101010", "x": "00000000001000101010001000101010001",
    "y": "00000000001000110001011110000101110", "z": "00000000001111100010001000100011111",
    ":": "00000011000110000000011000110000000", ".": "00000000000000000000000000110001100",
    "/": "00000000010001000100010001000000000", "=": "00000000001111100000111110000000000",
    "-": "00000000000000011111000000000000000", " ": "0" * 35, ",": "00000000000000000000011000010001000",
    "(": "00010001000100001000010000010000010", ")": "01000001000001000010000100010001000",
}


def draw_text(px, w, h, x, y, text, color):
    for ch in text.lower():
        g = GLYPHS.get(ch, GLYPHS[" "])
        for r in range(7):
            for c in range(5):
                if g[r * 5 + c] == "1" and 0 <= x + c < w and 0 <= y + r < h:
                    px[(y + r) * w + x + c] = color
        x += 6


def write_png(path, w, h, px):
    raw = b"".join(b"\x00" + b"".join(struct.pack("BBB", *px[y * w + x]) for x in range(w)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("png")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--width", type=int, default=1100)
    a = ap.parse_args()
    ev = json.load(open(a.trace))["traceEvents"]
    procs, threads = {}, {}
    for e in ev:
        if e.get("ph") == "M" and e["name"] == "process_name":
            procs[e["pid"]] = e["args"]["name"]
        if e.get("ph") == "M" and e["name"] == "thread_name":
            threads[(e["pid"], e["tid"])] = e["args"]["name"]
    boxes = [e for e in ev if e.get("ph") == "X" and e.get("cat") == "stage"]
    if not boxes:
        raise SystemExit("no stage events in " + a.trace)
    frames = sorted({b["args"]["frame"] for b in boxes})
    keep = set(frames[-a.frames:])
    boxes = [b for b in boxes if b["args"]["frame"] in keep]
    t0 = min(b["ts"] for b in boxes)
    t1 = max(b["ts"] + b["dur"] for b in boxes)
    tracks = sorted({(b["pid"], b["tid"]) for b in boxes})
    label_w, row_h, top = 230, 34, 30
    w, h = a.width, top + row_h * len(tracks) + 30
    px = [(255, 255, 255)] * (w * h)
    palette = [(66, 133, 244), (219, 68, 55), (244, 180, 0), (15, 157, 88), (171, 71, 188), (0, 172, 193), (255, 112, 67),
               (124, 179, 66)]
    scale = (w - label_w - 20) / max(t1 - t0, 1e-9)
    draw_text(px, w, h, 8, 8, "timeline of the last %d frames, %.2f ms (colour = frame)" % (len(keep), (t1 - t0) / 1000.0),
              (0, 0, 0))
    for r, tr in enumerate(tracks):
        y = top + r * row_h
        name = "%s %s" % (procs.get(tr[0], ""), threads.get(tr, ""))
        draw_text(px, w, h, 8, y + 12, name[:37], (0, 0, 0))
        for x in range(label_w, w - 10):
            px[(y + row_h - 2) * w + x] = (220, 220, 220)
        for b in boxes:
            if (b["pid"], b["tid"]) != tr:
                continue
            x0 = label_w + int((b["ts"] - t0) * scale)
            x1 = max(x0 + 1, label_w + int((b["ts"] + b["dur"] - t0) * scale))
            col = palette[b["args"]["frame"] % len(palette)]
            for yy in range(y + 4, y + row_h - 6):
                for xx in range(x0, min(x1, w - 10)):
                    px[yy * w + xx] = col
            if x1 - x0 > 30:
                draw_text(px, w, h, x0 + 3, y + 12, str(b["args"]["frame"]), (255, 255, 255))
    # time axis, ms
    for k in range(0, 11):
        x = label_w + int(k * (w - label_w - 20) / 10)
        draw_text(px, w, h, x, h - 18, "%.1f" % ((t1 - t0) / 1000.0 * k / 10), (90, 90, 90))
    write_png(a.png, w, h, px)


if __name__ == "__main__":
    main()
