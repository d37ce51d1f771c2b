#!/bin/sh
# tests/scripts/redis_compat.sh - cachifyd beside a real redis-server, both
# driven by redis-py the way py-cachify drives Redis.
#
# Owns: starting $CACHIFYD_BIN and Debian's redis-server on free loopback
# ports (redis-server with no persistence, in a temporary directory),
# running tests/scripts/redis_compat_check.py against both with Debian's
# interpreter, and stopping both on every path.  Exits non-zero on any
# failure.
set -eu

cd "$(dirname "$0")/../.."
bin=${CACHIFYD_BIN:-build/cachifyd}
tmp=$(mktemp -d /tmp/cachify-redis-compat.XXXXXX)
cpid=
rpid=
cleanup() {
    [ -n "$cpid" ] && kill "$cpid" 2>/dev/null && wait "$cpid" 2>/dev/null
    [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
cport=$(free_port)
rport=$(free_port)
"$bin" --bind 127.0.0.1 --port "$cport" --loglevel warning 2>"$tmp/cachifyd.log" &
cpid=$!
redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" &
rpid=$!
if ! /usr/bin/python3 tests/scripts/redis_compat_check.py "$cport" "$rport"; then
    echo "---- cachifyd log ----" >&2
    cat "$tmp/cachifyd.log" >&2
    exit 1
fi
