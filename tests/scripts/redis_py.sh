#!/bin/sh
# tests/scripts/redis_py.sh - redis-py (Debian's python3-redis) and
# redis-cli (redis-tools) as real outside clients of cachifyd.
#
# Owns: starting $CACHIFYD_BIN on a free loopback port and running
# tests/scripts/redis_py_check.py and redis_cli_check.py against it with
# Debian's interpreter (python3-redis serves /usr/bin/python3, whatever
# else is on PATH).
# Exits non-zero on any failure.
set -eu

cd "$(dirname "$0")/../.."
bin=${CACHIFYD_BIN:-build/cachifyd}
tmp=$(mktemp -d /tmp/cachify-redispy.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --bind 127.0.0.1 --port "$port" --loglevel warning 2>"$tmp/log" &
pid=$!
for check in redis_py_check.py redis_cli_check.py; do
    if ! /usr/bin/python3 "tests/scripts/$check" "$port"; then
        cat "$tmp/log" >&2
        exit 1
    fi
done
