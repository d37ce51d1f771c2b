/* tests/integration/test_hostile.c - the adversarial campaign: hostile and
 * broken clients against the real daemon (tests/support/testserver.h).
 *
 * Owns: one long test per kind of abuse, each run against a daemon that
 * holds a few locks for a control connection: garbage bytes, every
 * malformed framing, half frames then disconnect, huge counts and lengths,
 * NULs and CR/LF inside keys, keys at exactly max_key_len and one over,
 * pipelined floods from clients that never read, and storms of thousands of
 * connects and disconnects (with and without a reset).  After each: the
 * daemon answers PING on a new connection at once, every control lock is
 * intact (checked without releasing: IS_LOCKED, PTTL, EXTEND with the
 * token, which only its holder's token can do, and with a wrong one), and VmRSS comes back near
 * its baseline (a generous bound: allocator caches are not leaks; valgrind
 * runs find the leaks).  Does not own: per-command malformed framing with
 * exact replies (the core suite, test_server*.c).
 *
 * Every reply stream a hostile client receives must itself be well-formed
 * RESP, error lines never broken by its bytes.  Randomness is a fixed-seed
 * generator, so a failure reproduces.  CACHIFYD_VALGRIND=1 divides the
 * counts by 10.
 */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "tests/integration/hardening.h"

#define MAX_KEY_LEN 64
/* VmRSS growth tolerated after a campaign, KiB. */
#define RSS_SLACK_KIB (64 * 1024)

static int ctl = -1;
static long long tok[3];
static long rss_base;

/* xorshift64*: fixed seed, reproducible garbage. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Length of one whole RESP reply at p[0..n), 0 when incomplete, -1 when
 * malformed (bad type byte, a line with a bare CR or LF, bad numbers). */
static long resp_len(const char *p, size_t n, int depth)
{
    size_t i;
    if (n == 0 || depth > 4)
        return depth > 4 ? -1 : 0;
    for (i = 0; i < n && p[i] != '\n'; i++)
        if (p[i] == '\r' && i + 1 < n && p[i + 1] != '\n')
            return -1;
    if (i == n)
        return 0;
    if (i < 1 || p[i - 1] != '\r')
        return -1;
    size_t line = i + 1;
    char *end;
    long long v = strtoll(p + 1, &end, 10);
    switch (p[0]) {
    case '+':
        return (long)line;
    case '-':
        return line >= 4 && p[1] >= 'A' && p[1] <= 'Z' ? (long)line : -1;
    case ':':
        return end == p + i - 1 ? (long)line : -1;
    case '$':
        if (end != p + i - 1 || v < -1)
            return -1;
        if (v == -1)
            return (long)line;
        if (n - line < (size_t)v + 2)
            return 0;
        return p[line + v] == '\r' && p[line + v + 1] == '\n'
                   ? (long)(line + (size_t)v + 2) : -1;
    case '*': {
        if (end != p + i - 1 || v < 0)
            return -1;
        size_t off = line;
        for (long long k = 0; k < v; k++) {
            long m = resp_len(p + off, n - off, depth + 1);
            if (m <= 0)
                return m;
            off += (size_t)m;
        }
        return (long)off;
    }
    }
    return -1;
}

/* Requires buf[0..n) to be a sequence of whole, well-formed replies. */
static void require_well_formed(const char *buf, size_t n, const char *what)
{
    size_t off = 0;
    while (off < n) {
        long m = resp_len(buf + off, n - off, 0);
        REQUIRE(m > 0, "%s: %s reply at byte %zu: \"%s\"", what,
            m == 0 ? "cut" : "malformed", off, itest_escn(buf + off, n - off));
        off += (size_t)m;
    }
}

/* Sends bytes, half-closes, reads everything until the daemon closes, and
 * requires well-formed replies.  Returns the reply bytes (static). */
static const char *hit(const void *bytes, size_t n, const char *what,
                       long *got)
{
    static char buf[1 << 20];
    int fd = conn_new();
    /* The daemon may close first (framing error): a failed send is fine. */
    (void)tc_sendn(fd, bytes, n);
    shutdown(fd, SHUT_WR);
    long r = read_until_close(fd, buf, sizeof(buf), 1);
    REQUIRE(r >= 0, "%s: the daemon did not close the connection", what);
    close(fd);
    require_well_formed(buf, (size_t)r, what);
    if (got)
        *got = r;
    return buf;
}

