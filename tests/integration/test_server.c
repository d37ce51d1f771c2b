/* tests/integration/test_server.c - the real daemon over TCP: commands.
 *
 * Owns: the integration tests of what each command answers, byte for byte,
 * in every request framing (plain inline, inline with empty lines, tabs and
 * escapes, RESP arrays): PING, ACQUIRE, RELEASE, IS_LOCKED, EXTEND, PTTL,
 * TTL, HELP and QUIT, and the inline syntax's details.  STATS, expiry,
 * AUTH, the Unix socket and IPv6 listeners, and redis-cli and nc as
 * clients are in test_server_clients.c.  Bad input (error replies,
 * framing errors, config errors) is in test_server_errors.c; load and
 * misbehaving clients (pipelines, floods, garbage, maxclients) in
 * test_server_load.c.
 *
 * Every test forks its own build/cachifyd (CACHIFYD_BIN) on a free port
 * through tests/support/testserver.h and stops it with SIGTERM at the end,
 * asserting exit status 0: with CACHIFYD_VALGRIND=1 that also means
 * valgrind saw no error and no leak.  Tokens are unknown numbers, so they
 * are checked by sign, order and against the wall clock; everything else is
 * compared as exact bytes.  Times are bounded generously (seconds where
 * milliseconds are expected) so a loaded machine or valgrind cannot make a
 * test flaky; no test asserts speed.
 */
#include "tests/integration/itest.h"

/* ---- PING and the framings ---- */

START_TEST(test_ping)
{
    int fr = _i;
    srv_start(NULL);
    int fd = conn_new();
    SEND(fd, fr, "PING");
    EXPECT(fd, "+PONG\r\n");
    SEND(fd, fr, "ping");
    EXPECT(fd, "+PONG\r\n");
    SEND(fd, fr, "PiNg", "hello world");
    EXPECT(fd, "$11\r\nhello world\r\n");
    SEND(fd, fr, "PING", "");
    EXPECT(fd, "$0\r\n\r\n");
    /* A message with every awkward byte comes back unchanged. */
    static const char msg[] = "a\0b\r\n\"\\\t\xff";
    static const char echo[] = "$9\r\na\0b\r\n\"\\\t\xff\r\n";
    const char *argv[] = { "PING", msg };
    size_t lens[] = { 4, sizeof(msg) - 1 };
    send_req(fd, fr, 2, argv, lens);
    EXPECTN(fd, echo, sizeof(echo) - 1);
    SEND(fd, fr, "PING", "a", "b");
    EXPECT(fd, "-ERR wrong number of arguments for 'PING'\r\n");
    close(fd);
    srv_finish();
}
END_TEST

/* ---- ACQUIRE ---- */

