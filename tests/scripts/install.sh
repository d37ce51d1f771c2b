#!/bin/sh
# tests/scripts/install.sh - packaging test: `make install` into a DESTDIR,
# then build programs against the installed copy with nothing but
# pkg-config, and run them.
#
# Owns: checking that make install puts cachify-lock (which must run as
# installed), the man pages and the systemd unit (its paths rewritten for
# PREFIX) in place, and that the installed headers, libraries (shared and
# static) and cachify-client.pc are enough to build and run a program that
# uses the sync API, waits, and the decorator (tests/scripts/install_check.c), that
# every C snippet of docs/client.md compiles and links against the
# installed copy, that the flags of its documented build line make a
# decorator key spec that does not match its arguments a compile error,
# that the headers cachify.h includes refuse to be included alone, that a
# program linked as docs/client.md says for a private PREFIX runs
# without LD_LIBRARY_PATH, and that only a real install into /usr/local or
# /usr runs ldconfig.  Runs the program on "mem:" and, when CACHIFYD_BIN is
# set, on that daemon started on a free port (stopped at the end).
#
# Environment: MAKE (default make), CC (default cc), CACHIFYD_BIN.  The
# install is always a normal (unsanitized) build in build/: MAKEFLAGS, BUILD
# and SANITIZE from a `make SANITIZE=...` run are dropped.  Exits non-zero
# on any failure.
set -eu

cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
CC=${CC:-cc}
name=install.sh
tmp=$(mktemp -d /tmp/cachify-install.XXXXXX)
. tests/scripts/lib/scratch.sh

# make without what a `make SANITIZE=...` run passed down (see above).
plain_make() {
    # shellcheck disable=SC2086  # MAKE may carry arguments
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD -u SANITIZE \
        $MAKE --no-print-directory "$@"
}

echo "install.sh: make install PREFIX=/usr DESTDIR=$tmp"
plain_make install PREFIX=/usr DESTDIR="$tmp" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "make install"; }

for f in usr/include/cachify.h usr/include/cachify_async.h \
         usr/include/cachify_decorate.h usr/include/cachify_async_decorate.h \
         usr/lib/libcachify-client.a \
         usr/lib/libcachify-client.so usr/lib/libcachify-client.so.2 \
         usr/lib/pkgconfig/cachify-client.pc usr/bin/cachifyd \
         usr/share/man/man8/cachifyd.8 usr/lib/systemd/system/cachifyd.service \
         usr/bin/cachify-lock usr/share/man/man1/cachify-lock.1; do
    [ -e "$tmp/$f" ] || fail "$f was not installed"
done
# The unit names the installed paths of PREFIX=/usr, none of /usr/local.
grep -q '^ExecStart=/usr/bin/cachifyd -c /usr/etc/cachifyd.conf ' \
    "$tmp/usr/lib/systemd/system/cachifyd.service" ||
    fail "the installed unit does not start /usr/bin/cachifyd with /usr/etc/cachifyd.conf"
! grep -q /usr/local "$tmp/usr/lib/systemd/system/cachifyd.service" ||
    fail "the installed unit still names /usr/local"
# cachify-lock is linked with the static library: it runs as installed.
"$tmp/usr/bin/cachify-lock" --version | grep -q '^cachify-lock ' ||
    fail "the installed cachify-lock does not run"
grep -q '^prefix=/usr$' "$tmp/usr/lib/pkgconfig/cachify-client.pc" ||
    fail "cachify-client.pc does not say prefix=/usr"

# Only a real install (no DESTDIR) into /usr/local or /usr refreshes the
# linker cache; `make -n` shows which recipe would, installing nothing.
ldconfig_lines() {
    plain_make -n install LDCONFIG=cachify-ldconfig-probe "$@" |
        grep -c cachify-ldconfig-probe || true
}
[ "$(ldconfig_lines PREFIX=/usr/local DESTDIR=)" -gt 0 ] ||
    fail "make install PREFIX=/usr/local would not run ldconfig"
