#!/bin/sh
# bench/profile.sh - instructions and system calls per request, for the
# request paths the benchmark drives.  Instruction counts come from
# valgrind's callgrind and repeat exactly for the same binary and load,
# whatever else the machine is doing (unlike ops/s on this shared box);
# system calls come from strace -c.  Not part of `make test` or `make bench`:
# run it by hand (`sh bench/profile.sh [DAEMON]`) to see what a change did.
#
# For each workload: cachifyd under callgrind, a warm-up, counters zeroed,
# N requests from redis-benchmark (C clients), counters dumped; then the same
# under strace -c.  Prints user-space instructions per request and system
# calls per request, and leaves the callgrind files in build/bench/profile/
# (callgrind_annotate build/bench/profile/NAME.out.1 shows where the
# instructions of NAME's requests go).  Knobs: PROFILE_N (20000 requests),
# PROFILE_C (50 clients), PROFILE_QUICK=1 (the unpipelined ACQUIRE only).
# Needs valgrind, strace and redis-benchmark; takes about two minutes.
set -eu

cd "$(dirname "$0")/.."
DAEMON=${1:-build/cachifyd}
OUT=build/bench/profile
N=${PROFILE_N:-20000}
C=${PROFILE_C:-50}
mkdir -p "$OUT" build/bench
[ -x build/bench/benchtool ] || ${CC:-cc} -std=c11 -O2 -pthread \
    -o build/bench/benchtool bench/benchtool.c

ready() {
    i=0
    until [ "$(redis-cli -p "$1" PING 2>/dev/null)" = PONG ]; do
        i=$((i + 1))
        [ $i -gt 200 ] && { echo "profile: daemon did not start" >&2; exit 1; }
        sleep 0.05
    done
}

# callgrind_run NAME PIPELINE N COMMAND...: the daemon under callgrind, a
# warm-up of 2000 requests, then N more; prints its total instructions.
callgrind_run() {
    cname=$1 cpipe=$2 cn=$3
    shift 3
    port=$(build/bench/benchtool freeport)
    valgrind --tool=callgrind --callgrind-out-file="$OUT/$cname.out" \
        "$DAEMON" --bind 127.0.0.1 --port "$port" --loglevel warning \
        --state_file "" 2>"$OUT/$cname.valgrind.log" &
    vpid=$!
    ready "$port"
    redis-benchmark -p "$port" -c "$C" -n 2000 -P "$cpipe" -r 100000000 "$@" \
        >/dev/null 2>&1
    [ "$cn" -gt 0 ] && redis-benchmark -p "$port" -c "$C" -n "$cn" -P "$cpipe" \
        -r 100000000 "$@" >/dev/null 2>&1
    # Dump before the shutdown, whose freeing of every lock is not request
    # work: the totals cover start-up and requests only.
    rm -f "$OUT/$cname.out.1"
    callgrind_control -d "$vpid" >/dev/null 2>&1
    kill "$vpid"
    wait "$vpid" 2>/dev/null || true
    callgrind_annotate "$OUT/$cname.out.1" 2>/dev/null |
        awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'
}

# bench NAME PIPELINE COMMAND...: instructions per request are the
# difference between a run with N requests and one without, over N, so
# start-up and shutdown cancel out.
bench() {
    name=$1 pipe=$2
    shift 2
    ir0=$(callgrind_run "$name.base" "$pipe" 0 "$@")
    ir1=$(callgrind_run "$name" "$pipe" "$N" "$@")
    ir=$((ir1 - ir0))

    port=$(build/bench/benchtool freeport)
    strace -f -c -o "$OUT/$name.strace" "$DAEMON" --bind 127.0.0.1 \
        --port "$port" --loglevel warning --state_file "" &
    spid=$!
    ready "$port"
    redis-benchmark -p "$port" -c "$C" -n "$N" -P "$pipe" -r 100000000 "$@" \
        >/dev/null 2>&1
    kill -TERM "$(pgrep -P "$spid" 2>/dev/null || echo "$spid")" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    calls=$(awk '$NF == "total" { print $4 }' "$OUT/$name.strace")
    awk -v name="$name" -v ir="$ir" -v calls="$calls" -v n="$N" -v p="$pipe" \
        'BEGIN { printf "%-14s -P %-3s %8.0f instructions/request  %5.2f syscalls/request\n", name, p, ir / n, calls / n }'
    awk -v n="$N" 'NR > 2 && $0 !~ /^-/ && $NF != "total" && $4 / n >= 0.01 { printf "      %-12s %5.2f/request\n", $NF, $4 / n }' \
        "$OUT/$name.strace"
}

echo "== $DAEMON, $C clients, $N requests per workload"
bench acquire 1 ACQUIRE lock:__rand_int__:__rand_int__ TTL 30000
[ "${PROFILE_QUICK:-0}" = 1 ] && exit 0
bench ping 1 PING
bench acquire_p32 32 ACQUIRE lock:__rand_int__:__rand_int__ TTL 30000
bench ping_p32 32 PING
