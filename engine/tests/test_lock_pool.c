/* engine/tests/test_lock_pool.c - Check suite for pools (engine/lock_pool.c).
 *
 * Owns: the tests of lock_pool.h's contract: slots up to max_size and no
 * more, tokens, release by token and forced, size, FIFO waiters and their
 * timeouts, slot expiry (timer and lazy), SESSION slots and waits, the
 * size mismatch and the lock/pool keyspace errors, crash recovery, the
 * journal's rules (short slots under the horizon, long ones written one by
 * one), restore (over max_size too), forget and the walks, the STATS gauges, out of
 * memory, and a seeded random run against the invariant "never more than N
 * held".  Does not own the lock tests (test_locktable.c).
 *
 * Nothing sleeps: the table reads a fake clock that the tests move by
 * hand, as in test_locktable.c.  Callbacks only log.
 */
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
static uint64_t fake_mono(void *arg) { (void)arg; return fc.mono; }
static uint64_t fake_wall(void *arg) { (void)arg; return fc.wall; }

enum ev_kind { EV_GRANTED = 1, EV_TIMED_OUT };
struct ev {
    enum ev_kind kind;
    uintptr_t ctx;
    uint64_t token;
};
static struct ev evs[4096];
static size_t nevs;

static void on_granted(void *ctx, uint64_t token, void *arg)
{
    (void)arg;
    REQUIRE(nevs < sizeof(evs) / sizeof(evs[0]));
    evs[nevs++] = (struct ev){ EV_GRANTED, (uintptr_t)ctx, token };
}

static void on_timed_out(void *ctx, const char *key, size_t keylen, void *arg)
{
    (void)arg;
    REQUIRE(key != NULL && keylen > 0);
    REQUIRE(nevs < sizeof(evs) / sizeof(evs[0]));
    evs[nevs++] = (struct ev){ EV_TIMED_OUT, (uintptr_t)ctx, 0 };
}

static struct locktable *T;

static void open_table(size_t max_locks, size_t max_waiters)
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

static void setup(void)
{
    fc.mono = T0;
    fc.wall = 0;
    nevs = 0;
    T = NULL;
    open_table(0, 0);
}

static void teardown(void)
{
    locktable_free(T);
    T = NULL;
    alloc_fail_reset();
}

static enum lock_result pacq(const char *key, uint32_t max, uint64_t ttl_us,
                             int wait, uint64_t wait_us,
                             struct lock_session *s, int session_lock,
                             uintptr_t ctx, uint64_t *token)
{
    struct lock_request rq = { key, strlen(key), ttl_us, wait, wait_us,
                               session_lock, s, (void *)ctx, NULL, 0 };
    return locktable_pool_acquire(T, &rq, max, token);
}

/* A slot of key (max) without waiting, which must be granted. */
static uint64_t take(const char *key, uint32_t max, uint64_t ttl_us)
{
    uint64_t token = 0;
    ck_assert_int_eq(pacq(key, max, ttl_us, 0, 0, NULL, 0, 0, &token),
                     LOCK_GRANTED);
    ck_assert_uint_gt(token, 0);
    return token;
}

static int64_t size_of(const char *key)
{
    uint32_t max;
    return locktable_pool_size(T, K(key), &max);
}

static void run_timers(void)
{
    while (locktable_next_deadline(T) <= fc.mono)
        if (locktable_run_timers(T, 1000) == 0)
            break;
}

START_TEST(test_slots_up_to_max)
{
    uint64_t a = take("p", 3, 0), b = take("p", 3, 0), c = take("p", 3, 0);
    ck_assert_uint_lt(a, b);
    ck_assert_uint_lt(b, c);
    uint64_t token = 99;
    ck_assert_int_eq(pacq("p", 3, 0, 0, 0, NULL, 0, 0, &token), LOCK_BUSY);
    uint32_t max = 0;
    ck_assert_int_eq(locktable_pool_size(T, K("p"), &max), 3);
    ck_assert_uint_eq(max, 3);
    ck_assert_int_eq(locktable_is_locked(T, K("p")), 1);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), b), 1);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), b), 0);
    ck_assert_int_eq(locktable_is_locked(T, K("p")), 0);
    ck_assert_int_eq(size_of("p"), 2);
    uint64_t d = take("p", 3, 0);
    ck_assert_uint_gt(d, c);
    struct lock_stats ls;
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.pools, 1);
    ck_assert_uint_eq(ls.pool_slots, 3);
    ck_assert_uint_eq(ls.held, 0);
    ck_assert_uint_eq(ls.acquired, 4);
    ck_assert_uint_eq(ls.rejected, 1);
    ck_assert_uint_eq(ls.released, 1);
    /* Forced release frees them all; the pool goes with its last slot. */
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 0), 3);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 0), 0);
    ck_assert_int_eq(locktable_pool_size(T, K("p"), &max), 0);
    ck_assert_uint_eq(max, 0);
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.pools, 0);
    ck_assert_uint_eq(ls.pool_slots, 0);
    ck_assert_uint_eq(ls.data_bytes, 0);
}
END_TEST

