#!/usr/bin/env python3
"""Summarise one run of scripts/bench/run (the folder it wrote) as a Markdown table, with each
figure beside the target of issue 21 (each a ratio to its reference in the same run where
there is one: pgbench for autosave, PostgreSQL's COPY for the exports)."""
import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench")
http = json.loads((out / "http.json").read_text())
pgbench = (out / "pgbench.txt").read_text()
tps = float(re.search(r"tps = ([0-9.]+)", pgbench).group(1))
pg_latency = re.search(r"latency average = ([0-9.]+) ms", pgbench)

rows = []


def row(what, figure, target, ok):
    rows.append(f"| {what} | {figure} | {target} | {'met' if ok else 'MISSED'} |")


pool_file = out / "pgbench_pool.txt"
pool_tps = None
if pool_file.exists():
    pool_tps = float(re.search(r"tps = ([0-9.]+)", pool_file.read_text()).group(1))
    pool_clients = re.search(r"number of clients: ([0-9]+)", pool_file.read_text()).group(1)

a = http["1_autosave"]
row("autosave, requests/s at concurrency 64", f"{a['per_second']:.0f} ({a['errors']} errors)",
    f"(pgbench at 64: {tps:.0f}/s)", a["errors"] == 0)
row("autosave as a share of pgbench at 64 connections", f"{a['per_second'] / tps:.0%}", "(reference)", True)
if pool_tps:
    row(f"autosave as a share of pgbench at the pool's {pool_clients} connections ({pool_tps:.0f}/s)",
        f"{a['per_second'] / pool_tps:.0%}", "at least 80%", a["per_second"] >= 0.8 * pool_tps)
row("autosave at capacity (64 in flight): p50 / p99", f"{a['p50_ms']:.1f} / {a['p99_ms']:.1f} ms", "(capacity)", a["errors"] == 0)
h = http.get("1_autosave_half_capacity")
if h:
    row("autosave at half capacity (paced, 64 people): p50 / p99", f"{h['p50_ms']:.1f} / {h['p99_ms']:.1f} ms at {h['per_second']:.0f}/s", "p99 under 25 ms", h["p99_ms"] < 25 and h["errors"] == 0)
d = http.get("2_domain_page")
if d:
    row("domain page, requests/s; p50 / p99", f"{d['per_second']:.0f}; {d['p50_ms']:.1f} / {d['p99_ms']:.1f} ms", "(no target)", d["errors"] == 0)
s = http.get("3_submit")
if s:
    row("submit and score, per second; p50 / p99", f"{s['per_second']:.0f} ({s['requests']} submissions, {s['errors']} errors); {s['p50_ms']:.1f} / {s['p99_ms']:.1f} ms", "(no target)", s["errors"] == 0)
for key, what, target in [
    ("4_national_view", "national view, open cycle, one auditor", 150),
    ("4_national_view_8_auditors", "national view, 8 auditors at once", 500),
    ("4_national_view_closed_cycle", "national view, a closed cycle", 250),
    ("4_national_view_by_icb", "national view broken down by ICB", 250),
    ("4_organisation_report", "an organisation's report (peers nationally, in its ICB and region)", 250),
    ("4_trends", "year on year, every cycle", 250),
]:
    r = http.get(key)
    if r:
        row(f"{what}: p50 / p99", f"{r['p50_ms']:.0f} / {r['p99_ms']:.0f} ms",
            f"p99 under {target} ms", r["errors"] == 0 and r["p99_ms"] < target)
copy = out / "copy.txt"
copies = [float(t) / 1000 for t in re.findall(r"Time: ([0-9.]+) ms", copy.read_text())] if copy.exists() else []
for i, e in enumerate(http.get("4_exports", [])):
    name = e["url"].rsplit("/", 1)[-1]
    if "error" in e:
        row(f"export {name}", e["error"], "streamed", False)
    elif i < len(copies):
        ratio = e["seconds"] / copies[i]
        row(f"export {name}", f"{e['bytes'] / 1e6:.0f} MB in {e['seconds']:.1f} s (first byte {e['first_byte_ms']:.0f} ms); COPY of the same rows {copies[i]:.1f} s: {ratio:.1f}x", "within 2x of COPY", ratio <= 2)
    else:
        row(f"export {name}", f"{e['bytes'] / 1e6:.0f} MB in {e['seconds']:.1f} s (first byte {e['first_byte_ms']:.0f} ms)", "within 2x of COPY", False)
m = http.get("6_server_memory_kb")
if m:
    peak = max(m["peak_rss_by_phase"].values())
    phases = ", ".join(f"{k} {v / 1024:.0f}" for k, v in m["peak_rss_by_phase"].items())
    row("server peak resident memory (MiB)", f"{peak / 1024:.0f} (by phase: {phases}; VmHWM {m['vm_hwm'] / 1024:.0f})", "under 150 MB", peak / 1024 * 1.048576 < 150)
scoring = out / "scoring.txt"
if scoring.exists():
    text = scoring.read_text()
    match = re.search(r"score 100 questions[^\n]*\n?[^\n]*time:\s+\[[0-9.]+ \S+ ([0-9.]+) (\S+)", text)
    if match:
        value, unit = float(match.group(1)), match.group(2)
        micros = value * {"ns": 1e-3, "µs": 1, "us": 1, "ms": 1e3}[unit]
        row("scoring core, 100-question assessments per second per core", f"{1e6 / micros:,.0f}", "over 200,000", 1e6 / micros > 200_000)

instructions = out / "scoring_instructions.txt"
if instructions.exists():
    row("scoring core, instructions per 100-question assessment (callgrind)", instructions.read_text().split()[0], "(stable across runs)", True)

