/* tests/integration/stateitest.h - helpers of the suites that stop,
 * kill and restart the daemon on its state file (test_restart.c,
 * test_crash.c; each is its own program, so the helpers are static and
 * live in this header).
 *
 * Owns: times scaled for valgrind, the daemon's arguments with the test's
 * state file, an integer reply asserted within bounds, RESP requests with
 * binary-safe arguments and the binary key the state file must keep
 * exact, and a look at the end of the daemon's log.  Does not own: the
 * daemon of the test (tests/support/itest_common.h) or the lock round
 * trips and clocks (tests/integration/lockitest.h).
 */
#ifndef CACHIFY_TESTS_STATEITEST_H
#define CACHIFY_TESTS_STATEITEST_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include "tests/integration/itest.h"
#include "tests/integration/lockitest.h"

/* Times scaled for the daemon under valgrind (~20x slower). */
static inline long long scaled(long long ms)
{
    return slow_mode() ? ms * 5 : ms;
}

/* out (cap entries) gets --state_file with the test's state file, then the
 * NULL-terminated more (NULL for none), then NULL. */
static inline void args_with(const char **out, size_t cap,
                             const char *const *more)
{
    size_t n = 0;
    out[n++] = "--state_file";
    out[n++] = g_ts.state_path;
    for (; more && *more; more++) {
        ck_assert(n + 2 < cap);
        out[n++] = *more;
    }
    out[n] = NULL;
}

/* Asserts a reply line that is an integer in [lo, hi]. */
static inline long long int_between(int fd, const char *cmd,
                                    long long lo, long long hi)
{
    long long n = 0;
    say(fd, cmd);
    ck_assert_msg(tc_read_int(fd, &n) == 0, "%s: got \"%s\"", cmd, tc_last());
    ck_assert_msg(n >= lo && n <= hi, "%s: %lld, want %lld..%lld", cmd, n,
                  lo, hi);
    return n;
}

/* Sends one RESP request built from n binary-safe arguments. */
static inline void say_resp(int fd, int n, const char *const *argv,
                            const size_t *lens)
{
    char buf[512];
    size_t o = (size_t)snprintf(buf, sizeof(buf), "*%d\r\n", n);
    for (int i = 0; i < n; i++) {
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "$%zu\r\n", lens[i]);
        ck_assert(o + lens[i] + 2 < sizeof(buf));
        memcpy(buf + o, argv[i], lens[i]);
        memcpy(buf + o + lens[i], "\r\n", 2);
        o += lens[i] + 2;
    }
    ck_assert_int_eq(tc_sendn(fd, buf, o), 0);
}

/* A key with a NUL, a 0xff and a CR: the state file must keep it exact. */
static const char bin_key[] = { 'b', '\0', (char)0xff, '\r' };

/* ACQUIRE bin_key TTL ttl on fd; returns the token. */
static inline long long acquire_bin(int fd, const char *ttl)
{
    const char *acq[] = { "ACQUIRE", bin_key, "TTL", ttl };
    size_t acql[] = { 7, sizeof(bin_key), 3, strlen(ttl) };
    say_resp(fd, 4, acq, acql);
    return read_token(fd);
}

/* RELEASE bin_key token on fd, which must answer :1. */
static inline void release_bin(int fd, long long token)
{
    char cmd[64];
    int n = snprintf(cmd, sizeof(cmd), "%lld", token);
    const char *rel[] = { "RELEASE", bin_key, cmd };
    size_t rell[] = { 7, sizeof(bin_key), (size_t)n };
    say_resp(fd, 3, rel, rell);
    EXPECT(fd, ":1\r\n");
}

static inline long long llmax(long long a, long long b)
{
    return a > b ? a : b;
}

/* 1 when the last 64 KiB of path contain needle. */
static inline int file_has_tail(const char *path, const char *needle)
{
    static char buf[65537];
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > 65536 ? size - 65536 : 0, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

#endif
