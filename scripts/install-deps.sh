#!/bin/sh
# scripts/install-deps.sh - make sure cachifyd's build and test dependencies
# are installed.  As root it installs what is missing with apt-get; as any
# other user it prints the exact command to run and fails.  Quiet when
# everything is already there, so `make run` / `make test` stay fast.
set -eu

# Debian package : how we check that it is there.
need=""
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
have_cmd() { command -v "$1" >/dev/null 2>&1; }
# Debian's python3-redis serves Debian's interpreter, whatever else is on PATH.
have_py() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1; }

have_cmd cc || need="$need gcc"
have_cmd make || need="$need make"
have_cmd pkg-config || need="$need pkg-config"
have_pc libevent || need="$need libevent-dev"
have_pc jansson || need="$need libjansson-dev"
have_pc check || need="$need check"
# TLS: the daemon's tls_port and the client's cachifys://.
have_pc openssl || need="$need libssl-dev"
# The TLS tests make their certificates with openssl(1).
have_cmd openssl || need="$need openssl"
have_cmd redis-cli || need="$need redis-tools"
# The reference the Redis-compatibility tests compare cachifyd with.
have_cmd redis-server || need="$need redis-server"
have_cmd nc || need="$need netcat-openbsd"
have_cmd valgrind || need="$need valgrind"
# The etcd:// backend's tests run a real three-member cluster; etcdctl (in
# etcd-client) sets up its users and roles for the auth test.
[ -x /usr/bin/etcd ] || need="$need etcd-server"
have_cmd etcdctl || need="$need etcd-client"
[ -x /usr/bin/python3 ] || need="$need python3"
have_py redis || need="$need python3-redis"
# tests/scripts/metrics.sh parses /metrics with Prometheus's own parser.
have_py prometheus_client || need="$need python3-prometheus-client"
# tests/scripts/service_files.sh renders docs/cachifyd.8.
have_cmd groff || need="$need groff-base"

[ -z "$need" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "cachifyd needs these Debian packages:$need" >&2
    echo "install them with:  sudo apt-get install -y$need" >&2
    exit 1
fi
echo "installing:$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086  # word splitting of the package list is wanted
apt-get install -y -qq --no-install-recommends $need
