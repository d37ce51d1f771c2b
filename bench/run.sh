#!/bin/sh
# bench/run.sh - cachifyd against redis-server on this machine, in one run,
# driven by the same load generator (redis-benchmark speaks RESP to both).
# `make bench` runs it after building build/cachifyd.  Nothing here is a
# test: it prints figures and writes docs/performance.md and docs/bench.png.
#
# Every throughput run starts from a fresh server (both servers start empty
# or preloaded the same way), runs are interleaved (cachifyd, redis,
# cachifyd, redis, ...) so drift on this shared machine hits both alike, and
# the medians are compared.  Each run records the load average and the
# server's CPU time per request (user and kernel) and the load generator's.
# The first round of each workload also counts the server's system calls
# (perf stat on the kernel's syscall tracepoints: a counter increment per
# call, not strace's stop per call, so the run is not slowed noticeably).
#
# Knobs (environment): BENCH_RUNS (default 7) rounds per workload,
# BENCH_SWEEP_RUNS (3) rounds per point of the client sweep, BENCH_N (100000)
# requests per unpipelined run, BENCH_NP (1000000) per pipelined run,
# BENCH_QUICK=1 (a smoke run with small sizes, doc and picture not written),
# BENCH_BUSY_POLL_US (0, as cachifyd.conf ships) the cachifyd's
# busy_poll_us.  When it is not 0 the ACQUIRE rounds also run
# "cachifyd-default", cachifyd with busy polling off (the shipped default),
# so both settings are measured in the same run.
#
# The TLS rows run both servers with a TLS port and the same certificates
# (made fresh under build/bench/certs by tests/support/make-test-certs.sh),
# client certificates required on both; they are left out, with a
# message, when redis-server or redis-benchmark was built without TLS.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${BUILD:-build}
DAEMON=$ROOT/$BUILD/cachifyd
OUT=$ROOT/$BUILD/bench
TOOL=$OUT/benchtool
DOC=$ROOT/docs/performance.md
PNG=$ROOT/docs/bench.png

RUNS=${BENCH_RUNS:-7}
SWEEP_RUNS=${BENCH_SWEEP_RUNS:-3}
N=${BENCH_N:-100000}
NP=${BENCH_NP:-1000000}
MEM_N=1000000
STORM_N=1000000
HANDOFFS=2000
POLL_HANDOFFS=50
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    RUNS=1 SWEEP_RUNS=1 N=20000 NP=100000 MEM_N=100000 STORM_N=100000
    HANDOFFS=200 POLL_HANDOFFS=5
fi
# Random part of the ACQUIRE keys: two draws below 10^8 each, so a run of a
# few million requests practically never repeats a key (see the doc).
RKEY=100000000
# Key space of the IS_LOCKED / RELEASE workloads, preloaded on both servers.
KEYSPACE=100000
BUSY_POLL_US=${BENCH_BUSY_POLL_US:-0}

