/* tests/integration/test_bounds.c - what a client can take from the daemon,
 * and what can take the daemon down, against the real daemon
 * (tests/support/testserver.h).
 *
 * Owns: the memory of many waiters that pipeline behind their ACQUIRE (the
 * daemon's VmRSS must not grow by what they send), client_buffer_budget
 * (the client that grows the buffers past it gets -LIMIT and is closed;
 * STATS and the log say so; the accounting returns to 0), tcp_keepalive
 * (read on the daemon's own accepted socket), and the signals an operator
 * may send (SIGHUP without a config file, SIGUSR1, SIGUSR2 are logged and
 * change nothing; locks stay;
 * SIGTERM still stops it with 0).  Does not own: the waiting semantics of
 * big pipelines (test_waiting.c, waiter_big_pipeline_leaves) or the other
 * limits (test_limits.c).
 *
 * Bounds are generous (a loaded 2-core machine, valgrind): they tell a
 * daemon that holds what a client sends from one that leaves it in the
 * kernel, not how fast anything is.  The figures are in docs/security.md.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/syscall.h>

#include "tests/integration/hardening.h"

/* Sends up to max bytes of PINGs on each of n non-blocking sockets until
 * none made progress for a second (the rest would wait in the kernels'
 * buffers) or the daemon dropped them all.  Returns the bytes sent. */
static long long flood_all(const int *fds, int n, size_t max)
{
    static char buf[6 * 1024];
    size_t *sent = calloc((size_t)n, sizeof(*sent));
    REQUIRE(sent, "out of memory");
    for (size_t i = 0; i < sizeof(buf); i += 6)
        memcpy(buf + i, "PING\r\n", 6);
    for (int i = 0; i < n; i++)
        tc_set_nonblock(fds[i], 1);
    long long total = 0;
    double progress = mono_s(), give_up = mono_s() + 60;
    while (mono_s() - progress < (slow_mode() ? 5 : 1) && mono_s() < give_up) {
        int busy = 0;
        for (int i = 0; i < n; i++) {
            if (sent[i] >= max)
                continue;
            busy = 1;
            ssize_t w = send(fds[i], buf, sizeof(buf), MSG_NOSIGNAL);
            if (w > 0) {
                sent[i] += (size_t)w;
                total += w;
                progress = mono_s();
            } else if (w < 0 && errno != EAGAIN) {
                sent[i] = max; /* dropped */
            }
        }
        if (!busy)
            break;
        usleep(1000);
    }
    for (int i = 0; i < n; i++)
        tc_set_nonblock(fds[i], 0);
    free(sent);
    return total;
}

/* Many waiters each pipeline up to 900 KiB behind ACQUIRE k WAIT FOREVER.
 * The daemon used to read all of it into memory (up to 1 MiB a waiter);
 * now each takes 64 KiB and the kernel keeps 16 KiB more, past which the
 * waiter is dropped.  VmRSS must grow by far less than they sent, and the
 * lock is never granted to any of them. */
START_TEST(test_waiters_pipelining_memory)
{
    int n = (int)h_scale(200, 10);
    int *fds = calloc((size_t)n, sizeof(*fds));
    REQUIRE(fds, "out of memory");
    ts_raise_nofile();
    SRV_START("--maxclients", "1000");
    int a = conn_new();
    say(a, "ACQUIRE k TTL FOREVER\r\n");
    long long tok = READ_INT(a);
    for (int i = 0; i < n; i++) {
        fds[i] = conn_new();
        say(fds[i], "ACQUIRE k WAIT FOREVER\r\n");
    }
    ck_assert_int_eq(stat_poll(a, "waiters", n, 60), n);
    long base = ts_rss_kib(g_ts.pid);
    long long sent = flood_all(fds, n, 900 * 1024);
    long grown = ts_rss_kib(g_ts.pid) - base;
    /* Under valgrind VmRSS is mostly valgrind's own: not looked at. */
    REQUIRE(slow_mode() || grown < (long)n * 256, "VmRSS grew by %ld KiB for "
            "%d waiters that sent %lld bytes", grown, n, sent);
    ck_assert_int_eq(stat_poll(a, "waiters", 0, 60), 0);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ck_assert_int_eq(stat_poll(a, "clients", 1, 60), 1);
    ck_assert_int_eq(stat1(a, "client_buffer_bytes"), 0);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "RELEASE k %lld\r\n", tok);
    say(a, cmd);
    EXPECT(a, ":1\r\n");
    say(a, "IS_LOCKED k\r\n");
    EXPECT(a, ":0\r\n");
    close(a);
    free(fds);
    srv_finish();
}
END_TEST

