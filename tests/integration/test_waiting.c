/* tests/integration/test_waiting.c - Check suite: waiting and sessions,
 * against the real daemon over TCP.
 *
 * Owns: the end-to-end tests of ACQUIRE ... WAIT (FIFO order, handoff on
 * RELEASE, on expiry by the timer alone, on a SESSION holder's disconnect,
 * -TIMEOUT, WAIT 0 and WAIT FOREVER, waiters that leave, max_waiters, the
 * hold-back of pipelined replies), SESSION and non-SESSION lifetimes, the
 * waiters/timeouts/handoffs counters of STATS.  Does not own: the state
 * file and crashes (test_restart.c, test_crash.c), the stress test
 * (test_stress.c) or lock semantics without waiting (other suites).
 *
 * Every test starts its own daemon through tests/support/testserver.h and
 * asserts exact reply bytes.  Time is only ever checked in the direction
 * the protocol promises: a grant or -TIMEOUT never comes *before* its
 * moment (measured from when we sent the request, which is no later than
 * when the daemon started counting), and it comes within a generous upper
 * bound.  Nothing asserts speed: the suite also runs with the daemon under
 * valgrind (CACHIFYD_VALGRIND=1, ~20x slower), where the windows in which
 * "nothing must arrive" are longer and the recovery delays are scaled up so
 * that "still recovering" stays true while we look.  Each test ends with
 * ts_stop() == 0, so a valgrind error or leak fails it.  The daemon of the
 * test, its clean-up on failure, sends, reply assertions and STATS parsing
 * come from tests/support/itest_common.h.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/integration/lockitest.h"

/* ---- waiting ---- */

/* A holds; B, C, D queue in that order.  A RELEASE with a wrong token
 * frees nothing and wakes nobody.  Then each release wakes exactly the head
 * of the queue, with a larger token, while the others stay silent; the
 * releases are by token, forced from another connection, and by token. */
START_TEST(fifo_three_waiters)
{
    srv_start(NULL);
    int a = conn_new(), w[3];
    long long tok = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    for (int i = 0; i < 3; i++) {
        w[i] = conn_new();
        say(w[i], "ACQUIRE k WAIT 20000\r\n");
        wait_stat("waiters", i + 1); /* fixes the arrival order */
    }
    release_is(a, "k", tok + 1, ":0\r\n");
    expect_quiet(w[0], quiet_ms());
    release_ok(a, "k", tok);
    long long prev = tok;
    for (int i = 0; i < 3; i++) {
        tok = read_token(w[i]);
        ck_assert_msg(tok > prev, "token %lld after %lld", tok, prev);
        prev = tok;
        for (int j = i + 1; j < 3; j++)
            expect_quiet(w[j], quiet_ms());
        if (i == 1) { /* forced, by someone else: hands on too */
            say(a, "RELEASE k\r\n");
            EXPECT(a, ":1\r\n");
        } else {
            release_ok(w[i], "k", tok);
        }
    }
    release_is(a, "k", tok, ":0\r\n"); /* released already: stale */
    check_stats("acquired", 4LL, "handoffs", 3LL, "released", 4LL,
                "waiters", 0LL, "locks_held", 0LL, "timeouts", 0LL, NULL);
    close_fds(w[0], w[1], w[2], a, -1);
    srv_finish();
}
END_TEST

/* The holder's TTL runs out while nobody touches the key: the daemon's
 * timer alone must hand the lock to the waiter, not a later access.  Then
 * the same with a WAIT FOREVER waiter known to be queued (and silent) first
 * and the expiry set by EXTEND: a deadline moved in the heap. */
