/* tests/integration/test_client_renew.c - Check suite: lock renewal in
 * libcachify-client (cachify_renewer_*, opts.renew in guards,
 * cachify_with_lock and the decorators), on mem: and on cachifyd.
 *
 * Owns: a renewed lock held three times its TTL is never taken by another
 * client, and its release is CACHIFY_OK; a renewal that fails is reported
 * (the callback, once, and the release status CACHIFY_LOST): the token no
 * longer holds the key (force-released), or the server stopped answering
 * past the TTL (the daemon SIGSTOPped); killing the renewing process lets
 * the lock expire within one TTL (the renewals die with it); the lease is
 * counted from when the acquire was sent, not from the renewer's start; a
 * decorated call with renew outlives its TTL.  Timing bounds are generous (a loaded
 * 2-core machine): "within one TTL" is checked as TTL plus scheduling
 * slack, and "never taken" by polling all along.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "client/cachify.h"
#include "client/sync_internal.h"
#include "tests/integration/itest.h"

static char g_url[128];

/* The renewed leases: renewed every third, so a renewal has two thirds of
 * a second to get through.  300 ms left 200 ms, too little for a daemon
 * under valgrind on a loaded 2-core machine. */
#define RENEW_TTL_MS 1000
#define RENEW_TTL_S (RENEW_TTL_MS / 1000.0)

static struct cachify *open_url(void)
{
    struct cachify *c;
    char err[256];

    ck_assert_msg(cachify_open(&c, g_url, NULL, err, sizeof err) == CACHIFY_OK,
                  "open %s: %s", g_url, err);
    return c;
}

static struct cachify *open_backend(int on_daemon)
{
    if (on_daemon) {
        srv_start(NULL);
        snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    } else {
        snprintf(g_url, sizeof g_url, "mem:");
    }
    return open_url();
}

static void close_backend(struct cachify *c, int on_daemon)
{
    cachify_close(c);
    if (on_daemon)
        srv_finish();
}

static atomic_int g_cb_calls;
static atomic_int g_cb_status;

static void on_renew_fail(const char *key, uint64_t token, int status,
                          const char *errstr, void *arg)
{
    (void)token;
    (void)arg;
    REQUIRE(key != NULL && errstr != NULL && errstr[0] != '\0',
            "renew callback without key or message");
    atomic_store(&g_cb_status, status);
    atomic_fetch_add(&g_cb_calls, 1);
}

/* Polls (every 30 ms for `secs`) that another handle cannot take key. */
static void never_taken(struct cachify *other, const char *key, double secs)
{
    double end = mono_s() + secs;
    uint64_t t;
    while (mono_s() < end) {
        int rc = cachify_acquire(other, key, NULL, &t);
        REQUIRE(rc == CACHIFY_LOCKED, "%s taken by another client (%s) at "
                "%.3f s before the end", key, cachify_status_name(rc),
                end - mono_s());
        usleep(30000);
    }
}

START_TEST(test_renewed_outlives_ttl)
{
    struct cachify *c = open_backend(_i), *other = open_url();
    atomic_store(&g_cb_calls, 0);
    cachify_set_renew_cb(c, on_renew_fail, NULL);
    struct cachify_lock_opts opts = {.nowait = 1, .exp_ms = RENEW_TTL_MS,
                                     .renew = 1};
    struct cachify_guard g = cachify_guard_acquire(c, "r", &opts);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    never_taken(other, "r", 3.0 * RENEW_TTL_S);
    ck_assert_int_eq(cachify_guard_release(&g), CACHIFY_OK);
    ck_assert_int_eq(atomic_load(&g_cb_calls), 0);
    uint64_t t;
    ck_assert_int_eq(cachify_acquire(other, "r", NULL, &t), CACHIFY_OK);
    /* Without renew the same lock is gone after its TTL. */
    ck_assert_int_eq(cachify_release(other, "r", t), 1);
    opts.renew = 0;
    g = cachify_guard_acquire(c, "r", &opts);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    usleep((RENEW_TTL_MS + 300) * 1000);
    ck_assert_int_eq(cachify_is_locked(other, "r"), 0);
    ck_assert_int_eq(cachify_guard_release(&g), CACHIFY_LOST);
    cachify_close(other);
    close_backend(c, _i);
}
END_TEST

static void wait_cb(int calls, double secs)
{
    double end = mono_s() + secs;
    while (atomic_load(&g_cb_calls) < calls && mono_s() < end)
        usleep(10000);
    ck_assert_int_eq(atomic_load(&g_cb_calls), calls);
}