#define BUDGET_REPLY                                                         \
    "-LIMIT client_buffer_budget reached (the daemon's client buffers are "  \
    "full); closing the connection\r\n"

/* 32 waiters pipeline 48 KiB each (under the read-ahead mark, so all of it
 * is held) against a 1 MiB client_buffer_budget: those whose bytes push the
 * total over get -LIMIT and are closed, the others stay queued; the holder's
 * lock is untouched, and once they are all gone the accounting is back to
 * 0. */
START_TEST(test_client_buffer_budget)
{
    enum { N = 32 };
    static char pings[48 * 1024];
    int fds[N], limited = 0;
    for (size_t i = 0; i < sizeof(pings); i += 6)
        memcpy(pings + i, "PING\r\n", 6);
    SRV_START("--client_buffer_budget", "1048576");
    int a = conn_new();
    say(a, "ACQUIRE k TTL FOREVER\r\n");
    long long tok = READ_INT(a);
    for (int i = 0; i < N; i++) {
        fds[i] = conn_new();
        say(fds[i], "ACQUIRE k WAIT FOREVER\r\n");
        /* A closed connection makes the send fail: not checked. */
        (void)send(fds[i], pings, sizeof(pings), MSG_NOSIGNAL);
    }
    double end = mono_s() + (slow_mode() ? 30 : 5);
    int done[N] = { 0 };
    while (mono_s() < end) {
        for (int i = 0; i < N; i++) {
            struct pollfd p = { fds[i], POLLIN, 0 };
            if (done[i] || poll(&p, 1, 0) <= 0)
                continue;
            H_EXPECT_CLOSE(fds[i], BUDGET_REPLY);
            done[i] = 1;
            limited++;
        }
        usleep(20000);
    }
    /* 1.5 MiB against 1 MiB: at least a third had to go. */
    ck_assert_int_ge(limited, N / 3);
    ck_assert_int_lt(limited, N);
    for (int i = 0; i < N; i++)
        close(fds[i]);
    ck_assert(h_log_has("over client_buffer_budget (1048576)", 10));
    usleep(500000); /* the closes are seen before the next read adds up */
    ck_assert_int_eq(stat_poll(a, "clients", 1, 60), 1);
    ck_assert_int_eq(stat1(a, "client_buffer_bytes"), 0);
    ck_assert_int_eq(stat1(a, "waiters"), 0);
    ck_assert_int_eq(stat1(a, "budget_closed_clients"), limited);
    say(a, "IS_LOCKED k\r\n");
    EXPECT(a, ":1\r\n");
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "RELEASE k %lld\r\n", tok);
    say(a, cmd);
    EXPECT(a, ":1\r\n");
    close(a);
    srv_finish();
}
END_TEST

/* Option (level, name) of the daemon's own accepted socket whose peer is
 * our socket fd: the daemon's descriptors are borrowed with pidfd_getfd
 * (Linux 5.6+; we are its parent and root or the same user).  -1 when it
 * cannot be read. */
static int daemon_sockopt(int fd, int level, int name)
{
    struct sockaddr_in mine, sa;
    socklen_t len = sizeof(mine);
    char dir[64];
    int result = -1;
    if (getsockname(fd, (struct sockaddr *)&mine, &len) != 0)
        return -1;
    int pidfd = (int)syscall(SYS_pidfd_open, g_ts.pid, 0);
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)g_ts.pid);
    DIR *d = opendir(dir);
    if (pidfd < 0 || !d) {
        if (d)
            closedir(d);
        if (pidfd >= 0)
            close(pidfd);
        return -1;
    }
    for (struct dirent *e; result < 0 && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        int dup = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
        if (dup < 0)
            continue;
        len = sizeof(sa);
        int v = 0;
        socklen_t vl = sizeof(v);
        if (getpeername(dup, (struct sockaddr *)&sa, &len) == 0 &&
            sa.sin_family == AF_INET && sa.sin_port == mine.sin_port &&
            getsockopt(dup, level, name, &v, &vl) == 0)
            result = v;
        close(dup);
    }
    closedir(d);
    close(pidfd);
    return result;
}