[ "$(ldconfig_lines PREFIX=/usr DESTDIR=)" -gt 0 ] ||
    fail "make install PREFIX=/usr would not run ldconfig"
[ "$(ldconfig_lines PREFIX=/usr/local DESTDIR="$tmp/stage")" -eq 0 ] ||
    fail "make install DESTDIR=... would run ldconfig"
[ "$(ldconfig_lines PREFIX="$tmp/prefix" DESTDIR=)" -eq 0 ] ||
    fail "make install PREFIX=<private> would run ldconfig"

pc() {
    PKG_CONFIG_SYSROOT_DIR=$tmp PKG_CONFIG_LIBDIR=$tmp/usr/lib/pkgconfig \
        pkg-config "$@" cachify-client
}
cflags=$(pc --cflags) || fail "pkg-config --cflags"
libs=$(pc --libs) || fail "pkg-config --libs"
static_libs=$(pc --libs --static) || fail "pkg-config --libs --static"
echo "install.sh: cflags: $cflags"
echo "install.sh: libs: $libs"
case "$cflags" in *"$tmp/usr/include"*) ;; *) fail "cflags miss $tmp/usr/include" ;; esac

warn="-std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes -Wvla"

# Shared: the program finds the library through LD_LIBRARY_PATH.
# shellcheck disable=SC2086
$CC $warn $cflags -o "$tmp/check_shared" tests/scripts/install_check.c \
    $libs -pthread || fail "build against the shared library"
# Static: the archive, and the private dependencies pkg-config --static adds.
static_args=$(echo "$static_libs" |
    sed "s|-lcachify-client|$tmp/usr/lib/libcachify-client.a|")
# shellcheck disable=SC2086
$CC $warn $cflags -o "$tmp/check_static" tests/scripts/install_check.c \
    $static_args || fail "build against the static library"

# must_not_compile SRC FLAGS PATTERN WHAT: SRC, compiled with FLAGS against
# the installed headers, must fail, with an error that matches PATTERN
# (not some other error).
must_not_compile() {
    # shellcheck disable=SC2086
    if $CC $2 $cflags -c -o "$1.o" "$1" 2>"$1.log"; then
        fail "$4 compiles"
    fi
    grep -q "$3" "$1.log" || {
        cat "$1.log" >&2
        fail "$4 failed to compile for another reason"
    }
}

# Every ```c block of docs/client.md, concatenated, must compile and link.
if [ -f docs/client.md ]; then
    awk '/^```c$/ { on = 1; next } /^```$/ { on = 0 } on' docs/client.md \
        >"$tmp/doc_snippets.c"
    [ -s "$tmp/doc_snippets.c" ] || fail "no C snippets in docs/client.md"
    # Async snippets call libevent themselves (see docs/client.md).
    ev=$(pkg-config --cflags --libs libevent 2>/dev/null || true)
    # shellcheck disable=SC2086
    $CC $warn $cflags -o "$tmp/doc_snippets" "$tmp/doc_snippets.c" $libs \
        $ev -pthread || fail "docs/client.md snippets do not build"
    LD_LIBRARY_PATH=$tmp/usr/lib "$tmp/doc_snippets" mem: ||
        fail "docs/client.md snippets failed on mem:"
    echo "install.sh: docs/client.md snippets build and run"

    # docs/client.md promises that its build line turns a %d given a
    # char * in a key spec into an error; plain `cc` says nothing.
    doc_flags=$(awk '/^# shared$/ { getline; print; exit }' docs/client.md |
        sed -n 's/^cc \(.*\) -o app .*/\1/p')
    [ -n "$doc_flags" ] || fail "docs/client.md's build line has no flags"
    cat >"$tmp/bad_spec.c" <<'SPEC'