START_TEST(test_token_of_another_pool)
{
    uint64_t a = take("p", 2, 0);
    uint64_t b = take("q", 2, 0);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), b), 0);
    ck_assert_int_eq(locktable_pool_release(T, K("q"), a), 0);
    ck_assert_int_eq(locktable_pool_extend(T, K("q"), a, MS), 0);
    ck_assert_int_eq(locktable_pool_release(T, K("nope"), a), 0);
    ck_assert_int_eq(size_of("p"), 1);
    ck_assert_int_eq(size_of("q"), 1);
}
END_TEST

START_TEST(test_size_mismatch)
{
    take("p", 2, 0);
    uint64_t token = 0;
    ck_assert_int_eq(pacq("p", 3, 0, 0, 0, NULL, 0, 0, &token),
                     LOCK_POOL_SIZE);
    ck_assert_uint_eq(token, 2);
    ck_assert_int_eq(pacq("p", 1, 0, 1, 0, NULL, 0, 0, &token),
                     LOCK_POOL_SIZE);
    ck_assert_int_eq(pacq("p", 0, 0, 0, 0, NULL, 0, 0, &token),
                     LOCK_POOL_SIZE);
    ck_assert_int_eq(pacq("p", LOCK_POOL_MAX_SIZE + 1, 0, 0, 0, NULL, 0, 0,
                          &token), LOCK_POOL_SIZE);
    ck_assert_int_eq(size_of("p"), 1);
    /* Once empty, the next request sizes it anew. */
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 0), 1);
    take("p", 5, 0);
    uint32_t max;
    ck_assert_int_eq(locktable_pool_size(T, K("p"), &max), 1);
    ck_assert_uint_eq(max, 5);
}
END_TEST

START_TEST(test_wrong_type)
{
    uint64_t token;
    struct lock_request rq = { K("l"), 0, 0, 0, 0, NULL, NULL, NULL, 0 };
    ck_assert_int_eq(locktable_acquire(T, &rq, &token), LOCK_GRANTED);
    ck_assert_int_eq(pacq("l", 2, 0, 0, 0, NULL, 0, 0, &token),
                     LOCK_WRONGTYPE);
    ck_assert_int_eq(pacq("l", 2, 0, 1, 0, NULL, 0, 0, &token),
                     LOCK_WRONGTYPE);
    ck_assert_int_eq(locktable_pool_release(T, K("l"), 0), -1);
    uint32_t max;
    ck_assert_int_eq(locktable_pool_size(T, K("l"), &max), -1);
    ck_assert_int_eq(locktable_pool_extend(T, K("l"), token, MS), -2);
    ck_assert_int_eq(locktable_key_kind(T, K("l")), LOCK_KIND_LOCK);
    ck_assert_int_eq(locktable_is_locked(T, K("l")), 1);

    take("p", 2, 0);
    ck_assert_int_eq(locktable_key_kind(T, K("p")), LOCK_KIND_POOL);
    ck_assert_int_eq(locktable_key_kind(T, K("x")), LOCK_KIND_NONE);
    rq.key = "p";
    rq.keylen = 1;
    ck_assert_int_eq(locktable_acquire(T, &rq, &token), LOCK_WRONGTYPE);
    rq.wait = 1;
    ck_assert_int_eq(locktable_acquire(T, &rq, &token), LOCK_WRONGTYPE);
    struct lock_set s = { K("p"), "v", 1, 0, 0, LOCK_SET_ALWAYS };
    ck_assert_int_eq(locktable_set(T, &s, &token), LOCK_WRONGTYPE);
    /* The lock calls see no lock there. */
    ck_assert_int_eq(locktable_release(T, K("p"), 0), 0);
    ck_assert_int_eq(locktable_pttl_us(T, K("p")), -2);
    ck_assert_int_eq(size_of("p"), 1);
    struct lock_stats ls;
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.held, 1);
    ck_assert_uint_eq(ls.pool_slots, 1);
}
END_TEST

