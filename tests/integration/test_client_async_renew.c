/* tests/integration/test_client_async_renew.c - Check suite: renewal of
 * an async decorated call's lock (opts.renew), on cachifyd and on mem:.
 *
 * Owns: a renewed call whose body runs over three times its TTL keeps the
 * lock all along (another handle polls it, -LOCKED every time) and
 * completes with CACHIFY_OK; a lock force-released under a renewed call is
 * reported once to the handle's renew callback and the call completes
 * with CACHIFY_LOST; without renew the same body loses its lock.  Does not
 * own the sync renewal tests (test_client_renew.c).
 */
#include "tests/integration/async_itest.h"

struct slow {
    struct cachify_async_call *call;
    int ran, done_called, done_status;
    char done_err[200];
};

static const struct cachify_lock_opts renewed = {.nowait = 1, .exp_ms = 300,
                                                 .renew = 1};
static const struct cachify_lock_opts plain = {.nowait = 1, .exp_ms = 300};

CACHIFY_ASYNC_LOCKED_FN(slow_job, (int id), (id), ("slow-%d", id), &renewed)
{
    struct slow *s = cachify_async_call_ctx(call);
    (void)id;
    s->ran++;
    s->call = call; /* done later, by the test */
}

CACHIFY_ASYNC_LOCKED_FN(plain_job, (int id), (id), ("slow-%d", id), &plain)
{
    struct slow *s = cachify_async_call_ctx(call);
    (void)id;
    s->ran++;
    s->call = call;
}

static void slow_done(int status, const char *errstr, void *ctx)
{
    struct slow *s = ctx;
    s->done_called++;
    s->done_status = status;
    snprintf(s->done_err, sizeof s->done_err, "%s", errstr);
}

static int g_renew_calls, g_renew_status;

static void on_renew_fail(const char *key, uint64_t token, int status,
                          const char *errstr, void *arg)
{
    (void)key;
    (void)token;
    (void)arg;
    ck_assert_ptr_nonnull(errstr);
    g_renew_calls++;
    g_renew_status = status;
}

/* Runs the loop for secs while `other` asks every 50 ms for key, which
 * must be held (ACQUIRE without wait: -LOCKED) every time. */
static void held_throughout(struct cachify_async *other, const char *key,
                            double secs)
{
    double end = mono_s() + secs;
    while (mono_s() < end) {
        struct rec r = { 0 };
        CALL(cachify_async_acquire(other, key, NULL, rec_tok, &r));
        RUN_UNTIL(r.called);
        ck_assert_msg(r.status == CACHIFY_LOCKED, "%s taken (%d) %.3f s "
                      "before the end", key, r.status, end - mono_s());
        run_for(0.05);
    }
}

START_TEST(test_async_renewed_call)
{
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_async *other = open_h(g_url, NULL, 0);
    g_renew_calls = 0;
    cachify_async_set_renew_cb(ac, on_renew_fail, NULL);
    struct slow s = { 0 };
    CALL(slow_job(ac, &s, slow_done, 1));
    RUN_UNTIL(s.ran);
    held_throughout(other, "slow-1", 1.0 + (slow_mode() ? 0.5 : 0));
    cachify_async_call_done(s.call);
    RUN_UNTIL(s.done_called);
    ck_assert_msg(s.done_status == CACHIFY_OK, "done %d: %s", s.done_status,
                  s.done_err);
    ck_assert_int_eq(g_renew_calls, 0);

    /* Without renew the lock lapses under the body. */
    struct slow p = { 0 };
    CALL(plain_job(ac, &p, slow_done, 2));
    RUN_UNTIL(p.ran);
    run_for(0.5);
    cachify_async_call_done(p.call);
    RUN_UNTIL(p.done_called);
    ck_assert_int_eq(p.done_status, CACHIFY_LOST);
    cachify_async_close(other);
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

START_TEST(test_async_renew_lost)
{
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_async *other = open_h(g_url, NULL, 0);
    g_renew_calls = 0;
    g_renew_status = 0;
    cachify_async_set_renew_cb(ac, on_renew_fail, NULL);
    struct slow s = { 0 };
    CALL(slow_job(ac, &s, slow_done, 3));
    RUN_UNTIL(s.ran);
    ck_assert_int_eq(FORCE(other, "slow-3"), 1);
    RUN_UNTIL(g_renew_calls == 1);
    ck_assert_int_eq(g_renew_status, CACHIFY_LOST);
    cachify_async_call_done(s.call);
    RUN_UNTIL(s.done_called);
    ck_assert_int_eq(s.done_status, CACHIFY_LOST);
    run_for(0.3);
    ck_assert_int_eq(g_renew_calls, 1); /* once */
    cachify_async_close(other);
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_async_renew");
    TCase *tc = itest_tcase(s, "async_renew");

    tcase_add_checked_fixture(tc, setup, teardown);
    /* cachifyd and mem: (the etcd suites start their own cluster). */
    tcase_add_loop_test(tc, test_async_renewed_call, 0, BE_ETCD);
    tcase_add_loop_test(tc, test_async_renew_lost, 0, BE_ETCD);
    return itest_main(s);
}
