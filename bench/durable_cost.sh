#!/bin/sh
# bench/durable_cost.sh - what crash safety costs for leases longer than
# long_lease_ms (60 s by default), which are journaled one by one.
#
# Usage: sh bench/durable_cost.sh [DAEMON...]   (default build/cachifyd)
#
# For each daemon: starts it with a state file on a free loopback port,
# takes N locks with TTL 600 s pipelined on one connection (the bench
# tool's bulk loader), prints the time that took and the RSS growth per
# lock, then runs redis-benchmark's RELEASE of random keys of those N (50
# clients, N requests) and prints its ops/s and the daemon's CPU per
# request (user + kernel, from /proc/PID/stat).  Needs build/bench/benchtool
# (built by `make bench`) and redis-benchmark.  Figures only, no verdict.
set -eu
cd "$(dirname "$0")/.."
N=${N:-100000}
TOOL=build/bench/benchtool
[ -x "$TOOL" ] || { echo "build $TOOL first (make bench builds it)" >&2; exit 1; }
[ $# -gt 0 ] || set -- build/cachifyd
HZ=$(getconf CLK_TCK)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

for bin in "$@"; do
    port=$(free_port)
    dir=$(mktemp -d)
    "$bin" --bind 127.0.0.1 --port "$port" --loglevel warning \
        --state_file "$dir/state" &
    pid=$!
    i=0
    until redis-cli -p "$port" PING >/dev/null 2>&1; do
        i=$((i + 1)); [ $i -lt 100 ] || { kill $pid; exit 1; }; sleep 0.1
    done
    before=$(rss_kb $pid)
    t0=$(date +%s%N)
    "$TOOL" load 127.0.0.1 "$port" acquire "$N" 'lock:%012d' 600000 >/dev/null
    t1=$(date +%s%N)
    after=$(rss_kb $pid)
    c0=$(cpu_ticks $pid)
    ops=$(redis-benchmark -p "$port" -c 50 -n "$N" -r "$N" -q \
          RELEASE 'lock:__rand_int__' 2>&1 | tr '\r' '\n' |
          sed -n 's/.*: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
    c1=$(cpu_ticks $pid)
    echo "$bin: $N locks TTL 600 s taken in $(( (t1 - t0) / 1000000 )) ms," \
         "$(( (after - before) * 1024 / N )) bytes/lock;" \
         "RELEASE $ops ops/s, $(( (c1 - c0) * 1000000 / HZ / N )) us cpu/request"
    kill $pid
    wait $pid 2>/dev/null || true
    rm -rf "$dir"
done
