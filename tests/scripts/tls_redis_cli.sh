#!/bin/sh
# tests/scripts/tls_redis_cli.sh - redis-cli --tls (Debian's redis-tools,
# built with TLS) as a real outside client of cachifyd's TLS port.
#
# Owns: certificates made fresh (tests/support/make-test-certs.sh), a
# daemon with a plain port and a TLS port under tls_auth_clients yes, and
# redis-cli --tls --cacert --cert --key against it: PING, ACQUIRE and
# RELEASE, SET NX and GET, the lock seen from the plain port; then the
# refusals: no client certificate, and a certificate from another CA.
# Exits non-zero on any failure.
set -eu

cd "$(dirname "$0")/../.."
bin=${CACHIFYD_BIN:-build/cachifyd}
name=tls_redis_cli
tmp=$(mktemp -d /tmp/cachify-tlscli.XXXXXX)
. tests/scripts/lib/scratch.sh

command -v redis-cli >/dev/null 2>&1 || fail "redis-cli is missing (redis-tools)"
redis-cli --help 2>&1 | grep -q -- '--tls' || fail "this redis-cli has no --tls"

sh tests/support/make-test-certs.sh "$tmp/certs" || fail "cannot make certificates"
c=$tmp/certs
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
tls_port=$(free_port)
while [ "$tls_port" = "$port" ]; do tls_port=$(free_port); done

daemon_log=$tmp/log
"$bin" --bind 127.0.0.1 --port "$port" --tls-port "$tls_port" \
    --tls-cert-file "$c/server.crt" --tls-key-file "$c/server.key" \
    --tls-ca-cert-file "$c/ca.crt" --tls-auth-clients yes \
    --loglevel debug 2>"$daemon_log" &
daemon_pid=$!
i=0
until [ "$(redis-cli -p "$port" PING 2>/dev/null)" = PONG ]; do
    i=$((i + 1))
    [ $i -le 200 ] || fail "the daemon did not start"
    sleep 0.05
done

# tcli ARGS...: redis-cli over TLS with the CA's client certificate; the
# server's certificate is verified against the test CA (as 127.0.0.1).
tcli() {
    redis-cli -h 127.0.0.1 -p "$tls_port" --tls --cacert "$c/ca.crt" \
        --cert "$c/client.crt" --key "$c/client.key" "$@"
}
expect() {
    want=$1
    shift
    got=$("$@" 2>&1) || true
    [ "$got" = "$want" ] || fail "$*: expected '$want', got '$got'"
}

expect PONG tcli PING
token=$(tcli ACQUIRE tls:job TTL 60000)
case $token in
    ''|*[!0-9]*) fail "ACQUIRE over TLS: '$token' is not a token" ;;
esac
expect 1 redis-cli -p "$port" IS_LOCKED tls:job
expect "LOCKED tls:job is already locked!" tcli ACQUIRE tls:job
expect 1 tcli RELEASE tls:job "$token"
expect OK tcli SET tls:k hello NX
expect "" tcli SET tls:k again NX
expect hello tcli GET tls:k
expect hello redis-cli -p "$port" GET tls:k
grep -q 'TLS: TLSv1.[23] .*/CN=client' "$daemon_log" ||
    fail "no TLS handshake with the client certificate in the log"

# Refusals: no client certificate; one from an unknown CA.
out=$(redis-cli -h 127.0.0.1 -p "$tls_port" --tls --cacert "$c/ca.crt" PING 2>&1) || true
[ "$out" != PONG ] || fail "PING without a client certificate was answered"
out=$(redis-cli -h 127.0.0.1 -p "$tls_port" --tls --cacert "$c/ca.crt" \
      --cert "$c/rogue-client.crt" --key "$c/rogue-client.key" PING 2>&1) || true
[ "$out" != PONG ] || fail "PING with a rogue CA's certificate was answered"
fails=$(redis-cli -p "$port" STATS | sed 's/.*"tls_handshake_failures":\([0-9]*\).*/\1/')
[ "$fails" = 2 ] || fail "tls_handshake_failures is '$fails', not 2"
# And without --tls, the TLS port does not answer plain text.
out=$(redis-cli -h 127.0.0.1 -p "$tls_port" PING 2>&1) || true
[ "$out" != PONG ] || fail "plain PING on the TLS port was answered"
expect PONG tcli PING
# A clean stop with TLS connections behind it.
kill -TERM "$daemon_pid"
rc=0
wait "$daemon_pid" || rc=$?
daemon_pid=
[ "$rc" = 0 ] || fail "the daemon exited with $rc"
echo "$name: ok"
