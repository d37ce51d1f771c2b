/* tests/integration/itest.h - helpers shared by the integration suites
 * test_server.c, test_server_errors.c and test_server_load.c (each is its
 * own program, so the helpers are static inline and live in this header).
 *
 * Owns: the one daemon a test runs (g_ts) and its clean-up on every exit
 * path, request encoding in the three framings the suites exercise, exact
 * reply assertions, STATS parsing and small socket utilities.  Does not own:
 * starting the daemon or the blocking socket helpers, which are
 * tests/support/testserver.[ch].
 *
 * Clean-up on failure: every Check assertion ends in _ck_assert_failed(),
 * which in CK_FORK mode _exit()s the test's child (no atexit, no teardown)
 * and in CK_FORK=no mode longjmps out of the test.  So the macro below
 * routes that call through itest_on_failure() first, which dumps the
 * daemon's log (the diagnosis) and kills the daemon; the checked teardown
 * covers a test that fails in its fixture.  A test that passes stops its
 * daemon itself with srv_finish(), which asserts the exit status is 0
 * (under valgrind, 0 also means no error and no leak).
 */
#ifndef CACHIFY_TESTS_ITEST_H
#define CACHIFY_TESTS_ITEST_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/testserver.h"

/* Request framings.  Every command test runs once per framing. */
enum framing {
    FR_INLINE,     /* ACQUIRE job TTL 5000\r\n */
    FR_INLINE_ODD, /* empty lines, tabs, every word quoted with \xHH and
                      other escapes, bare \n ending */
    FR_RESP,       /* *3\r\n$7\r\nACQUIRE\r\n... */
    FR_COUNT
};

/* The daemon of the running test, and the process that owns it (a forked
 * Check child must not clean up its parent's daemon, nor the reverse). */
static struct test_server g_ts = { .pid = -1 };
static pid_t g_owner;

/* Fails the test without the checkpoint cost of ck_assert on success, for
 * loops that run thousands of times. */
#define REQUIRE(cond, ...)                                                   \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg(__VA_ARGS__);                                       \
    } while (0)

/* Reads the exact bytes s, or fails naming what came instead. */
#define EXPECT(fd, s)                                                        \
    do {                                                                     \
        const char *expect_s_ = (s);                                         \
        if (tc_expect((fd), expect_s_) != 0)                                 \
            ck_abort_msg("expected \"%s\", got \"%s\"", itest_esc(expect_s_), \
                         tc_last());                                         \
    } while (0)

/* One ":<n>\r\n" reply, as a long long. */
#define READ_INT(fd) itest_read_int((fd), __LINE__)

/* Sends the NUL-free words in the framing fr. */
#define SEND(fd, fr, ...)                                                    \
    itest_sendv((fd), (fr), (const char *const[]){ __VA_ARGS__, NULL })

static inline const char *itest_esc(const char *s)
{
    static char out[600];
    size_t o = 0;
    for (; *s && o + 5 < sizeof(out); s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch < 0x7f)
            out[o++] = (char)ch;
        else
            o += (size_t)snprintf(out + o, sizeof(out) - o, "\\x%02x", ch);
    }
    out[o] = '\0';
    return out;
}

static inline int slow_mode(void)
{
    const char *vg = getenv("CACHIFYD_VALGRIND");
    return vg && vg[0] == '1';
}

static inline double mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static inline long long wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

static inline void itest_stop_dirty(void)
{
    if (g_owner != getpid())
        return;
    if (g_ts.pid > 0) {
        ts_dump_log(&g_ts);
        ts_kill9(&g_ts);
    }
    ts_cleanup(&g_ts);
}

static inline void itest_on_failure(void)
{
    itest_stop_dirty();
}

/* Every Check failure passes here first (see the header paragraph).  The
 * name is not expanded again inside its own expansion. */
#define _ck_assert_failed(...)                                               \
    (itest_on_failure(), _ck_assert_failed(__VA_ARGS__))

/* Checked teardown: only does something when a test failed before
 * srv_finish(). */
static inline void itest_teardown(void)
{
    itest_stop_dirty();
}

static inline void itest_setup(void)
{
    g_owner = getpid();
    g_ts.pid = -1;
    g_ts.dir[0] = '\0';
}

/* Makes the test's temporary directory and picks its port (the paths in
 * g_ts are known from here on, for arguments like --unixsocket). */
static inline void srv_init(void)
{
    if (ts_init(&g_ts) != 0)
        ck_abort_msg("ts_init failed: %s", strerror(errno));
}

/* Starts the daemon of srv_init() with the extra arguments (NULL-terminated,
 * or NULL for none). */
