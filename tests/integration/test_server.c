/* tests/integration/test_server.c - the real daemon over TCP: commands.
 *
 * Owns: the integration tests of what each command answers, byte for byte,
 * in every request framing (plain inline, inline with empty lines, tabs and
 * escapes, RESP arrays), plus STATS, expiry, AUTH, HELP/QUIT, the Unix
 * socket and IPv6 listeners, and redis-cli and nc as clients.  Bad input
 * (error replies, framing errors, config errors) is in
 * test_server_errors.c; load and misbehaving clients (pipelines, floods,
 * garbage, maxclients) in test_server_load.c.
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

#include <arpa/inet.h>
#include <netinet/in.h>

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

/* ---- STATS and expiry ---- */

START_TEST(test_stats)
{
    static const char *const counters[] = {
        "uptime_ms", "clients", "locks_held", "waiters", "acquired",
        "released", "expired", "timeouts", "rejected",
    };
    srv_start(NULL);
    int fd = conn_new();
    /* ts_start's probe connection may not be reaped yet: wait for it. */
    ck_assert_int_eq(stat_poll(fd, "clients", 1, 10), 1);
    json_t *doc = stats_get(fd);
    json_t *v = json_object_get(doc, "version");
    ck_assert_msg(v && json_is_string(v) && json_string_length(v) > 0,
                  "STATS has no version string");
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++)
        ck_assert_msg(stat_int(doc, counters[i]) >= 0, "%s < 0", counters[i]);
    ck_assert_int_eq(stat_int(doc, "clients"), 1);
    for (size_t i = 3; i < sizeof(counters) / sizeof(counters[0]); i++)
        ck_assert_msg(stat_int(doc, counters[i]) == 0, "%s is not 0",
                      counters[i]);
    long long up = stat_int(doc, "uptime_ms");
    json_decref(doc);

    int fd2 = conn_new();
    tc_send(fd2, "PING\r\n"); /* answered: the daemon has accepted fd2 */
    EXPECT(fd2, "+PONG\r\n");
    ck_assert_int_eq(stat1(fd, "clients"), 2);

    tc_send(fd, "ACQUIRE s1\r\n");
    long long t = READ_INT(fd);
    doc = stats_get(fd);
    ck_assert_int_eq(stat_int(doc, "acquired"), 1);
    ck_assert_int_eq(stat_int(doc, "locks_held"), 1);
    json_decref(doc);
    tc_send(fd2, "ACQUIRE s1\r\n");
    EXPECT(fd2, "-LOCKED s1 is already locked!\r\n");
    ck_assert_int_eq(stat1(fd, "rejected"), 1);
    char line[64];
    snprintf(line, sizeof(line), "RELEASE s1 %lld\r\n", t);
    tc_send(fd, line);
    EXPECT(fd, ":1\r\n");
    tc_send(fd, "RELEASE s1\r\n"); /* frees nothing: not counted */
    EXPECT(fd, ":0\r\n");
    doc = stats_get(fd);
    ck_assert_int_eq(stat_int(doc, "released"), 1);
    ck_assert_int_eq(stat_int(doc, "locks_held"), 0);
    ck_assert_int_eq(stat_int(doc, "rejected"), 1);
    json_decref(doc);

    /* A waiter shows in "waiters", gets the lock on release, and a wait
     * that runs out counts in "timeouts". */
    tc_send(fd, "ACQUIRE w\r\n");
    t = READ_INT(fd);
    tc_send(fd2, "ACQUIRE w WAIT 60000\r\n");
    ck_assert_int_eq(stat_poll(fd, "waiters", 1, 10), 1);
    snprintf(line, sizeof(line), "RELEASE w %lld\r\n", t);
    tc_send(fd, line);
    EXPECT(fd, ":1\r\n");
    ck_assert_int_gt(READ_INT(fd2), t);
    doc = stats_get(fd);
    ck_assert_int_eq(stat_int(doc, "waiters"), 0);
    ck_assert_int_eq(stat_int(doc, "acquired"), 3);
    ck_assert_int_eq(stat_int(doc, "locks_held"), 1);
    json_decref(doc);
    tc_send(fd, "ACQUIRE w WAIT 100\r\n");
    EXPECT(fd, "-TIMEOUT w is already locked!\r\n");
    doc = stats_get(fd);
    ck_assert_int_eq(stat_int(doc, "timeouts"), 1);
    ck_assert_int_eq(stat_int(doc, "rejected"), 1);
    json_decref(doc);

    /* Expiry counts in "expired". */
    tc_send(fd, "ACQUIRE x TTL 100\r\n");
    READ_INT(fd);
    ck_assert_int_eq(stat_poll(fd, "expired", 1, 10), 1);
    doc = stats_get(fd);
    ck_assert_int_eq(stat_int(doc, "locks_held"), 1); /* w */
    ck_assert_int_eq(stat_int(doc, "acquired"), 4);
    ck_assert_msg(stat_int(doc, "uptime_ms") >= up, "uptime went back");
    json_decref(doc);

    close(fd2); /* w was not a SESSION lock: it stays */
    ck_assert_int_eq(stat_poll(fd, "clients", 1, 10), 1);
    ck_assert_int_eq(stat1(fd, "locks_held"), 1);
    tc_send(fd, "stats extra\r\n");
    EXPECT(fd, "-ERR wrong number of arguments for 'STATS'\r\n");
    /* STATS in RESP framing. */
    tc_send(fd, "*1\r\n$5\r\nstats\r\n");
    char buf[4096];
    ck_assert_int_gt(tc_read_reply(fd, buf, sizeof(buf)), 0);
    ck_assert_msg(buf[0] == '$' && strstr(buf, "\"locks_held\":1"),
                  "STATS: %s", buf);
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_expiry)
{
    srv_start(NULL);
    int fd = conn_new();
    tc_send(fd, "ACQUIRE x TTL 200\r\n");
    long long t = READ_INT(fd);
    tc_send(fd, "IS_LOCKED x\r\n");
    /* Could already be 0 on a very slow machine; 1 is the usual answer. */
    long long first = READ_INT(fd);
    ck_assert_msg(first == 0 || first == 1, "IS_LOCKED %lld", first);
    ck_assert_int_eq(poll_int(fd, "IS_LOCKED x\r\n", 0, 10), 0);
    tc_send(fd, "PTTL x\r\nTTL x\r\n");
    EXPECT(fd, ":-2\r\n:-2\r\n");
    char line[96];
    snprintf(line, sizeof(line), "EXTEND x %lld 1000\r\nRELEASE x %lld\r\n",
             t, t);
    tc_send(fd, line);
    EXPECT(fd, ":0\r\n:0\r\n");
    tc_send(fd, "ACQUIRE x TTL 200\r\n");
    ck_assert_int_gt(READ_INT(fd), t);

    /* A batch of short locks all expire, whoever asked for them. */
    struct itest_buf b = { 0 };
    for (int i = 0; i < 50; i++)
        buf_fmt(&b, "ACQUIRE batch%d TTL %d\r\n", i, 100 + 5 * i);
    ck_assert_int_eq(tc_sendn(fd, b.p, b.len), 0);
    free(b.p);
    for (int i = 0; i < 50; i++)
        READ_INT(fd);
    ck_assert_int_eq(stat_poll(fd, "locks_held", 0, 10), 0);
    ck_assert_int_eq(stat1(fd, "expired"), 52);
    tc_send(fd, "IS_LOCKED batch49\r\n");
    EXPECT(fd, ":0\r\n");
    close(fd);
    srv_finish();
}
END_TEST

