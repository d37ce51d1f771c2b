/* tests/integration/itest.h - helpers shared by the integration suites
 * test_server*.c and test_busy_poll.c (and the client suites; each is its
 * own program, so the helpers are static inline and live in this header).
 *
 * Owns: request encoding in the three framings the suites exercise, a
 * growing buffer, a buffered reply reader, exact reads of n bytes and
 * small polling and clock utilities.  Does not own: the daemon of the test,
 * its clean-up on failure (the _ck_assert_failed hook), reply assertions,
 * STATS parsing, TCase creation and main(), which are
 * tests/support/itest_common.h; starting the daemon and the blocking socket
 * helpers, which are tests/support/testserver.[ch].
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

#include "tests/support/itest_common.h"

/* Request framings.  Every command test runs once per framing. */
enum framing {
    FR_INLINE,     /* ACQUIRE job TTL 5000\r\n */
    FR_INLINE_ODD, /* empty lines, tabs, every word quoted with \xHH and
                      other escapes, bare \n ending */
    FR_RESP,       /* *3\r\n$7\r\nACQUIRE\r\n... */
    FR_COUNT
};

/* Sends the NUL-free words in the framing fr. */
#define SEND(fd, fr, ...)                                                    \
    itest_sendv((fd), (fr), (const char *const[]){ __VA_ARGS__, NULL })

static inline long long wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
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

#endif