static inline void srv_run(const char *const *extra)
{
    if (ts_start(&g_ts, extra) != 0) {
        ts_dump_log(&g_ts);
        ck_abort_msg("the daemon did not start (see its log above)");
    }
}

static inline void srv_start(const char *const *extra)
{
    srv_init();
    srv_run(extra);
}

#define SRV_START(...) srv_start((const char *const[]){ __VA_ARGS__, NULL })

/* Stops the daemon with SIGTERM and asserts a clean exit (0). */
static inline void srv_finish(void)
{
    int rc = ts_stop(&g_ts);
    if (rc != 0) {
        ts_dump_log(&g_ts);
        ts_cleanup(&g_ts);
        ck_abort_msg("the daemon exited with %d, not 0 (99: valgrind found "
                     "errors or leaks; see the log above)", rc);
    }
    ts_cleanup(&g_ts);
}

static inline int conn_new(void)
{
    int fd = tc_connect(&g_ts);
    if (fd < 0)
        ck_abort_msg("cannot connect to the daemon: %s", strerror(errno));
    return fd;
}

static inline long long itest_read_int(int fd, int line)
{
    long long n = 0;
    if (tc_read_int(fd, &n) != 0)
        ck_abort_msg("line %d: expected an integer reply, got \"%s\"", line,
                     tc_last());
    return n;
}

/* Appends to a growing buffer; aborts when out of memory. */
struct itest_buf {
    char *p;
    size_t len, cap;
};

static inline void buf_add(struct itest_buf *b, const void *src, size_t n)
{
    /* Also tells the compiler n is sane (it warns on memcpy otherwise). */
    REQUIRE(n < ((size_t)1 << 40), "buf_add: %zu bytes", n);
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        b->p = realloc(b->p, ncap);
        REQUIRE(b->p != NULL, "out of memory");
        b->cap = ncap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void buf_str(struct itest_buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3)))
static inline void buf_fmt(struct itest_buf *b, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    REQUIRE(n >= 0 && (size_t)n < sizeof(tmp), "buf_fmt: too long");
    buf_add(b, tmp, (size_t)n);
}

/* Writes one argument as a double-quoted inline word.  In the odd framing
 * every third byte goes out as \xHH (upper- or lower-case hex by position),
 * so the escapes are exercised on command names and keys alike.  Bytes
 * that must be escaped always are. */
static inline void quote_word(struct itest_buf *b, const char *w, size_t n,
                              int odd)
{
    buf_str(b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)w[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = { '\\', (char)ch };
            buf_add(b, e, 2);
        } else if (ch == '\n') {
            buf_str(b, "\\n");
        } else if (ch == '\r') {
            buf_str(b, "\\r");
        } else if (ch == '\t') {
            buf_str(b, "\\t");
        } else if (ch < 0x20 || ch >= 0x7f || (odd && i % 3 == 1)) {
            if (i % 2)
                buf_fmt(b, "\\x%02X", ch);
            else
                buf_fmt(b, "\\x%02x", ch);
        } else {
            buf_add(b, &ch, 1);
        }
    }
    buf_str(b, "\"");
}

/* Encodes one request of n arguments in framing fr into b. */
static inline void encode_req(struct itest_buf *b, int fr, size_t n,
                              const char *const *argv, const size_t *lens)
{
    if (fr == FR_RESP) {
        buf_fmt(b, "*%zu\r\n", n);
        for (size_t i = 0; i < n; i++) {
            buf_fmt(b, "$%zu\r\n", lens[i]);
            buf_add(b, argv[i], lens[i]);
            buf_str(b, "\r\n");
        }
        return;
    }
    if (fr == FR_INLINE_ODD)
        buf_str(b, "\r\n\n \t\r\n\t"); /* empty lines are ignored */
    for (size_t i = 0; i < n; i++) {
        int plain = fr == FR_INLINE && lens[i] > 0 && argv[i][0] != '"';
        for (size_t j = 0; plain && j < lens[i]; j++) {
            unsigned char ch = (unsigned char)argv[i][j];
            plain = ch > 0x20 && ch < 0x7f;
        }
        if (i > 0)
            buf_str(b, fr == FR_INLINE_ODD ? " \t" : " ");
        if (plain)
            buf_add(b, argv[i], lens[i]);
        else
            quote_word(b, argv[i], lens[i], fr == FR_INLINE_ODD);
    }
    buf_str(b, fr == FR_INLINE_ODD ? "\n" : "\r\n");
}

static inline void send_req(int fd, int fr, size_t n, const char *const *argv,
                            const size_t *lens)
{
    struct itest_buf b = { 0 };
    encode_req(&b, fr, n, argv, lens);
    int rc = tc_sendn(fd, b.p, b.len);
    free(b.p);
    REQUIRE(rc == 0, "send failed: %s", strerror(errno));
}

