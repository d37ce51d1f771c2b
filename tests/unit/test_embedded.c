/* tests/unit/test_embedded.c - Check suite for client/embedded.c, the
 * process-wide lock store behind "mem:".
 *
 * Owns: tests of the store under many threads (mutual exclusion checked
 * with a counter protected only by the lock), FIFO hand-off, bounded and
 * unbounded waits, expiry and timeouts driven by the store's timer thread
 * (nobody touches the key while it expires), SESSION locks, async waits and
 * their cancellation, and the store's refcounted life.  Tests wait for
 * other threads with joins and condition variables, never by sleeping in a
 * loop.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cachify.h"
#include "client/embedded.h"
#include "engine/clock.h"

#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond))                                                         \
            ck_abort_msg("requirement failed: %s", #cond);                   \
    } while (0)

#define K(s) (s), strlen(s)

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- mutual exclusion under contention ---- */

#define MX_THREADS 16
#define MX_ROUNDS 2000
#define MX_KEYS 4

static struct {
    int inside[MX_KEYS];  /* protected only by the lock under test */
    long count[MX_KEYS];
    int overlaps;         /* written under the lock too */
} g_mx;

static void *mx_worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    struct mem_session *ms = mem_session_new();
    static const char *keys[MX_KEYS] = {"k0", "k1", "k2", "k3"};

    if (ms == NULL)
        return (void *)1;
    for (int i = 0; i < MX_ROUNDS; i++) {
        int k = (int)(rand_r(&seed) % MX_KEYS);
        uint64_t tok = 0;

        if (mem_acquire_wait(ms, K(keys[k]), 0, -1, 0, &tok) != CACHIFY_OK)
            return (void *)2;
        if (g_mx.inside[k]++ != 0)
            g_mx.overlaps++;
        g_mx.count[k]++;
        g_mx.inside[k]--;
        if (mem_release(ms, K(keys[k]), tok) != 1)
            return (void *)3;
    }
    mem_session_free(ms);
    return NULL;
}

START_TEST(mutual_exclusion)
{
    pthread_t th[MX_THREADS];
    long total = 0;

    memset(&g_mx, 0, sizeof g_mx);
    for (uintptr_t i = 0; i < MX_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, mx_worker,
                                        (void *)(i + 1)), 0);
    for (int i = 0; i < MX_THREADS; i++) {
        void *rv;

        pthread_join(th[i], &rv);
        ck_assert_ptr_null(rv);
    }
    for (int k = 0; k < MX_KEYS; k++)
        total += g_mx.count[k];
    ck_assert_int_eq(g_mx.overlaps, 0);
    ck_assert_int_eq(total, MX_THREADS * MX_ROUNDS);
}
END_TEST

/* ---- nowait, tokens, release, extend, pttl ---- */

START_TEST(basics)
{
    struct mem_session *a = mem_session_new(), *b = mem_session_new();
    uint64_t t1 = 0, t2 = 0;

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(mem_is_locked(a, K("job")), 0);
    ck_assert_int_eq(mem_acquire_wait(a, K("job"), 0, 0, 0, &t1), CACHIFY_OK);
    ck_assert_uint_gt(t1, 0);
    ck_assert_int_eq(mem_is_locked(b, K("job")), 1);
    ck_assert_int_eq(mem_pttl_us(b, K("job")), -1);
    /* Not reentrant: the holder's own session is refused too. */
    ck_assert_int_eq(mem_acquire_wait(a, K("job"), 0, 0, 0, &t2), CACHIFY_LOCKED);
    ck_assert_int_eq(mem_acquire_async(b, K("job"), 0, 0, 0, NULL, NULL, &t2),
                     CACHIFY_LOCKED);
    /* Binary keys: "job\0x" is another key than "job". */
    ck_assert_int_eq(mem_acquire_wait(b, "job\0x", 5, 0, 0, 0, &t2), CACHIFY_OK);
    ck_assert_uint_gt(t2, t1);
    ck_assert_int_eq(mem_release(b, "job\0x", 5, t2), 1);
    ck_assert_int_eq(mem_release(b, K("job"), t1 + 1000), 0);
    ck_assert_int_eq(mem_extend(b, K("job"), t1, 60000000), 1);
    {
        int64_t left = mem_pttl_us(b, K("job"));

        ck_assert(left > 59000000 && left <= 60000000);
    }
    ck_assert_int_eq(mem_extend(b, K("job"), t1 + 1, 1000), 0);
    ck_assert_int_eq(mem_release(b, K("job"), t1), 1);
    ck_assert_int_eq(mem_release(b, K("job"), t1), 0);
    ck_assert_int_eq(mem_pttl_us(b, K("job")), -2);
    /* Forced release (token 0). */
    ck_assert_int_eq(mem_acquire_wait(a, K("job"), 0, 0, 0, &t1), CACHIFY_OK);
    ck_assert_int_eq(mem_release(b, K("job"), 0), 1);
    ck_assert_int_eq(mem_is_locked(a, K("job")), 0);
    mem_session_free(a);
    mem_session_free(b);
    mem_session_free(NULL);
}
END_TEST

