/* tests/integration/test_client_sync.c - the sync API of libcachify-client
 * against a real cachifyd, "mem:" and a real etcd cluster for the same
 * calls: the sync half of the client conformance suite.
 *
 * Owns: tests of every sync call on every backend (loop tests over
 * tests/integration/backends.h: _i BK_CACHIFYD runs on a daemon forked by
 * tests/support/testserver, BK_MEM on the embedded store, BK_ETCD on the
 * three-member cluster main() starts; the same assertions must hold on
 * all, messages included, and where a backend truly differs the
 * difference is a trait in backends.h).  What only a network backend has
 * (AUTH, URLs, timeouts, fake servers) is test_client_net.c.  Timing
 * checks have lower bounds only (plus a generous ceiling), for valgrind
 * runs.
 */
#include "tests/integration/syncitest.h"

static struct cachify_lock_opts lock_opts(int nowait, long long timeout_ms,
                                          long long exp_ms, int session)
{
    struct cachify_lock_opts o = {nowait, timeout_ms, exp_ms, session, 0};

    return o;
}

/* ---- every call, on both backends ---- */

START_TEST(acquire_release)
{
    struct cachify *a, *b;
    uint64_t t1 = 0, t2 = 0;

    backend_start(_i, NULL);
    a = open_c();
    b = open_c();
    ck_assert_int_eq(cachify_ping(a), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(a, "job"), 0);
    ck_assert_int_eq(cachify_acquire(a, "job", NULL, &t1), CACHIFY_OK);
    ck_assert_uint_gt(t1, 0);
    ck_assert_str_eq(cachify_errstr(a), "");
    ck_assert_int_eq(cachify_is_locked(b, "job"), 1);
    /* Not reentrant, whoever asks. */
    ck_assert_int_eq(cachify_acquire(a, "job", NULL, &t2), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(a), "job is already locked!");
    ck_assert_int_eq(cachify_acquire(b, "job", NULL, &t2), CACHIFY_LOCKED);
    ck_assert_uint_eq(t2, 0);
    ck_assert_str_eq(cachify_errstr(b), "job is already locked!");
    /* Errors are not sticky. */
    ck_assert_int_eq(cachify_is_locked(b, "job"), 1);
    ck_assert_str_eq(cachify_errstr(b), "");
    ck_assert_int_eq(cachify_release(b, "job", t1 + 1), 0);
    ck_assert_int_eq(cachify_release(b, "job", t1), 1);
    ck_assert_int_eq(cachify_release(a, "job", t1), 0);
    ck_assert_int_eq(cachify_acquire(b, "job", NULL, &t2), CACHIFY_OK);
    ck_assert_uint_gt(t2, t1); /* fencing tokens grow */
    ck_assert_int_eq(cachify_force_release(a, "job"), 1);
    ck_assert_int_eq(cachify_force_release(a, "job"), 0);
    ck_assert_int_eq(cachify_is_locked(a, "job"), 0);
    cachify_close(a);
    cachify_close(b);
    cachify_close(NULL);
    backend_finish(_i);
}
END_TEST