/* ---- AUTH, HELP, QUIT ---- */

START_TEST(test_auth_required)
{
    SRV_START("--requirepass", "s3cret");
    int fd = conn_new();
    for (int fr = FR_INLINE; fr < FR_COUNT; fr++) {
        static const char *const noauth =
            "-NOAUTH Authentication required.\r\n";
        SEND(fd, fr, "ACQUIRE", "k");
        EXPECT(fd, noauth);
        SEND(fd, fr, "RELEASE", "k");
        EXPECT(fd, noauth);
        SEND(fd, fr, "IS_LOCKED", "k");
        EXPECT(fd, noauth);
        SEND(fd, fr, "EXTEND", "k", "1", "1");
        EXPECT(fd, noauth);
        SEND(fd, fr, "PTTL", "k");
        EXPECT(fd, noauth);
        SEND(fd, fr, "ttl", "k");
        EXPECT(fd, noauth);
        SEND(fd, fr, "STATS");
        EXPECT(fd, noauth);
        SEND(fd, fr, "PING");
        EXPECT(fd, "+PONG\r\n");
        SEND(fd, fr, "AUTH", "wrong");
        EXPECT(fd, "-WRONGPASS invalid password\r\n");
        SEND(fd, fr, "AUTH", "S3CRET");
        EXPECT(fd, "-WRONGPASS invalid password\r\n");
        SEND(fd, fr, "AUTH", "s3cret!");
        EXPECT(fd, "-WRONGPASS invalid password\r\n");
    }
    tc_send(fd, "HELP\r\n");
    char buf[8192];
    ck_assert_int_gt(tc_read_reply(fd, buf, sizeof(buf)), 0);
    ck_assert_msg(buf[0] == '*', "HELP: %s", tc_last());
    tc_send(fd, "AUTH\r\n");
    EXPECT(fd, "-ERR wrong number of arguments for 'AUTH'\r\n");
    tc_send(fd, "ACQUIRE k\r\n");
    EXPECT(fd, "-NOAUTH Authentication required.\r\n");
    tc_send(fd, "auth s3cret\r\n");
    EXPECT(fd, "+OK\r\n");
    tc_send(fd, "ACQUIRE k\r\n");
    ck_assert_int_gt(READ_INT(fd), 0);
    json_t *doc = stats_get(fd);
    ck_assert_int_eq(stat_int(doc, "locks_held"), 1);
    ck_assert_int_eq(stat_int(doc, "auth_failures"), 3 * FR_COUNT);
    json_decref(doc);

    /* Another connection starts unauthenticated; Redis 6 style
     * "AUTH default <password>" works too. */
    int fd2 = conn_new();
    tc_send(fd2, "IS_LOCKED k\r\n");
    EXPECT(fd2, "-NOAUTH Authentication required.\r\n");
    tc_send(fd2, "*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$6\r\ns3cret\r\n");
    EXPECT(fd2, "+OK\r\n");
    tc_send(fd2, "IS_LOCKED k\r\n");
    EXPECT(fd2, ":1\r\n");
    close(fd2);

    /* QUIT works unauthenticated. */
    int fd3 = conn_new();
    tc_send(fd3, "QUIT\r\n");
    EXPECT_CLOSE(fd3, "+OK\r\n");
    close(fd3);
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_auth_unset)
{
    srv_start(NULL);
    int fd = conn_new();
    for (int fr = FR_INLINE; fr < FR_COUNT; fr++) {
        SEND(fd, fr, "AUTH", "x");
        EXPECT(fd, "-ERR no password is set\r\n");
    }
    tc_send(fd, "PING\r\n");
    EXPECT(fd, "+PONG\r\n");
    close(fd);
    srv_finish();
}
END_TEST

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

