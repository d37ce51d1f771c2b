"""tests/scripts/redis_compat_check.py - cachifyd as a drop-in for Redis
lock and cache clients, checked against a real redis-server.

Owns: doing what py-cachify 3.x does through redis-py (sync and asyncio) -
its lock decorator in the seed example's order and timing, its `cached`
decorator, its pool state - and a table of direct commands, against both
servers side by side, comparing every reply.  Where cachifyd differs on
purpose (docs/redis-compat.md), the difference is listed in EXPECTED_DIFF
and checked as such.  Usage: redis_compat_check.py CACHIFYD_PORT REDIS_PORT
(both servers already started, empty).
"""
import asyncio
import json
import pickle
import sys
import time

import redis
import redis.asyncio as aredis

from lib.redis_client import check, connect, failures

CACHIFYD_PORT, REDIS_PORT = int(sys.argv[1]), int(sys.argv[2])


def reply_of(fn):
    """A reply, or ("error", text) for an error reply."""
    try:
        return fn()
    except redis.ResponseError as e:
        return ("error", str(e))


class Recorder:
    """Counts the commands a client sends and keeps their replies."""

    def __init__(self):
        self.counts = {}
        self.replies = []

    def note(self, name, reply):
        self.counts[name] = self.counts.get(name, 0) + 1
        self.replies.append((name, reply))


# ---- py-cachify's lock decorator, as it drives redis-py ----
#
# py-cachify 3.x: acquire = SET PYC-<key> <pickle> EX <s> NX (nil: held),
# is_locked = GET PYC-<key> (any value: held), release = DEL PYC-<key>.
# The default lock expiry is 30 s.

LOCK_EXP = 30


class LockedError(Exception):
    pass


def pyc(key):
    return "PYC-" + key


class AsyncLock:
    def __init__(self, client, rec, out):
        self.r, self.rec, self.out = client, rec, out

    async def acquire(self, key):
        ok = await self.r.set(pyc(key), pickle.dumps(None), ex=LOCK_EXP,
                              nx=True)
        self.rec.note("SET", ok)
        if not ok:
            self.out.append(f"{key} is already locked!")
            raise LockedError(f"{key} is already locked!")

    async def release(self, key):
        self.rec.note("DEL", await self.r.delete(pyc(key)))

    async def is_locked(self, key):
        value = await self.r.get(pyc(key))
        self.rec.note("GET", value)
        return value is not None


async def seed_example(port, rec):
    """The seed's program (sleep_for with nowait locks), its output lines."""
    client = aredis.Redis(host="127.0.0.1", port=port, socket_timeout=30)
    out = []
    lk = AsyncLock(client, rec, out)

    async def sleep_for(arg):
        key = f"sleep_for_lock-{arg}"
        await lk.acquire(key)
        try:
            await asyncio.sleep(arg)
        finally:
            await lk.release(key)

    def key(arg):
        return f"sleep_for_lock-{arg}"

    _ = asyncio.create_task(sleep_for(3))
    await asyncio.sleep(0.1)
    out.append(f"Sleep for is locked for argument 3: "
               f"{await lk.is_locked(key(3))}")
    out.append(f"Sleep for is locked for argument 4: "
               f"{await lk.is_locked(key(4))}")
    task = asyncio.create_task(sleep_for(5))
    await asyncio.sleep(0.1)
    out.append(f"Sleep for is locked for argument 5: "
               f"{await lk.is_locked(key(5))}")
    await lk.release(key(5))
    out.append(f"Sleep for is locked for argument 5: "
               f"{await lk.is_locked(key(5))}")
    await task
    try:
        await asyncio.gather(sleep_for(1), sleep_for(1))
    except LockedError as e:
        out.append(f"Exception: {e}")
    await asyncio.sleep(1.2)  # the winner of the two releases its lock
    await client.close()
    return out