START_TEST(expiry)
{
    long long slack = BACKENDS[_i].pttl_slack_ms;
    struct cachify_options o = {0, 0, bk_exp(_i, 1500), NULL, 0};
    struct cachify_lock_opts ex = lock_opts(1, 0, bk_exp(_i, 800), 0);
    struct cachify_lock_opts none = lock_opts(1, 0, CACHIFY_EXP_NONE, 0);
    struct cachify *a, *d;
    uint64_t t;
    long long ms = 0;

    backend_start(_i, NULL);
    a = open_c();
    d = open_opts(&o);
    ck_assert_int_eq(cachify_acquire(a, "ex", &ex, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pttl(a, "ex", &ms), CACHIFY_OK);
    ck_assert(ms > 0 && ms <= bk_exp(_i, 800));
    ck_assert_int_eq(cachify_extend(a, "ex", t, 60000), 1);
    ck_assert_int_eq(cachify_pttl(a, "ex", &ms), CACHIFY_OK);
    ck_assert_msg(ms > 60000 - slack && ms <= 60000, "pttl %lld", ms);
    ck_assert_int_eq(cachify_extend(a, "ex", t + 1, 60000), 0);
    ck_assert_int_eq(cachify_extend(a, "ex", t, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_extend(a, "nothing", t, 10), 0);
    ck_assert_int_eq(cachify_acquire(a, "forever", &none, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pttl(a, "forever", &ms), CACHIFY_OK);
    ck_assert_int_eq(ms, -1);
    ck_assert_int_eq(cachify_pttl(a, "nothing", &ms), CACHIFY_OK);
    ck_assert_int_eq(ms, -2);
    /* CACHIFY_EXP_DEFAULT: 30 s (py-cachify), or the handle's default. */
    ck_assert_int_eq(cachify_acquire(a, "dflt", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pttl(a, "dflt", &ms), CACHIFY_OK);
    ck_assert_msg(ms > 30000 - slack && ms <= 30000, "pttl %lld", ms);
    ck_assert_int_eq(cachify_acquire(d, "dflt2", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pttl(d, "dflt2", &ms), CACHIFY_OK);
    ck_assert(ms > 0 && ms <= bk_exp(_i, 1500));
    cachify_close(a);
    cachify_close(d);
    backend_finish(_i);
}
END_TEST

/* A zeroed lock option struct, or one naming only the wait, takes a lock
 * that expires with the handle's default (30 s); a lock without expiry is
 * asked for by name, and a negative wait is refused, -1 included. */
START_TEST(zero_options_expire)
{
    struct cachify_lock_opts zero = {0};
    struct cachify_lock_opts wait2s = {.nowait = 0, .timeout_ms = 2000};
    struct cachify_lock_opts minus1 = {.nowait = 0, .timeout_ms = -1};
    struct cachify *a;
    uint64_t t;
    long long ms = 0;

    backend_start(_i, NULL);
    a = open_c();
    ck_assert_int_eq(cachify_acquire(a, "z0", &zero, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pttl(a, "z0", &ms), CACHIFY_OK);
    ck_assert_msg(ms > 30000 - BACKENDS[_i].pttl_slack_ms && ms <= 30000,
                  "pttl %lld", ms);
    ck_assert_int_eq(cachify_acquire(a, "z0", &zero, &t), CACHIFY_LOCKED);
    ck_assert_int_eq(cachify_acquire(a, "z1", &wait2s, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pttl(a, "z1", &ms), CACHIFY_OK);
    ck_assert_msg(ms > 30000 - BACKENDS[_i].pttl_slack_ms && ms <= 30000,
                  "pttl %lld", ms);
    ck_assert_int_eq(cachify_acquire(a, "z2", &minus1, &t), CACHIFY_ERR_ARG);
    ck_assert_str_eq(cachify_errstr(a),
                     "bad timeout_ms -1: expected milliseconds or "
                     "CACHIFY_FOREVER (a negative is not a wait)");
    ck_assert_int_eq(cachify_is_locked(a, "z2"), 0);
    cachify_close(a);
    backend_finish(_i);
}
END_TEST

START_TEST(waits)
{
    long long short_ms = bk_exp(_i, 300);
    struct cachify_lock_opts short_exp = lock_opts(1, 0, short_ms, 0);
    struct cachify_lock_opts held = lock_opts(1, 0, CACHIFY_EXP_NONE, 0);
    struct cachify_lock_opts wait_long = lock_opts(0, 20000, 5000, 0);
    struct cachify_lock_opts wait_ever = lock_opts(0, CACHIFY_FOREVER, 5000, 0);
    struct cachify_lock_opts wait_short = lock_opts(0, 150, 5000, 0);
    struct cachify_lock_opts wait_zero = lock_opts(0, 0, 5000, 0);
    /* The io timeout bounds ordinary replies, not a wait's. */
    struct cachify_options quick = {0, BACKENDS[_i].quick_io_ms, 0, NULL, 0};
    struct cachify *a, *b;
    uint64_t t1, t2;
    double start;

    backend_start(_i, NULL);
    a = open_c();
    b = open_opts(&quick);
    /* Granted when the holder's lock expires (short_ms after a grant that
     * comes after `start`). */
    start = mono_s();
    ck_assert_int_eq(cachify_acquire(a, "w", &short_exp, &t1), CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(b, "w", &wait_long, &t2), CACHIFY_OK);
    ck_assert(mono_s() - start >= (double)short_ms / 1000 - 0.01);
    ck_assert_uint_gt(t2, t1);
    ck_assert_int_eq(cachify_release(b, "w", t2), 1);
    ck_assert_int_eq(cachify_acquire(a, "w", &short_exp, &t1), CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(b, "w", &wait_ever, &t2), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(b, "w", t2), 1);
    /* Times out when the holder keeps it. */
    ck_assert_int_eq(cachify_acquire(a, "w", &held, &t1), CACHIFY_OK);
    start = mono_s();
    ck_assert_int_eq(cachify_acquire(b, "w", &wait_short, &t2), CACHIFY_TIMEOUT);
    ck_assert(mono_s() - start >= 0.14);
    ck_assert(mono_s() - start < 15);
    ck_assert_str_eq(cachify_errstr(b), "w is already locked!");
    /* A wait of 0 is one attempt. */
    ck_assert_int_eq(cachify_acquire(b, "w", &wait_zero, &t2), CACHIFY_LOCKED);
    ck_assert_int_eq(cachify_ping(b), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(a, "w", t1), 1);
    cachify_close(a);
    cachify_close(b);
    backend_finish(_i);
}
END_TEST

/* A token release after expiry never frees the new holder's lock. */
START_TEST(release_after_expiry)
{
    struct cachify_lock_opts short_exp = lock_opts(1, 0, bk_exp(_i, 100), 0);
    struct cachify_lock_opts wait = lock_opts(0, 20000, 10000, 0);
    struct cachify *a, *b;
    uint64_t old, now;

    backend_start(_i, NULL);
    a = open_c();
    b = open_c();
    ck_assert_int_eq(cachify_acquire(a, "fence", &short_exp, &old), CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(b, "fence", &wait, &now), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(a, "fence", old), 0);
    ck_assert_int_eq(cachify_extend(a, "fence", old, 1000), 0);
    ck_assert_int_eq(cachify_is_locked(a, "fence"), 1);
    ck_assert_int_eq(cachify_release(b, "fence", now), 1);
    cachify_close(a);
    cachify_close(b);
    backend_finish(_i);
}
END_TEST

/* A decorated body that outlives its lock's exp while another handle takes
 * the key: CACHIFY_LOST, the body's result still delivered, the other
 * holder's lock untouched. */
static struct cachify *g_other;
static uint64_t g_other_token;
static struct cachify_lock_opts short_opts = {.exp_ms = 100};

CACHIFY_LOCKED_FN(int, outlive, (int n), (n), ("outlive-%d", n), &short_opts)
{
    struct cachify_lock_opts wait = {.nowait = 0, .timeout_ms = 20000};

    /* Granted when the body's own lock expires. */
    ck_assert_int_eq(cachify_acquire(g_other, "outlive-1", &wait,
                                     &g_other_token), CACHIFY_OK);
    return n + 1;
}

START_TEST(decorated_lost_lock)
{
    struct cachify *a;
    int r = 0;

    short_opts.exp_ms = bk_exp(_i, 100);
    backend_start(_i, NULL);
    a = open_c();
    g_other = open_c();
    ck_assert_int_eq(outlive(a, &r, 1), CACHIFY_LOST);
    ck_assert_int_eq(r, 2);
    ck_assert_str_eq(cachify_errstr(a),
                     "outlive-1 was no longer held at its release: it "
                     "expired or was force-released while the body ran");
    ck_assert_int_eq(cachify_is_locked(a, "outlive-1"), 1);
    ck_assert_int_eq(cachify_release(g_other, "outlive-1", g_other_token), 1);
    ck_assert_int_eq(outlive_is_locked(a, 1), 0);
    cachify_close(g_other);
    cachify_close(a);
    backend_finish(_i);
}
END_TEST

START_TEST(session_locks)
{
    struct cachify_lock_opts sess = lock_opts(1, 0, CACHIFY_EXP_NONE, 1);
    struct cachify_lock_opts wait = lock_opts(0, 20000, 5000, 0);
    struct cachify *a, *b;
    uint64_t t, t2;

    backend_start(_i, NULL);
    a = open_c();
    b = open_c();
    ck_assert_int_eq(cachify_acquire(a, "sess", &sess, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(b, "sess"), 1);
    cachify_close(a);
    /* The server frees it when it sees the close: wait for it. */
    ck_assert_int_eq(cachify_acquire(b, "sess", &wait, &t2), CACHIFY_OK);
    ck_assert_uint_gt(t2, t);
    cachify_close(b);
    backend_finish(_i);
}
END_TEST

START_TEST(prefix_and_keys)
{
    struct cachify_options po = {0, 0, 0, "app:", 0};
    static const char odd[] = "a key with spaces\r\n\"quotes\" \x01\xff end";
    struct cachify *p, *plain;
    uint64_t t, t2;

    backend_start(_i, NULL);
    p = open_opts(&po);
    plain = open_c();
    ck_assert_int_eq(cachify_acquire(p, "k", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(plain, "app:k"), 1);
    ck_assert_int_eq(cachify_is_locked(plain, "k"), 0);
    ck_assert_int_eq(cachify_acquire(plain, "app:k", NULL, &t2), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(plain), "app:k is already locked!");
    ck_assert_int_eq(cachify_acquire(p, "k", NULL, &t2), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(p), "k is already locked!"); /* no prefix */
    ck_assert_int_eq(cachify_release(p, "k", t), 1);
    /* Binary-safe keys (RESP framing). */
    ck_assert_int_eq(cachify_acquire(p, odd, NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(p, odd, NULL, &t2), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(p),
                     "a key with spaces\r\n\"quotes\" \x01\xff end is already locked!");
    ck_assert_int_eq(cachify_is_locked(plain, "app:a key with spaces"), 0);
    ck_assert_int_eq(cachify_release(p, odd, t), 1);
    cachify_close(p);
    cachify_close(plain);
    backend_finish(_i);
}
END_TEST

/* py-cachify-compatible keys: a decorated call on a pycachify_keys handle
 * holds PYC-<key>-lock, as a py-cachify 3.x program would, which a plain
 * handle (IS_LOCKED on the raw key) sees and contends for. */
static struct cachify *g_plain;
static int g_raw_locked;

CACHIFY_LOCKED_FN(int, py_job, (int id, const char *what), (id, what),
                  ("job-%d-%s", id, what), NULL)
{
    (void)what;
    g_raw_locked = cachify_is_locked(g_plain, "PYC-job-7-x-lock");
    return id;
}

START_TEST(pycachify_keys)
{
    struct cachify_options po = {.pycachify_keys = 1};
    struct cachify *py;
    uint64_t t;
    int r = 0;

    backend_start(_i, NULL);
    py = open_opts(&po);
    g_plain = open_c();
    g_raw_locked = -1;
    ck_assert_int_eq(py_job(py, &r, 7, "x"), CACHIFY_OK);
    ck_assert_int_eq(r, 7);
    ck_assert_int_eq(g_raw_locked, 1);
    ck_assert_int_eq(cachify_is_locked(g_plain, "PYC-job-7-x-lock"), 0);
    ck_assert_int_eq(cachify_acquire(g_plain, "PYC-job-7-x-lock", NULL, &t),
                     CACHIFY_OK);
    ck_assert_int_eq(py_job(py, &r, 7, "x"), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(py), "job-7-x-lock is already locked!");
    ck_assert_int_eq(py_job_is_locked(py, 7, "x"), 1);
    ck_assert_int_eq(cachify_release(g_plain, "PYC-job-7-x-lock", t), 1);
    ck_assert_int_eq(py_job_is_locked(py, 7, "x"), 0);
    cachify_close(g_plain);
    cachify_close(py);
    backend_finish(_i);
}
END_TEST

START_TEST(bad_arguments)
{
    struct cachify_lock_opts bad_exp = lock_opts(1, 0, -5, 0);
    struct cachify_lock_opts bad_wait = lock_opts(0, -7, 1000, 0);
    struct cachify_lock_opts huge = lock_opts(1, 0, 1LL << 50, 0);
    struct cachify_options bad_o = {-1, 0, 0, NULL, 0};
    struct cachify *c, *x = (struct cachify *)1;
    char *long_key = malloc(CACHIFY_KEY_MAX + 2);
    char err[128];
    uint64_t t;
    long long ms;

    backend_start(_i, NULL);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "", NULL, &t), CACHIFY_ERR_ARG);
    ck_assert_str_eq(cachify_errstr(c), "empty key");
    ck_assert_int_eq(cachify_acquire(c, NULL, NULL, &t), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_acquire(c, "k", NULL, NULL), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_acquire(c, "k", &bad_exp, &t), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_acquire(c, "k", &bad_wait, &t), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_acquire(c, "k", &huge, &t), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_release(c, "k", 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pttl(c, "k", NULL), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_is_locked(NULL, "k"), CACHIFY_ERR_ARG);
    ck_assert_ptr_nonnull(long_key);
    memset(long_key, 'x', CACHIFY_KEY_MAX + 1);
    long_key[CACHIFY_KEY_MAX + 1] = '\0';
    ck_assert_int_eq(cachify_is_locked(c, long_key), CACHIFY_ERR_ARG);
    /* Still fine after all that. */
    ck_assert_int_eq(cachify_pttl(c, "k", &ms), CACHIFY_OK);
    ck_assert_int_eq(cachify_open(&x, g_url, &bad_o, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_ptr_null(x);
    free(long_key);
    cachify_close(c);
    backend_finish(_i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_sync");
    TCase *both = tcase_create("every_backend");

    tcase_add_checked_fixture(both, itest_setup, itest_teardown);
    tcase_set_timeout(both, 120);
    tcase_add_loop_test(both, acquire_release, 0, bk_count());
    tcase_add_loop_test(both, expiry, 0, bk_count());
    tcase_add_loop_test(both, zero_options_expire, 0, bk_count());
    tcase_add_loop_test(both, waits, 0, bk_count());
    tcase_add_loop_test(both, release_after_expiry, 0, bk_count());
    tcase_add_loop_test(both, decorated_lost_lock, 0, bk_count());
    tcase_add_loop_test(both, session_locks, 0, bk_count());
    tcase_add_loop_test(both, prefix_and_keys, 0, bk_count());
    tcase_add_loop_test(both, pycachify_keys, 0, bk_count());
    tcase_add_loop_test(both, bad_arguments, 0, bk_count());
    suite_add_tcase(s, both);
    return bk_run(s);
}
