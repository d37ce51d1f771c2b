#!/usr/bin/env python3
"""tests/fuzz/make_seeds.py - writes the seed corpora of the fuzz targets.

Owns: tests/fuzz/corpus/{reader,commands,readpath,config}/seed-*: small inputs that
show each target every command form, both framings, quoting and escapes,
malformed framings and every config key, so fuzzing starts from the
interesting places instead of having to guess "ACQUIRE".  Files found by
fuzzing (crash-* regressions, or inputs worth keeping) sit next to them and
are not touched.  Run from the repo root: python3 tests/fuzz/make_seeds.py
The layouts of the inputs are described in each fuzz_NAME.c.
"""
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


# Requests shared by the reader and commands corpora.
REQUESTS = {
    "acquire": b"ACQUIRE job\r\n",
    "acquire-ttl": b"ACQUIRE job TTL 5000\r\n",
    "acquire-forever": b"acquire job ttl forever session\r\n",
    "acquire-wait": b"ACQUIRE job WAIT 100 TTL 50\r\n",
    "acquire-wait-forever": b"ACQUIRE job WAIT FOREVER SESSION\r\n",
    "release": b"RELEASE job\r\nRELEASE job 12345\r\n",
    "is-locked": b"IS_LOCKED job\r\n",
    "extend": b"EXTEND job 1 1000\r\n",
    "pttl-ttl": b"PTTL job\r\nTTL job\r\n",
    "ping": b"PING\r\nPING hello\r\n",
    "stats": b"STATS\r\n",
    "auth": b"AUTH secret\r\nAUTH default secret\r\n",
    "help-quit": b"HELP\r\nQUIT\r\n",
    "compat": b"COMMAND DOCS\r\nCLIENT SETNAME x\r\nSELECT 0\r\nSELECT 1\r\n",
    "unknown": b"FROB a b c\r\n",
    "redis-set": b"SET k v EX 10 NX\r\nGET k\r\nSET k w XX GET KEEPTTL\r\n"
                 b"SET k v PXAT 1\r\nSET k v EXAT 99999999999 GET\r\n",
    "redis-keys": b"SETNX a 1\r\nSETEX b 5 2\r\nPSETEX c 5 3\r\n"
                  b"MGET a b c d\r\nGETDEL a\r\nEXISTS a b b\r\n"
                  b"DEL b c\r\nUNLINK d\r\nDBSIZE\r\n",
    "redis-expire": b"SET e v\r\nEXPIRE e 10 NX\r\nPEXPIRE e 5 LT\r\n"
                    b"EXPIREAT e 1 GT\r\nPEXPIREAT e 99 XX\r\n"
                    b"PERSIST e\r\nEXPIRE e -1\r\n",
    "redis-conn": b"HELLO 2 SETNAME n\r\nHELLO 3\r\nECHO x\r\n"
                  b"CLIENT ID\r\nCLIENT GETNAME\r\nINFO\r\nINFO memory\r\n"
                  b"TIME\r\nCOMMAND COUNT\r\nEVAL x 0\r\nINCR n\r\n",
    "wrong-args": b"ACQUIRE\r\nEXTEND a b\r\n",
    "pool": b"POOL_ACQUIRE p 2\r\nPOOL_ACQUIRE p 2 TTL 50 SESSION\r\n"
            b"POOL_ACQUIRE p 2\r\nPOOL_SIZE p\r\nPOOL_EXTEND p 1 100\r\n"
            b"POOL_RELEASE p 1\r\nPOOL_RELEASE p\r\nIS_LOCKED p\r\n",
    "pool-mixup": b"POOL_ACQUIRE k 1\r\nACQUIRE k\r\nSET k v\r\nDEL k\r\n"
                  b"EXISTS k\r\nACQUIRE l\r\nPOOL_ACQUIRE l 1\r\n"
                  b"POOL_ACQUIRE k 3\r\nPOOL_ACQUIRE k 0\r\n",
    "quoted": b'ACQUIRE "a key\\x41\\n\\t\\"q\\\\" TTL 10\r\n',
    "bad-quote": b'ACQUIRE "open\r\n',
    "after-quote": b'PING "a"b\r\n',
    "hex-escapes": b'PING "\\x4" "\\xZZ" "\\q"\r\n',
    "empty-lines": b"\r\n\n \t\r\nPING\n",
    "bare-cr": b"PING a\rb\r\n",
    "resp-acquire": resp("ACQUIRE", "job", "TTL", "1000"),
    "resp-binary": resp("ACQUIRE", b"k\x00\r\n\xff", "SESSION"),
    "resp-value": resp("SET", "k", b"v\x00\r\n" * 8, "PX", "100") +
                  resp("GET", "k"),
    "resp-pipeline": resp("ACQUIRE", "a") + resp("RELEASE", "a") + resp("PING"),
    "resp-empty-bulk": resp("PING", ""),
    "resp-count-zero": b"*0\r\n",
    "resp-count-neg": b"*-1\r\n",
    "resp-count-huge": b"*99999999999999999999\r\n",
    "resp-count-junk": b"*1x\r\n",
    "resp-no-dollar": b"*1\r\n:5\r\n",
    "resp-len-neg": b"*1\r\n$-5\r\n",
    "resp-len-huge": b"*1\r\n$1000000000\r\n",
    "resp-no-crlf": b"*1\r\n$4\r\nPINGxx",
    "resp-lf-only": b"*1\n$4\nPING\n",
    "resp-half": b"*3\r\n$7\r\nACQUIRE\r\n$3\r\njo",
    "resp-long-header": b"*1" + b"0" * 40 + b"\r\n",
    "inline-long": b"PING " + b"x" * 2000 + b"\r\n",
    "many-words": b"PING" + b" a" * 1100 + b"\r\n",
    "garbage": bytes(range(256)),
}


