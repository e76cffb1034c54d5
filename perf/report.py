#!/usr/bin/python3
"""Writes REPORT.md and the PNG charts of perf/harness.sh from its raw results.

    /usr/bin/python3 perf/report.py [--no-charts] RESULTS_DIR

Reads RESULTS_DIR/meta.tsv (key, value), runs.tsv (one wrk run a line, every
round), idle.tsv (one idle-connection measurement a line) and notes.tsv; every
figure in the report is the median over the rounds, every verdict on the bar
of issue #12 is computed here from those medians. Charts need matplotlib
(Debian python3-matplotlib); without it (or with --no-charts) the report is
written without them.
"""

import csv
import os
import statistics
import sys

PROXIES = ["ringgate", "nginx", "haproxy"]
COLORS = {"ringgate": "#1b9e77", "nginx": "#7570b3", "haproxy": "#d95f02"}
BUSY = 90  # % of a core: at or above it, that core set the pace

SCENARIOS = {  # name: (title, what the run is)
    "small": ("Small keep-alive GET", "128-byte answer, 64 keep-alive connections"),
    "16k": ("16 KiB GET", "16 KiB static file at the origin, 64 keep-alive connections"),
    "1m": ("1 MiB GET", "1 MiB static file at the origin, 16 keep-alive connections"),
    "close": ("New connection per request",
              "128-byte answer, 64 connections, `Connection: close` on every request"),
    "c1000": ("1 000 connections", "128-byte answer, 1 000 keep-alive connections"),
    "jwt": ("JWT route (HS256)",
            "ringgate's plain route and its `jwt:` route, the same valid token on every request "
            "(so the per-worker cache of verified tokens answers), 64 connections"),
    "ratelimit": ("Rate-limit route",
                  "ringgate's plain route, a `rate_limit:` route (key `ip`, a limit that never "
                  "refuses) and the same with `backend: redis` (a redis-server on the load side's "
                  "core, `on_redis_error: deny` so every 200 is Redis's verdict), 64 connections"),
    "schema": ("Schema route (1 KiB JSON POST)",
               "the same 1 KiB order POSTed to ringgate's plain route and to a `schema:` route "
               "(perf/schemas/order.json), 64 connections"),
    "tls": ("TLS listener",
            "128-byte answer over keep-alive TLS (wrk https, ECDSA P-256), 64 connections; "
            "ringgate's plain listener in the same round"),
    "cache": ("Cache hits",
              "128-byte answer stored by each proxy's cache (the origin says `max-age=3600`; "
              "ringgate `cache: true`, nginx `proxy_cache`, HAProxy `cache`), primed before the "
              "rounds so that every request is a hit, 64 connections; ringgate's plain route "
              "(to the origin) in the same round"),
    "workers": ("1 and 2 workers (not pinned)",
                "128-byte answer, 64 connections, wrk -t2; proxies, origin (2 workers) and wrk "
                "share both cores"),
}
THROUGHPUT = ["small", "16k", "1m", "close", "c1000"]
FILTERS = ["jwt", "ratelimit", "schema", "tls", "cache"]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def fmt(v, digits=0):
    if v != v:
        return "-"
    if digits == 0:
        return f"{v:,.0f}".replace(",", " ")
    return f"{v:.{digits}f}"


def ratio(a, b):
    return a / b if b and a == a and b == b else float("nan")


def xr(v):
    return "-" if v != v else f"x{v:.2f}"


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                meta[k] = v
    return meta


