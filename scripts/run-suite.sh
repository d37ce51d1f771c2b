#!/bin/sh
# scripts/run-suite.sh - run one test suite for make, its output kept whole.
#
#     run-suite.sh [--alone LOCK | --shared LOCK] LABEL LOG [NAME=value]...
#                  COMMAND [ARG]...
#
# Owns: running COMMAND (through env, so the NAME=value pairs set its
# environment) with its output going to LOG only, then printing "== LABEL",
# LOG and a last line with the outcome and the wall time, in one piece.
# So suites that `make -j2` runs side by side do not mix their lines, and
# LOG stays for a later look.  With --alone, COMMAND runs while no other
# suite holds LOCK, and none starts meanwhile (an exclusive flock); with
# --shared, beside any other --shared one (a shared flock); without flock(1)
# both are ignored.  With SUITE_TIMES set in its environment, it also
# appends "SECONDS LABEL" to that file.  Exits with COMMAND's status, so a
# failed suite fails make.  Does not choose what runs or how many at
# once: that is the Makefile's.
set -u

lock_mode=
lock=
case "${1:-}" in
    --alone) lock_mode=-x; lock=$2; shift 2 ;;
    --shared) lock_mode=-s; lock=$2; shift 2 ;;
esac
label=$1
log=$2
shift 2
mkdir -p "$(dirname "$log")"
# The lock is held on descriptor 9 until this script exits; the time
# printed leaves out the wait for it.
if [ -n "$lock" ] && command -v flock >/dev/null 2>&1; then
    mkdir -p "$(dirname "$lock")"
    exec 9>>"$lock"
    flock "$lock_mode" 9
fi
start=$(date +%s)
rc=0
env "$@" >"$log" 2>&1 </dev/null 9>&- || rc=$?
took=$(($(date +%s) - start))
if [ "$rc" -eq 0 ]; then
    outcome="ok"
else
    outcome="FAILED with status $rc"
fi
echo "== $label"
cat "$log"
echo "== $label: $outcome in ${took} s (log: $log)"
# One short line in append mode: runs side by side do not cut each other's.
if [ -n "${SUITE_TIMES:-}" ]; then
    echo "$took $label" >>"$SUITE_TIMES"
fi
exit "$rc"