def reader_seeds():
    # byte 0: limits (bits 0-1 max_line 64/100/1024/65536, bits 2-3 extra
    # max_request, bit 4 feeding style); bytes 1-2: chunk sizes.
    for i, (name, body) in enumerate(sorted(REQUESTS.items())):
        head = bytes([(i * 7) & 0x1f, i % 64, 200 if i % 3 == 0 else (i * 5) % 64])
        write("reader", name, head + body)
    write("reader", "one-byte-chunks", bytes([0x03, 0, 0]) + resp("PING", "x" * 100))


# fuzz_commands ops (see fuzz_commands.c): byte 0 = config flags; then ops.
def send(conn, data):
    out = b""
    while True:
        part, data = data[:255], data[255:]
        out += bytes([(conn << 4) | 0, len(part)]) + part
        if not data:
            return out


def advance(conn, ms):
    return bytes([(conn << 4) | 10, ms >> 8, ms & 255])


def close(conn):
    return bytes([(conn << 4) | 11])


def toggle_read(conn):
    return bytes([(conn << 4) | 13])


def commands_seeds():
    for i, (name, body) in enumerate(sorted(REQUESTS.items())):
        flags = bytes([i & 0x0f])
        write("commands", name, flags + send(0, body) + advance(0, 100))
    write("commands", "wait-handoff", bytes([0]) +
          send(0, b"ACQUIRE k TTL 1000\r\n") +
          send(1, b"ACQUIRE k WAIT 5000 SESSION\r\nPING\r\n") +
          advance(0, 1500) + send(1, b"PTTL k\r\n") + close(1) +
          send(0, b"IS_LOCKED k\r\n"))
    write("commands", "wait-timeout", bytes([0]) +
          send(0, b"ACQUIRE k TTL FOREVER\r\n") +
          send(1, b"ACQUIRE k WAIT 100\r\n") + advance(0, 200) +
          send(2, b"ACQUIRE k WAIT FOREVER\r\n") + close(0) + close(2))
    write("commands", "session-close", bytes([0]) +
          send(0, b"ACQUIRE a SESSION\r\nACQUIRE b SESSION TTL FOREVER\r\n") +
          send(1, b"ACQUIRE a WAIT FOREVER\r\n") + close(0) +
          send(1, b"RELEASE a\r\n"))
    write("commands", "pool-wait", bytes([0]) +
          send(0, b"POOL_ACQUIRE p 2 TTL 1000\r\nPOOL_ACQUIRE p 2 SESSION\r\n") +
          send(1, b"POOL_ACQUIRE p 2 WAIT 5000 SESSION\r\nPING\r\n") +
          send(2, b"POOL_ACQUIRE p 2 WAIT 100\r\n") +
          send(3, b"POOL_ACQUIRE p 2 WAIT FOREVER TTL 50\r\n") +
          advance(0, 200) + close(0) + advance(0, 1500) +
          send(1, b"POOL_SIZE p\r\n") + close(1) + send(2, b"POOL_RELEASE p\r\n"))
    write("commands", "pool-limits", bytes([0x01]) +
          send(0, b"".join(b"POOL_ACQUIRE p 9\r\n" for _ in range(10))) +
          send(1, b"POOL_ACQUIRE p 9 WAIT 10\r\n") +
          send(2, b"POOL_ACQUIRE p 9 WAIT 10\r\n") +
          send(3, b"POOL_ACQUIRE p 9 WAIT 10\r\n") + advance(0, 20))
    write("commands", "max-locks", bytes([0x01]) +
          send(0, b"".join(b"ACQUIRE k%d\r\n" % i for i in range(12))))
    write("commands", "max-waiters", bytes([0x01]) +
          send(0, b"ACQUIRE k\r\n") +
          b"".join(send(c, b"ACQUIRE k WAIT 1000\r\n") for c in (1, 2, 3)))
    write("commands", "auth", bytes([0x02]) +
          send(0, b"ACQUIRE k\r\nAUTH nope\r\nAUTH fuzzpass\r\nACQUIRE k\r\n"))
    write("commands", "no-reader", bytes([0]) + toggle_read(0) +
          send(0, b"HELP\r\n" * 40) + send(0, b"PING\r\n") + toggle_read(0))
    write("commands", "proto-error", bytes([0]) +
          send(0, b"ACQUIRE a SESSION\r\n*1\r\n$x\r\nPING\r\n") +
          send(1, b"IS_LOCKED a\r\n"))
    write("commands", "quit", bytes([0]) + send(0, b"ACQUIRE a SESSION\r\nQUIT\r\nPING\r\n"))
    write("commands", "expiry", bytes([0]) +
          send(0, b"ACQUIRE a TTL 10\r\nACQUIRE b TTL 20\r\n") + advance(0, 15) +
          send(0, b"IS_LOCKED a\r\nIS_LOCKED b\r\nEXTEND b 1 100\r\n") +
          bytes([0x0f]) + send(0, b"PTTL b\r\n"))
    write("commands", "set-nx-waiters", bytes([0]) +
          send(0, b"SET k v NX PX 1000\r\n") +
          send(1, b"ACQUIRE k WAIT 5000\r\n") +
          send(2, b"SET k w NX\r\nSET k over\r\nDEL k\r\n") +
          send(1, b"GET k\r\n"))
    write("commands", "maxmemory", bytes([0x80]) +
          send(0, b"".join(b"SET k%d 0123456789\r\n" % i for i in range(8))) +
          send(1, b"ACQUIRE big\r\nDEL k1\r\nACQUIRE big\r\n"))
    write("commands", "max-ttl", bytes([0x04]) +
          send(0, b"ACQUIRE a TTL FOREVER\r\nACQUIRE a TTL 999999\r\nACQUIRE a\r\n"))


