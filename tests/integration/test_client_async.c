/* tests/integration/test_client_async.c - Check suite: the async client
 * (cachify_async_* and CACHIFY_ASYNC_LOCKED_FN) on a libevent loop, against
 * the real daemon, "mem:" and a real etcd cluster: the async half of the
 * client conformance suite.
 *
 * Owns: the end-to-end tests of every async call on every backend (loop
 * tests over tests/integration/backends.h: cachifyd over TCP, the embedded
 * store, the three-member etcd cluster main() starts; where a backend
 * truly differs the difference is a trait there), waiting
 * without holding up the handle's other requests, FIFO hand-off between
 * handles, SESSION locks, close from inside a callback (every pending
 * callback gets CACHIFY_ERR_CLOSED exactly once; the suite runs under
 * valgrind and ASan for the "nothing leaks" half), and the async
 * decorators (@lock and @once).  Does not own: failures only a network has (a daemon that
 * dies, AUTH, broken servers, URLs: test_client_async_net.c), the sync API.
 */
#include "tests/integration/async_itest.h"

static const struct cachify_lock_opts NOWAIT = CACHIFY_LOCK_OPTS_DEFAULT;

/* ---- every call ---- */

START_TEST(test_calls)
{
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct rec a = { 0 }, b = { 0 };

    CALL(cachify_async_acquire(ac, "basic", NULL, rec_tok, &a));
    CALL(cachify_async_acquire(ac, "basic", &NOWAIT, rec_tok, &b));
    ck_assert_int_eq(a.called + b.called, 0);
    RUN_UNTIL(a.called && b.called);
    rec_check(&a, CACHIFY_OK, "acquire");
    rec_check(&b, CACHIFY_LOCKED, "second acquire");
    ck_assert_str_eq(b.err, "basic is already locked!");
    ck_assert(a.token > 0 && a.order < b.order);

    ck_assert_int_eq(IS_LOCKED(ac, "basic"), 1);
    long long ms = PTTL(ac, "basic");
    ck_assert_msg(ms > 0 && ms <= 30000, "pttl %lld", ms);
    ck_assert_int_eq(ext(ac, "basic", a.token, 600000), 1);
    ck_assert(PTTL(ac, "basic") > 30000);
    ck_assert_int_eq(ext(ac, "basic", a.token + 1, 1000), 0);
    ck_assert_int_eq(rel(ac, "basic", a.token + 1), 0);
    ck_assert_int_eq(rel(ac, "basic", a.token), 1);
    ck_assert_int_eq(rel(ac, "basic", a.token), 0);
    ck_assert_int_eq(IS_LOCKED(ac, "basic"), 0);
    ck_assert_int_eq(PTTL(ac, "basic"), -2);
    ck_assert_int_eq(FORCE(ac, "basic"), 0);
    ck_assert_int_eq(ext(ac, "basic", a.token, 1000), 0);

    /* exp: none, then a short one that runs out by itself. */
    struct cachify_lock_opts o = { 1, 0, CACHIFY_EXP_NONE, 0, 0 };
    uint64_t t2 = take(ac, "forever", &o);
    ck_assert(t2 > a.token);
    ck_assert_int_eq(PTTL(ac, "forever"), -1);
    ck_assert_int_eq(FORCE(ac, "forever"), 1);
    o.exp_ms = bk_exp(_i, 300);
    take(ac, "short", &o);
    ms = PTTL(ac, "short");
    ck_assert_msg(ms > 0 && ms <= o.exp_ms, "pttl %lld", ms);
    double deadline = mono_s() + bound_s();
    while (IS_LOCKED(ac, "short") && mono_s() < deadline)
        run_for(0.05);
    ck_assert_int_eq(IS_LOCKED(ac, "short"), 0);

    /* Zeros are defaults: a zeroed struct's lock expires (30 s), never
     * outlives its holder; -1 is not "forever" but refused. */
    struct cachify_lock_opts zero = { 0 };
    take(ac, "zeroed", &zero);
    ms = PTTL(ac, "zeroed");
    ck_assert_msg(ms > 30000 - BACKENDS[_i].pttl_slack_ms && ms <= 30000,
                  "pttl %lld", ms);
    zero.timeout_ms = 2000;
    take(ac, "zeroed2", &zero);
    ms = PTTL(ac, "zeroed2");
    ck_assert_msg(ms > 30000 - BACKENDS[_i].pttl_slack_ms && ms <= 30000,
                  "pttl %lld", ms);
    zero.timeout_ms = -1;
    ck_assert_int_eq(cachify_async_acquire(ac, "z", &zero, rec_tok, &b),
                     CACHIFY_ERR_ARG);

    /* Binary-safe keys: spaces, CR LF, quotes, high bytes. */
    static const char odd[] = "sp ace\r\n\"q\"\xff";
    uint64_t t3 = take(ac, odd, NULL);
    ck_assert_int_eq(IS_LOCKED(ac, odd), 1);
    ck_assert_int_eq(IS_LOCKED(ac, "sp ace"), 0);
    ck_assert_int_eq(rel(ac, odd, t3), 1);

    /* A prefix goes on every key; messages name the caller's key. */
    struct cachify_async *pre = open_h(g_url, "pre:", 0);
    uint64_t t4 = take(pre, "x", NULL);
    ck_assert_int_eq(IS_LOCKED(ac, "pre:x"), 1);
    ck_assert_int_eq(IS_LOCKED(ac, "x"), 0);
    memset(&b, 0, sizeof b);
    CALL(cachify_async_acquire(pre, "x", NULL, rec_tok, &b));
    RUN_UNTIL(b.called);
    rec_check(&b, CACHIFY_LOCKED, "prefixed");
    ck_assert_str_eq(b.err, "x is already locked!");
    ck_assert_int_eq(rel(pre, "x", t4), 1);

    /* Refused at once, callback never called. */
    struct cachify_lock_opts bad = { 1, 0, -5, 0, 0 };
    static char huge[CACHIFY_KEY_MAX + 2];
    memset(huge, 'k', sizeof huge - 1);
#define REFUSED(expr) ck_assert_int_eq((expr), CACHIFY_ERR_ARG)
    REFUSED(cachify_async_acquire(ac, NULL, NULL, rec_tok, &b));
    REFUSED(cachify_async_acquire(ac, "", NULL, rec_tok, &b));
    REFUSED(cachify_async_acquire(ac, huge, NULL, rec_tok, &b));
    REFUSED(cachify_async_acquire(ac, "k", &bad, rec_tok, &b));
    REFUSED(cachify_async_acquire(ac, "k", NULL, NULL, NULL));
    REFUSED(cachify_async_release(ac, "k", 0, rec_val, &b));
    REFUSED(cachify_async_extend(ac, "k", 5, 0, rec_val, &b));
    REFUSED(cachify_async_is_locked(NULL, "k", rec_val, &b));
#undef REFUSED
    run_for(0.1);
    ck_assert_int_eq(b.called, 1);

    cachify_async_close(pre);
    cachify_async_close(ac);
    cachify_async_close(NULL);
    backend_finish(_i);
}
END_TEST

