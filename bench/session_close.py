#!/usr/bin/env python3
"""bench/session_close.py - how long other clients wait while cachifyd lets go
of a closed connection's SESSION locks, and how much memory it gives back.

Owns: one measurement, printed as one line of figures.  Starts the daemon
given with --bin on a free port, takes --locks SESSION locks (TTL FOREVER)
on one connection, optionally queues --waiters connections each waiting
without bound on one of those keys, then closes the holder while another
connection sends a PING every ~1 ms and times each round trip.  Reports
the max and p99 of those PINGs from the close until 300 ms after every
lock was let go (STATS locks_held down to the waiters' grants and every
waiter answered; a trim of the heap, if any, falls in that window too),
the same for the 300 PINGs before the close, the time that took, and the daemon's VmRSS
before the locks, with them, and 1 s after they all went.  Not a test: it
asserts nothing and nothing runs it automatically.  Needs only python3.

    bench/session_close.py --bin build/cachifyd --locks 1000000 --waiters 5000
"""
import argparse
import json
import os
import selectors
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def connect(port):
    for _ in range(500):
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            time.sleep(0.01)
    raise SystemExit("daemon did not come up on port %d" % port)


def read_lines(sock, buf, n):
    """Reads until n CRLF-terminated lines arrived; returns (lines, rest)."""
    while buf.count(b"\r\n") < n:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("daemon closed the connection")
        buf += chunk
    lines = buf.split(b"\r\n")
    return lines[:n], b"\r\n".join(lines[n:])


def stats(sock):
    sock.sendall(b"STATS\r\n")
    buf = b""
    while b"\r\n" not in buf:
        buf += sock.recv(65536)
    size = int(buf[1:buf.index(b"\r\n")])
    body = buf[buf.index(b"\r\n") + 2:]
    while len(body) < size + 2:
        body += sock.recv(65536)
    return json.loads(body[:size])


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--locks", type=int, default=100000)
    ap.add_argument("--waiters", type=int, default=0)
    ap.add_argument("--batch", type=int, default=20000)
    ap.add_argument("--trace", action="store_true",
                    help="print every round trip after the close")
    args = ap.parse_args()

    port = free_port()
    daemon = subprocess.Popen(
        [args.bin, "--port", str(port), "--bind", "127.0.0.1",
         "--maxclients", str(max(10000, args.waiters + 100)),
         "--max_waiters", "10"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        holder = connect(port)
        pinger = connect(port)
        watcher = connect(port)
        rss_empty = rss_kib(daemon.pid)

        # Take the locks, pipelined in batches.
        rest = b""
        for start in range(0, args.locks, args.batch):
            n = min(args.batch, args.locks - start)
            holder.sendall(b"".join(
                b"ACQUIRE k%d TTL FOREVER SESSION\r\n" % i
                for i in range(start, start + n)))
            lines, rest = read_lines(holder, rest, n)
            if not all(l.startswith(b":") for l in lines):
                raise SystemExit("acquire failed: %r" % lines[0])

        # Waiters spread over the keys, one connection each.
        waiters = selectors.DefaultSelector()  # epoll: no FD_SETSIZE
        step = max(1, args.locks // max(1, args.waiters))
        for j in range(args.waiters):
            w = connect(port)
            w.sendall(b"ACQUIRE k%d WAIT FOREVER\r\n" % (j * step % args.locks))
            w.setblocking(False)
            waiters.register(w, selectors.EVENT_READ)
        for _ in range(1000):  # the last waits may still be in flight
            st = stats(watcher)
            if st["waiters"] == args.waiters:
                break
            time.sleep(0.01)
        if st["waiters"] != args.waiters or st["locks_held"] != args.locks:
            raise SystemExit("setup: %r" % st)
        rss_held = rss_kib(daemon.pid)

        # PING every ~1 ms; close the holder after 300 ms of them.
        before, after = [], []
        answered = 0
        closed_at = done_at = None
        t_next = time.perf_counter()
        i = 0
        while True:
            t0 = time.perf_counter()
            pinger.sendall(b"PING\r\n")
            buf = b""
            while not buf.endswith(b"\r\n"):
                buf += pinger.recv(64)
            rtt_ms = (time.perf_counter() - t0) * 1000.0
            (after if closed_at is not None else before).append(rtt_ms)
            i += 1
            # Half-way between two STATS polls, and the next PING goes at
            # once: a stall at the close shows in a PING, not in a STATS.
            if closed_at is None and len(before) >= 300 and i % 20 == 10:
                holder.close()
                closed_at = time.perf_counter()
                continue
            if closed_at is not None and answered < args.waiters and i % 10 == 0:
                for key, _ in waiters.select(0):
                    data = key.fileobj.recv(4096)
                    if not data.startswith(b":"):
                        raise SystemExit("waiter got %r" % data)
                    answered += 1
                    waiters.unregister(key.fileobj)
                    key.fileobj.close()
            if done_at is not None and t0 - done_at > 0.3:
                break
            if done_at is None and closed_at is not None and i % 20 == 0:
                st = stats(watcher)
                if st["locks_held"] == args.waiters and answered == args.waiters:
                    done_at = time.perf_counter()
                if time.perf_counter() - closed_at > 120:
                    raise SystemExit("not drained after 120 s: %r" % st)
            t_next += 0.001
            delay = t_next - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            else:
                t_next = time.perf_counter()
        if args.trace:
            print(" ".join("%.2f" % x for x in after), flush=True)
        time.sleep(1.0)
        rss_after = rss_kib(daemon.pid)
        print("locks=%d waiters=%d  before close: ping p99 %.2f ms max %.2f ms"
              "  after close: ping p99 %.2f ms max %.2f ms (%d pings)"
              "  all let go in %.0f ms  RSS MiB: empty %.1f, held %.1f,"
              " 1 s after %.1f"
              % (args.locks, args.waiters, pct(before, 99), max(before),
                 pct(after, 99), max(after), len(after),
                 (done_at - closed_at) * 1000.0, rss_empty / 1024.0,
                 rss_held / 1024.0, rss_after / 1024.0))
    finally:
        daemon.terminate()
        daemon.wait()


if __name__ == "__main__":
    sys.exit(main())
