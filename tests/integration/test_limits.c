/* tests/integration/test_limits.c - every resource limit of the daemon,
 * against the real daemon (tests/support/testserver.h).
 *
 * Owns: one test per limit: maxclients, max_locks, max_waiters,
 * client_output_limit, client_stall_timeout (a client that never reads),
 * timeout (idle clients; waiting clients are not idle), request_timeout
 * (slow loris, half frames, and its clock stopping while a wait holds the
 * connection), requirepass_file, protected mode (from a real non-loopback
 * address of this machine), and the open file limit (lowered maxclients
 * under `ulimit -n 64`, 10,000 concurrent clients after the daemon raised
 * its own soft limit).  Each checks the client-visible behaviour, the STATS
 * counter and the log line.
 *
 * Timing: limits are set to 1-2 s and every wait has a bound many times
 * that (the machine is a loaded 2-core box); CACHIFYD_VALGRIND=1 scales
 * counts down, never assertions.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <sys/stat.h>

#include "tests/integration/hardening.h"
#include "daemon/admission.h"

/* ---- maxclients, max_locks, max_waiters ---- */

START_TEST(test_maxclients)
{
    int fds[5];
    SRV_START("--maxclients", "5");
    for (int i = 0; i < 5; i++) {
        fds[i] = conn_new();
        say(fds[i], "PING\r\n");
        EXPECT(fds[i], "+PONG\r\n");
    }
    int extra = conn_new();
    H_EXPECT_CLOSE(extra, "-LIMIT max number of clients reached\r\n");
    close(extra);
    /* A freed slot serves again (the close takes a moment to be seen). */
    close(fds[0]);
    double end = mono_s() + 20;
    for (;;) {
        fds[0] = conn_new();
        say(fds[0], "PING\r\n");
        char buf[128];
        long n = tc_read_reply(fds[0], buf, sizeof(buf));
        if (n > 0 && strcmp(buf, "+PONG\r\n") == 0)
            break;
        REQUIRE(n > 0 && strncmp(buf, "-LIMIT", 6) == 0, "got \"%s\"", tc_last());
        close(fds[0]);
        REQUIRE(mono_s() < end, "the freed slot was never given back");
        usleep(50000);
    }
    ck_assert_int_ge(stat1(fds[0], "rejected_clients"), 1);
    ck_assert_int_eq(stat1(fds[0], "maxclients"), 5);
    ck_assert(h_log_has("refused: maxclients (5) reached", 5));
    for (int i = 0; i < 5; i++)
        close(fds[i]);
    srv_finish();
}
END_TEST

START_TEST(test_max_locks)
{
    SRV_START("--max_locks", "3");
    int c = conn_new();
    say(c, "ACQUIRE k1\r\nACQUIRE k2\r\nACQUIRE k3 WAIT 10\r\n");
    ck_assert_int_gt(READ_INT(c), 0);
    ck_assert_int_gt(READ_INT(c), 0);
    ck_assert_int_gt(READ_INT(c), 0);
    say(c, "ACQUIRE k4\r\n");
    EXPECT(c, "-LIMIT max_locks reached (3)\r\n");
    say(c, "ACQUIRE k4 WAIT 100\r\n");
    EXPECT(c, "-LIMIT max_locks reached (3)\r\n");
    /* A held key still queues waiters: the limit counts keys. */
    say(c, "ACQUIRE k1\r\n");
    EXPECT(c, "-LOCKED k1 is already locked!\r\n");
    say(c, "RELEASE k1\r\nACQUIRE k4\r\n");
    EXPECT(c, ":1\r\n");
    ck_assert_int_gt(READ_INT(c), 0);
    ck_assert_int_eq(stat1(c, "locks_held"), 3);
    close(c);
    srv_finish();
}
END_TEST