/* ---- transports and other clients ---- */

/* 1 when this machine can listen on ::1 (containers may have no IPv6). */
static int have_ipv6_loopback(void)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int connect_ipv6(int port)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6,
                              .sin6_port = htons((uint16_t)port),
                              .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    struct timeval tv = { TS_READ_TIMEOUT_S, 0 };
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ck_assert_msg(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
                  "connect [::1]:%d: %s", port, strerror(errno));
    return fd;
}

/* ts_start only waits for the TCP port: the Unix socket is bound a moment
 * later (much later under valgrind), so connecting is retried for a while. */
static int connect_unix_retry(const char *path)
{
    double deadline = mono_s() + 10;
    int fd;
    while ((fd = tc_connect_unix(path)) < 0 && mono_s() < deadline)
        usleep(20000);
    return fd;
}

/* The Unix socket and IPv6 listeners serve the same lock table as TCP over
 * IPv4; a socket file left by a crash does not stop the next start, and a
 * clean stop removes it. */
START_TEST(test_unix_socket)
{
    int v6 = have_ipv6_loopback();
    srv_init();
    const char *const args[] = { "--unixsocket", g_ts.sock_path, "--bind",
                                 v6 ? "127.0.0.1 ::1" : "127.0.0.1", NULL };
    srv_run(args);
    int fd = connect_unix_retry(g_ts.sock_path);
    ck_assert_msg(fd >= 0, "cannot connect to %s", g_ts.sock_path);
    tc_send(fd, "PING\r\n*2\r\n$4\r\nPING\r\n$2\r\nhi\r\nACQUIRE u\r\n");
    EXPECT(fd, "+PONG\r\n$2\r\nhi\r\n");
    long long t = READ_INT(fd);
    ck_assert_int_gt(t, 0);
    int tcp = conn_new();
    tc_send(tcp, "ACQUIRE u\r\n");
    EXPECT(tcp, "-LOCKED u is already locked!\r\n");
    close(tcp);
    if (v6) {
        int fd6 = connect_ipv6(g_ts.port);
        tc_send(fd6, "IS_LOCKED u\r\n");
        EXPECT(fd6, ":1\r\n");
        close(fd6);
    }
    close(fd);

    ts_kill9(&g_ts); /* a crash leaves the socket file behind */
    ck_assert_int_eq(access(g_ts.sock_path, F_OK), 0);
    srv_run(args);
    fd = connect_unix_retry(g_ts.sock_path);
    ck_assert_msg(fd >= 0, "cannot connect to %s after a restart",
                  g_ts.sock_path);
    tc_send(fd, "PING\r\n");
    EXPECT(fd, "+PONG\r\n");
    close(fd);
    int rc = ts_stop(&g_ts);
    if (rc != 0)
        ts_dump_log(&g_ts);
    ck_assert_msg(rc == 0, "the daemon exited with %d", rc);
    ck_assert_msg(access(g_ts.sock_path, F_OK) != 0,
                  "a clean stop left %s behind", g_ts.sock_path);
    ts_cleanup(&g_ts);
}
END_TEST

