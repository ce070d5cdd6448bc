#!/usr/bin/env python3
"""Writes the "Current results" section of BENCHMARKS.md from the outputs of one
`scripts/bench-all.sh` run (native.txt, genseg.txt, web.txt in DIR): every engine's median and
spread, the ratios the performance issue sets targets for, and whether each target is met.

    scripts/bench_table.py DIR BENCHMARKS.md

Everything in the table comes from that one run on one machine; nothing is carried over.
"""
import re
import sys
from pathlib import Path

BEGIN = "<!-- bench-all: begin (scripts/bench-all.sh rewrites this section) -->"
END = "<!-- bench-all: end -->"
NUM = r"([0-9.]+)"


def blocks(text, header):
    """Splits `medseg bench` / bench_peers.py output into (header line, body) blocks."""
    out, cur = [], None
    for line in text.splitlines():
        if re.match(header, line):
            cur = [line, []]
            out.append(cur)
        elif cur is not None:
            cur[1].append(line)
    return [(h, "\n".join(b)) for h, b in out]


def stat(body, what):
    """(median, min, max) of a `WHAT median X ms (min A, max B)` line, or None (also without a body)."""
    if body is None:
        return None
    m = re.search(rf"^{re.escape(what)} median {NUM} ms \(min {NUM}, max {NUM}\)", body, re.M)
    return tuple(float(x) for x in m.groups()) if m else None


def fmt(s):
    return "—" if s is None else f"{s[0]:.1f} ms ({s[1]:.1f}–{s[2]:.1f})"


def web_stat(line, what):
    """(median, min, max, n) from bench.mjs's `WHAT M ms (A–B, n=N)`."""
    m = re.search(rf"{re.escape(what)} (\d+) ms \((\d+)–(\d+), n=(\d+)\)", line)
    return tuple(float(x) for x in m.groups()) if m else None


def wfmt(s):
    return "—" if s is None else f"{s[0]:.0f} ms ({s[1]:.0f}–{s[2]:.0f}, n={s[3]:.0f})"


def ratio(a, b):
    return None if a is None or b is None else a[0] / b[0]


def verdict(r, target):
    if r is None:
        return "not measured"
    return f"{r:.2f}× — {'met' if r <= target else 'missed'}"


