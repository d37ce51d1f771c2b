"""tests/scripts/redis_cli_check.py - a redis-cli session against cachifyd,
as a user would type it.

Owns: running Debian's redis-cli interactively (in a pseudo-terminal, so it
behaves as at a keyboard: it sends its connect-time commands and prints
its prompt) and in one-shot mode, and checking that nothing on connect
errs and that SET, GET, DEL, EXPIRE, TTL and INFO answer as users know
them.  Usage: redis_cli_check.py PORT (the daemon is already started).
"""
import os
import pty
import select
import subprocess
import sys
import time

from lib.redis_client import check, connect, failures

port = int(sys.argv[1])
connect(port)  # the daemon is up
prompt = f"127.0.0.1:{port}> ".encode()


def read_until_prompt(fd, deadline_s=20):
    out = b""
    deadline = time.monotonic() + deadline_s
    while not out.endswith(prompt):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no prompt; got {out[-300:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError(f"redis-cli ended; got {out[-300:]!r}")
            out += chunk
    return out[:-len(prompt)].decode(errors="replace")


pid, fd = pty.fork()
if pid == 0:
    # A dumb terminal: line editing off, so no cursor queries to answer.
    os.environ["TERM"] = "dumb"
    os.execvp("redis-cli", ["redis-cli", "-p", str(port)])

banner = read_until_prompt(fd)
check("rror" not in banner, f"nothing errs on connect: {banner!r}")
session = [
    ("SET greeting hello", "OK"),
    ("GET greeting", '"hello"'),
    ("EXPIRE greeting 100", "(integer) 1"),
    ("TTL greeting", "(integer) 100"),
    ("SET lock:job me NX PX 30000", "OK"),
    ("SET lock:job you NX PX 30000", "(nil)"),
    ("DEL greeting lock:job", "(integer) 2"),
    ("GET greeting", "(nil)"),
    ("PING", "PONG"),
]
for line, want in session:
    os.write(fd, line.encode() + b"\r")
    got = read_until_prompt(fd)
    # The terminal echoes the line; the answer is what follows it.
    answer = got.split("\n", 1)[-1].strip()
    check(answer == want, f"{line}: {answer!r}, expected {want!r}")
os.write(fd, b"INFO\r")
info = read_until_prompt(fd)
check("# Server" in info and "redis_version:" in info and
      "maxmemory_policy:noeviction" in info, f"INFO readable: {info[:200]!r}")
os.write(fd, b"QUIT\r")
os.close(fd)
os.waitpid(pid, 0)

# One-shot mode, as scripts use it.
def cli(*args):
    r = subprocess.run(["redis-cli", "-p", str(port), *args],
                       capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


check(cli("SET", "k", "v", "EX", "60") == "OK", "redis-cli SET")
check(cli("GET", "k") == "v", "redis-cli GET")
check(cli("TTL", "k") == "60", "redis-cli TTL")
check(cli("DEL", "k") == "1", "redis-cli DEL")
check(cli("EVAL", "return 1", "0").startswith("ERR EVAL is not supported"),
      "redis-cli EVAL is refused with the reason")
if failures:
    print(f"redis-cli: {len(failures)} check(s) failed", file=sys.stderr)
    sys.exit(1)
print("redis-cli: all checks passed")