/* ---- waiting ---- */

START_TEST(test_wait)
{
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_lock_opts w = waiting(bound_s() * 1000);
    struct rec r = { 0 }, t = { 0 }, f = { 0 };

    uint64_t t1 = take(ac, "w", NULL);
    CALL(cachify_async_acquire(ac, "w", &w, rec_tok, &r));
    run_for(0.3);
    ck_assert_int_eq(r.called, 0);
    ck_assert_int_eq(rel(ac, "w", t1), 1);
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, "waiter");
    ck_assert(r.token > t1);

    /* A bounded wait runs out: TIMEOUT, never before its time. */
    w = waiting(300);
    double t0 = mono_s();
    CALL(cachify_async_acquire(ac, "w", &w, rec_tok, &t));
    RUN_UNTIL(t.called);
    rec_check(&t, CACHIFY_TIMEOUT, "timeout");
    ck_assert_str_eq(t.err, "w is already locked!");
    ck_assert_msg(mono_s() - t0 >= 0.29, "TIMEOUT after %.3f s", mono_s() - t0);

    /* No bound: served by a forced release. */
    w = waiting(CACHIFY_FOREVER);
    CALL(cachify_async_acquire(ac, "w", &w, rec_tok, &f));
    run_for(0.2);
    ck_assert_int_eq(f.called, 0);
    ck_assert_int_eq(FORCE(ac, "w"), 1);
    RUN_UNTIL(f.called);
    rec_check(&f, CACHIFY_OK, "forever");
    ck_assert_int_eq(rel(ac, "w", f.token), 1);
    cachify_async_close(ac);
    backend_finish(_i);
}
END_TEST

/* A waiting acquire does not hold up the handle's other requests. */
START_TEST(test_wait_does_not_block)
{
    backend_start(_i, NULL);
    struct cachify_async *holder = open_h(g_url, NULL, 0);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_lock_opts w = waiting(CACHIFY_FOREVER);
    struct rec r = { 0 }, q = { 0 }, p = { 0 };

    uint64_t t1 = take(holder, "nb", NULL);
    CALL(cachify_async_acquire(ac, "nb", &w, rec_tok, &r));
    CALL(cachify_async_is_locked(ac, "nb", rec_val, &q));
    CALL(cachify_async_pttl(ac, "other", rec_val, &p));
    RUN_UNTIL(q.called && p.called);
    ck_assert_int_eq(r.called, 0);
    rec_check(&q, CACHIFY_OK, "is_locked");
    ck_assert_int_eq(q.value, 1);
    ck_assert_int_eq(p.value, -2);
    ck_assert_int_eq(rel(holder, "nb", t1), 1);
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, "waiter");
    ck_assert_int_eq(rel(ac, "nb", r.token), 1);
    cachify_async_close(ac);
    cachify_async_close(holder);
    backend_finish(_i);
}
END_TEST

