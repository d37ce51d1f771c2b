/* tests/integration/hardening.h - helpers shared by the adversarial suites
 * test_limits.c and test_hostile.c (each its own program, so the helpers
 * are static and live in this header).
 *
 * Owns: the daemon of the running test (H) and its clean-up on every exit
 * path, raw socket helpers with generous timeouts, STATS parsing, the
 * daemon's VmRSS and log, and the scale-down knob for valgrind runs.  Does
 * not own: starting the daemon (tests/support/testserver.[ch]).
 *
 * Clean-up on failure: a failed Check assertion _exit()s a forked test
 * (CK_FORK=yes: no teardown runs) or longjmps (CK_FORK=no), so the macro
 * below routes every failure through h_on_failure(), which dumps the
 * daemon's log and kills it; a passing test stops its daemon with
 * h_finish(), which requires exit status 0 (under valgrind: no error and
 * no leak).
 */
#ifndef CACHIFY_TESTS_HARDENING_H
#define CACHIFY_TESTS_HARDENING_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testserver.h"

static struct test_server H = { .pid = -1 };
static pid_t H_owner;

/* 1 under CACHIFYD_VALGRIND=1: counts scale down there, never assertions. */
static inline int h_slow(void)
{
    const char *vg = getenv("CACHIFYD_VALGRIND");
    return vg && vg[0] == '1';
}

/* n normally, n / div under valgrind (at least 1). */
static inline long h_scale(long n, long div)
{
    return h_slow() ? (n / div > 0 ? n / div : 1) : n;
}

static inline double h_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline void h_on_failure(void)
{
    if (H_owner != getpid())
        return;
    if (H.pid > 0) {
        ts_dump_log(&H);
        ts_kill9(&H);
    }
    ts_cleanup(&H);
}

#define _ck_assert_failed(...) (h_on_failure(), _ck_assert_failed(__VA_ARGS__))

/* Fails without Check's per-call checkpoint cost, for hot loops. */
#define REQ(cond, ...)                                                       \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg(__VA_ARGS__);                                       \
    } while (0)

static inline void h_setup(void)
{
    H_owner = getpid();
    H.pid = -1;
    H.dir[0] = '\0';
    signal(SIGPIPE, SIG_IGN);
}

static inline void h_teardown(void)
{
    h_on_failure();
}

/* Starts the daemon with extra arguments (NULL-terminated), after ts_init
 * (call h_init first when the test needs H.dir for a file). */
static inline void h_init(void)
{
    REQ(ts_init(&H) == 0, "ts_init: %s", strerror(errno));
}

static inline void h_run(const char *const *extra)
{
    if (ts_start(&H, extra) != 0) {
        ts_dump_log(&H);
        ck_abort_msg("the daemon did not start (its log is above)");
    }
}

#define H_START(...)                                                         \
    do {                                                                     \
        h_init();                                                            \
        h_run((const char *const[]){ __VA_ARGS__, NULL });                   \
    } while (0)

/* SIGTERM, and exit status 0 required. */
static inline void h_finish(void)
{
    int rc = ts_stop(&H);
    if (rc != 0) {
        ts_dump_log(&H);
        ts_cleanup(&H);
        ck_abort_msg("the daemon exited with %d, not 0 (99: valgrind found "
                     "errors or leaks; see the log above)", rc);
    }
    ts_cleanup(&H);
}

static inline int h_conn(void)
{
    int fd = tc_connect(&H);
    REQ(fd >= 0, "cannot connect: %s", strerror(errno));
    return fd;
}

static inline void h_send(int fd, const char *s)
{
    REQ(tc_send(fd, s) == 0, "send failed: %s", strerror(errno));
}

static inline void h_sendn(int fd, const void *p, size_t n)
{
    REQ(tc_sendn(fd, p, n) == 0, "send failed: %s", strerror(errno));
}

#define H_EXPECT(fd, s)                                                      \
    do {                                                                     \
        const char *want_ = (s);                                             \
        if (tc_expect((fd), want_) != 0)                                     \
            ck_abort_msg("line %d: expected \"%s\", got \"%s\"", __LINE__,   \
                         h_esc(want_, strlen(want_)), tc_last());            \
    } while (0)

