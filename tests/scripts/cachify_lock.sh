#!/bin/sh
# tests/scripts/cachify_lock.sh - cachify-lock over real processes: the
# tool, real cachifyd daemons on free ports (TCP and a Unix socket), and
# real commands run under the lock.
#
# Owns: every promise of cachify-lock's --help and docs/cachify-lock.1 --
# COMMAND runs under the lock with CACHIFY_KEY and CACHIFY_TOKEN; -n gets
# the conflict code (-E), -w and the default wait and then run; a command
# that outlives --ttl keeps its lock (a waiter gets in only after it
# ended); the daemon killed with kill -9 makes cachify-lock stop COMMAND
# per --on-lost and exit 75; a lock released by someone else is noticed
# the same way; exit statuses, 128+N and the forwarded signals; 126/127;
# bad usage, bad URLs, a wrong password and an unreachable daemon give one
# stderr line and their code and never run COMMAND; --is-locked and
# --release codes; two racing `cachify-lock -n nightly-backup ./backup.sh`
# run the backup once; mem: keeps no other process out, as documented;
# cachifys:// runs COMMAND over TLS (renewals included), and a certificate
# refused either way, or a bad TLS option or file, never runs it.
# After every run the lock is free again.
#
# Environment: BUILD (default build; the tool is $BUILD/cachify-lock),
# CACHIFYD_BIN (default build/cachifyd), CACHIFY_LOCK_VALGRIND=1 runs every
# cachify-lock under valgrind (errors and leaks fail the test).  Needs
# python3 (free ports, and to give a background job SIGINT back).  Exits
# non-zero on any failure.
set -eu