/* tcp_keepalive N: the daemon's accepted TCP sockets have SO_KEEPALIVE,
 * TCP_KEEPIDLE N, TCP_KEEPINTVL N / 3 and TCP_KEEPCNT 3; 0 leaves
 * keepalive off; the default is 300 s. */
START_TEST(test_tcp_keepalive)
{
    static const struct {
        const char *arg;
        int on, idle, intvl;
    } cases[] = { { "60", 1, 60, 20 }, { "0", 0, 0, 0 }, { NULL, 1, 300, 100 } };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].arg)
            SRV_START("--tcp_keepalive", cases[i].arg);
        else
            srv_start(NULL);
        int c = conn_new();
        say(c, "PING\r\n");
        EXPECT(c, "+PONG\r\n");
        int on = daemon_sockopt(c, SOL_SOCKET, SO_KEEPALIVE);
        REQUIRE(on >= 0, "cannot read the daemon's socket options "
                "(pidfd_getfd): %s", strerror(errno));
        ck_assert_int_eq(on, cases[i].on);
        if (cases[i].on) {
            ck_assert_int_eq(daemon_sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE),
                             cases[i].idle);
            ck_assert_int_eq(daemon_sockopt(c, IPPROTO_TCP, TCP_KEEPINTVL),
                             cases[i].intvl);
            ck_assert_int_eq(daemon_sockopt(c, IPPROTO_TCP, TCP_KEEPCNT), 3);
        }
        close(c);
        srv_finish();
    }
}
END_TEST

/* SIGHUP, SIGUSR1 and SIGUSR2 used to kill the daemon (exit 129, state
 * left "running", every lock lost).  Now each is logged (SIGHUP reloads
 * the config file, and there is none here: test_service.c has the reload)
 * and the daemon keeps serving, its connections and locks (a SESSION one too)
 * stay, and SIGTERM still stops it cleanly with 0. */
START_TEST(test_signals_ignored)
{
    static const struct {
        int sig;
        const char *line;
    } sigs[] = {
        { SIGHUP, "SIGHUP: no config file to reload" },
        { SIGUSR1, "SIGUSR1 ignored" },
        { SIGUSR2, "SIGUSR2 ignored" },
    };
    srv_init();
    const char *const extra[] = { "--state_file", g_ts.state_path, NULL };
    srv_run(extra);
    int c = conn_new();
    say(c, "ACQUIRE k TTL FOREVER\r\n");
    long long tok = READ_INT(c);
    say(c, "ACQUIRE s SESSION\r\n");
    ck_assert_int_gt(READ_INT(c), 0);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        ck_assert_int_eq(kill(g_ts.pid, sigs[i].sig), 0);
        ck_assert_msg(h_log_has(sigs[i].line, 20), "no \"%s\" in the log",
                      sigs[i].line);
        say(c, "PING\r\n");
        EXPECT(c, "+PONG\r\n");
    }
    int d = conn_new();
    say(d, "IS_LOCKED k\r\nIS_LOCKED s\r\n");
    EXPECT(d, ":1\r\n:1\r\n");
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "EXTEND k %lld 600000\r\n", tok);
    say(c, cmd);
    EXPECT(c, ":1\r\n");
    close(c);
    close(d);
    srv_finish(); /* SIGTERM: exit 0 */
}
END_TEST

static Suite *bounds_suite(void)
{
    Suite *s = suite_create("bounds");
    TCase *tc = itest_tcase_timed(s, "bounds", slow_mode() ? 1200 : 300);
    tcase_add_test(tc, test_waiters_pipelining_memory);
    tcase_add_test(tc, test_client_buffer_budget);
    tcase_add_test(tc, test_tcp_keepalive);
    tcase_add_test(tc, test_signals_ignored);
    return s;
}

int main(void)
{
    return itest_main(bounds_suite());
}
