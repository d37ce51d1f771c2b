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
 * not retried past it in silence.
 * The explicit async renewer (cachify_async_renewer_start / _stop) of a
 * plain async acquire: a lock renewed for three times its TTL is never
 * taken by another handle and is free after stop + release; a forced
 * release is reported once (CACHIFY_LOST, the stop says so too); a stopped
 * server is reported within the lease's bound, and the stop's completion
 * waits for the renewal in flight; closing the handle with renewers alive
 * reports CACHIFY_ERR_CLOSED and frees them (the suite's valgrind pass);
 * a pool slot renewed; bad arguments refused.  Does not
 * own the sync renewal tests (test_client_renew.c).
 */
#include "tests/integration/async_itest.h"

struct slow {
    struct cachify_async_call *call;
    int ran, done_called, done_status;
    char done_err[200];
};

/* The decorated calls' lease: renewed every third of it, so a renewal has
 * two thirds of a second to get through; 300 ms was once too little for a
 * daemon under valgrind on a loaded 2-core machine (a lock lapsed under a
 * renewed call 0.38 s in). */
#define CALL_TTL_MS 1000
#define CALL_TTL_S (CALL_TTL_MS / 1000.0)

static const struct cachify_lock_opts renewed = {.nowait = 1,
                                                 .exp_ms = CALL_TTL_MS,
                                                 .renew = 1};
static const struct cachify_lock_opts plain = {.nowait = 1,
                                               .exp_ms = CALL_TTL_MS};

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

/* Closes both handles of open_pair and stops backend i. */
static void close_pair(struct cachify_async *ac, struct cachify_async *other,
                       int i)
{
    cachify_async_close(other);
    cachify_async_close(ac);
    backend_finish(i);
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
 * reported (CACHIFY_ERR_NOMEM, once) when the lease may have
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
                  "%d ms lease whose renewals could not be sent", took,
                  CALL_TTL_MS);
    ck_assert_int_eq(g_renew_status, CACHIFY_ERR_NOMEM);
    REQUIRE(took > CALL_TTL_S * 2 / 3 &&
                took < CALL_TTL_S + (slow_mode() ? 3.0 : 1.0),
            "reported %.3f s after the acquire, the lease %.1f s", took,
            CALL_TTL_S);
    cachify_async_call_done(s.call);
    RUN_UNTIL(s.done_called);
    ck_assert_int_eq(s.done_status, CACHIFY_LOST);
    run_for(0.2);
    ck_assert_int_eq(g_renew_calls, 1); /* once */
    close_pair(ac, other, _i);
}
END_TEST

START_TEST(test_async_renewed_call)
{
    struct cachify_async *ac, *other;
    open_pair(_i, &ac, &other);
    struct slow s = { 0 };
    CALL(slow_job(ac, &s, slow_done, 1));
    RUN_UNTIL(s.ran);
    held_throughout(other, "slow-1", 0, 3.3 * CALL_TTL_S);
    expect_kept(&s);

    /* Without renew the lock lapses under the body. */
    struct slow p = { 0 };
    CALL(plain_job(ac, &p, slow_done, 2));
    RUN_UNTIL(p.ran);
    run_for(CALL_TTL_S + 0.2);
    cachify_async_call_done(p.call);
    RUN_UNTIL(p.done_called);
    ck_assert_int_eq(p.done_status, CACHIFY_LOST);
    close_pair(ac, other, _i);
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
    close_pair(ac, other, _i);
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
    held_throughout(other, "slot-1", 1, 3.3 * CALL_TTL_S);
    expect_kept(&s);

    struct slow f = { 0 };
    CALL(slow_slot(ac, &f, slow_done, 2));
    RUN_UNTIL(f.ran);
    struct rec r = { 0 };
    CALL(cachify_async_pool_force_release(other, "slot-2", rec_val, &r));
    RUN_UNTIL(r.called);
    ck_assert_int_eq(r.value, 1);
    expect_lost(&f);
    close_pair(ac, other, _i);
}
END_TEST

/* ---- the explicit renewer ---- */

/* Every renewer below reports here; its stop's completion to a stopped. */
struct reported {
    int calls, status;
    char err[300];
};

static void on_report(const char *key, uint64_t token, int status,
                      const char *errstr, void *arg)
{
    struct reported *rp = arg;
    (void)token;
    ck_assert_ptr_nonnull(key);
    ck_assert_ptr_nonnull(errstr);
    rp->calls++;
    rp->status = status;
    snprintf(rp->err, sizeof rp->err, "%s", errstr);
}