START_TEST(test_fifo_waiters)
{
    uint64_t a = take("p", 2, 0), b = take("p", 2, 0), token = 0;
    for (uintptr_t i = 1; i <= 4; i++)
        ck_assert_int_eq(pacq("p", 2, 0, 1, 0, NULL, 0, i, &token),
                         LOCK_QUEUED);
    /* A newcomer without wait does not jump the queue. */
    ck_assert_int_eq(pacq("p", 2, 0, 0, 0, NULL, 0, 0, &token), LOCK_BUSY);
    struct lock_stats ls;
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.pool_waiters, 4);
    ck_assert_uint_eq(ls.waiters, 0);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), b), 1);
    ck_assert_uint_eq(nevs, 1);
    ck_assert_int_eq(evs[0].kind, EV_GRANTED);
    ck_assert_uint_eq(evs[0].ctx, 1);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), a), 1);
    ck_assert_uint_eq(nevs, 2);
    ck_assert_uint_eq(evs[1].ctx, 2);
    ck_assert_uint_gt(evs[1].token, evs[0].token);
    /* A forced release serves as many as it frees, in order. */
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 0), 2);
    ck_assert_uint_eq(nevs, 4);
    ck_assert_uint_eq(evs[2].ctx, 3);
    ck_assert_uint_eq(evs[3].ctx, 4);
    ck_assert_int_eq(size_of("p"), 2);
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.handoffs, 4);
    ck_assert_uint_eq(ls.pool_waiters, 0);
}
END_TEST

START_TEST(test_wait_timeout)
{
    uint64_t a = take("p", 1, 0), token;
    ck_assert_int_eq(pacq("p", 1, 0, 1, 100 * MS, NULL, 0, 1, &token),
                     LOCK_QUEUED);
    ck_assert_int_eq(pacq("p", 1, 0, 1, 300 * MS, NULL, 0, 2, &token),
                     LOCK_QUEUED);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 100 * MS);
    fc.mono += 100 * MS;
    run_timers();
    ck_assert_uint_eq(nevs, 1);
    ck_assert_int_eq(evs[0].kind, EV_TIMED_OUT);
    ck_assert_uint_eq(evs[0].ctx, 1);
    /* Past the second wait's end, before the timer ran: a release then
     * times it out rather than granting it late. */
    fc.mono += 250 * MS;
    ck_assert_int_eq(locktable_pool_release(T, K("p"), a), 1);
    ck_assert_uint_eq(nevs, 2);
    ck_assert_int_eq(evs[1].kind, EV_TIMED_OUT);
    ck_assert_uint_eq(evs[1].ctx, 2);
    struct lock_stats ls;
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.pools, 0);
    ck_assert_uint_eq(ls.timeouts, 2);
}
END_TEST

START_TEST(test_slot_expiry)
{
    take("p", 2, 100 * MS);
    uint64_t b = take("p", 2, 0), token;
    ck_assert_int_eq(pacq("p", 2, 50 * MS, 1, 0, NULL, 0, 7, &token),
                     LOCK_QUEUED);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 100 * MS);
    fc.mono += 100 * MS;
    run_timers();
    ck_assert_uint_eq(nevs, 1);
    ck_assert_int_eq(evs[0].kind, EV_GRANTED);
    ck_assert_uint_eq(evs[0].ctx, 7);
    ck_assert_int_eq(size_of("p"), 2);
    /* The handed-on slot expires 50 ms later, seen lazily by size. */
    fc.mono += 50 * MS;
    ck_assert_int_eq(size_of("p"), 1);
    /* Extend keeps a slot past its TTL. */
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), b, 10 * MS), 1);
    fc.mono += 9 * MS;
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), b, 10 * MS), 1);
    fc.mono += 9 * MS;
    ck_assert_int_eq(size_of("p"), 1);
    fc.mono += 1 * MS;
    run_timers();
    ck_assert_int_eq(size_of("p"), 0);
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), b, 10 * MS), 0);
    struct lock_stats ls;
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.expired, 3);
    ck_assert_uint_eq(ls.pools, 0);
}
END_TEST

/* Slots that expire together are freed by the timer in slices, one per
 * unit of locktable_run_timers' budget, as lock expiries are: a big pool
 * running out at once does not stall the loop.  A lookup still sees none
 * of them, and the waiters still get the freed slots in order. */