START_TEST(test_acquire)
{
    int fr = _i;
    long long t0 = wall_us();
    srv_start(NULL);
    int fd = conn_new();

    /* Default TTL: default_ttl_ms, 30000.  Each PTTL is pipelined with the
     * request it checks, so no round trip eats into the 1 s margin. */
    SEND(fd, fr, "ACQUIRE", "job");
    SEND(fd, fr, "PTTL", "job");
    long long t1 = READ_INT(fd);
    ck_assert_msg(t1 > t0, "token %lld is not above the wall clock %lld us",
                  t1, t0);
    long long p = READ_INT(fd);
    ck_assert_msg(p > 29000 && p <= 30000, "default TTL: PTTL %lld", p);
    SEND(fd, fr, "ACQUIRE", "job");
    EXPECT(fd, "-LOCKED job is already locked!\r\n");
    SEND(fd, fr, "acquire", "job"); /* not reentrant, whatever the case */
    EXPECT(fd, "-LOCKED job is already locked!\r\n");

    SEND(fd, fr, "AcQuIrE", "job2", "TTL", "5000");
    SEND(fd, fr, "PTTL", "job2");
    long long t2 = READ_INT(fd);
    ck_assert_msg(t2 > t1, "tokens not increasing: %lld then %lld", t1, t2);
    p = READ_INT(fd);
    ck_assert_msg(p > 4000 && p <= 5000, "TTL 5000: PTTL %lld", p);

    SEND(fd, fr, "ACQUIRE", "job3", "TTL", "FOREVER");
    long long t3 = READ_INT(fd);
    ck_assert_msg(t3 > t2, "tokens not increasing: %lld then %lld", t2, t3);
    SEND(fd, fr, "PTTL", "job3");
    EXPECT(fd, ":-1\r\n");
    SEND(fd, fr, "TTL", "job3");
    EXPECT(fd, ":-1\r\n");

    /* Options in any order and any case. */
    SEND(fd, fr, "ACQUIRE", "o1", "SESSION", "TTL", "7000", "WAIT", "0");
    SEND(fd, fr, "PTTL", "o1");
    long long t4 = READ_INT(fd);
    p = READ_INT(fd);
    ck_assert_msg(p > 6000 && p <= 7000, "TTL 7000: PTTL %lld", p);
    SEND(fd, fr, "ACQUIRE", "o2", "wait", "0", "session", "ttl", "forever");
    long long t5 = READ_INT(fd);
    SEND(fd, fr, "PTTL", "o2");
    EXPECT(fd, ":-1\r\n");
    SEND(fd, fr, "ACQUIRE", "o3", "TTL", "1099511627776"); /* the bound */
    long long t6 = READ_INT(fd);
    ck_assert_msg(t3 < t4 && t4 < t5 && t5 < t6,
                  "tokens not increasing: %lld %lld %lld %lld", t3, t4, t5, t6);

    /* Tokens grow strictly across keys. */
    long long last = t6;
    for (int i = 0; i < 20; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%d", i);
        SEND(fd, fr, "ACQUIRE", key, "TTL", "60000");
        long long t = READ_INT(fd);
        ck_assert_msg(t > last, "key %s: token %lld after %lld", key, t, last);
        last = t;
    }

    /* SESSION locks go when their connection does; others stay. */
    int fd2 = conn_new();
    SEND(fd2, fr, "ACQUIRE", "sess", "SESSION");
    ck_assert_int_gt(READ_INT(fd2), last);
    SEND(fd2, fr, "ACQUIRE", "nosess");
    ck_assert_int_gt(READ_INT(fd2), last);
    close(fd2);
    ck_assert_int_eq(poll_int(fd, "IS_LOCKED sess\r\n", 0, 10), 0);
    SEND(fd, fr, "IS_LOCKED", "nosess");
    EXPECT(fd, ":1\r\n");
    close(fd);
    srv_finish();
}
END_TEST

/* ---- RELEASE, IS_LOCKED, EXTEND, PTTL, TTL ---- */