seed = out / "seed.json"
if seed.exists():
    sd = json.loads(seed.read_text())
    row("`dma demo seed`", f"{sd['seconds']:.1f} s for {sd['organisations']:,} organisations, {len(sd['cycles'])} cycles ({sd['answers']:,} answers, {sd['scores']:,} scores)", "(recorded)", True)
sched = out / "scheduler.txt"
if sched.exists():
    secs = float(sched.read_text().split()[0])
    row("scheduler's first pass (queues \"cycle opened\" to every approver)", f"{secs:.1f} s", "under 10 s", secs < 10)

# The embedded default beside PostgreSQL: every measure of the same load, as a ratio.
sqlite_rows = []


def ratio(a, b):
    """a / b, or infinity when PostgreSQL's figure is missing (a phase with no sample)."""
    return a / b if b else float("inf")


sqlite_file = out / "sqlite" / "http.json"
if sqlite_file.exists():
    lite = json.loads(sqlite_file.read_text())

    def lite_row(what, figure, target, ok):
        sqlite_rows.append(f"| {what} | {figure} | {target} | {'met' if ok else 'MISSED'} |")

    a, la = http["1_autosave"], lite.get("1_autosave")
    if la:
        lite_row("autosave at concurrency 64, requests/s", f"{la['per_second']:.0f} against {a['per_second']:.0f} ({ratio(la['per_second'], a['per_second']):.2f}x; {la['errors']} errors)",
                 "at least half of PostgreSQL's", la["errors"] == 0 and la["per_second"] * 2 >= a["per_second"])
    h, lh = http.get("1_autosave_half_capacity"), lite.get("1_autosave_half_capacity")
    if h and lh:
        lite_row(f"autosave paced at {lh.get('offered_per_second', 0):.0f}/s (PostgreSQL's half capacity): p99", f"{lh['p99_ms']:.1f} against {h['p99_ms']:.1f} ms ({ratio(lh['p99_ms'], h['p99_ms']):.1f}x)",
                 "within 2x of PostgreSQL's", lh["errors"] == 0 and lh["p99_ms"] <= 2 * h["p99_ms"])
    for key, what in [("2_domain_page", "domain page"), ("3_submit", "submit and score")]:
        p, l = http.get(key), lite.get(key)
        if p and l:
            lite_row(f"{what}, per second", f"{l['per_second']:.0f} against {p['per_second']:.0f} ({ratio(l['per_second'], p['per_second']):.2f}x)",
                     "at least half of PostgreSQL's", l["errors"] == 0 and l["per_second"] * 2 >= p["per_second"])
    for key, what, target in [
        ("4_national_view", "national view, one auditor", 150),
        ("4_national_view_8_auditors", "national view, 8 auditors at once", 500),
        ("4_national_view_closed_cycle", "a closed cycle", 250),
        ("4_national_view_by_icb", "by ICB", 250),
        ("4_organisation_report", "an organisation's report", 250),
        ("4_trends", "year on year", 250),
    ]:
        p, l = http.get(key), lite.get(key)
        if p and l:
            lite_row(f"{what}: p50 / p99", f"{l['p50_ms']:.0f} / {l['p99_ms']:.0f} ms against {p['p50_ms']:.0f} / {p['p99_ms']:.0f} ms ({ratio(l['p99_ms'], p['p99_ms']):.1f}x)",
                     f"p99 within 2x of PostgreSQL's and under {target} ms",
                     l["errors"] == 0 and l["p99_ms"] <= 2 * p["p99_ms"] and l["p99_ms"] < target)
    for e, le in zip(http.get("4_exports", []), lite.get("4_exports", [])):
        name = e["url"].rsplit("/", 1)[-1]
        if "error" in le or "error" in e:
            lite_row(f"export {name}", le.get("error") or e.get("error"), "within 2x of PostgreSQL's", False)
        else:
            lite_row(f"export {name}", f"{le['seconds']:.1f} s against {e['seconds']:.1f} s ({ratio(le['seconds'], e['seconds']):.1f}x)",
                     "within 2x of PostgreSQL's", le["seconds"] <= 2 * e["seconds"])
    lm = lite.get("6_server_memory_kb")
    if lm:
        peak = max(lm["peak_rss_by_phase"].values())
        phases = ", ".join(f"{k} {v / 1024:.0f}" for k, v in lm["peak_rss_by_phase"].items())
        lite_row("server peak resident memory (MiB)", f"{peak / 1024:.0f} (by phase: {phases}; VmHWM {lm['vm_hwm'] / 1024:.0f})", "under 150 MB", peak / 1024 * 1.048576 < 150)
    lite_seed = out / "sqlite" / "seed.json"
    if lite_seed.exists():
        sd = json.loads(lite_seed.read_text())
        lite_row("`dma demo seed`", f"{sd['seconds']:.1f} s", "(recorded)", True)
    lite_sched = out / "sqlite" / "scheduler.txt"
    if lite_sched.exists():
        secs = float(lite_sched.read_text().split()[0])
        lite_row("scheduler's first pass", f"{secs:.1f} s", "under 10 s", secs < 10)

print(f"pgbench: {tps:.0f} transactions/s" + (f", latency average {pg_latency.group(1)} ms" if pg_latency else ""))
print()
print("| what | figure | target | |")
print("|---|---|---|---|")
print("\n".join(rows))
if sqlite_rows:
    print()
    print("SQLite (the embedded default), the same load; PostgreSQL's figure beside each:")
    print()
    print("| what | SQLite | target | |")
    print("|---|---|---|---|")
    print("\n".join(sqlite_rows))