cd "$(dirname "$0")/../.."
repo=$(pwd)
build=${BUILD:-build}
case "$build" in /*) ;; *) build=$repo/$build ;; esac
bin=${CACHIFYD_BIN:-build/cachifyd}
case "$bin" in /*) ;; *) bin=$repo/$bin ;; esac
tool=$build/cachify-lock
name=cachify_lock.sh
tmp=$(mktemp -d /tmp/cachify-lock.XXXXXX)
. tests/scripts/lib/scratch.sh
daemon_log=$tmp/daemon.log
[ -x "$tool" ] || fail "$tool is not built"

# The command line of cachify-lock, used unquoted so that "$!" of a
# background job is cachify-lock itself (or valgrind running it).
LOCK=$tool
if [ "${CACHIFY_LOCK_VALGRIND:-}" = 1 ]; then
    LOCK="valgrind -q --error-exitcode=99 --leak-check=full
          --show-leak-kinds=definite,indirect,possible
          --errors-for-leak-kinds=definite,indirect,possible $tool"
fi
# Generous bounds for a loaded 2-core machine (and valgrind).
BOUND=60

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# $dfl COMMAND...: runs COMMAND with SIGINT and SIGQUIT back to their
# defaults: a shell starts background jobs with them ignored, and exec
# keeps that.  A program, not a function, so that "$!" is COMMAND's pid.
dfl=$tmp/dfl
cat >"$dfl" <<'PY'
#!/usr/bin/env python3
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
signal.signal(signal.SIGQUIT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])
PY
chmod +x "$dfl"

# start_daemon [ARGS...]: cachifyd on a free port, $url pointing at it
# (with the password $pass when set).
pass=
start_daemon() {
    port=$(free_port)
    "$bin" --bind 127.0.0.1 --port "$port" --loglevel warning "$@" \
        >>"$daemon_log" 2>&1 &
    daemon_pid=$!
    url=cachify://${pass:+:$pass@}127.0.0.1:$port
    wait_ready "$url"
}

# poll WHAT COMMAND...: runs COMMAND every 0.05 s until it succeeds, for
# up to BOUND seconds.
poll() {
    what=$1
    shift
    i=0
    until "$@"; do
        i=$((i + 1))
        [ "$i" -le $((BOUND * 20)) ] || fail "$what: not within $BOUND s"
        sleep 0.05
    done
}

# The daemon answers on $1: --is-locked says 1 (the probe key is free).
answers() {
    kill -0 "$daemon_pid" 2>/dev/null || fail "the daemon exited"
    rc=0
    $LOCK -u "$1" --is-locked ready-probe 2>/dev/null || rc=$?
    [ "$rc" -eq 1 ]
}

wait_ready() {
    poll "the daemon answers on $1" answers "$1"
}

stop_daemon() {
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" || true
    daemon_pid=
}

# expect CODE WHAT COMMAND...: runs it, stdout in $tmp/out and stderr in
# $tmp/err, and insists on exit status CODE.
expect() {
    want=$1
    what=$2
    shift 2
    rc=0
    "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [ "$rc" -ne "$want" ]; then
        cat "$tmp/out" "$tmp/err" >&2
        fail "$what: exit status $rc, expected $want"
    fi
}

# one_line WHAT: $tmp/err is exactly one line.
one_line() {
    n=$(wc -l <"$tmp/err")
    [ "$n" -eq 1 ] || { cat "$tmp/err" >&2; fail "$1: $n lines on stderr, expected 1"; }
}

# never_ran WHAT: the marker command (touch $tmp/ran) did not run.
never_ran() {
    [ ! -e "$tmp/ran" ] || fail "$1: COMMAND ran"
}

# A refusal: exit CODE, one line on stderr, COMMAND not run.
refused() {
    code=$1
    what=$2
    shift 2
    expect "$code" "$what" "$@"
    one_line "$what"
    never_ran "$what"
}

# free KEY: the lock is free again.
free() {
    expect 1 "--is-locked $1 after its run" $LOCK -u "$url" --is-locked "$1"
}

# wait_file FILE: waits up to BOUND seconds for FILE to appear.
wait_file() {
    poll "$1 appears" test -e "$1"
}

# ended PID: background job PID has ended (a zombie, or gone).
ended() {
    [ ! -e "/proc/$1" ] ||
        [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" = Z ]
}

either_ended() { ended "$1" || ended "$2"; }

# wait_job PID WHAT: waits up to BOUND seconds for background job PID to
# end, its exit status in $rc.
wait_job() {
    i=0
    while ! ended "$1"; do
        i=$((i + 1))
        if [ "$i" -gt $((BOUND * 20)) ]; then
            kill -9 "$1" 2>/dev/null || true
            fail "$2: still running after $BOUND s"
        fi
        sleep 0.05
    done
    rc=0
    wait "$1" || rc=$?
}

# A command that says it started and then runs until $tmp/go exists.
hold_cmd='touch "$1.started"; echo "$CACHIFY_TOKEN" > "$1.token"; while [ ! -e "$1.go" ]; do sleep 0.05; done'

start_daemon

echo "cachify_lock.sh: --help, --version"
expect 0 "--help" $LOCK --help
for word in "--nonblock" "--conflict-exit-code" "--on-lost" "--is-locked" \
            "--release" "CACHIFY_TOKEN" "64 " "69 " "71 " "75 " "126" "127"; do
    grep -q -e "$word" "$tmp/out" || fail "--help does not mention $word"
done
# The exit codes of tools/lock_cli.h are in --help and the man page too.
for code in 64 69 71 75 126 127; do
    grep -q "= $code," tools/lock_cli.h || fail "lock_cli.h has no exit code $code"
    grep -q "^ *$code " "$tmp/out" || fail "--help does not list exit code $code"
    grep -q "^\.B $code\$" docs/cachify-lock.1 || fail "cachify-lock.1 does not list $code"
done
if command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 -ww docs/cachify-lock.1 >/dev/null 2>"$tmp/groff.err"
    [ ! -s "$tmp/groff.err" ] || fail "cachify-lock.1: $(cat "$tmp/groff.err")"
fi
expect 0 "--version" $LOCK --version
grep -q '^cachify-lock ' "$tmp/out" || fail "--version says: $(cat "$tmp/out")"

echo "cachify_lock.sh: bad usage is refused with 64 before anything runs"
m="touch $tmp/ran"
refused 64 "no arguments" $LOCK
refused 64 "unknown option" $LOCK -u "$url" -x k $m
refused 64 "no COMMAND" $LOCK -u "$url" k
refused 64 "--ttl abc" $LOCK -u "$url" --ttl abc k $m
refused 64 "--ttl below 0.1" $LOCK -u "$url" --ttl 0.05 k $m
refused 64 "--ttl 1e3" $LOCK -u "$url" --ttl 1e3 k $m
refused 64 "-w -1" $LOCK -u "$url" -w -1 k $m
refused 64 "-w inf" $LOCK -u "$url" -w inf k $m
refused 64 "-w without a value" $LOCK -w
refused 64 "-E 256" $LOCK -u "$url" -E 256 k $m
refused 64 "-E x" $LOCK -u "$url" -E x k $m
refused 64 "--on-lost maybe" $LOCK -u "$url" --on-lost maybe k $m
refused 64 "-n with -w" $LOCK -u "$url" -n -w 2 k $m
refused 64 "-c and COMMAND" $LOCK -u "$url" -c "$m" k $m
refused 64 "KEY -c with more" $LOCK -u "$url" k -c "$m" extra
refused 64 "--is-locked without KEY" $LOCK -u "$url" --is-locked
refused 64 "--is-locked with a COMMAND" $LOCK -u "$url" --is-locked k $m
refused 64 "--release --token 0" $LOCK -u "$url" --release k --token 0
refused 64 "--release --token x" $LOCK -u "$url" --release k --token 12x
refused 64 "--token without --release" $LOCK -u "$url" --token 5 k $m
refused 64 "--is-locked and --release" $LOCK -u "$url" --is-locked --release k
refused 64 "an empty KEY" $LOCK -u "$url" "" $m
refused 64 "an http URL" $LOCK -u http://127.0.0.1/ k $m
refused 64 "an empty URL" $LOCK -u "" k $m
refused 64 "a relative unix URL" $LOCK -u unix://tmp/x.sock k $m
refused 64 "a bad port" $LOCK -u cachify://127.0.0.1:99999 k $m
refused 64 "a bad URL in CACHIFY_URL" env CACHIFY_URL=redis://x $LOCK k $m

echo "cachify_lock.sh: an unreachable daemon is 69, COMMAND never runs"
dead=cachify://127.0.0.1:$(free_port)
refused 69 "unreachable daemon" $LOCK -u "$dead" k $m
grep -q "127.0.0.1" "$tmp/err" || fail "the error does not name the address"
refused 69 "unreachable, --is-locked" $LOCK -u "$dead" --is-locked k
refused 69 "unreachable, --release" $LOCK -u "$dead" --release k
refused 69 "unreachable socket" $LOCK -u "unix://$tmp/none.sock" k $m
refused 69 "unreachable daemon in CACHIFY_URL" env CACHIFY_URL="$dead" $LOCK k $m
# Without -u or CACHIFY_URL: cachify://127.0.0.1:7379, where some other
# daemon may listen on a shared machine; if none does, the error names it.
rc=0
env -u CACHIFY_URL $LOCK --is-locked k 2>"$tmp/err" || rc=$?
if [ "$rc" -eq 69 ]; then
    grep -q "127.0.0.1:7379" "$tmp/err" || fail "the default URL: $(cat "$tmp/err")"
else
    [ "$rc" -le 1 ] || fail "the default URL: status $rc: $(cat "$tmp/err")"
fi

echo "cachify_lock.sh: COMMAND runs under the lock with its key and token"
expect 42 "a run" $LOCK -u "$url" job sh -c '
    echo "key=$CACHIFY_KEY token=$CACHIFY_TOKEN"
    $0 -u "$1" --is-locked job; echo "held=$?"
    $0 -u "$1" -n -q job true; echo "second=$?"
    exit 42' "$tool" "$url"
grep -q '^key=job token=[1-9][0-9]*$' "$tmp/out" || fail "key/token: $(cat "$tmp/out")"
grep -q '^held=0$' "$tmp/out" || fail "the key was not held while COMMAND ran"
grep -q '^second=1$' "$tmp/out" || fail "a second -n got in: $(cat "$tmp/out")"
[ ! -s "$tmp/err" ] || fail "a clean run wrote to stderr: $(cat "$tmp/err")"
free job
expect 0 "CACHIFY_URL" env CACHIFY_URL="$url" $LOCK job sh -c \
    '[ "$CACHIFY_KEY" = job ] && $0 -u "$1" --is-locked job' "$tool" "$url"
free job
expect 6 "-c STRING before KEY" $LOCK -u "$url" -c 'echo "$CACHIFY_KEY"; exit 6' job
grep -qx job "$tmp/out" || fail "-c did not run through sh"
expect 7 "flock's KEY -c STRING" $LOCK -u "$url" job -c 'exit 7'
free job

echo "cachify_lock.sh: -n and -w against a held lock"
$LOCK -u "$url" job sh -c "$hold_cmd" sh "$tmp/h1" &
holder=$!
wait_file "$tmp/h1.started"
refused 1 "-n on a held key" $LOCK -u "$url" -n job $m
grep -q "job is already locked!" "$tmp/err" || fail "-n said: $(cat "$tmp/err")"
refused 7 "-n -E 7" $LOCK -u "$url" -n -E 7 job $m
expect 1 "-n -q" $LOCK -u "$url" -n -q job $m
[ ! -s "$tmp/err" ] || fail "-q still wrote: $(cat "$tmp/err")"
never_ran "-n -q"
refused 1 "-w 0.3 runs out" $LOCK -u "$url" -w 0.3 job $m
refused 3 "-w 0.2 -E 3" $LOCK -u "$url" -w 0.2 -E 3 job $m
# A waiter stopped by a signal while it waits never runs, and the server
# forgets its wait: no grant goes to it when the holder is done (its
# --ttl, longer than BOUND, would keep the waiters below out).
$LOCK -u "$url" -w $BOUND --ttl $((BOUND * 2)) job $m 2>/dev/null &
gone=$!
sleep 0.5
kill -TERM "$gone"
wait_job "$gone" "a waiter sent SIGTERM"
[ "$rc" -eq 143 ] || fail "a waiter sent SIGTERM: status $rc"
# A waiter with a bound and one without: both run after the holder, in
# the order they queued.
$LOCK -u "$url" -w $BOUND job sh -c 'echo "w $CACHIFY_TOKEN" >> "$1"' sh "$tmp/order" &
w1=$!
$LOCK -u "$url" job sh -c 'echo "d $CACHIFY_TOKEN" >> "$1"' sh "$tmp/order" &
w2=$!
sleep 0.5
[ ! -e "$tmp/order" ] || fail "a waiter ran while the key was held"
touch "$tmp/h1.go"
wait_job "$holder" "holder"
[ "$rc" -eq 0 ] || fail "holder exit status $rc"
wait_job "$w1" "-w waiter"
[ "$rc" -eq 0 ] || fail "-w waiter exit status $rc"
wait_job "$w2" "waiter without -w"
[ "$rc" -eq 0 ] || fail "waiter without -w exit status $rc"
never_ran "a waiter stopped by a signal"
[ "$(wc -l <"$tmp/order")" -eq 2 ] || fail "waiters: $(cat "$tmp/order")"
held_tok=$(cat "$tmp/h1.token")
while read -r who tok; do
    [ "$tok" -gt "$held_tok" ] || fail "$who waiter's token $tok is not above $held_tok"
done <"$tmp/order"
free job

echo "cachify_lock.sh: a command that outlives --ttl keeps its lock"
# The TTL and the moment to look, past it: wider under valgrind, where a
# renewal's round trip on a loaded machine can take a good part of a
# 2-second TTL's third.  COMMAND runs until the checks are done ($1.go),
# however long the checks take (each cachify-lock under valgrind can take
# seconds to start on a loaded machine), so only the lower bound (look
# after the TTL) is timed.
long_ttl=2 long_look=3
if [ "${CACHIFY_LOCK_VALGRIND:-}" = 1 ]; then
    long_ttl=6 long_look=9
fi
$LOCK -u "$url" --ttl $long_ttl long sh -c 'touch "$1.started"; while [ ! -e "$1.go" ]; do sleep 0.05; done; echo A >> "$1"' sh "$tmp/long" &
holder=$!
wait_file "$tmp/long.started"
$LOCK -u "$url" -w $BOUND long sh -c 'echo B >> "$1"' sh "$tmp/long" &
waiter=$!
sleep $long_look
expect 0 "--is-locked past the TTL" $LOCK -u "$url" --is-locked long
refused 1 "-n past the TTL" $LOCK -u "$url" -n long $m
[ ! -e "$tmp/long" ] || fail "the waiter ran while the holder ran: $(cat "$tmp/long")"
touch "$tmp/long.go"
wait_job "$holder" "long holder"
[ "$rc" -eq 0 ] || fail "the long holder exit status $rc: $(cat "$daemon_log")"
wait_job "$waiter" "long waiter"
[ "$rc" -eq 0 ] || fail "the long waiter exit status $rc"
[ "$(tr '\n' ' ' <"$tmp/long")" = "A B " ] ||
    fail "the waiter got in before the holder ended: $(cat "$tmp/long")"
free long

# A waiter that queued for longer than its own --ttl: the lock is its
# from the grant, not from when it asked, so COMMAND runs to its end.
$LOCK -u "$url" long sh -c 'touch "$1.started3"; sleep 2' sh "$tmp/long" &
holder=$!
wait_file "$tmp/long.started3"
expect 0 "a waiter that waited past its --ttl" $LOCK -u "$url" -w $BOUND --ttl 0.5 long sh -c 'sleep 1'
wait_job "$holder" "holder for the long waiter"
[ "$rc" -eq 0 ] || fail "holder for the long waiter: status $rc"
free long

echo "cachify_lock.sh: exit statuses and signals pass through"
expect 0 "true" $LOCK -u "$url" st true
expect 1 "false" $LOCK -u "$url" st false
expect 255 "exit 255" $LOCK -u "$url" st sh -c 'exit 255'
expect 138 "killed by SIGUSR1" $LOCK -u "$url" st sh -c 'kill -USR1 $$'
expect 143 "killed by SIGTERM" $LOCK -u "$url" st sh -c 'kill -TERM $$'
free st
expect 127 "COMMAND not found" $LOCK -u "$url" st "$tmp/no-such-command"
grep -q "no-such-command" "$tmp/err" || fail "127 said: $(cat "$tmp/err")"
free st
printf '#!/bin/sh\ntouch %s\n' "$tmp/ran" >"$tmp/not-exec"
expect 126 "COMMAND not executable" $LOCK -u "$url" st "$tmp/not-exec"
never_ran "not executable"
free st
# Each signal sent to cachify-lock reaches COMMAND; a trap makes the
# status say which one arrived.
for sig in TERM HUP INT QUIT USR1 USR2; do
    rm -f "$tmp/sig.started"
    "$dfl" $LOCK -u "$url" st sh -c "trap 'exit 9' $sig; touch \"\$1.started\"
        while :; do sleep 0.05; done" sh "$tmp/sig" &
    job=$!
    wait_file "$tmp/sig.started"
    kill -"$sig" "$job"
    wait_job "$job" "SIG$sig"
    [ "$rc" -eq 9 ] || fail "SIG$sig did not reach COMMAND's trap (status $rc)"
    free st
done
# Without a trap, COMMAND dies of it and the status is 128+N.
for pair in TERM:143 HUP:129 INT:130; do
    sig=${pair%%:*}
    rm -f "$tmp/sig.started"
    "$dfl" $LOCK -u "$url" st sh -c 'touch "$1.started"; exec sleep 600' sh "$tmp/sig" &
    job=$!
    wait_file "$tmp/sig.started"
    kill -"$sig" "$job"
    wait_job "$job" "SIG$sig to sleep"
    [ "$rc" -eq "${pair#*:}" ] || fail "SIG$sig: status $rc, expected ${pair#*:}"
    free st
done

echo "cachify_lock.sh: --is-locked, --release, and a lock released by someone else"
expect 1 "--release of a free key" $LOCK -u "$url" --release rel
expect 1 "--release --token of a free key" $LOCK -u "$url" --release rel --token 5
$LOCK -u "$url" --ttl 1 rel sh -c 'trap "echo term > \"\$1.got\"; exit 3" TERM
    touch "$1.started"; echo "$CACHIFY_TOKEN" > "$1.token"
    while :; do sleep 0.05; done' sh "$tmp/rel" &
holder=$!
wait_file "$tmp/rel.started"
tok=$(cat "$tmp/rel.token")
expect 0 "--is-locked of a held key" $LOCK -u "$url" --is-locked rel
expect 1 "--release with another token" $LOCK -u "$url" --release rel --token $((tok + 1))
expect 0 "still held after a wrong token" $LOCK -u "$url" --is-locked rel
expect 0 "--release with its token" $LOCK -u "$url" --release rel --token "$tok"
free rel
wait_job "$holder" "holder of a released lock"
[ "$rc" -eq 75 ] || fail "the holder of a released lock: status $rc, expected 75"
[ "$(cat "$tmp/rel.got" 2>/dev/null)" = term ] || fail "COMMAND got no SIGTERM"
# A forced release (no token) is noticed the same way, with --on-lost kill.
$LOCK -u "$url" --ttl 1 --on-lost kill rel sh -c 'touch "$1.started2"; exec sleep 600' sh "$tmp/rel" &
holder=$!
wait_file "$tmp/rel.started2"
expect 0 "forced --release" $LOCK -u "$url" --release rel
wait_job "$holder" "holder, --on-lost kill"
[ "$rc" -eq 75 ] || fail "--on-lost kill: status $rc, expected 75"

# The same with standard error a pipe whose reader is gone (`2>&1 | head`
# after head has quit): saying "lost the lock" must not kill cachify-lock
# with SIGPIPE before COMMAND gets its SIGTERM.
rm -f "$tmp/pipe."*
(prc=0; $LOCK -u "$url" --ttl 1 pp sh -c 'trap "echo term > \"\$1.got\"; exit 3" TERM
    touch "$1.started"
    i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
    touch "$1.finished"' sh "$tmp/pipe" 2>&1 >/dev/null || prc=$?
    echo "$prc" >"$tmp/pipe.rc") | true &
wait_file "$tmp/pipe.started"
expect 0 "forced --release of a holder writing to a closed pipe" $LOCK -u "$url" --release pp
wait_file "$tmp/pipe.rc"
[ "$(cat "$tmp/pipe.rc")" -eq 75 ] ||
    fail "a holder whose stderr reader is gone: status $(cat "$tmp/pipe.rc"), expected 75"
[ "$(cat "$tmp/pipe.got" 2>/dev/null)" = term ] ||
    fail "a holder whose stderr reader is gone: COMMAND got no SIGTERM"
[ ! -e "$tmp/pipe.finished" ] || fail "a holder whose stderr reader is gone: COMMAND ran on"
free pp
# ... while COMMAND gets the signal dispositions cachify-lock was given
# (SIGPIPE not ignored unless it was).
ign=$(sh -c 'grep SigIgn /proc/self/status')
expect 0 "COMMAND's ignored signals" $LOCK -u "$url" pp sh -c 'grep SigIgn /proc/self/status'
[ "$(cat "$tmp/out")" = "$ign" ] ||
    fail "COMMAND's ignored signals: $(cat "$tmp/out"), not $ign"
free pp

echo "cachify_lock.sh: two racing -n nightly-backup ./backup.sh run it once"
# The backup runs until one racer has ended (the loser: the winner cannot
# end before its backup does), so a racer that starts late on a loaded
# machine still meets the lock held, however late it is.
mkdir "$tmp/race"
printf '#!/bin/sh\necho "run $CACHIFY_TOKEN" >> runs\nwhile [ ! -e done ]; do sleep 0.01; done\n' >"$tmp/race/backup.sh"
chmod +x "$tmp/race/backup.sh"
for round in 1 2 3 4 5; do
    rm -f "$tmp/race/runs" "$tmp/race/go" "$tmp/race/done"
    (cd "$tmp/race" && while [ ! -e go ]; do sleep 0.01; done &&
        exec $LOCK -u "$url" -n -q nightly-backup ./backup.sh) &
    a=$!
    (cd "$tmp/race" && while [ ! -e go ]; do sleep 0.01; done &&
        exec $LOCK -u "$url" -n -q nightly-backup ./backup.sh) &
    b=$!
    touch "$tmp/race/go"
    poll "round $round: a racer ends" either_ended "$a" "$b"
    touch "$tmp/race/done"
    wait_job "$a" "racer a"
    ra=$rc
    wait_job "$b" "racer b"
    rb=$rc
    [ "$(wc -l <"$tmp/race/runs")" -eq 1 ] ||
        fail "round $round: the backup ran $(wc -l <"$tmp/race/runs") times"
    [ $((ra + rb)) -eq 1 ] || fail "round $round: statuses $ra and $rb, expected 0 and 1"
    free nightly-backup
done

echo "cachify_lock.sh: mem: runs COMMAND but keeps no other process out"
expect 0 "mem:" $LOCK -u mem: memkey sh -c '$0 -u mem: -n memkey true' "$tool"
grep -q "keeps no other process out" "$tmp/err" || fail "mem: gave no warning"
expect 1 "--is-locked on mem:" $LOCK -u mem: --is-locked memkey

echo "cachify_lock.sh: a password, and a Unix socket"
stop_daemon
pass=s3cret
start_daemon --requirepass s3cret
pass=
expect 0 "the right password" $LOCK -u "$url" pw true
refused 69 "a wrong password" $LOCK -u "cachify://:wr0ng@127.0.0.1:$port" pw $m
! grep -q "wr0ng" "$tmp/err" || fail "the password is in the message"
refused 69 "no password" $LOCK -u "cachify://127.0.0.1:$port" pw $m
stop_daemon
start_daemon --unixsocket "$tmp/d.sock"
sock=unix://$tmp/d.sock
expect 5 "over a Unix socket" $LOCK -u "$sock" ux sh -c '$0 -u "$1" -n ux true; exit $((4 + $?))' "$tool" "$sock"
expect 1 "free over a Unix socket" $LOCK -u "$sock" --is-locked ux

echo "cachify_lock.sh: the daemon killed with kill -9: COMMAND is stopped, exit 75"
for how in term kill ignore; do
    rm -f "$tmp/dead."*
    $LOCK -u "$url" --ttl 1 --on-lost "$how" dead sh -c '
        trap "echo term > \"\$1.got\"; exit 3" TERM
        touch "$1.started"
        i=0; while [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
        touch "$1.finished"' sh "$tmp/dead" 2>"$tmp/dead.err" &
    holder=$!
    wait_file "$tmp/dead.started"
    kill -9 "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
    wait_job "$holder" "--on-lost $how"
    [ "$rc" -eq 75 ] || fail "--on-lost $how: status $rc, expected 75"
    grep -q "lost the lock on dead" "$tmp/dead.err" ||
        fail "--on-lost $how said: $(cat "$tmp/dead.err")"
    case $how in
    term)
        [ -e "$tmp/dead.got" ] || fail "--on-lost term: COMMAND got no SIGTERM"
        [ ! -e "$tmp/dead.finished" ] || fail "--on-lost term: COMMAND ran on" ;;
    kill)
        [ ! -e "$tmp/dead.got" ] || fail "--on-lost kill: COMMAND got SIGTERM"
        [ ! -e "$tmp/dead.finished" ] || fail "--on-lost kill: COMMAND ran on" ;;
    ignore)
        [ ! -e "$tmp/dead.got" ] || fail "--on-lost ignore: COMMAND got SIGTERM"
        [ -e "$tmp/dead.finished" ] || fail "--on-lost ignore: exit before COMMAND ended" ;;
    esac
    start_daemon
done
echo "cachify_lock.sh: a daemon that stops answering: COMMAND is stopped by the end of the TTL"
# SIGSTOP: the kernel still accepts connections and requests, nothing is
# answered, so every renewal waits out its timeouts.  None may run past
# the lock's expiry: by then another client may hold the key, so SIGTERM
# must reach COMMAND within the TTL (29 s here; a renewal hung across the
# deadline used to deliver it 3.7 s late).  COMMAND stamps its start and
# the SIGTERM in ms; 1.5 s is left for a loaded machine.
rm -f "$tmp/stall."*
$LOCK -u "$url" --ttl 29 stall sh -c '
    trap "date +%s%3N > \"\$1.term\"; exit 3" TERM
    date +%s%3N > "$1.start"
    while :; do sleep 0.05; done' sh "$tmp/stall" 2>"$tmp/stall.err" &
holder=$!
wait_file "$tmp/stall.start"
kill -STOP "$daemon_pid"
i=0
while [ ! -e "$tmp/stall.term" ] && [ "$i" -lt $((BOUND * 20)) ]; do
    sleep 0.05
    i=$((i + 1))
done
kill -CONT "$daemon_pid"
wait_job "$holder" "holder of a stalled daemon's lock"
[ "$rc" -eq 75 ] || fail "stalled daemon: status $rc, expected 75: $(cat "$tmp/stall.err")"
[ -s "$tmp/stall.term" ] || fail "stalled daemon: COMMAND got no SIGTERM"
late=$(($(cat "$tmp/stall.term") - $(cat "$tmp/stall.start") - 29000))
[ "$late" -le 1500 ] ||
    fail "stalled daemon: SIGTERM came $late ms after the TTL ran out: $(cat "$tmp/stall.err")"

echo "cachify_lock.sh: cachifys:// runs COMMAND over TLS; a certificate that fails is 69"
# The daemon's TLS port asks for client certificates.  --ttl 3: renewals
# (each on a connection of its own, a handshake first) run while COMMAND
# sleeps past a third of it.
sh tests/support/make-test-certs.sh "$tmp/certs" || fail "cannot make certificates"
c=$tmp/certs
stop_daemon
tls_port=$(free_port)
start_daemon --tls-port "$tls_port" --tls-cert-file "$c/server.crt" \
    --tls-key-file "$c/server.key" --tls-ca-cert-file "$c/ca.crt" \
    --tls-auth-clients yes
tls=cachifys://127.0.0.1:$tls_port
good="$tls?ca=$c/ca.crt&cert=$c/client.crt&key=$c/client.key"
expect 7 "a run over TLS" $LOCK -u "$good" --ttl 3 tlsjob sh -c '
    sleep 1.5
    $0 -u "$1" --is-locked tlsjob; echo "held=$?"
    exit 7' "$tool" "$good"
grep -q '^held=0$' "$tmp/out" || fail "over TLS: the key was not held: $(cat "$tmp/out")"
[ ! -s "$tmp/err" ] || fail "a clean run over TLS wrote to stderr: $(cat "$tmp/err")"
free tlsjob
refused 69 "a CA that did not sign the server's certificate" \
    $LOCK -u "$tls?ca=$c/rogue-ca.crt&cert=$c/client.crt&key=$c/client.key" k $m
grep -q "certificate verify failed" "$tmp/err" || fail "wrong CA said: $(cat "$tmp/err")"
refused 69 "no client certificate" $LOCK -u "$tls?ca=$c/ca.crt" k $m
refused 69 "cachifys:// to the plain port" $LOCK -u "cachifys://127.0.0.1:$port?ca=$c/ca.crt" k $m
grep -q "TLS handshake" "$tmp/err" || fail "the plain port said: $(cat "$tmp/err")"
refused 64 "a missing CA file" $LOCK -u "$tls?ca=$c/none.crt" k $m
grep -q "none.crt" "$tmp/err" || fail "a missing CA: $(cat "$tmp/err")"
refused 64 "an unknown cachifys:// option" $LOCK -u "$tls?cafile=$c/ca.crt" k $m
refused 64 "cert= without key=" $LOCK -u "$tls?ca=$c/ca.crt&cert=$c/client.crt" k $m

echo "cachify_lock.sh: ok"