/* ---- FIFO hand-off, through async waiters queued in a known order ---- */

static int g_order[8], g_norder;
static uint64_t g_tokens[8];

static void record_cb(void *arg, int status, uint64_t token)
{
    int id = (int)(intptr_t)arg;

    REQUIRE(status == CACHIFY_OK);
    g_tokens[id] = token;
    g_order[g_norder++] = id;
}

START_TEST(fifo)
{
    struct mem_session *s[5];
    uint64_t t0 = 0, dummy;

    g_norder = 0;
    for (int i = 0; i < 5; i++)
        ck_assert_ptr_nonnull(s[i] = mem_session_new());
    ck_assert_int_eq(mem_acquire_wait(s[0], K("q"), 0, 0, 0, &t0), CACHIFY_OK);
    for (intptr_t i = 1; i < 5; i++)
        ck_assert_int_eq(mem_acquire_async(s[i], K("q"), 0, -1, 0, record_cb,
                                           (void *)i, &dummy), 1);
    ck_assert_int_eq(g_norder, 0);
    /* Each release hands the lock to the next waiter at once. */
    ck_assert_int_eq(mem_release(s[0], K("q"), t0), 1);
    for (int i = 1; i < 5; i++) {
        ck_assert_int_eq(g_norder, i);
        ck_assert_int_eq(g_order[i - 1], i);
        ck_assert_int_eq(mem_is_locked(s[0], K("q")), 1);
        ck_assert_int_eq(mem_release(s[i], K("q"), g_tokens[i]), 1);
    }
    ck_assert_int_eq(mem_is_locked(s[0], K("q")), 0);
    for (int i = 2; i < 5; i++)
        ck_assert_uint_gt(g_tokens[i], g_tokens[i - 1]);
    for (int i = 0; i < 5; i++)
        mem_session_free(s[i]);
}
END_TEST

/* ---- waits that end by timeout, and locks that expire, on the timer
 * thread alone ---- */

START_TEST(wait_timeout)
{
    struct mem_session *a = mem_session_new(), *b = mem_session_new();
    uint64_t t = 0, t2 = 0;
    long long start;

    ck_assert_int_eq(mem_acquire_wait(a, K("tw"), 0, 0, 0, &t), CACHIFY_OK);
    start = now_ms();
    ck_assert_int_eq(mem_acquire_wait(b, K("tw"), 0, 80, 0, &t2),
                     CACHIFY_TIMEOUT);
    ck_assert(now_ms() - start >= 79);
    ck_assert(now_ms() - start < 5000);
    ck_assert_int_eq(mem_is_locked(b, K("tw")), 1); /* a still holds it */
    mem_session_free(a);
    mem_session_free(b);
}
END_TEST

START_TEST(expiry_hands_off)
{
    struct mem_session *a = mem_session_new(), *b = mem_session_new();
    uint64_t t = 0, t2 = 0;
    long long start = now_ms();

    ck_assert_int_eq(mem_acquire_wait(a, K("ex"), 100000, 0, 0, &t), CACHIFY_OK);
    /* Unbounded wait: only the timer thread's expiry can end it. */
    ck_assert_int_eq(mem_acquire_wait(b, K("ex"), 0, -1, 0, &t2), CACHIFY_OK);
    ck_assert(now_ms() - start >= 99);
    ck_assert_uint_gt(t2, t);
    ck_assert_int_eq(mem_release(a, K("ex"), t), 0);
    ck_assert_int_eq(mem_release(b, K("ex"), t2), 1);
    mem_session_free(a);
    mem_session_free(b);
}
END_TEST

/* An async waiter resolved by the timer thread, and a test that waits for
 * it on a condition variable. */
static pthread_mutex_t g_cb_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cb_cv = PTHREAD_COND_INITIALIZER;
static int g_cb_status, g_cb_calls;

static void signal_cb(void *arg, int status, uint64_t token)
{
    (void)arg;
    (void)token;
    pthread_mutex_lock(&g_cb_mu);
    g_cb_status = status;
    g_cb_calls++;
    pthread_cond_signal(&g_cb_cv);
    pthread_mutex_unlock(&g_cb_mu);
}

