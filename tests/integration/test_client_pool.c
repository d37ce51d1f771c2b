/* tests/integration/test_client_pool.c - Check suite: libcachify-client's
 * pools (cachify_pool_*, the pool guard, CACHIFY_POOLED_FN) on both
 * backends: every test runs once on "mem:" and once on a cachifyd forked
 * for it, and must see the same statuses and messages.
 *
 * Owns: the client side of pools: slots up to max_size, CACHIFY_FULL and
 * CACHIFY_TIMEOUT with "<key> pool is full", release by token and forced,
 * size, extend, a waiting acquire served by another thread's release,
 * SESSION slots freed when their handle closes, CACHIFY_ERR_TYPE for a
 * lock/pool mix-up and a size mismatch, argument checks, the guard, and
 * the decorators' on_full / raise_on_full / size companion.  Does not own
 * the server's pool tests (test_pool.c) or the example (test_examples.c).
 */
#include <pthread.h>

#include "client/cachify.h"
#include "tests/integration/itest.h"

/* _i: 0 mem:, 1 a daemon.  Opens a handle on it (the daemon started). */
static char g_url[128];

static struct cachify *open_backend(int on_daemon)
{
    struct cachify *c;
    char err[256];

    if (on_daemon) {
        srv_start(NULL);
        snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    } else {
        snprintf(g_url, sizeof g_url, "mem:");
    }
    ck_assert_msg(cachify_open(&c, g_url, NULL, err, sizeof err) == CACHIFY_OK,
                  "open %s: %s", g_url, err);
    return c;
}

static void close_backend(struct cachify *c, int on_daemon)
{
    cachify_close(c);
    if (on_daemon)
        srv_finish();
}

static const struct cachify_lock_opts one_try = CACHIFY_LOCK_OPTS_DEFAULT;

START_TEST(test_calls)
{
    struct cachify *c = open_backend(_i);
    uint64_t a = 0, b = 0, t = 0;
    ck_assert_int_eq(cachify_pool_acquire(c, "cp", 2, NULL, &a), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "cp", 2, &one_try, &b),
                     CACHIFY_OK);
    ck_assert_uint_gt(b, a);
    ck_assert_int_eq(cachify_pool_acquire(c, "cp", 2, NULL, &t), CACHIFY_FULL);
    ck_assert_str_eq(cachify_errstr(c), "cp pool is full");
    ck_assert_str_eq(cachify_status_name(CACHIFY_FULL), "FULL");
    ck_assert_int_eq(cachify_pool_size(c, "cp"), 2);
    ck_assert_int_eq(cachify_is_locked(c, "cp"), 1);
    ck_assert_int_eq(cachify_pool_release(c, "cp", a), 1);
    ck_assert_int_eq(cachify_pool_release(c, "cp", a), 0);
    ck_assert_int_eq(cachify_pool_size(c, "cp"), 1);
    ck_assert_int_eq(cachify_pool_extend(c, "cp", b, 200), 1);
    ck_assert_int_eq(cachify_pool_extend(c, "cp", a, 200), 0);
    usleep(400000); /* b's slot ran out */
    ck_assert_int_eq(cachify_pool_size(c, "cp"), 0);
    ck_assert_int_eq(cachify_pool_size(c, "nothing"), 0);
    /* A wait that runs out. */
    ck_assert_int_eq(cachify_pool_acquire(c, "one", 1, NULL, &a), CACHIFY_OK);
    struct cachify_lock_opts wait = {.timeout_ms = 150};
    ck_assert_int_eq(cachify_pool_acquire(c, "one", 1, &wait, &t),
                     CACHIFY_TIMEOUT);
    ck_assert_str_eq(cachify_errstr(c), "one pool is full");
    ck_assert_int_eq(cachify_pool_acquire(c, "x3", 3, NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "x3", 3, NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_force_release(c, "x3"), 2);
    ck_assert_int_eq(cachify_pool_force_release(c, "x3"), 0);
    close_backend(c, _i);
}
END_TEST

START_TEST(test_errors)
{
    struct cachify *c = open_backend(_i);
    uint64_t t = 0;
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 0, NULL, &t),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 1000001, NULL, &t),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 2, NULL, NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_acquire(c, NULL, 2, NULL, &t),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_release(c, "p", 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_extend(c, "p", 1, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_size(NULL, "p"), CACHIFY_ERR_ARG);
    /* Size mismatch and lock/pool mix-ups, both ways. */
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 2, NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 3, NULL, &t),
                     CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_acquire(c, "p", NULL, &t), CACHIFY_ERR_TYPE);
    uint64_t lock = 0;
    ck_assert_int_eq(cachify_acquire(c, "l", NULL, &lock), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "l", 2, NULL, &t),
                     CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_size(c, "l"), CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_release(c, "l", lock), CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_extend(c, "l", lock, 100),
                     CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_force_release(c, "l"), CACHIFY_ERR_TYPE);
    ck_assert_ptr_nonnull(strstr(cachify_errstr(c), "WRONGTYPE"));
    ck_assert_int_eq(cachify_pool_size(c, "p"), 1);
    close_backend(c, _i);
}
END_TEST

struct releaser {
    uint64_t token;
    int rc;
};

