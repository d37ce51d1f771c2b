"""tests/scripts/metrics_check.py - GET /metrics read by a real Prometheus
parser, and its counters moving with real traffic.

Usage: metrics_check.py LOCK_PORT METRICS_PORT PASSWORD

Owns: checking that the exposition parses with Debian's
python3-prometheus-client (text_string_to_metric_families), that every
family has the type and samples it should (counters end in _total, the
wait histogram has cumulative le buckets ending at +Inf == _count, _sum),
that the HTTP answer has the exposition's Content-Type, and that each
counter moves by what a scripted run of lock traffic must add (grants,
releases, an expiry, a refused ACQUIRE, a wait that times out, a handoff,
a wrong password) and agrees with STATS.  Exits non-zero on the first
failure, with a message.
"""
import http.client
import json
import socket
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

LOCK_PORT, METRICS_PORT, PASSWORD = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


def fail(msg):
    print("metrics_check: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def scrape():
    """Families by name, and the raw samples by sample name + labels."""
    conn = http.client.HTTPConnection("127.0.0.1", METRICS_PORT, timeout=20)
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    body = resp.read().decode("utf-8")
    if resp.status != 200:
        fail("GET /metrics answered %d" % resp.status)
    ctype = resp.getheader("Content-Type")
    if ctype != "text/plain; version=0.0.4":
        fail("Content-Type is %r" % ctype)
    conn.close()
    families, samples = {}, {}
    for fam in text_string_to_metric_families(body):
        if fam.name in families:
            fail("family %s appears twice" % fam.name)
        families[fam.name] = fam
        for s in fam.samples:
            key = s.name + "".join('{%s="%s"}' % kv for kv in sorted(s.labels.items()))
            samples[key] = s.value
    return families, samples


class Client:
    """A line-protocol client with a read timeout."""

    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", LOCK_PORT), timeout=20)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                fail("the daemon closed the connection")
            self.buf += chunk
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out.decode()

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        reply = self.line()
        if reply.startswith("$"):
            n = int(reply[1:])
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            body, self.buf = self.buf[:n], self.buf[n + 2:]
            return body.decode()
        return reply

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")


def expect(got, want, what):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


def check_shape(families):
    want_counters = ["acquires", "releases", "expiries", "wait_timeouts",
                     "rejections", "handoffs", "auth_failures",
                     "connections", "commands"]
    for name in want_counters:
        fam = families.get("cachifyd_" + name)
        if fam is None or fam.type != "counter":
            fail("no counter cachifyd_%s" % name)
        if [s.name for s in fam.samples] != ["cachifyd_%s_total" % name]:
            fail("counter %s samples: %r" % (name, fam.samples))
    for name in ["clients", "locks_held", "waiters", "uptime_seconds",
                 "values", "data_bytes"]:
        fam = families.get("cachifyd_" + name)
        if fam is None or fam.type != "gauge":
            fail("no gauge cachifyd_%s" % name)
    for fam in families.values():
        if not fam.documentation:
            fail("%s has no HELP" % fam.name)
    hist = families.get("cachifyd_wait_seconds")
    if hist is None or hist.type != "histogram":
        fail("no histogram cachifyd_wait_seconds")
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    les = [s.labels["le"] for s in buckets]
    if les[-1] != "+Inf" or len(les) < 5:
        fail("buckets: %r" % les)
    bounds = [float(le) for le in les]
    if bounds != sorted(bounds):
        fail("le bounds out of order: %r" % les)
    counts = [s.value for s in buckets]
    if counts != sorted(counts):
        fail("buckets not cumulative: %r" % counts)
    total = [s.value for s in hist.samples if s.name.endswith("_count")]
    sums = [s.value for s in hist.samples if s.name.endswith("_sum")]
    if total != [counts[-1]] or len(sums) != 1:
        fail("_count %r / _sum %r vs +Inf %r" % (total, sums, counts[-1]))
    return counts, sums[0]


def main():
    families, before = scrape()
    check_shape(families)

    a, b, c = Client(), Client(), Client()
    for cl in (a, b, c):
        expect(cl.cmd("AUTH " + PASSWORD), "+OK", "AUTH")
    expect(b.cmd("AUTH not-the-password")[:10], "-WRONGPASS", "bad AUTH")
    token = a.cmd("ACQUIRE job TTL 60000")
    expect(b.cmd("ACQUIRE job")[:7], "-LOCKED", "ACQUIRE held key")
    expect(b.cmd("ACQUIRE job WAIT 300")[:8], "-TIMEOUT", "short wait")
    c.send("ACQUIRE job WAIT 20000")
    time.sleep(0.2)
    expect(a.cmd("RELEASE job " + token[1:]), ":1", "RELEASE")
    granted = c.line()
    if not granted.startswith(":"):
        fail("the waiter got %r" % granted)
    expect(c.cmd("RELEASE job " + granted[1:]), ":1", "RELEASE by waiter")
    a.cmd("ACQUIRE brief TTL 100")
    time.sleep(0.6)
    expect(a.cmd("IS_LOCKED brief"), ":0", "expired lock")
    held = a.cmd("ACQUIRE kept TTL 60000")

    families, after = scrape()
    counts, wsum = check_shape(families)
    stats = json.loads(a.cmd("STATS"))

    def delta(name):
        return after[name] - before[name]

    for name, want in [("cachifyd_acquires_total", 4), ("cachifyd_releases_total", 2),
                       ("cachifyd_expiries_total", 1), ("cachifyd_rejections_total", 1),
                       ("cachifyd_wait_timeouts_total", 1), ("cachifyd_handoffs_total", 1),
                       ("cachifyd_auth_failures_total", 1),
                       ("cachifyd_wait_seconds_count", 2),
                       ("cachifyd_connections_total", 3)]:
        expect(delta(name), want, "change of " + name)
    if delta("cachifyd_wait_seconds_sum") < 0.45:
        fail("wait_seconds_sum grew by %r, waits of 0.3 s + 0.2 s were made"
             % delta("cachifyd_wait_seconds_sum"))
    expect(after["cachifyd_locks_held"], 1.0, "locks_held gauge")
    expect(after["cachifyd_clients"], 3.0, "clients gauge")
    expect(after["cachifyd_waiters"], 0.0, "waiters gauge")
    # The same counters as STATS (no lock traffic in between).
    for metric, field in [("cachifyd_acquires_total", "acquired"),
                          ("cachifyd_releases_total", "released"),
                          ("cachifyd_expiries_total", "expired"),
                          ("cachifyd_wait_timeouts_total", "timeouts"),
                          ("cachifyd_rejections_total", "rejected"),
                          ("cachifyd_handoffs_total", "handoffs"),
                          ("cachifyd_auth_failures_total", "auth_failures"),
                          ("cachifyd_values", "values"),
                          ("cachifyd_data_bytes", "data_bytes")]:
        expect(after[metric], float(stats[field]), metric + " vs STATS " + field)
    expect(after["cachifyd_wait_seconds_count"], float(stats["wait_seconds"]["count"]),
           "wait count vs STATS")
    expect(held[:1], ":", "ACQUIRE kept")
    print("metrics_check: ok (%d families)" % len(families))


main()