CONF = b"""# every key
bind 127.0.0.1 ::1
port 7379
unixsocket ""
protected_mode yes
maxclients 10000
timeout 0
request_timeout 30
default_ttl_ms 30000
max_ttl_ms 0
max_key_len 1024
max_line 65536
max_request 0
max_waiters 10000
max_locks 0
client_output_limit 67108864
client_stall_timeout 60
requirepass ""
requirepass_file ""
loglevel info
state_file cachifyd.state
recovery_delay_ms -1
"""


# fuzz_readpath ops (see fuzz_readpath.c): send, close and toggle_read as
# for fuzz_commands; op 9 repeats the last segment, 10 runs the loop, 14
# advances a second, 15 half-closes.
def repeat(conn, times4):
    return bytes([(conn << 4) | 9, times4 - 1])


def half_close(conn):
    return bytes([(conn << 4) | 15])


def readpath_seeds():
    acq = resp("ACQUIRE", "lock:000000000001:000000000002", "TTL", "30000")
    write("readpath", "ping", bytes([0]) + send(0, b"PING\r\n"))
    # 256 x 4 ACQUIREs in one write: past READ_CHUNK and the read-ahead
    # mark (all the same key: one grant, then -LOCKED).
    write("readpath", "pipeline", bytes([0]) + send(0, acq) + repeat(0, 256))
    write("readpath", "pipeline-inline", bytes([0]) +
          send(1, b"ECHO abcdefghijklmnopqrstuvwxyz0123456789\r\n") +
          repeat(1, 200))
    # A RESP request split at every place a read can end.
    write("readpath", "split", bytes([0]) +
          b"".join(bytes([0x08, b]) for b in acq) + send(0, b"PING\r\n"))
    write("readpath", "half-close", bytes([0]) +
          send(0, b"PING\r\n" * 40) + half_close(0))
    write("readpath", "waiter-readahead", bytes([0]) +
          send(0, b"ACQUIRE k\r\n") +
          send(1, b"ACQUIRE k WAIT FOREVER\r\n") +
          send(1, b"PING\r\n" * 40) + repeat(1, 200) + close(1) +
          close(0))
    write("readpath", "no-reader", bytes([0]) + toggle_read(2) +
          send(2, b"ECHO " + b"x" * 200 + b"\r\n") + repeat(2, 256) +
          toggle_read(2))
    write("readpath", "budget", bytes([0x04]) +
          send(0, b"ECHO " + b"y" * 200 + b"\r\n") + repeat(0, 16))
    write("readpath", "output-limit", bytes([0x02]) + toggle_read(1) +
          send(1, b"ECHO " + b"z" * 200 + b"\r\n") + repeat(1, 4))
    write("readpath", "bounds", bytes([0x01]) +
          send(0, b"ECHO " + b"w" * 100 + b"\r\nPING\r\n"))
    write("readpath", "oom", bytes([0x10, 40]) + send(0, acq) +
          repeat(0, 8) + send(1, b"PING\r\n"))
    write("readpath", "deadlines", bytes([0x08]) + send(0, b"PIN") +
          bytes([0x0e] * 4) + send(1, b"PING\r\n"))