START_TEST(async_timeout_on_timer)
{
    struct mem_session *a = mem_session_new(), *b = mem_session_new();
    uint64_t t = 0, t2 = 0;
    long long start = now_ms();

    g_cb_calls = 0;
    ck_assert_int_eq(mem_acquire_wait(a, K("at"), 0, 0, 0, &t), CACHIFY_OK);
    ck_assert_int_eq(mem_acquire_async(b, K("at"), 0, 60, 0, signal_cb, NULL,
                                       &t2), 1);
    pthread_mutex_lock(&g_cb_mu);
    while (g_cb_calls == 0)
        pthread_cond_wait(&g_cb_cv, &g_cb_mu);
    pthread_mutex_unlock(&g_cb_mu);
    ck_assert_int_eq(g_cb_status, CACHIFY_TIMEOUT);
    ck_assert_int_eq(g_cb_calls, 1);
    ck_assert(now_ms() - start >= 59);
    mem_session_free(a);
    mem_session_free(b);
}
END_TEST

/* Many bounded waits ending at once, and an earlier deadline arriving while
 * the timer thread sleeps until a later one. */
struct waiter_arg {
    const char *key;
    long long wait_ms;
    int status;
};

static void *waiter_thread(void *p)
{
    struct waiter_arg *wa = p;
    struct mem_session *ms = mem_session_new();
    uint64_t tok;

    wa->status = mem_acquire_wait(ms, K(wa->key), 0, wa->wait_ms, 0, &tok);
    mem_session_free(ms);
    return NULL;
}

START_TEST(earlier_deadline_wakes_timer)
{
    struct mem_session *a = mem_session_new();
    struct waiter_arg slow = {"d1", 10000, 0}, fast[8];
    pthread_t ts, tf[8];
    uint64_t t;
    long long start;

    ck_assert_int_eq(mem_acquire_wait(a, K("d1"), 0, 0, 0, &t), CACHIFY_OK);
    ck_assert_int_eq(mem_acquire_wait(a, K("d2"), 0, 0, 0, &t), CACHIFY_OK);
    pthread_create(&ts, NULL, waiter_thread, &slow);
    start = now_ms();
    for (int i = 0; i < 8; i++) {
        fast[i] = (struct waiter_arg){"d2", 50, 0};
        pthread_create(&tf[i], NULL, waiter_thread, &fast[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(tf[i], NULL);
        ck_assert_int_eq(fast[i].status, CACHIFY_TIMEOUT);
    }
    /* Well before the slow waiter's 10 s: the timer was woken early. */
    ck_assert(now_ms() - start < 5000);
    ck_assert_int_eq(mem_release(a, K("d1"), 0), 1);
    pthread_join(ts, NULL);
    ck_assert_int_eq(slow.status, CACHIFY_OK);
    ck_assert_int_eq(mem_release(a, K("d1"), 0), 1);
    ck_assert_int_eq(mem_release(a, K("d2"), 0), 1);
    mem_session_free(a);
}
END_TEST

/* ---- sessions ---- */

START_TEST(session_locks)
{
    /* keeper keeps the store alive while a and b come and go. */
    struct mem_session *keeper = mem_session_new();
    struct mem_session *a = mem_session_new(), *b = mem_session_new();
    struct waiter_arg w = {"sl", -1, 0};
    uint64_t t = 0, dummy;
    pthread_t th;

    ck_assert_int_eq(mem_acquire_wait(a, K("sl"), 0, 0, 1, &t), CACHIFY_OK);
    ck_assert_int_eq(mem_acquire_wait(a, K("kept"), 0, 0, 0, &t), CACHIFY_OK);
    /* b's pending async wait is cancelled with b, without a callback. */
    g_cb_calls = 0;
    ck_assert_int_eq(mem_acquire_async(b, K("kept"), 0, -1, 0, signal_cb, NULL,
                                       &dummy), 1);
    ck_assert_int_eq(mem_acquire_async(b, K("kept"), 0, 5000, 0, signal_cb,
                                       NULL, &dummy), 1);
    mem_session_free(b);
    pthread_create(&th, NULL, waiter_thread, &w);
    /* The thread is queued on "sl" or about to be; ending a's session hands
     * it the lock either way. */
    mem_session_free(a);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.status, CACHIFY_OK);
    a = mem_session_new();
    /* The thread took "sl" without SESSION: it outlives its session. */
    ck_assert_int_eq(mem_release(a, K("sl"), 0), 1);
    ck_assert_int_eq(mem_is_locked(a, K("kept")), 1); /* not a SESSION lock */
    ck_assert_int_eq(mem_release(a, K("kept"), t), 1);
    ck_assert_int_eq(g_cb_calls, 0);
    mem_session_free(a);
    mem_session_free(keeper);
}
END_TEST

/* A session of many SESSION locks ends at once; the timer thread releases
 * them in slices (TIMER_SLICE per hold of the mutex).  A thread waiting
 * without bound on the key drained last is granted it either way: queued
 * before the end, by the timer thread's drain; queued after, because its
 * own acquire settles the key.  Every other key reads as free. */
START_TEST(session_locks_released_in_slices)
{
    enum { N = 3000 };
    struct mem_session *keeper = mem_session_new();
    struct mem_session *a = mem_session_new(), *b;
    struct waiter_arg w = {"s0", -1, 0};
    char key[16];
    uint64_t t = 0;
    pthread_t th;

    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof key, "s%d", i);
        REQUIRE(mem_acquire_wait(a, K(key), 0, 0, 1, &t) == CACHIFY_OK);
    }
    pthread_create(&th, NULL, waiter_thread, &w);
    mem_session_free(a);
    pthread_join(th, NULL);
    ck_assert_int_eq(w.status, CACHIFY_OK);
    b = mem_session_new();
    ck_assert_int_eq(mem_is_locked(b, K("s0")), 1); /* the thread's, kept */
    for (int i = 1; i < N; i++) {
        snprintf(key, sizeof key, "s%d", i);
        REQUIRE(mem_is_locked(b, K(key)) == 0);
    }
    ck_assert_int_eq(mem_release(b, K("s0"), 0), 1);
    mem_session_free(b);
    mem_session_free(keeper);
}
END_TEST