class Results:
    def __init__(self, d):
        self.dir = d
        self.meta = read_meta(os.path.join(d, "meta.tsv"))
        self.runs = read_tsv(os.path.join(d, "runs.tsv"))
        self.idle = read_tsv(os.path.join(d, "idle.tsv"))
        self.notes = []
        p = os.path.join(d, "notes.tsv")
        if os.path.exists(p):
            with open(p) as f:
                self.notes = [line.rstrip("\n").split("\t") for line in f if line.strip()]
        # (scenario, target) -> the rounds' rows, in file order
        self.by = {}
        self.order = {}
        for row in self.runs:
            key = (row["scenario"], row["target"])
            self.by.setdefault(key, []).append(row)
            self.order.setdefault(row["scenario"], [])
            if row["target"] not in self.order[row["scenario"]]:
                self.order[row["scenario"]].append(row["target"])

    def has(self, scen, target):
        return (scen, target) in self.by

    def m(self, scen, target, field):
        return med([num(r[field]) for r in self.by.get((scen, target), [])])

    def all(self, scen, target, field):
        return [num(r[field]) for r in self.by.get((scen, target), [])]

    def total(self, scen, target, field):
        return sum(num(r[field]) for r in self.by.get((scen, target), []))

    def n(self, scen, target):
        return len(self.by.get((scen, target), []))

    def idle_rows(self, proxy, big=False):
        return [r for r in self.idle if r["proxy"] == proxy and (r["round"] == "0") == big]

    def idle_m(self, proxy, field, big=False):
        return med([num(r[field]) for r in self.idle_rows(proxy, big)])


def bottleneck(res, scen, target):
    """One sentence on what set the pace of this target's runs (medians)."""
    proxy = res.m(scen, target, "proxy_cpu_pct")
    pinned = res.by[(scen, target)][0]["pinned"] == "1"
    workers = int(num(res.by[(scen, target)][0]["workers"]))
    load = res.m(scen, target, "origin_cpu_pct") + res.m(scen, target, "wrk_cpu_pct")
    if pinned:
        cpu0 = res.m(scen, target, "cpu0_busy_pct")
        cpu1 = res.m(scen, target, "cpu1_busy_pct")
        if proxy >= BUSY * workers:
            what = "proxy-bound: its core was full"
        elif cpu0 >= BUSY and load >= BUSY - 10:
            what = (f"load-bound: CPU 0 was {cpu0:.0f}% busy, wrk + origin {load:.0f}% of it, "
                    f"while the proxy used {proxy:.0f}% of CPU 1")
        elif cpu0 >= BUSY:
            what = (f"contended: CPU 0 was {cpu0:.0f}% busy but wrk + origin used only {load:.0f}% "
                    f"of it (other work took the rest); the proxy used {proxy:.0f}% of CPU 1")
        else:
            what = f"neither core full (CPU 0 {cpu0:.0f}%, proxy {proxy:.0f}% of CPU 1)"
        other = cpu1 - proxy
        if other >= 10:
            what += f"; CPU 1 was {cpu1:.0f}% busy, {other:.0f} points of it not the proxy (other work)"
        return what
    allb = res.m(scen, target, "all_busy_pct")
    if allb >= BUSY:
        return (f"load generator shares the cores: both CPUs {allb:.0f}% busy, wrk + origin "
                f"{load:.0f}% of a core, the proxy {proxy:.0f}%")
    return f"CPUs {allb:.0f}% busy, wrk + origin {load:.0f}% of a core, the proxy {proxy:.0f}%"


def verdict(ok):
    if ok is None:
        return "not judged"
    return "**met**" if ok else "**missed**"


def load_bound_note(res, s):
    """Says so when the load side, not ringgate, set the rate of a run."""
    if res.m(s, "ringgate", "cpu0_busy_pct") >= BUSY and res.m(s, "ringgate", "proxy_cpu_pct") < BUSY:
        return (" (CPU 0, wrk + origin, was full and ringgate's core was not: the load side "
                "set this rate, see below)")
    return ""