START_TEST(test_release)
{
    int fr = _i;
    char tok[32], other[32];
    srv_start(NULL);
    int fd = conn_new();

    SEND(fd, fr, "ACQUIRE", "r");
    long long t = READ_INT(fd);
    snprintf(tok, sizeof(tok), "%lld", t);
    snprintf(other, sizeof(other), "%lld", t + 1);
    SEND(fd, fr, "RELEASE", "r", other);
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "IS_LOCKED", "r");
    EXPECT(fd, ":1\r\n");
    SEND(fd, fr, "release", "r", tok);
    EXPECT(fd, ":1\r\n");
    SEND(fd, fr, "IS_LOCKED", "r");
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "RELEASE", "r", tok);
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "PTTL", "r");
    EXPECT(fd, ":-2\r\n");

    /* An old token does not release a newer holder. */
    SEND(fd, fr, "ACQUIRE", "r");
    long long t2 = READ_INT(fd);
    ck_assert_int_gt(t2, t);
    SEND(fd, fr, "RELEASE", "r", tok);
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "IS_LOCKED", "r");
    EXPECT(fd, ":1\r\n");

    /* Forced release, whoever holds it: :1 then :0. */
    int fd2 = conn_new();
    SEND(fd2, fr, "RELEASE", "r");
    EXPECT(fd2, ":1\r\n");
    SEND(fd2, fr, "RELEASE", "r");
    EXPECT(fd2, ":0\r\n");
    SEND(fd, fr, "IS_LOCKED", "r");
    EXPECT(fd, ":0\r\n");
    close(fd2);

    static const char *const bad[] = { "abc", "0", "-5", "",
                                       "9223372036854775808", "1x" };
    char want[128];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        SEND(fd, fr, "RELEASE", "r", bad[i]);
        snprintf(want, sizeof(want), "-ERR invalid token '%s': expected a "
                 "positive integer\r\n", bad[i]);
        EXPECT(fd, want);
    }
    /* The largest token is a valid token (held by nobody). */
    SEND(fd, fr, "RELEASE", "r", "9223372036854775807");
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "RELEASE");
    EXPECT(fd, "-ERR wrong number of arguments for 'RELEASE'\r\n");
    SEND(fd, fr, "RELEASE", "r", "1", "2");
    EXPECT(fd, "-ERR wrong number of arguments for 'RELEASE'\r\n");
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_extend)
{
    int fr = _i;
    char tok[32], other[32];
    srv_start(NULL);
    int fd = conn_new();

    SEND(fd, fr, "IS_LOCKED", "e");
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "ACQUIRE", "e", "TTL", "1000");
    long long t = READ_INT(fd);
    snprintf(tok, sizeof(tok), "%lld", t);
    snprintf(other, sizeof(other), "%lld", t - 1);
    SEND(fd, fr, "is_locked", "e");
    EXPECT(fd, ":1\r\n");
    SEND(fd, fr, "EXTEND", "e", tok, "60000");
    SEND(fd, fr, "PTTL", "e"); /* pipelined: no round trip in the margin */
    EXPECT(fd, ":1\r\n");
    long long p = READ_INT(fd);
    ck_assert_msg(p > 59000 && p <= 60000, "after EXTEND 60000: PTTL %lld", p);
    SEND(fd, fr, "EXTEND", "e", other, "60000");
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "Extend", "nothere", tok, "1000");
    EXPECT(fd, ":0\r\n");
    SEND(fd, fr, "EXTEND", "e", tok, "0");
    EXPECT(fd, "-ERR invalid EXTEND ms '0': expected milliseconds "
               "(1..1099511627776)\r\n");
    SEND(fd, fr, "EXTEND", "e", tok, "abc");
    EXPECT(fd, "-ERR invalid EXTEND ms 'abc': expected milliseconds "
               "(1..1099511627776)\r\n");
    SEND(fd, fr, "EXTEND", "e", tok, "FOREVER");
    EXPECT(fd, "-ERR invalid EXTEND ms 'FOREVER': expected milliseconds "
               "(1..1099511627776)\r\n");
    SEND(fd, fr, "EXTEND", "e", "abc", "1000");
    EXPECT(fd, "-ERR invalid token 'abc': expected a positive integer\r\n");
    SEND(fd, fr, "EXTEND", "e", tok);
    EXPECT(fd, "-ERR wrong number of arguments for 'EXTEND'\r\n");
    SEND(fd, fr, "EXTEND", "e", tok, "1", "2");
    EXPECT(fd, "-ERR wrong number of arguments for 'EXTEND'\r\n");
    /* The failed EXTENDs left the lock as it was. */
    SEND(fd, fr, "PTTL", "e");
    p = READ_INT(fd);
    ck_assert_msg(p > 50000 && p <= 60000, "PTTL %lld", p);
    /* The token is the proof, whichever connection shows it. */
    int fd2 = conn_new();
    SEND(fd2, fr, "EXTEND", "e", tok, "120000");
    SEND(fd2, fr, "PTTL", "e");
    EXPECT(fd2, ":1\r\n");
    p = READ_INT(fd2);
    ck_assert_msg(p > 119000 && p <= 120000, "PTTL %lld", p);
    close(fd2);

    /* EXTEND gives a FOREVER lock an expiry. */
    SEND(fd, fr, "ACQUIRE", "f", "TTL", "FOREVER");
    snprintf(tok, sizeof(tok), "%lld", READ_INT(fd));
    SEND(fd, fr, "EXTEND", "f", tok, "5000");
    SEND(fd, fr, "PTTL", "f");
    EXPECT(fd, ":1\r\n");
    p = READ_INT(fd);
    ck_assert_msg(p > 4000 && p <= 5000, "PTTL %lld", p);
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_pttl_ttl)
{
    int fr = _i;
    srv_start(NULL);
    int fd = conn_new();
    SEND(fd, fr, "PTTL", "none");
    EXPECT(fd, ":-2\r\n");
    SEND(fd, fr, "TTL", "none");
    EXPECT(fd, ":-2\r\n");
    SEND(fd, fr, "pttl");
    EXPECT(fd, "-ERR wrong number of arguments for 'PTTL'\r\n");
    SEND(fd, fr, "ttl", "a", "b");
    EXPECT(fd, "-ERR wrong number of arguments for 'TTL'\r\n");

    /* TTL rounds to the nearest second.  The nine requests go in one write,
     * so PTTL and TTL of a key are read microseconds apart; TTL is checked
     * against the PTTL it came with, and r1 (2.9 s) must not be floored,
     * r2 (2.4 s) must not be rounded up, and r3 (0.4 s) reads 0, as long as
     * a key was read before it lost 0.4 s (any sane machine). */
    struct itest_buf b = { 0 };
    static const char *const keys[] = { "r1", "r2", "r3" };
    static const char *const ttls[] = { "2900", "2400", "400" };
    for (size_t i = 0; i < 3; i++) {
        const char *argv[4] = { "ACQUIRE", keys[i], "TTL", ttls[i] };
        size_t lens[4] = { 7, 2, 3, strlen(ttls[i]) };
        encode_req(&b, fr, 4, argv, lens);
    }
    for (size_t i = 0; i < 3; i++) {
        const char *argv[2] = { "PTTL", keys[i] };
        size_t lens[2] = { 4, 2 };
        encode_req(&b, fr, 2, argv, lens);
        argv[0] = "TTL";
        lens[0] = 3;
        encode_req(&b, fr, 2, argv, lens);
    }
    ck_assert_int_eq(tc_sendn(fd, b.p, b.len), 0);
    free(b.p);
    for (int i = 0; i < 3; i++)
        READ_INT(fd);
    long long p1 = READ_INT(fd), s1 = READ_INT(fd);
    long long p2 = READ_INT(fd), s2 = READ_INT(fd);
    long long p3 = READ_INT(fd), s3 = READ_INT(fd);
    ck_assert_msg(p3 == -2 || (p3 > 0 && p3 <= 400 && s3 == 0),
                  "0.4 s lock: PTTL %lld, TTL %lld", p3, s3);
    ck_assert_msg(p1 > 0 && p1 <= 2900 && p2 > 0 && p2 <= 2400,
                  "PTTL %lld %lld", p1, p2);
    /* |s*1000 - p| <= 500, with a few ms for the reads being apart. */
    ck_assert_msg(llabs(s1 * 1000 - p1) <= 505 && llabs(s2 * 1000 - p2) <= 505,
                  "TTL %lld for PTTL %lld, TTL %lld for PTTL %lld", s1, p1, s2,
                  p2);
    if (p1 > 2510)
        ck_assert_msg(s1 == 3, "PTTL %lld gave TTL %lld, not 3", p1, s1);
    if (p2 > 2000 && p2 < 2490)
        ck_assert_msg(s2 == 2, "PTTL %lld gave TTL %lld, not 2", p2, s2);
    close(fd);
    srv_finish();
}
END_TEST