static inline const char *h_esc(const char *p, size_t n)
{
    static char out[700];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < sizeof(out); i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", ch);
    }
    out[o] = '\0';
    return out;
}

static inline long long h_int(int fd)
{
    long long v;
    REQ(tc_read_int(fd, &v) == 0, "expected an integer reply, got \"%s\"",
        tc_last());
    return v;
}

/* Reads until the peer closes (or resets); the bytes go to buf (NUL-ended).
 * Returns the count, or -1 when the read timeout came first. */
static inline long h_read_to_close(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        char sink[4096];
        char *dst = got + 1 < cap ? buf + got : sink;
        size_t room = got + 1 < cap ? cap - 1 - got : sizeof(sink);
        ssize_t r = recv(fd, dst, room, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            break;
        if (r < 0)
            return -1;
        if (dst == buf + got)
            got += (size_t)r;
    }
    buf[got] = '\0';
    return (long)got;
}

/* Requires exactly `want`, then the close. */
#define H_EXPECT_CLOSE(fd, want)                                             \
    do {                                                                     \
        static char all_[65536];                                             \
        const char *w_ = (want);                                             \
        long n_ = h_read_to_close((fd), all_, sizeof(all_));                 \
        REQ(n_ >= 0, "line %d: no close after \"%s\"", __LINE__,             \
            h_esc(w_, strlen(w_)));                                          \
        REQ((size_t)n_ == strlen(w_) && memcmp(all_, w_, (size_t)n_) == 0,   \
            "line %d: expected \"%s\" then close, got \"%s\"", __LINE__,     \
            h_esc(w_, strlen(w_)), h_esc(all_, (size_t)n_));                 \
    } while (0)

/* One STATS member. */
static inline long long h_stat(int fd, const char *key)
{
    static char buf[16384];
    json_error_t err;
    h_send(fd, "STATS\r\n");
    long n = tc_read_reply(fd, buf, sizeof(buf));
    REQ(n > 0 && buf[0] == '$', "STATS: \"%s\"", tc_last());
    char *body = strstr(buf, "\r\n");
    REQ(body != NULL, "STATS: no CRLF");
    json_t *doc = json_loadb(body + 2, (size_t)(n - (body + 2 - buf) - 2), 0,
                             &err);
    REQ(doc != NULL, "STATS: not JSON: %s", err.text);
    json_t *v = json_object_get(doc, key);
    REQ(v && json_is_integer(v), "STATS has no integer %s", key);
    long long r = (long long)json_integer_value(v);
    json_decref(doc);
    return r;
}

/* Polls a STATS member until it equals want or secs pass; returns it. */
static inline long long h_stat_wait(int fd, const char *key, long long want,
                                    double secs)
{
    double end = h_now() + secs;
    long long v;
    while ((v = h_stat(fd, key)) != want && h_now() < end)
        usleep(50000);
    return v;
}

/* The daemon's VmRSS in KiB, or -1. */
static inline long h_rss_kib(void)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)H.pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* 1 when the daemon's log holds text (polled for up to secs). */
static inline int h_log_has(const char *text, double secs)
{
    double end = h_now() + secs;
    for (;;) {
        FILE *f = fopen(H.log_path, "r");
        if (f) {
            static char all[1 << 20];
            size_t n = fread(all, 1, sizeof(all) - 1, f);
            fclose(f);
            all[n] = '\0';
            if (strstr(all, text))
                return 1;
        }
        if (h_now() >= end)
            return 0;
        usleep(50000);
    }
}

/* Raises this process's soft open-file limit to its hard limit (for tests
 * that hold thousands of sockets).  Returns the new soft limit. */
static inline long h_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 30 : (long)rl.rlim_cur;
}

static inline TCase *h_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, h_setup, h_teardown);
    if (!getenv("CK_DEFAULT_TIMEOUT"))
        tcase_set_timeout(tc, h_slow() ? 600 : 120);
    suite_add_tcase(s, tc);
    return tc;
}

static inline int h_main(Suite *s)
{
    signal(SIGPIPE, SIG_IGN);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
