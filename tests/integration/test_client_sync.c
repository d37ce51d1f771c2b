/* tests/integration/test_client_sync.c - the sync API of libcachify-client
 * against a real cachifyd, "mem:" and a real etcd cluster for the same
 * calls: the sync half of the client conformance suite.
 *
 * Owns: tests of every sync call on every backend (loop tests over
 * tests/integration/backends.h: _i BK_CACHIFYD runs on a daemon forked by
 * tests/support/testserver, BK_MEM on the embedded store, BK_ETCD on the
 * three-member cluster main() starts; the same assertions must hold on
 * all, messages included, and where a backend truly differs the
 * difference is a trait in backends.h), then what only
 * a network backend has: AUTH, URLs, a daemon that goes away and comes back,
 * connect and read timeouts, a Unix socket, and fake servers in a thread
 * that answer junk, an error, or a reply of the wrong type.  Timing checks
 * have lower bounds only (plus a generous ceiling), for valgrind runs.
 */
#include "tests/integration/itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>

#include "client/cachify.h"
#include "client/url.h"
#include "tests/integration/backends.h"

static char g_url[512];

/* Starts a daemon for BK_CACHIFYD (extra arguments may be NULL) and sets
 * g_url to reach it; "mem:" for BK_MEM; the suite's cluster, with a prefix
 * of the test's own, for BK_ETCD. */
static void backend_start(int i, const char *const *extra)
{
    if (i == BK_MEM) {
        snprintf(g_url, sizeof g_url, "mem:");
        return;
    }
    if (i == BK_ETCD) {
        bk_etcd_url(NULL, g_url, sizeof g_url);
        return;
    }
    srv_start(extra);
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
}

static void backend_finish(int i)
{
    if (i == BK_CACHIFYD)
        srv_finish();
}

static struct cachify *open_opts(const struct cachify_options *o)
{
    struct cachify *c = NULL;
    char err[256];
    int rc = cachify_open(&c, g_url, o, err, sizeof err);

    if (rc != CACHIFY_OK)
        ck_abort_msg("cachify_open(%s): %s: %s", g_url, cachify_status_name(rc),
                     err);
    return c;
}

static struct cachify *open_c(void)
{
    return open_opts(NULL);
}

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

/* ---- network only ---- */

START_TEST(server_limits_are_server_errors)
{
    char key[2000];
    uint64_t t;
    struct cachify *c;

    backend_start(0, NULL);
    c = open_c();
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    ck_assert_int_eq(cachify_acquire(c, key, NULL, &t), CACHIFY_ERR_SERVER);
    ck_assert_msg(strncmp(cachify_errstr(c), "LIMIT ", 6) == 0, "%s",
                  cachify_errstr(c));
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK); /* same connection, fine */
    cachify_close(c);
    backend_finish(0);
}
END_TEST

START_TEST(auth)
{
    struct cachify *c = NULL;
    char err[256];
    uint64_t t;

    SRV_START("--requirepass", "s3cr:t@x");
    snprintf(g_url, sizeof g_url, "cachify://:s3cr:t@x@127.0.0.1:%d",
             g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "auth", NULL, &t), CACHIFY_OK);
    cachify_close(c);
    snprintf(g_url, sizeof g_url, "cachify://:wrong@127.0.0.1:%d", g_ts.port);
    ck_assert_int_eq(cachify_open(&c, g_url, NULL, err, sizeof err),
                     CACHIFY_ERR_AUTH);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "WRONGPASS") != NULL, "%s", err);
    /* No password: the first command says so. */
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "auth2", NULL, &t), CACHIFY_ERR_AUTH);
    ck_assert_msg(strstr(cachify_errstr(c), "NOAUTH") != NULL, "%s",
                  cachify_errstr(c));
    cachify_close(c);
    srv_finish();
    /* A password for a server that has none is an error at open too. */
    SRV_START("--loglevel", "warning");
    snprintf(g_url, sizeof g_url, "cachify://:pw@127.0.0.1:%d", g_ts.port);
    ck_assert_int_eq(cachify_open(&c, g_url, NULL, err, sizeof err),
                     CACHIFY_ERR_AUTH);
    srv_finish();
}
END_TEST