START_TEST(test_mass_expiry_is_sliced)
{
    enum { N = 1000 };
    for (int i = 0; i < N; i++)
        take("p", N, 10 * MS);
    uint64_t token;
    ck_assert_int_eq(pacq("p", N, 0, 1, 0, NULL, 0, 1, &token),
                     LOCK_QUEUED);
    ck_assert_int_eq(pacq("p", N, 0, 1, 0, NULL, 0, 2, &token),
                     LOCK_QUEUED);
    fc.mono += 20 * MS;
    ck_assert_uint_eq(locktable_run_timers(T, 1), 1);
    struct lock_stats ls;
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.pool_slots, N); /* one expired, one handed on */
    ck_assert_uint_eq(ls.expired, 1);
    ck_assert_uint_eq(nevs, 1);
    ck_assert_uint_eq(evs[0].ctx, 1);
    ck_assert_uint_eq(locktable_run_timers(T, 10), 10);
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.expired, 11);
    ck_assert_uint_eq(nevs, 2);
    ck_assert_uint_eq(evs[1].ctx, 2);
    ck_assert_uint_le(locktable_next_deadline(T), fc.mono); /* more due */
    const char *why;
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
    /* A lookup settles the rest: only the two handed-on slots remain. */
    ck_assert_int_eq(size_of("p"), 2);
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.expired, N);
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
}
END_TEST

START_TEST(test_session_slots_and_waits)
{
    struct lock_session s1 = { 0 }, s2 = { 0 }, s3 = { 0 };
    uint64_t token;
    ck_assert_int_eq(pacq("p", 2, 0, 0, 0, &s1, 1, 1, &token), LOCK_GRANTED);
    ck_assert_int_eq(pacq("p", 2, 0, 0, 0, &s1, 1, 1, &token), LOCK_GRANTED);
    ck_assert_int_eq(pacq("p", 2, 0, 1, 0, &s2, 1, 2, &token), LOCK_QUEUED);
    ck_assert_int_eq(pacq("p", 2, 0, 1, 0, &s3, 0, 3, &token), LOCK_QUEUED);
    /* s3 leaves while waiting: its wait is dropped without a callback. */
    locktable_session_end(T, &s3);
    struct lock_stats ls;
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.pool_waiters, 1);
    locktable_session_end(T, &s1);
    ck_assert_uint_eq(locktable_next_deadline(T), 0);
    run_timers();
    ck_assert_uint_eq(nevs, 1);
    ck_assert_int_eq(evs[0].kind, EV_GRANTED);
    ck_assert_uint_eq(evs[0].ctx, 2);
    ck_assert_int_eq(size_of("p"), 1);
    /* s2's slot (granted as a SESSION slot) goes with s2. */
    locktable_session_end(T, &s2);
    run_timers();
    ck_assert_int_eq(size_of("p"), 0);
    locktable_stats(T, &ls);
    ck_assert_uint_eq(ls.pools, 0);
    ck_assert_uint_eq(ls.released, 3);
}
END_TEST

/* A SESSION slot whose session ended is no longer its token's, even
 * before the drain frees it: an EXTEND by that token (a renewer on a
 * connection of its own) answers 0, as for a SESSION lock, so the
 * renewer reports the loss instead of renewing a slot whose holder left. */
START_TEST(test_ended_session_slot_not_extended)
{
    struct lock_session s1 = { 0 };
    uint64_t a, b;
    ck_assert_int_eq(pacq("p", 2, 100 * MS, 0, 0, &s1, 1, 1, &a),
                     LOCK_GRANTED);
    b = take("p", 2, 100 * MS);
    locktable_session_end(T, &s1);
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), a, 100 * MS), 0);
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), b, 100 * MS), 1);
    run_timers();
    ck_assert_int_eq(size_of("p"), 1);
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), a, 100 * MS), 0);
    const char *why;
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
}
END_TEST

START_TEST(test_session_cancel_waits_serves_next)
{
    struct lock_session s1 = { 0 };
    uint64_t token;
    take("p", 1, 0);
    ck_assert_int_eq(pacq("p", 1, 0, 1, 0, &s1, 0, 1, &token), LOCK_QUEUED);
    ck_assert_int_eq(pacq("p", 1, 0, 1, 0, NULL, 0, 2, &token), LOCK_QUEUED);
    locktable_session_cancel_waits(T, &s1);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 0), 1);
    ck_assert_uint_eq(nevs, 1);
    ck_assert_uint_eq(evs[0].ctx, 2);
    locktable_session_end(T, &s1);
}
END_TEST