struct stopped {
    int called, status, inside;
};

static void on_stopped(struct cachify_async *ac, int status, void *arg)
{
    struct stopped *st = arg;
    (void)ac;
    st->called++;
    st->status = status;
    st->inside |= g_starting;
}

/* A generous TTL: a 2-core machine under load still renews in time. */
#define ATTL 1500

static const struct cachify_lock_opts attl = {.nowait = 1, .exp_ms = ATTL};

/* Takes key (a lock, or a slot of a pool of one when pool) with ATTL and
 * starts renewing it, reports to rp. */
static struct cachify_async_renewer *
take_renewed(struct cachify_async *ac, const char *key, int pool,
             struct reported *rp, uint64_t *tok)
{
    struct cachify_async_renewer *r = NULL;
    struct rec a = { 0 };
    CALL(pool ? cachify_async_pool_acquire(ac, key, 1, &attl, rec_tok, &a)
              : cachify_async_acquire(ac, key, &attl, rec_tok, &a));
    RUN_UNTIL(a.called);
    rec_check(&a, CACHIFY_OK, key);
    CALL(pool ? cachify_async_pool_renewer_start(&r, ac, key, a.token, ATTL,
                                                 on_report, rp)
              : cachify_async_renewer_start(&r, ac, key, a.token, ATTL,
                                            on_report, rp));
    ck_assert_ptr_nonnull(r);
    *tok = a.token;
    return r;
}

/* Stops r; its completion, never inside the stop, says want too. */
static void stop_expect(struct cachify_async_renewer *r, int want)
{
    struct stopped st = { 0 };
    g_starting = 1;
    int rc = cachify_async_renewer_stop(r, on_stopped, &st);
    g_starting = 0;
    ck_assert_int_eq(rc, want);
    RUN_UNTIL(st.called);
    ck_assert_int_eq(st.called, 1);
    ck_assert(!st.inside);
    ck_assert_int_eq(st.status, want);
}

/* Held for three times its TTL, renewed: the other handle is refused
 * every time it asks (-LOCKED; for a slot of a pool of one, -FULL); after
 * stop + release it gets the key at once. */
static void held_then_freed(int i, const char *key, int pool)
{
    struct cachify_async *ac, *other;
    open_pair(i, &ac, &other);
    struct reported rp = { 0 };
    uint64_t tok;
    struct cachify_async_renewer *r = take_renewed(ac, key, pool, &rp, &tok);
    held_throughout(other, key, pool ? 1 : 0, 3.0 * ATTL / 1000);
    ck_assert_msg(rp.calls == 0, "reported: %s", rp.err);
    stop_expect(r, CACHIFY_OK);
    struct rec rr = { 0 }, o = { 0 };
    CALL(pool ? cachify_async_pool_release(ac, key, tok, rec_val, &rr)
              : cachify_async_release(ac, key, tok, rec_val, &rr));
    RUN_UNTIL(rr.called);
    rec_check(&rr, CACHIFY_OK, "release");
    ck_assert_int_eq(rr.value, 1);
    CALL(pool ? cachify_async_pool_acquire(other, key, 1, &attl, rec_tok, &o)
              : cachify_async_acquire(other, key, &attl, rec_tok, &o));
    RUN_UNTIL(o.called);
    rec_check(&o, CACHIFY_OK, "taken after stop and release");
    ck_assert_int_eq(rp.calls, 0);
    close_pair(ac, other, i);
}

START_TEST(test_arenew_held)
{
    held_then_freed(_i, "ar-1", 0);
}
END_TEST

/* The same for a pool slot (POOL_EXTEND). */
START_TEST(test_arenew_pool_slot)
{
    held_then_freed(_i, "ap-1", 1);
}
END_TEST

/* Another client force-releases the lock: the next renewal finds the
 * token gone, the callback is told once (CACHIFY_LOST) within a renewal
 * period, and the stop says CACHIFY_LOST. */
