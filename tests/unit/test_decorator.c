/* tests/unit/test_decorator.c - Check suite for the decorator macros,
 * guards and scoped locks of cachify.h (client/scoped.c), on "mem:".
 *
 * Owns: tests of key formatting from a decorated function's arguments, its
 * _is_locked/_release companions, once() with and without raise_on_locked,
 * cachify_with_lock, and guards released on every way out of a scope
 * (return, break, goto), and CACHIFY_LOST from each of them when the lock
 * was gone at the release.  The embedded backend keeps them free of
 * sockets; tests/integration/test_client_sync.c runs the same calls on
 * cachifyd.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cachify.h"

/* The handle the decorated bodies look at (one thread: one handle). */
static struct cachify *g_c;
static int g_body_runs;
static int g_seen_locked; /* what the body saw from its own companion */

static void open_mem(struct cachify **c, const char *prefix)
{
    struct cachify_options o = {0, 0, 0, prefix, 0};
    char err[128];

    ck_assert_int_eq(cachify_open(c, "mem:", &o, err, sizeof err), CACHIFY_OK);
}

static void setup(void)
{
    open_mem(&g_c, NULL);
    g_body_runs = 0;
    g_seen_locked = -1;
}

static void teardown(void)
{
    cachify_close(g_c);
    g_c = NULL;
}

/* ---- CACHIFY_LOCKED_FN ---- */

static const struct cachify_lock_opts nowait_opts = CACHIFY_LOCK_OPTS_DEFAULT;

CACHIFY_LOCKED_FN(int, add_one, (int n, const char *tag), (n, tag),
                  ("add-%d-%s", n, tag), &nowait_opts)
{
    g_body_runs++;
    g_seen_locked = add_one_is_locked(g_c, n, tag);
    return n + 1;
}

START_TEST(locked_fn_runs_under_lock)
{
    int r = 0;

    ck_assert_int_eq(add_one(g_c, &r, 41, "x"), CACHIFY_OK);
    ck_assert_int_eq(r, 42);
    ck_assert_int_eq(g_body_runs, 1);
    ck_assert_int_eq(g_seen_locked, 1); /* held while the body ran */
    ck_assert_str_eq(cachify_errstr(g_c), "");
    /* Released after, with its token. */
    ck_assert_int_eq(add_one_is_locked(g_c, 41, "x"), 0);
    ck_assert_int_eq(cachify_is_locked(g_c, "add-41-x"), 0);
    /* result may be NULL. */
    ck_assert_int_eq(add_one(g_c, NULL, 1, "y"), CACHIFY_OK);
    ck_assert_int_eq(g_body_runs, 2);
}
END_TEST

START_TEST(locked_fn_refuses_held_key)
{
    uint64_t tok;
    int r = -7;

    ck_assert_int_eq(cachify_acquire(g_c, "add-3-z", NULL, &tok), CACHIFY_OK);
    ck_assert_int_eq(add_one_is_locked(g_c, 3, "z"), 1);
    ck_assert_int_eq(add_one_is_locked(g_c, 4, "z"), 0);
    ck_assert_int_eq(add_one(g_c, &r, 3, "z"), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(g_c), "add-3-z is already locked!");
    ck_assert_int_eq(r, -7); /* untouched: the body did not run */
    ck_assert_int_eq(g_body_runs, 0);
    /* Errors are not sticky. */
    ck_assert_int_eq(add_one(g_c, &r, 4, "z"), CACHIFY_OK);
    ck_assert_str_eq(cachify_errstr(g_c), "");
    /* The forced release frees whoever holds it (py-cachify's release). */
    ck_assert_int_eq(add_one_release(g_c, 3, "z"), 1);
    ck_assert_int_eq(add_one_release(g_c, 3, "z"), 0);
    ck_assert_int_eq(cachify_release(g_c, "add-3-z", tok), 0);
    ck_assert_int_eq(add_one(g_c, &r, 3, "z"), CACHIFY_OK);
    ck_assert_int_eq(r, 4);
}
END_TEST

/* Zeroed options are the defaults: the body's lock expires (30 s). */
static const struct cachify_lock_opts zero_opts = {0};
static long long g_pttl;

