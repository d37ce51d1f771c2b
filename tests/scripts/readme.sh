#!/bin/sh
# tests/scripts/readme.sh - README.md's quick start, run as written.
#
# Owns: the session in README's quick start (the first ```sh block with
# lines starting "$ "), run against $CACHIFYD_BIN started as `make run`
# starts it (-c cachifyd.conf, the shipped file) from a scratch directory,
# on a free port in place of 7379.  Each command's output must match the
# lines under it, where any number of three or more digits (a token, a time
# left) matches any other; redis-cli gets --no-raw, its terminal format.
# Then what README says around it: a bare ACQUIRE gets 30 s, and a clean
# stop (SIGTERM) and a second start keep the session's lock held, by the
# same token.
#
# Environment: CACHIFYD_BIN (default build/cachifyd).  Needs nc
# (netcat-openbsd) and redis-cli.  Exits non-zero on any failure.
set -eu

cd "$(dirname "$0")/../.."
repo=$(pwd)
bin=${CACHIFYD_BIN:-build/cachifyd}
case "$bin" in /*) ;; *) bin=$repo/$bin ;; esac
name=readme.sh
tmp=$(mktemp -d /tmp/cachify-readme.XXXXXX)
. tests/scripts/lib/scratch.sh
daemon_log=$tmp/daemon.log

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cli() { redis-cli --no-raw -p "$port" "$@"; }

# As `make run`: the shipped cachifyd.conf, from the directory it was
# started in (where its state_file, cachifyd.state, goes).
start() {
    (cd "$tmp" && exec "$bin" -c "$repo/cachifyd.conf" --port "$port") \
        >>"$daemon_log" 2>&1 &
    daemon_pid=$!
    tries=0
    until [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ]; do
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ] || ! kill -0 "$daemon_pid" 2>/dev/null; then
            fail "the daemon did not start on port $port"
        fi
        sleep 0.1
    done
}

stop() {
    kill -TERM "$daemon_pid"
    rc=0
    wait "$daemon_pid" || rc=$?
    daemon_pid=
    [ "$rc" -eq 0 ] || fail "the daemon exited with status $rc on SIGTERM"
}

# Split the session into cmd.N and exp.N.
mkdir "$tmp/session"
awk -v dir="$tmp/session" '
    /^```sh$/ { on = 1; next }
    on && /^```$/ { on = 0; if (n) exit; next }
    on && /^\$ / { n++; print substr($0, 3) > (dir "/cmd." n);
                   printf "" > (dir "/exp." n); next }
    on && n { print > (dir "/exp." n) }
' README.md
[ -f "$tmp/session/cmd.1" ] || fail "README.md has no quick-start session"

# Replies end in CRLF on the wire, lines in README in LF.
numbers() { tr -d '\r' | sed -E 's/[0-9]{3,}/<n>/g'; }

start
n=1
while [ -f "$tmp/session/cmd.$n" ]; do
    cmd=$(sed -e "s/7379/$port/g" -e 's/redis-cli /redis-cli --no-raw /g' \
        "$tmp/session/cmd.$n")
    printf 'readme.sh: $ %s\n' "$cmd"
    sh -c "$cmd" >"$tmp/out.$n" 2>&1 || fail "exit status $? from: $cmd"
    numbers <"$tmp/out.$n" >"$tmp/got"
    numbers <"$tmp/session/exp.$n" >"$tmp/want"
    diff -u "$tmp/want" "$tmp/got" ||
        fail "README.md's output differs for: $cmd"
    n=$((n + 1))
done

# The session's first reply is the token of `job`.
token=$(tr -d '\r' <"$tmp/out.1" | sed -n 's/^:\([0-9]*\)$/\1/p;1q')
[ -n "$token" ] || fail "no token in the session's first reply"

# "An ACQUIRE that names no TTL gets default_ttl_ms, 30 s."
case "$(cli ACQUIRE bare)" in
    "(integer) "[0-9]*) ;;
    *) fail "a bare ACQUIRE was refused" ;;
esac
left=$(redis-cli -p "$port" PTTL bare)
if [ "$left" -le 29000 ] || [ "$left" -gt 30000 ]; then
    fail "a bare ACQUIRE has $left ms, not 30 s"
fi

# A clean stop and a second start: job is still held, by the same token.
stop
[ -f "$tmp/cachifyd.state" ] || fail "no cachifyd.state after a clean stop"
start
[ "$(cli ACQUIRE job)" = "(error) LOCKED job is already locked!" ] ||
    fail "job is not held after a restart"
left=$(redis-cli -p "$port" PTTL job)
[ "$left" -gt 0 ] || fail "job has $left ms left after a restart"
[ "$(redis-cli -p "$port" RELEASE job "$token")" = 1 ] ||
    fail "job is not held by token $token after a restart"
stop
echo "readme.sh: ok"