START_TEST(handoff_on_expiry)
{
    srv_start(NULL);
    int a = conn_new(), b = conn_new();
    char cmd[64];
    double sent = now_ms();
    long long ta = acquire(a, "ACQUIRE k TTL 300\r\n");
    say(b, "ACQUIRE k WAIT 20000\r\n");
    long long tb = read_token(b); /* blocks; no one else asks about k */
    /* The lock was granted after `sent`: it cannot expire before +300. */
    double waited = now_ms() - sent;
    ck_assert_msg(waited >= 300 - CLOCK_SLACK_MS && waited < 300 + LATE_MS,
                  "granted after %.1f ms", waited);
    ck_assert(tb > ta);
    check_stats("expired", 1LL, "handoffs", 1LL, "acquired", 2LL,
                "waiters", 0LL, "locks_held", 1LL, NULL);
    release_is(a, "k", ta, ":0\r\n");
    release_ok(b, "k", tb);

    ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    say(b, "ACQUIRE k WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    expect_quiet(b, quiet_ms() * 2);
    snprintf(cmd, sizeof(cmd), "EXTEND k %lld 200\r\n", ta);
    sent = now_ms();
    say(a, cmd);
    EXPECT(a, ":1\r\n");
    tb = read_token(b);
    waited = now_ms() - sent;
    ck_assert_msg(waited >= 200 - CLOCK_SLACK_MS && waited < 200 + LATE_MS,
                  "granted %.1f ms after EXTEND", waited);
    ck_assert(tb > ta);
    check_stats("expired", 2LL, "handoffs", 2LL, "timeouts", 0LL, NULL);
    close_fds(a, b, -1);
    srv_finish();
}
END_TEST

/* Unread replies make close() send a reset: the daemon then sees
 * ECONNRESET rather than EOF.  Sends n PINGs and waits until all their
 * replies sit unread in our receive buffer. */
static void leave_replies_unread(int fd, int n)
{
    double deadline = now_ms() + LATE_MS;
    int avail = 0;
    for (int i = 0; i < n; i++)
        say(fd, "PING\r\n");
    while (avail < n * 7 && now_ms() < deadline) {
        ck_assert_int_eq(ioctl(fd, FIONREAD, &avail), 0);
        usleep(2000);
    }
    ck_assert_int_ge(avail, n * 7);
}

/* A SESSION lock ends with its connection however that ends, and the next
 * waiter gets it at once: a clean close, a reset with unread replies, a
 * close halfway through a request.  B and C got their SESSION locks through
 * a wait, which must tie them to their connections too (regression: the
 * engine dropped the waiter's session before the grant, so such a lock
 * outlived its connection and the waiters behind it hung). */
START_TEST(handoff_on_session_end)
{
    srv_start(NULL);
    int a = conn_new(), b = conn_new(), c = conn_new(), d = conn_new();
    long long ta = acquire(a, "ACQUIRE k SESSION TTL FOREVER\r\n");
    say(b, "ACQUIRE k WAIT 20000 SESSION TTL FOREVER\r\n");
    wait_stat("waiters", 1);
    say(c, "ACQUIRE k SESSION WAIT 20000\r\n");
    wait_stat("waiters", 2);
    say(d, "ACQUIRE k WAIT 20000\r\n");
    wait_stat("waiters", 3);
    expect_quiet(b, quiet_ms());
    close(a); /* clean close */
    long long tb = read_token(b);
    ck_assert(tb > ta);
    expect_quiet(c, quiet_ms());
    leave_replies_unread(b, 200);
    close(b); /* reset */
    long long tc = read_token(c);
    ck_assert(tc > tb);
    say(c, "*3\r\n$7\r\nACQUIRE\r\n$1\r\nx"); /* cut mid-request */
    close(c);
    long long td = read_token(d);
    ck_assert(td > tc);
    check_stats("handoffs", 3LL, "released", 3LL, "locks_held", 1LL,
                "waiters", 0LL, NULL);
    release_ok(d, "k", td);
    close(d);
    srv_finish();
}
END_TEST

/* A connection holding many SESSION locks closes: the daemon releases them
 * in slices from its timer (1000 per turn), not in one pass.  Seen from
 * outside nothing changes: the waiters of the key drained last are served
 * in FIFO order once the drain reaches it, every other key is free from
 * the close on, and the counters end exact. */
START_TEST(big_session_close_drains_fifo)
{
    enum { N = 20000, CHUNK = 1000 };
    srv_start(NULL);
    int a = conn_new(), b = conn_new(), c = conn_new(), d = conn_new();
    char *cmds = malloc(CHUNK * 48);
    ck_assert_ptr_nonnull(cmds);
    for (int i = 0; i < N; i += CHUNK) {
        size_t len = 0;
        for (int j = i; j < i + CHUNK; j++)
            len += (size_t)sprintf(cmds + len,
                                   "ACQUIRE s%d SESSION TTL FOREVER\r\n", j);
        sayn(a, cmds, len);
        for (int j = i; j < i + CHUNK; j++)
            read_token(a);
    }
    free(cmds);
    /* "s0" was linked first, so it is among the last the drain reaches. */
    say(b, "ACQUIRE s0 WAIT FOREVER SESSION\r\n");
    wait_stat("waiters", 1);
    say(c, "ACQUIRE s0 WAIT FOREVER\r\n");
    wait_stat("waiters", 2);
    close(a);
    long long tb = read_token(b);
    expect_quiet(c, quiet_ms());
    /* The close has been handled: any other key is free now. */
    long long td = acquire(d, "ACQUIRE s1 TTL FOREVER\r\n");
    ck_assert(td > tb);
    wait_stat("released", N); /* all of them, s0 handed to b */
    check_stats("handoffs", 1LL, "locks_held", 2LL, "waiters", 1LL,
                "acquired", (long long)N + 2, NULL);
    close(b);
    long long tc = read_token(c);
    ck_assert(tc > td);
    release_ok(c, "s0", tc);
    release_ok(d, "s1", td);
    check_stats("released", (long long)N + 3, "locks_held", 0LL, NULL);
    close_fds(c, d, -1);
    srv_finish();
}
END_TEST

/* A wait that runs out: exact -TIMEOUT bytes, not before the bound; the
 * request pipelined behind it is answered after it; the key is quoted
 * safely.  WAIT 0 is no wait at all: -LOCKED at once, counted as rejected. */
START_TEST(wait_timeout_and_wait_zero)
{
    srv_start(NULL);
    int a = conn_new(), b = conn_new();
    acquire(a, "ACQUIRE k\r\n");
    acquire(a, "ACQUIRE \"a b\\x01\"\r\n");
    double sent = now_ms();
    say(b, "ACQUIRE k WAIT 200\r\nPING\r\n");
    EXPECT(b, "-TIMEOUT k is already locked!\r\n");
    double waited = now_ms() - sent;
    ck_assert_msg(waited >= 200 - CLOCK_SLACK_MS && waited < 200 + LATE_MS,
                  "-TIMEOUT after %.1f ms", waited);
    EXPECT(b, "+PONG\r\n");
    say(b, "ACQUIRE \"a b\\x01\" WAIT 50\r\n");
    EXPECT(b, "-TIMEOUT a b\\x01 is already locked!\r\n");
    check_stats("timeouts", 2LL, "waiters", 0LL, "rejected", 0LL,
                "handoffs", 0LL, "acquired", 2LL, NULL);
    say(b, "ACQUIRE k WAIT 0\r\nPING\r\n");
    EXPECT(b, "-LOCKED k is already locked!\r\n+PONG\r\n");
    check_stats("rejected", 1LL, "waiters", 0LL, "timeouts", 2LL, NULL);
    ck_assert(acquire(b, "ACQUIRE free WAIT 0\r\n") > 0);
    close_fds(a, b, -1);
    srv_finish();
}
END_TEST

/* B queues and leaves; C queued behind it gets the lock on release, and
 * no lock is left granted to B. */
START_TEST(waiter_disconnect_leaves_queue)
{
    srv_start(NULL);
    int a = conn_new(), b = conn_new(), c = conn_new();
    long long ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    say(b, "ACQUIRE k WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    say(c, "ACQUIRE k WAIT 20000\r\n");
    wait_stat("waiters", 2);
    close(b);
    wait_stat("waiters", 1);
    release_ok(a, "k", ta);
    long long tc = read_token(c);
    ck_assert(tc > ta);
    check_stats("waiters", 0LL, "acquired", 2LL, "handoffs", 1LL,
                "locks_held", 1LL, "timeouts", 0LL, NULL);
    release_ok(c, "k", tc); /* C, not B, holds it */
    /* A waiter with 16 KiB pipelined behind its ACQUIRE leaves too (larger
     * pipelines: waiter_big_pipeline_leaves). */
    tc = acquire(c, "ACQUIRE k TTL FOREVER\r\n");
    int p = conn_new();
    say(p, "ACQUIRE k WAIT FOREVER\r\n");
    for (int i = 0; i < 16 * 1024 / 8; i++)
        say(p, "PING x\r\n");
    wait_stat("waiters", 1);
    close(p);
    wait_stat("waiters", 0);
    release_ok(c, "k", tc);
    /* A lone waiter that leaves: the next release frees the key. */
    ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    int d = conn_new();
    say(d, "ACQUIRE k WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    close(d);
    wait_stat("waiters", 0);
    release_ok(a, "k", ta);
    say(c, "IS_LOCKED k\r\n");
    EXPECT(c, ":0\r\n");
    check_stats("locks_held", 0LL, "acquired", 4LL, NULL);
    close_fds(a, c, -1);
    srv_finish();
}
END_TEST

/* Sends up to n bytes of PINGs on a non-blocking socket, until they are
 * all sent, or the daemon stops taking them (no progress for a second:
 * the rest would wait in the kernel's buffers), or it drops us; returns
 * the bytes sent. */
static size_t flood_pings(int fd, size_t n)
{
    static const char ping[] = "PING\r\n";
    char buf[6 * 1024];
    for (size_t i = 0; i < sizeof(buf); i += 6)
        memcpy(buf + i, ping, 6);
    tc_set_nonblock(fd, 1);
    size_t sent = 0;
    double stall_ms = slow_mode() ? 5000 : 1000;
    double give_up = now_ms() + LATE_MS, progress = now_ms();
    while (sent < n && now_ms() < give_up && now_ms() - progress < stall_ms) {
        size_t want = n - sent < sizeof(buf) ? n - sent : sizeof(buf);
        ssize_t w = send(fd, buf, want, MSG_NOSIGNAL);
        if (w > 0) {
            sent += (size_t)w;
            progress = now_ms();
        } else if (w < 0 && errno == EAGAIN) {
            struct pollfd pfd = { fd, POLLOUT, 0 };
            poll(&pfd, 1, 100);
        } else {
            break; /* reset: the daemon dropped us */
        }
    }
    tc_set_nonblock(fd, 0);
    return sent;
}

/* Reads n bytes that must all be "+PONG\r\n" replies (n a multiple of 7). */
static void expect_pongs(int fd, size_t n)
{
    static char buf[7 * 4096];
    size_t got = 0;
    while (got < n) {
        size_t want = n - got < sizeof(buf) ? n - got : sizeof(buf);
        ssize_t r = recv(fd, buf, want, 0);
        REQUIRE(r > 0, "after %zu of %zu PONG bytes: %s", got, n,
                r == 0 ? "closed" : strerror(errno));
        for (ssize_t i = 0; i < r; i++)
            REQUIRE(buf[i] == "+PONG\r\n"[(got + (size_t)i) % 7],
                    "byte %zu of the PONGs is '%s'", got + (size_t)i,
                    itest_escn(buf + i, 1));
        got += (size_t)r;
    }
}

/* How a waiter leaves in waiter_big_pipeline_leaves. */
enum leave { LEAVE_CLOSE, LEAVE_HALF_CLOSE, LEAVE_RESET, LEAVE_COUNT };

/* Bytes of PINGs a waiter pipelines past the daemon's 64 KiB read-ahead
 * and within the 16 KiB it may leave in the kernel (conn.h). */
#define PIPELINED (72 * 1024)

/* A waiter reads ahead no further than any client (64 KiB,
 * INPUT_READAHEAD_BYTES; the daemon used to read on to 1 MiB per waiter):
 * a little more stays in the kernel.  With reading stopped, a waiter that
 * leaves must still leave the queue, whether it closes (FIN, seen through
 * EV_CLOSED), half-closes (which ends a wait, see conn.c on_event) or
 * resets (seen by the probe), and the lock is never granted to it.  One
 * that stays is not dropped and gets its token, then every PONG, in
 * order.  One that pushes far more is dropped (its close could be stuck
 * behind the daemon's closed TCP window), still connected. */
START_TEST(waiter_big_pipeline_leaves)
{
    static char pings[PIPELINED];
    for (size_t i = 0; i < sizeof(pings); i += 6)
        memcpy(pings + i, "PING\r\n", 6);
    srv_start(NULL);
    int a = conn_new();
    long long ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");

    for (int how = 0; how < LEAVE_COUNT; how++) {
        int p = conn_new();
        say(p, "ACQUIRE k WAIT FOREVER\r\n");
        wait_stat("waiters", 1);
        sayn(p, pings, sizeof(pings));
        expect_quiet(p, quiet_ms());
        if (how == LEAVE_HALF_CLOSE) {
            shutdown(p, SHUT_WR);
        } else if (how == LEAVE_RESET) {
            struct linger lg = { 1, 0 };
            setsockopt(p, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        }
        if (how != LEAVE_HALF_CLOSE)
            close(p);
        wait_stat("waiters", 0);
        wait_stat("clients", 2); /* a, and the STATS connection */
        if (how == LEAVE_HALF_CLOSE)
            close(p);
    }
    say(a, "IS_LOCKED k\r\n");
    EXPECT(a, ":1\r\n");
    release_ok(a, "k", ta);
    say(a, "IS_LOCKED k\r\n");
    EXPECT(a, ":0\r\n");

    ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    int q = conn_new();
    say(q, "ACQUIRE k WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    sayn(q, pings, sizeof(pings));
    /* Past a few probes (WAIT_PROBE_MS): still queued, not dropped. */
    expect_quiet(q, slow_mode() ? 8000 : 2500);
    ck_assert_int_eq(stat_of("waiters"), 1);
    /* What the daemon holds for it: its read-ahead (and what the reader
     * took with the ACQUIRE), not all it sent. */
    long long held = stat_of("client_buffer_bytes");
    ck_assert_msg(held >= 64 * 1024 && held < PIPELINED,
                  "%lld bytes held", held);
    release_ok(a, "k", ta);
    long long tq = read_token(q);
    ck_assert(tq > ta);
    expect_pongs(q, sizeof(pings) / 6 * 7);
    release_ok(q, "k", tq);

    ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    int r = conn_new();
    say(r, "ACQUIRE k WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    flood_pings(r, 8 * 1024 * 1024);
    wait_stat("waiters", 0); /* dropped, though still connected */
    ck_assert(tc_closed(r));
    close(r);
    release_ok(a, "k", ta);
    say(a, "IS_LOCKED k\r\n");
    EXPECT(a, ":0\r\n");
    close_fds(a, q, -1);
    srv_finish();
}
END_TEST

/* Without EV_CLOSED (libevent's select backend: EVENT_NOEPOLL and
 * EVENT_NOPOLL) nothing would see a waiter leave once its reading stopped,
 * so a waiter that pipelines up to the read-ahead mark is dropped there,
 * and so leaves the queue, instead of being read without bound. */
START_TEST(waiter_pipeline_fallback_drops)
{
    setenv("EVENT_NOEPOLL", "1", 1);
    setenv("EVENT_NOPOLL", "1", 1);
    srv_start(NULL);
    unsetenv("EVENT_NOEPOLL");
    unsetenv("EVENT_NOPOLL");
    int a = conn_new();
    long long ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    int q = conn_new();
    say(q, "ACQUIRE k WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    flood_pings(q, 1024 * 1024);
    wait_stat("waiters", 0); /* dropped at 64 KiB, still connected */
    ck_assert(tc_closed(q));
    close(q);
    release_ok(a, "k", ta);
    say(a, "IS_LOCKED k\r\n");
    EXPECT(a, ":0\r\n");
    close_fds(a, -1);
    srv_finish();
}
END_TEST

/* Replies to requests pipelined behind a waiting ACQUIRE are held back,
 * and those requests are not even run yet (the ACQUIRE of `other` is not
 * visible from another connection); after the grant they all run, in
 * order. */
START_TEST(pipelined_replies_held_back)
{
    srv_start(NULL);
    int a = conn_new(), b = conn_new(), c = conn_new();
    long long ta = acquire(a, "ACQUIRE k\r\n");
    say(b, "ACQUIRE k WAIT 20000\r\nPING\r\nIS_LOCKED k\r\n"
           "ACQUIRE other\r\n");
    wait_stat("waiters", 1);
    expect_quiet(b, quiet_ms());
    say(c, "IS_LOCKED other\r\n");
    EXPECT(c, ":0\r\n");
    release_ok(a, "k", ta);
    long long tb = read_token(b);
    ck_assert(tb > ta);
    EXPECT(b, "+PONG\r\n:1\r\n");
    long long to = read_token(b);
    ck_assert(to > tb);
    say(c, "IS_LOCKED other\r\n");
    EXPECT(c, ":1\r\n");
    close_fds(a, b, c, -1);
    srv_finish();
}
END_TEST

/* --max_waiters 2 bounds one key's queue: the third waiter gets -LIMIT
 * (and its connection goes on); other keys and a freed place still
 * accept waiters. */
START_TEST(max_waiters_per_key)
{
    static const char *const args[] = { "--max_waiters", "2", NULL };
    srv_start(args);
    int a = conn_new(), w[4];
    long long tk = acquire(a, "ACQUIRE k TTL FOREVER\r\n");
    long long tk2 = acquire(a, "ACQUIRE k2 TTL FOREVER\r\n");
    for (int i = 0; i < 4; i++)
        w[i] = conn_new();
    say(w[0], "ACQUIRE k WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    say(w[1], "ACQUIRE k WAIT 20000\r\n");
    wait_stat("waiters", 2);
    say(w[2], "ACQUIRE k WAIT 20000\r\nPING\r\n");
    EXPECT(w[2], "-LIMIT max_waiters reached for this key (2)\r\n+PONG\r\n");
    say(w[2], "ACQUIRE k2 WAIT 20000\r\n");
    wait_stat("waiters", 3);
    close(w[0]);
    wait_stat("waiters", 2);
    say(w[3], "ACQUIRE k WAIT 20000\r\n");
    wait_stat("waiters", 3);
    release_ok(a, "k", tk);
    long long t1 = read_token(w[1]);
    release_ok(w[1], "k", t1);
    ck_assert(read_token(w[3]) > t1);
    release_ok(a, "k2", tk2);
    ck_assert(read_token(w[2]) > tk2);
    check_stats("waiters", 0LL, "handoffs", 3LL, NULL);
    close_fds(a, w[1], w[2], w[3], -1);
    srv_finish();
}
END_TEST

/* A client holding locks with and without SESSION, and waiting for
 * another key, goes away.  Its locks without SESSION outlive it (until TTL
 * or RELEASE); its SESSION lock goes to the waiter behind; its own wait is
 * dropped, so the other key's release grants nothing to the dead client. */
START_TEST(disconnect_keeps_plain_locks_drops_session_and_wait)
{
    srv_start(NULL);
    int a = conn_new(), b = conn_new(), c = conn_new();
    long long t2 = acquire(c, "ACQUIRE k2 TTL FOREVER\r\n");
    double sent = now_ms();
    long long tk = acquire(a, "ACQUIRE k TTL 60000\r\n");
    long long tf = acquire(a, "ACQUIRE f TTL FOREVER\r\n");
    long long ts = acquire(a, "ACQUIRE s SESSION TTL 60000\r\n");
    say(a, "ACQUIRE k2 WAIT FOREVER\r\n");
    wait_stat("waiters", 1);
    say(b, "ACQUIRE s WAIT 20000\r\n");
    wait_stat("waiters", 2);
    close(a);
    ck_assert(read_token(b) > ts);
    wait_stat("waiters", 0);
    say(c, "IS_LOCKED k\r\nIS_LOCKED f\r\nPTTL f\r\nPTTL k\r\n");
    EXPECT(c, ":1\r\n:1\r\n:-1\r\n");
    long long left = read_token(c);
    ck_assert_msg(left <= 60000 && left >= 60000 - (now_ms() - sent) - 1,
                  "PTTL k is %lld", left);
    release_ok(c, "k2", t2);
    say(c, "IS_LOCKED k2\r\n");
    EXPECT(c, ":0\r\n");
    check_stats("locks_held", 3LL, "handoffs", 1LL, NULL);
    release_ok(c, "k", tk);
    release_ok(c, "f", tf);
    close_fds(b, c, -1);
    srv_finish();
}
END_TEST

/* STATS counters, exact, over a scripted history. */
START_TEST(stats_counters_exact)
{
    srv_start(NULL);
    int a = conn_new(), b = conn_new(), d = conn_new();
    check_stats("waiters", 0LL, "timeouts", 0LL, "handoffs", 0LL, NULL);
    long long ta = acquire(a, "ACQUIRE k TTL FOREVER\r\n");   /* acquired 1 */
    say(b, "ACQUIRE k\r\n");                                    /* rejected 1 */
    EXPECT(b, "-LOCKED k is already locked!\r\n");
    say(b, "ACQUIRE k WAIT 100\r\n");                           /* timeouts 1 */
    EXPECT(b, "-TIMEOUT k is already locked!\r\n");
    say(d, "ACQUIRE k WAIT 20000\r\n");
    wait_stat("waiters", 1);
    say(b, "ACQUIRE k WAIT 20000\r\n");
    wait_stat("waiters", 2);
    check_stats("waiters", 2LL, "acquired", 1LL, NULL);
    release_ok(a, "k", ta);                 /* released 1, handoff 1 -> d */
    long long td = read_token(d);
    check_stats("waiters", 1LL, NULL);
    say(d, "RELEASE k\r\n");               /* released 2, handoff 2 -> b */
    EXPECT(d, ":1\r\n");
    long long tb = read_token(b);
    ck_assert(tb > td);
    acquire(a, "ACQUIRE e TTL 100\r\n");    /* acquired 4, expires */
    wait_stat("expired", 1);
    check_stats("acquired", 4LL, "released", 2LL, "expired", 1LL,
                "timeouts", 1LL, "rejected", 1LL, "handoffs", 2LL,
                "waiters", 0LL, "locks_held", 1LL, NULL);
    close_fds(a, b, d, -1);
    srv_finish();
}
END_TEST

static Suite *waiting_suite(void)
{
    Suite *s = suite_create("waiting");
    TCase *w = itest_tcase_timed(s, "waiting", 600);
    tcase_add_test(w, fifo_three_waiters);
    tcase_add_test(w, handoff_on_expiry);
    tcase_add_test(w, handoff_on_session_end);
    tcase_add_test(w, big_session_close_drains_fifo);
    tcase_add_test(w, wait_timeout_and_wait_zero);
    tcase_add_test(w, waiter_disconnect_leaves_queue);
    tcase_add_test(w, waiter_big_pipeline_leaves);
    tcase_add_test(w, waiter_pipeline_fallback_drops);
    tcase_add_test(w, pipelined_replies_held_back);
    tcase_add_test(w, max_waiters_per_key);
    tcase_add_test(w, disconnect_keeps_plain_locks_drops_session_and_wait);
    tcase_add_test(w, stats_counters_exact);
    return s;
}

int main(void)
{
    return itest_main(waiting_suite());
}
