/* tests/integration/test_client_async_pool.c - Check suite: the async
 * pool calls (cachify_async_pool_*) on every backend of
 * tests/integration/backends.h: cachifyd, mem: and etcd.
 *
 * Owns: slots up to max_size, CACHIFY_FULL with "<key> pool is full",
 * waiters granted in FIFO order as slots are released (a waiting slot on
 * a connection of its own), a wait timing out, size, extend, forced
 * release, a SESSION slot freed when its handle closes, CACHIFY_ERR_TYPE
 * for mix-ups, argument checks; every callback exactly once, never inside
 * the call.  Does not own the sync pool tests (test_client_pool.c).
 */
#include "tests/integration/async_itest.h"

static uint64_t ptake(struct cachify_async *ac, const char *key, unsigned max,
                      const struct cachify_lock_opts *o)
{
    struct rec r = { 0 };
    CALL(cachify_async_pool_acquire(ac, key, max, o, rec_tok, &r));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, key);
    ck_assert(r.token > 0);
    return r.token;
}

/* Waits until the pool on key has n requests (holders and waiters): on
 * etcd its entries (10 s at most), elsewhere a short turn of the loop (the
 * daemon and mem: queue a request at once). */
static void queued(int be, const char *key, long n)
{
    double deadline = mono_s() + 10;

    if (be != BE_ETCD) {
        run_for(0.2);
        return;
    }
    while (bk_etcd_pool_entries(key) != n && mono_s() < deadline)
        run_for(0.02);
    ck_assert_int_eq(bk_etcd_pool_entries(key), n);
}

#define PSIZE(ac, k) value_of(cachify_async_pool_size, (ac), (k))
#define PFORCE(ac, k) value_of(cachify_async_pool_force_release, (ac), (k))