START_TEST(test_limits)
{
    open_table(3, 1);
    uint64_t token;
    take("p", 5, 0);
    take("p", 5, 0);
    struct lock_request rq = { K("l"), 0, 0, 0, 0, NULL, NULL, NULL, 0 };
    ck_assert_int_eq(locktable_acquire(T, &rq, &token), LOCK_GRANTED);
    /* max_locks counts slots and locks together. */
    ck_assert_int_eq(pacq("p", 5, 0, 0, 0, NULL, 0, 0, &token),
                     LOCK_LIMIT_LOCKS);
    rq.key = "m";
    ck_assert_int_eq(locktable_acquire(T, &rq, &token), LOCK_LIMIT_LOCKS);
    ck_assert_int_eq(pacq("q", 1, 0, 0, 0, NULL, 0, 0, &token),
                     LOCK_LIMIT_LOCKS);
    open_table(0, 1);
    take("p", 1, 0);
    ck_assert_int_eq(pacq("p", 1, 0, 1, 0, NULL, 0, 1, &token), LOCK_QUEUED);
    ck_assert_int_eq(pacq("p", 1, 0, 1, 0, NULL, 0, 2, &token),
                     LOCK_LIMIT_WAITERS);
}
END_TEST

START_TEST(test_recovery)
{
    locktable_block_grants_until(T, T0 + 500 * MS);
    uint64_t token;
    ck_assert_int_eq(pacq("p", 2, 0, 0, 0, NULL, 0, 0, &token), LOCK_BUSY);
    ck_assert_int_eq(locktable_is_locked(T, K("p")), 1);
    ck_assert_int_eq(pacq("p", 2, 0, 1, 0, NULL, 0, 1, &token), LOCK_QUEUED);
    ck_assert_int_eq(pacq("p", 2, 0, 1, 0, NULL, 0, 2, &token), LOCK_QUEUED);
    ck_assert_int_eq(pacq("p", 2, 0, 1, 0, NULL, 0, 3, &token), LOCK_QUEUED);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 500 * MS);
    fc.mono += 499 * MS;
    run_timers();
    ck_assert_uint_eq(nevs, 0);
    fc.mono += 1 * MS;
    run_timers();
    ck_assert_uint_eq(nevs, 2);
    ck_assert_uint_eq(evs[0].ctx, 1);
    ck_assert_uint_eq(evs[1].ctx, 2);
    ck_assert_int_eq(size_of("p"), 2);
}
END_TEST

/* ---- journal: short slots covered by the horizon, long ones written ---- */

static uint64_t raised_to;
static int fail_raise, fail_slot;

/* What the slot hooks were told, in order: 'h' a slot's lease written, 'f'
 * a written lease's end. */
static struct jrec {
    char kind;
    uint32_t max;
    uint64_t token, deadline;
} jr[64];
static size_t njr;

static uint64_t j_raise(void *arg, uint64_t deadline)
{
    (void)arg;
    if (fail_raise)
        return 0;
    raised_to = deadline + 1000 * MS;
    return raised_to;
}

static int j_hold(void *arg, const char *key, size_t keylen, uint64_t token,
                  uint64_t deadline, const char *value, size_t vlen)
{
    (void)arg, (void)key, (void)keylen, (void)token, (void)deadline;
    (void)value, (void)vlen;
    ck_abort_msg("a pool slot must never be written as a lock");
    return -1;
}

static int j_slot_hold(void *arg, const char *key, size_t keylen,
                       uint32_t max, uint64_t token, uint64_t deadline)
{
    (void)arg;
    ck_assert_uint_eq(keylen, 1);
    ck_assert(key[0] == 'p' || key[0] == 'q');
    if (fail_slot)
        return -1;
    REQUIRE(njr < sizeof(jr) / sizeof(jr[0]));
    jr[njr++] = (struct jrec){ 'h', max, token, deadline };
    return 0;
}

static void j_freed(void *arg, const char *key, size_t keylen, uint64_t token)
{
    (void)arg, (void)key, (void)keylen;
    REQUIRE(njr < sizeof(jr) / sizeof(jr[0]));
    jr[njr++] = (struct jrec){ 'f', 0, token, 0 };
}

static void expect_jr(size_t i, char kind, uint64_t token, uint64_t deadline)
{
    ck_assert_uint_gt(njr, i);
    ck_assert_int_eq(jr[i].kind, kind);
    ck_assert_uint_eq(jr[i].token, token);
    if (kind == 'h') {
        ck_assert_uint_eq(jr[i].max, 2);
        ck_assert_uint_eq(jr[i].deadline, deadline);
    }
}

static void set_journal(int with_slots)
{
    struct lock_journal j = { j_raise, j_hold, j_freed, 60000 * MS,
                              1000 * MS, NULL };
    locktable_set_journal(T, &j, 0);
    locktable_set_slot_journal(T, with_slots ? j_slot_hold : NULL);
    raised_to = 0;
    fail_raise = fail_slot = 0;
    njr = 0;
}

/* A slot longer than long_lease (or without expiry) is written one by one
 * before it is granted, each extend too, and its end (release, expiry);
 * one that cannot be written is never granted or extended. */
