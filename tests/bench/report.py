#!/usr/bin/env python3
"""Turns the raw measurements of tests/bench/run.sh into <out>.json and <out>.md.

usage: report.py RESULT_DIR OUT_PREFIX
RESULT_DIR holds meta.json and one JSON file per measurement (see run.sh)."""
import glob
import json
import os
import re
import statistics
import sys

TARGETS = ["direct", "llmux", "nginx", "peer"]


def load(path):
    try:
        with open(path) as f:
            text = f.read().strip()
        return json.loads(text) if text else None
    except (OSError, ValueError):
        return None


def median_of(runs, key):
    vals = [r[key] for r in runs if r and r.get(key) is not None and r.get(key, -1) >= 0 and r.get("ok", 1) > 0]
    return statistics.median(vals) if vals else None


def collect(res):
    meta = load(os.path.join(res, "meta.json")) or {}
    meta["_profiles"] = {}
    for t in TARGETS:
        try:
            with open(os.path.join(res, f"cgprof.{t}.txt")) as f:
                meta["_profiles"][t] = [l.rstrip() for l in f if l.strip()]
        except OSError:
            pass
    out = {}
    for t in TARGETS:
        d = {"available": t not in meta.get("unavailable", {})}
        if not d["available"]:
            d["reason"] = meta["unavailable"][t]
        lat = [load(p) for p in sorted(glob.glob(os.path.join(res, f"lat.{t}.*.json")))]
        ttft = [load(p) for p in sorted(glob.glob(os.path.join(res, f"ttft.{t}.*.json")))]
        lat, ttft = [r for r in lat if r], [r for r in ttft if r]
        if lat:
            d["lat_p50_us"] = median_of(lat, "lat_p50_us")
            d["lat_p99_us"] = median_of(lat, "lat_p99_us")
            d["lat_requests"] = sum(r.get("ok", 0) for r in lat)
            d["lat_errors"] = sum(r.get("status_errors", 0) + r.get("conn_errors", 0) for r in lat)
        if ttft:
            d["ttft_p50_us"] = median_of(ttft, "first_p50_us")
            d["ttft_p99_us"] = median_of(ttft, "first_p99_us")
            d["stream_total_p50_us"] = median_of(ttft, "lat_p50_us")
            d["ttft_requests"] = sum(r.get("ok", 0) for r in ttft)
            d["ttft_errors"] = sum(r.get("status_errors", 0) + r.get("conn_errors", 0) for r in ttft)
        for name in ("rps", "cap"):
            w = load(os.path.join(res, f"{name}.{t}.json"))
            if w:
                errs = sum(w.get(k, 0) for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
                d[f"{name}"] = w.get("rps")
                d[f"{name}_errors"] = errs
                d[f"{name}_p99_us"] = w.get("lat_p99_us")
        h = load(os.path.join(res, f"hold.{t}.json"))
        if h:
            if h.get("died"):
                d["streams_died"] = True
            else:
                d["streams_target"] = h.get("target")
                d["streams_held"] = h.get("held")
                d["streams_failed"] = h.get("failed")
                bps = h.get("bytes_per_stream")
                d["rss_per_stream_kib"] = bps / 1024 if bps is not None and bps >= 0 else None
                d["rss_streams_kb"] = h.get("rss_held_kb")
                d["rss_before_streams_kb"] = h.get("rss_before_kb")
        a = load(os.path.join(res, f"after.{t}.json"))
        if a and a.get("rss_kb", -1) >= 0:
            d["rss_after_streams_kb"] = a["rss_kb"]
        if t in meta.get("idle_rss_kb", {}):
            d["idle_rss_kb"] = meta["idle_rss_kb"][t]
        cg = load(os.path.join(res, f"cg.{t}.json"))
        if cg and cg.get("ir_total"):
            d["ir_per_request"] = cg["ir_total"] / cg["requests"]
        elif cg and cg.get("error"):
            d["ir_error"] = cg["error"]
        out[t] = d
    base = out["direct"]
    for t in TARGETS:
        d = out[t]
        for k in ("lat_p50_us", "lat_p99_us", "ttft_p50_us", "ttft_p99_us"):
            if t != "direct" and d.get(k) is not None and base.get(k) is not None:
                d["added_" + k] = d[k] - base[k]
    return meta, out


def fmt(v, digits=0, unit=""):
    if v is None:
        return "—"
    if isinstance(v, float):
        v = round(v, digits)
        if digits == 0:
            v = int(v)
    if isinstance(v, int):
        return f"{v:,}{unit}"
    return f"{v}{unit}"


def goals(meta, out):
    lx, ng, pr = out["llmux"], out["nginx"], out["peer"]
    g = []

    def add(name, value, ok, detail):
        g.append({"goal": name, "value": value, "met": ok, "detail": detail})

    v = lx.get("added_lat_p99_us")
    add("added p99 at c=1 ≤ 50 µs", v, None if v is None else v <= 50, f"{fmt(v, 1)} µs")
    if lx.get("rps") and ng.get("rps"):
        r = lx["rps"] / ng["rps"]
        add("req/s ≥ 0.9 × nginx (c=64, 20 ms)", r, r >= 0.9, f"{r:.2f}×")
    else:
        add("req/s ≥ 0.9 × nginx (c=64, 20 ms)", None, None, "—")
    if lx.get("rps") and pr.get("rps"):
        r = lx["rps"] / pr["rps"]
        add("req/s ≥ 20 × peer (c=64, 20 ms)", r, r >= 20, f"{r:.1f}×")
    else:
        add("req/s ≥ 20 × peer (c=64, 20 ms)", None, None, "—")
    if lx.get("cap") and pr.get("cap"):
        r = lx["cap"] / pr["cap"]
        add("(capacity, no delay) llmux / peer", r, r >= 20, f"{r:.1f}×")
    held, tried = lx.get("streams_held"), lx.get("streams_target") or 0
    add("10,000 concurrent SSE streams", held,
        None if held is None or (tried < 10000 and held >= tried) else held >= 10000,
        f"{fmt(held)} held of {fmt(lx.get('streams_target'))} tried (fd limit {meta.get('nofile')})")
    kib = lx.get("rss_per_stream_kib")
    add("≤ 32 KiB RSS per stream", kib, None if kib is None else kib <= 32, f"{fmt(kib, 1)} KiB")
    idle = lx.get("idle_rss_kb")
    add("idle RSS ≤ 16 MiB", idle, None if idle is None else idle <= 16 * 1024,
        "—" if idle is None else f"{idle / 1024:.1f} MiB")
    return g


def markdown(meta, out, gl):
    cols = TARGETS
    L = []
    L.append(f"# llmux benchmark {meta.get('stamp', '')}")
    L.append("")
    L.append(f"Machine: {meta.get('cpu', '?')}, {meta.get('ncpu', '?')} cores, {meta.get('mem_gib', '?')} GiB, "
             f"Linux {meta.get('kernel', '?')}; load average at start {meta.get('loadavg_start', '?')}, "
             f"at end {meta.get('loadavg_end', '?')}.  ")
    L.append(f"Run: {'quick' if meta.get('quick') else 'full'}; llmux {meta.get('llmux_commit', '?')} "
             f"({meta.get('llmux_build', '?')} build), "
             f"nginx {meta.get('nginx_version', '?')}, node {meta.get('node_version', '?')}, "
             f"peer {meta.get('peer', '?')}.  ")
    L.append(f"CPU layout: {meta.get('layout', '?')}; each gateway runs one worker.")
    L.append("")
    L.append("| measurement | " + " | ".join(cols) + " |")
    L.append("|---|" + "---:|" * len(cols))

    def row(label, key, digits=0, scale=1.0, unit=""):
        cells = []
        for t in cols:
            d = out[t]
            v = d.get(key)
            if v is not None and scale != 1.0:
                v = v * scale
            cells.append(fmt(v, digits, unit) if d["available"] else "n/a")
        L.append(f"| {label} | " + " | ".join(cells) + " |")

    row("latency p50, c=1, no delay (µs)", "lat_p50_us", 1)
    row("latency p99, c=1, no delay (µs)", "lat_p99_us", 1)
    row("**added p50** over direct (µs)", "added_lat_p50_us", 1)
    row("**added p99** over direct (µs)", "added_lat_p99_us", 1)
    row("time to first token p50, stream (µs)", "ttft_p50_us", 1)
    row("time to first token p99, stream (µs)", "ttft_p99_us", 1)
    row("**added TTFT p50** (µs)", "added_ttft_p50_us", 1)
    row("**added TTFT p99** (µs)", "added_ttft_p99_us", 1)
    row("whole stream p50 (µs)", "stream_total_p50_us", 1)
    row("**req/s**, c=64, 20 ms upstream delay", "rps", 0)
    row("errors in that run", "rps_errors", 0)
    row("req/s, c=64, no delay (one core's capacity)", "cap", 0)
    row("errors in that run", "cap_errors", 0)
    row("**SSE streams held** open at once", "streams_held", 0)
    row("streams that failed to open", "streams_failed", 0)
    row("**RSS per held stream** (KiB)", "rss_per_stream_kib", 1)
    row("RSS while holding them (MiB)", "rss_streams_kb", 1, 1 / 1024)
    row("RSS after they closed (MiB)", "rss_after_streams_kb", 1, 1 / 1024)
    row("**idle RSS** (MiB)", "idle_rss_kb", 1, 1 / 1024)
    row("**instructions per request** (callgrind)", "ir_per_request", 0)
    L.append("")
    L.append("direct = the mock upstream itself (no proxy); added = target − direct, medians over "
             f"{meta.get('rounds', '?')} interleaved round(s). The 20 ms run is bounded by 64 / 20 ms = 3,200 req/s.")
    L.append("")
    L.append("| goal (issue 7) | llmux | met |")
    L.append("|---|---:|:---:|")
    for g in gl:
        met = "—" if g["met"] is None else ("yes" if g["met"] else "**no**")
        L.append(f"| {g['goal']} | {g['detail']} | {met} |")
    notes = []
    for t in cols:
        if not out[t]["available"]:
            notes.append(f"- {t}: unavailable ({out[t].get('reason', '?')})")
        if out[t].get("streams_died"):
            notes.append(f"- {t}: the process died during the stream test")
        if out[t].get("ir_error"):
            notes.append(f"- {t}: callgrind: {out[t]['ir_error']}")
        for k in ("lat_errors", "ttft_errors"):
            if out[t].get(k):
                notes.append(f"- {t}: {out[t][k]} failed requests in the {k.split('_')[0]} runs")
    if meta.get("cg_note"):
        notes.append(f"- callgrind: {meta['cg_note']}")
    if meta.get("streams") != meta.get("streams_wanted"):
        notes.append(f"- streams: ramped to {meta.get('streams')} instead of {meta.get('streams_wanted')}: the hard "
                     f"open-file limit is {meta.get('nofile')} and a proxied stream needs two sockets")
    if notes:
        L.append("")
        L.append("Notes:")
        L.extend(notes)
    for t in ("llmux", "nginx"):
        prof = meta.get("_profiles", {}).get(t)
        n = meta.get("cg_n") or 1
        if not prof:
            continue
        L.append("")
        L.append(f"Where {t}'s instructions go (callgrind self cost, Ir per request, top {min(len(prof), 15)}):")
        L.append("")
        L.append("```")
        for line in prof[:15]:
            m = re.match(r"^\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*?)(?:\s+\[(.*)\])?$", line)
            if not m:
                continue
            ir = int(m.group(1).replace(",", "")) / n
            func = m.group(3).rsplit(":", 1)[-1]
            obj = os.path.basename(m.group(4) or "")
            L.append(f"{ir:>9,.0f} Ir {float(m.group(2)):5.1f}%  {func}  ({obj})")
        L.append("```")
    return "\n".join(L) + "\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    res, prefix = sys.argv[1], sys.argv[2]
    meta, out = collect(res)
    gl = goals(meta, out)
    with open(prefix + ".json", "w") as f:
        json.dump({"meta": meta, "targets": out, "goals": gl}, f, indent=1, sort_keys=True)
        f.write("\n")
    with open(prefix + ".md", "w") as f:
        f.write(markdown(meta, out, gl))


if __name__ == "__main__":
    main()
