/* tests/integration/lockitest.h - client helpers of the lock-semantics
 * integration suites (test_waiting.c, test_restart.c, test_crash.c; each
 * is its own program, so the helpers are static and live in this header).
 *
 * Owns: the millisecond clock the suites compare with the daemon's, the
 * "at once" and clock-slack bounds, ACQUIRE/RELEASE round trips that
 * assert their replies, silence checks, and STATS fields and counters read
 * over a connection of their own.  Does not own: the daemon of the test
 * and the generic socket and reply helpers (tests/support/itest_common.h).
 */
#ifndef CACHIFY_TESTS_LOCKITEST_H
#define CACHIFY_TESTS_LOCKITEST_H

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/itest_common.h"

/* ---- time ---- */

/* How long a connection must stay silent to count as "still waiting": long
 * enough that a wrongly woken waiter would have had its reply delivered. */
static inline int quiet_ms(void)
{
    return slow_mode() ? 1000 : 250;
}

/* CLOCK_MONOTONIC in milliseconds: the daemon's clock too, so "not before
 * the deadline" can be compared across the two processes. */
static inline double now_ms(void)
{
    return mono_s() * 1e3;
}

/* The daemon truncates its clock to microseconds; allow that and our own
 * rounding when checking "not before". */
#define CLOCK_SLACK_MS 2.0

/* Upper bound for anything that should happen "at once": generous for a
 * loaded 2-core box and valgrind. */
#define LATE_MS 15000.0

/* ---- client helpers ----
 *
 * One daemon per test (g_ts), cleaned up on a failed assertion by the hook
 * of tests/support/itest_common.h; a test that passes stops it with
 * srv_finish(), which asserts exit status 0. */

static inline long long read_token(int fd)
{
    long long n = 0;
    ck_assert_msg(tc_read_int(fd, &n) == 0, "expected :<token>, got \"%s\"",
                  tc_last());
    ck_assert_msg(n > 0, "token %lld is not positive", n);
    return n;
}

static inline long long acquire(int fd, const char *cmd)
{
    say(fd, cmd);
    return read_token(fd);
}

/* RELEASE key token, expecting `reply`. */
static inline void release_is(int fd, const char *key, long long token,
                       const char *reply)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "RELEASE %s %lld\r\n", key, token);
    say(fd, cmd);
    EXPECT(fd, reply);
}

static inline void release_ok(int fd, const char *key, long long token)
{
    release_is(fd, key, token, ":1\r\n");
}

/* Closes the descriptors given, up to a -1. */
static inline void close_fds(int fd, ...)
{
    va_list ap;
    va_start(ap, fd);
    for (; fd >= 0; fd = va_arg(ap, int))
        close(fd);
    va_end(ap);
}

/* Asserts that fd receives nothing (and is not closed) for ms. */
static inline void expect_quiet(int fd, int ms)
{
    struct pollfd p = { fd, POLLIN, 0 };
    int n;
    do
        n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        char buf[256];
        ssize_t r = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
        buf[r > 0 ? r : 0] = '\0';
        ck_abort_msg("expected silence, got \"%s\"%s", itest_esc(buf),
                     r == 0 ? " (connection closed)" : "");
    }
}

/* STATS, parsed, over a connection of its own.  The caller json_decref()s. */
static inline json_t *stats(void)
{
    int fd = conn_new();
    json_t *doc = stats_get(fd);
    close(fd);
    return doc;
}

/* One STATS field, an integer or a boolean (as 0/1). */
static inline long long stat_of(const char *name)
{
    json_t *doc = stats(), *v = json_object_get(doc, name);
    ck_assert_msg(json_is_integer(v) || json_is_boolean(v),
                  "STATS has no field '%s'", name);
    long long n = json_is_integer(v) ? (long long)json_integer_value(v)
                                     : json_is_true(v);
    json_decref(doc);
    return n;
}

/* Polls STATS until name == want: what the daemon does on a client's
 * close happens after our close() returns, so we wait for it to show. */
static inline void wait_stat(const char *name, long long want)
{
    int fd = conn_new();
    long long got = stat_poll(fd, name, want, LATE_MS / 1e3);
    close(fd);
    ck_assert_msg(got == want, "STATS %s is %lld, want %lld", name, got, want);
}

/* Asserts several counters at once: pairs of name, value, then NULL. */
static inline void check_stats(const char *name, ...)
{
    json_t *doc = stats();
    va_list ap;
    va_start(ap, name);
    for (; name != NULL; name = va_arg(ap, const char *)) {
        long long want = va_arg(ap, long long);
        json_t *v = json_object_get(doc, name);
        ck_assert_msg(json_is_integer(v), "STATS has no integer '%s'", name);
        ck_assert_msg(json_integer_value(v) == want,
                      "STATS %s is %lld, want %lld", name,
                      (long long)json_integer_value(v), want);
    }
    va_end(ap);
    json_decref(doc);
}


#endif