/* The daemon is alive, fast, and the control locks are intact. */
static void verify(const char *after)
{
    char line[128];
    double t = mono_s();
    int fd = conn_new();
    say(fd, "PING\r\n");
    REQUIRE(tc_expect(fd, "+PONG\r\n") == 0, "after %s: PING got \"%s\"", after,
        tc_last());
    close(fd);
    REQUIRE(mono_s() - t < 10, "after %s: PING took %.1f s", after, mono_s() - t);
    say(ctl, "IS_LOCKED ctl1\r\nIS_LOCKED ctl2\r\nIS_LOCKED ctl3\r\n"
                "PTTL ctl1\r\n");
    for (int i = 0; i < 3; i++)
        REQUIRE(READ_INT(ctl) == 1, "after %s: ctl%d is gone", after, i + 1);
    REQUIRE(READ_INT(ctl) == -1, "after %s: ctl1 got an expiry", after);
    /* ctl1 stays TTL FOREVER (PTTL -1 above), so only a wrong token is
     * tried on it; the others prove their token by extending with it. */
    for (int i = 1; i < 3; i++) {
        snprintf(line, sizeof(line), "EXTEND ctl%d %lld 600000\r\n", i + 1,
                 tok[i]);
        say(ctl, line);
        REQUIRE(READ_INT(ctl) == 1, "after %s: ctl%d no longer has token %lld",
            after, i + 1, tok[i]);
    }
    say(ctl, "EXTEND ctl1 1 600000\r\n");
    REQUIRE(READ_INT(ctl) == 0, "after %s: a wrong token extended ctl1", after);
    /* Memory: back near the baseline once the abuse is over. */
    double end = mono_s() + 10;
    long rss;
    while ((rss = ts_rss_kib(g_ts.pid)) > rss_base + RSS_SLACK_KIB && mono_s() < end)
        usleep(100000);
    REQUIRE(rss <= rss_base + RSS_SLACK_KIB, "after %s: VmRSS %ld KiB, baseline "
        "%ld KiB", after, rss, rss_base);
}

static void start(void)
{
    char ml[16];
    snprintf(ml, sizeof(ml), "%d", MAX_KEY_LEN);
    /* Debug logging of thousands of connections is noise here. */
    SRV_START("--max_key_len", ml, "--loglevel", "info");
    ctl = conn_new();
    say(ctl, "ACQUIRE ctl1 TTL FOREVER\r\nACQUIRE ctl2 TTL 600000\r\n"
                "ACQUIRE ctl3 TTL FOREVER SESSION\r\n");
    for (int i = 0; i < 3; i++)
        ck_assert_int_gt(tok[i] = READ_INT(ctl), 0);
    verify("start");
    rss_base = ts_rss_kib(g_ts.pid);
    ck_assert_int_gt(rss_base, 0);
}

static void finish(void)
{
    verify("the campaign");
    close(ctl);
    srv_finish();
}

START_TEST(test_garbage)
{
    static char junk[8192];
    long n = h_scale(300, 10);
    start();
    for (long i = 0; i < n; i++) {
        size_t len = 1 + rng() % sizeof(junk);
        for (size_t j = 0; j < len; j++)
            junk[j] = (char)rng();
        switch (i % 4) {
        case 0: junk[0] = '*'; break;              /* looks like RESP */
        case 1:                                    /* printable lines */
            for (size_t j = 0; j < len; j++)
                junk[j] = (char)(0x20 + rng() % 0x60);
            break;
        case 2: junk[len - 1] = '\n'; break;       /* a line end */
        default: break;                            /* raw bytes */
        }
        hit(junk, len, "garbage", NULL);
    }
    verify("garbage");
    finish();
}
END_TEST

