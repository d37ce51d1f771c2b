#!/bin/sh
# bench/backends.sh - the client library on one cachifyd against the same
# library on a three-member etcd cluster, same machine, same run: lock
# acquire/release pairs per second (1 and 8 clients) and the handoff
# latency (a waiter blocked in acquire, the holder releases: the time to
# the waiter's grant).  `make bench` runs it after bench/run.sh; `make
# bench-backends` runs it alone.  Prints a table (docs/scaling.md quotes
# one) and writes build/bench/backends.tsv.  Not a test: nothing is judged.
#
# Knobs: BENCH_SECONDS (5) per pairs run, BENCH_HANDOFFS (100) rounds.
# The etcd data directories are in /dev/shm (as in the tests): an fsync
# there costs little, so the etcd figures are its best case on this box,
# not what a cluster on real disks and a real network does.
set -eu

cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=$BUILD/bench
TOOL=$OUT/backend_bench
SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_HANDOFFS:-100}
[ -x "$TOOL" ] || { echo "bench: $TOOL is missing (make first)" >&2; exit 1; }
[ -x /usr/bin/etcd ] || { echo "bench: /usr/bin/etcd is missing (make deps)" >&2; exit 1; }

DIR=$(mktemp -d /dev/shm/cachify-bench-XXXXXX 2>/dev/null || mktemp -d)
PIDS=""
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT INT TERM HUP

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# cachifyd
CPORT=$(free_port)
"$BUILD/cachifyd" --bind 127.0.0.1 --port "$CPORT" 2>"$DIR/cachifyd.log" &
PIDS="$PIDS $!"

# etcd: three members
INITIAL="" ; CLIENTS=""
for i in 0 1 2; do
    eval "C$i=$(free_port)"; eval "P$i=$(free_port)"
    eval "INITIAL=\"\${INITIAL:+\$INITIAL,}m$i=http://127.0.0.1:\$P$i\""
    eval "CLIENTS=\"\${CLIENTS:+\$CLIENTS,}127.0.0.1:\$C$i\""
done
for i in 0 1 2; do
    eval "c=\$C$i p=\$P$i"
    /usr/bin/etcd --name "m$i" --data-dir "$DIR/m$i" \
        --listen-client-urls "http://127.0.0.1:$c" \
        --advertise-client-urls "http://127.0.0.1:$c" \
        --listen-peer-urls "http://127.0.0.1:$p" \
        --initial-advertise-peer-urls "http://127.0.0.1:$p" \
        --initial-cluster "$INITIAL" --initial-cluster-state new \
        --initial-cluster-token "$DIR" --logger zap --log-outputs stderr \
        2>"$DIR/m$i.log" &
    PIDS="$PIDS $!"
done

CURL="cachify://127.0.0.1:$CPORT"
EURL="etcd://$CLIENTS/?prefix=bench/"
# Ready when a call goes through (the tool exits non-zero until then).
for url in "$CURL" "$EURL"; do
    n=0
    until "$TOOL" "$url" 0.1 1 1 >/dev/null 2>&1; do
        n=$((n + 1))
        [ "$n" -lt 100 ] || { echo "bench: $url never answered" >&2; exit 1; }
        sleep 0.3
    done
done

TSV=$OUT/backends.tsv
printf 'backend\tclients\tpairs_per_s\thandoff_median_ms\thandoff_p90_ms\thandoff_max_ms\n' > "$TSV"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-9s %7s %12s %18s %15s\n' backend clients pairs/s "handoff median ms" "handoff p90 ms"
# Interleaved (cachifyd, etcd, cachifyd, etcd) so drift hits both alike.
for clients in 1 8; do
    for b in cachifyd etcd; do
        [ "$b" = cachifyd ] && url=$CURL || url=$EURL
        res=$("$TOOL" "$url" "$SECS" "$clients" "$ROUNDS")
        pairs=$(echo "$res" | awk '$1=="pairs"{print $2}')
        med=$(echo "$res" | awk '$1=="handoff"{print $2}')
        p90=$(echo "$res" | awk '$1=="handoff"{print $3}')
        max=$(echo "$res" | awk '$1=="handoff"{print $4}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$b" "$clients" "$pairs" "$med" "$p90" "$max" >> "$TSV"
        printf '%-9s %7s %12s %18s %15s\n' "$b" "$clients" "$pairs" "$med" "$p90"
    done
done