/* Waiters from several handles are served first come, first served; each
 * releases from inside its own callback. */
struct fifo_waiter {
    struct cachify_async *ac;
    struct rec got, rel;
};

static void fifo_granted(struct cachify_async *ac, int status, uint64_t token,
                         const char *errstr, void *arg)
{
    struct fifo_waiter *w = arg;
    rec_tok(ac, status, token, errstr, &w->got);
    g_starting = 1;
    int rc = cachify_async_release(ac, "fifo", token, rec_val, &w->rel);
    g_starting = 0;
    ck_assert_int_eq(rc, CACHIFY_OK);
}

START_TEST(test_fifo)
{
    backend_start(_i, NULL);
    struct cachify_async *holder = open_h(g_url, NULL, 0);
    struct fifo_waiter w[3];
    struct cachify_lock_opts o = waiting(CACHIFY_FOREVER);
    int fd = _i == BE_NET ? conn_new() : -1;

    memset(w, 0, sizeof w);
    uint64_t t0 = take(holder, "fifo", NULL);
    for (int i = 0; i < 3; i++) {
        w[i].ac = open_h(g_url, NULL, 0);
        CALL(cachify_async_acquire(w[i].ac, "fifo", &o, fifo_granted, &w[i]));
        /* Each waiter has its own connection: let the server queue this
         * one before the next one starts. */
        double deadline = mono_s() + bound_s();
        while (fd >= 0 && stat1(fd, "waiters") != i + 1 && mono_s() < deadline)
            run_for(0.02);
        if (fd >= 0)
            ck_assert_int_eq(stat1(fd, "waiters"), i + 1);
        while (_i == BE_ETCD && bk_etcd_takers("fifo") != i + 2 &&
               mono_s() < deadline)
            run_for(0.02);
        if (_i == BE_ETCD)
            ck_assert_int_eq(bk_etcd_takers("fifo"), i + 2);
    }
    ck_assert_int_eq(rel(holder, "fifo", t0), 1);
    RUN_UNTIL(w[0].rel.called && w[1].rel.called && w[2].rel.called);
    for (int i = 0; i < 3; i++) {
        rec_check(&w[i].got, CACHIFY_OK, "waiter");
        rec_check(&w[i].rel, CACHIFY_OK, "release");
        ck_assert_int_eq(w[i].rel.value, 1);
        /* Granted in the order they came (each grant follows the
         * previous waiter's release, sent from its callback). */
        if (i > 0) {
            ck_assert(w[i].got.order > w[i - 1].got.order);
            ck_assert(w[i].got.token > w[i - 1].got.token);
        }
        cachify_async_close(w[i].ac);
    }
    if (fd >= 0)
        close(fd);
    cachify_async_close(holder);
    backend_finish(_i);
}
END_TEST

/* ---- SESSION ---- */