SEED_OUTPUT = [
    "Sleep for is locked for argument 3: True",
    "Sleep for is locked for argument 4: False",
    "Sleep for is locked for argument 5: True",
    "Sleep for is locked for argument 5: False",
    "sleep_for_lock-1 is already locked!",
    "Exception: sleep_for_lock-1 is already locked!",
]


async def run_seed_both():
    recs = (Recorder(), Recorder())
    outs = await asyncio.gather(seed_example(CACHIFYD_PORT, recs[0]),
                                seed_example(REDIS_PORT, recs[1]))
    for name, out in zip(("cachifyd", "redis"), outs):
        check(out == SEED_OUTPUT, f"seed output on {name}: {out!r}")
    check(recs[0].replies == recs[1].replies,
          f"seed replies differ: {recs[0].replies!r} vs {recs[1].replies!r}")
    for name, rec in zip(("cachifyd", "redis"), recs):
        check(rec.counts == {"SET": 4, "GET": 4, "DEL": 4},
              f"seed commands on {name}: {rec.counts!r}")


# ---- the same lock, sync, and py-cachify's cached and pool ----

def sync_lock_flow(r, rec):
    """Two holders race for one key; the loser sees it held; release."""
    for key in ("job-a", "job-a", "job-b"):
        rec.note("SET", r.set(pyc(key), pickle.dumps(None), ex=LOCK_EXP,
                              nx=True))
    rec.note("GET", r.get(pyc("job-a")) is not None)
    rec.note("DEL", r.delete(pyc("job-a")))
    rec.note("GET", r.get(pyc("job-a")))
    rec.note("DEL", r.delete(pyc("job-a")))
    rec.note("TTL", r.ttl(pyc("job-b")))
    rec.note("DEL", r.delete(pyc("job-b")))


def cached_flow(r, rec):
    """@cached(key='sum-{a}-{b}', ttl=60): GET, miss, compute, SET EX."""
    calls = []

    def cached_sum(a, b):
        key = f"sum-{a}-{b}"
        hit = r.get(key)
        rec.note("GET", hit)
        if hit is not None:
            return pickle.loads(hit)
        calls.append((a, b))
        result = {"sum": a + b, "raw": b"\r\n\x00"}
        rec.note("SET", r.set(key, pickle.dumps(result), ex=60))
        return result

    first = cached_sum(1, 2)
    second = cached_sum(1, 2)
    check(first == second == {"sum": 3, "raw": b"\r\n\x00"},
          f"cached values: {first!r} {second!r}")
    check(calls == [(1, 2)], f"cached computed once: {calls!r}")
    # A value without expiry, as `cached` without ttl writes it.
    rec.note("SET", r.set("forever-key", pickle.dumps([1, 2, 3])))
    rec.note("TTL", r.ttl("forever-key"))
    rec.note("GET", pickle.loads(r.get("forever-key")))


def pool_flow(r, rec):
    """py-cachify's pool: GET the pickled slot list, add a slot, SET it."""
    key = "PYC-pool-workers"
    for worker in range(3):
        raw = r.get(key)
        rec.note("GET", raw)
        slots = pickle.loads(raw) if raw is not None else []
        if len(slots) < 2:
            slots.append(worker)
            rec.note("SET", r.set(key, pickle.dumps(slots), ex=30))
    rec.note("GET", pickle.loads(r.get(key)))
    rec.note("DEL", r.delete(key))


def run_sync_flows_both():
    recs = []
    for port in (CACHIFYD_PORT, REDIS_PORT):
        r = connect(port)
        rec = Recorder()
        sync_lock_flow(r, rec)
        cached_flow(r, rec)
        pool_flow(r, rec)
        recs.append(rec)
    check(recs[0].replies == recs[1].replies,
          f"sync flows differ:\n {recs[0].replies!r}\n {recs[1].replies!r}")


# ---- direct commands, reply by reply ----

