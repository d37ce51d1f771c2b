#!/usr/bin/python3
"""bench/summarize.py - turns bench/run.sh's results.tsv into the summary.

Owns: medians, ratios against the targets, the gnuplot picture and the
generated part of docs/performance.md (between the BEGIN/END markers; the
hand-written text around them is kept).  Does not own: running anything
but gnuplot.

usage: summarize.py RESULTS.tsv DOC.md BENCH.png OUTDIR WRITE(0|1)
"""
import csv
import datetime
import os
import platform
import statistics
import subprocess
import sys

BEGIN = "<!-- BEGIN make bench output -->"
END = "<!-- END make bench output -->"


def kv(text):
    out = {}
    for word in text.split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k] = v
    return out


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def med(rows, wl, server, field="ops_per_s"):
    v = [float(r[field]) for r in rows
         if r["workload"] == wl and r["server"] == server]
    return (statistics.median(v), v) if v else (None, [])


def med_extra(rows, wl, server, key):
    v = [float(kv(r["extra"])[key]) for r in rows
         if r["workload"] == wl and r["server"] == server
         and key in kv(r["extra"])]
    return statistics.median(v) if v else None


def versus(rows, wl, server):
    """(ops/s, cpu us/op) medians of server and of Redis for workload wl:
    (a, b, ca, cb), or None when either is missing."""
    a, _ = med(rows, wl, server)
    b, _ = med(rows, wl, "redis")
    if a is None or b is None:
        return None
    ca, _ = med(rows, wl, server, "cpu_us_per_op")
    cb, _ = med(rows, wl, "redis", "cpu_us_per_op")
    return a, b, ca, cb


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def redis_version():
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True,
                             text=True).stdout
        return out.split("v=")[1].split()[0]
    except (OSError, IndexError):
        return "unknown"


def busy_poll():
    return os.environ.get("BENCH_BUSY_POLL_US", "0")


def fmt_ops(x):
    return "-" if x is None else f"{x:,.0f}"


