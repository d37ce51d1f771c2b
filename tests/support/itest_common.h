/* tests/support/itest_common.h - the Check side of running the real daemon,
 * shared by every integration suite (through tests/integration/itest.h and
 * hardening.h, and directly by test_waiting.c).  Each suite is its own
 * program, so the helpers are static inline and live in this header.
 *
 * Owns: the one daemon a test runs (g_ts) and its clean-up on every exit
 * path, the checked fixture, TCase creation with a timeout fit for
 * valgrind, the suite main(), the slow-mode knob and the clock, escaping
 * bytes for messages, checked sends and exact reply assertions, reading to
 * a close, and STATS parsing.  Does not own: forking the daemon and the
 * blocking socket helpers (tests/support/testserver.[ch]), request framings
 * (itest.h), the adversarial suites' extras (hardening.h).
 *
 * Clean-up on failure: every Check assertion ends in _ck_assert_failed(),
 * which in CK_FORK mode _exit()s the test's child (no atexit, no teardown)
 * and in CK_FORK=no mode longjmps out of the test.  So the macro below
 * routes that call through itest_on_failure() first, which dumps the
 * daemon's log (the diagnosis), kills the daemon and removes its directory;
 * it is also the checked teardown, for a test that fails in its fixture.
 * Only the process that set the test up (g_owner) cleans up: a forked Check
 * child must not clean up its parent's daemon, nor the reverse.  A test
 * that passes stops its daemon itself with srv_finish(), which asserts the
 * exit status is 0 (under valgrind, 0 also means no error and no leak).
 */
#ifndef CACHIFY_TESTS_ITEST_COMMON_H
#define CACHIFY_TESTS_ITEST_COMMON_H

#include <check.h>
#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testserver.h"

/* The daemon of the running test, and the process that owns it. */
static struct test_server g_ts = { .pid = -1 };
static pid_t g_owner;

static inline void itest_on_failure(void)
{
    if (g_owner != getpid() || !g_ts.dir[0])
        return;
    ts_dump_log(&g_ts);
    ts_kill9(&g_ts);
    ts_cleanup(&g_ts);
}

/* Every Check failure passes here first (see the header paragraph).  The
 * name is not expanded again inside its own expansion. */
#define _ck_assert_failed(...)                                               \
    (itest_on_failure(), _ck_assert_failed(__VA_ARGS__))

static inline void itest_setup(void)
{
    g_owner = getpid();
    g_ts.pid = -1;
    g_ts.dir[0] = '\0';
    signal(SIGPIPE, SIG_IGN);
}

/* Checked teardown: only does something when a test failed before
 * srv_finish(). */
static inline void itest_teardown(void)
{
    itest_on_failure();
}

/* Fails the test without the checkpoint cost of ck_assert on success, for
 * loops that run thousands of times. */
#define REQUIRE(cond, ...)                                                   \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg(__VA_ARGS__);                                       \
    } while (0)

/* 1 under CACHIFYD_VALGRIND=1 (the daemon ~20x slower). */
static inline int slow_mode(void)
{
    const char *vg = getenv("CACHIFYD_VALGRIND");
    return vg && vg[0] == '1';
}

/* CLOCK_MONOTONIC in seconds (the daemon's clock too). */
static inline double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* n bytes of p with the unprintable ones as \xHH, for messages.  Four
 * static buffers in turn, so one message can show several. */
static inline const char *itest_escn(const char *p, size_t n)
{
    static char bufs[4][700];
    static unsigned turn;
    char *out = bufs[turn++ % 4];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof(bufs[0]); i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, sizeof(bufs[0]) - o, "\\x%02x", ch);
    }
    out[o] = '\0';
    return out;
}

static inline const char *itest_esc(const char *s)
{
    return itest_escn(s, strlen(s));
}

/* Makes the test's temporary directory and picks its port (the paths in
 * g_ts are known from here on, for arguments like --unixsocket). */
static inline struct test_server *srv_init(void)
{
    if (ts_init(&g_ts) != 0)
        ck_abort_msg("ts_init failed: %s", strerror(errno));
    return &g_ts;
}

/* (Re)starts the daemon of srv_init() with the extra arguments
 * (NULL-terminated, or NULL for none); the failure hook shows its log. */
static inline void srv_run(const char *const *extra)
{
    if (ts_start(&g_ts, extra) != 0)
        ck_abort_msg("the daemon did not start (see its log above)");
}

static inline struct test_server *srv_start(const char *const *extra)
{
    srv_init();
    srv_run(extra);
    return &g_ts;
}

#define SRV_START(...) srv_start((const char *const[]){ __VA_ARGS__, NULL })

/* Stops the daemon with SIGTERM and asserts a clean exit (0); keeps its
 * directory, for a restart. */
static inline void srv_stop(void)
{
    int rc = ts_stop(&g_ts);
    if (rc != 0)
        ck_abort_msg("the daemon exited with %d, not 0 (99: valgrind found "
                     "errors or leaks; see the log above)", rc);
}

/* srv_stop(), then the directory goes. */
static inline void srv_finish(void)
{
    srv_stop();
    ts_cleanup(&g_ts);
}

static inline int conn_new(void)
{
    int fd = tc_connect(&g_ts);
    if (fd < 0)
        ck_abort_msg("cannot connect to the daemon: %s", strerror(errno));
    return fd;
}

/* Sends all of s (or n bytes of p), or fails. */
static inline void sayn(int fd, const void *p, size_t n)
{
    REQUIRE(tc_sendn(fd, p, n) == 0, "send failed: %s (\"%s\")",
            strerror(errno), itest_escn(p, n));
}