# ---- bench-only dependencies (not needed by `make test`) ----
need=""
command -v redis-server >/dev/null 2>&1 || need="$need redis-server"
command -v redis-benchmark >/dev/null 2>&1 || need="$need redis-tools"
command -v gnuplot >/dev/null 2>&1 || need="$need gnuplot-nox"
[ -x /usr/bin/python3 ] || need="$need python3"
command -v perf >/dev/null 2>&1 || need="$need linux-perf"
if [ -n "$need" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bench needs these Debian packages:$need" >&2
        echo "install them with:  sudo apt-get install -y$need" >&2
        exit 1
    fi
    echo "installing:$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need
fi
[ -x "$DAEMON" ] || { echo "bench: $DAEMON is missing (make first)" >&2; exit 1; }

mkdir -p "$OUT"
${CC:-cc} -std=c11 -O2 -Wall -Wextra -Werror -pthread -o "$TOOL" bench/benchtool.c

RESULTS=$OUT/results.tsv
LOG=$OUT/run.log
printf 'workload\tserver\tround\tclients\tpipeline\tops_per_s\tcpu_us_per_op\tload1\textra\n' > "$RESULTS"
: > "$LOG"

PID=""
PORT=""
TLS_PORT=""
TLS_CERTS=$OUT/certs
SERVER=""
cleanup() {
    if [ -n "$PID" ]; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

load1() { cut -d' ' -f1 /proc/loadavg; }

# utime and stime of $PID in clock ticks ("user sys").
cpu_ticks() { awk '{ print $14, $15 }' "/proc/$PID/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# CPU seconds (user + sys) used so far by this shell's finished children,
# from the second line of `times` ("0m1.23s 0m4.56s").  `times` must run in
# this shell, not in a pipeline or $(...), whose subshell has no children.
children_cpu() {
    times > "$OUT/times.txt"
    awk 'NR == 2 { gsub(/[ms]/, " "); print $1 * 60 + $2 + $3 * 60 + $4 }' \
        "$OUT/times.txt"
}

# System calls counted per run: the total, and the ones a request path
# makes (read side, write side, the loop's).  Needs perf and the right to
# attach to the server (root, or kernel.perf_event_paranoid <= -1); without
# them the counts are left out and the summary says so.
SC_NAMES="read readv recvfrom write writev sendto ioctl epoll_wait epoll_pwait epoll_ctl"
SC_EVENTS=raw_syscalls:sys_enter
for n in $SC_NAMES; do SC_EVENTS="$SC_EVENTS,syscalls:sys_enter_$n"; done
SYSCOUNT=0
perf stat -x, -e "$SC_EVENTS" -o /dev/null true >/dev/null 2>&1 && SYSCOUNT=1
[ $SYSCOUNT = 1 ] || echo "bench: perf cannot count syscalls here; the syscall table is left out" >&2
SCPID=""

# sc_start / sc_stop: count $PID's system calls between them, when
# COUNT_SC=1.  sc_stop prints "sc_total=N sc_read=N ..." per request (of $1).
sc_start() {
    [ $SYSCOUNT = 1 ] && [ "${COUNT_SC:-0}" = 1 ] || return 0
    rm -f "$OUT/sc.txt"
    perf stat -x, -e "$SC_EVENTS" -p "$PID" -o "$OUT/sc.txt" 2>/dev/null &
    SCPID=$!
    # perf attaches in well under this; the idle server makes no calls.
    sleep 0.3
}
sc_stop() {
    [ -n "$SCPID" ] || return 0
    kill -INT "$SCPID"
    wait "$SCPID" 2>/dev/null || true
    SCPID=""
    [ -s "$OUT/sc.txt" ] || return 0
    awk -F, -v n="$1" '$3 ~ /sys_enter/ {
            name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "total"
            printf " sc_%s=%.3f", name, $1 / n }' "$OUT/sc.txt"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }

# start cachifyd|cachifyd-default|redis: a fresh, empty server on a free
# loopback port.  cachifyd-default is cachifyd with busy polling off.
start() {
    SERVER=$1
    PORT=$("$TOOL" freeport)
    if [ "$SERVER" != redis ]; then
        poll=$BUSY_POLL_US
        [ "$SERVER" = cachifyd-default ] && poll=0
        # With a state file, as cachifyd.conf ships it: the crash-safety
        # journal's cost is part of every figure.
        rm -f "$OUT/state.$PORT"
        "$DAEMON" --bind 127.0.0.1 --port "$PORT" --loglevel warning \
            --state_file "$OUT/state.$PORT" --busy_poll_us "$poll" \
            >>"$LOG" 2>&1 &
    else
        redis-server --bind 127.0.0.1 --port "$PORT" --save "" \
            --appendonly no --loglevel warning --daemonize no >>"$LOG" 2>&1 &
    fi
    PID=$!
    wait_ready
}

# Waits until the server on $PORT answers PING; returns 1 when it does not
# within 5 s (or exits, with FATAL=1, the default).
wait_ready() {
    i=0
    until [ "$(redis-cli -p "$PORT" PING 2>/dev/null)" = PONG ]; do
        i=$((i + 1))
        if [ $i -gt 100 ]; then
            [ "${FATAL:-1}" = 1 ] || return 1
            echo "bench: $SERVER did not start (see $LOG)" >&2
            exit 1
        fi
        sleep 0.05
    done
}

# start_tls cachifyd|redis: start's server with a TLS port as well
# ($TLS_PORT; rb then talks TLS to it, $PORT stays plain for STATS and
# DBSIZE), tls_auth_clients yes on both.  Returns 1 when the server does
# not come up (a redis-server without TLS refuses --tls-port).
start_tls() {
    SERVER=$1
    PORT=$("$TOOL" freeport)
    TLS_PORT=$("$TOOL" freeport)
    while [ "$TLS_PORT" = "$PORT" ]; do TLS_PORT=$("$TOOL" freeport); done
    if [ "$SERVER" != redis ]; then
        rm -f "$OUT/state.$PORT"
        "$DAEMON" --bind 127.0.0.1 --port "$PORT" --loglevel warning \
            --state_file "$OUT/state.$PORT" --busy_poll_us "$BUSY_POLL_US" \
            --tls-port "$TLS_PORT" --tls-cert-file "$TLS_CERTS/server.crt" \
            --tls-key-file "$TLS_CERTS/server.key" \
            --tls-ca-cert-file "$TLS_CERTS/ca.crt" --tls-auth-clients yes \
            >>"$LOG" 2>&1 &
    else
        redis-server --bind 127.0.0.1 --port "$PORT" --tls-port "$TLS_PORT" \
            --tls-cert-file "$TLS_CERTS/server.crt" \
            --tls-key-file "$TLS_CERTS/server.key" \
            --tls-ca-cert-file "$TLS_CERTS/ca.crt" --tls-auth-clients yes \
            --save "" --appendonly no --loglevel warning --daemonize no \
            >>"$LOG" 2>&1 &
    fi
    PID=$!
    FATAL=0 wait_ready
}

stop() {
    # cachifyd is killed outright: a clean stop would write every held lock
    # to its state file, which no figure here measures (bench/restart.sh
    # does).
    if [ "$SERVER" = redis ]; then kill "$PID"; else kill -9 "$PID"; fi
    wait "$PID" 2>/dev/null || true
    rm -f "$OUT/state.$PORT"
    PID=""
    TLS_PORT=""
}

# Keys held now: cachifyd's STATS locks_held, Redis's DBSIZE.
held() {
    if [ "$SERVER" != redis ]; then
        redis-cli -p "$PORT" STATS | sed 's/.*"locks_held":\([0-9]*\).*/\1/'
    else
        redis-cli -p "$PORT" DBSIZE
    fi
}

# preload COUNT FMT TTL_MS [KIND]: the same keys on either server,
# pipelined: ACQUIRE on cachifyd and SET NX PX on Redis, or KIND on both
# (setnx, or setnxN for values of N bytes).
preload() {
    kind=acquire
    [ "$SERVER" = redis ] && kind=setnx
    [ -n "${4:-}" ] && kind=$4
    "$TOOL" load 127.0.0.1 "$PORT" $kind "$1" "$2" "$3" >>"$LOG"
}

# rb WORKLOAD ROUND CLIENTS PIPELINE N COMMAND...: one redis-benchmark run
# against the running server (its TLS port when start_tls started it, with
# the test CA's client certificate), keys drawn with -r R (default RKEY).  Fails unless every request completed: the
# tool stops at the first error reply (a -LOCKED would end it early).
rb() {
    wl=$1 round=$2 clients=$3 pipe=$4 n=$5
    shift 5
    l=$(load1)
    sc_start
    c0=$(cpu_ticks)
    children_cpu > "$OUT/k0.txt"
    k0=$(cat "$OUT/k0.txt")
    if [ -n "$TLS_PORT" ]; then
        set -- -p "$TLS_PORT" --tls --cacert "$TLS_CERTS/ca.crt" \
            --cert "$TLS_CERTS/client.crt" --key "$TLS_CERTS/client.key" "$@"
    else
        set -- -p "$PORT" "$@"
    fi
    out=$(redis-benchmark -h 127.0.0.1 -c "$clients" -P "$pipe" \
          -n "$n" -r "${R:-$RKEY}" "$@" 2>&1 | tr '\r' '\n') || {
        echo "$out" | tail -5 >&2
        echo "bench: redis-benchmark failed on $SERVER: $*" >&2
        exit 1
    }
    c1=$(cpu_ticks)
    children_cpu > "$OUT/k1.txt"
    k1=$(cat "$OUT/k1.txt")
    # In this shell, not in $(...): only this shell can wait for perf.
    sc_stop "$n" > "$OUT/sc_line.txt"
    sc=$(cat "$OUT/sc_line.txt")
    done_n=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests completed in.*/\1/p' | tail -1)
    ops=$(echo "$out" | sed -n 's/.*throughput summary: \([0-9.]*\) requests per second.*/\1/p' | tail -1)
    if [ "$done_n" != "$n" ] || [ -z "$ops" ] || echo "$out" | grep -q '^Error'; then
        echo "$out" | tail -5 >&2
        echo "bench: incomplete run on $SERVER ($done_n of $n): $*" >&2
        exit 1
    fi
    # Server CPU per request (user + sys, and the two apart) and the load
    # generator's, which bounds what any server can show at few clients.
    set -- $c0 $c1
    cpu=$(awk -v u=$(($3 - $1)) -v s=$(($4 - $2)) -v us="$TICK_US" -v n="$n" \
          'BEGIN { printf "%.3f", (u + s) * us / n }')
    split=$(awk -v u=$(($3 - $1)) -v s=$(($4 - $2)) -v us="$TICK_US" -v n="$n" \
          -v k0="$k0" -v k1="$k1" \
          'BEGIN { printf "server_user_us=%.2f server_sys_us=%.2f client_us=%.2f", u * us / n, s * us / n, (k1 - k0) * 1e6 / n }')
    extra="${EXTRA:-}${EXTRA:+ }$split$sc"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$SERVER" "$round" \
        "$clients" "$pipe" "$ops" "$cpu" "$l" "$extra" >> "$RESULTS"
    printf '  %-22s %-8s round %s: %10s ops/s  %6s us cpu/op  load %s %s\n' \
        "$wl" "$SERVER" "$round" "$ops" "$cpu" "$l" "$extra"
}

ACQ="ACQUIRE lock:__rand_int__:__rand_int__ TTL 30000"
SETNX="SET lock:__rand_int__:__rand_int__ tok NX PX 30000"

# acquire_run WORKLOAD ROUND CLIENTS PIPELINE N: on the running server,
# ACQUIRE (cachifyd) or SET NX PX (Redis) on fresh keys; then checks that
# every request took a fresh key (none was held).
acquire_run() {
    cmd=$ACQ
    [ "$SERVER" = redis ] && cmd=$SETNX
    # shellcheck disable=SC2086
    EXTRA="" rb "$1" "$2" "$3" "$4" "$5" $cmd
    h=$(held)
    if [ "$h" != "$5" ]; then
        echo "bench: $SERVER holds $h keys after $5 fresh acquires" >&2
        exit 1
    fi
}

# acquire_round WORKLOAD ROUND CLIENTS PIPELINE N [ping]: ACQUIRE on a fresh
# cachifyd (with BUSY_POLL_US, then, when that is not 0, with busy polling
# off), SET NX PX on a fresh Redis,
# optionally PING on a fresh cachifyd; then checks that every request took a
# fresh key on each (none was held).
acquire_round() {
    wl=$1 round=$2 clients=$3 pipe=$4 n=$5 ping=${6:-}
    COUNT_SC=0
    [ "$round" = 1 ] && COUNT_SC=1
    servers="cachifyd cachifyd-default redis"
    [ "$BUSY_POLL_US" = 0 ] && servers="cachifyd redis"
    for s in $servers; do
        start $s
        acquire_run "$wl" "$round" "$clients" "$pipe" "$n"
        stop
    done
    if [ -n "$ping" ]; then
        start cachifyd
        SERVER=cachifyd-ping
        rb "$wl" "$round" "$clients" "$pipe" "$n" PING
        SERVER=cachifyd
        stop
    fi
    COUNT_SC=0
}

echo "== cachifyd vs redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $(nproc) cores, load $(load1)"

echo "== ACQUIRE vs SET NX PX vs PING, 50 clients, no pipelining"
r=1
while [ $r -le "$RUNS" ]; do
    acquire_round acquire_c50 $r 50 1 "$N" ping
    r=$((r + 1))
done

echo "== the same with 32-deep pipelining"
r=1
while [ $r -le "$RUNS" ]; do
    acquire_round acquire_c50_p32 $r 50 32 "$NP" ping
    r=$((r + 1))
done

echo "== client sweep (1, 10, 200 clients; 50 is above)"
for c in 1 10 200; do
    n=$N
    [ $c = 1 ] && n=$((N / 4))
    r=1
    while [ $r -le "$SWEEP_RUNS" ]; do
        acquire_round "acquire_c$c" $r $c 1 $n
        r=$((r + 1))
    done
done

# tls_round ROUND: ACQUIRE on a fresh cachifyd and SET NX PX on a fresh
# Redis, both over TLS with client certificates, 50 clients, no pipelining
# (each connection's handshake is part of the run: 50 against N requests);
# every request must take a fresh key on each, as in acquire_round.
# Returns 1 when a server would not start with TLS.
tls_round() {
    COUNT_SC=0
    [ "$1" = 1 ] && COUNT_SC=1
    for s in cachifyd redis; do
        start_tls $s || {
            kill "$PID" 2>/dev/null || true
            wait "$PID" 2>/dev/null || true
            PID="" TLS_PORT=""
            echo "  tls: $s did not start with a TLS port (built without TLS?); TLS rows left out"
            return 1
        }
        acquire_run tls_acquire_c50 "$1" 50 1 "$N"
        stop
    done
    COUNT_SC=0
}

echo "== TLS: ACQUIRE vs SET NX PX, 50 clients, client certificates on both"
if redis-benchmark --help 2>&1 | grep -q -- '--tls' &&
    sh tests/support/make-test-certs.sh "$TLS_CERTS" >>"$LOG" 2>&1; then
    r=1
    while [ $r -le "$RUNS" ] && tls_round $r; do
        r=$((r + 1))
    done
else
    echo "  tls: redis-benchmark has no --tls, or openssl failed; TLS rows left out"
fi

# keyed_round WORKLOAD ROUND CACHIFYD_CMD REDIS_CMD [KIND]: both servers
# preloaded with the same KEYSPACE held keys (see preload for KIND), then
# the command on random keys of it.
keyed_round() {
    COUNT_SC=0
    [ "$2" = 1 ] && COUNT_SC=1
    for s in cachifyd redis; do
        start $s
        preload "$KEYSPACE" 'lock:%012d' 600000 "${5:-}"
        if [ $s != redis ]; then cmd=$3; else cmd=$4; fi
        before=$(held)
        # shellcheck disable=SC2086
        R=$KEYSPACE
        EXTRA="held_before=$before" rb "$1" "$2" 50 1 "$N" $cmd
        R=$RKEY
        stop
    done
    COUNT_SC=0
}

echo "== IS_LOCKED vs EXISTS, RELEASE vs DEL ($KEYSPACE held keys, 50 clients)"
r=1
while [ $r -le "$RUNS" ]; do
    keyed_round is_locked $r "IS_LOCKED lock:__rand_int__" "EXISTS lock:__rand_int__"
    keyed_round release $r "RELEASE lock:__rand_int__" "DEL lock:__rand_int__"
    r=$((r + 1))
done

# set_round WORKLOAD ROUND COMMAND...: the same Redis command on a fresh
# cachifyd and a fresh Redis, 50 clients; every request must take a fresh
# key on each.
set_round() {
    wl=$1 round=$2
    shift 2
    COUNT_SC=0
    [ "$round" = 1 ] && COUNT_SC=1
    for s in cachifyd redis; do
        start $s
        EXTRA="" rb "$wl" "$round" 50 1 "$N" "$@"
        h=$(held)
        if [ "$h" != "$N" ]; then
            echo "bench: $s holds $h keys after $N fresh SET NX" >&2
            exit 1
        fi
        stop
    done
    COUNT_SC=0
}

echo "== Redis commands on both: SET NX EX (fresh keys), GET ($KEYSPACE keys with values), 50 clients"
r=1
while [ $r -le "$RUNS" ]; do
    set_round set_nx_ex $r SET "lock:__rand_int__:__rand_int__" tok NX EX 30
    keyed_round get $r "GET lock:__rand_int__" "GET lock:__rand_int__" setnx
    r=$((r + 1))
done

# mem_round WORKLOAD ROUND FMT [KIND [CONNS]]: RSS growth of a fresh server
# while MEM_N keys are loaded (see preload for KIND), over CONNS connections
# (default 1).
mem_round() {
    for s in cachifyd redis; do
        start $s
        before=$(rss_kb)
        l=$(load1)
        if [ -n "${5:-}" ]; then
            kind=acquire
            [ "$s" = redis ] && kind=setnx
            "$TOOL" loadc 127.0.0.1 "$PORT" $kind "$MEM_N" "$3" 600000 "$5" \
                >>"$LOG"
        else
            preload "$MEM_N" "$3" 600000 "${4:-}"
        fi
        after=$(rss_kb)
        h=$(held)
        growth=$((after - before))
        printf '%s\t%s\t%s\t1\t1000\t0\t0\t%s\trss_before_kb=%s rss_after_kb=%s growth_kb=%s held=%s\n' \
            "$1" "$s" "$2" "$l" "$before" "$after" "$growth" "$h" >> "$RESULTS"
        printf '  %-22s %-8s round %s: RSS %s kB -> %s kB, growth %s kB (%s bytes/key), held %s\n' \
            "$1" "$s" "$2" "$before" "$after" "$growth" \
            $((growth * 1024 / MEM_N)) "$h"
        stop
    done
}

echo "== memory: RSS growth holding $MEM_N locks (TTL 600 s), and $MEM_N entries with 100-byte values"
MEM_ROUNDS=3
[ "${BENCH_QUICK:-0}" = 1 ] && MEM_ROUNDS=1
r=1
while [ $r -le $MEM_ROUNDS ]; do
    mem_round memory $r 'lock:%d'
    # redis-benchmark's lock:__rand_int__:__rand_int__: 30 bytes, 50 clients
    mem_round memory_key30 $r 'lock:%012d:%012lld' acquire 50
    mem_round memory_values $r 'key:%d' setnx100
    r=$((r + 1))
done

echo "== expiry storm: $STORM_N locks expiring at the same instant, PING latency"
for s in cachifyd redis; do
    start $s
    l=$(load1)
    at=$(( $("$TOOL" now) + 9000 ))
    kind=acquire
    [ $s = redis ] && kind=setnx
    "$TOOL" load 127.0.0.1 "$PORT" $kind "$STORM_N" 'storm:%d' 0 "$at" >>"$LOG"
    res=$("$TOOL" storm 127.0.0.1 "$PORT" $s "$at" 40)
    printf 'storm\t%s\t1\t1\t1\t0\t0\t%s\t%s\n' "$s" "$l" "$res" >> "$RESULTS"
    printf '  %-22s %-8s: %s\n' storm "$s" "$res"
    stop
done

echo "== handoff: RELEASE sent -> waiter granted"
start cachifyd
l=$(load1)
res=$("$TOOL" handoff 127.0.0.1 "$PORT" "$HANDOFFS")
printf 'handoff\tcachifyd\t1\t2\t1\t0\t0\t%s\t%s\n' "$l" "$res" >> "$RESULTS"
printf '  %-22s %-8s: %s\n' handoff cachifyd "$res"
stop
start redis
l=$(load1)
res=$("$TOOL" pollhandoff 127.0.0.1 "$PORT" "$POLL_HANDOFFS" 100)
printf 'handoff\tredis-poll100ms\t1\t2\t1\t0\t0\t%s\t%s\n' "$l" "$res" >> "$RESULTS"
printf '  %-22s %-8s: %s\n' handoff redis-poll "$res"
stop

echo "== summary"
WRITE=1
[ "${BENCH_QUICK:-0}" = 1 ] && WRITE=0
BENCH_BUSY_POLL_US=$BUSY_POLL_US /usr/bin/python3 bench/summarize.py "$RESULTS" "$DOC" "$PNG" "$OUT" "$WRITE"
