"""tests/scripts/lib/redis_client.py - what the redis-py checks share.

Owns: connecting to a server that may still be starting (retried for up
to 30 s), and the failure list every check appends to.  Imported by
tests/scripts/redis_py_check.py and redis_compat_check.py.
"""
import sys
import time

import redis

failures = []


def check(cond, what):
    """Records a failed expectation and goes on, so one run shows all."""
    if not cond:
        failures.append(what)
        print("FAIL:", what, file=sys.stderr)


def connect(port, timeout=20):
    """A redis-py client for 127.0.0.1:port, once the server answers PING."""
    deadline = time.monotonic() + 30
    while True:
        try:
            r = redis.Redis(host="127.0.0.1", port=port,
                            socket_timeout=timeout)
            r.ping()
            return r
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