START_TEST(test_max_waiters)
{
    SRV_START("--max_waiters", "2");
    int c0 = conn_new(), c1 = conn_new(), c2 = conn_new(), c3 = conn_new();
    say(c0, "ACQUIRE k TTL FOREVER\r\n");
    ck_assert_int_gt(READ_INT(c0), 0);
    say(c1, "ACQUIRE k WAIT 60000\r\n");
    say(c2, "ACQUIRE k WAIT FOREVER\r\n");
    ck_assert_int_eq(stat_poll(c0, "waiters", 2, 20), 2);
    say(c3, "ACQUIRE k WAIT 60000\r\n");
    EXPECT(c3, "-LIMIT max_waiters reached for this key (2)\r\n");
    /* Other keys are not affected. */
    say(c3, "ACQUIRE other WAIT 100\r\n");
    ck_assert_int_gt(READ_INT(c3), 0);
    say(c0, "RELEASE k\r\n");
    EXPECT(c0, ":1\r\n");
    ck_assert_int_gt(READ_INT(c1), 0); /* first come, first served */
    close(c0);
    close(c1);
    close(c2);
    close(c3);
    srv_finish();
}
END_TEST

/* ---- output: one huge reply, and a client that never reads ---- */

START_TEST(test_client_output_limit)
{
    const size_t len = 1500000;
    SRV_START("--max_line", "2097152", "--client_output_limit", "1048576");
    int c = conn_new(), ctl = conn_new();
    char hdr[64];
    snprintf(hdr, sizeof(hdr), "*2\r\n$4\r\nPING\r\n$%zu\r\n", len);
    char *body = malloc(len + 2);
    ck_assert_ptr_nonnull(body);
    memset(body, 'x', len);
    memcpy(body + len, "\r\n", 2);
    say(c, hdr);
    sayn(c, body, len + 2);
    free(body);
    static char got[65536];
    long n = read_until_close(c, got, sizeof(got), 1);
    /* Dropped before any of the 1.5 MB reply could leave. */
    ck_assert_int_ge(n, 0);
    ck_assert_int_lt(n, 1000);
    ck_assert(h_log_has("unsent reply bytes is over client_output_limit", 10));
    say(ctl, "PING\r\n");
    EXPECT(ctl, "+PONG\r\n");
    close(c);
    close(ctl);
    srv_finish();
}
END_TEST

/* Pipelines HELP (6 bytes in, ~700 out) without ever reading, until the
 * daemon stops reading too (its output paused, then the socket buffers
 * full).  Returns the bytes sent. */
static long flood_without_reading(int fd, double max_secs)
{
    static char chunk[6 * 8192];
    for (size_t i = 0; i < sizeof(chunk); i += 6)
        memcpy(chunk + i, "HELP\r\n", 6);
    tc_set_nonblock(fd, 1);
    long sent = 0;
    double end = mono_s() + max_secs, blocked_since = 0;
    while (mono_s() < end) {
        ssize_t w = send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL);
        if (w > 0) {
            sent += w;
            blocked_since = 0;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            break; /* already dropped */
        if (blocked_since == 0)
            blocked_since = mono_s();
        else if (mono_s() - blocked_since > 1.0)
            break; /* nothing taken for a second: the daemon stopped */
        usleep(20000);
    }
    tc_set_nonblock(fd, 0);
    return sent;
}

START_TEST(test_client_stall_timeout)
{
    SRV_START("--client_stall_timeout", "2");
    int ctl = conn_new(), c = conn_new();
    long base = ts_rss_kib(g_ts.pid);
    long sent = flood_without_reading(c, 20);
    ck_assert_int_gt(sent, 100000);
    ck_assert_int_eq(stat_poll(ctl, "stalled_clients", 1, 60), 1);
    ck_assert_int_eq(stat_poll(ctl, "clients", 1, 20), 1);
    ck_assert(h_log_has("did not read its replies for 2 s "
                        "(client_stall_timeout)", 10));
    /* What it made the daemon buffer was bounded, and is given back. */
    long rss = ts_rss_kib(g_ts.pid);
    ck_assert_msg(rss < base + 64 * 1024, "VmRSS %ld KiB, was %ld", rss, base);
    say(ctl, "PING\r\n");
    EXPECT(ctl, "+PONG\r\n");
    close(c);
    close(ctl);
    srv_finish();
}
END_TEST

/* ---- timeout (idle) ---- */