START_TEST(test_session)
{
    backend_start(_i, NULL);
    struct cachify_async *h1 = open_h(g_url, NULL, 0);
    struct cachify_async *h2 = open_h(g_url, NULL, 0);
    struct cachify_lock_opts s = { 1, 0, CACHIFY_EXP_DEFAULT, 1, 0 };

    uint64_t t = take(h1, "sess", &s);
    run_for(0.2); /* the lock lives while the handle does */
    ck_assert_int_eq(IS_LOCKED(h2, "sess"), 1);
    ck_assert_int_eq(rel(h1, "sess", t), 1);
    ck_assert_int_eq(IS_LOCKED(h2, "sess"), 0);

    /* Closing the handle ends its session and so the lock. */
    take(h1, "sess", &s);
    ck_assert_int_eq(IS_LOCKED(h2, "sess"), 1);
    cachify_async_close(h1);
    double deadline = mono_s() + bound_s();
    while (IS_LOCKED(h2, "sess") && mono_s() < deadline)
        run_for(0.02);
    ck_assert_int_eq(IS_LOCKED(h2, "sess"), 0);

    /* A waiting SESSION acquire, then a forced release through it. */
    struct cachify_async *h3 = open_h(g_url, NULL, 0);
    struct cachify_lock_opts sw = { 0, CACHIFY_FOREVER, CACHIFY_EXP_NONE, 1, 0 };
    struct rec r = { 0 };
    uint64_t t3 = take(h2, "sess2", NULL);
    CALL(cachify_async_acquire(h3, "sess2", &sw, rec_tok, &r));
    run_for(0.1);
    ck_assert_int_eq(rel(h2, "sess2", t3), 1);
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, "session waiter");
    ck_assert_int_eq(PTTL(h3, "sess2"), -1);
    if (BACKENDS[_i].other_session_pttl_ms == 0) {
        ck_assert_int_eq(PTTL(h2, "sess2"), -1);
    } else {
        long long ms = PTTL(h2, "sess2");
        ck_assert_msg(ms > 0 && ms <= BACKENDS[_i].other_session_pttl_ms,
                      "pttl %lld", ms);
    }
    ck_assert_int_eq(FORCE(h3, "sess2"), 1);
    ck_assert_int_eq(IS_LOCKED(h2, "sess2"), 0);
    /* The session connection is gone; the handle still works. */
    take(h3, "sess2", &s);
    ck_assert_int_eq(IS_LOCKED(h2, "sess2"), 1);
    cachify_async_close(h3);
    deadline = mono_s() + bound_s();
    while (IS_LOCKED(h2, "sess2") && mono_s() < deadline)
        run_for(0.02);
    ck_assert_int_eq(IS_LOCKED(h2, "sess2"), 0);
    cachify_async_close(h2);
    backend_finish(_i);
}
END_TEST

/* ---- close ---- */

/* Closes its own handle from inside its callback: the handle must stay
 * usable (refusing calls) until the callback returns. */
struct closer {
    struct rec r;
    int later_rc;
};

static void close_from_cb(struct cachify_async *ac, int status,
                          long long value, const char *errstr, void *arg)
{
    struct closer *c = arg;
    struct rec dummy = { 0 };
    rec_val(ac, status, value, errstr, &c->r);
    cachify_async_close(ac);
    cachify_async_close(ac); /* twice is harmless */
    c->later_rc = cachify_async_is_locked(ac, "x", rec_val, &dummy);
}

/* A CLOSED callback that calls back into its closing handle. */
static void closed_cb(struct cachify_async *ac, int status, long long value,
                      const char *errstr, void *arg)
{
    struct rec dummy = { 0 };
    rec_val(ac, status, value, errstr, arg);
    ck_assert_int_eq(cachify_async_pttl(ac, "x", rec_val, &dummy),
                     CACHIFY_ERR_CLOSED);
    cachify_async_close(ac);
}

START_TEST(test_close_in_callback)
{
    backend_start(_i, NULL);
    struct cachify_async *holder = open_h(g_url, NULL, 0);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_lock_opts w = waiting(CACHIFY_FOREVER);
    struct closer c = { { 0 }, 0 };
    struct rec wt = { 0 }, p = { 0 }, a = { 0 }, f = { 0 };

    uint64_t t = take(holder, "cl", NULL);
    CALL(cachify_async_acquire(ac, "cl", &w, rec_tok, &wt));
    CALL(cachify_async_is_locked(ac, "cl", close_from_cb, &c));
    CALL(cachify_async_pttl(ac, "cl", closed_cb, &p));
    CALL(cachify_async_acquire(ac, "other", NULL, rec_tok, &a));
    CALL(cachify_async_force_release(ac, "zz", rec_val, &f));
    RUN_UNTIL(c.r.called && wt.called && p.called && a.called && f.called);
    rec_check(&c.r, CACHIFY_OK, "closer");
    ck_assert_int_eq(c.later_rc, CACHIFY_ERR_CLOSED);
    rec_check(&wt, CACHIFY_ERR_CLOSED, "waiter");
    rec_check(&p, CACHIFY_ERR_CLOSED, "pttl");
    rec_check(&a, CACHIFY_ERR_CLOSED, "acquire");
    rec_check(&f, CACHIFY_ERR_CLOSED, "force");
    ck_assert(strlen(wt.err) > 0);
    run_for(0.3); /* nothing more arrives */
    ck_assert_int_eq(wt.called + p.called + a.called + f.called, 4);

    /* Closed outside a callback: the CLOSED callbacks run before close
     * returns.  The waiter's wait is withdrawn: the holder's release
     * reports the lock freed with nobody to hand it to. */
    ac = open_h(g_url, NULL, 0);
    memset(&wt, 0, sizeof wt);
    memset(&p, 0, sizeof p);
    CALL(cachify_async_acquire(ac, "cl", &w, rec_tok, &wt));
    CALL(cachify_async_is_locked(ac, "cl", rec_val, &p));
    run_for(0.2);
    cachify_async_close(ac);
    ck_assert_int_eq(wt.called, 1);
    rec_check(&wt, CACHIFY_ERR_CLOSED, "waiter after close");
    ck_assert_int_eq(p.called, 1);
    if (_i == BE_NET) { /* the server has seen the waiter go */
        int fd = conn_new();
        ck_assert_int_eq(stat_poll(fd, "waiters", 0, bound_s()), 0);
        close(fd);
    }
    ck_assert_int_eq(rel(holder, "cl", t), 1);
    double deadline = mono_s() + bound_s();
    while (IS_LOCKED(holder, "cl") && mono_s() < deadline)
        run_for(0.02);
    ck_assert_int_eq(IS_LOCKED(holder, "cl"), 0);
    cachify_async_close(holder);
    backend_finish(_i);
}
END_TEST

