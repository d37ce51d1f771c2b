#!/usr/bin/env python3
"""bench/pool_memory.py - what a held pool slot costs in memory, next to a
held lock.

Owns: one measurement, printed as one line of JSON per case.  For each
case a fresh daemon (--bin) on a free port, its VmRSS read before and
after --n grants (pipelined in batches, TTL 600 s):

  locks       ACQUIRE lock:<i>                (n locks, n keys)
  slots       POOL_ACQUIRE pool <n>           (n slots of one pool)
  pools       POOL_ACQUIRE pool:<i> 1         (n pools of one slot each)

bytes/entry is the growth divided by n.  The issue's yardstick: a pool key
with N slots should cost about N locks ("slots" against "locks").  Not a
test: it asserts nothing and nothing runs it automatically.  Needs only
python3 (and bench/session_close.py beside it, for its daemon helpers).

    bench/pool_memory.py --bin build/cachifyd --n 1000000
"""
import argparse
import json
import subprocess
import time

# The daemon helpers of the SESSION-close benchmark beside this file.
from session_close import connect, free_port, read_lines, rss_kib


CASES = {
    "locks": lambda i, n: b"ACQUIRE lock:%d TTL 600000\r\n" % i,
    "slots": lambda i, n: b"POOL_ACQUIRE pool %d TTL 600000\r\n" % n,
    "pools": lambda i, n: b"POOL_ACQUIRE pool:%d 1 TTL 600000\r\n" % i,
}


def measure(binary, case, n, batch):
    port = free_port()
    daemon = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = connect(port)
        sock.sendall(b"PING\r\n")
        read_lines(sock, b"", 1)
        before = rss_kib(daemon.pid)
        rest = b""
        for start in range(0, n, batch):
            k = min(batch, n - start)
            sock.sendall(b"".join(CASES[case](i, n)
                                  for i in range(start, start + k)))
            lines, rest = read_lines(sock, rest, k)
            if not all(line.startswith(b":") for line in lines):
                raise SystemExit("%s failed: %r" % (case, lines[0]))
        time.sleep(0.2)
        after = rss_kib(daemon.pid)
        sock.close()
    finally:
        daemon.terminate()
        daemon.wait()
    growth = after - before
    return {"case": case, "n": n, "rss_before_kb": before,
            "rss_after_kb": after, "growth_kb": growth,
            "bytes_per_entry": round(growth * 1024.0 / n, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--n", type=int, default=1000000)
    ap.add_argument("--batch", type=int, default=20000)
    ap.add_argument("--cases", default="locks,slots,pools")
    args = ap.parse_args()
    for case in args.cases.split(","):
        print(json.dumps(measure(args.bin, case, args.n, args.batch)),
              flush=True)


if __name__ == "__main__":
    main()