#include <cachify.h>
CACHIFY_LOCKED_FN_VOID(job, (const char *name), (name), ("job-%d", name), NULL)
{
    (void)name;
}
int main(void) { return 0; }
SPEC
    must_not_compile "$tmp/bad_spec.c" "$doc_flags" 'format' \
        "a %d given a char * (with the documented flags)"
    echo "install.sh: the documented flags refuse a mismatched key spec"
fi

# Users include <cachify.h> alone; the other public headers it includes
# refuse to be included first (they need its types), with a message that
# says which header to include.
for h in cachify_async.h cachify_decorate.h cachify_async_decorate.h; do
    printf '#include <%s>\nint main(void) { return 0; }\n' "$h" \
        >"$tmp/alone.c"
    must_not_compile "$tmp/alone.c" "$warn" 'include <cachify.h>' \
        "$h included alone"
done
echo "install.sh: the headers cachify.h includes refuse to be included alone"

run() {
    LD_LIBRARY_PATH=$tmp/usr/lib "$tmp/check_shared" "$1" ||
        fail "shared build on $1"
    "$tmp/check_static" "$1" || fail "static build on $1"
}
run mem:

# A private prefix, installed for real (no DESTDIR): the dynamic linker does
# not search it, so a program linked by docs/client.md's private-prefix
# lines (the ```sh block with -rpath) must find the library by itself, with
# no LD_LIBRARY_PATH, and find this copy, not one installed elsewhere.
prefix=$tmp/prefix
plain_make install PREFIX="$prefix" >"$tmp/install-prefix.log" 2>&1 ||
    { cat "$tmp/install-prefix.log" >&2; fail "make install PREFIX=$prefix"; }
awk '/^```sh$/ { on = 1; block = ""; next }
     on && /^```$/ { on = 0; if (block ~ /-rpath/) { printf "%s", block; exit } }
     on { block = block $0 "\n" }' docs/client.md >"$tmp/private-link.sh"
grep -q -- -rpath "$tmp/private-link.sh" ||
    fail "docs/client.md shows no way to link against a private prefix"
mkdir "$tmp/private"
cp tests/scripts/install_check.c "$tmp/private/app.c"
(cd "$tmp/private" &&
    env -u PKG_CONFIG_LIBDIR -u PKG_CONFIG_SYSROOT_DIR PREFIX="$prefix" \
        sh -eu "$tmp/private-link.sh") ||
    fail "docs/client.md's private-prefix lines do not build"
found=$(env -u LD_LIBRARY_PATH ldd "$tmp/private/app" | grep libcachify-client) ||
    fail "app does not load libcachify-client"
case "$found" in
    *"=> $prefix/lib/libcachify-client.so.2 "*) ;;
    *) fail "app loads $found, not the one under $prefix" ;;
esac
env -u LD_LIBRARY_PATH "$tmp/private/app" mem: ||
    fail "app linked per docs/client.md does not run from $prefix"
echo "install.sh: a program linked per docs/client.md runs from a private prefix"

if [ -n "${CACHIFYD_BIN:-}" ]; then
    [ -x "$CACHIFYD_BIN" ] || fail "CACHIFYD_BIN=$CACHIFYD_BIN is not executable"
    port=$("$tmp/check_static" --free-port) || fail "no free port"
    "$CACHIFYD_BIN" --bind 127.0.0.1 --port "$port" --loglevel warning \
        2>"$tmp/daemon.log" &
    daemon_pid=$!
    url="cachify://127.0.0.1:$port"
    # Wait for the daemon to listen: up to 10 s, a PING every 0.1 s.
    tries=0
    until "$tmp/check_static" --ping "$url"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 100 ] || ! kill -0 "$daemon_pid" 2>/dev/null; then
            cat "$tmp/daemon.log" >&2
            fail "the daemon did not start on port $port"
        fi
        sleep 0.1
    done
    run "$url"
    kill "$daemon_pid"
    wait "$daemon_pid" || fail "the daemon did not exit cleanly"
    daemon_pid=
fi
echo "install.sh: ok"
