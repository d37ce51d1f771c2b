#!/bin/sh
# tests/scripts/metrics.sh - GET /metrics against a real Prometheus parser.
#
# Owns: starting $CACHIFYD_BIN with metrics_port and a password on free
# loopback ports and running tests/scripts/metrics_check.py against it
# with Debian's interpreter (python3-prometheus-client serves
# /usr/bin/python3, whatever else is on PATH), then stopping the daemon,
# which must exit 0.  Exits non-zero on any failure.
set -eu

cd "$(dirname "$0")/../.."
bin=${CACHIFYD_BIN:-build/cachifyd}
name=metrics.sh
tmp=$(mktemp -d /tmp/cachify-metrics.XXXXXX)
. tests/scripts/lib/scratch.sh
daemon_log=$tmp/log

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
mport=$(free_port)
"$bin" --bind 127.0.0.1 --port "$port" --metrics_port "$mport" \
    --requirepass metrics-pw --loglevel warning 2>"$daemon_log" &
daemon_pid=$!
# Ready when the lock port answers (metrics listen before it does).
i=0
until /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do
    i=$((i + 1))
    [ "$i" -lt 300 ] || fail "the daemon did not start"
    sleep 0.1
done
/usr/bin/python3 tests/scripts/metrics_check.py "$port" "$mport" metrics-pw ||
    fail "metrics_check.py"
kill "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" -eq 0 ] || fail "the daemon exited with $rc"
echo "$name: ok"
