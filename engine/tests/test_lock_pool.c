/* engine/tests/test_lock_pool.c - Check suite for pools (engine/lock_pool.c).
 *
 * Owns: the tests of lock_pool.h's contract: slots up to max_size and no
 * more, tokens, release by token and forced, size, FIFO waiters and their
 * timeouts, slot expiry (timer and lazy), SESSION slots and waits, the
 * size mismatch and the lock/pool keyspace errors, crash recovery, the
 * STATS gauges, out of memory, and a seeded random run against the
 * invariant "never more than N held".  Does not own the lock tests
 * (test_locktable.c) or the journal's, restore's and the walks' (the pool
 * ones are in test_lock_pool_journal.c).
 *
 * Nothing sleeps: the table reads a fake clock that the tests move by
 * hand (engine/tests/pooltest.h), as in test_locktable.c.
 */
#include "engine/tests/pooltest.h"

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

int main(void)
{
    Suite *s;
    TCase *tc = pooltest_tcase(&s, "lock_pool", "pool");
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
    tcase_add_test(tc, test_out_of_memory);
    tcase_add_test(tc, test_random_never_over);
    return pooltest_main(s);
}