/* Runs a shell command line and returns its stdout (static buffer). */
static const char *shell_out(const char *cmd)
{
    static char out[8192];
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "popen %s", cmd);
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert_msg(st == 0, "'%s' exited with %d; output: %s", cmd, st, out);
    return out;
}

START_TEST(test_redis_cli)
{
    char cmd[256];
    const char *out;
    ck_assert_msg(access("/usr/bin/redis-cli", X_OK) == 0,
                  "redis-cli is missing (Debian package redis-tools)");
    long long t0 = wall_us();
    srv_start(NULL);
#define CLI(args)                                                            \
    (snprintf(cmd, sizeof(cmd), "/usr/bin/redis-cli -h 127.0.0.1 -p %d %s",  \
              g_ts.port, args),                                              \
     shell_out(cmd))
    /* Not a terminal: redis-cli prints raw replies unless told --no-raw. */
    out = CLI("ACQUIRE job2");
    char *end;
    long long t = strtoll(out, &end, 10);
    ck_assert_msg(t > t0 && strcmp(end, "\n") == 0, "ACQUIRE printed '%s'",
                  out);
    out = CLI("--no-raw IS_LOCKED job2");
    ck_assert_str_eq(out, "(integer) 1\n");
    out = CLI("--raw IS_LOCKED job2");
    ck_assert_str_eq(out, "1\n");
    out = CLI("--no-raw ACQUIRE job2");
    ck_assert_str_eq(out, "(error) LOCKED job2 is already locked!\n");
    out = CLI("--no-raw is_locked nothere");
    ck_assert_str_eq(out, "(integer) 0\n");
    out = CLI("--no-raw PTTL nothere");
    ck_assert_str_eq(out, "(integer) -2\n");
    out = CLI("--no-raw PING");
    ck_assert_str_eq(out, "PONG\n");
    out = CLI("--no-raw PING 'hello there'");
    ck_assert_str_eq(out, "\"hello there\"\n");
    out = CLI("--raw STATS");
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    ck_assert_msg(doc != NULL, "STATS via redis-cli: %s", out);
    ck_assert_int_eq(stat_int(doc, "locks_held"), 1);
    json_decref(doc);
    char args[128];
    snprintf(args, sizeof(args), "--no-raw RELEASE job2 %lld", t);
    out = CLI(args);
    ck_assert_str_eq(out, "(integer) 1\n");
    out = CLI("--no-raw FOO");
    ck_assert_str_eq(out, "(error) ERR unknown command 'FOO'\n");
#undef CLI
    srv_finish();
}
END_TEST

START_TEST(test_nc)
{
    char cmd[256];
    ck_assert_msg(access("/usr/bin/nc", X_OK) == 0, "nc is missing");
    long long t0 = wall_us();
    srv_start(NULL);
    snprintf(cmd, sizeof(cmd), "printf 'ACQUIRE job TTL 5000\\r\\nIS_LOCKED "
             "job\\r\\n' | nc -q1 127.0.0.1 %d", g_ts.port);
    const char *out = shell_out(cmd);
    long long t = 0;
    int used = 0;
    ck_assert_msg(sscanf(out, ":%lld\r\n:1\r\n%n", &t, &used) == 1 &&
                  (size_t)used == strlen(out) && t > t0,
                  "nc printed \"%s\"", itest_esc(out));
    /* With -N nc half-closes after its input: the daemon still answers
     * everything, then closes, and nc ends at once. */
    snprintf(cmd, sizeof(cmd), "printf 'IS_LOCKED job\\nPTTL nothere\\n"
             "ACQUIRE job\\n' | nc -N 127.0.0.1 %d", g_ts.port);
    out = shell_out(cmd);
    ck_assert_str_eq(out, ":1\r\n:-2\r\n-LOCKED job is already locked!\r\n");
    int fd = conn_new();
    tc_send(fd, "PTTL job\r\n");
    long long p = READ_INT(fd);
    ck_assert_msg(p > 0 && p <= 5000, "PTTL %lld", p);
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

    tc = itest_tcase(s, "stats_expiry");
    tcase_add_test(tc, test_stats);
    tcase_add_test(tc, test_expiry);

    tc = itest_tcase(s, "auth");
    tcase_add_test(tc, test_auth_required);
    tcase_add_test(tc, test_auth_unset);

    tc = itest_tcase(s, "clients");
    tcase_add_test(tc, test_unix_socket);
    tcase_add_test(tc, test_redis_cli);
    tcase_add_test(tc, test_nc);
    return s;
}

int main(void)
{
    return itest_main(server_suite());
}
