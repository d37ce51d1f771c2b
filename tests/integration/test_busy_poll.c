/* tests/integration/test_busy_poll.c - the daemon's busy polling
 * (--busy_poll_us), measured as the daemon's CPU time.
 *
 * Owns: the one test that reads how much CPU the daemon spends: polling
 * after requests close together and after a timer's handoff, none after
 * sparse requests or once the window is over.  CPU time is what a suite
 * beside it takes away (its handoff check failed 1 run in 6 beside a
 * valgrind suite, 0 in 14 alone), so the Makefile runs this suite alone
 * (ALONE_SUITES), and it is kept to this one test so that the time no
 * other suite may run is short (about 7 s; the rest of what the daemon
 * does under load is test_server_load.c, which runs beside the others).
 *
 * Like the other daemon suites it forks its own daemon and ends with
 * srv_finish(), which asserts a clean exit (under valgrind: no error, no
 * leak).
 */
#include "tests/integration/itest.h"

/* busy_poll_us: after a stream of requests closer together than the
 * window the daemon keeps polling (using CPU) for the window and then
 * sleeps again, and answers the same either way.  The window is long
 * (0.4 s) and the bounds loose (10% of a core while spinning, under 10%
 * once idle) so a loaded machine or valgrind cannot fail it; a daemon that
 * never spins, or never stops, does. */
START_TEST(test_busy_poll)
{
    SRV_START("--busy_poll_us", "400000");
    int fd = conn_new();

    /* Requests further apart than the window (0.8 s) never start polling:
     * it would not catch the next one anyway. */
    double s0 = ts_cpu_s(g_ts.pid);
    for (int i = 0; i < 3; i++) {
        usleep(800000);
        say(fd, "PING\r\n");
        EXPECT(fd, "+PONG\r\n");
    }
    usleep(300000);
    double s1 = ts_cpu_s(g_ts.pid);
    ck_assert_msg(s0 >= 0 && s1 - s0 < 0.2,
                  "polling after sparse requests: %.3f s CPU in 2.7 s", s1 - s0);
    say(fd, "ACQUIRE bp TTL 60000\r\n");
    long long token = READ_INT(fd);
    ck_assert_int_gt(token, 0);
    say(fd, "ACQUIRE bp\r\n");
    EXPECT(fd, "-LOCKED bp is already locked!\r\n");

    /* Requests close together (the gap average starts at 1 s and must fall
     * under the window). */
    for (int i = 0; i < 20; i++) {
        say(fd, "PING\r\n");
        EXPECT(fd, "+PONG\r\n");
    }
    double c0 = ts_cpu_s(g_ts.pid);
    usleep(300000);
    double c1 = ts_cpu_s(g_ts.pid);
    ck_assert_msg(c0 >= 0 && c1 - c0 >= 0.03,
                  "no polling after a request: %.3f s CPU in 0.3 s", c1 - c0);

    usleep(500000); /* the window is over */
    double c2 = ts_cpu_s(g_ts.pid);
    usleep(1000000);
    double c3 = ts_cpu_s(g_ts.pid);
    ck_assert_msg(c3 - c2 < 0.1, "idle daemon still spinning: %.3f s CPU in 1 s",
                  c3 - c2);

    /* Asleep, it still wakes for the next request. */
    char line[64];
    snprintf(line, sizeof(line), "RELEASE bp %lld\r\n", token);
    say(fd, line);
    EXPECT(fd, ":1\r\n");

    /* A grant made by the expiry timer, not by a command, also opens the
     * window: the waiter answered is about to send its next request.
     * Whether the daemon polls depends on the traffic average that gates
     * it (server.c, run_loop), which a loaded machine can push over the
     * window: one attempt in five must show it (a sanitizer pass beside
     * two others failed a single attempt).  Not under valgrind, where
     * every request takes milliseconds (CI run of 2026-12-07 14:54): there
     * one handoff, unasserted, is the valgrind check of the path, and the
     * four more attempts it otherwise made (none shows 0.03 s) only kept
     * the machine to this suite alone for 1.8 s each. */
    int waiter = conn_new();
    double best = 0;
    int attempts = slow_mode() ? 1 : 5;
    for (int attempt = 0; attempt < attempts && best < 0.03; attempt++) {
        char req[64];
        snprintf(req, sizeof(req), "ACQUIRE ex%d TTL 1500\r\n", attempt);
        say(fd, req);
        ck_assert_int_gt(READ_INT(fd), 0);
        snprintf(req, sizeof(req), "ACQUIRE ex%d WAIT 30000\r\n", attempt);
        say(waiter, req);
        ck_assert_int_gt(READ_INT(waiter), 0); /* expired: handed over */
        double c4 = ts_cpu_s(g_ts.pid);
        usleep(300000);
        double c5 = ts_cpu_s(g_ts.pid);
        if (c5 - c4 > best)
            best = c5 - c4;
    }
    if (!slow_mode())
        ck_assert_msg(best >= 0.03, "no polling after a timer's handoff in "
                      "five tries: at most %.3f s CPU in 0.3 s", best);
    close(waiter);
    close(fd);
    srv_finish();
}
END_TEST

static Suite *busy_poll_suite(void)
{
    Suite *s = suite_create("busy_poll");
    TCase *tc = itest_tcase(s, "busy_poll");
    tcase_add_test(tc, test_busy_poll);
    return s;
}

int main(void)
{
    return itest_main(busy_poll_suite());
}