def main(run_dir, benchmarks):
    d = Path(run_dir)
    native = (d / "native.txt").read_text()
    genseg = (d / "genseg.txt").read_text() if (d / "genseg.txt").exists() else ""
    web = (d / "web.txt").read_text() if (d / "web.txt").exists() else ""
    meta = (d / "meta.txt").read_text().strip()

    engines = {}
    for head, body in blocks(native, r"^(model |onnxruntime |pytorch )"):
        engines[head.strip()] = body
    def find(pattern):
        return next((b for h, b in engines.items() if re.search(pattern, h)), None)

    rows = []
    ort, pt = find(r"^onnxruntime"), find(r"^pytorch [^ ]+ cpu")
    ours = find(r"^model LiteMedSAM.* on cpu")
    ours_gpu = find(r"^model LiteMedSAM.* on wgpu")
    pt_vit, ours_vit = find(r"^pytorch .*ViT-B"), find(r"^model MedSAM ViT-B")
    for name, body in [
        ("onnxruntime CPU, official LiteMedSAM ONNX graphs", ort),
        ("PyTorch CPU, official LiteMedSAM", pt),
        ("**medseg** LiteMedSAM int8 file, CPU (burn-flex + our passes)", ours),
        ("medseg LiteMedSAM int8 file, wgpu (lavapipe: Vulkan emulated on the CPU)", ours_gpu),
        ("PyTorch CPU, MedSAM ViT-B (random weights)", pt_vit),
        ("**medseg** MedSAM ViT-B (random weights), CPU", ours_vit),
    ]:
        if body is None:
            continue
        later = stat(body, "decoder, third and later boxes on an image,")
        rows.append(f"| {name} | {fmt(stat(body, 'encoder'))} | {fmt(stat(body, 'decoder'))} | {fmt(later)} |")

    useg = []
    for head, body in blocks(native, r"^model UniverSeg"):
        for m in re.finditer(rf"^S=(\d+)\s+query median {NUM} ms \(min {NUM}, max {NUM}\), peak RSS (\d+) MB", body, re.M):
            s, med, lo, hi, rss = m.groups()
            useg.append(f"| {head.split(' on ')[1].split(' (')[0]} | {s} | {float(med):.1f} ms ({float(lo):.1f}–{float(hi):.1f}) | {rss} MB |")

    gen = []
    gen_head = next((l for l in genseg.splitlines() if l.startswith("GenSeg iteration")), "")
    for m in re.finditer(rf"^\s+(.+?)\s+median\s+{NUM} ms\s+\(min {NUM}, max {NUM}, (\d+) runs\)", genseg, re.M):
        what, med, lo, hi, n = m.groups()
        gen.append(f"| {what} | {float(med):.1f} ms ({float(lo):.1f}–{float(hi):.1f}, n={n}) |")

    wl = {m.group(1): l for l in web.splitlines() if (m := re.match(r"^([a-z0-9-]+) \(", l))}
    bundles = re.findall(r"^wasm bundle, (.+?): (\d+) bytes, gzipped \(-9\) (\d+) bytes", web, re.M)
    browser_line = next((l for l in web.splitlines() if l.startswith("machine:")), "")
    wrows = []
    labels = {"cpu": "**medseg**, CPU path (worker + helper thread)", "cpu-1": "medseg, CPU path, one thread",
              "webgpu": "**medseg**, WebGPU (SwiftShader here)", "ort-wasm": "onnxruntime-web WASM, 1 thread",
              "ort-wasm2": "onnxruntime-web WASM, 2 threads", "ort-webgpu": "onnxruntime-web WebGPU"}
    for mode, label in labels.items():
        if mode in wl:
            l = wl[mode]
            wrows.append(f"| {label} | {wfmt(web_stat(l, 'later encodes'))} | {wfmt(web_stat(l, 'decode'))} |")

    enc_native = stat(ours, "encoder")
    enc_ort = ratio(enc_native, stat(ort, "encoder"))
    dec_native = stat(ours, "decoder")
    later_native = stat(ours, "decoder, third and later boxes on an image,")
    web_cpu = wl.get("cpu", "")
    web_enc, web_dec = web_stat(web_cpu, "later encodes"), web_stat(web_cpu, "decode")
    targets = [
        ("native encoder ≤ 1.0× onnxruntime CPU", verdict(enc_ort, 1.0)),
        ("native decode ≤ 25 ms (first box on an image)",
         "not measured" if dec_native is None else f"{dec_native[0]:.1f} ms — {'met' if dec_native[0] <= 25 else 'missed'}"),
        ("browser CPU path ≤ 3× native: encode", verdict(ratio(web_enc, enc_native), 3.0)),
        ("browser CPU path ≤ 3× native: decode (the page's first box, whose image side is ready, "
         "against native's third and later boxes: the same work)", verdict(ratio(web_dec, later_native), 3.0)),
    ]
    for peer, label in [("ort-wasm2", "2 threads"), ("ort-wasm", "1 thread")]:
        if peer in wl:
            targets.append((f"browser ≤ 1.0× onnxruntime-web WASM ({label}): encode",
                            verdict(ratio(web_enc, web_stat(wl[peer], "later encodes")), 1.0)))
            targets.append((f"browser ≤ 1.0× onnxruntime-web WASM ({label}): decode",
                            verdict(ratio(web_dec, web_stat(wl[peer], "decode")), 1.0)))
            break
    if "webgpu" in wl and "ort-webgpu" in wl:
        for what, key in [("encode", "later encodes"), ("decode", "decode")]:
            targets.append((f"browser WebGPU ≤ 1.0× onnxruntime-web WebGPU (SwiftShader here): {what}",
                            verdict(ratio(web_stat(wl["webgpu"], key), web_stat(wl["ort-webgpu"], key)), 1.0)))
    for build, _, gz in bundles:
        mb = int(gz) / 1e6
        targets.append((f"wasm bundle ≤ 2.5 MB gzipped: {build}", f"{mb:.2f} MB — {'met' if mb <= 2.5 else 'missed'}"))

    out = [BEGIN, "## Current results", "",
           f"One run of `scripts/bench-all.sh`: {meta}.", ""]
    if browser_line:
        out += [f"Browser: {browser_line.split('; ', 1)[-1]}.", ""]
    out += ["### Targets (performance issue), this run", "", "| target | this run |", "|---|---|"]
    out += [f"| {t} | {v} |" for t, v in targets]
    out += ["", "### Native, LiteMedSAM and MedSAM ViT-B (medians over the runs, min–max)", "",
            "| engine | encoder | decoder, first box on an image | third and later boxes |", "|---|---|---|---|"]
    out += rows
    if useg:
        out += ["", "### Native, UniverSeg v1 per query (official architecture and size)", "",
                "| backend | support size S | query | peak RSS |", "|---|---|---|---|"] + useg
    if gen:
        out += ["", f"### Native, {gen_head}", "", "| training iteration | median (min–max) |", "|---|---|"] + gen
    if wrows:
        out += ["", "### Browser, same machine (later encodes; decode = the first box on an image)", "",
                "| engine | encode | decode |", "|---|---|---|"] + wrows
    if bundles:
        out += ["", "| wasm bundle | bytes | gzipped (-9) |", "|---|---|---|"]
        out += [f"| {b} | {int(n) / 1e6:.2f} MB | {int(g) / 1e6:.2f} MB |" for b, n, g in bundles]
    out += ["", END]
    section = "\n".join(out) + "\n"

    text = Path(benchmarks).read_text()
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + "\n" + tail
    else:
        # First time: after the introduction (the text before the first "## ").
        i = text.index("\n## ") + 1
        text = text[:i] + section + "\n" + text[i:]
    Path(benchmarks).write_text(text)
    print(section)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: bench_table.py RUN_DIR BENCHMARKS.md")
    main(sys.argv[1], sys.argv[2])