START_TEST(test_async_pool)
{
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    uint64_t a = ptake(ac, "ap", 2, NULL), b = ptake(ac, "ap", 2, NULL);
    ck_assert_uint_gt(b, a);
    struct rec full = { 0 };
    CALL(cachify_async_pool_acquire(ac, "ap", 2, NULL, rec_tok, &full));
    RUN_UNTIL(full.called);
    rec_check(&full, CACHIFY_FULL, "full");
    ck_assert_str_eq(full.err, "ap pool is full");
    ck_assert_int_eq(PSIZE(ac, "ap"), 2);

    /* Two waiters, served in order as the slots are released. */
    struct cachify_lock_opts w = waiting(10000);
    struct rec w1 = { 0 }, w2 = { 0 }, rl = { 0 }, ex = { 0 };
    CALL(cachify_async_pool_acquire(ac, "ap", 2, &w, rec_tok, &w1));
    queued(_i, "ap", 3); /* queued first */
    CALL(cachify_async_pool_acquire(ac, "ap", 2, &w, rec_tok, &w2));
    queued(_i, "ap", 4);
    ck_assert_int_eq(w1.called + w2.called, 0);
    CALL(cachify_async_pool_release(ac, "ap", a, rec_val, &rl));
    RUN_UNTIL(w1.called);
    rec_check(&w1, CACHIFY_OK, "first waiter");
    ck_assert_int_eq(w2.called, 0);
    RUN_UNTIL(rl.called);
    rec_check(&rl, CACHIFY_OK, "release");
    ck_assert_int_eq(rl.value, 1);
    CALL(cachify_async_pool_extend(ac, "ap", b, 5000, rec_val, &ex));
    RUN_UNTIL(ex.called);
    rec_check(&ex, CACHIFY_OK, "extend");
    ck_assert_int_eq(ex.value, 1);
    ck_assert_int_eq(PFORCE(ac, "ap"), 2);
    RUN_UNTIL(w2.called);
    rec_check(&w2, CACHIFY_OK, "second waiter");
    ck_assert_uint_gt(w2.token, w1.token);

    /* A wait that runs out. */
    struct cachify_lock_opts brief = waiting(150);
    struct rec to = { 0 };
    CALL(cachify_async_pool_acquire(ac, "ap", 1, &brief, rec_tok, &to));
    RUN_UNTIL(to.called);
    rec_check(&to, CACHIFY_ERR_TYPE, "size mismatch"); /* the pool is 2 */
    ptake(ac, "ap", 2, NULL); /* with w2's slot: full again */
    ck_assert_int_eq(PSIZE(ac, "ap"), 2);
    struct rec to2 = { 0 };
    CALL(cachify_async_pool_acquire(ac, "ap", 2, &brief, rec_tok, &to2));
    RUN_UNTIL(to2.called);
    rec_check(&to2, CACHIFY_TIMEOUT, "timeout");
    ck_assert_str_eq(to2.err, "ap pool is full");
    ck_assert_int_eq(PFORCE(ac, "ap"), 2);

    /* A lock key is no pool. */
    uint64_t l = take(ac, "lk", NULL);
    struct rec wt = { 0 }, wt2 = { 0 };
    CALL(cachify_async_pool_acquire(ac, "lk", 2, NULL, rec_tok, &wt));
    CALL(cachify_async_pool_size(ac, "lk", rec_val, &wt2));
    RUN_UNTIL(wt.called && wt2.called);
    rec_check(&wt, CACHIFY_ERR_TYPE, "pool on a lock");
    rec_check(&wt2, CACHIFY_ERR_TYPE, "size of a lock");
    ck_assert_int_eq(rel(ac, "lk", l), 1);

    /* Arguments. */
    ck_assert_int_eq(cachify_async_pool_acquire(ac, "ap", 0, NULL, rec_tok,
                                                &(struct rec){ 0 }),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_pool_acquire(ac, "ap", 2, NULL, NULL, NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_pool_release(ac, "ap", 0, rec_val,
                                                &(struct rec){ 0 }),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_pool_extend(ac, "ap", 1, -1, rec_val,
                                               &(struct rec){ 0 }),
                     CACHIFY_ERR_ARG);
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

START_TEST(test_async_pool_session)
{
    backend_start(_i, NULL);
    struct cachify_async *holder = open_h(g_url, NULL, 0);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_lock_opts s = { 1, 0, CACHIFY_EXP_DEFAULT, 1, 0 };
    ptake(holder, "sp", 1, &s);
    ck_assert_int_eq(PSIZE(ac, "sp"), 1);
    struct cachify_lock_opts w = waiting(10000);
    struct rec got = { 0 };
    CALL(cachify_async_pool_acquire(ac, "sp", 1, &w, rec_tok, &got));
    queued(_i, "sp", 2);
    ck_assert_int_eq(got.called, 0);
    cachify_async_close(holder); /* its SESSION slot goes with it */
    RUN_UNTIL(got.called);
    rec_check(&got, CACHIFY_OK, "after the holder closed");
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

/* ---- the async pooled decorator ---- */

struct pjob {
    struct cachify_async_call *call;
    int ran, done_called, done_status;
    char done_err[128];
};

CACHIFY_ASYNC_POOLED_FN(pooled_job, (int id), (id), ("pj-%d", id), 1, NULL,
                        0)
{
    struct pjob *j = cachify_async_call_ctx(call);
    (void)id;
    j->ran++;
    j->call = call; /* ended by the test */
}

CACHIFY_ASYNC_POOLED_FN(strict_job, (int id), (id), ("pj-%d", id), 1, NULL,
                        1)
{
    struct pjob *j = cachify_async_call_ctx(call);
    (void)id;
    j->ran++;
    cachify_async_call_done(call);
}

static void pjob_done(int status, const char *errstr, void *ctx)
{
    struct pjob *j = ctx;
    j->done_called++;
    j->done_status = status;
    snprintf(j->done_err, sizeof j->done_err, "%s", errstr);
}

START_TEST(test_async_pooled_decorator)
{
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct pjob a = { 0 }, b = { 0 }, c = { 0 };
    CALL(pooled_job(ac, &a, pjob_done, 1));
    RUN_UNTIL(a.ran);
    struct rec sz = { 0 };
    CALL(pooled_job_size(ac, rec_val, &sz, 1));
    RUN_UNTIL(sz.called);
    rec_check(&sz, CACHIFY_OK, "size");
    ck_assert_int_eq(sz.value, 1);
    /* Full: on_full's turn (1), or the status with raise_on_full. */
    CALL(pooled_job(ac, &b, pjob_done, 1));
    CALL(strict_job(ac, &c, pjob_done, 1));
    RUN_UNTIL(b.done_called && c.done_called);
    ck_assert_int_eq(b.ran + c.ran, 0);
    ck_assert_int_eq(b.done_status, 1);
    ck_assert_str_eq(b.done_err, "pj-1 pool is full");
    ck_assert_int_eq(c.done_status, CACHIFY_FULL);
    cachify_async_call_done(a.call);
    RUN_UNTIL(a.done_called);
    ck_assert_int_eq(a.done_status, CACHIFY_OK);
    struct pjob d = { 0 };
    CALL(strict_job(ac, &d, pjob_done, 1));
    RUN_UNTIL(d.done_called);
    ck_assert_int_eq(d.done_status, CACHIFY_OK);
    ck_assert_int_eq(d.ran, 1);
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_async_pool");
    TCase *tc = itest_tcase(s, "async_pool");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_async_pool, 0, bk_count());
    tcase_add_loop_test(tc, test_async_pool_session, 0, bk_count());
    tcase_add_loop_test(tc, test_async_pooled_decorator, 0, bk_count());
    return bk_run(s);
}