BINARY = b"a\r\nb\x00c\r\n"
BIG = bytes(range(256)) * 4096  # 1 MiB with every byte value

COMMANDS = [
    ("SET", "k", "v"), ("GET", "k"), ("SET", "k", "v2", "NX"),
    ("SET", "k", "v2", "XX", "GET"), ("GET", "k"), ("SET", "n", "v", "XX"),
    ("SET", "n", "v", "NX", "GET"), ("SET", "n", "w", "NX", "GET"),
    ("SET", "k", "v", "EX", "100"), ("TTL", "k"),
    ("SET", "k", "v3", "KEEPTTL"), ("TTL", "k"),
    ("SET", "k", "v", "PX", "100000"), ("TTL", "k"),
    ("SET", "k", "v", "EXAT", "1924992000"), ("EXISTS", "k"),
    ("SET", "k", "v", "PXAT", "1"), ("EXISTS", "k"), ("GET", "k"),
    ("SET", "k", "v", "EX", "0"), ("SET", "k", "v", "EX", "-5"),
    ("SET", "k", "v", "EX", "x"), ("SET", "k", "v", "PX", "1.5"),
    ("SET", "k", "v", "NX", "XX"), ("SET", "k", "v", "EX", "1", "PX", "1"),
    ("SET", "k", "v", "EX", "1", "KEEPTTL"), ("SET", "k", "v", "BOGUS"),
    ("SET", "k", "v", "EX"),
    ("SET", "bin", BINARY), ("GET", "bin"), ("SET", "big", BIG),
    ("GET", "big"), ("SET", "empty", ""), ("GET", "empty"),
    ("SETNX", "s", "1"), ("SETNX", "s", "2"), ("GET", "s"),
    ("SETEX", "e", "100", "v"), ("TTL", "e"), ("SETEX", "e", "0", "v"),
    ("PSETEX", "p", "100000", "v"), ("TTL", "p"), ("PSETEX", "p", "-1", "v"),
    ("MGET", "s", "missing", "e"), ("GETDEL", "s"), ("GETDEL", "s"),
    ("EXISTS", "e", "e", "missing", "p"),
    ("EXPIRE", "e", "500"), ("TTL", "e"), ("EXPIRE", "e", "100", "GT"),
    ("EXPIRE", "e", "1000", "GT"), ("TTL", "e"), ("EXPIRE", "e", "10", "LT"),
    ("TTL", "e"), ("EXPIRE", "e", "10", "NX"), ("EXPIRE", "e", "10", "XX"),
    ("EXPIRE", "e", "10", "NX", "XX"), ("EXPIRE", "e", "10", "GT", "LT"),
    ("EXPIRE", "e", "10", "FOO"), ("EXPIRE", "e", "ten"),
    ("PERSIST", "e"), ("TTL", "e"), ("PERSIST", "e"), ("PERSIST", "missing"),
    ("EXPIRE", "missing", "10"), ("PEXPIRE", "e", "100000"), ("TTL", "e"),
    ("EXPIREAT", "e", "1924992000"), ("EXPIRE", "e", "0"), ("EXISTS", "e"),
    ("PEXPIREAT", "p", "1"), ("EXISTS", "p"),
    ("TTL", "missing"), ("PTTL", "missing"), ("SET", "f", "v"), ("TTL", "f"),
    ("PTTL", "f"),
    ("DEL", "k", "bin", "missing", "big"), ("UNLINK", "empty", "f"),
    ("DBSIZE",), ("ECHO", "hello\r\nworld"), ("PING",), ("PING", "x"),
    ("SELECT", "0"), ("CLIENT", "SETNAME", "conn-1"), ("CLIENT", "GETNAME"),
    ("CLIENT", "SETNAME", "bad name"), ("CLIENT", "SETINFO", "LIB-NAME", "x"),
    ("COMMAND", "NOSUCH"),
]

