# shellcheck shell=sh disable=SC2154  # name and tmp come from the caller
# tests/scripts/lib/scratch.sh - sourced by script tests (not one itself:
# make runs tests/scripts/*.sh only).
#
# Owns: the scratch directory $tmp, removed at exit together with the
# daemon the test started (its pid in $daemon_pid, stopped by SIGTERM), and
# fail(), which prints "NAME: FAIL: message", then $daemon_log if set.
# Set before sourcing: name (for messages), tmp (from mktemp -d).

daemon_pid=
daemon_log=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail() {
    echo "$name: FAIL: $*" >&2
    if [ -n "$daemon_log" ] && [ -f "$daemon_log" ]; then
        cat "$daemon_log" >&2
    fi
    exit 1
}
