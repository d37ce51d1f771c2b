#!/bin/sh
# tests/scripts/service_files.sh - the files that make cachifyd a service:
# the man page, the shipped config, the systemd unit, --test-config.
#
# Owns: checking that docs/cachifyd.8 has an entry for every key the daemon
# knows (`cachifyd --help` lists the config table) and renders without a
# warning (groff -man -Tutf8 -ww); that `cachifyd --test-config` accepts
# the shipped cachifyd.conf (exit 0) and names the file, line and key of a
# broken one (exit 2, and for an unreadable one too); that
# contrib/cachifyd.service keeps the settings its comments promise
# (LimitNOFILE >= the default maxclients + 32, SIGHUP for reload, the state
# file in its StateDirectory) and passes `systemd-analyze verify` where
# systemd-analyze exists (skipped, and said so, where it does not).
#
# Environment: CACHIFYD_BIN (default build/cachifyd).  Exits non-zero on
# any failure.
set -eu

cd "$(dirname "$0")/../.."
repo=$(pwd)
bin=${CACHIFYD_BIN:-build/cachifyd}
case "$bin" in /*) ;; *) bin=$repo/$bin ;; esac
name=service_files.sh
tmp=$(mktemp -d /tmp/cachify-service.XXXXXX)
. tests/scripts/lib/scratch.sh

# ---- the man page: every key, and a clean rendering ----
keys=$("$bin" --help | sed -n 's/^  \([a-z_][a-z_0-9]*\)  *.*/\1/p')
[ "$(echo "$keys" | wc -l)" -ge 25 ] || fail "cachifyd --help lists too few keys: $keys"
for k in $keys; do
    # Each key is an entry of its own: ".BR key " (default ...; live|restart)"".
    grep -q "^\.BR $k \" (default .*; \(live\|restart\))\"$" docs/cachifyd.8 ||
        fail "docs/cachifyd.8 has no entry for the key $k"
done
for section in SYNOPSIS OPTIONS CONFIGURATION RELOAD SIGNALS FILES "EXIT STATUS"; do
    grep -q "^\.SH \"*$section\"*$" docs/cachifyd.8 || fail "docs/cachifyd.8 has no $section"
done
if command -v groff >/dev/null 2>&1; then
    groff -man -Tutf8 -ww docs/cachifyd.8 >"$tmp/man.txt" 2>"$tmp/man.err" ||
        fail "groff failed: $(cat "$tmp/man.err")"
    [ ! -s "$tmp/man.err" ] || fail "groff warns: $(cat "$tmp/man.err")"
    grep -q "metrics_port" "$tmp/man.txt" || fail "the rendered page lost its text"
else
    echo "$name: groff not installed: rendering not checked"
fi

# ---- --test-config ----
out=$("$bin" --test-config -c cachifyd.conf 2>&1) || fail "--test-config rejects cachifyd.conf: $out"
[ "$out" = "cachifyd: configuration cachifyd.conf is valid" ] || fail "--test-config said: $out"
printf 'port 7379\n# fine so far\nloglevel info\nmaxclients 0\n' >"$tmp/broken.conf"
rc=0
out=$("$bin" --test-config -c "$tmp/broken.conf" 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "--test-config on a broken file exited $rc, not 2: $out"
case "$out" in
    *"$tmp/broken.conf:4: maxclients: "*) ;;
    *) fail "--test-config did not name the line and key: $out" ;;
esac
printf 'port 7379\nno_such_key 1\n' >"$tmp/unknown.conf"
rc=0
out=$("$bin" -t -c "$tmp/unknown.conf" 2>&1) || rc=$?
[ "$rc" -eq 2 ] && case "$out" in *"unknown.conf:2: no_such_key: unknown key"*) true ;; *) false ;; esac ||
    fail "-t on an unknown key: $rc: $out"
rc=0
out=$("$bin" --test-config -c "$tmp/missing.conf" 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "--test-config on a missing file exited $rc: $out"
# A valid file with a command line that breaks it: the whole start is checked.
rc=0
out=$("$bin" --test-config -c cachifyd.conf --max_ttl_ms 5 2>&1) || rc=$?
[ "$rc" -eq 2 ] || fail "--test-config missed a cross-key error: $out"

# ---- the systemd unit ----
unit=contrib/cachifyd.service
maxclients=$("$bin" --help | sed -n 's/^  maxclients  *\([0-9]*\) .*/\1/p')
nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' "$unit")
[ -n "$nofile" ] && [ "$nofile" -ge $((maxclients + 32)) ] ||
    fail "LimitNOFILE=$nofile is below maxclients ($maxclients) + 32"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$unit" || fail "no ExecReload with SIGHUP"
grep -q '^StateDirectory=cachifyd$' "$unit" || fail "no StateDirectory"
grep -q '^ExecStart=.* --state_file /var/lib/cachifyd/' "$unit" ||
    fail "the state file is not in the StateDirectory"
for setting in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes \
        DynamicUser=yes Restart=on-failure RestartPreventExitStatus=2; do
    grep -q "^$setting\$" "$unit" || fail "$unit lacks $setting"
done
if command -v systemd-analyze >/dev/null 2>&1; then
    # As installed: the binary where ExecStart says (here, this build),
    # the man page where Documentation= says.
    mkdir -p "$tmp/unit" "$tmp/man/man8"
    cp docs/cachifyd.8 "$tmp/man/man8/"
    sed "s|/usr/local/bin/cachifyd|$bin|" "$unit" >"$tmp/unit/cachifyd.service"
    MANPATH=$tmp/man systemd-analyze verify "$tmp/unit/cachifyd.service" \
        >"$tmp/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$tmp/verify.log")"
    [ ! -s "$tmp/verify.log" ] || fail "systemd-analyze verify says: $(cat "$tmp/verify.log")"
else
    echo "$name: systemd-analyze not installed: the unit was not verified"
fi
echo "$name: ok"