/* ---- the async decorator ---- */

struct job {
    int ran, id, done_called, done_status, done_inside, finish_later;
    char what[16], key[64], done_err[128];
    uint64_t token;
    struct cachify_async_call *call;
};

static const struct cachify_lock_opts job_opts = CACHIFY_LOCK_OPTS_DEFAULT;

CACHIFY_ASYNC_LOCKED_FN(job, (int id, const char *what), (id, what),
                        ("job-%d-%s", id, what), &job_opts)
{
    struct job *j = cachify_async_call_ctx(call);
    j->ran++;
    j->id = id;
    snprintf(j->what, sizeof j->what, "%s", what);
    snprintf(j->key, sizeof j->key, "%s", cachify_async_call_key(call));
    j->token = cachify_async_call_token(call);
    if (j->finish_later)
        j->call = call;
    else
        cachify_async_call_done(call); /* done is still called later */
    ck_assert_int_eq(j->done_called, 0);
}

/* A constant key: the keyspec may leave parameters out. */
CACHIFY_ASYNC_LOCKED_FN(nightly, (int day), (day), ("nightly"), NULL)
{
    struct job *j = cachify_async_call_ctx(call);
    j->ran++;
    j->id = day;
    snprintf(j->key, sizeof j->key, "%s", cachify_async_call_key(call));
    cachify_async_call_done(call);
}

/* A lock of 100 ms (the backend's shortest, when longer): a body that ends
 * later has lost it. */
static struct cachify_lock_opts brief_opts = { .exp_ms = 100 };

CACHIFY_ASYNC_LOCKED_FN(brief, (int id), (id), ("brief-%d", id), &brief_opts)
{
    struct job *j = cachify_async_call_ctx(call);
    (void)id;
    j->ran++;
    j->call = call;
}

/* A %c of 0 would put a NUL inside the key. */
CACHIFY_ASYNC_LOCKED_FN(nul_job, (char ch), (ch), ("a%cb", ch), NULL)
{
    struct job *j = cachify_async_call_ctx(call);
    (void)ch;
    j->ran++;
    cachify_async_call_done(call);
}

static void job_done(int status, const char *errstr, void *ctx)
{
    struct job *j = ctx;
    j->done_called++;
    j->done_status = status;
    j->done_inside |= g_starting;
    snprintf(j->done_err, sizeof j->done_err, "%s", errstr);
}

static void job_check(const struct job *j, int status, int ran)
{
    ck_assert_int_eq(j->done_called, 1);
    ck_assert_int_eq(j->done_inside, 0);
    ck_assert_msg(j->done_status == status, "done %d (%s), want %d",
                  j->done_status, j->done_err, status);
    ck_assert_int_eq(j->ran, ran);
}

static long long job_q(struct cachify_async *ac, int release, int id)
{
    struct rec r = { 0 };
    CALL(release ? job_release(ac, rec_val, &r, id, "x")
                 : job_is_locked(ac, rec_val, &r, id, "x"));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, "companion");
    return r.value;
}

