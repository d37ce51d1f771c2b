/* tests/integration/test_server_clients.c - the real daemon over TCP:
 * STATS, expiry, AUTH, and the other ways in.
 *
 * Owns: the integration tests of STATS and its counters, expiry seen from
 * a client, AUTH (a password required, and none set), the Unix socket and
 * IPv6 listeners, and redis-cli and nc as clients.  What the other
 * commands answer, in every framing, is test_server.c; bad input
 * test_server_errors.c; load and misbehaving clients test_server_load.c.
 *
 * As there, every test forks its own build/cachifyd (CACHIFYD_BIN) on a
 * free port through tests/support/testserver.h and stops it with SIGTERM
 * at the end, asserting exit status 0: with CACHIFYD_VALGRIND=1 that also
 * means valgrind saw no error and no leak.  Replies are compared as exact
 * bytes; times are bounded generously so a loaded machine or valgrind
 * cannot make a test flaky; no test asserts speed.
 */
#include "tests/integration/itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>

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

/* ---- AUTH ---- */

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

static Suite *server_clients_suite(void)
{
    Suite *s = suite_create("server_clients");
    TCase *tc = itest_tcase(s, "stats_expiry");
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
    return itest_main(server_clients_suite());
}