START_TEST(test_idle_timeout)
{
    SRV_START("--timeout", "1");
    int idle = conn_new(), hold = conn_new(), wait = conn_new(), busy = conn_new();
    say(idle, "PING\r\n");
    EXPECT(idle, "+PONG\r\n");
    say(hold, "ACQUIRE k TTL FOREVER\r\n");
    ck_assert_int_gt(READ_INT(hold), 0);
    double t0 = mono_s();
    say(wait, "ACQUIRE k WAIT 3000\r\n");
    /* A client that talks every 300 ms stays for 3.5 s. */
    while (mono_s() - t0 < 3.5) {
        say(busy, "PING\r\n");
        EXPECT(busy, "+PONG\r\n");
        usleep(300000);
    }
    /* The waiter was not idle while waiting: it gets its -TIMEOUT. */
    EXPECT(wait, "-TIMEOUT k is already locked!\r\n");
    ck_assert(tc_closed(idle));
    ck_assert(tc_closed(hold));
    /* The lock of the closed holder was not a SESSION lock: still held. */
    say(busy, "IS_LOCKED k\r\n");
    EXPECT(busy, ":1\r\n");
    /* After its wait the waiter is idle like any other. */
    ck_assert(tc_closed(wait));
    ck_assert_int_ge(stat1(busy, "idle_closed"), 3);
    ck_assert(h_log_has("idle for 1 s (timeout)", 5));
    close(idle);
    close(hold);
    close(wait);
    close(busy);
    srv_finish();
}
END_TEST

/* ---- request_timeout (slow loris) ---- */

START_TEST(test_request_timeout)
{
    static const char msg[] =
        "-PROTO request not completed within request_timeout (1 s)\r\n";
    SRV_START("--request_timeout", "1");
    int partial = conn_new(), half = conn_new(), hold = conn_new(),
        waiting = conn_new(), loris = conn_new(), good = conn_new();

    double t0 = mono_s();
    say(partial, "ACQUIRE k");
    say(half, "*2\r\n$4\r\nPING\r\n");
    say(hold, "ACQUIRE w TTL FOREVER\r\n");
    ck_assert_int_gt(READ_INT(hold), 0);
    /* Bytes queued behind a waiting ACQUIRE are not on the clock until the
     * wait ends. */
    say(waiting, "ACQUIRE w WAIT 2500\r\nPI");
    /* One byte every 200 ms of a request that never ends, and complete
     * requests every 600 ms on another connection. */
    int loris_cut = 0;
    for (int i = 0; mono_s() - t0 < 2.4; i++) {
        if (!loris_cut && send(loris, "A", 1, MSG_NOSIGNAL) != 1)
            loris_cut = 1;
        if (i % 3 == 0) {
            say(good, "PING\r\n");
            EXPECT(good, "+PONG\r\n");
        }
        usleep(200000);
    }
    H_EXPECT_CLOSE(partial, msg);
    ck_assert(mono_s() - t0 >= 0.9);
    H_EXPECT_CLOSE(half, msg);
    H_EXPECT_CLOSE(loris, msg);
    EXPECT(waiting, "-TIMEOUT w is already locked!\r\n");
    H_EXPECT_CLOSE(waiting, msg);
    ck_assert_msg(mono_s() - t0 >= 3.2, "the waiter's partial request was "
                  "timed while it waited (%.1f s)", mono_s() - t0);
    ck_assert_int_eq(stat1(good, "request_timeouts"), 4);
    ck_assert(h_log_has("a request stayed incomplete for 1 s "
                        "(request_timeout)", 5));
    close(partial);
    close(half);
    close(hold);
    close(waiting);
    close(loris);
    close(good);
    srv_finish();
}
END_TEST

/* ---- requirepass_file ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Starts the daemon with args that must make it refuse to start; returns
 * with its log checked for `why`. */
static void expect_start_failure(const char *const *extra, const char *why)
{
    REQUIRE(ts_start(&g_ts, extra) != 0, "the daemon started with a bad password "
        "setting");
    ck_assert_msg(h_log_has(why, 5), "the log does not say \"%s\"", why);
}