/* Takes the one client slot of a --maxclients 1 --requirepass daemon: a
 * connection it answers (PONG, not -LIMIT: the slot may still be taken by
 * the start-up probe of tests/support/testserver for a moment). */
static int hold_only_slot(void)
{
    char buf[256];

    for (int i = 0; i < 200; i++) {
        int fd = tc_connect(&g_ts);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(tc_send(fd, "PING\r\n"), 0);
        if (tc_read_reply(fd, buf, sizeof buf) > 0 &&
            strncmp(buf, "-LIMIT", 6) != 0)
            return fd;
        close(fd);
        usleep(20 * 1000);
    }
    ck_abort_msg("could not take the daemon's only client slot");
    return -1;
}

/* A server that refuses for another reason than the password (here
 * -LIMIT max number of clients reached, as its reply to AUTH) is not
 * CACHIFY_ERR_AUTH: the password may well be right. */
START_TEST(auth_refused_not_auth)
{
    struct cachify *c = (struct cachify *)1;
    char err[256] = "";
    int held, rc;

    SRV_START("--requirepass", "s3cret", "--maxclients", "1");
    held = hold_only_slot();
    snprintf(g_url, sizeof g_url, "cachify://:s3cret@127.0.0.1:%d",
             g_ts.port);
    rc = cachify_open(&c, g_url, NULL, err, sizeof err);
    ck_assert_msg(rc == CACHIFY_ERR_SERVER || rc == CACHIFY_ERR_IO,
                  "got %s (%s)", cachify_status_name(rc), err);
    ck_assert_ptr_null(c);
    if (rc == CACHIFY_ERR_SERVER)
        ck_assert_msg(strstr(err, "LIMIT") != NULL, "%s", err);
    /* Once the slot is free the same URL works. */
    close(held);
    for (int i = 0; i < 100; i++) {
        if ((rc = cachify_open(&c, g_url, NULL, err, sizeof err)) ==
            CACHIFY_OK)
            break;
        ck_assert_int_ne(rc, CACHIFY_ERR_AUTH);
        usleep(50 * 1000);
    }
    ck_assert_msg(rc == CACHIFY_OK, "%s", err);
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK);
    cachify_close(c);
    srv_finish();
}
END_TEST