START_TEST(test_malformed_framing)
{
    static const struct { const char *bytes; size_t len; } bad[] = {
#define B(s) { s, sizeof(s) - 1 }
        B("*0\r\n"), B("*-1\r\n"), B("*1025\r\n"), B("*abc\r\n"),
        B("*1\r\n:1\r\n"), B("*1\r\n$-1\r\n"), B("*1\r\n$99999999999\r\n"),
        B("*1\r\n$4\r\nPINGxx"), B("*1\r\n$4\r\nPING\rX"),
        B("*10000000000000000000000000000000000000000\r\n"), B("*1\n"),
        B("*1\r\n$4\nPING\r\n"), B("*1\r\r\n"), B("*\r\n"), B("*1\r\n$\r\n"),
        B("*2\r\n$4\r\nPING\r\n*1\r\n"), B("*1\r\n$1\r\n\0\r\r"),
        B("\"unbalanced\r\n"), B("PING \"a\"b\r\n"), B("PING \"\\x\r\n"),
        B("*1\r\n$4\r\nPI\0G\r\n*0\r\n"), B("ACQUIRE k\r\n*1\r\nX"),
#undef B
    };
    start();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        long n;
        const char *r = hit(bad[i].bytes, bad[i].len, "malformed framing", &n);
        /* Whatever came before, the stream ends in one -PROTO line. */
        const char *last = r;
        for (const char *p = r; p < r + n; p++)
            if (p[0] == '\n' && p + 1 < r + n)
                last = p + 1;
        REQUIRE(strncmp(last, "-PROTO ", 7) == 0, "\"%s\": last reply \"%s\"",
            itest_escn(bad[i].bytes, bad[i].len), itest_escn(r, (size_t)n));
    }
    /* An inline line over max_line (64 KiB): -PROTO, not a buffer that
     * grows. */
    size_t big = 70000;
    char *line = malloc(big + 2);
    ck_assert_ptr_nonnull(line);
    memset(line, 'a', big);
    memcpy(line + big, "\r\n", 2);
    long n;
    const char *r = hit(line, big + 2, "long line", &n);
    free(line);
    ck_assert_msg(strncmp(r, "-PROTO inline request too long", 30) == 0,
                  "%s", itest_escn(r, (size_t)n));
    ck_assert_int_ge(stat1(ctl, "protocol_errors"), 23);
    finish();
}
END_TEST

START_TEST(test_half_frames_then_disconnect)
{
    static const char *const whole[] = {
        "*4\r\n$7\r\nACQUIRE\r\n$4\r\nhalf\r\n$7\r\nSESSION\r\n$4\r\nWAIT\r\n",
        "ACQUIRE \"half key\\x41\" TTL 5000 SESSION\r\n",
        "*2\r\n$4\r\nPING\r\n$10\r\n0123456789\r\n",
    };
    long rounds = h_scale(20, 10);
    start();
    for (long r = 0; r < rounds; r++) {
        for (size_t w = 0; w < 3; w++) {
            size_t len = strlen(whole[w]);
            for (size_t cut = 1; cut < len; cut++) {
                int fd = conn_new();
                sayn(fd, whole[w], cut);
                if (cut % 2) { /* half of them leave with a reset */
                    struct linger lg = { 1, 0 };
                    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
                }
                close(fd);
            }
        }
    }
    /* Nothing of theirs stays: no client, no lock, no waiter. */
    ck_assert_int_eq(stat_poll(ctl, "clients", 1, 30), 1);
    ck_assert_int_eq(stat1(ctl, "locks_held"), 3);
    ck_assert_int_eq(stat1(ctl, "waiters"), 0);
    finish();
}
END_TEST

