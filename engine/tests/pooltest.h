/* engine/tests/pooltest.h - the fixture the pool suites share
 * (test_lock_pool.c, test_lock_pool_journal.c; each is its own program,
 * so the helpers are static and live in this header).
 *
 * Owns: a fake clock the tests move by hand, an event log (grants and
 * timeouts), one table per test (T) and the one-line helpers that take,
 * count and time slots.  Nothing sleeps; callbacks only log.
 */
#ifndef CACHIFY_ENGINE_TESTS_POOLTEST_H
#define CACHIFY_ENGINE_TESTS_POOLTEST_H

#include "engine/lock_pool.h"

#include "alloc.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(c) do { if (!(c)) ck_abort_msg("failed: %s", #c); } while (0)
#define K(s) (s), strlen(s)
#define T0 1000000u
#define MS 1000u

static struct { uint64_t mono, wall; } fc;
static inline uint64_t fake_mono(void *arg) { (void)arg; return fc.mono; }
static inline uint64_t fake_wall(void *arg) { (void)arg; return fc.wall; }

enum ev_kind { EV_GRANTED = 1, EV_TIMED_OUT };
struct ev {
    enum ev_kind kind;
    uintptr_t ctx;
    uint64_t token;
};
static struct ev evs[4096];
static size_t nevs;

static inline void on_granted(void *ctx, uint64_t token, void *arg)
{
    (void)arg;
    REQUIRE(nevs < sizeof(evs) / sizeof(evs[0]));
    evs[nevs++] = (struct ev){ EV_GRANTED, (uintptr_t)ctx, token };
}

static inline void on_timed_out(void *ctx, const char *key, size_t keylen,
                                void *arg)
{
    (void)arg;
    REQUIRE(key != NULL && keylen > 0);
    REQUIRE(nevs < sizeof(evs) / sizeof(evs[0]));
    evs[nevs++] = (struct ev){ EV_TIMED_OUT, (uintptr_t)ctx, 0 };
}

static struct locktable *T;

static inline void open_table(size_t max_locks, size_t max_waiters)
{
    static const uint8_t seed[16] = { 9, 8, 7, 6, 5, 4, 3, 2,
                                      1, 2, 3, 4, 5, 6, 7, 8 };
    struct lock_clock clock = { fake_mono, fake_wall, NULL };
    struct lock_events events = { on_granted, on_timed_out, NULL };
    struct locktable_limits limits = { max_locks, max_waiters, 0 };
    locktable_free(T);
    T = locktable_new(&clock, &events, &limits, seed);
    ck_assert_ptr_nonnull(T);
}

static inline void setup(void)
{
    fc.mono = T0;
    fc.wall = 0;
    nevs = 0;
    T = NULL;
    open_table(0, 0);
}

static inline void teardown(void)
{
    locktable_free(T);
    T = NULL;
    alloc_fail_reset();
}

static inline enum lock_result pacq(const char *key, uint32_t max,
                                    uint64_t ttl_us, int wait,
                                    uint64_t wait_us, struct lock_session *s,
                                    int session_lock, uintptr_t ctx,
                                    uint64_t *token)
{
    struct lock_request rq = { key, strlen(key), ttl_us, wait, wait_us,
                               session_lock, s, (void *)ctx, NULL, 0 };
    return locktable_pool_acquire(T, &rq, max, token);
}

/* A slot of key (max) without waiting, which must be granted. */
static inline uint64_t take(const char *key, uint32_t max, uint64_t ttl_us)
{
    uint64_t token = 0;
    ck_assert_int_eq(pacq(key, max, ttl_us, 0, 0, NULL, 0, 0, &token),
                     LOCK_GRANTED);
    ck_assert_uint_gt(token, 0);
    return token;
}

static inline int64_t size_of(const char *key)
{
    uint32_t max;
    return locktable_pool_size(T, K(key), &max);
}

static inline void run_timers(void)
{
    while (locktable_next_deadline(T) <= fc.mono)
        if (locktable_run_timers(T, 1000) == 0)
            break;
}

/* Runs suite s (one TCase with this fixture): the process's exit status. */
static inline int pooltest_main(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* A suite of one TCase named name, with the fixture. */
static inline TCase *pooltest_tcase(Suite **s, const char *suite,
                                    const char *name)
{
    *s = suite_create(suite);
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    suite_add_tcase(*s, tc);
    return tc;
}

#endif