START_TEST(urls)
{
    static const char *const bad[] = {
        "redis://127.0.0.1", "cachify://", "cachify://:7379",
        "cachify://host:0", "cachify://host:65536", "cachify://host:12a",
        "cachify://host:", "cachify://[::1", "cachify://[::1]x",
        "cachify://[nothex]:1", "cachify://::1:7379", "cachify://h/db",
        "cachify://h?x=1", "cachify://user:pw@host", "cachify://bad host",
        "unix://relative", "unix://", "mem", "mem:x",
    };
    struct cachify_url u;
    struct cachify *c = (struct cachify *)1;
    char err[256], path[200];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(cachify_open(&c, bad[i], NULL, err, sizeof err) ==
                          CACHIFY_ERR_ARG, "%s accepted", bad[i]);
        ck_assert_ptr_null(c);
        ck_assert_msg(strncmp(err, "bad URL", 7) == 0, "%s: %s", bad[i], err);
    }
    /* No place for the handle: refused, as cachify_async_open does. */
    err[0] = '\0';
    ck_assert_int_eq(cachify_open(NULL, "mem:", NULL, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(cachify_open(NULL, "cachify://127.0.0.1:1", NULL, NULL,
                                  0), CACHIFY_ERR_ARG);
    /* The message never shows a password. */
    cachify_open(&c, "cachify://user:hunter2@host", NULL, err, sizeof err);
    ck_assert_msg(strstr(err, "hunter2") == NULL, "%s", err);
    memset(path, 'p', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    snprintf(err, sizeof err, "unix://%s", path);
    ck_assert_int_eq(cachify_url_parse(err, &u, NULL, 0), CACHIFY_ERR_ARG);
    /* Good ones. */
    ck_assert_int_eq(cachify_url_parse("cachify://[::1]:7000", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_TCP);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 7000);
    ck_assert_int_eq(cachify_url_parse("cachify://:p@w@db.example:1/", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_str_eq(u.password, "p@w");
    ck_assert_str_eq(u.host, "db.example");
    ck_assert_int_eq(cachify_url_parse("cachify://localhost", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.port, 7379);
    ck_assert_str_eq(u.password, "");
    ck_assert_int_eq(cachify_url_parse("unix:///run/c.sock", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_str_eq(u.path, "/run/c.sock");
    ck_assert_int_eq(cachify_url_parse(NULL, &u, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_MEM);
    ck_assert_int_eq(cachify_url_parse("", &u, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_MEM);
}
END_TEST

START_TEST(unix_and_ipv6)
{
    struct cachify *c;
    uint64_t t;

    srv_init();
    srv_run((const char *const[]){"--unixsocket", g_ts.sock_path, "--bind",
                                  "127.0.0.1 ::1", NULL});
    snprintf(g_url, sizeof g_url, "unix://%s", g_ts.sock_path);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "u", NULL, &t), CACHIFY_OK);
    cachify_close(c);
    snprintf(g_url, sizeof g_url, "cachify://[::1]:%d", g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_is_locked(c, "u"), 1);
    cachify_close(c);
    srv_finish();
}
END_TEST

/* The daemon stops: CACHIFY_ERR_IO; it comes back: the next call works. */
START_TEST(server_gone_and_back)
{
    struct cachify *c;
    uint64_t t;

    backend_start(0, NULL);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "g", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(ts_stop(&g_ts), 0);
    ck_assert_int_eq(cachify_is_locked(c, "g"), CACHIFY_ERR_IO);
    ck_assert_str_ne(cachify_errstr(c), "");
    ck_assert_int_eq(cachify_ping(c), CACHIFY_ERR_IO); /* connect refused */
    ck_assert_msg(strstr(cachify_errstr(c), "connect") != NULL, "%s",
                  cachify_errstr(c));
    srv_run(NULL);
    ck_assert_int_eq(cachify_is_locked(c, "g"), 0);
    ck_assert_str_eq(cachify_errstr(c), "");
    ck_assert_int_eq(cachify_acquire(c, "g", NULL, &t), CACHIFY_OK);
    cachify_close(c);
    srv_finish();
}
END_TEST

/* The daemon closes an idle connection (--timeout 1): the next call
 * notices before sending and reconnects, so it succeeds. */
START_TEST(idle_timeout_reconnects)
{
    struct cachify *c;
    uint64_t t;

    SRV_START("--timeout", "1");
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "idle", NULL, &t), CACHIFY_OK);
    usleep(2500 * 1000);
    ck_assert_msg(cachify_is_locked(c, "idle") == 1, "%s", cachify_errstr(c));
    ck_assert_str_eq(cachify_errstr(c), "");
    usleep(2500 * 1000);
    ck_assert_msg(cachify_ping(c) == CACHIFY_OK, "%s", cachify_errstr(c));
    usleep(2500 * 1000);
    ck_assert_msg(cachify_release(c, "idle", t) == 1, "%s",
                  cachify_errstr(c));
    cachify_close(c);
    srv_finish();
}
END_TEST

/* A listening socket on 127.0.0.1 with a free port; *port set. */
static int listener(int backlog, int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, backlog), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

START_TEST(connect_timeout)
{
    struct cachify_options o = {200, 0, 0, NULL, 0};
    struct cachify *c = NULL;
    char err[256];
    int port, lfd, filler;
    double start;

    /* Nothing listens: refused at once. */
    lfd = listener(1, &port);
    close(lfd);
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    ck_assert_int_eq(cachify_open(&c, g_url, &o, err, sizeof err),
                     CACHIFY_ERR_IO);
    ck_assert_msg(strstr(err, "refused") != NULL, "%s", err);
    /* A listener whose accept queue is full drops SYNs: the connect hangs
     * until the connect timeout. */
    lfd = listener(0, &port);
    filler = socket(AF_INET, SOCK_STREAM, 0);
    {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

        ck_assert_int_eq(connect(filler, (struct sockaddr *)&sa, sizeof sa), 0);
    }
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    start = mono_s();
    ck_assert_int_eq(cachify_open(&c, g_url, &o, err, sizeof err),
                     CACHIFY_ERR_IO);
    ck_assert(mono_s() - start >= 0.19);
    ck_assert(mono_s() - start < 10);
    ck_assert_msg(strstr(err, "timed out") != NULL, "%s", err);
    close(filler);
    close(lfd);
}
END_TEST

/* Keepalive on the client's socket, so a WAIT FOREVER on a server that
 * vanished without a FIN ends; no Nagle delay on TCP. */
START_TEST(socket_options)
{
    struct cachify *c;
    int port, lfd = listener(4, &port), sfd;

    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    c = open_c(); /* connected (the backlog accepts it) */
    sfd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(sfd, 0);
    ck_assert_int_eq(tc_peer_sockopt(port, SOL_SOCKET, SO_KEEPALIVE), 1);
    ck_assert_int_eq(tc_peer_sockopt(port, IPPROTO_TCP, TCP_NODELAY), 1);
    cachify_close(c);
    close(sfd);
    close(lfd);
}
END_TEST

/* ---- fake servers ---- */

struct fake {
    int lfd;
    const char *reply; /* written after each request; NULL: never answer */
    int conns;         /* connections to serve */
};

static void *fake_main(void *p)
{
    struct fake *f = p;

    for (int i = 0; i < f->conns; i++) {
        int fd = accept(f->lfd, NULL, NULL);
        char buf[4096];

        if (fd < 0)
            break;
        /* One request per connection (the client drops it on error). */
        if (recv(fd, buf, sizeof buf, 0) > 0 && f->reply != NULL)
            tc_send(fd, f->reply);
        /* Wait for the client to hang up before the next accept. */
        while (recv(fd, buf, sizeof buf, 0) > 0)
            ;
        close(fd);
    }
    return NULL;
}

/* Runs `calls` pings-or-acquires against a fake server answering reply. */
static void fake_run(const char *reply, int want, int conns,
                     const struct cachify_options *o)
{
    struct fake f = {-1, reply, conns};
    pthread_t th;
    struct cachify *c;
    int port;
    uint64_t t;

    f.lfd = listener(4, &port);
    pthread_create(&th, NULL, fake_main, &f);
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    c = open_opts(o);
    for (int i = 0; i < conns; i++) {
        int rc = cachify_acquire(c, "k", NULL, &t);

        ck_assert_msg(rc == want, "reply \"%s\": got %s (%s)", itest_esc(reply ? reply : "(none)"),
                      cachify_status_name(rc), cachify_errstr(c));
        ck_assert_str_ne(cachify_errstr(c), "");
    }
    cachify_close(c);
    pthread_join(th, NULL);
    close(f.lfd);
}

START_TEST(fake_servers)
{
    struct cachify_options quick = {0, 200, 0, NULL, 0};

    /* Junk: a protocol error; the connection is dropped and the next call
     * reconnects (the fake server serves a second connection). */
    fake_run("hello there\r\n", CACHIFY_ERR_PROTO, 2, NULL);
    fake_run("$99999999999\r\n", CACHIFY_ERR_PROTO, 1, NULL);
    fake_run("*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n",
             CACHIFY_ERR_PROTO, 1, NULL);
    /* A nil where a token belongs is not an error reply (hiredis #242). */
    fake_run("$-1\r\n", CACHIFY_ERR_PROTO, 2, NULL);
    fake_run("+OK\r\n", CACHIFY_ERR_PROTO, 1, NULL);
    fake_run(":0\r\n", CACHIFY_ERR_PROTO, 1, NULL);
    /* Error replies are mapped by their code. */
    fake_run("-ERR something odd\r\n", CACHIFY_ERR_SERVER, 1, NULL);
    fake_run("-LOCKED k is already locked!\r\n", CACHIFY_LOCKED, 1, NULL);
    /* Closes without a word; never answers (the io timeout). */
    fake_run("", CACHIFY_ERR_IO, 1, NULL);
    fake_run(NULL, CACHIFY_ERR_IO, 1, &quick);
}
END_TEST

/* A server that answers the first connection's request, then writes an
 * unsolicited error line and closes it while the client is idle; the
 * second connection gets a normal reply. */
struct stray {
    int lfd;
    int sent; /* the stray line has been written and the socket closed */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *stray_main(void *p)
{
    struct stray *f = p;
    char buf[4096];
    int fd = accept(f->lfd, NULL, NULL);

    if (fd >= 0) {
        if (recv(fd, buf, sizeof buf, 0) > 0)
            tc_send(fd, ":0\r\n");
        tc_send(fd, "-DENIED go away\r\n");
        close(fd);
    }
    pthread_mutex_lock(&f->mu);
    f->sent = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    fd = accept(f->lfd, NULL, NULL);
    if (fd >= 0) {
        if (recv(fd, buf, sizeof buf, 0) > 0)
            tc_send(fd, ":1\r\n");
        while (recv(fd, buf, sizeof buf, 0) > 0)
            ;
        close(fd);
    }
    return NULL;
}

START_TEST(stray_line_then_close)
{
    struct stray f = {-1, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    pthread_t th;
    struct cachify *c;
    int port;

    f.lfd = listener(4, &port);
    pthread_create(&th, NULL, stray_main, &f);
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    c = open_c();
    ck_assert_int_eq(cachify_is_locked(c, "k"), 0);
    pthread_mutex_lock(&f.mu);
    while (!f.sent)
        pthread_cond_wait(&f.cv, &f.mu);
    pthread_mutex_unlock(&f.mu);
    usleep(100 * 1000); /* let the bytes and the FIN arrive */
    /* Not "DENIED" read as this call's reply, not ERR_IO: a new
     * connection, and its answer. */
    ck_assert_msg(cachify_is_locked(c, "k") == 1, "%s", cachify_errstr(c));
    cachify_close(c);
    pthread_join(th, NULL);
    close(f.lfd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_sync");
    TCase *both = tcase_create("every_backend");
    TCase *net = tcase_create("network");

    tcase_add_checked_fixture(both, itest_setup, itest_teardown);
    tcase_add_checked_fixture(net, itest_setup, itest_teardown);
    tcase_set_timeout(both, 120);
    tcase_set_timeout(net, 120);
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
    tcase_add_test(net, server_limits_are_server_errors);
    tcase_add_test(net, auth);
    tcase_add_test(net, auth_refused_not_auth);
    tcase_add_test(net, urls);
    tcase_add_test(net, unix_and_ipv6);
    tcase_add_test(net, server_gone_and_back);
    tcase_add_test(net, idle_timeout_reconnects);
    tcase_add_test(net, stray_line_then_close);
    tcase_add_test(net, connect_timeout);
    tcase_add_test(net, fake_servers);
    tcase_add_test(net, socket_options);
    suite_add_tcase(s, both);
    suite_add_tcase(s, net);
    return bk_run(s);
}