/* ---- inline syntax details ---- */

START_TEST(test_inline_syntax)
{
    srv_start(NULL);
    int fd = conn_new();
    /* Empty and blank lines get no reply at all. */
    tc_send(fd, "\r\n\n\r\n   \t \r\n\t\nPING\r\n");
    EXPECT(fd, "+PONG\r\n");
    tc_send(fd, "PING\n");
    EXPECT(fd, "+PONG\r\n");
    tc_send(fd, "\tPING \t hello\t\r\n");
    EXPECT(fd, "$5\r\nhello\r\n");
    tc_send(fd, "PING \"a b\\\"c\\\\d\\n\\r\\t\\x41\\x7a\\x7A\"\r\n");
    EXPECT(fd, "$13\r\na b\"c\\d\n\r\tAzz\r\n");
    tc_send(fd, "PING \"\"\r\n");
    EXPECT(fd, "$0\r\n\r\n");
    /* A quote inside an unquoted word is an ordinary byte. */
    tc_send(fd, "PING ab\"c\r\n");
    EXPECT(fd, "$4\r\nab\"c\r\n");
    /* Unknown escapes keep the byte after the backslash; a broken \x too. */
    tc_send(fd, "PING \"\\q\\x4g\"\r\nPING \"\\x\"\r\nPING \"\\x4\"\r\n");
    EXPECT(fd, "$4\r\nqx4g\r\n$1\r\nx\r\n$2\r\nx4\r\n");
    /* A raw NUL is an ordinary byte of an inline word. */
    tc_sendn(fd, "PING a\0b\r\n", 10);
    EXPECTN(fd, "$3\r\na\0b\r\n", 9);
    /* A CR not followed by LF is data. */
    tc_send(fd, "PING a\rb\r\n");
    EXPECT(fd, "$3\r\na\rb\r\n");
    tc_send(fd, "\"PING\" \"x\"\t\"y z\"\r\n");
    EXPECT(fd, "-ERR wrong number of arguments for 'PING'\r\n");

    /* Keys written with quotes and escapes are the same keys as in RESP. */
    tc_send(fd, "ACQUIRE \"sp ace\"\r\n");
    ck_assert_int_gt(READ_INT(fd), 0);
    tc_send(fd, "*2\r\n$9\r\nIS_LOCKED\r\n$6\r\nsp ace\r\n");
    EXPECT(fd, ":1\r\n");
    tc_send(fd, "ACQUIRE \"sp\\x20ace\"\r\n");
    EXPECT(fd, "-LOCKED sp ace is already locked!\r\n");
    tc_send(fd, "ACQUIRE \"\\x00\\xff\"\r\n");
    ck_assert_int_gt(READ_INT(fd), 0);
    static const char bin[] = "*2\r\n$9\r\nIS_LOCKED\r\n$2\r\n\0\xff\r\n";
    tc_sendn(fd, bin, sizeof(bin) - 1);
    EXPECT(fd, ":1\r\n");
    tc_send(fd, "ACQUIRE \"\\x00\\xFF\"\r\n");
    EXPECT(fd, "-LOCKED \\x00\\xff is already locked!\r\n");
    close(fd);
    srv_finish();
}
END_TEST