def bars(res):
    """The bar of issue #12: (item, figures, verdict) rows."""
    rows = []
    s = "small"
    if all(res.has(s, p) for p in PROXIES):
        c = {p: res.m(s, p, "cpu_us_per_req") for p in PROXIES}
        rn, rh = ratio(c["ringgate"], c["nginx"]), ratio(c["ringgate"], c["haproxy"])
        rows.append(("Small keep-alive GET: CPU-µs/request ≤ 0.6 × nginx's and ≤ 0.6 × HAProxy's",
                     f"ringgate {fmt(c['ringgate'], 2)}, nginx {fmt(c['nginx'], 2)}, HAProxy "
                     f"{fmt(c['haproxy'], 2)} µs: {xr(rn)} nginx, {xr(rh)} HAProxy",
                     verdict(rn <= 0.6 and rh <= 0.6)))
        a, b = res.m(s, "ringgate", "rps"), res.m(s, "nginx", "rps")
        rows.append(("Small keep-alive GET: requests/s ≥ nginx's",
                     f"{fmt(a)} vs {fmt(b)}: {xr(ratio(a, b))}{load_bound_note(res, s)}",
                     verdict(a >= b)))
        a, b = res.m(s, "ringgate", "p99_ms"), res.m(s, "nginx", "p99_ms")
        rows.append(("Small keep-alive GET: p99 ≤ nginx's",
                     f"{fmt(a, 2)} ms vs {fmt(b, 2)} ms: {xr(ratio(a, b))}", verdict(a <= b)))
    s = "1m"
    if res.has(s, "ringgate") and res.has(s, "nginx"):
        a, b = res.m(s, "ringgate", "mbps"), res.m(s, "nginx", "mbps")
        ca, cb = res.m(s, "ringgate", "cpu_us_per_req"), res.m(s, "nginx", "cpu_us_per_req")
        rows.append(("1 MiB responses: MB/s ≥ nginx's, at fewer CPU-µs/request",
                     f"{fmt(a)} vs {fmt(b)} MB/s ({xr(ratio(a, b))}); {fmt(ca)} vs {fmt(cb)} "
                     f"CPU-µs/request ({xr(ratio(ca, cb))})", verdict(a >= b and ca < cb)))
    s = "close"
    if res.has(s, "ringgate") and res.has(s, "nginx"):
        a, b = res.m(s, "ringgate", "rps"), res.m(s, "nginx", "rps")
        rows.append(("New connection per request: requests/s ≥ nginx's",
                     f"{fmt(a)} vs {fmt(b)}: {xr(ratio(a, b))}{load_bound_note(res, s)}",
                     verdict(a >= b)))
    if res.idle_rows("ringgate") and res.idle_rows("nginx"):
        a, b = res.idle_m("ringgate", "bytes_per_conn"), res.idle_m("nginx", "bytes_per_conn")
        rows.append(("Idle keep-alive connection: RSS growth ≤ nginx's (same run) and ≤ 256 B",
                     f"ringgate {fmt(a)} B, nginx {fmt(b)} B per connection",
                     verdict(a <= b and a <= 256)))
    big = res.idle_rows("ringgate", big=True)
    if big:
        n = int(num(big[0]["conns"]))
        alive = int(num(big[0]["alive"]))
        per = num(big[0]["bytes_per_conn"])
        if n >= 100000:
            rows.append(("100 000 idle connections fit",
                         f"{alive} of {n} stayed open; RSS +{fmt(per * n / 2**20, 1)} MiB "
                         f"({fmt(per)} B each)", verdict(alive == n)))
        else:
            rows.append(("100 000 idle connections fit",
                         f"only {n} could be opened here (descriptor limit, see Notes): {alive} of "
                         f"{n} stayed open at {fmt(per)} B each, so 100 000 would take about "
                         f"{fmt(per * 100000 / 2**20, 1)} MiB", "not judged (limit)"))
    s = "ratelimit"
    if res.has(s, "ringgate") and res.has(s, "ringgate-ratelimit"):
        # Issue #6: the local limiter costs under 5 % of throughput. The load
        # side sets requests/s here, so the cost is judged on CPU per request.
        a, b = res.m(s, "ringgate-ratelimit", "cpu_us_per_req"), res.m(s, "ringgate", "cpu_us_per_req")
        rows.append(("Local rate limiter costs < 5 % (issue #6): CPU-µs/request ≤ 1.05 × the plain route's",
                     f"{fmt(a, 2)} vs {fmt(b, 2)} µs: {xr(ratio(a, b))}", verdict(ratio(a, b) <= 1.05)))
    s = "workers"
    if res.has(s, "ringgate-1w") and res.has(s, "ringgate-2w"):
        a, b = res.m(s, "ringgate-2w", "rps"), res.m(s, "ringgate-1w", "rps")
        allb = res.m(s, "ringgate-2w", "all_busy_pct")
        load = res.m(s, "ringgate-2w", "origin_cpu_pct") + res.m(s, "ringgate-2w", "wrk_cpu_pct")
        if allb >= BUSY:
            rows.append(("2 workers on 2 cores ≥ 1.8 × 1 worker (where the load side is not the bottleneck)",
                         f"{fmt(a)} vs {fmt(b)} requests/s: {xr(ratio(a, b))}; the load generator "
                         f"is the bottleneck: both cores {allb:.0f}% busy, wrk + origin used "
                         f"{load:.0f}% of a core", "not judged (load-bound)"))
        else:
            rows.append(("2 workers on 2 cores ≥ 1.8 × 1 worker",
                         f"{fmt(a)} vs {fmt(b)} requests/s: {xr(ratio(a, b))}",
                         verdict(ratio(a, b) >= 1.8)))
    return rows


