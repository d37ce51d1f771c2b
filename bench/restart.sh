#!/bin/sh
# bench/restart.sh - what a clean stop and a restart with many locks cost:
# time, peak memory (VmHWM), the state file's size, whether clients are
# refused (not left hanging) while the file loads, and PING latency around
# the restart.  Figures for docs/security.md; nothing here is asserted.
#
#   sh bench/restart.sh [N] [TTL_MS]     # default 1000000 locks, 50000 ms
#
# Loopback only, bounded in time; the daemon is build/cachifyd (make all).
# TTL_MS at or under long_lease_ms (60000) keeps the load free of
# fdatasyncs (those leases are covered by the lease horizon); FOREVER locks
# are measured separately at the end (FOREVER_N of them, one fdatasync
# each), with the journal rewrite they cause.
set -eu
cd "$(dirname "$0")/.."
N=${1:-1000000}
TTL=${2:-50000}
FOREVER_N=${FOREVER_N:-20000}
DAEMON=${DAEMON:-build/cachifyd}
OUT=$(mktemp -d /tmp/cachifyd-restart.XXXXXX)
trap 'kill -9 $PID 2>/dev/null || true; rm -rf "$OUT"' EXIT INT TERM
mkdir -p build/bench
cc -O2 -Wall -o build/bench/benchtool bench/benchtool.c -lpthread
TOOL=build/bench/benchtool
PORT=$($TOOL freeport)
STATE=$OUT/state

hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
ms() { $TOOL now; }

# probe SECONDS: PINGs every millisecond on one connection; prints the
# number sent, p99 and max round trip in ms, and connection attempts that
# were refused before the first answer.
probe() {
    python3 - "$PORT" "$1" <<'EOF'
import socket, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
give_up = time.monotonic() + 120
refused = 0
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        break
    except OSError:
        refused += 1
        if time.monotonic() > give_up:
            sys.exit("never accepted")
        time.sleep(0.005)
s.settimeout(10)
end = time.monotonic() + secs
rtts = []
while time.monotonic() < end:
    t = time.monotonic()
    s.sendall(b"PING\r\n")
    buf = b""
    while not buf.endswith(b"\r\n"):
        buf += s.recv(64)
    rtts.append((time.monotonic() - t) * 1000)
    time.sleep(0.001)
rtts.sort()
print("pings=%d p99_ms=%.2f max_ms=%.2f refused_connects=%d" % (
    len(rtts), rtts[int(len(rtts) * 0.99)], rtts[-1], refused))
EOF
}

start() {
    "$DAEMON" --bind 127.0.0.1 --port "$PORT" --loglevel warning \
        --state_file "$STATE" >>"$OUT/log" 2>&1 &
    PID=$!
}

start
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT))" 2>/dev/null; do sleep 0.05; done
echo "== $N locks, TTL $TTL ms"
$TOOL load 127.0.0.1 "$PORT" acquire "$N" 'lock:%d' "$TTL"
echo "loaded: VmHWM $(hwm $PID) kB, journal $(stat -c %s "$STATE") bytes"

# Clean stop: time to exit, peak memory while writing (polled).
T0=$(ms)
peak=0
kill -TERM $PID
while kill -0 $PID 2>/dev/null; do
    h=$(hwm $PID); [ "${h:-0}" -gt "$peak" ] && peak=$h
    sleep 0.01
done
wait $PID || true
T1=$(ms)
echo "clean stop: $((T1 - T0)) ms, VmHWM $peak kB, file $(stat -c %s "$STATE") bytes"

# Restart: time until the first PING answers, then PING latency for 3 s.
T0=$(ms)
start
probe 3 > "$OUT/probe" &
PROBE=$!
until [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ]; do sleep 0.01; done
T1=$(ms)
wait $PROBE
echo "restart: answering after $((T1 - T0)) ms, VmHWM $(hwm $PID) kB"
echo "around the restart: $(cat "$OUT/probe")"

# FOREVER locks: one fdatasync each, and the journal rewrites they cause,
# pipelined 1,000 at a time while another client PINGs.
probe 3 > "$OUT/probe" &
PROBE=$!
T0=$(ms)
python3 - "$PORT" "$FOREVER_N" <<'EOF'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
f = s.makefile("rb")
for i in range(0, n, 1000):
    m = min(1000, n - i)
    s.sendall(b"".join(b"ACQUIRE forever:%d TTL FOREVER\r\n" % (i + j)
                       for j in range(m)))
    for _ in range(m):
        if not f.readline().startswith(b":"):
            sys.exit("unexpected reply")
EOF
T1=$(ms)
wait $PROBE
echo "== $FOREVER_N FOREVER locks, pipelined: $((T1 - T0)) ms, journal $(stat -c %s "$STATE") bytes"
echo "PING meanwhile: $(cat "$OUT/probe")"
kill -TERM $PID
wait $PID || true
