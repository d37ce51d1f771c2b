#!/usr/bin/env python3
"""bench/readahead_flood.py - memory a flood of waiting clients can take.

Starts cachifyd (the binary given) on a free loopback port, takes lock `k`
on a control connection, then opens N connections that each send
`ACQUIRE k WAIT FOREVER` and pipeline PINGs behind it as fast as the daemon
takes them, for at most --seconds (or until no connection made progress
for --stall seconds: everything left waits in the kernel's buffers).
Meanwhile a separate process PINGs the daemon every 10 ms on its own
connection and keeps the worst round trip, and the daemon's VmRSS is
sampled.  Then every flood connection is closed and VmRSS is read again
after --settle seconds.  Prints one line of figures (and JSON with --json).

With --per-conn each connection pipelines at most that many bytes (72 KiB
stays under the point where the daemon drops a waiter, so it shows what
waiters that stay queued cost).  Loopback only, bounded in time; needs `ulimit -n` above N (raised to the
hard limit here).  Used for docs/security.md, "Memory a client can take":

    python3 bench/readahead_flood.py --bin build/cachifyd --conns 2000
"""
import argparse
import json
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time

PING_CHUNK = b"PING\r\n" * (64 * 1024 // 6)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_status(pid, key):
    """VmRSS / VmHWM of pid in KiB, or -1."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def read_reply(sock):
    buf = b""
    while b"\r\n" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"STATS\r\n")
        buf = b""
        while True:
            buf += s.recv(65536)
            head, _, body = buf.partition(b"\r\n")
            if head.startswith(b"$") and len(body) >= int(head[1:]) + 2:
                return json.loads(body[: int(head[1:])])


def pinger(port, stop_fd, out_fd):
    """Child process: PING every 10 ms until stop_fd is readable; writes the
    worst round trip in ms to out_fd."""
    worst, n = 0.0, 0
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    sel = selectors.DefaultSelector()
    sel.register(stop_fd, selectors.EVENT_READ)
    while not sel.select(timeout=0.01):
        t0 = time.monotonic()
        s.sendall(b"PING\r\n")
        read_reply(s)
        worst = max(worst, (time.monotonic() - t0) * 1e3)
        n += 1
    os.write(out_fd, json.dumps({"ping_max_ms": worst, "pings": n}).encode())
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="cachifyd binary")
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=60.0,
                    help="longest flood (default 60)")
    ap.add_argument("--stall", type=float, default=3.0,
                    help="end the flood after this long without progress")
    ap.add_argument("--settle", type=float, default=3.0,
                    help="seconds before VmRSS is read, after the flood and "
                    "after the closes (default 3)")
    ap.add_argument("--per-conn", type=int, default=0,
                    help="bytes each connection pipelines at most "
                    "(default 0: as much as the daemon takes)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("extra", nargs="*", help="more daemon arguments (after --)")
    a = ap.parse_args()

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.conns + 64:
        sys.exit(f"ulimit -n hard limit {hard} is too low for {a.conns}")

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="flood-", suffix=".log",
                                      delete=False)
    daemon = subprocess.Popen(
        [a.bin, "--bind", "127.0.0.1", "--port", str(port),
         "--maxclients", str(a.conns + 100), "--loglevel", "warning"]
        + a.extra, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ctl = socket.create_connection(("127.0.0.1", port), timeout=30)
                break
            except OSError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"daemon did not start, see {log.name}")
                time.sleep(0.05)
        ctl.sendall(b"ACQUIRE k TTL FOREVER\r\n")
        read_reply(ctl)
        rss_start = proc_status(daemon.pid, "VmRSS")

        stop_r, stop_w = os.pipe()
        out_r, out_w = os.pipe()
        child = os.fork()
        if child == 0:
            pinger(port, stop_r, out_w)

        sel = selectors.DefaultSelector()
        conns = []
        for _ in range(a.conns):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(b"ACQUIRE k WAIT FOREVER\r\n")
            s.setblocking(False)
            conns.append(s)
            sel.register(s, selectors.EVENT_WRITE)
        t0 = time.monotonic()
        last_progress, sent, dropped, rss_peak = t0, 0, 0, 0
        left = {s: a.per_conn or float("inf") for s in conns}
        while sel.get_map():
            now = time.monotonic()
            if now - t0 > a.seconds or now - last_progress > a.stall:
                break
            for key, _ in sel.select(timeout=0.2):
                chunk = PING_CHUNK
                if left[key.fileobj] < len(chunk):
                    chunk = chunk[: int(left[key.fileobj])]
                try:
                    n = key.fileobj.send(chunk)
                except BlockingIOError:
                    continue
                except OSError:  # the daemon dropped it
                    sel.unregister(key.fileobj)
                    dropped += 1
                    continue
                if n > 0:
                    sent += n
                    left[key.fileobj] -= n
                    last_progress = time.monotonic()
                    if left[key.fileobj] <= 0:
                        sel.unregister(key.fileobj)
            rss_peak = max(rss_peak, proc_status(daemon.pid, "VmRSS"))
        flood_s = time.monotonic() - t0
        # What was sent last may not be read yet: let the daemon catch up.
        time.sleep(a.settle)
        rss_flood = proc_status(daemon.pid, "VmRSS")
        st = stats(port)
        waiters = st.get("waiters", -1)
        buffered = st.get("client_buffer_bytes", -1)
        budget_closed = st.get("budget_closed_clients", -1)
        for s in conns:
            s.close()
        time.sleep(a.settle)
        rss_after = proc_status(daemon.pid, "VmRSS")
        hwm = proc_status(daemon.pid, "VmHWM")
        waiters_after = stats(port).get("waiters", -1)
        os.write(stop_w, b"x")
        os.waitpid(child, 0)
        ping = json.loads(os.read(out_r, 4096))
        ctl.close()
    finally:
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(timeout=60)
    res = {
        "conns": a.conns, "per_conn": a.per_conn, "flood_s": round(flood_s, 1),
        "sent_mib": round(sent / 2**20, 1), "dropped": dropped,
        "waiters_during": waiters, "client_buffer_bytes": buffered,
        "budget_closed_clients": budget_closed,
        "rss_start_mib": round(rss_start / 1024, 1),
        "rss_flood_mib": round(max(rss_flood, rss_peak) / 1024, 1),
        "vmhwm_mib": round(hwm / 1024, 1),
        "rss_after_close_mib": round(rss_after / 1024, 1),
        "waiters_after_close": waiters_after,
        "ping_max_ms": round(ping["ping_max_ms"], 1), "pings": ping["pings"],
        "exit": rc,
    }
    if a.json:
        print(json.dumps(res))
    else:
        print(" ".join(f"{k}={v}" for k, v in res.items()))
    os.unlink(log.name)


if __name__ == "__main__":
    main()