START_TEST(test_huge_counts_and_lengths)
{
    start();
    /* 1024 empty arguments: a legal count, an empty command name. */
    struct { char *p; size_t len, cap; } b = { NULL, 0, 0 };
    b.cap = 1024 * 6 + 16;
    b.p = malloc(b.cap);
    ck_assert_ptr_nonnull(b.p);
    b.len = (size_t)snprintf(b.p, b.cap, "*1024\r\n");
    for (int i = 0; i < 1024; i++) {
        memcpy(b.p + b.len, "$0\r\n\r\n", 6);
        b.len += 6;
    }
    long n;
    const char *r = hit(b.p, b.len, "1024 empty args", &n);
    ck_assert_msg(strcmp(r, "-ERR unknown command ''\r\n") == 0, "%s",
                  itest_escn(r, (size_t)n));
    free(b.p);
    /* Announced lengths past the bounds: refused before any buffering. */
    /* The longest bulk is max_value_len (1 MiB), a SET's value. */
    r = hit("*1\r\n$1048577\r\n", 14, "bulk over max_value_len", &n);
    ck_assert_msg(strncmp(r, "-PROTO bulk length out of range", 31) == 0,
                  "%s", itest_escn(r, (size_t)n));
    r = hit("*1025\r\n", 7, "count over 1024", &n);
    ck_assert_msg(strncmp(r, "-PROTO multibulk count out of range", 35) == 0,
                  "%s", itest_escn(r, (size_t)n));
    /* Two 1 MiB bulks: each legal, together over max_request (1.25 MiB:
     * 4 x max_line + max_value_len). */
    size_t one = 1048576, total = 16 + 2 * (one + 16);
    char *big = malloc(total);
    ck_assert_ptr_nonnull(big);
    size_t off = (size_t)snprintf(big, total, "*3\r\n$4\r\nPING\r\n");
    for (int i = 0; i < 2; i++) {
        off += (size_t)snprintf(big + off, total - off, "$%zu\r\n", one);
        memset(big + off, 'z', one);
        off += one;
        memcpy(big + off, "\r\n", 2);
        off += 2;
    }
    r = hit(big, off, "request over max_request", &n);
    ck_assert_msg(strncmp(r, "-PROTO request too large", 24) == 0, "%s",
                  itest_escn(r, (size_t)n));
    /* A declared length that never arrives, many times over. */
    long k = h_scale(200, 10);
    int *fds = calloc((size_t)k, sizeof(int));
    ck_assert_ptr_nonnull(fds);
    for (long i = 0; i < k; i++) {
        fds[i] = conn_new();
        say(fds[i], "*2\r\n$4\r\nPING\r\n$65536\r\nonly-a-little");
    }
    verify("pending huge bulks");
    for (long i = 0; i < k; i++)
        close(fds[i]);
    free(fds);
    ck_assert_int_eq(stat_poll(ctl, "clients", 1, 30), 1);
    free(big);
    finish();
}
END_TEST

/* Sends one RESP request whose key holds the given bytes. */
static void send_key_cmd(int fd, const char *cmd, const char *key, size_t klen,
                         const char *extra)
{
    char hdr[128];
    int argc = extra ? 3 : 2;
    snprintf(hdr, sizeof(hdr), "*%d\r\n$%zu\r\n%s\r\n$%zu\r\n", argc,
             strlen(cmd), cmd, klen);
    say(fd, hdr);
    sayn(fd, key, klen);
    say(fd, "\r\n");
    if (extra) {
        snprintf(hdr, sizeof(hdr), "$%zu\r\n%s\r\n", strlen(extra), extra);
        say(fd, hdr);
    }
}

START_TEST(test_binary_keys_and_key_length)
{
    static const char key[] = "nul\0cr\rlf\nend\\";
    size_t klen = sizeof(key) - 1;
    char exact[MAX_KEY_LEN + 2];
    start();
    int c = conn_new(), d = conn_new();
    send_key_cmd(c, "ACQUIRE", key, klen, "SESSION");
    ck_assert_int_gt(READ_INT(c), 0);
    send_key_cmd(d, "IS_LOCKED", key, klen, NULL);
    EXPECT(d, ":1\r\n");
    /* A key differing after the NUL is another key. */
    send_key_cmd(d, "IS_LOCKED", "nul\0XX", 6, NULL);
    EXPECT(d, ":0\r\n");
    send_key_cmd(d, "ACQUIRE", key, klen, NULL);
    EXPECT(d, "-LOCKED nul\\x00cr\\x0dlf\\x0aend\\\\ is already locked!\r\n");
    /* Inline framing reaches the same key through escapes. */
    say(d, "IS_LOCKED \"nul\\x00cr\\rlf\\nend\\\\\"\r\n");
    EXPECT(d, ":1\r\n");
    close(c); /* SESSION: released with the connection */
    ck_assert_int_eq(stat_poll(d, "locks_held", 3, 20), 3);

    memset(exact, 'k', sizeof(exact));
    send_key_cmd(d, "ACQUIRE", exact, MAX_KEY_LEN, NULL);
    ck_assert_int_gt(READ_INT(d), 0);
    send_key_cmd(d, "IS_LOCKED", exact, MAX_KEY_LEN, NULL);
    EXPECT(d, ":1\r\n");
    static const char *const cmds[] = { "ACQUIRE", "RELEASE", "IS_LOCKED",
                                        "PTTL", "TTL" };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        send_key_cmd(d, cmds[i], exact, MAX_KEY_LEN + 1, NULL);
        EXPECT(d, "-LIMIT key is longer than max_key_len (64 bytes)\r\n");
    }
    send_key_cmd(d, "RELEASE", exact, MAX_KEY_LEN, NULL);
    EXPECT(d, ":1\r\n");
    send_key_cmd(d, "ACQUIRE", "", 0, NULL);
    EXPECT(d, "-ERR empty key\r\n");
    close(d);
    finish();
}
END_TEST