static inline void say(int fd, const char *s)
{
    sayn(fd, s, strlen(s));
}

/* Reads the exact bytes s, or fails naming what came instead. */
#define EXPECT(fd, s)                                                        \
    do {                                                                     \
        const char *expect_s_ = (s);                                         \
        if (tc_expect((fd), expect_s_) != 0)                                 \
            ck_abort_msg("line %d: expected \"%s\", got \"%s\"", __LINE__,   \
                         itest_esc(expect_s_), tc_last());                   \
    } while (0)

/* One ":<n>\r\n" reply, as a long long. */
#define READ_INT(fd) itest_read_int((fd), __LINE__)

static inline long long itest_read_int(int fd, int line)
{
    long long n = 0;
    if (tc_read_int(fd, &n) != 0)
        ck_abort_msg("line %d: expected an integer reply, got \"%s\"", line,
                     tc_last());
    return n;
}

/* Reads everything until the peer closes (or resets) into buf
 * (NUL-terminated) and returns the byte count; -1 when the read timeout
 * (TS_READ_TIMEOUT_S) came first.  More than cap - 1 bytes: -1 at once, or
 * with drain, the rest is read and dropped until the close. */
static inline long read_until_close(int fd, char *buf, size_t cap, int drain)
{
    size_t got = 0;
    for (;;) {
        char sink[4096];
        int room = got + 1 < cap;
        if (!room && !drain)
            return -1;
        char *dst = room ? buf + got : sink;
        ssize_t r = recv(fd, dst, room ? cap - 1 - got : sizeof(sink), 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            break;
        if (r < 0)
            return -1;
        if (room)
            got += (size_t)r;
    }
    buf[got] = '\0';
    return (long)got;
}

static inline long read_to_close(int fd, char *buf, size_t cap)
{
    return read_until_close(fd, buf, cap, 0);
}

/* Reads everything until close and requires exactly `want` (drain: see
 * read_until_close). */
#define ITEST_EXPECT_CLOSE(fd, want, drain)                                  \
    do {                                                                     \
        static char all_[65536];                                             \
        const char *want_ = (want);                                          \
        long n_ = read_until_close((fd), all_, sizeof(all_), (drain));       \
        if (n_ < 0)                                                          \
            ck_abort_msg("line %d: the connection was not closed after "    \
                         "\"%s\"", __LINE__, itest_esc(want_));              \
        if ((size_t)n_ != strlen(want_) || memcmp(all_, want_, (size_t)n_)) \
            ck_abort_msg("line %d: expected \"%s\" then close, got \"%s\"",  \
                         __LINE__, itest_esc(want_),                         \
                         itest_escn(all_, (size_t)n_));                      \
    } while (0)

#define EXPECT_CLOSE(fd, want) ITEST_EXPECT_CLOSE((fd), (want), 0)

/* Sends STATS and returns the parsed JSON object (json_decref it). */
static inline json_t *stats_get(int fd)
{
    static char buf[16384];
    json_error_t err;
    say(fd, "STATS\r\n");
    long n = tc_read_reply(fd, buf, sizeof(buf));
    REQUIRE(n > 0 && buf[0] == '$', "STATS: not a bulk reply: \"%s\"",
            tc_last());
    char *body = strstr(buf, "\r\n");
    long len = strtol(buf + 1, NULL, 10);
    REQUIRE(body && len > 0 && body + 2 + len + 2 == buf + n,
            "STATS: bad bulk framing: \"%s\"", tc_last());
    json_t *doc = json_loadb(body + 2, (size_t)len, 0, &err);
    REQUIRE(doc && json_is_object(doc), "STATS: not a JSON object (%s): %s",
            err.text, tc_last());
    return doc;
}

/* The integer member key of a STATS document; fails when it is missing. */
static inline long long stat_int(json_t *doc, const char *key)
{
    json_t *v = json_object_get(doc, key);
    REQUIRE(v && json_is_integer(v), "STATS has no integer '%s'", key);
    return (long long)json_integer_value(v);
}

/* One STATS member, fetched fresh. */
static inline long long stat1(int fd, const char *key)
{
    json_t *doc = stats_get(fd);
    long long v = stat_int(doc, key);
    json_decref(doc);
    return v;
}

/* Polls a STATS member until it equals want or secs pass; returns the last
 * value (the caller asserts it). */
static inline long long stat_poll(int fd, const char *key, long long want,
                                  double secs)
{
    double deadline = mono_s() + secs;
    long long got;
    for (;;) {
        got = stat1(fd, key);
        if (got == want || mono_s() > deadline)
            return got;
        usleep(20000);
    }
}

/* Adds a TCase with the checked fixture above; when CK_DEFAULT_TIMEOUT is
 * not set in the environment, gives it secs (Check's 4 s default is far too
 * short for a real daemon). */
static inline TCase *itest_tcase_timed(Suite *s, const char *name, int secs)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, itest_setup, itest_teardown);
    if (!getenv("CK_DEFAULT_TIMEOUT"))
        tcase_set_timeout(tc, secs);
    suite_add_tcase(s, tc);
    return tc;
}

/* The same with room for valgrind on a loaded machine. */
static inline TCase *itest_tcase(Suite *s, const char *name)
{
    return itest_tcase_timed(s, name, slow_mode() ? 600 : 120);
}

/* Runs the suite (CK_FORK in the environment picks fork or no-fork); the
 * exit status is nonzero when a test failed. */
static inline int itest_main(Suite *s)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