CACHIFY_LOCKED_FN_VOID(zeroed, (int n), (n), ("zeroed-%d", n), &zero_opts)
{
    char key[32];

    snprintf(key, sizeof key, "zeroed-%d", n);
    ck_assert_int_eq(cachify_pttl(g_c, key, &g_pttl), CACHIFY_OK);
}

START_TEST(zeroed_opts_expire)
{
    g_pttl = 0;
    ck_assert_int_eq(zeroed(g_c, 1), CACHIFY_OK);
    ck_assert_msg(g_pttl > 29000 && g_pttl <= 30000, "pttl %lld", g_pttl);
}
END_TEST

/* Not reentrant: the body calling itself with the same key is refused. */
CACHIFY_LOCKED_FN(int, recurse, (int depth), (depth), ("recurse"), NULL)
{
    int inner = 0;

    if (depth > 0)
        return recurse(g_c, &inner, depth - 1);
    return 99;
}

START_TEST(not_reentrant)
{
    int r = 0;

    /* A constant key: every call takes the same lock. */
    ck_assert_int_eq(recurse(g_c, &r, 1), CACHIFY_OK);
    ck_assert_int_eq(r, CACHIFY_LOCKED); /* the inner call's status */
    ck_assert_int_eq(recurse(g_c, &r, 0), CACHIFY_OK);
    ck_assert_int_eq(r, 99);
}
END_TEST

/* Keys longer than the stack buffer are allocated; past CACHIFY_KEY_MAX
 * they are refused. */
CACHIFY_LOCKED_FN_VOID(touch, (const char *name), (name), ("touch:%s", name),
                       NULL)
{
    g_body_runs++;
    g_seen_locked = touch_is_locked(g_c, name);
}

START_TEST(long_keys)
{
    size_t n = 5000;
    char *name = malloc(CACHIFY_KEY_MAX + 1);
    char *full = malloc(n + 7);

    ck_assert_ptr_nonnull(name);
    ck_assert_ptr_nonnull(full);
    memset(name, 'k', n);
    name[n] = '\0';
    ck_assert_int_eq(touch(g_c, name), CACHIFY_OK);
    ck_assert_int_eq(g_seen_locked, 1);
    snprintf(full, n + 7, "touch:%s", name);
    ck_assert_int_eq(cachify_acquire(g_c, full, NULL, &(uint64_t){0}),
                     CACHIFY_OK);
    ck_assert_int_eq(touch_is_locked(g_c, name), 1);
    ck_assert_int_eq(touch(g_c, name), CACHIFY_LOCKED);
    ck_assert_int_eq(strlen(cachify_errstr(g_c)), n + 6 + 19);
    ck_assert_int_eq(touch_release(g_c, name), 1);
    /* "touch:" + CACHIFY_KEY_MAX bytes: too long. */
    memset(name, 'k', CACHIFY_KEY_MAX);
    name[CACHIFY_KEY_MAX] = '\0';
    ck_assert_int_eq(touch(g_c, name), CACHIFY_ERR_ARG);
    ck_assert_int_eq(touch_is_locked(g_c, name), CACHIFY_ERR_ARG);
    ck_assert_int_eq(touch_release(g_c, name), CACHIFY_ERR_ARG);
    ck_assert_int_eq(g_body_runs, 1);
    free(name);
    free(full);
}
END_TEST

/* A %c given 0 puts a NUL inside the key: refused, not cut to "a". */
CACHIFY_LOCKED_FN_VOID(nul_key, (char ch, int pad), (ch, pad),
                       ("a%cb%*s", ch, pad, ""), NULL)
{
    (void)ch, (void)pad;
    g_body_runs++;
}