START_TEST(test_journal_long_slots)
{
    const char *why;
    uint64_t token, never = UINT64_MAX;
    set_journal(0);
    /* No slot hook: nothing could record it. */
    ck_assert_int_eq(pacq("p", 2, 0, 0, 0, NULL, 0, 0, &token),
                     LOCK_NOT_DURABLE);
    ck_assert_int_eq(size_of("p"), 0);
    set_journal(1);
    uint64_t a = take("p", 2, 0);
    expect_jr(0, 'h', a, never);
    uint64_t b = take("p", 2, 60001 * MS);
    expect_jr(1, 'h', b, T0 + 60001 * MS);
    ck_assert_uint_eq(raised_to, 0); /* no horizon needed for them */
    /* Every extend of a written slot is written, even a short one. */
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), b, 5000 * MS), 1);
    expect_jr(2, 'h', b, T0 + 5000 * MS);
    fail_slot = 1;
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), a, 100 * MS), -1);
    fc.mono += 5000 * MS; /* b runs out; a did not get the failed 100 ms */
    run_timers();
    expect_jr(3, 'f', b, 0);
    ck_assert_int_eq(size_of("p"), 1);
    /* A grant that cannot be written is refused. */
    ck_assert_int_eq(pacq("p", 2, 0, 0, 0, NULL, 0, 0, &token),
                     LOCK_NOT_DURABLE);
    ck_assert_int_eq(size_of("p"), 1);
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
    fail_slot = 0;
    ck_assert_int_eq(locktable_pool_release(T, K("p"), a), 1);
    expect_jr(4, 'f', a, 0);
    ck_assert_int_eq(size_of("p"), 0);
    /* A short slot is covered by the horizon until an extend makes it
     * long; from then on it is written, and its end too. */
    uint64_t c = take("q", 2, 1000 * MS);
    ck_assert_uint_eq(njr, 5);
    ck_assert_uint_eq(raised_to, fc.mono + 1000 * MS + 1000 * MS);
    ck_assert_int_eq(locktable_pool_extend(T, K("q"), c, 0), 1);
    expect_jr(5, 'h', c, never);
    ck_assert_int_eq(locktable_pool_release(T, K("q"), 0), 1);
    expect_jr(6, 'f', c, 0);
    ck_assert_uint_eq(njr, 7);
    /* A handoff that cannot be written keeps the waiter first, and is
     * tried again after journal_retry_us. */
    uint64_t d = take("q", 2, 5000 * MS), e = take("q", 2, 5000 * MS);
    ck_assert_int_eq(pacq("q", 2, 0, 1, 0, NULL, 0, 7, &token), LOCK_QUEUED);
    fail_slot = 1;
    ck_assert_int_eq(locktable_pool_release(T, K("q"), d), 1);
    ck_assert_uint_eq(nevs, 0);
    ck_assert_int_eq(pacq("q", 2, 1000 * MS, 0, 0, NULL, 0, 0, &token),
                     LOCK_BUSY); /* no passing the waiter */
    fail_slot = 0;
    fc.mono += 1000 * MS;
    run_timers();
    ck_assert_uint_eq(nevs, 1);
    ck_assert_uint_eq(evs[0].ctx, 7);
    expect_jr(7, 'h', evs[0].token, never);
    ck_assert_uint_gt(evs[0].token, e);
    ck_assert_uint_eq(njr, 8);
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
}
END_TEST

static int count_durable(const struct pool_slot_view *v, void *arg)
{
    size_t *n = arg;
    ck_assert(v->token == 700 || v->token == 702);
    ck_assert_uint_eq(v->ttl_left_us, v->token == 700 ? 0 : 60001 * MS);
    (*n)++;
    return 0;
}

/* Restored with a journal, a long slot is durable again: listed for the
 * new journal, its end written; forgetting one (a replayed free record)
 * writes nothing. */
START_TEST(test_restore_durable)
{
    const char *why;
    size_t n = 0;
    set_journal(1);
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 2, 700, 0), 0);
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 2, 701, 1000 * MS), 0);
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 2, 702, 60001 * MS),
                     0);
    ck_assert_int_eq(locktable_foreach_durable_slot(T, count_durable, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(size_of("p"), 3); /* over max: see the next test */
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
    ck_assert_int_eq(locktable_pool_forget(T, K("p"), 702), 1);
    ck_assert_int_eq(locktable_pool_forget(T, K("p"), 702), 0);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 700), 1);
    ck_assert_uint_eq(njr, 1);
    expect_jr(0, 'f', 700, 0);
    ck_assert_int_eq(locktable_pool_forget(T, K("p"), 0), 1);
    ck_assert_int_eq(locktable_key_kind(T, K("p")), LOCK_KIND_NONE);
    ck_assert_uint_eq(njr, 1);
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
}
END_TEST

