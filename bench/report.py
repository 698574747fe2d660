"""Summarises bench/results/results.jsonl (written by bench/run.sh) as a Markdown report."""

import json
import statistics
import sys
from collections import defaultdict

path, slo = sys.argv[1], float(sys.argv[2])
rows = [json.loads(line) for line in open(path) if line.strip()]

fixed = defaultdict(lambda: defaultdict(list))  # (mode, rate) -> target -> rows (rounds)
best = defaultdict(int)  # (mode, target) -> highest sustained rate
hold = [r for r in rows if r["phase"] == "hold"]
metering = [r for r in rows if r["phase"] == "hold-metering"]
latency_rss = [r for r in rows if r["phase"] == "latency-rss"]
for r in rows:
    if r["phase"] == "fixed":
        fixed[(r["mode"], int(r["rate"]))][r["target"]].append(r)
    if r["phase"] == "ladder" and r["errors"] == 0 and r["ok"] == r["requests"] and r["p99_ms"] < slo:
        best[(r["mode"], r["target"])] = max(best[(r["mode"], r["target"])], int(r["rate"]))


def fmt(x):
    return f"{x:.2f}"


def median(rs, key):
    return statistics.median(r[key] for r in rs if r[key] is not None)


print("## Added latency over direct-to-mock (ms), open loop, fixed rates\n")
print("Each cell: the median over rounds of the target's percentile minus direct-to-mock's.")
print("The range is thesis's added p99 round by round (each round against that round's direct run).\n")
print("| mode | rate (req/s) | rounds | direct p50 / p99 | thesis added p50 / p99 | thesis added p99 range | litellm added p50 / p99 | litellm/thesis added p99 |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for (mode, rate) in sorted(fixed):
    d = fixed[(mode, rate)]
    if not {"direct", "thesis", "litellm"} <= d.keys():
        continue
    base = {k: median(d["direct"], k) for k in ("p50_ms", "p99_ms")}
    add = {t: tuple(median(d[t], k) - base[k] for k in ("p50_ms", "p99_ms")) for t in ("thesis", "litellm")}
    errs = {t: sum(r["errors"] for r in d[t]) for t in d}
    note = "" if not any(errs.values()) else f" (errors: {errs})"
    ratio = add["litellm"][1] / add["thesis"][1] if add["thesis"][1] > 0 else float("inf")
    # rounds run in order (direct, thesis, litellm), so the i-th rows of each are one round
    rounds = [
        t["p99_ms"] - b["p99_ms"]
        for b, t in zip(d["direct"], d["thesis"])
        if t["p99_ms"] is not None and b["p99_ms"] is not None
    ]
    spread = f"{fmt(min(rounds))}-{fmt(max(rounds))}" if rounds else "n/a"
    print(
        f"| {mode} | {rate} | {len(d['thesis'])} | {fmt(base['p50_ms'])} / {fmt(base['p99_ms'])} "
        f"| {fmt(add['thesis'][0])} / {fmt(add['thesis'][1])} | {spread} "
        f"| {fmt(add['litellm'][0])} / {fmt(add['litellm'][1])} | {ratio:.0f}×{note} |"
    )

print(f"\n## Highest sustained rate (req/s): no errors and p99 < {slo:.0f} ms\n")
print("| mode | direct | thesis | litellm | thesis / litellm |")
print("|---|---:|---:|---:|---:|")
for mode in ("plain", "stream"):
    d, t, l = (best[(mode, x)] for x in ("direct", "thesis", "litellm"))
    ratio = f"{t / l:.1f}×" if l else "n/a"
    print(f"| {mode} | {d} | {t} | {l} | {ratio} |")

if latency_rss:
    print(
        f"\nGateway peak RSS over all the runs above, overload steps included: "
        f"{latency_rss[0]['rss_peak_kb'] / 1024:.0f} MB."
    )

if hold:
    print("\n## Concurrent open streams through the gateway (a fresh gateway process)\n")
    print("| round | streams | completed | errors | slowest (s) | RSS before (MB) | peak RSS (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in hold:
        print(
            f"| {r['round']} | {r['hold']} | {r['ok']} | {r['errors']} | {r['max_ms'] / 1000:.1f} "
            f"| {r['rss_before_kb'] / 1024:.0f} | {r['rss_peak_kb'] / 1024:.0f} |"
        )
    for m in metering:
        print(f"\nUsage records of those streams: {m['records']} (expected {m['expected']}).")