static void *release_later(void *p)
{
    struct releaser *r = p;
    struct cachify *c;
    char err[256];
    if (cachify_open(&c, g_url, NULL, err, sizeof err) != CACHIFY_OK) {
        r->rc = -100;
        return NULL;
    }
    usleep(200000);
    r->rc = cachify_pool_release(c, "w", r->token);
    cachify_close(c);
    return NULL;
}

START_TEST(test_wait_and_session)
{
    struct cachify *c = open_backend(_i), *d;
    char err[256];
    uint64_t t = 0;
    struct releaser r = {0, 0};
    ck_assert_int_eq(cachify_pool_acquire(c, "w", 1, NULL, &r.token),
                     CACHIFY_OK);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_later, &r), 0);
    struct cachify_lock_opts wait = {.timeout_ms = 10000};
    ck_assert_int_eq(cachify_pool_acquire(c, "w", 1, &wait, &t), CACHIFY_OK);
    pthread_join(th, NULL);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_uint_gt(t, r.token);
    /* A SESSION slot goes with its handle. */
    ck_assert_int_eq(cachify_open(&d, g_url, NULL, err, sizeof err),
                     CACHIFY_OK);
    struct cachify_lock_opts session = {.nowait = 1, .session = 1};
    ck_assert_int_eq(cachify_pool_acquire(d, "s", 1, &session, &t),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_size(c, "s"), 1);
    cachify_close(d);
    ck_assert_int_eq(cachify_pool_acquire(c, "s", 1, &wait, &t), CACHIFY_OK);
    close_backend(c, _i);
}
END_TEST

START_TEST(test_guard)
{
    struct cachify *c = open_backend(_i);
    {
        CACHIFY_SCOPED_POOL(g, c, "g", 1, NULL);
        ck_assert_int_eq(g.status, CACHIFY_OK);
        ck_assert_int_eq(cachify_pool_size(c, "g"), 1);
        struct cachify_pool_guard h =
            cachify_pool_guard_acquire(c, "g", 1, NULL);
        ck_assert_int_eq(h.status, CACHIFY_FULL);
        ck_assert_int_eq(cachify_pool_guard_release(&h), CACHIFY_OK);
    }
    ck_assert_int_eq(cachify_pool_size(c, "g"), 0);
    struct cachify_pool_guard g = cachify_pool_guard_acquire(c, "g", 1, NULL);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_force_release(c, "g"), 1);
    ck_assert_int_eq(cachify_pool_guard_release(&g), CACHIFY_LOST);
    ck_assert_int_eq(cachify_pool_guard_release(&g), CACHIFY_OK);
    close_backend(c, _i);
}
END_TEST

/* ---- the decorators ---- */

static int g_full_calls;
static int g_body_calls;

static int note_full(int job)
{
    g_full_calls++;
    return -job;
}

CACHIFY_POOLED_FN(int, pooled_job, (struct cachify *other, int job),
                  (other, job), ("jobs-%d", job % 2), 1, NULL, 0,
                  note_full(job))
{
    g_body_calls++;
    /* Inside: the pool of this key is full for another call. */
    int inner = 0;
    int st = other ? pooled_job(other, &inner, NULL, job + 2) : 1;
    ck_assert_int_eq(st, 1);
    ck_assert_int_eq(inner, -(job + 2));
    return job * 10;
}

CACHIFY_POOLED_FN_VOID(strict_job, (int job), (job), ("strict-%d", job), 1,
                       NULL, 1, (void)0)
{
    (void)job;
    g_body_calls++;
}

START_TEST(test_decorators)
{
    struct cachify *c = open_backend(_i), *d;
    char err[256];
    ck_assert_int_eq(cachify_open(&d, g_url, NULL, err, sizeof err),
                     CACHIFY_OK);
    g_full_calls = g_body_calls = 0;
    int result = 0;
    ck_assert_int_eq(pooled_job(c, &result, d, 3), CACHIFY_OK);
    ck_assert_int_eq(result, 30);
    ck_assert_int_eq(g_body_calls, 2 - 1); /* the inner call was full */
    ck_assert_int_eq(g_full_calls, 1);
    ck_assert_int_eq(pooled_job_size(c, NULL, 3), 0);
    /* raise_on_full: the status, no body. */
    uint64_t t;
    ck_assert_int_eq(cachify_pool_acquire(d, "strict-7", 1, NULL, &t),
                     CACHIFY_OK);
    ck_assert_int_eq(strict_job_size(c, 7), 1);
    ck_assert_int_eq(strict_job(c, 7), CACHIFY_FULL);
    ck_assert_str_eq(cachify_errstr(c), "strict-7 pool is full");
    ck_assert_int_eq(strict_job(c, 8), CACHIFY_OK);
    ck_assert_int_eq(g_body_calls, 2);
    cachify_close(d);
    close_backend(c, _i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_pool");
    TCase *tc = itest_tcase(s, "pool");
    tcase_add_loop_test(tc, test_calls, 0, 2);
    tcase_add_loop_test(tc, test_errors, 0, 2);
    tcase_add_loop_test(tc, test_wait_and_session, 0, 2);
    tcase_add_loop_test(tc, test_guard, 0, 2);
    tcase_add_loop_test(tc, test_decorators, 0, 2);
    return itest_main(s);
}