/* Pipelines lock requests without reading, then leaves without reading. */
START_TEST(test_floods_from_non_readers)
{
    long clients = h_scale(6, 3), per = h_scale(100000, 10);
    start();
    int *fds = calloc((size_t)clients, sizeof(int));
    ck_assert_ptr_nonnull(fds);
    char line[128];
    for (long c = 0; c < clients; c++) {
        fds[c] = conn_new();
        tc_set_nonblock(fds[c], 1);
    }
    /* Round-robin so all flood at once; a full socket just skips a turn. */
    for (long i = 0; i < per; i++) {
        for (long c = 0; c < clients; c++) {
            int n = snprintf(line, sizeof(line), "ACQUIRE flood%ld TTL 60000"
                             "\r\nRELEASE flood%ld\r\nHELP\r\n", c, c);
            ssize_t w = send(fds[c], line, (size_t)n, MSG_NOSIGNAL);
            (void)w;
        }
        if (i % 2000 == 0) {
            /* The control connection is served throughout. */
            double t = mono_s();
            say(ctl, "IS_LOCKED ctl1\r\n");
            REQUIRE(READ_INT(ctl) == 1, "ctl1 lost during the flood");
            REQUIRE(mono_s() - t < 5, "control answer took %.1f s", mono_s() - t);
        }
    }
    for (long c = 0; c < clients; c++)
        close(fds[c]);
    free(fds);
    ck_assert_int_eq(stat_poll(ctl, "clients", 1, 60), 1);
    finish();
}
END_TEST

START_TEST(test_connect_storms)
{
    long n = h_scale(3000, 10);
    start();
    for (long i = 0; i < n; i++) {
        int fd = conn_new();
        switch (i % 4) {
        case 0:
            break; /* connect, close */
        case 1:
            say(fd, "PING\r\n"); /* request, leave without the reply */
            break;
        case 2: {
            struct linger lg = { 1, 0 }; /* reset */
            say(fd, "ACQUIRE storm SESSION\r\n");
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            break;
        }
        default:
            say(fd, "ACQUIRE storm WAIT FOREVER SESSION\r\nQUIT\r\n");
            break;
        }
        close(fd);
    }
    ck_assert_int_eq(stat_poll(ctl, "clients", 1, 60), 1);
    ck_assert_int_eq(stat_poll(ctl, "waiters", 0, 30), 0);
    /* Every SESSION lock of the storm went with its connection. */
    ck_assert_int_eq(stat_poll(ctl, "locks_held", 3, 30), 3);
    ck_assert_int_ge(stat1(ctl, "connections_total"), n);
    finish();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = itest_tcase(s, "hostile");
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_malformed_framing);
    tcase_add_test(tc, test_half_frames_then_disconnect);
    tcase_add_test(tc, test_huge_counts_and_lengths);
    tcase_add_test(tc, test_binary_keys_and_key_length);
    tcase_add_test(tc, test_floods_from_non_readers);
    tcase_add_test(tc, test_connect_storms);
    return itest_main(s);
}