/* The store goes with its last session: a new one starts empty. */
START_TEST(store_lifetime)
{
    for (int round = 0; round < 3; round++) {
        struct mem_session *a = mem_session_new();
        uint64_t t;

        ck_assert_ptr_nonnull(a);
        ck_assert_int_eq(mem_is_locked(a, K("life")), 0);
        ck_assert_int_eq(mem_acquire_wait(a, K("life"), 0, 0, 0, &t),
                         CACHIFY_OK);
        ck_assert_int_eq(mem_acquire_wait(a, K("life-ttl"), 3600000000ULL, 0,
                                          0, &t), CACHIFY_OK);
        mem_session_free(a);
    }
}
END_TEST

/* ---- fencing tokens across store lifetimes ---- */

/* A wall clock the test sets; the real monotonic clock (the timer thread
 * sleeps on CLOCK_MONOTONIC). */
static uint64_t g_fake_wall;

static uint64_t fake_wall_us(void *arg)
{
    (void)arg;
    return g_fake_wall;
}

static uint64_t real_mono_us(void *arg)
{
    struct timespec ts;

    (void)arg;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static const struct lock_clock fake_clock = {real_mono_us, fake_wall_us, NULL};

static uint64_t take_token(const char *key)
{
    struct cachify *c = NULL;
    char err[128];
    uint64_t t = 0;

    ck_assert_int_eq(cachify_open(&c, "mem:", NULL, err, sizeof err),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_acquire(c, key, NULL, &t), CACHIFY_OK);
    cachify_close(c); /* the last handle: the store goes */
    return t;
}

/* The store is freed with its last handle and a new one is built on the
 * next open: its tokens must still be larger than every earlier one, even
 * when the wall clock (which seeds them) went back in between. */
START_TEST(tokens_grow_across_stores)
{
    uint64_t t1, t2, t3, t4;

    /* The real clock: strictly greater. */
    t1 = take_token("fence");
    t2 = take_token("fence");
    ck_assert_uint_gt(t2, t1);
    /* A wall clock far ahead of everything issued so far, then stepped
     * back by an hour (NTP, a VM restored from a snapshot). */
    g_fake_wall = t2 + 86400ULL * 1000000;
    mem_store_set_clock(&fake_clock);
    t3 = take_token("fence");
    ck_assert_uint_ge(t3, g_fake_wall);
    g_fake_wall -= 3600ULL * 1000000;
    t4 = take_token("fence");
    mem_store_set_clock(NULL);
    ck_assert_uint_gt(t4, t3);
    /* And back on the real clock (now far behind): still greater. */
    ck_assert_uint_gt(take_token("fence"), t4);
}
END_TEST

int main(void)
{
    const TTest *tests[] = {
        basics, fifo, wait_timeout, expiry_hands_off, async_timeout_on_timer,
        earlier_deadline_wakes_timer, session_locks,
        session_locks_released_in_slices, store_lifetime,
        tokens_grow_across_stores, mutual_exclusion,
    };
    Suite *s = suite_create("embedded");
    TCase *tc = tcase_create("embedded");
    SRunner *sr;
    int failed;

    suite_add_tcase(s, tc);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        tcase_add_test(tc, tests[i]);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
