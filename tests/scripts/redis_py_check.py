"""tests/scripts/redis_py_check.py - cachifyd through redis-py.

Owns: showing that an unmodified Redis client library speaks cachifyd's
own commands: integer tokens, error replies as ResponseError with the
exact text, pipelining in order, WAIT handed over from another
connection.  Usage: redis_py_check.py PORT (the daemon is already started).
"""
import json
import sys
import threading
import time

import redis

from lib.redis_client import check, connect, failures

port = int(sys.argv[1])
r = connect(port)
start_us = int(time.time() * 1e6)
token = r.execute_command("ACQUIRE", "py:job", "TTL", 5000)
check(isinstance(token, int) and token >= start_us - 5_000_000,
      "ACQUIRE returns an integer token near the wall clock: %r" % token)
check(r.execute_command("IS_LOCKED", "py:job") == 1, "IS_LOCKED is 1")
try:
    r.execute_command("ACQUIRE", "py:job")
    check(False, "a second ACQUIRE raises")
except redis.ResponseError as e:
    check(str(e) == "LOCKED py:job is already locked!",
          "LOCKED error text: %r" % str(e))
pttl = r.execute_command("PTTL", "py:job")
check(0 < pttl <= 5000, "PTTL within the TTL: %r" % pttl)
check(r.execute_command("RELEASE", "py:job", token + 1) == 0,
      "RELEASE with another token is 0")
check(r.execute_command("RELEASE", "py:job", token) == 1,
      "RELEASE with the token is 1")

# Pipelining: replies come back in order, errors in place.
p = r.pipeline(transaction=False)
p.execute_command("ACQUIRE", "py:p1")
p.execute_command("ACQUIRE", "py:p1")
p.execute_command("IS_LOCKED", "py:p1")
p.execute_command("PING")
out = p.execute(raise_on_error=False)
check(isinstance(out[0], int), "pipelined ACQUIRE token: %r" % out[0])
check(isinstance(out[1], redis.ResponseError)
      and str(out[1]) == "LOCKED py:p1 is already locked!",
      "pipelined LOCKED in place: %r" % out[1])
check(out[2] == 1 and out[3] is True, "pipelined replies in order: %r" % out)

# A waiter on another connection is granted when the holder releases.
holder = r.execute_command("ACQUIRE", "py:w", "TTL", "FOREVER")
got = {}


def waiter():
    w = connect(port)
    got["token"] = w.execute_command("ACQUIRE", "py:w", "WAIT", 15000)


t = threading.Thread(target=waiter)
t.start()
deadline = time.monotonic() + 15
while time.monotonic() < deadline:
    if json.loads(r.execute_command("STATS"))["waiters"] == 1:
        break
    time.sleep(0.02)
r.execute_command("RELEASE", "py:w", holder)
t.join(30)
check(got.get("token", 0) > holder, "waiter granted a larger token: %r" % got)

try:
    r.execute_command("NOSUCHCOMMAND")
    check(False, "unknown command raises")
except redis.ResponseError as e:
    check(str(e) == "unknown command 'NOSUCHCOMMAND'",
          "unknown command text: %r" % str(e))

print("redis-py: %d checks failed" % len(failures))
sys.exit(1 if failures else 0)