def table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def scenario_table(res, scen):
    mb = scen == "1m"
    head = ["target", "MB/s" if mb else "requests/s", "p50 ms", "p99 ms", "CPU-µs/request",
            "proxy CPU %", "origin + wrk CPU %", "CPU 0 busy %", "CPU 1 busy %", "peak RSS MiB",
            "errors"]
    if scen == "workers":
        head[7:9] = ["both CPUs busy %"]
    rows = []
    for t in res.order.get(scen, []):
        r = [f"`{t}`", fmt(res.m(scen, t, "mbps" if mb else "rps")),
             fmt(res.m(scen, t, "p50_ms"), 2), fmt(res.m(scen, t, "p99_ms"), 2),
             fmt(res.m(scen, t, "cpu_us_per_req"), 2), fmt(res.m(scen, t, "proxy_cpu_pct")),
             fmt(res.m(scen, t, "origin_cpu_pct") + res.m(scen, t, "wrk_cpu_pct"))]
        if scen == "workers":
            r.append(fmt(res.m(scen, t, "all_busy_pct")))
        else:
            r += [fmt(res.m(scen, t, "cpu0_busy_pct")), fmt(res.m(scen, t, "cpu1_busy_pct"))]
        rss = max(res.all(scen, t, "peak_rss_kb") or [float("nan")])
        errs = res.total(scen, t, "errors") + res.total(scen, t, "non2xx")
        r += [fmt(rss / 1024, 1), fmt(errs)]
        rows.append(r)
    return table(head, rows, ["---"] + ["---:"] * (len(head) - 1))


def ratio_lines(res, scen, a, others):
    mb = scen == "1m"
    lines = []
    for b in others:
        if not (res.has(scen, a) and res.has(scen, b)):
            continue
        rate = "mbps" if mb else "rps"
        lines.append(
            f"- `{a}` / `{b}`: {'MB/s' if mb else 'requests/s'} "
            f"{xr(ratio(res.m(scen, a, rate), res.m(scen, b, rate)))} (higher is better), "
            f"CPU-µs/request {xr(ratio(res.m(scen, a, 'cpu_us_per_req'), res.m(scen, b, 'cpu_us_per_req')))}, "
            f"p50 {xr(ratio(res.m(scen, a, 'p50_ms'), res.m(scen, b, 'p50_ms')))}, "
            f"p99 {xr(ratio(res.m(scen, a, 'p99_ms'), res.m(scen, b, 'p99_ms')))} (lower is better)")
    return lines