START_TEST(nul_in_key_refused)
{
    ck_assert_int_eq(nul_key(g_c, 0, 0), CACHIFY_ERR_ARG);
    ck_assert_str_eq(cachify_errstr(g_c),
                     "formatted key has a NUL byte at offset 1 (of 3 bytes): "
                     "keys cannot hold NUL");
    ck_assert_int_eq(g_body_runs, 0);
    ck_assert_int_eq(cachify_is_locked(g_c, "a"), 0);
    ck_assert_int_eq(nul_key_is_locked(g_c, 0, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(nul_key_release(g_c, 0, 0), CACHIFY_ERR_ARG);
    /* The same past the stack buffer (an allocated key). */
    ck_assert_int_eq(nul_key(g_c, 0, 1000), CACHIFY_ERR_ARG);
    ck_assert_int_eq(g_body_runs, 0);
    /* Any other byte is a key like any other. */
    ck_assert_int_eq(nul_key(g_c, 'x', 0), CACHIFY_OK);
    ck_assert_int_eq(g_body_runs, 1);
}
END_TEST

/* ---- once ---- */

/* The key uses a subset of the parameters. */
CACHIFY_ONCE_FN(int, once_quiet, (int id, int unused), (id, unused),
                ("once-%d", id), 0, -1)
{
    g_body_runs++;
    (void)unused;
    return id * 10;
}

CACHIFY_ONCE_FN(int, once_loud, (int id), (id), ("once-%d", id), 1, -1)
{
    g_body_runs++;
    return id * 100;
}

CACHIFY_ONCE_FN_VOID(once_void, (int id), (id), ("once-%d", id), 0)
{
    g_body_runs++;
    (void)id;
}

START_TEST(once_fn)
{
    uint64_t tok;
    int r = 0;

    ck_assert_int_eq(once_quiet(g_c, &r, 2, 0), CACHIFY_OK);
    ck_assert_int_eq(r, 20);
    ck_assert_int_eq(once_quiet_is_locked(g_c, 2, 0), 0);
    ck_assert_int_eq(cachify_acquire(g_c, "once-2", NULL, &tok), CACHIFY_OK);
    /* Held: return_on_locked, status 1; or CACHIFY_LOCKED when raising. */
    ck_assert_int_eq(once_quiet(g_c, &r, 2, 0), 1);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(once_void(g_c, 2), 1);
    r = 5;
    ck_assert_int_eq(once_loud(g_c, &r, 2), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(g_c), "once-2 is already locked!");
    ck_assert_int_eq(r, 5);
    ck_assert_int_eq(g_body_runs, 1);
    ck_assert_int_eq(once_loud_release(g_c, 2), 1);
    ck_assert_int_eq(once_loud(g_c, &r, 2), CACHIFY_OK);
    ck_assert_int_eq(r, 200);
    ck_assert_int_eq(once_void(g_c, 2), CACHIFY_OK);
    ck_assert_int_eq(g_body_runs, 3);
}
END_TEST

/* ---- prefix: keys gain it on the wire, messages show the user's key ---- */

START_TEST(prefix)
{
    struct cachify *p;
    int r;

    open_mem(&p, "app:");
    ck_assert_int_eq(cachify_acquire(p, "add-1-q", NULL, &(uint64_t){0}),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(g_c, "app:add-1-q"), 1);
    ck_assert_int_eq(cachify_is_locked(g_c, "add-1-q"), 0);
    ck_assert_int_eq(add_one(p, &r, 1, "q"), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(p), "add-1-q is already locked!");
    ck_assert_int_eq(add_one(g_c, &r, 1, "q"), CACHIFY_OK);
    ck_assert_int_eq(add_one_release(p, 1, "q"), 1);
    cachify_close(p);
}
END_TEST

/* ---- py-cachify's keys ---- */

/* @lock(key='sleep_for_lock-{arg}') and @once(key='import-{arg}'). */
CACHIFY_LOCKED_FN_VOID(py_sleep, (int arg), (arg), ("sleep_for_lock-%d", arg),
                       NULL)
{
    (void)arg;
    g_body_runs++;
    g_seen_locked = cachify_is_locked(g_c, "PYC-sleep_for_lock-1-lock");
}

CACHIFY_ONCE_FN_VOID(py_import, (int arg), (arg), ("import-%d", arg), 1)
{
    (void)arg;
    g_body_runs++;
    g_seen_locked = cachify_is_locked(g_c, "PYC-import-3-once");
}

START_TEST(pycachify_keys)
{
    struct cachify_options o = {.pycachify_keys = 1};
    struct cachify *py;
    uint64_t t;
    char err[128];

    ck_assert_int_eq(cachify_open(&py, "mem:", &o, err, sizeof err),
                     CACHIFY_OK);
    /* The body runs under "PYC-sleep_for_lock-1-lock", py-cachify's key. */
    ck_assert_int_eq(py_sleep(py, 1), CACHIFY_OK);
    ck_assert_int_eq(g_seen_locked, 1);
    ck_assert_int_eq(py_import(py, 3), CACHIFY_OK);
    ck_assert_int_eq(g_seen_locked, 1);
    ck_assert_int_eq(g_body_runs, 2);
    /* A Python program holds the key: the C call is refused with
     * py-cachify 3.x's message; the companions see the same key. */
    ck_assert_int_eq(cachify_acquire(g_c, "PYC-sleep_for_lock-2-lock", NULL,
                                     &t), CACHIFY_OK);
    ck_assert_int_eq(py_sleep_is_locked(py, 2), 1);
    ck_assert_int_eq(py_sleep(py, 2), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(py),
                     "sleep_for_lock-2-lock is already locked!");
    ck_assert_int_eq(py_sleep_release(py, 2), 1);
    ck_assert_int_eq(cachify_is_locked(g_c, "PYC-sleep_for_lock-2-lock"), 0);
    ck_assert_int_eq(cachify_acquire(g_c, "PYC-import-4-once", NULL, &t),
                     CACHIFY_OK);
    ck_assert_int_eq(py_import(py, 4), CACHIFY_LOCKED);
    ck_assert_str_eq(cachify_errstr(py), "import-4-once is already locked!");
    ck_assert_int_eq(py_import_release(py, 4), 1);
    /* Plain calls get the prefix only, as py-cachify's lock('job') does. */
    ck_assert_int_eq(cachify_acquire(py, "job", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(g_c, "PYC-job"), 1);
    /* Without the option: neither prefix nor suffix. */
    ck_assert_int_eq(py_sleep(g_c, 1), CACHIFY_OK);
    ck_assert_int_eq(g_seen_locked, 0);
    ck_assert_int_eq(cachify_acquire(g_c, "sleep_for_lock-5", NULL, &t),
                     CACHIFY_OK);
    ck_assert_int_eq(py_sleep_is_locked(g_c, 5), 1);
    ck_assert_int_eq(py_sleep_is_locked(py, 5), 0);
    cachify_close(py);
}
END_TEST

/* ---- guards ---- */

static int guarded_early_return(int bail)
{
    CACHIFY_SCOPED_LOCK(g, g_c, "scoped", NULL);
    if (g.status != CACHIFY_OK)
        return g.status;
    ck_assert_uint_gt(g.token, 0);
    ck_assert_int_eq(cachify_is_locked(g_c, "scoped"), 1);
    if (bail)
        return 7; /* the cleanup attribute releases here */
    return 8;
}

START_TEST(scoped_lock_every_exit)
{
    ck_assert_int_eq(guarded_early_return(1), 7);
    ck_assert_int_eq(cachify_is_locked(g_c, "scoped"), 0);
    ck_assert_int_eq(guarded_early_return(0), 8);
    ck_assert_int_eq(cachify_is_locked(g_c, "scoped"), 0);
    for (int i = 0; i < 3; i++) {
        CACHIFY_SCOPED_LOCK(g, g_c, "loop", NULL);
        ck_assert_int_eq(g.status, CACHIFY_OK);
        if (i == 1)
            break;
    }
    ck_assert_int_eq(cachify_is_locked(g_c, "loop"), 0);
    {
        CACHIFY_SCOPED_LOCK(g, g_c, "goto", NULL);
        ck_assert_int_eq(g.status, CACHIFY_OK);
        goto out;
    }
out:
    ck_assert_int_eq(cachify_is_locked(g_c, "goto"), 0);
    /* Held elsewhere: the guard's acquire fails and it releases nothing. */
    ck_assert_int_eq(cachify_acquire(g_c, "scoped", NULL, &(uint64_t){0}),
                     CACHIFY_OK);
    ck_assert_int_eq(guarded_early_return(1), CACHIFY_LOCKED);
    ck_assert_int_eq(cachify_is_locked(g_c, "scoped"), 1);
}
END_TEST

START_TEST(guard_release_twice)
{
    struct cachify_guard g = cachify_guard_acquire(g_c, "twice", NULL);
    struct cachify_guard h;

    ck_assert_int_eq(g.status, CACHIFY_OK);
    h = cachify_guard_acquire(g_c, "twice", NULL);
    ck_assert_int_eq(h.status, CACHIFY_LOCKED);
    ck_assert_ptr_null(h.key);
    cachify_guard_release(&h);
    ck_assert_int_eq(cachify_is_locked(g_c, "twice"), 1);
    cachify_guard_release(&g);
    ck_assert_int_eq(cachify_is_locked(g_c, "twice"), 0);
    cachify_guard_release(&g);
    cachify_guard_release(NULL);
    h = cachify_guard_acquire(NULL, "x", NULL);
    ck_assert_int_eq(h.status, CACHIFY_ERR_ARG);
    h = cachify_guard_acquire(g_c, "", NULL);
    ck_assert_int_eq(h.status, CACHIFY_ERR_ARG);
    cachify_guard_release(&h);
}
END_TEST

/* A guard whose lock expired and was taken by another holder must not free
 * the new holder's lock. */
START_TEST(guard_after_expiry_keeps_new_holder)
{
    struct cachify_lock_opts short_exp = {1, CACHIFY_FOREVER, 50, 0, 0};
    struct cachify_lock_opts wait_opts = {0, CACHIFY_FOREVER, 5000, 0, 0};
    struct cachify *other;
    struct cachify_guard g = cachify_guard_acquire(g_c, "exp", &short_exp);
    uint64_t tok = 0;

    open_mem(&other, NULL);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    /* Waits until the 50 ms expiry (the store's timer thread). */
    ck_assert_int_eq(cachify_acquire(other, "exp", &wait_opts, &tok),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_guard_release(&g), CACHIFY_LOST);
    ck_assert_str_eq(cachify_errstr(g_c),
                     "exp was no longer held at its release: it expired or "
                     "was force-released while the body ran");
    ck_assert_int_eq(cachify_guard_release(&g), CACHIFY_OK); /* done */
    ck_assert_int_eq(cachify_is_locked(g_c, "exp"), 1);
    ck_assert_int_eq(cachify_release(other, "exp", tok), 1);
    cachify_close(other);
}
END_TEST

/* A body that outlives its lock's exp, while someone else takes the key:
 * the call says CACHIFY_LOST, not CACHIFY_OK, and still hands back the
 * body's result; the other holder keeps its lock. */
static struct cachify *g_other;
static uint64_t g_other_token;
static const struct cachify_lock_opts short_opts = {.exp_ms = 50};

/* Inside a body: waits until the body's lock expires, then holds it. */
static void take_over(const char *key)
{
    struct cachify_lock_opts wait = {.nowait = 0, .timeout_ms = 10000};

    ck_assert_int_eq(cachify_acquire(g_other, key, &wait, &g_other_token),
                     CACHIFY_OK);
}

CACHIFY_LOCKED_FN(int, outlive, (int n), (n), ("outlive-%d", n), &short_opts)
{
    take_over("outlive-1");
    return n * 2;
}

CACHIFY_ONCE_FN_VOID(outlive_once, (int n), (n), ("outlive-%d", n), 1)
{
    (void)n;
    ck_assert_int_eq(cachify_force_release(g_other, "outlive-1"), 1);
}

static void outlive_cb(void *arg, uint64_t token)
{
    (void)arg, (void)token;
    take_over("outlive-w");
}

START_TEST(lost_lock_is_not_ok)
{
    int r = 0;

    open_mem(&g_other, NULL);
    ck_assert_int_eq(outlive(g_c, &r, 1), CACHIFY_LOST);
    ck_assert_int_eq(r, 2);
    ck_assert_str_eq(cachify_errstr(g_c),
                     "outlive-1 was no longer held at its release: it "
                     "expired or was force-released while the body ran");
    ck_assert_int_eq(cachify_release(g_other, "outlive-1", g_other_token), 1);
    /* Force-released under the body (once, default exp): lost too. */
    ck_assert_int_eq(outlive_once(g_c, 1), CACHIFY_LOST);
    ck_assert_int_eq(cachify_is_locked(g_c, "outlive-1"), 0);
    /* A body that ends in time is CACHIFY_OK, as before. */
    ck_assert_int_eq(add_one(g_c, &r, 5, "lost"), CACHIFY_OK);
    /* cachify_with_lock. */
    ck_assert_int_eq(cachify_with_lock(g_c, "outlive-w", &short_opts,
                                       outlive_cb, NULL), CACHIFY_LOST);
    ck_assert_int_eq(cachify_is_locked(g_c, "outlive-w"), 1);
    ck_assert_int_eq(cachify_release(g_other, "outlive-w", g_other_token), 1);
    cachify_close(g_other);
    g_other = NULL;
}
END_TEST

static void in_lock(void *arg, uint64_t token)
{
    uint64_t *seen = arg;

    *seen = token;
    ck_assert_int_eq(cachify_is_locked(g_c, "with"), 1);
}

START_TEST(with_lock_calls)
{
    uint64_t seen = 0, tok;

    ck_assert_int_eq(cachify_with_lock(g_c, "with", NULL, in_lock, &seen),
                     CACHIFY_OK);
    ck_assert_uint_gt(seen, 0);
    ck_assert_int_eq(cachify_is_locked(g_c, "with"), 0);
    ck_assert_int_eq(cachify_acquire(g_c, "with", NULL, &tok), CACHIFY_OK);
    seen = 0;
    ck_assert_int_eq(cachify_with_lock(g_c, "with", NULL, in_lock, &seen),
                     CACHIFY_LOCKED);
    ck_assert_uint_eq(seen, 0);
    ck_assert_int_eq(cachify_with_lock(g_c, "with", NULL, NULL, NULL),
                     CACHIFY_ERR_ARG);
}
END_TEST

START_TEST(status_names)
{
    ck_assert_str_eq(cachify_status_name(CACHIFY_OK), "OK");
    ck_assert_str_eq(cachify_status_name(CACHIFY_LOCKED), "LOCKED");
    ck_assert_str_eq(cachify_status_name(CACHIFY_TIMEOUT), "TIMEOUT");
    ck_assert_str_eq(cachify_status_name(CACHIFY_ERR_IO), "ERR_IO");
    ck_assert_str_eq(cachify_status_name(CACHIFY_ERR_PROTO), "ERR_PROTO");
    ck_assert_str_eq(cachify_status_name(CACHIFY_ERR_SERVER), "ERR_SERVER");
    ck_assert_str_eq(cachify_status_name(CACHIFY_ERR_AUTH), "ERR_AUTH");
    ck_assert_str_eq(cachify_status_name(CACHIFY_ERR_ARG), "ERR_ARG");
    ck_assert_str_eq(cachify_status_name(CACHIFY_ERR_NOMEM), "ERR_NOMEM");
    ck_assert_str_eq(cachify_status_name(CACHIFY_ERR_CLOSED), "ERR_CLOSED");
    ck_assert_str_eq(cachify_status_name(CACHIFY_LOST), "LOST");
    ck_assert_int_eq(CACHIFY_LOST, -10);
    ck_assert_str_eq(cachify_status_name(1), "?");
    ck_assert_str_eq(cachify_status_name(-100), "?");
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        locked_fn_runs_under_lock, locked_fn_refuses_held_key,
        zeroed_opts_expire, not_reentrant,
        long_keys, nul_in_key_refused, once_fn, pycachify_keys, prefix,
        scoped_lock_every_exit,
        guard_release_twice, guard_after_expiry_keeps_new_holder,
        lost_lock_is_not_ok, with_lock_calls,
        status_names,
    };
    Suite *s = suite_create("decorator");
    TCase *tc = tcase_create("decorator");
    SRunner *sr;
    int failed;

    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(s, tc);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        tcase_add_test(tc, tests[i]);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