START_TEST(test_journal)
{
    set_journal(1);
    uint64_t token;
    struct lock_session s = { 0 };
    /* A SESSION slot is covered for long_lease at most, never written. */
    ck_assert_int_eq(pacq("p", 2, 0, 0, 0, &s, 1, 0, &token), LOCK_GRANTED);
    ck_assert_uint_eq(raised_to, T0 + 60000 * MS + 1000 * MS);
    ck_assert_uint_eq(njr, 0);
    uint64_t a = take("p", 2, 5000 * MS);
    fail_raise = 1;
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), a, 60000 * MS), 1);
    fc.mono += 2000 * MS; /* past the horizon now */
    ck_assert_int_eq(locktable_pool_extend(T, K("p"), a, 60000 * MS), -1);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), a), 1);
    ck_assert_int_eq(pacq("p", 2, 60000 * MS, 0, 0, NULL, 0, 0, &token),
                     LOCK_NOT_DURABLE);
    ck_assert_uint_eq(njr, 0);
    /* A waiter whose handoff cannot be recorded stays first and is tried
     * again after journal_retry_us. */
    fail_raise = 0;
    take("p", 2, 1000 * MS);
    ck_assert_int_eq(pacq("p", 2, 60000 * MS, 1, 0, NULL, 0, 9, &token),
                     LOCK_QUEUED);
    fail_raise = 1;
    locktable_session_end(T, &s);
    run_timers();
    ck_assert_uint_eq(nevs, 0);
    fail_raise = 0;
    fc.mono += 1000 * MS;
    run_timers();
    ck_assert_uint_eq(nevs, 1);
    ck_assert_uint_eq(evs[0].ctx, 9);
}
END_TEST

static int count_slot(const struct pool_slot_view *v, void *arg)
{
    size_t *n = arg;
    ck_assert_uint_eq(v->max, 3);
    ck_assert_uint_eq(v->keylen, 1);
    (*n)++;
    return 0;
}

START_TEST(test_restore_and_walk)
{
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 3, 500, 100 * MS), 0);
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 3, 500, 100 * MS), -1);
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 2, 501, 0), -1);
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 3, 501, 0), 0);
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 3, 502, 0), 0);
    /* A fourth: a journal that lost a free record cannot say which slot
     * ended, so all are kept and nothing is granted until fewer than 3
     * are held. */
    ck_assert_int_eq(locktable_pool_restore(T, K("p"), 3, 503, 0), 0);
    ck_assert_uint_eq(locktable_last_token(T), 503);
    /* One keyspace at load too: a lock record for a pool's key (a file
     * edited by hand, or its records reordered) is refused, as a slot
     * record for a lock's key is. */
    ck_assert_int_eq(locktable_restore(T, K("p"), 900, 0, NULL, 0), -1);
    ck_assert_int_eq(locktable_key_kind(T, K("p")), LOCK_KIND_POOL);
    ck_assert_uint_eq(locktable_last_token(T), 503);
    ck_assert_int_eq(locktable_restore(T, K("l"), 600, 0, NULL, 0), 0);
    ck_assert_int_eq(locktable_pool_restore(T, K("l"), 3, 601, 0), -1);
    uint64_t token;
    ck_assert_int_eq(pacq("p", 3, 0, 0, 0, NULL, 0, 0, &token), LOCK_BUSY);
    const char *why;
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
    size_t n = 0;
    ck_assert_int_eq(locktable_foreach_slot(T, count_slot, &n), 0);
    ck_assert_uint_eq(n, 4);
    fc.mono += 100 * MS;
    n = 0;
    ck_assert_int_eq(locktable_foreach_slot(T, count_slot, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(pacq("p", 3, 0, 0, 0, NULL, 0, 0, &token), LOCK_BUSY);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 501), 1);
    token = take("p", 3, 0);
    ck_assert_uint_gt(token, 503);
    ck_assert_int_eq(pacq("p", 3, 0, 0, 0, NULL, 0, 0, &token), LOCK_BUSY);
    ck_assert_int_eq(locktable_pool_audit(T, &why), 0);
}
END_TEST

