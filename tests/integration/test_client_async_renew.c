/* tests/integration/test_client_async_renew.c - Check suite: renewal of
 * an async decorated call's lock (opts.renew), on cachifyd and on mem:.
 *
 * Owns: a renewed call whose body runs over three times its TTL keeps the
 * lock all along (another handle polls it, -LOCKED every time) and
 * completes with CACHIFY_OK; a lock force-released under a renewed call is
 * reported once to the handle's renew callback and the call completes
 * with CACHIFY_LOST; without renew the same body loses its lock; a pooled
 * call renews its slot (POOL_EXTEND) the same way; a renewal that cannot
 * even be sent (out of memory) is reported once the lease may have ended,
 * not retried past it in silence.  Does not
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

/* A pooled call (one slot) renewed with POOL_EXTEND. */
CACHIFY_ASYNC_POOLED_FN(slow_slot, (int id), (id), ("slot-%d", id), 1,
                        &renewed, 0)
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
 * must be held every time: a lock (max_size 0: ACQUIRE without wait,
 * -LOCKED) or a full pool of max_size (POOL_ACQUIRE, -FULL). */
static void held_throughout(struct cachify_async *other, const char *key,
                            unsigned max_size, double secs)
{
    double end = mono_s() + secs;
    int want = max_size ? CACHIFY_FULL : CACHIFY_LOCKED;
    while (mono_s() < end) {
        struct rec r = { 0 };
        CALL(max_size ? cachify_async_pool_acquire(other, key, max_size,
                                                   NULL, rec_tok, &r)
                      : cachify_async_acquire(other, key, NULL, rec_tok,
                                              &r));
        RUN_UNTIL(r.called);
        ck_assert_msg(r.status == want, "%s taken (%d) %.3f s before the "
                      "end", key, r.status, end - mono_s());
        run_for(0.05);
    }
}

/* The running call s kept what it held: done now, it completes with
 * CACHIFY_OK and no renewal failed. */
static void expect_kept(struct slow *s)
{
    cachify_async_call_done(s->call);
    RUN_UNTIL(s->done_called);
    ck_assert_msg(s->done_status == CACHIFY_OK, "done %d: %s", s->done_status,
                  s->done_err);
    ck_assert_int_eq(g_renew_calls, 0);
}

/* Starts backend i and opens the renewing handle (*ac, its renew callback
 * set, the counters cleared) and another one. */
static void open_pair(int i, struct cachify_async **ac,
                      struct cachify_async **other)
{
    backend_start(i, NULL);
    *ac = open_h(g_url, NULL, 0);
    *other = open_h(g_url, NULL, 0);
    g_renew_calls = 0;
    g_renew_status = 0;
    cachify_async_set_renew_cb(*ac, on_renew_fail, NULL);
}

/* The running call s lost what it held: the renew callback is told once
 * (CACHIFY_LOST) and the call, done now, completes with CACHIFY_LOST. */
static void expect_lost(struct slow *s)
{
    RUN_UNTIL(g_renew_calls == 1);
    ck_assert_int_eq(g_renew_status, CACHIFY_LOST);
    cachify_async_call_done(s->call);
    RUN_UNTIL(s->done_called);
    ck_assert_int_eq(s->done_status, CACHIFY_LOST);
}

/* calloc of the objects linked into this program (the client library's
 * among them: the Makefile links this suite with -Wl,--wrap=calloc) fails
 * while g_fail_calloc is set, which makes a renewal that cannot be sent.
 * libevent's and libc's own allocations are not affected. */
static int g_fail_calloc;
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size)
{
    if (g_fail_calloc) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_calloc(n, size);
}

/* Every renewal of a running call fails to be sent (out of memory): they
 * are retried as failed ones, within the same bound, so the loss is
 * reported (CACHIFY_ERR_NOMEM, once) when the 300 ms lease may have
 * ended, counted from when the acquire was sent; the call then completes
 * with CACHIFY_LOST. */
START_TEST(test_async_renew_cannot_send)
{
    struct cachify_async *ac, *other;
    open_pair(_i, &ac, &other);
    struct slow s = { 0 };
    double start = mono_s();
    CALL(slow_job(ac, &s, slow_done, 4));
    RUN_UNTIL(s.ran);
    g_fail_calloc = 1;
    guard_arm(slow_mode() ? 20.0 : 5.0);
    while (g_renew_calls == 0 && !g_guard_fired)
        event_base_loop(g_base, EVLOOP_ONCE);
    evtimer_del(g_guard);
    g_fail_calloc = 0;
    double took = mono_s() - start;
    ck_assert_msg(g_renew_calls == 1, "no loss reported %.1f s after a "
                  "300 ms lease whose renewals could not be sent", took);
    ck_assert_int_eq(g_renew_status, CACHIFY_ERR_NOMEM);
    REQUIRE(took > 0.2 && took < 0.3 + (slow_mode() ? 3.0 : 1.0),
            "reported %.3f s after the acquire, the lease 0.3 s", took);
    cachify_async_call_done(s.call);
    RUN_UNTIL(s.done_called);
    ck_assert_int_eq(s.done_status, CACHIFY_LOST);
    run_for(0.2);
    ck_assert_int_eq(g_renew_calls, 1); /* once */
    cachify_async_close(other);
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

START_TEST(test_async_renewed_call)
{
    struct cachify_async *ac, *other;
    open_pair(_i, &ac, &other);
    struct slow s = { 0 };
    CALL(slow_job(ac, &s, slow_done, 1));
    RUN_UNTIL(s.ran);
    held_throughout(other, "slow-1", 0, 1.0 + (slow_mode() ? 0.5 : 0));
    expect_kept(&s);

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
    struct cachify_async *ac, *other;
    open_pair(_i, &ac, &other);
    struct slow s = { 0 };
    CALL(slow_job(ac, &s, slow_done, 3));
    RUN_UNTIL(s.ran);
    ck_assert_int_eq(FORCE(other, "slow-3"), 1);
    expect_lost(&s);
    run_for(0.3);
    ck_assert_int_eq(g_renew_calls, 1); /* once */
    cachify_async_close(other);
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

/* A pooled call renews its slot as a locked call renews its lock: the
 * pool stays full for over three times the slot's TTL, the call completes
 * with CACHIFY_OK; a forced release under it is reported once and the
 * call completes with CACHIFY_LOST. */
START_TEST(test_async_renewed_pool_slot)
{
    struct cachify_async *ac, *other;
    open_pair(_i, &ac, &other);
    struct slow s = { 0 };
    CALL(slow_slot(ac, &s, slow_done, 1));
    RUN_UNTIL(s.ran);
    held_throughout(other, "slot-1", 1, 1.0 + (slow_mode() ? 0.5 : 0));
    expect_kept(&s);

    struct slow f = { 0 };
    CALL(slow_slot(ac, &f, slow_done, 2));
    RUN_UNTIL(f.ran);
    struct rec r = { 0 };
    CALL(cachify_async_pool_force_release(other, "slot-2", rec_val, &r));
    RUN_UNTIL(r.called);
    ck_assert_int_eq(r.value, 1);
    expect_lost(&f);
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
    tcase_add_loop_test(tc, test_async_renewed_pool_slot, 0, BE_ETCD);
    tcase_add_loop_test(tc, test_async_renew_cannot_send, 0, BE_ETCD);
    return itest_main(s);
}