START_TEST(test_requirepass_file)
{
    char path[256], cmdline[4096];
    srv_init();
    /* extra.conf: a name ts_cleanup removes on every path. */
    snprintf(path, sizeof(path), "%s/extra.conf", g_ts.dir);
    write_file(path, "s3cret-from-file\n");
    srv_run((const char *const[]){ "--requirepass_file", path, NULL });
    int c = conn_new();
    say(c, "PING\r\n");
    EXPECT(c, "+PONG\r\n");
    say(c, "ACQUIRE k\r\n");
    EXPECT(c, "-NOAUTH Authentication required.\r\n");
    say(c, "AUTH s3cret-from-fil\r\n");
    EXPECT(c, "-WRONGPASS invalid password\r\n");
    say(c, "AUTH s3cret-from-file\r\n");
    EXPECT(c, "+OK\r\n");
    say(c, "ACQUIRE k\r\n");
    ck_assert_int_gt(READ_INT(c), 0);
    ck_assert_int_eq(stat1(c, "auth_failures"), 1);
    ck_assert(h_log_has("AUTH failed", 5));
    /* The password is nowhere in the daemon's command line. */
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/cmdline", (int)g_ts.pid);
    FILE *f = fopen(p, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(cmdline, 1, sizeof(cmdline) - 1, f);
    fclose(f);
    ck_assert(memmem(cmdline, n, "s3cret", 6) == NULL);
    ck_assert(memmem(cmdline, n, "extra.conf", 10) != NULL);
    close(c);
    srv_finish();

    /* Refused at start: empty file, both keys, unreadable file. */
    srv_init();
    snprintf(path, sizeof(path), "%s/extra.conf", g_ts.dir);
    write_file(path, "\n");
    expect_start_failure((const char *const[]){ "--requirepass_file", path,
                                                NULL },
                         "empty password (the first line is empty)");
    write_file(path, "x\n");
    expect_start_failure((const char *const[]){ "--requirepass", "y",
                                                "--requirepass_file", path,
                                                NULL },
                         "requirepass and requirepass_file are both set");
    expect_start_failure((const char *const[]){ "--requirepass_file",
                                                "/nonexistent/pw", NULL },
                         "requirepass_file: /nonexistent/pw: cannot open");
    ts_cleanup(&g_ts);
}
END_TEST

/* ---- protected mode ---- */

START_TEST(test_protected_mode)
{
    struct in_addr addr;
    char name[INET_ADDRSTRLEN];
    if (!local_ipv4(&addr, name, sizeof(name))) {
        fprintf(stderr, "SKIP test_protected_mode: this machine has no "
                "non-loopback IPv4 address to connect from\n");
        return;
    }
    /* 1. Bound to every address, no password: remote clients are told. */
    SRV_START("--bind", "0.0.0.0");
    ck_assert(h_log_has("protected mode: bind '0.0.0.0' reaches other hosts", 5));
    int remote = connect_from(addr);
    H_EXPECT_CLOSE(remote, ADMISSION_DENIED_REPLY);
    close(remote);
    remote = connect_from(addr);
    say(remote, "PING\r\n"); /* what it sent does not matter */
    H_EXPECT_CLOSE(remote, ADMISSION_DENIED_REPLY);
    close(remote);
    int local = conn_new();
    say(local, "PING\r\nACQUIRE k\r\n");
    EXPECT(local, "+PONG\r\n");
    ck_assert_int_gt(READ_INT(local), 0);
    ck_assert_int_eq(stat1(local, "denied_clients"), 2);
    char want[128];
    snprintf(want, sizeof(want), "client %s:", name);
    ck_assert(h_log_has(want, 5));
    ck_assert(h_log_has("refused: protected mode", 5));
    close(local);
    srv_finish();

    /* 2. With a password, remote clients are served (after AUTH). */
    SRV_START("--bind", "0.0.0.0", "--requirepass", "pw");
    remote = connect_from(addr);
    say(remote, "PING\r\nACQUIRE k\r\nAUTH pw\r\nACQUIRE k\r\n");
    EXPECT(remote, "+PONG\r\n-NOAUTH Authentication required.\r\n+OK\r\n");
    ck_assert_int_gt(READ_INT(remote), 0);
    close(remote);
    srv_finish();

    /* 2b. Named users are passwords too: remote clients may AUTH. */
    srv_init();
    char pwfile[256], userline[512];
    snprintf(pwfile, sizeof(pwfile), "%s/extra.pw", g_ts.dir);
    FILE *pf = fopen(pwfile, "w");
    ck_assert_ptr_nonnull(pf);
    fputs("upw\n", pf);
    fclose(pf);
    snprintf(userline, sizeof(userline), "u password-file %s keys k", pwfile);
    const char *const args[] = { "--bind", "0.0.0.0", "--user", userline,
                                 NULL };
    srv_run(args);
    ck_assert(!h_log_has("protected mode: bind", 1));
    remote = connect_from(addr);
    say(remote, "AUTH u upw\r\nACQUIRE k\r\n");
    EXPECT(remote, "+OK\r\n");
    ck_assert_int_gt(READ_INT(remote), 0);
    close(remote);
    srv_finish();

    /* 3. protected_mode no: served, with a warning at start. */
    SRV_START("--bind", "0.0.0.0", "--protected_mode", "no");
    ck_assert(h_log_has("anyone who can reach this port", 5));
    remote = connect_from(addr);
    say(remote, "PING\r\n");
    EXPECT(remote, "+PONG\r\n");
    close(remote);
    srv_finish();
}
END_TEST

/* ---- the open file limit ---- */

/* Makes CACHIFYD_BIN a script that sets `ulimit_args` and execs the real
 * daemon (written as extra.conf, a name ts_cleanup removes).  Under
 * valgrind the script runs natively and execs valgrind itself (with
 * testserver.c's options), because valgrind refuses a shell's ulimit.
 * Returns the previous CACHIFYD_BIN for restore_bin. */
static char *wrap_bin(const char *ulimit_args)
{
    const char *bin = getenv("CACHIFYD_BIN");
    char path[256], text[PATH_MAX + 512];
    char *old = strdup(bin ? bin : "build/cachifyd");
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(old, real));
    snprintf(path, sizeof(path), "%s/extra.conf", g_ts.dir);
    snprintf(text, sizeof(text), "#!/bin/sh\nulimit %s || exit 97\n"
             "exec %s '%s' \"$@\"\n", ulimit_args,
             slow_mode() ? "valgrind -q --error-exitcode=99 --leak-check=full "
                        "--show-leak-kinds=definite,indirect,possible "
                        "--errors-for-leak-kinds=definite,indirect,possible"
                      : "",
             real);
    write_file(path, text);
    chmod(path, 0755);
    setenv("CACHIFYD_BIN", path, 1);
    unsetenv("CACHIFYD_VALGRIND");
    return old;
}