START_TEST(test_decorator)
{
    brief_opts.exp_ms = bk_exp(_i, 100);
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, "d:", 0);
    struct job j1 = { .finish_later = 1 }, j2 = { 0 }, j3 = { 0 };
    struct job j4 = { .finish_later = 1 }, j5 = { .finish_later = 1 };
    struct job j6 = { 0 };

    CALL(job(ac, &j1, job_done, 7, "x"));
    ck_assert_int_eq(j1.ran, 0);
    RUN_UNTIL(j1.ran);
    ck_assert_str_eq(j1.key, "job-7-x");
    ck_assert_int_eq(j1.id, 7);
    ck_assert_str_eq(j1.what, "x");
    ck_assert(j1.token > 0);
    ck_assert_int_eq(job_q(ac, 0, 7), 1);
    ck_assert_int_eq(job_q(ac, 0, 8), 0);
    ck_assert_int_eq(IS_LOCKED(ac, "job-7-x"), 1); /* the prefix applies */

    CALL(job(ac, &j2, job_done, 7, "x")); /* held: LockError */
    RUN_UNTIL(j2.done_called);
    job_check(&j2, CACHIFY_LOCKED, 0);
    ck_assert_str_eq(j2.done_err, "job-7-x is already locked!");

    g_starting = 1;
    cachify_async_call_done(j1.call);
    g_starting = 0;
    ck_assert_int_eq(j1.done_called, 0);
    RUN_UNTIL(j1.done_called);
    job_check(&j1, CACHIFY_OK, 1);
    ck_assert_int_eq(job_q(ac, 0, 7), 0);

    CALL(job(ac, &j3, job_done, 7, "x")); /* body ends at once */
    RUN_UNTIL(j3.done_called);
    job_check(&j3, CACHIFY_OK, 1);

    /* The forced release companion frees it under a running body, which
     * then learns that it lost its lock. */
    CALL(job(ac, &j4, job_done, 9, "x"));
    RUN_UNTIL(j4.ran);
    ck_assert_int_eq(job_q(ac, 1, 9), 1);
    ck_assert_int_eq(job_q(ac, 0, 9), 0);
    ck_assert_int_eq(job_q(ac, 1, 9), 0);
    cachify_async_call_done(j4.call);
    RUN_UNTIL(j4.done_called);
    job_check(&j4, CACHIFY_LOST, 1);
    ck_assert_str_eq(j4.done_err, "job-9-x was no longer held at its "
                                  "release: it expired or was force-released "
                                  "while the body ran");

    /* A body that outlives exp while another handle takes the key: lost,
     * and the other holder keeps its lock. */
    struct job j9 = { .finish_later = 1 };
    struct cachify_async *other = open_h(g_url, "d:", 0);
    CALL(brief(ac, &j9, job_done, 1));
    RUN_UNTIL(j9.ran);
    uint64_t t9 = take(other, "brief-1", &(struct cachify_lock_opts){
                           .nowait = 0, .timeout_ms = 20000 });
    cachify_async_call_done(j9.call);
    RUN_UNTIL(j9.done_called);
    job_check(&j9, CACHIFY_LOST, 1);
    ck_assert_int_eq(IS_LOCKED(ac, "brief-1"), 1);
    ck_assert_int_eq(rel(other, "brief-1", t9), 1);
    cachify_async_close(other);

    /* A NUL inside the formatted key is refused, not cut short. */
    struct job j8 = { 0 };
    struct rec nr = { 0 };
    ck_assert_int_eq(nul_job(ac, &j8, job_done, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(nul_job_is_locked(ac, rec_val, &nr, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(nul_job_release(ac, rec_val, &nr, 0), CACHIFY_ERR_ARG);
    run_for(0.05);
    ck_assert_int_eq(j8.ran + j8.done_called + nr.called, 0);
    ck_assert_int_eq(IS_LOCKED(ac, "a"), 0);
    CALL(nul_job(ac, &j8, job_done, 'x'));
    RUN_UNTIL(j8.done_called);
    job_check(&j8, CACHIFY_OK, 1);

    struct job j7 = { 0 };
    struct rec n = { 0 };
    CALL(nightly(ac, &j7, job_done, 3));
    RUN_UNTIL(j7.done_called);
    job_check(&j7, CACHIFY_OK, 1);
    ck_assert_str_eq(j7.key, "nightly");
    ck_assert_int_eq(j7.id, 3);
    CALL(nightly_is_locked(ac, rec_val, &n, 4));
    RUN_UNTIL(n.called);
    rec_check(&n, CACHIFY_OK, "nightly_is_locked");
    ck_assert_int_eq(n.value, 0);

    /* The handle closes under a running body, then under an acquire. */
    CALL(job(ac, &j5, job_done, 5, "x"));
    RUN_UNTIL(j5.ran);
    cachify_async_close(ac);
    ck_assert_int_eq(j5.done_called, 0);
    cachify_async_call_done(j5.call);
    ck_assert_int_eq(j5.done_called, 0);
    RUN_UNTIL(j5.done_called);
    job_check(&j5, CACHIFY_ERR_CLOSED, 1);
    ac = open_h(g_url, "d:", 0);
    CALL(job(ac, &j6, job_done, 6, "x"));
    cachify_async_close(ac);
    job_check(&j6, CACHIFY_ERR_CLOSED, 0);
    backend_finish(_i);
}
END_TEST

/* ---- the async once decorator ---- */

/* @once(key='once-{id}-{what}'): skipped (1) or LOCKED when held. */
CACHIFY_ASYNC_ONCE_FN(once_quiet, (int id, const char *what), (id, what),
                      ("once-%d-%s", id, what), 0)
{
    struct job *j = cachify_async_call_ctx(call);
    j->ran++;
    j->id = id;
    snprintf(j->what, sizeof j->what, "%s", what);
    snprintf(j->key, sizeof j->key, "%s", cachify_async_call_key(call));
    j->token = cachify_async_call_token(call);
    if (j->finish_later)
        j->call = call;
    else
        cachify_async_call_done(call);
}

/* raise_on_locked is evaluated at each call. */
static int g_raise = 1;

CACHIFY_ASYNC_ONCE_FN(once_loud, (int id), (id), ("once-%d-x", id), g_raise)
{
    struct job *j = cachify_async_call_ctx(call);
    j->ran++;
    j->id = id;
    snprintf(j->key, sizeof j->key, "%s", cachify_async_call_key(call));
    cachify_async_call_done(call);
}

/* A declaration for a header compiles next to the definition. */
CACHIFY_ASYNC_ONCE_FN_DECL(once_quiet, (int id, const char *what));

static long long once_q(struct cachify_async *ac, int release, int id,
                        const char *what)
{
    struct rec r = { 0 };
    CALL(release ? once_quiet_release(ac, rec_val, &r, id, what)
                 : once_quiet_is_locked(ac, rec_val, &r, id, what));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_OK, "once companion");
    return r.value;
}

START_TEST(test_decorator_once)
{
    backend_start(_i, NULL);
    struct cachify_async *ac = open_h(g_url, "d:", 0);
    struct cachify_async *other = open_h(g_url, NULL, 0);
    struct job a = { .finish_later = 1 }, b = { 0 }, c = { 0 }, d = { 0 };
    struct job e = { 0 }, f = { 0 }, g = { .finish_later = 1 }, h = { 0 };
    struct job k = { 0 }, m = { 0 };

    /* Free: the body runs, with its arguments and key. */
    CALL(once_quiet(ac, &a, job_done, 1, "x"));
    ck_assert_int_eq(a.ran, 0);
    RUN_UNTIL(a.ran);
    ck_assert_str_eq(a.key, "once-1-x");
    ck_assert_int_eq(a.id, 1);
    ck_assert_str_eq(a.what, "x");
    ck_assert(a.token > 0);
    /* The companions format the key the same way; the prefix applies. */
    ck_assert_int_eq(once_q(ac, 0, 1, "x"), 1);
    ck_assert_int_eq(once_q(ac, 0, 1, "y"), 0);
    ck_assert_int_eq(once_q(ac, 0, 2, "x"), 0);
    ck_assert_int_eq(IS_LOCKED(other, "d:once-1-x"), 1);
    ck_assert_int_eq(IS_LOCKED(ac, "once-1-x"), 1);

    /* Held by the running body: a second call is skipped (1, the reason in
     * errstr) and its body never runs; raising, it is CACHIFY_LOCKED. */
    CALL(once_quiet(ac, &b, job_done, 1, "x"));
    CALL(once_loud(ac, &c, job_done, 1));
    RUN_UNTIL(b.done_called && c.done_called);
    job_check(&b, 1, 0);
    ck_assert_str_eq(b.done_err, "once-1-x is already locked!");
    ck_assert_int_eq(b.token, 0); /* ctx untouched by a skipped call */
    job_check(&c, CACHIFY_LOCKED, 0);
    ck_assert_str_eq(c.done_err, "once-1-x is already locked!");
    g_raise = 0; /* evaluated per call: now it skips */
    CALL(once_loud(ac, &d, job_done, 1));
    g_raise = 1;
    RUN_UNTIL(d.done_called);
    job_check(&d, 1, 0);
    ck_assert_str_eq(d.done_err, "once-1-x is already locked!");
    /* Other arguments are another key: runs meanwhile. */
    CALL(once_quiet(ac, &e, job_done, 2, "x"));
    RUN_UNTIL(e.done_called);
    job_check(&e, CACHIFY_OK, 1);
    ck_assert_str_eq(e.key, "once-2-x");
    ck_assert_int_eq(a.done_called, 0);
    ck_assert_int_eq(a.ran, 1);

    /* The first ends: released, and a new call runs again. */
    cachify_async_call_done(a.call);
    RUN_UNTIL(a.done_called);
    job_check(&a, CACHIFY_OK, 1);
    ck_assert_int_eq(once_q(ac, 0, 1, "x"), 0);
    CALL(once_quiet(ac, &f, job_done, 1, "x"));
    RUN_UNTIL(f.done_called);
    job_check(&f, CACHIFY_OK, 1);
    ck_assert(f.token > a.token);

    /* Held by anyone else (another handle's plain lock): skipped too; the
     * forced release companion frees it. */
    uint64_t t = take(other, "d:once-1-x", NULL);
    CALL(once_quiet(ac, &h, job_done, 1, "x"));
    RUN_UNTIL(h.done_called);
    job_check(&h, 1, 0);
    ck_assert_int_eq(once_q(ac, 1, 1, "x"), 1);
    ck_assert_int_eq(once_q(ac, 1, 1, "x"), 0);
    ck_assert_int_eq(rel(other, "d:once-1-x", t), 0);
    CALL(once_loud(ac, &k, job_done, 1));
    RUN_UNTIL(k.done_called);
    job_check(&k, CACHIFY_OK, 1);
    ck_assert_str_eq(k.key, "once-1-x");

    /* One attempt with the default options: the body's lock has the
     * default expiry (30 s), and a second call does not wait for it. */
    CALL(once_quiet(ac, &g, job_done, 3, "z"));
    RUN_UNTIL(g.ran);
    long long ms = PTTL(ac, "once-3-z");
    ck_assert_msg(ms > 0 && ms <= 30000, "pttl %lld", ms);
    CALL(once_quiet(ac, &m, job_done, 3, "z"));
    RUN_UNTIL(m.done_called);
    job_check(&m, 1, 0);

    /* The handle closes under a running once body. */
    cachify_async_close(ac);
    cachify_async_call_done(g.call);
    ck_assert_int_eq(g.done_called, 0);
    RUN_UNTIL(g.done_called);
    job_check(&g, CACHIFY_ERR_CLOSED, 1);
    ck_assert_int_eq(FORCE(other, "d:once-3-z"), 1);
    cachify_async_close(other);
    backend_finish(_i);
}
END_TEST

/* ---- py-cachify's keys ---- */

START_TEST(test_pycachify_keys)
{
    backend_start(_i, NULL);
    struct cachify_options po = { .pycachify_keys = 1 };
    struct cachify_async *py = NULL, *plain = open_h(g_url, NULL, 0);
    struct job a = { .finish_later = 1 }, b = { .finish_later = 1 };
    struct job c = { 0 };
    struct rec r = { 0 };
    char err[256];

    ck_assert_int_eq(cachify_async_open(&py, g_base, g_url, &po, err,
                                        sizeof err), CACHIFY_OK);
    /* @lock: PYC-<key>-lock, as py-cachify 3.x stores it. */
    CALL(job(py, &a, job_done, 7, "x"));
    RUN_UNTIL(a.ran);
    ck_assert_str_eq(a.key, "job-7-x-lock");
    ck_assert_int_eq(IS_LOCKED(plain, "PYC-job-7-x-lock"), 1);
    CALL(job_is_locked(py, rec_val, &r, 7, "x"));
    RUN_UNTIL(r.called);
    ck_assert_int_eq(r.value, 1);
    cachify_async_call_done(a.call);
    RUN_UNTIL(a.done_called);
    job_check(&a, CACHIFY_OK, 1);
    /* @once: PYC-<key>-once. */
    CALL(once_quiet(py, &b, job_done, 1, "x"));
    RUN_UNTIL(b.ran);
    ck_assert_int_eq(IS_LOCKED(plain, "PYC-once-1-x-once"), 1);
    cachify_async_call_done(b.call);
    RUN_UNTIL(b.done_called);
    job_check(&b, CACHIFY_OK, 1);
    /* Held by the "Python" side: refused with py-cachify 3.x's message. */
    uint64_t t = take(plain, "PYC-job-7-x-lock", NULL);
    CALL(job(py, &c, job_done, 7, "x"));
    RUN_UNTIL(c.done_called);
    job_check(&c, CACHIFY_LOCKED, 0);
    ck_assert_str_eq(c.done_err, "job-7-x-lock is already locked!");
    ck_assert_int_eq(rel(plain, "PYC-job-7-x-lock", t), 1);
    cachify_async_close(py);
    cachify_async_close(plain);
    backend_finish(_i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_async");
    TCase *tc = itest_tcase(s, "async");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, test_calls, 0, bk_count());
    tcase_add_loop_test(tc, test_wait, 0, bk_count());
    tcase_add_loop_test(tc, test_wait_does_not_block, 0, bk_count());
    tcase_add_loop_test(tc, test_fifo, 0, bk_count());
    tcase_add_loop_test(tc, test_session, 0, bk_count());
    tcase_add_loop_test(tc, test_close_in_callback, 0, bk_count());
    tcase_add_loop_test(tc, test_decorator, 0, bk_count());
    tcase_add_loop_test(tc, test_decorator_once, 0, bk_count());
    tcase_add_loop_test(tc, test_pycachify_keys, 0, bk_count());
    return bk_run(s);
}