static inline void itest_sendv(int fd, int fr, const char *const *words)
{
    size_t n = 0, lens[64];
    while (words[n]) {
        REQUIRE(n < 64, "too many words");
        lens[n] = strlen(words[n]);
        n++;
    }
    send_req(fd, fr, n, words, lens);
}

/* Reads exactly n bytes and compares them with s (which may hold NULs). */
#define EXPECTN(fd, s, n)                                                    \
    do {                                                                     \
        char *got_ = malloc((n) + 1);                                        \
        REQUIRE(got_ != NULL, "out of memory");                              \
        long r_ = read_n((fd), got_, (n));                                   \
        int ok_ = r_ == (long)(n) && memcmp(got_, (s), (n)) == 0;           \
        if (!ok_) {                                                          \
            char seen_[600];                                                 \
            snprintf(seen_, sizeof(seen_), "%s",                            \
                     itest_escn(got_, (size_t)r_));                          \
            free(got_);                                                      \
            ck_abort_msg("expected \"%s\", got \"%s\"",                     \
                         itest_escn((s), (n)), seen_);                       \
        }                                                                    \
        free(got_);                                                          \
    } while (0)

/* Reads up to n bytes, stopping early only at a close or the read timeout;
 * returns how many came. */
static inline long read_n(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return (long)got;
}

/* Reads everything until the peer closes, into buf (NUL-terminated).
 * Returns the byte count, or -1 when the read timeout (TS_READ_TIMEOUT_S)
 * came first or more than cap - 1 bytes arrived. */
static inline long read_to_close(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        if (got + 1 >= cap)
            return -1;
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECONNRESET)
            break;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    return (long)got;
}

/* Reads everything until close and requires exactly `want`. */
#define EXPECT_CLOSE(fd, want)                                               \
    do {                                                                     \
        static char all_[65536];                                             \
        const char *want_ = (want);                                          \
        long n_ = read_to_close((fd), all_, sizeof(all_));                   \
        if (n_ < 0)                                                          \
            ck_abort_msg("the connection was not closed after \"%s\"",      \
                         itest_esc(want_));                                  \
        if ((size_t)n_ != strlen(want_) || memcmp(all_, want_, (size_t)n_)) \
            ck_abort_msg("expected \"%s\" then close, got \"%s\"",         \
                         itest_esc(want_), itest_escn(all_, (size_t)n_));    \
    } while (0)

static inline const char *itest_escn(const char *p, size_t n)
{
    static char out[600];
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

/* A buffered reader for long runs of replies (tc_read_reply reads a byte
 * per system call, too slow for tens of thousands of replies). */
struct rd {
    int fd;
    size_t beg, end;
    char buf[65536];
};

/* The next "\r\n"-terminated line, CRLF dropped, NUL-terminated in out.
 * Returns its length, or -1 on close, timeout or a line over cap - 1. */
static inline long rd_line(struct rd *r, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        if (r->beg == r->end) {
            ssize_t got = recv(r->fd, r->buf, sizeof(r->buf), 0);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                return -1;
            r->beg = 0;
            r->end = (size_t)got;
        }
        char ch = r->buf[r->beg++];
        if (n + 1 >= cap)
            return -1;
        out[n++] = ch;
        if (n >= 2 && out[n - 2] == '\r' && ch == '\n') {
            out[n - 2] = '\0';
            return (long)(n - 2);
        }
    }
}

/* Sends STATS and returns the parsed JSON object (json_decref it). */
static inline json_t *stats_get(int fd)
{
    static char buf[16384];
    json_error_t err;
    tc_send(fd, "STATS\r\n");
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

/* Repeats the inline request line until it answers the integer want or
 * secs pass; returns the last answer. */
static inline long long poll_int(int fd, const char *line, long long want,
                                 double secs)
{
    double deadline = mono_s() + secs;
    long long got;
    for (;;) {
        tc_send(fd, line);
        got = READ_INT(fd);
        if (got == want || mono_s() > deadline)
            return got;
        usleep(20000);
    }
}

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

/* Resident set of a process in KiB (VmRSS), or -1. */
static inline long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static inline void set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Adds a TCase with the checked fixture; when CK_DEFAULT_TIMEOUT is not set
 * in the environment, gives it room for valgrind on a loaded machine. */
static inline TCase *itest_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, itest_setup, itest_teardown);
    if (!getenv("CK_DEFAULT_TIMEOUT"))
        tcase_set_timeout(tc, slow_mode() ? 600 : 120);
    suite_add_tcase(s, tc);
    return tc;
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