def main():
    results, doc, png, outdir, write = sys.argv[1:6]
    rows = load(results)
    lines = []
    say = lines.append
    loads = [float(r["load1"]) for r in rows if r["load1"]]
    # When the runs ended (the results file's last write), not when this
    # summary was drawn: the two differ when it is re-run on old results.
    now = datetime.datetime.fromtimestamp(os.path.getmtime(results),
                                          datetime.timezone.utc)

    say(f"Run: `make bench` on {now:%Y-%m-%d %H:%M} UTC; "
        f"{os.cpu_count()} cores ({cpu_model()}), kernel {platform.release()}, "
        f"redis-server {redis_version()}, redis-benchmark from the same "
        f"package. Load average (1 min) seen at the start of the runs: "
        f"min {min(loads):.2f}, median {statistics.median(loads):.2f}, "
        f"max {max(loads):.2f}." if loads else "Run: `make bench`.")
    say("")

    # ---- throughput ----
    # (workload, title, CPU ratio target, ops/s ratio target)
    pairs = [
        ("acquire_c50", "ACQUIRE vs SET NX PX, 50 clients", "<= 0.75", ">= 1.05"),
        ("acquire_c50_p32", "ACQUIRE vs SET NX PX, 50 clients, -P 32", "", ">= 1.50"),
        ("is_locked", "IS_LOCKED vs EXISTS, 50 clients", "<= 0.80", ""),
        ("release", "RELEASE vs DEL, 50 clients", "<= 0.80", ""),
        ("set_nx_ex", "SET NX EX on both (fresh keys), 50 clients", "", ""),
        ("get", "GET on both (keys holding 3-byte values), 50 clients", "", ""),
        ("acquire_c1", "ACQUIRE vs SET NX PX, 1 client", "", ""),
        ("acquire_c10", "ACQUIRE vs SET NX PX, 10 clients", "", ""),
        ("acquire_c200", "ACQUIRE vs SET NX PX, 200 clients", "", ""),
        ("tls_acquire_c50", "ACQUIRE vs SET NX PX over TLS (client "
         "certificates), 50 clients", "", ""),
    ]
    say("### Server CPU per request, and throughput (medians of interleaved "
        "runs, fresh servers each run)")
    say("")
    say("The headline is the server's CPU time per request (user + kernel, "
        "from `/proc/PID/stat`): what a request costs the machine that runs "
        "the server, whatever the load generator can do.  On this 2-core box "
        "redis-benchmark fills one core before either server does, so ops/s "
        "mostly measures the load generator.  cachifyd runs with "
        f"`busy_poll_us {busy_poll()}`"
        f"{' (the shipped default)' if busy_poll() == '0' else ''}.")
    say("")
    say("| workload | cachifyd cpu us/req | Redis cpu us/req | cpu ratio | "
        "target | cachifyd ops/s | Redis ops/s | ops ratio | target |")
    say("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |")
    summary = {}
    for wl, title, cpu_target, target in pairs:
        v = versus(rows, wl, "cachifyd")
        if v is None:
            continue
        a, b, ca, cb = v
        ratio = a / b
        summary[wl] = ratio
        say(f"| {title} | {ca:.2f} | {cb:.2f} | **{ca / cb:.2f}x** | "
            f"{cpu_target} | {fmt_ops(a)} | {fmt_ops(b)} | {ratio:.2f}x | "
            f"{target} |")
    say("")
    if any(r["server"] == "cachifyd-default" for r in rows):
        say("The same ACQUIRE runs with busy polling off (`busy_poll_us 0`, "
            "the shipped default):")
        say("")
        say("| workload | cpu us/req | cpu ratio | ops/s | ops ratio |")
        say("| --- | ---: | ---: | ---: | ---: |")
        for wl, title, _, _ in pairs:
            v = versus(rows, wl, "cachifyd-default")
            if v is None:
                continue
            a, b, ca, cb = v
            say(f"| {title} | {ca:.2f} | {ca / cb:.2f}x | {fmt_ops(a)} | "
                f"{a / b:.2f}x |")
        say("")
    say("Where the CPU goes per request (medians, microseconds): the server's "
        "user and kernel time, and the load generator's (redis-benchmark, "
        "user + kernel), which is the same program for both servers.")
    say("")
    say("| workload | server | server user | server kernel | redis-benchmark |")
    say("| --- | --- | ---: | ---: | ---: |")
    for wl, title, _, _ in pairs:
        for s in ("cachifyd", "cachifyd-default", "redis", "cachifyd-ping"):
            u = med_extra(rows, wl, s, "server_user_us")
            k = med_extra(rows, wl, s, "server_sys_us")
            c = med_extra(rows, wl, s, "client_us")
            if u is None:
                continue
            name = {"cachifyd-ping": "cachifyd PING",
                    "cachifyd-default": "cachifyd, busy_poll_us 0"}.get(s, s)
            say(f"| {title} | {name} | {u:.2f} | {k:.2f} | {c:.2f} |")
    say("")
    say("| workload | ACQUIRE ops/s | PING ops/s | ratio | target |")
    say("| --- | ---: | ---: | ---: | --- |")
    for wl, title in (("acquire_c50", "50 clients"),
                      ("acquire_c50_p32", "50 clients, -P 32")):
        a, _ = med(rows, wl, "cachifyd")
        p, _ = med(rows, wl, "cachifyd-ping")
        if a is None or p is None:
            continue
        summary[wl + "_vs_ping"] = a / p
        say(f"| cachifyd ACQUIRE vs its own PING, {title} | {fmt_ops(a)} | "
            f"{fmt_ops(p)} | {a / p:.2f}x | "
            f"{'>= 0.95' if wl == 'acquire_c50' else ''} |")
    say("")

    # ---- system calls ----
    sc = [r for r in rows if "sc_total" in kv(r["extra"])]
    if sc:
        say("### System calls per request")
        say("")
        say("Counted in the first round of each workload, in the same runs "
            "as the figures above, with `perf stat` on the kernel's syscall "
            "tracepoints of the server process (a counter per call, not "
            "strace's stop per call).  The counts cover the whole "
            "redis-benchmark run (its 50 connects and closes included), "
            "divided by the requests.")
        say("")
        say("| workload | server | total | read, readv, recvfrom | "
            "write, writev, sendto | ioctl | epoll_wait | epoll_ctl | other |")
        say("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        names = {"cachifyd-ping": "cachifyd PING",
                 "cachifyd-default": "cachifyd, busy_poll_us 0"}
        for wl, title, _, _ in pairs:
            for r in sc:
                if r["workload"] != wl:
                    continue
                e = {k[3:]: float(v) for k, v in kv(r["extra"]).items()
                     if k.startswith("sc_")}
                rd = sum(e.get(k, 0) for k in ("read", "readv", "recvfrom"))
                wr = sum(e.get(k, 0) for k in ("write", "writev", "sendto"))
                ep = e.get("epoll_wait", 0) + e.get("epoll_pwait", 0)
                other = e["total"] - rd - wr - ep - e.get("ioctl", 0) - \
                    e.get("epoll_ctl", 0)
                say(f"| {title} | {names.get(r['server'], r['server'])} | "
                    f"**{e['total']:.2f}** | {rd:.2f} | {wr:.2f} | "
                    f"{e.get('ioctl', 0):.2f} | {ep:.3f} | "
                    f"{e.get('epoll_ctl', 0):.3f} | {other:.3f} |")
        say("")
        say("Target for ACQUIRE, 50 clients: <= 2.05 system calls per request.")
        say("")

    # ---- memory ----
    for wl, title, target in (
            ("memory", "holding 1,000,000 locks (keys `lock:<i>`, TTL 600 s; "
             "ACQUIRE on cachifyd, SET NX PX on Redis)", " (target <= 0.50x)"),
            ("memory_key30", "holding 1,000,000 locks with 30-byte keys "
             "(`lock:<12 digits>:<12 digits>`, as redis-benchmark's "
             "`lock:__rand_int__:__rand_int__`; loaded over 50 connections)",
             " (target <= 0.45x)"),
            ("memory_values", "1,000,000 entries with 100-byte values (keys "
             "`key:<i>`, `SET key <100 bytes> NX PX 600000` on both)", "")):
        mem = {}
        for r in rows:
            if r["workload"] == wl:
                mem.setdefault(r["server"], []).append(kv(r["extra"]))
        if not mem:
            continue
        say(f"### Memory: RSS growth {title}")
        say("")
        say("| server | RSS growth per run (kB) | median | bytes/entry |")
        say("| --- | --- | ---: | ---: |")
        meds = {}
        for s in ("cachifyd", "redis"):
            g = [int(x["growth_kb"]) for x in mem.get(s, [])]
            held = int(mem[s][0].get("held", "0") or 0) if mem.get(s) else 0
            if not g:
                continue
            meds[s] = statistics.median(g)
            per = meds[s] * 1024 / held if held else 0
            say(f"| {s} | {', '.join(map(str, g))} | {meds[s]:,.0f} | {per:.0f} |")
        if "cachifyd" in meds and "redis" in meds:
            summary[wl] = meds["cachifyd"] / meds["redis"]
            say("")
            say(f"cachifyd / Redis growth: **{summary[wl]:.2f}x**{target}.")
        say("")

    # ---- storm ----
    storm = {r["server"]: kv(r["extra"]) for r in rows if r["workload"] == "storm"}
    if storm:
        say("### Expiry storm: 1,000,000 locks expiring at the same instant")
        say("")
        say("PING round trips from the expiry instant until the server held no key "
            "(one client, back-to-back PINGs).")
        say("")
        say("| server | storm length (ms) | PINGs | p50 (us) | p99 (us) | max (us) |")
        say("| --- | ---: | ---: | ---: | ---: | ---: |")
        for s, v in storm.items():
            say(f"| {s} | {v.get('storm_ms')} | {v.get('samples')} | "
                f"{v.get('p50_us')} | {v.get('p99_us')} | {v.get('max_us')} |")
        say("")
        say("Targets for cachifyd: p99 <= 5,000 us, max <= 20,000 us.")
        say("")

    # ---- handoff ----
    hand = {r["server"]: kv(r["extra"]) for r in rows if r["workload"] == "handoff"}
    if hand:
        say("### Handoff: RELEASE sent -> the next owner has the lock")
        say("")
        say("| how | samples | p50 (us) | p99 (us) | max (us) |")
        say("| --- | ---: | ---: | ---: | ---: |")
        names = {"cachifyd": "cachifyd, queued `ACQUIRE k WAIT`",
                 "redis-poll100ms": "Redis, SET NX polled every 100 ms (py-cachify style)"}
        for s, v in hand.items():
            say(f"| {names.get(s, s)} | {v.get('samples')} | {v.get('p50_us')} | "
                f"{v.get('p99_us')} | {v.get('max_us')} |")
        say("")
        say("Target for cachifyd: p50 <= 100 us.")
        say("")

    # ---- raw ----
    say("### Raw runs")
    say("")
    say("<details><summary>every run (ops/s, server CPU per request, load average)</summary>")
    say("")
    say("| workload | server | round | clients | -P | ops/s | cpu us/op | load1 | extra |")
    say("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        say(f"| {r['workload']} | {r['server']} | {r['round']} | {r['clients']} | "
            f"{r['pipeline']} | {r['ops_per_s']} | {r['cpu_us_per_op']} | "
            f"{r['load1']} | {r['extra']} |")
    say("")
    say("</details>")
    say("")
    say("![ops/s against clients](bench.png)")

    text = "\n".join(lines)
    print(text)

    # ---- picture ----
    dat = os.path.join(outdir, "sweep.dat")
    with open(dat, "w") as f:
        f.write("# clients cachifyd redis cachifyd-default\n")
        for c in (1, 10, 50, 200):
            a, _ = med(rows, f"acquire_c{c}", "cachifyd")
            b, _ = med(rows, f"acquire_c{c}", "redis")
            d, _ = med(rows, f"acquire_c{c}", "cachifyd-default")
            if a is not None and b is not None:
                f.write(f"{c} {a:.0f} {b:.0f} "
                        f"{'NaN' if d is None else f'{d:.0f}'}\n")
    if write != "1":
        return
    gp = f"""
set terminal pngcairo size 900,540 font ",11"
set output '{png}'
set title "ACQUIRE (cachifyd) vs SET NX PX (Redis {redis_version()}), no pipelining, medians"
set xlabel "clients (redis-benchmark -c)"
set ylabel "requests per second"
set logscale x
set xrange [0.8:260]
set yrange [0:*]
set xtics (1, 10, 50, 200)
set format y "%.0s%c"
set key right bottom
set grid
plot '{dat}' using 1:2 with linespoints lw 2 pt 7 title "cachifyd ACQUIRE, busy_poll_us {busy_poll()}" noenhanced, \\
     '{dat}' using 1:4 with linespoints lw 2 pt 6 dt 2 title "cachifyd ACQUIRE, busy_poll_us 0 (default)" noenhanced, \\
     '{dat}' using 1:3 with linespoints lw 2 pt 5 title "redis-server SET NX PX"
"""
    subprocess.run(["gnuplot"], input=gp, text=True, check=True)

    block = f"{BEGIN}\n{text}\n{END}"
    try:
        with open(doc) as f:
            old = f.read()
    except FileNotFoundError:
        old = "# cachifyd performance\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        new = head + block + tail
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    with open(doc, "w") as f:
        f.write(new)
    print(f"\nwrote {doc} and {png}")


if __name__ == "__main__":
    main()