def report(res, charts):
    meta = res.meta
    out = []
    w = out.append
    w("# ringgate beside nginx and HAProxy: performance report")
    w("")
    w("Generated by `perf/report.py` from the raw results of `perf/harness.sh` (`make bench`) in "
      "this directory (`runs.tsv`: every wrk run of every round; `idle.tsv`: every idle-connection "
      "measurement; `meta.tsv`). Every figure is the **median over the rounds**; every verdict is "
      "computed from those medians. How each figure is measured: docs/performance.md.")
    w("")
    w(table(["", ""], [
        ["date", meta.get("date", "?")],
        ["machine", meta.get("host", "?")],
        ["load average at start / end", f"{meta.get('loadavg_start', '?')} / {meta.get('loadavg_end', '?')} "
         "(other work on the machine counts in it)"],
        ["rounds", f"{meta.get('rounds', '?')} × {meta.get('seconds', '?')} s per run (after "
         f"{meta.get('warmup', '?')} s of warm-up), targets interleaved and their order rotated "
         "each round; whole run {0} s".format(meta.get("elapsed_s", "?"))],
        ["pinning", meta.get("pinning", "?")],
        ["ringgate", meta.get("ringgate", "?")],
    ] + ([["ringgate-base (BASELINE_BIN)", meta["ringgate-base"]]] if "ringgate-base" in meta else []) + [
        ["nginx / HAProxy / wrk", f"{meta.get('nginx', '?')} / {meta.get('haproxy', '?')} / wrk "
         f"{meta.get('wrk', '?')}"],
        ["configurations", "1 worker each (nginx `worker_processes 1`, HAProxy `nbthread 1`, "
         "ringgate `workers: 1`), upstream keep-alive pools of 64, logs off, the same forwarding "
         "headers (X-Forwarded-For/-Proto/-Host, X-Request-Id), bodies in memory"],
    ], ["---", "---"]))
    w("")
    w("Quote the ratios rather than the absolute figures: the machine is shared, and with the "
      "proxy alone on one core, wrk and the origin share the other and usually set the pace. "
      "Then requests/s is the load side's, and **CPU-µs per request** (the proxy's user+system "
      "time over the run divided by the requests) is the figure that shows the difference "
      "between the proxies.")
    w("")

    w("## The bar of issue #12")
    w("")
    b = bars(res)
    if b:
        w(table(["item", "this run (medians)", "verdict"], b, ["---", "---", "---"]))
    else:
        w("No scenario of the bar was run.")
    w("")

    if charts:
        w("## At a glance")
        w("")
        for name, alt in charts:
            w(f"![{alt}]({name})")
            w("")

    sections = [s for s in THROUGHPUT + FILTERS + ["workers"] if s in res.order]
    if sections:
        w("## Scenarios")
        w("")
        w("Columns: requests/s (MB/s for 1 MiB: 10^6 bytes of body per second), wrk's p50 and p99 "
          "latency, the proxy's CPU-µs per request, the proxy's CPU (% of one core), the origin's "
          "and wrk's CPU together (% of one core), how busy each CPU was over the run (all "
          "processes, from /proc/stat), the proxy's peak RSS (VmHWM, reset before each run; all "
          "its processes), and errors (wrk's socket errors and non-2xx answers, all rounds).")
        w("")
    for s in sections:
        title, what = SCENARIOS[s]
        w(f"### {title}")
        w("")
        w(what + ".")
        w("")
        w(scenario_table(res, s))
        w("")
        lines = []
        if s in THROUGHPUT:
            lines = ratio_lines(res, s, "ringgate", ["nginx", "haproxy", "ringgate-base"])
        elif s in ("tls", "cache"):
            lines = ratio_lines(res, s, f"ringgate-{s}", [f"nginx-{s}", f"haproxy-{s}", "ringgate"])
        elif s == "schema":
            lines = ratio_lines(res, s, "ringgate-schema", ["ringgate-post"])
        elif s in ("jwt", "ratelimit"):
            lines = ratio_lines(res, s, f"ringgate-{s}", ["ringgate"])
            if s == "ratelimit" and res.has(s, "ringgate-ratelimit-redis"):
                lines += ratio_lines(res, s, "ringgate-ratelimit-redis", ["ringgate"])
        elif s == "workers":
            for p in ("ringgate", "nginx"):
                a, c = f"{p}-2w", f"{p}-1w"
                if res.has(s, a) and res.has(s, c):
                    lines.append(f"- `{a}` / `{c}`: requests/s "
                                 f"{xr(ratio(res.m(s, a, 'rps'), res.m(s, c, 'rps')))}, CPU-µs/request "
                                 f"{xr(ratio(res.m(s, a, 'cpu_us_per_req'), res.m(s, c, 'cpu_us_per_req')))}")
            for p in ("ringgate-2w", "nginx-2w"):
                if res.has(s, p) and res.has(s, "ringgate-2w"):
                    pass
            if res.has(s, "ringgate-2w") and res.has(s, "nginx-2w"):
                lines += ratio_lines(res, s, "ringgate-2w", ["nginx-2w"])
        if s in FILTERS:
            base = "ringgate-post" if s == "schema" else "ringgate"
            filt = f"ringgate-{s}"
            what = {"tls": "the TLS listener", "cache": "a cache hit"}.get(s, "the filter")
            if res.has(s, base) and res.has(s, filt):
                d = res.m(s, filt, "cpu_us_per_req") - res.m(s, base, "cpu_us_per_req")
                lines.append(f"- cost of {what}: {d:+.2f} CPU-µs per request over ringgate's "
                             "plain route in the same rounds")
        for line in lines:
            w(line)
        w("")
        w("What set the pace (medians):")
        w("")
        for t in res.order.get(s, []):
            w(f"- `{t}`: {bottleneck(res, s, t)}")
        w("")

    if res.idle:
        w("## Memory per idle keep-alive connection")
        w("")
        w("A fresh proxy (pinned like the others), warmed up by 1 s of wrk on 64 connections, "
          "then N clients (`perf/idle_clients.c`, at most 50 being opened at once) that each make "
          "one request and stay connected, idle; **bytes per connection** is the growth of the "
          "proxy's RSS (VmRSS of all its processes) from before the first to 1 s after the last, "
          "divided by N (the figure of the bar). The clients pause half-way: **second half** is "
          "the growth over the second N/2 alone, the cost of one more idle connection without "
          "anything set up once. Kernel socket memory is in neither (it is the same for all).")
        w("")
        rows = []
        base = res.idle_m("nginx", "bytes_per_conn")
        for p in PROXIES:
            rr = res.idle_rows(p)
            if not rr:
                continue
            per = res.idle_m(p, "bytes_per_conn")
            rows.append([f"`{p}`", fmt(max(num(r["conns"]) for r in rr)),
                         fmt(min(num(r["alive"]) for r in rr)),
                         fmt(res.idle_m(p, "rss_before_kb") / 1024, 1),
                         fmt(res.idle_m(p, "rss_after_kb") / 1024, 1), fmt(per),
                         " ".join(fmt(num(r["bytes_per_conn"])) for r in rr),
                         fmt(res.idle_m(p, "marginal_bytes_per_conn")),
                         xr(ratio(per, base)), fmt(res.idle_m(p, "open_secs"), 2)])
        w(table(["proxy", "connections", "still open (fewest)", "RSS before MiB", "RSS after MiB",
                 "bytes per connection", "each round", "second half, bytes per connection",
                 "/ nginx", "seconds to open"], rows))
        w("")
        big = res.idle_rows("ringgate", big=True)
        if big:
            r = big[0]
            n = int(num(r["conns"]))
            w(f"ringgate alone with {n} idle connections (`idle100k`): {r['alive']} stayed open, "
              f"{r['failed']} failed; RSS {fmt(num(r['rss_before_kb']) / 1024, 1)} → "
              f"{fmt(num(r['rss_after_kb']) / 1024, 1)} MiB, {fmt(num(r['bytes_per_conn']))} bytes "
              f"per connection, opened in {r['open_secs']} s.")
            w("")

    if res.notes:
        w("## Notes")
        w("")
        for n in res.notes:
            rnd, scen, target, text = (n + ["", "", "", ""])[:4]
            where = f"round {rnd}, " if rnd not in ("0", "") else ""
            w(f"- {where}{scen}{', ' + target if target not in ('-', '') else ''}: {text}")
        w("")
    return "\n".join(out)