# Where cachifyd answers differently on purpose (docs/redis-compat.md):
# command -> what cachifyd answers.
EXPECTED_DIFF = {
    # An unknown subcommand's error is worded as the protocol's others.
    ("COMMAND", "NOSUCH"): ("error", "unknown subcommand 'NOSUCH' for "
                                     "'COMMAND'"),
    # Redis 7.2 answers it (7.0 did not): newer clients send it on connect.
    ("CLIENT", "SETINFO", "LIB-NAME", "x"): b"OK",
}


def run_commands_both():
    rc, rr = connect(CACHIFYD_PORT), connect(REDIS_PORT)
    for cmd in COMMANDS:
        got = reply_of(lambda: rc.execute_command(*cmd))
        want = EXPECTED_DIFF.get(cmd)
        if want is None:
            want = reply_of(lambda: rr.execute_command(*cmd))
        else:
            reply_of(lambda: rr.execute_command(*cmd))
        check(got == want, f"{cmd[:4]!r}: cachifyd {str(got)[:120]!r}, "
                           f"expected {str(want)[:120]!r}")


# ---- what differs on purpose, and what Redis clients send on connect ----

def run_cachifyd_only():
    r = connect(CACHIFYD_PORT)
    hello3 = reply_of(lambda: r.execute_command("HELLO", "3"))
    check(hello3 == ("error", "NOPROTO sorry, this protocol version is not "
                              "supported"),
          f"HELLO 3 is NOPROTO: {hello3!r}")
    hello2 = r.execute_command("HELLO", "2")
    fields = dict(zip(hello2[::2], hello2[1::2]))
    check(fields.get(b"proto") == 2, f"HELLO 2 answers proto 2: {hello2!r}")
    check(isinstance(r.client_id(), int), "CLIENT ID is an integer")
    ev = reply_of(lambda: r.execute_command("EVAL", "return 1", "0"))
    check(isinstance(ev, tuple) and "RELEASE key token" in ev[1],
          f"EVAL is refused naming the alternative: {ev!r}")
    # Expiry times are bounded at 2^40 ms (about 34.8 years) from now.
    far = reply_of(lambda: r.execute_command("SET", "far", "v", "EXAT",
                                             "4102444800"))
    check(far == ("error", "invalid expire time in 'set' command"),
          f"an expiry past the bound: {far!r}")
    sel = reply_of(lambda: r.execute_command("SELECT", "1"))
    check(isinstance(sel, tuple), f"SELECT 1 is refused: {sel!r}")
    info = r.info()
    check(info.get("maxmemory_policy") == "noeviction" and
          "connected_clients" in info and "redis_version" in info,
          f"INFO parses: {sorted(info)!r}")
    sec, usec = r.time()
    check(abs(sec - time.time()) < 60 and 0 <= usec < 1_000_000,
          f"TIME: {sec} {usec}")
    # A lock taken with ACQUIRE reads as its token; SET NX is an ACQUIRE.
    token = r.execute_command("ACQUIRE", "mixed", "TTL", 10000)
    check(r.get("mixed") == str(token).encode(), "GET of a lock: its token")
    check(r.set("mixed", "x", nx=True) is None, "SET NX on a held lock: nil")
    check(r.delete("mixed") == 1, "DEL of a lock: a forced release")
    check(r.set("mixed", "x", nx=True, px=10000) is True, "SET NX takes it")
    check(r.execute_command("IS_LOCKED", "mixed") == 1, "and it is a lock")
    stats = json.loads(r.execute_command("STATS"))
    check(stats["acquired"] >= 10, f"STATS counts the SET NX locks: {stats!r}")
    check(stats["values"] >= 1 and stats["data_bytes"] > 0,
          f"STATS counts the values: {stats!r}")


def main():
    asyncio.run(run_seed_both())
    run_sync_flows_both()
    run_commands_both()
    run_cachifyd_only()
    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        sys.exit(1)
    print("redis compatibility: all checks passed")


main()