START_TEST(test_out_of_memory)
{
    uint64_t token;
    take("p", 4, 0);
    for (long n = 0; n < 8; n++) {
        alloc_fail_after(n);
        enum lock_result r = pacq("q", 4, 0, 0, 0, NULL, 0, 0, &token);
        alloc_fail_reset();
        if (r == LOCK_GRANTED)
            break;
        ck_assert_int_eq(r, LOCK_NO_MEMORY);
        ck_assert_int_eq(size_of("q"), 0);
        ck_assert_int_eq(locktable_key_kind(T, K("q")), LOCK_KIND_NONE);
    }
    ck_assert_int_eq(size_of("q"), 1);
    /* A handoff that cannot allocate keeps the waiter first. */
    take("p", 4, 0), take("p", 4, 0), take("p", 4, 0);
    ck_assert_int_eq(pacq("p", 4, 0, 1, 0, NULL, 0, 5, &token), LOCK_QUEUED);
    alloc_fail_after(0);
    ck_assert_int_eq(locktable_pool_release(T, K("p"), 0), 4);
    alloc_fail_reset();
    ck_assert_uint_eq(nevs, 0);
    ck_assert_int_eq(pacq("p", 4, 0, 0, 0, NULL, 0, 0, &token), LOCK_BUSY);
    fc.mono += 100 * MS;
    run_timers();
    ck_assert_uint_eq(nevs, 1);
    ck_assert_uint_eq(evs[0].ctx, 5);
}
END_TEST

/* ---- a seeded random run: never more than N held ---- */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

#define NCLIENTS 40
#define POOL_N 5

START_TEST(test_random_never_over)
{
    struct lock_session sess[NCLIENTS];
    uint64_t held[NCLIENTS];
    memset(sess, 0, sizeof(sess));
    memset(held, 0, sizeof(held));
    uint64_t last = 0;
    size_t seen = 0;
    for (int step = 0; step < 20000; step++) {
        int i = (int)(next_rand() % NCLIENTS);
        uint64_t r = next_rand() % 100, token = 0;
        if (r < 40) {
            uint64_t ttl = (next_rand() % 4) * 20 * MS; /* 0: forever */
            int wait = (int)(next_rand() % 2);
            enum lock_result res =
                pacq("p", POOL_N, ttl, wait, (next_rand() % 50) * MS,
                     &sess[i], (int)(next_rand() % 2), (uintptr_t)i + 1,
                     &token);
            REQUIRE(res == LOCK_GRANTED || res == LOCK_BUSY ||
                    res == LOCK_QUEUED);
            if (res == LOCK_GRANTED) {
                REQUIRE(token > last);
                last = token;
                held[i] = token;
            }
        } else if (r < 60) {
            if (held[i])
                locktable_pool_release(T, K("p"), held[i]);
            held[i] = 0;
        } else if (r < 65) {
            locktable_session_end(T, &sess[i]);
            memset(&sess[i], 0, sizeof(sess[i]));
        } else if (r < 67) {
            locktable_pool_release(T, K("p"), 0);
        } else if (r < 72) {
            if (held[i])
                locktable_pool_extend(T, K("p"), held[i],
                                      (next_rand() % 4) * 20 * MS);
        } else {
            fc.mono += (next_rand() % 10) * MS;
            locktable_run_timers(T, 1 + next_rand() % 3);
        }
        for (; seen < nevs; seen++)
            if (evs[seen].kind == EV_GRANTED) {
                REQUIRE(evs[seen].token > last);
                last = evs[seen].token;
            }
        if (nevs > 3000)
            nevs = seen = 0;
        int64_t n = size_of("p");
        REQUIRE(n >= 0 && n <= POOL_N);
        struct lock_stats ls;
        locktable_stats(T, &ls);
        REQUIRE(ls.pool_slots <= POOL_N);
        const char *why;
        if (locktable_pool_audit(T, &why) != 0)
            ck_abort_msg("step %d: %s", step, why);
    }
    for (int i = 0; i < NCLIENTS; i++)
        locktable_session_end(T, &sess[i]);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("lock_pool");
    TCase *tc = tcase_create("pool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_slots_up_to_max);
    tcase_add_test(tc, test_token_of_another_pool);
    tcase_add_test(tc, test_size_mismatch);
    tcase_add_test(tc, test_wrong_type);
    tcase_add_test(tc, test_fifo_waiters);
    tcase_add_test(tc, test_wait_timeout);
    tcase_add_test(tc, test_slot_expiry);
    tcase_add_test(tc, test_mass_expiry_is_sliced);
    tcase_add_test(tc, test_session_slots_and_waits);
    tcase_add_test(tc, test_ended_session_slot_not_extended);
    tcase_add_test(tc, test_session_cancel_waits_serves_next);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_recovery);
    tcase_add_test(tc, test_journal);
    tcase_add_test(tc, test_journal_long_slots);
    tcase_add_test(tc, test_restore_and_walk);
    tcase_add_test(tc, test_restore_durable);
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_random_never_over);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(pool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