START_TEST(test_lost_is_reported)
{
    struct cachify *c = open_backend(_i), *other = open_url();
    atomic_store(&g_cb_calls, 0);
    atomic_store(&g_cb_status, 0);
    cachify_set_renew_cb(c, on_renew_fail, NULL);
    struct cachify_lock_opts opts = {.nowait = 1, .exp_ms = RENEW_TTL_MS,
                                     .renew = 1};
    struct cachify_guard g = cachify_guard_acquire(c, "f", &opts);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    ck_assert_int_eq(cachify_force_release(other, "f"), 1);
    wait_cb(1, 3.0); /* the next renewal, within exp/3, finds it gone */
    ck_assert_int_eq(atomic_load(&g_cb_status), CACHIFY_LOST);
    ck_assert_int_eq(cachify_guard_release(&g), CACHIFY_LOST);
    ck_assert_int_eq(atomic_load(&g_cb_calls), 1); /* once */
    /* The renewer API on its own. */
    uint64_t t;
    struct cachify_renewer *r;
    ck_assert_int_eq(cachify_acquire(c, "f2", &opts, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_renewer_start(&r, c, "f2", t, RENEW_TTL_MS,
                                           NULL, NULL),
                     CACHIFY_OK);
    never_taken(other, "f2", 2.5 * RENEW_TTL_S);
    ck_assert_int_eq(cachify_renewer_stop(r), CACHIFY_OK);
    ck_assert_int_eq(cachify_renewer_stop(NULL), CACHIFY_OK);
    ck_assert_int_eq(cachify_renewer_start(&r, c, "f2", t, CACHIFY_EXP_NONE,
                                           NULL, NULL), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_renewer_start(&r, c, "f2", 0, 300, NULL, NULL),
                     CACHIFY_ERR_ARG);
    cachify_close(other);
    close_backend(c, _i);
}
END_TEST

/* The daemon stops answering (SIGSTOP) for longer than the TTL: the
 * renewals cannot get through before the lease ends, and that is said. */
START_TEST(test_server_gone_is_reported)
{
    struct cachify *c = open_backend(1);
    atomic_store(&g_cb_calls, 0);
    atomic_store(&g_cb_status, 0);
    cachify_set_renew_cb(c, on_renew_fail, NULL);
    struct cachify_lock_opts opts = {.nowait = 1, .exp_ms = 600, .renew = 1};
    struct cachify_guard g = cachify_guard_acquire(c, "s", &opts);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    ck_assert_int_eq(kill(g_ts.pid, SIGSTOP), 0);
    wait_cb(1, 5.0);
    ck_assert_int_eq(kill(g_ts.pid, SIGCONT), 0);
    ck_assert_int_lt(atomic_load(&g_cb_status), 0);
    ck_assert_int_ne(atomic_load(&g_cb_status), CACHIFY_LOST);
    ck_assert_int_eq(cachify_guard_release(&g), CACHIFY_LOST);
    close_backend(c, 1);
}
END_TEST

/* The lease is counted from when the acquire was sent, not from the
 * renewer's start: a renewer that starts 0.8 TTL after its acquire was
 * sent (as a slow connection to open would make it; here the start time is
 * passed in, no sleeping) and is cut off from the server (SIGSTOP) reports
 * the loss when that lease ends, plus at most the one attempt (TTL/3) in
 * flight then: 0.53 TTL after its start.  Counting from its start, it
 * would keep trying until 0.9 TTL at the earliest, past the lock's end. */
START_TEST(test_lease_counted_from_acquire)
{
    struct cachify *c = open_backend(1);
    /* Long enough that the right report (0.53 TTL) and the wrong one (0.9
     * TTL) are 2.2 s apart, more than any stall of a loaded machine. */
    const long long ttl = 6000;
    struct cachify_lock_opts opts = {.nowait = 1, .exp_ms = ttl};
    struct cachify_renewer *r;
    uint64_t token;
    atomic_store(&g_cb_calls, 0);
    atomic_store(&g_cb_status, 0);
    long long began = cachify_impl_now_ms();
    ck_assert_int_eq(cachify_acquire(c, "late", &opts, &token), CACHIFY_OK);
    ck_assert_int_eq(kill(g_ts.pid, SIGSTOP), 0);
    double start = mono_s();
    ck_assert_int_eq(cachify_impl_renewer_start(&r, c, "late", token, ttl, 0,
                                                began - ttl * 8 / 10,
                                                on_renew_fail, NULL),
                     CACHIFY_OK);
    wait_cb(1, 10.0);
    double took = mono_s() - start;
    ck_assert_int_eq(kill(g_ts.pid, SIGCONT), 0);
    ck_assert_int_lt(atomic_load(&g_cb_status), 0);
    ck_assert_int_ne(atomic_load(&g_cb_status), CACHIFY_LOST);
    REQUIRE(took < (0.2 + 1.0 / 3) * (double)ttl / 1000 + 1.5,
            "loss reported %.3f s after the renewer started, its lease "
            "(TTL %lld ms) having ended %.3f s after it", took, ttl,
            0.2 * (double)ttl / 1000);
    ck_assert_int_eq(cachify_renewer_stop(r), CACHIFY_LOST);
    close_backend(c, 1);
}
END_TEST

/* A child process holds a renewed lock; killing it stops the renewals and
 * the lock is free within one TTL of the kill. */
START_TEST(test_killed_renewer_expires)
{
    struct cachify *c = open_backend(1);
    const long long ttl_ms = 500;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct cachify *h;
        char err[256];
        struct cachify_lock_opts opts = {.nowait = 1, .exp_ms = ttl_ms,
                                         .renew = 1};
        if (cachify_open(&h, g_url, NULL, err, sizeof err) != CACHIFY_OK)
            _exit(2);
        struct cachify_guard g = cachify_guard_acquire(h, "k", &opts);
        if (g.status != CACHIFY_OK)
            _exit(3);
        if (write(fds[1], "h", 1) != 1)
            _exit(4);
        for (;;)
            pause();
    }
    close(fds[1]);
    char ch;
    ck_assert_int_eq(read(fds[0], &ch, 1), 1);
    close(fds[0]);
    never_taken(c, "k", 3.0 * (double)ttl_ms / 1000);
    double killed = mono_s();
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    waitpid(pid, NULL, 0);
    uint64_t t;
    int rc;
    while ((rc = cachify_acquire(c, "k", NULL, &t)) == CACHIFY_LOCKED &&
           mono_s() - killed < 5.0)
        usleep(10000);
    double free_after = mono_s() - killed;
    ck_assert_int_eq(rc, CACHIFY_OK);
    /* One TTL after the kill, plus slack for a loaded machine. */
    REQUIRE(free_after <= (double)ttl_ms / 1000 + (slow_mode() ? 3.0 : 2.0),
            "free %.3f s after the renewer died (TTL %lld ms)", free_after,
            ttl_ms);
    close_backend(c, 1);
}
END_TEST