def config_seeds():
    # Layout: conf file bytes, then "\0\0", then argv words split by '\0'
    # ("@" is the conf file, "@pw" a file holding a password line).
    write("config", "all-keys", CONF + b"\0\0-c\0@")
    write("config", "args-only", b"\0\0--port\x007380\0--bind=0.0.0.0\0--protected_mode\0no")
    write("config", "quoted", b'requirepass "a \\" b"  # c\nstate_file "x y"\n')
    write("config", "bad-quote", b'requirepass "abc\nport 1\n')
    write("config", "bad-escape", b'requirepass "a\\nb"\n')
    write("config", "unknown-key", b"frobnicate 1\n")
    write("config", "bad-int", b"port 70000\nmaxclients -1\n")
    write("config", "int-forms", b"port +1\nport 0x10\nport 1k\nport \n")
    write("config", "bool", b"protected_mode no\nprotected_mode maybe\n")
    write("config", "enum", b"loglevel debug\nloglevel LOUD\n")
    write("config", "bind-bad", b"bind localhost\nbind 1.2.3.4.5\n")
    write("config", "nul", b"port 1\0\n")
    write("config", "long-line", b"requirepass " + b"x" * 5000 + b"\n")
    write("config", "cross", b"default_ttl_ms 5000\nmax_ttl_ms 1000\n")
    write("config", "max-request", b"max_line 100\nmax_request 50\n")
    write("config", "pass-file", b"\0\0--requirepass_file\0@pw")
    write("config", "pass-file-conf", b"requirepass_file pw\n\0\0-c\0@")
    write("config", "pass-both", b"requirepass x\n\0\0-c\0@\0--requirepass_file=@pw")
    write("config", "help", b"\0\0--help")
    write("config", "version", b"\0\0-v")
    write("config", "args-bad", b"\0\0--port\0--nope\0x\0-z")
    write("config", "comments", b"  # only\n\t\n port 5 # trailing\nport 6#no\n")


reader_seeds()
commands_seeds()
readpath_seeds()
config_seeds()