/* ---- HELP and QUIT ---- */

START_TEST(test_help_quit)
{
    static const char *const names[] = { "ACQUIRE", "RELEASE", "IS_LOCKED",
                                         "EXTEND", "PTTL", "TTL", "PING",
                                         "STATS", "AUTH", "HELP", "QUIT" };
    int fr = _i;
    srv_start(NULL);
    int fd = conn_new();
    SEND(fd, fr, "help");
    struct rd r = { .fd = fd };
    char line[512];
    ck_assert_int_gt(rd_line(&r, line, sizeof(line)), 1);
    ck_assert_msg(line[0] == '*', "HELP is not an array: %s", line);
    long n = strtol(line + 1, NULL, 10);
    ck_assert_int_ge(n, (long)(sizeof(names) / sizeof(names[0])));
    int seen[sizeof(names) / sizeof(names[0])] = { 0 };
    for (long i = 0; i < n; i++) {
        ck_assert_int_gt(rd_line(&r, line, sizeof(line)), 1);
        ck_assert_msg(line[0] == '$', "HELP element %ld: %s", i, line);
        long len = strtol(line + 1, NULL, 10);
        ck_assert_int_eq(rd_line(&r, line, sizeof(line)), len);
        if (i == 0)
            ck_assert_msg(strncmp(line, "ACQUIRE", 7) == 0, "first: %s", line);
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            size_t kl = strlen(names[k]);
            if (strncmp(line, names[k], kl) == 0 &&
                (line[kl] == ' ' || line[kl] == '\0'))
                seen[k] = 1;
        }
    }
    ck_assert_msg(r.beg == r.end, "bytes after the HELP array");
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        ck_assert_msg(seen[k], "HELP does not describe %s", names[k]);
    SEND(fd, fr, "HELP", "x");
    EXPECT(fd, "-ERR wrong number of arguments for 'HELP'\r\n");
    SEND(fd, fr, "QUIT", "x"); /* wrong: does not close */
    EXPECT(fd, "-ERR wrong number of arguments for 'QUIT'\r\n");

    /* QUIT answers +OK and closes; what was pipelined after it is never
     * executed, and the connection's SESSION locks are released. */
    SEND(fd, fr, "ACQUIRE", "mine", "SESSION");
    ck_assert_int_gt(READ_INT(fd), 0);
    struct itest_buf b = { 0 };
    const char *quit[] = { "Quit" }, *acq[] = { "ACQUIRE", "after" };
    size_t quitlen[] = { 4 }, acqlen[] = { 7, 5 };
    encode_req(&b, fr, 1, quit, quitlen);
    encode_req(&b, fr, 2, acq, acqlen);
    ck_assert_int_eq(tc_sendn(fd, b.p, b.len), 0);
    free(b.p);
    EXPECT_CLOSE(fd, "+OK\r\n");
    close(fd);
    fd = conn_new();
    tc_send(fd, "IS_LOCKED after\r\nIS_LOCKED mine\r\n");
    EXPECT(fd, ":0\r\n:0\r\n");
    close(fd);
    srv_finish();
}
END_TEST

static Suite *server_suite(void)
{
    Suite *s = suite_create("server");
    TCase *tc = itest_tcase(s, "commands");
    tcase_add_loop_test(tc, test_ping, 0, FR_COUNT);
    tcase_add_loop_test(tc, test_acquire, 0, FR_COUNT);
    tcase_add_loop_test(tc, test_release, 0, FR_COUNT);
    tcase_add_loop_test(tc, test_extend, 0, FR_COUNT);
    tcase_add_loop_test(tc, test_pttl_ttl, 0, FR_COUNT);
    tcase_add_test(tc, test_inline_syntax);
    tcase_add_loop_test(tc, test_help_quit, 0, FR_COUNT);
    return s;
}

int main(void)
{
    return itest_main(server_suite());
}