static void restore_bin(char *old, int slow)
{
    setenv("CACHIFYD_BIN", old, 1);
    if (slow)
        setenv("CACHIFYD_VALGRIND", "1", 1);
    free(old);
}

/* The number in the log line "maxclients lowered from 10000 to N", or -1. */
static long lowered_to(void)
{
    static char all[1 << 20];
    FILE *f = fopen(g_ts.log_path, "r");
    long n = -1;
    if (!f)
        return -1;
    size_t len = fread(all, 1, sizeof(all) - 1, f);
    fclose(f);
    all[len] = '\0';
    const char *p = strstr(all, "maxclients lowered from 10000 to ");
    if (p)
        sscanf(p + strlen("maxclients lowered from 10000 to "), "%ld", &n);
    return n;
}

START_TEST(test_fd_limit_lowers_maxclients)
{
    int slow = slow_mode();
    srv_init();
    char *old = wrap_bin("-n 64");
    srv_run(NULL);
    restore_bin(old, slow);
    /* Valgrind keeps some descriptors of the limit for itself, so the
     * daemon sees less than 64 there. */
    if (!slow)
        ck_assert(h_log_has("maxclients lowered from 10000 to 32: the open "
                            "file limit (ulimit -n) is 64", 10));
    else
        ck_assert(h_log_has("maxclients lowered from 10000 to ", 30));
    long fit = lowered_to();
    ck_assert_int_ge(fit, 1);
    ck_assert_int_le(fit, 32);
    /* 80: past the 64 descriptors the daemon has at all, where accept()
     * would fail with EMFILE and clients would hang in the backlog. */
    int fds[80], served = 0, refused = 0;
    for (int i = 0; i < 80; i++) {
        char buf[128];
        fds[i] = conn_new();
        say(fds[i], "PING\r\n");
        double t = mono_s();
        long n = tc_read_reply(fds[i], buf, sizeof(buf));
        REQUIRE(n > 0, "connection %d: no answer (a hang)", i + 1);
        REQUIRE(mono_s() - t < 10, "connection %d: answered after %.1f s", i + 1,
            mono_s() - t);
        if (strcmp(buf, "+PONG\r\n") == 0) {
            REQUIRE(refused == 0, "connection %d served after a refusal", i + 1);
            served++;
        } else {
            REQUIRE(strcmp(buf, "-LIMIT max number of clients reached\r\n") == 0,
                "connection %d: \"%s\"", i + 1, tc_last());
            refused++;
        }
    }
    ck_assert_int_eq(served, fit);
    ck_assert_int_eq(refused, 80 - fit);
    ck_assert_int_eq(stat1(fds[0], "maxclients"), fit);
    ck_assert_int_eq(stat1(fds[0], "rejected_clients"), 80 - fit);
    for (int i = 0; i < 80; i++)
        close(fds[i]);
    srv_finish();
}
END_TEST