START_TEST(test_arenew_forced)
{
    struct cachify_async *ac, *other;
    open_pair(_i, &ac, &other);
    struct reported rp = { 0 };
    uint64_t tok;
    struct cachify_async_renewer *r = take_renewed(ac, "ar-2", 0, &rp, &tok);
    double t0 = mono_s();
    ck_assert_int_eq(FORCE(other, "ar-2"), 1);
    RUN_UNTIL(rp.calls == 1);
    double took = mono_s() - t0;
    ck_assert_int_eq(rp.status, CACHIFY_LOST);
    ck_assert_msg(strstr(rp.err, "ar-2") != NULL, "%s", rp.err);
    REQUIRE(took < ATTL / 3000.0 + (slow_mode() ? 5.0 : 2.0),
            "reported %.3f s after the forced release", took);
    run_for(ATTL / 1000.0); /* once: no renewal after the report */
    ck_assert_int_eq(rp.calls, 1);
    ck_assert_int_eq(rel(ac, "ar-2", tok), 0);
    stop_expect(r, CACHIFY_LOST);
    ck_assert_int_eq(rp.calls, 1);
    close_pair(ac, other, _i);
}
END_TEST

/* cachifyd with a handle whose io timeout is far past the TTL, key taken
 * and renewed (*r, reports to rp), then the server stopped (SIGSTOP) a
 * little later; *t0 is when. */
static struct cachify_async *renewed_then_sigstop(const char *key,
                                                  struct reported *rp,
                                                  struct cachify_async_renewer
                                                      **r,
                                                  double *t0)
{
    uint64_t tok;
    backend_start(BE_NET, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 60000);
    *r = take_renewed(ac, key, 0, rp, &tok);
    run_for(0.2);
    ck_assert_int_eq(kill(g_ts.pid, SIGSTOP), 0);
    *t0 = mono_s();
    return ac;
}

/* cachifyd stopped (SIGSTOP) with the handle's io timeout far past the
 * TTL: no renewal gets through, and the loss is reported when the lease
 * may have ended -- no earlier than 2/3 of the TTL after the stop, no
 * later than the TTL (plus the loop's slack).  The stop's completion
 * waits for the renewal still in flight: not while the server is
 * stopped, at once after SIGCONT answers it. */
START_TEST(test_arenew_server_stopped)
{
    struct reported rp = { 0 };
    struct cachify_async_renewer *r;
    double t0;
    struct cachify_async *ac = renewed_then_sigstop("ar-3", &rp, &r, &t0);
    RUN_UNTIL(rp.calls == 1);
    double took = mono_s() - t0;
    ck_assert_msg(rp.status == CACHIFY_ERR_IO, "status %d: %s", rp.status,
                  rp.err);
    ck_assert_msg(strstr(rp.err, "lease ran out") != NULL, "%s", rp.err);
    REQUIRE(took > 0.8 && took < ATTL / 1000.0 + (slow_mode() ? 3.0 : 1.0),
            "reported %.3f s after the server stopped, TTL %.1f s", took,
            ATTL / 1000.0);
    struct stopped st = { 0 };
    ck_assert_int_eq(cachify_async_renewer_stop(r, on_stopped, &st),
                     CACHIFY_LOST);
    run_for(0.3);
    ck_assert_msg(st.called == 0, "the stop completed with a renewal in "
                  "flight");
    ck_assert_int_eq(kill(g_ts.pid, SIGCONT), 0);
    RUN_UNTIL(st.called);
    ck_assert_int_eq(st.status, CACHIFY_LOST);
    ck_assert_int_eq(rp.calls, 1);
    cachify_async_close(ac);
    backend_finish(BE_NET);
}
END_TEST

/* Closing the handle with renewers alive: the running one reports
 * CACHIFY_ERR_CLOSED once, a stopped one says nothing more, no callback
 * after the close; freed by it (valgrind: no leak, no invalid access). */
START_TEST(test_arenew_close_alive)
{
    struct cachify_async *ac, *other;
    open_pair(_i, &ac, &other);
    struct reported rp1 = { 0 }, rp2 = { 0 }, rp3 = { 0 };
    uint64_t t1, t2, t3;
    take_renewed(ac, "ac-1", 0, &rp1, &t1);
    take_renewed(ac, "ac-2", 1, &rp2, &t2);
    struct cachify_async_renewer *r3 = take_renewed(ac, "ac-3", 0, &rp3, &t3);
    run_for(ATTL / 2000.0); /* a renewal or two went out */
    ck_assert_int_eq(cachify_async_renewer_stop(r3, NULL, NULL), CACHIFY_OK);
    cachify_async_close(ac);
    ck_assert_int_eq(rp1.calls, 1);
    ck_assert_int_eq(rp1.status, CACHIFY_ERR_CLOSED);
    ck_assert_int_eq(rp2.calls, 1);
    ck_assert_int_eq(rp2.status, CACHIFY_ERR_CLOSED);
    ck_assert_int_eq(rp3.calls, 0);
    run_for(ATTL / 1000.0);
    ck_assert_int_eq(rp1.calls + rp2.calls + rp3.calls, 2);
    cachify_async_close(other);
    backend_finish(_i);
}
END_TEST