/* A pool slot renews as a lock does (POOL_EXTEND). */
START_TEST(test_renewed_pool_slot)
{
    struct cachify *c = open_backend(_i), *other = open_url();
    atomic_store(&g_cb_calls, 0);
    cachify_set_renew_cb(c, on_renew_fail, NULL);
    struct cachify_lock_opts opts = {.nowait = 1, .exp_ms = RENEW_TTL_MS,
                                     .renew = 1};
    struct cachify_pool_guard g = cachify_pool_guard_acquire(c, "ps", 1,
                                                             &opts);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    double end = mono_s() + 3.0 * RENEW_TTL_S;
    while (mono_s() < end) {
        uint64_t t;
        REQUIRE(cachify_pool_acquire(other, "ps", 1, NULL, &t) ==
                    CACHIFY_FULL, "renewed slot lost");
        usleep(30000);
    }
    ck_assert_int_eq(cachify_pool_guard_release(&g), CACHIFY_OK);
    ck_assert_int_eq(atomic_load(&g_cb_calls), 0);
    /* Force-released under the renewer: reported, and the release says
     * CACHIFY_LOST. */
    g = cachify_pool_guard_acquire(c, "ps", 1, &opts);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_force_release(other, "ps"), 1);
    wait_cb(1, 3.0);
    ck_assert_int_eq(atomic_load(&g_cb_status), CACHIFY_LOST);
    ck_assert_int_eq(cachify_pool_guard_release(&g), CACHIFY_LOST);
    cachify_close(other);
    close_backend(c, _i);
}
END_TEST

static struct cachify *g_other;
static int g_body_ran;

static const struct cachify_lock_opts renew_opts = {.nowait = 1,
                                                    .exp_ms = RENEW_TTL_MS,
                                                    .renew = 1};

CACHIFY_LOCKED_FN(int, long_job, (int n), (n), ("long-job-%d", n),
                  &renew_opts)
{
    never_taken(g_other, "long-job-1", 3.5 * RENEW_TTL_S);
    g_body_ran = 1;
    return n;
}

START_TEST(test_decorator_renews)
{
    struct cachify *c = open_backend(_i);
    g_other = open_url();
    g_body_ran = 0;
    int result = 0;
    ck_assert_int_eq(long_job(c, &result, 1), CACHIFY_OK);
    ck_assert_int_eq(result, 1);
    ck_assert_int_eq(g_body_ran, 1);
    ck_assert_int_eq(long_job_is_locked(c, 1), 0);
    cachify_close(g_other);
    close_backend(c, _i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_renew");
    TCase *tc = itest_tcase(s, "renew");
    /* _i: 0 on mem:, 1 on a daemon; with the daemon under valgrind 1
     * alone, as the mem: case runs no daemon and would only repeat the
     * plain pass. */
    int first = slow_mode() ? 1 : 0;
    tcase_add_loop_test(tc, test_renewed_outlives_ttl, first, 2);
    tcase_add_loop_test(tc, test_lost_is_reported, first, 2);
    tcase_add_test(tc, test_server_gone_is_reported);
    tcase_add_test(tc, test_killed_renewer_expires);
    tcase_add_test(tc, test_lease_counted_from_acquire);
    tcase_add_loop_test(tc, test_decorator_renews, first, 2);
    tcase_add_loop_test(tc, test_renewed_pool_slot, first, 2);
    return itest_main(s);
}