START_TEST(test_ten_thousand_clients)
{
    long want = h_scale(10000, 10);
    long have = ts_raise_nofile();
    if (have < want + 100) {
        fprintf(stderr, "test_ten_thousand_clients: the hard open file "
                "limit is %ld: running %ld clients\n", have, have - 100);
        want = have - 100;
    }
    srv_init();
    if (!slow_mode()) {
        /* A low soft limit under a high hard one: the daemon must raise it. */
        char *old = wrap_bin("-S -n 1024");
        srv_run((const char *const[]){ "--maxclients", "10050", NULL });
        restore_bin(old, 0);
        ck_assert(h_log_has("raised the open file limit from 1024 to 10082",
                            10));
    } else {
        /* Valgrind pins its client's hard limit to the soft one, so the
         * raise cannot happen there: only the clients are tested. */
        srv_run((const char *const[]){ "--maxclients", "10050", NULL });
    }
    int ctl = conn_new();
    int *fds = calloc((size_t)want, sizeof(int));
    ck_assert_ptr_nonnull(fds);
    double t0 = mono_s();
    /* In batches, so the accept backlog never overflows. */
    for (long i = 0; i < want; i += 250) {
        long end = i + 250 < want ? i + 250 : want;
        for (long j = i; j < end; j++)
            fds[j] = conn_new();
        for (long j = i; j < end; j++)
            say(fds[j], "PING\r\n");
        for (long j = i; j < end; j++)
            EXPECT(fds[j], "+PONG\r\n");
    }
    ck_assert_int_eq(stat1(ctl, "clients"), want + 1);
    /* Every one of them is still served. */
    for (long j = 0; j < want; j++)
        say(fds[j], "IS_LOCKED k\r\n");
    for (long j = 0; j < want; j++)
        EXPECT(fds[j], ":0\r\n");
    fprintf(stderr, "test_ten_thousand_clients: %ld clients in %.1f s\n",
            want, mono_s() - t0);
    for (long j = 0; j < want; j++)
        close(fds[j]);
    free(fds);
    ck_assert_int_eq(stat_poll(ctl, "clients", 1, 60), 1);
    close(ctl);
    srv_finish();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = itest_tcase(s, "limits");
    tcase_add_test(tc, test_maxclients);
    tcase_add_test(tc, test_max_locks);
    tcase_add_test(tc, test_max_waiters);
    tcase_add_test(tc, test_client_output_limit);
    tcase_add_test(tc, test_client_stall_timeout);
    tcase_add_test(tc, test_idle_timeout);
    tcase_add_test(tc, test_request_timeout);
    tcase_add_test(tc, test_requirepass_file);
    tcase_add_test(tc, test_protected_mode);
    tcase_add_test(tc, test_fd_limit_lowers_maxclients);
    tcase_add_test(tc, test_ten_thousand_clients);
    return itest_main(s);
}