def charts(res, d):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    plt.rcParams.update({"font.size": 10, "axes.spines.top": False, "axes.spines.right": False})

    def grouped(fname, field, title, unit, better, alt):
        scen = [s for s in THROUGHPUT + ["tls", "cache"] if s in res.order]
        if not scen:
            return
        cols = 3
        rows = (len(scen) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(12, 3.6 * rows), squeeze=False)
        for i, s in enumerate(scen):
            ax = axes[i // cols][i % cols]
            names = ["ringgate", "nginx", "haproxy"]
            targets = [n + ("-" + s if s in ("tls", "cache") else "") for n in names]
            f = "mbps" if (s == "1m" and field == "rps") else field
            vals = [res.m(s, t, f) for t in targets]
            lows = [min(res.all(s, t, f) or [float("nan")]) for t in targets]
            highs = [max(res.all(s, t, f) or [float("nan")]) for t in targets]
            err = [[max(v - lo, 0) if v == v else 0 for v, lo in zip(vals, lows)],
                   [max(hi - v, 0) if v == v else 0 for v, hi in zip(vals, highs)]]
            bars_ = ax.bar(names, [v if v == v else 0 for v in vals], yerr=err, capsize=4,
                           color=[COLORS[n] for n in names])
            for bar, v in zip(bars_, vals):
                if v == v:  # inside the bar, clear of the whiskers
                    label = f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"
                    ax.annotate(label, (bar.get_x() + bar.get_width() / 2, bar.get_height() / 2),
                                ha="center", va="center", fontsize=10, color="white",
                                fontweight="bold")
            u = "MB/s" if f == "mbps" else unit
            ax.set_title(f"{SCENARIOS[s][0]} ({u})", fontsize=10)
            ax.margins(y=0.18)
        for j in range(len(scen), rows * cols):
            axes[j // cols][j % cols].axis("off")
        fig.suptitle(f"{title} ({better}; median of {res.meta.get('rounds', '?')} rounds, "
                     "whiskers: min-max)", fontsize=12)
        fig.tight_layout()
        fig.savefig(os.path.join(d, fname), dpi=100)
        plt.close(fig)
        made.append((fname, alt))

    grouped("cpu_per_request.png", "cpu_us_per_req", "Proxy CPU-µs per request", "CPU-µs",
            "lower is better", "CPU microseconds per request, by scenario and proxy")
    grouped("throughput.png", "rps", "Requests per second", "requests/s", "higher is better",
            "Requests per second (1 MiB: MB/s), by scenario and proxy")
    grouped("latency_p99.png", "p99_ms", "p99 latency", "ms", "lower is better",
            "p99 latency, by scenario and proxy")

    # Filter paths: ringgate's plain route beside each filter route.
    pairs = [(s, b, f) for s, b, f in [("jwt", "ringgate", "ringgate-jwt"),
                                       ("ratelimit", "ringgate", "ringgate-ratelimit"),
                                       ("schema", "ringgate-post", "ringgate-schema"),
                                       ("tls", "ringgate", "ringgate-tls"),
                                       ("cache", "ringgate", "ringgate-cache")]
             if res.has(s, b) and res.has(s, f)]
    if pairs:
        fig, ax = plt.subplots(figsize=(9, 1.8 + 0.9 * len(pairs)))
        labels = {"jwt": "JWT (HS256, cached)", "ratelimit": "rate limit (ip)",
                  "schema": "schema (1 KiB POST)", "tls": "TLS listener",
                  "cache": "cache hit (no origin)"}
        y = list(range(len(pairs)))
        plain = [res.m(s, b, "cpu_us_per_req") for s, b, _ in pairs]
        filt = [res.m(s, f, "cpu_us_per_req") for s, _, f in pairs]
        ax.barh([i + 0.2 for i in y], plain, height=0.4, color="#bbbbbb", label="plain route, same rounds")
        ax.barh([i - 0.2 for i in y], filt, height=0.4, color=COLORS["ringgate"], label="with the filter")
        for i, (p, f) in enumerate(zip(plain, filt)):
            ax.annotate(f"{p:.1f}", (p, i + 0.2), va="center", fontsize=9, xytext=(3, 0), textcoords="offset points")
            ax.annotate(f"{f:.1f} ({f - p:+.1f})", (f, i - 0.2), va="center", fontsize=9, xytext=(3, 0),
                        textcoords="offset points")
        ax.set_yticks(y)
        ax.set_yticklabels([labels[s] for s, _, _ in pairs])
        ax.invert_yaxis()
        ax.set_xlabel("ringgate CPU-µs per request (lower is better)")
        ax.margins(x=0.25)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=9, frameon=False)
        ax.set_title("Cost of ringgate's filter paths")
        fig.tight_layout()
        fig.savefig(os.path.join(d, "filters.png"), dpi=100)
        plt.close(fig)
        made.append(("filters.png", "ringgate CPU per request with and without each filter"))

    if res.idle:
        names = [p for p in PROXIES if res.idle_rows(p)]
        vals = [res.idle_m(p, "bytes_per_conn") for p in names]
        fig, ax = plt.subplots(figsize=(7, 3.6))
        bs = ax.bar(names, vals, color=[COLORS[p] for p in names])
        for bar, v in zip(bs, vals):
            ax.annotate(f"{v:,.0f} B", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
        ax.axhline(256, color="#d62728", linestyle="--", linewidth=1, label="256 B: the bar of issue #12")
        ax.legend(loc="upper right", fontsize=9, frameon=False)
        ax.set_ylabel("RSS growth per idle connection (bytes)")
        ax.set_title(f"Memory per idle keep-alive connection ({res.meta.get('idle_n', '?')} clients; lower is better)",
                     fontsize=10)
        ax.margins(y=0.18)
        fig.tight_layout()
        fig.savefig(os.path.join(d, "idle_memory.png"), dpi=100)
        plt.close(fig)
        made.append(("idle_memory.png", "RSS growth per idle keep-alive connection"))

    if "workers" in res.order:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        xs, vals, cols = [], [], []
        for p in ("ringgate", "nginx"):
            for w_ in ("1w", "2w"):
                t = f"{p}-{w_}"
                if res.has("workers", t):
                    xs.append(f"{p}\n{w_[0]} worker{'s' if w_ == '2w' else ''}")
                    vals.append(res.m("workers", t, "rps"))
                    cols.append(COLORS[p] if w_ == "2w" else "#cccccc")
        bs = ax.bar(xs, vals, color=cols)
        for bar, v in zip(bs, vals):
            ax.annotate(f"{v:,.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
        ax.set_ylabel("requests/s")
        ax.set_title("1 and 2 workers, not pinned (wrk and the origin share the 2 cores)", fontsize=10)
        ax.margins(y=0.18)
        fig.tight_layout()
        fig.savefig(os.path.join(d, "workers.png"), dpi=100)
        plt.close(fig)
        made.append(("workers.png", "requests per second with 1 and 2 workers"))
    return made


def main(argv):
    args = [a for a in argv[1:] if a != "--no-charts"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    d = args[0]
    res = Results(d)
    made = []
    if "--no-charts" not in argv:
        try:
            made = charts(res, d)
        except ImportError:
            print("report.py: no matplotlib (python3-matplotlib): no charts", file=sys.stderr)
    text = report(res, made)
    with open(os.path.join(d, "REPORT.md"), "w") as f:
        f.write(text + "\n")
    print(f"report.py: wrote {os.path.join(d, 'REPORT.md')} and {len(made)} chart(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
