#!/bin/sh
# tests/scripts/install.sh - packaging test: `make install` into a DESTDIR,
# then build programs against the installed copy with nothing but
# pkg-config, and run them.
#
# Owns: checking that the installed header, libraries (shared and static)
# and cachify-client.pc are enough to build and run a program that uses the
# sync API, waits, and the decorator (tests/scripts/install_check.c), that
# every C snippet of docs/client.md compiles and links against the
# installed copy, and that the flags of its documented build line make a
# decorator key spec that does not match its arguments a compile error.  Runs the program on "mem:" and, when CACHIFYD_BIN is set,
# on that daemon started on a free port (stopped at the end).
#
# Environment: MAKE (default make), CC (default cc), CACHIFYD_BIN.  The
# install is always a normal (unsanitized) build in build/: MAKEFLAGS, BUILD
# and SANITIZE from a `make SANITIZE=...` run are dropped.  Exits non-zero
# on any failure.
set -eu

cd "$(dirname "$0")/../.."
MAKE=${MAKE:-make}
CC=${CC:-cc}
tmp=$(mktemp -d /tmp/cachify-install.XXXXXX)
daemon_pid=
cleanup() {
    if [ -n "$daemon_pid" ]; then
        kill "$daemon_pid" 2>/dev/null || true
        wait "$daemon_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

fail() {
    echo "install.sh: FAIL: $*" >&2
    exit 1
}

echo "install.sh: make install PREFIX=/usr DESTDIR=$tmp"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u BUILD -u SANITIZE $MAKE --no-print-directory install \
    PREFIX=/usr DESTDIR="$tmp" >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "make install"; }

for f in usr/include/cachify.h usr/lib/libcachify-client.a \
         usr/lib/libcachify-client.so usr/lib/libcachify-client.so.0 \
         usr/lib/pkgconfig/cachify-client.pc usr/bin/cachifyd; do
    [ -e "$tmp/$f" ] || fail "$f was not installed"
done
grep -q '^prefix=/usr$' "$tmp/usr/lib/pkgconfig/cachify-client.pc" ||
    fail "cachify-client.pc does not say prefix=/usr"

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
    # shellcheck disable=SC2086
    if $CC $doc_flags $cflags -c -o "$tmp/bad_spec.o" "$tmp/bad_spec.c" \
        2>"$tmp/bad_spec.log"; then
        fail "a %d given a char * compiles with the documented flags"
    fi
    grep -q 'format' "$tmp/bad_spec.log" || {
        cat "$tmp/bad_spec.log" >&2
        fail "the mismatched key spec failed for another reason"
    }
    echo "install.sh: the documented flags refuse a mismatched key spec"
fi

run() {
    LD_LIBRARY_PATH=$tmp/usr/lib "$tmp/check_shared" "$1" ||
        fail "shared build on $1"
    "$tmp/check_static" "$1" || fail "static build on $1"
}
run mem:

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