/* The close comes while a stop waits for its renewal in flight (the
 * server stopped): the completion gets CACHIFY_ERR_CLOSED, once, and the
 * renewal's late CLOSED answer frees the renewer (valgrind). */
START_TEST(test_arenew_close_stopping)
{
    struct reported rp = { 0 };
    struct cachify_async_renewer *r;
    double t0;
    struct cachify_async *ac = renewed_then_sigstop("ac-4", &rp, &r, &t0);
    run_for(ATTL / 3000.0); /* the first renewal is on its way */
    struct stopped st = { 0 };
    ck_assert_int_eq(cachify_async_renewer_stop(r, on_stopped, &st),
                     CACHIFY_OK);
    run_for(0.1);
    ck_assert_int_eq(st.called, 0);
    cachify_async_close(ac);
    ck_assert_int_eq(st.called, 1);
    ck_assert_int_eq(st.status, CACHIFY_ERR_CLOSED);
    ck_assert_int_eq(kill(g_ts.pid, SIGCONT), 0);
    run_for(0.2);
    ck_assert_int_eq(st.called, 1);
    ck_assert_int_eq(rp.calls, 0);
    backend_finish(BE_NET);
}
END_TEST

/* What cannot be renewed is refused at the start, nothing allocated. */
START_TEST(test_arenew_bad_args)
{
    backend_start(BE_MEM, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_async_renewer *r = (void *)&r;
    ck_assert_int_eq(cachify_async_renewer_start(NULL, ac, "k", 1, ATTL,
                                                 NULL, NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_renewer_start(&r, NULL, "k", 1, ATTL,
                                                 NULL, NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_ptr_null(r);
    r = (void *)&r;
    ck_assert_int_eq(cachify_async_renewer_start(&r, ac, NULL, 1, ATTL,
                                                 NULL, NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(cachify_async_renewer_start(&r, ac, "", 1, ATTL, NULL,
                                                 NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_renewer_start(&r, ac, "k", 0, ATTL, NULL,
                                                 NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_pool_renewer_start(&r, ac, "k", 1,
                                                      CACHIFY_EXP_NONE,
                                                      NULL, NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_renewer_start(&r, ac, "k", 1, -5, NULL,
                                                 NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(cachify_async_renewer_stop(NULL, on_stopped, NULL),
                     CACHIFY_OK);
    /* A renewer of a token that never held the key: LOST at the first
     * renewal, reported even without a callback of its own (the stop). */
    CALL(cachify_async_renewer_start(&r, ac, "never", 42, 300, NULL, NULL));
    run_for(0.5);
    stop_expect(r, CACHIFY_LOST);
    cachify_async_close(ac);
    backend_finish(BE_MEM);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_async_renew");
    TCase *tc = itest_tcase(s, "async_renew");

    tcase_add_checked_fixture(tc, setup, teardown);
    /* cachifyd and mem: (the etcd suites start their own cluster); with
     * the daemon under valgrind cachifyd alone, as the mem: cases run no
     * daemon and would only repeat the plain pass (as in backends.h,
     * bk_count). */
    int end = slow_mode() ? BE_MEM : BE_ETCD;
    tcase_add_loop_test(tc, test_async_renewed_call, 0, end);
    tcase_add_loop_test(tc, test_async_renew_lost, 0, end);
    tcase_add_loop_test(tc, test_async_renewed_pool_slot, 0, end);
    tcase_add_loop_test(tc, test_async_renew_cannot_send, 0, end);
    tcase_add_loop_test(tc, test_arenew_held, 0, end);
    tcase_add_loop_test(tc, test_arenew_pool_slot, 0, end);
    tcase_add_loop_test(tc, test_arenew_forced, 0, end);
    tcase_add_loop_test(tc, test_arenew_close_alive, 0, end);
    tcase_add_test(tc, test_arenew_server_stopped);
    tcase_add_test(tc, test_arenew_close_stopping);
    if (!slow_mode())
        tcase_add_test(tc, test_arenew_bad_args); /* on mem: */
    return itest_main(s);
}
