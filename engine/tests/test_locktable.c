/* engine/tests/test_locktable.c - Check suite for the lock engine (engine/locktable.c).
 *
 * Owns: the tests of locktable.h's contract, one TCase per area: grants,
 * release, extend and PTTL; lazy and timer-driven expiry; fencing tokens and
 * the token ceiling; FIFO waiters and wait timeouts; sessions; crash
 * recovery; restore and snapshot; the journal hooks; the STATS counters; memory (links
 * records found by entry address after heavy churn, entry memory reused by
 * other keys, keys of every length across the slab's classes and past
 * them).  Does not own the heap and the map (test_structs.c), the slab
 * (test_slab.c) nor the commands built on the engine.
 *
 * Nothing sleeps: the table reads a fake clock (struct fake_clock below)
 * whose monotonic and wall readings the tests set by hand, so every deadline,
 * PTTL and token is asserted to the exact microsecond.  The wall clock starts
 * at 0, so tokens are simply 1, 2, 3, ... unless a test moves it.  The engine
 * callbacks only append to an event log (the contract forbids re-entering the
 * engine from them); tests then compare the log with what they expect.
 * Randomness is a fixed-seed xorshift, so a failure replays exactly.
 */
#include "engine/locktable.h"
#include "engine/lock_pool.h"

#include "alloc.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* For hot loops: every passing ck_assert writes its location to Check's
 * log, which over hundreds of thousands of checks costs seconds. */
#define REQUIRE(c) do { if (!(c)) ck_abort_msg("failed: %s", #c); } while (0)

/* A C string as the engine's (key, keylen) pair. */
#define K(s) (s), strlen(s)

/* An arbitrary start for the monotonic clock: not 0, so that a deadline of 0
 * or "recovery until 0" bugs cannot hide behind it. */
#define T0 1000000u

#define BIG_N 100000 /* keys in the many-locks test */

/* ---- fake clock ---- */

struct fake_clock {
    uint64_t mono; /* microseconds, only moved forward by tests */
    uint64_t wall; /* microseconds since the epoch; tests move it anyhow */
};

static struct fake_clock fc;

static uint64_t fake_mono(void *arg) { return ((struct fake_clock *)arg)->mono; }
static uint64_t fake_wall(void *arg) { return ((struct fake_clock *)arg)->wall; }

/* ---- event log, filled by the engine's callbacks ---- */

enum ev_kind { EV_GRANTED = 1, EV_TIMED_OUT };

struct ev {
    enum ev_kind kind;
    uintptr_t ctx;  /* the waiter's ctx, as a number */
    uint64_t token; /* for EV_GRANTED */
};

/* Big enough for one grant per key of the many-locks test. */
static struct ev evs[BIG_N + 64];
static size_t nevs;
static int events_arg; /* its address is lock_events.arg */

static void on_granted(void *ctx, uint64_t token, void *arg)
{
    REQUIRE(arg == &events_arg);
    REQUIRE(nevs < sizeof(evs) / sizeof(evs[0]));
    evs[nevs++] = (struct ev){ EV_GRANTED, (uintptr_t)ctx, token };
}

static void on_timed_out(void *ctx, const char *key, size_t keylen,
                         void *arg)
{
    REQUIRE(arg == &events_arg);
    REQUIRE(key != NULL && keylen > 0);
    REQUIRE(nevs < sizeof(evs) / sizeof(evs[0]));
    evs[nevs++] = (struct ev){ EV_TIMED_OUT, (uintptr_t)ctx, 0 };
}

static void check_ev(size_t i, enum ev_kind kind, uintptr_t ctx)
{
    ck_assert_uint_gt(nevs, i);
    ck_assert_int_eq(evs[i].kind, kind);
    ck_assert_uint_eq(evs[i].ctx, ctx);
}

/* ---- the table under test, made fresh for every test ---- */

static struct locktable *T;

static void open_table(size_t max_locks, size_t max_waiters)
{
    static const uint8_t seed[16] = { 1, 2, 3, 4, 5, 6, 7, 8,
                                      9, 10, 11, 12, 13, 14, 15, 16 };
    struct lock_clock clock = { fake_mono, fake_wall, &fc };
    struct lock_events events = { on_granted, on_timed_out, &events_arg };
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
}

static enum lock_result acq(const char *key, uint64_t ttl_us, int wait,
                            uint64_t wait_us, struct lock_session *s,
                            int session_lock, uintptr_t ctx, uint64_t *token)
{
    struct lock_request rq = { key, strlen(key), ttl_us, wait, wait_us,
                               session_lock, s, (void *)ctx, NULL, 0 };
    return locktable_acquire(T, &rq, token);
}

/* Takes key without waiting, which must succeed; returns the token. */
static uint64_t grab(const char *key, uint64_t ttl_us)
{
    uint64_t tok = 0;
    ck_assert_int_eq(acq(key, ttl_us, 0, 0, NULL, 0, 0, &tok), LOCK_GRANTED);
    ck_assert_uint_gt(tok, 0);
    return tok;
}

/* Queues a wait on key (wait_us 0 = forever), which must be accepted. */
static void queue(const char *key, uint64_t ttl_us, uint64_t wait_us,
                  struct lock_session *s, uintptr_t ctx)
{
    uint64_t tok = 0;
    ck_assert_int_eq(acq(key, ttl_us, 1, wait_us, s, 0, ctx, &tok), LOCK_QUEUED);
}

static void check_stats(uint64_t acquired, uint64_t released, uint64_t expired,
                        uint64_t timeouts, uint64_t rejected, uint64_t handoffs,
                        uint64_t held, uint64_t waiters)
{
    struct lock_stats st;
    locktable_stats(T, &st);
    ck_assert_uint_eq(st.acquired, acquired);
    ck_assert_uint_eq(st.released, released);
    ck_assert_uint_eq(st.expired, expired);
    ck_assert_uint_eq(st.timeouts, timeouts);
    ck_assert_uint_eq(st.rejected, rejected);
    ck_assert_uint_eq(st.handoffs, handoffs);
    ck_assert_uint_eq(st.held, held);
    ck_assert_uint_eq(st.waiters, waiters);
}

/* What the daemon's expiry timer does while locktable_next_deadline says
 * "now" (an ended session's locks to release): run_timers until it has
 * nothing left.  Returns the events it handled. */
static size_t run_all_timers(void)
{
    size_t n = 0, k;
    while ((k = locktable_run_timers(T, 1000)) > 0)
        n += k;
    return n;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ---- basic: grant, busy, release, extend, pttl ---- */

START_TEST(test_grant_busy_release)
{
    uint64_t tok = 0;

    ck_assert_uint_eq(grab("a", 1000), 1);
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 1);
    ck_assert_uint_eq(locktable_holder_token(T, K("a")), 1);
    ck_assert_int_eq(locktable_pttl_us(T, K("a")), 1000);
    /* Not reentrant, and a refusal issues no token. */
    ck_assert_int_eq(acq("a", 1000, 0, 0, NULL, 0, 0, &tok), LOCK_BUSY);
    ck_assert_uint_eq(locktable_last_token(T), 1);

    ck_assert_int_eq(locktable_release(T, K("a"), 2), 0);      /* wrong token */
    ck_assert_int_eq(locktable_release(T, K("nope"), 1), 0);   /* not held */
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 1);
    ck_assert_int_eq(locktable_release(T, K("a"), 1), 1);
    ck_assert_int_eq(locktable_release(T, K("a"), 1), 0);      /* twice */
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 0);
    ck_assert_uint_eq(locktable_holder_token(T, K("a")), 0);
    ck_assert_int_eq(locktable_pttl_us(T, K("a")), -2);

    ck_assert_uint_eq(grab("a", 1000), 2);
    ck_assert_int_eq(locktable_release(T, K("a"), 0), 1);      /* forced */
    ck_assert_int_eq(locktable_release(T, K("a"), 0), 0);

    /* Keys are bytes: "x\0y", "x" and "x\0z" are three keys. */
    struct lock_request rq = { "x\0y", 3, 0, 0, 0, 0, NULL, NULL, NULL, 0 };
    ck_assert_int_eq(locktable_acquire(T, &rq, &tok), LOCK_GRANTED);
    ck_assert_uint_eq(tok, 3);
    ck_assert_int_eq(locktable_is_locked(T, "x", 1), 0);
    ck_assert_int_eq(locktable_is_locked(T, "x\0z", 3), 0);
    ck_assert_uint_eq(locktable_holder_token(T, "x\0y", 3), 3);
    ck_assert_uint_eq(grab("x", 0), 4);

    check_stats(4, 2, 0, 0, 1, 0, 2, 0);
}
END_TEST

START_TEST(test_pttl_extend)
{
    uint64_t a = grab("a", 0), b = grab("b", 5000);

    ck_assert_int_eq(locktable_pttl_us(T, K("a")), -1);
    fc.mono += 1234;
    ck_assert_int_eq(locktable_pttl_us(T, K("b")), 5000 - 1234);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 5000);

    ck_assert_int_eq(locktable_extend(T, K("b"), b, 10000), 1);
    ck_assert_int_eq(locktable_pttl_us(T, K("b")), 10000);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 1234 + 10000);
    ck_assert_int_eq(locktable_extend(T, K("b"), a, 1), 0);    /* a's token */
    ck_assert_int_eq(locktable_extend(T, K("b"), 0, 1), 0);    /* no token */
    ck_assert_int_eq(locktable_extend(T, K("c"), b, 1), 0);    /* not held */
    ck_assert_int_eq(locktable_pttl_us(T, K("c")), -2);
    ck_assert_int_eq(locktable_pttl_us(T, K("b")), 10000);

    /* Shortening works too, and the timer follows. */
    ck_assert_int_eq(locktable_extend(T, K("b"), b, 10), 1);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 1234 + 10);

    /* ttl 0 means forever: nothing is left to time. */
    ck_assert_int_eq(locktable_extend(T, K("b"), b, 0), 1);
    ck_assert_int_eq(locktable_pttl_us(T, K("b")), -1);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    fc.mono += 1000000000000ull;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 0);
    ck_assert_int_eq(locktable_pttl_us(T, K("a")), -1);
    ck_assert_int_eq(locktable_pttl_us(T, K("b")), -1);

    /* A lock that ran out cannot be extended back to life. */
    uint64_t c = grab("c", 100);
    fc.mono += 100;
    ck_assert_int_eq(locktable_extend(T, K("c"), c, 1000), 0);
    ck_assert_int_eq(locktable_is_locked(T, K("c")), 0);
    check_stats(3, 0, 1, 0, 0, 0, 2, 0);
}
END_TEST

/* ---- expiry ---- */

/* No run_timers at all: every accessor must settle a passed deadline. */
START_TEST(test_lazy_expiry)
{
    ck_assert_uint_eq(grab("a", 100), 1);
    uint64_t b = grab("b", 100);
    grab("c", 100);
    grab("d", 100);
    grab("e", 100);

    fc.mono += 99;
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 1);
    ck_assert_int_eq(locktable_pttl_us(T, K("a")), 1);
    fc.mono += 1; /* exactly the deadline: gone */
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 0);
    check_stats(5, 0, 1, 0, 0, 0, 4, 0);
    ck_assert_int_eq(locktable_pttl_us(T, K("a")), -2);
    ck_assert_uint_eq(grab("a", 100), 6);

    ck_assert_int_eq(locktable_release(T, K("b"), b), 0); /* too late */
    ck_assert_int_eq(locktable_pttl_us(T, K("c")), -2);
    ck_assert_uint_eq(locktable_holder_token(T, K("d")), 0);
    ck_assert_uint_eq(grab("e", 0), 7);
    /* expired counts each lock once; released none of them. */
    check_stats(7, 0, 5, 0, 0, 0, 2, 0);
    /* The heap forgot the settled ones: only the new "a" is timed. */
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 100 + 100);
}
END_TEST

START_TEST(test_run_timers_due_only)
{
    struct lock_session s = { NULL, NULL };

    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    ck_assert_uint_eq(locktable_run_timers(T, 100), 0);
    grab("a", 300);
    grab("b", 100);
    grab("c", 200);
    grab("d", 0);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 100);
    queue("d", 0, 150, &s, 1); /* a wait's end is a deadline too */
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 100);

    fc.mono = T0 + 99;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 0);
    fc.mono = T0 + 160; /* b's expiry and the wait's end are due */
    ck_assert_uint_eq(locktable_run_timers(T, 1), 1);
    check_stats(4, 0, 1, 0, 0, 0, 3, 1); /* b first: earliest */
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 150);
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_stats(4, 0, 1, 1, 0, 0, 3, 0);
    ck_assert_uint_eq(nevs, 1);
    check_ev(0, EV_TIMED_OUT, 1);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 200);

    fc.mono = T0 + 300;
    ck_assert_uint_eq(locktable_run_timers(T, 1), 1);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 300);
    ck_assert_uint_eq(locktable_run_timers(T, 1), 1);
    ck_assert_uint_eq(locktable_run_timers(T, 1), 0);
    /* Only "d" is left and it never expires. */
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    check_stats(4, 0, 3, 1, 0, 0, 1, 0);
    ck_assert_int_eq(locktable_is_locked(T, K("d")), 1);
}
END_TEST

START_TEST(test_run_timers_max_events)
{
    char key[32];

    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        grab(key, 500);
    }
    fc.mono += 500;
    for (int round = 1; round <= 10; round++) {
        struct lock_stats st;
        ck_assert_uint_eq(locktable_run_timers(T, 1000), 1000);
        locktable_stats(T, &st);
        ck_assert_uint_eq(st.expired, 1000u * (unsigned)round);
        ck_assert_uint_eq(st.held, 10000u - 1000u * (unsigned)round);
    }
    ck_assert_uint_eq(locktable_run_timers(T, 1000), 0);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
}
END_TEST

/* BIG_N keys with distinct random deadlines, each with one waiter: the order
 * in which the waiters are granted is the order the locks expired in. */
START_TEST(test_many_locks_expire_in_order)
{
    static uint32_t perm[BIG_N], order[BIG_N];
    static uint64_t toks[BIG_N];
    struct lock_session s = { NULL, NULL };
    char key[32];

    rng_state = 0x9e3779b97f4a7c15ull;
    for (uint32_t i = 0; i < BIG_N; i++)
        perm[i] = i;
    for (uint32_t i = BIG_N - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(rng() % (i + 1)), x = perm[i];
        perm[i] = perm[j];
        perm[j] = x;
    }
    /* Key i expires at T0 + 7 * (perm[i] + 1): distinct, so order is exact. */
    for (uint32_t i = 0; i < BIG_N; i++) {
        snprintf(key, sizeof(key), "lock:%u", i);
        toks[i] = grab(key, 7 * ((uint64_t)perm[i] + 1));
        REQUIRE(toks[i] == i + 1);
        order[perm[i]] = i;
    }
    for (uint32_t i = 0; i < BIG_N; i++) {
        snprintf(key, sizeof(key), "lock:%u", i);
        REQUIRE(locktable_holder_token(T, K(key)) == toks[i]);
        REQUIRE(locktable_pttl_us(T, K(key)) == 7 * ((int64_t)perm[i] + 1));
        queue(key, 0, 0, &s, i + 1); /* the waiter holds forever once granted */
    }
    check_stats(BIG_N, 0, 0, 0, 0, 0, BIG_N, BIG_N);

    size_t done = 0;
    while (done < BIG_N) {
        REQUIRE(locktable_next_deadline(T) == T0 + 7 * ((uint64_t)done + 1));
        fc.mono += 1 + rng() % 5000;
        size_t due = (fc.mono - T0) / 7;
        if (due > BIG_N)
            due = BIG_N;
        REQUIRE(locktable_run_timers(T, SIZE_MAX) == due - done);
        REQUIRE(nevs == due);
        done = due;
    }
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    for (size_t r = 0; r < BIG_N; r++) {
        REQUIRE(evs[r].kind == EV_GRANTED);
        REQUIRE(evs[r].ctx == order[r] + 1);
        REQUIRE(evs[r].token == BIG_N + 1 + r);
    }
    check_stats(2 * BIG_N, 0, BIG_N, 0, 0, BIG_N, BIG_N, 0);
    locktable_session_cancel_waits(T, &s); /* nothing left to cancel */
    ck_assert_ptr_null(s.waiters);
}
END_TEST

/* ---- tokens ---- */

START_TEST(test_tokens_follow_wall_clock)
{
    struct lock_session s = { NULL, NULL };

    fc.wall = 5000000; /* stands still: +1 per grant, across keys */
    ck_assert_uint_eq(grab("a", 0), 5000000);
    ck_assert_uint_eq(grab("b", 0), 5000001);
    ck_assert_uint_eq(grab("c", 0), 5000002);
    ck_assert_uint_eq(locktable_last_token(T), 5000002);

    fc.wall = 9000000; /* jumps ahead: the token is the wall clock */
    ck_assert_uint_eq(grab("d", 0), 9000000);

    fc.wall = 1000; /* goes back: tokens keep growing, handoffs included */
    ck_assert_int_eq(locktable_release(T, K("a"), 0), 1);
    ck_assert_uint_eq(grab("a", 0), 9000001);
    queue("a", 0, 0, &s, 7);
    ck_assert_int_eq(locktable_release(T, K("a"), 9000001), 1);
    check_ev(0, EV_GRANTED, 7);
    ck_assert_uint_eq(evs[0].token, 9000002);
    ck_assert_uint_eq(locktable_holder_token(T, K("a")), 9000002);

    locktable_raise_last_token(T, 20000000);
    ck_assert_uint_eq(locktable_last_token(T), 20000000);
    locktable_raise_last_token(T, 5); /* never lowers */
    ck_assert_uint_eq(locktable_last_token(T), 20000000);
    ck_assert_uint_eq(grab("e", 0), 20000001);
    fc.wall = 20000001; /* equal to last: still last + 1 */
    ck_assert_uint_eq(grab("f", 0), 20000002);
}
END_TEST

struct raise_log {
    int calls;
    uint64_t asked[8]; /* the token raise_fn was asked about */
    int fail;          /* answer 0 while set */
};

static uint64_t raise_ceiling(void *arg, uint64_t token)
{
    struct raise_log *r = arg;
    REQUIRE(r->calls < 8);
    r->asked[r->calls++] = token;
    return r->fail ? 0 : token + 10;
}

START_TEST(test_token_ceiling)
{
    struct raise_log r = { 0, { 0 }, 0 };
    char key[16];

    locktable_set_token_ceiling(T, 3, raise_ceiling, &r);
    for (int i = 1; i <= 3; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_uint_eq(grab(key, 0), (uint64_t)i);
    }
    ck_assert_int_eq(r.calls, 0); /* at or below the ceiling: free */
    ck_assert_uint_eq(grab("k4", 0), 4);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.asked[0], 4);
    for (int i = 5; i <= 14; i++) { /* 14 is the adopted ceiling */
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_uint_eq(grab(key, 0), (uint64_t)i);
    }
    ck_assert_int_eq(r.calls, 1);

    r.fail = 1; /* a failed raise still issues the token... */
    ck_assert_uint_eq(grab("k15", 0), 15);
    ck_assert_int_eq(r.calls, 2);
    ck_assert_uint_eq(r.asked[1], 15);
    r.fail = 0; /* ...and is asked again at the next grant */
    ck_assert_uint_eq(grab("k16", 0), 16);
    ck_assert_int_eq(r.calls, 3);
    ck_assert_uint_eq(r.asked[2], 16);
    ck_assert_uint_eq(grab("k17", 0), 17); /* ceiling now 26 */
    ck_assert_int_eq(r.calls, 3);

    /* A wall clock jump past the ceiling asks about the jumped token. */
    fc.wall = 1000;
    ck_assert_uint_eq(grab("k18", 0), 1000);
    ck_assert_int_eq(r.calls, 4);
    ck_assert_uint_eq(r.asked[3], 1000);

    locktable_set_token_ceiling(T, 0, NULL, NULL); /* off */
    fc.wall = 5000;
    ck_assert_uint_eq(grab("k19", 0), 5000);
    ck_assert_int_eq(r.calls, 4);
}
END_TEST

/* The contract: only raise_fn NULL turns the ceiling off, so a ceiling of 0
 * (nothing reserved yet) must ask before the very first token. */
START_TEST(test_token_ceiling_zero)
{
    struct raise_log r = { 0, { 0 }, 0 };

    locktable_set_token_ceiling(T, 0, raise_ceiling, &r);
    ck_assert_uint_eq(grab("a", 0), 1);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_uint_eq(r.asked[0], 1);
    ck_assert_uint_eq(grab("b", 0), 2); /* below the adopted 11 */
    ck_assert_int_eq(r.calls, 1);
}
END_TEST

/* ---- waiters ---- */

/* Holder "h" of key, then waiters ctx 1..3 (forever, lock ttl 100 each). */
static uint64_t hold_and_queue3(const char *key, uint64_t ttl_us,
                                struct lock_session *holder_s,
                                struct lock_session *waiter_s)
{
    uint64_t tok = 0;
    ck_assert_int_eq(acq(key, ttl_us, 0, 0, holder_s, holder_s != NULL, 0, &tok),
                     LOCK_GRANTED);
    for (uintptr_t c = 1; c <= 3; c++)
        queue(key, 100, 0, waiter_s, c);
    check_stats(1, 0, 0, 0, 0, 0, 1, 3);
    ck_assert_uint_eq(nevs, 0);
    return tok;
}

/* Event i must be the grant of ctx to a token above prev, now holding key
 * with 100 us left. */
static uint64_t check_handoff(size_t i, uintptr_t ctx, uint64_t prev,
                              const char *key)
{
    ck_assert_uint_eq(nevs, i + 1); /* one grant per hand-off, no more */
    check_ev(i, EV_GRANTED, ctx);
    ck_assert_uint_gt(evs[i].token, prev);
    ck_assert_uint_eq(locktable_holder_token(T, K(key)), evs[i].token);
    ck_assert_int_eq(locktable_pttl_us(T, K(key)), 100);
    return evs[i].token;
}

START_TEST(test_fifo_on_release)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = hold_and_queue3("k", 0, NULL, &s);

    ck_assert_int_eq(locktable_release(T, K("k"), tok), 1);
    tok = check_handoff(0, 1, tok, "k");
    ck_assert_int_eq(locktable_release(T, K("k"), tok), 1);
    tok = check_handoff(1, 2, tok, "k");
    ck_assert_int_eq(locktable_release(T, K("k"), 0), 1); /* forced */
    tok = check_handoff(2, 3, tok, "k");
    check_stats(4, 3, 0, 0, 0, 3, 1, 0);
    ck_assert_int_eq(locktable_release(T, K("k"), tok), 1);
    ck_assert_uint_eq(nevs, 3);
    ck_assert_uint_eq(grab("k", 0), tok + 1); /* free: granted at once */
}
END_TEST

START_TEST(test_fifo_on_expiry_run_timers)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = hold_and_queue3("k", 100, NULL, &s);

    for (uintptr_t c = 1; c <= 3; c++) {
        fc.mono += 99;
        ck_assert_uint_eq(locktable_run_timers(T, 100), 0);
        fc.mono += 1;
        ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
        tok = check_handoff(c - 1, c, tok, "k");
    }
    check_stats(4, 0, 3, 0, 0, 3, 1, 0);
    /* A late timer: the waiter's TTL runs from its grant, not the expiry. */
    queue("k", 100, 0, &s, 4);
    fc.mono += 130;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_handoff(3, 4, tok, "k");
}
END_TEST

START_TEST(test_fifo_on_expiry_lazy)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = hold_and_queue3("k", 100, NULL, &s), t2 = 0;

    fc.mono += 100;
    ck_assert_int_eq(locktable_is_locked(T, K("k")), 1);
    tok = check_handoff(0, 1, tok, "k");
    fc.mono += 100; /* a newcomer does not jump the queue */
    ck_assert_int_eq(acq("k", 100, 0, 0, NULL, 0, 0, &t2), LOCK_BUSY);
    tok = check_handoff(1, 2, tok, "k");
    fc.mono += 100;
    ck_assert_int_eq(locktable_pttl_us(T, K("k")), 100);
    tok = check_handoff(2, 3, tok, "k");
    check_stats(4, 0, 3, 0, 1, 3, 1, 0);
    fc.mono += 100;
    ck_assert_uint_eq(grab("k", 0), tok + 1);
}
END_TEST

START_TEST(test_fifo_on_session_end)
{
    struct lock_session hs = { NULL, NULL }, ws = { NULL, NULL };
    uint64_t tok = hold_and_queue3("k", 0, &hs, &ws);

    ck_assert_ptr_nonnull(hs.rec);
    locktable_session_end(T, &hs);
    ck_assert_ptr_null(hs.rec);
    ck_assert_uint_eq(nevs, 0); /* released in slices, by run_timers */
    ck_assert_uint_eq(locktable_next_deadline(T), 0);
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_handoff(0, 1, tok, "k");
    check_stats(2, 1, 0, 0, 0, 1, 1, 2);
}
END_TEST

START_TEST(test_wait_timeout)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = grab("k", 0);

    queue("k", 100, 100, &s, 1);
    queue("k", 100, 50, &s, 2);
    queue("k", 100, 0, &s, 3);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 50);
    fc.mono += 49;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 0);
    fc.mono += 1;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    ck_assert_uint_eq(nevs, 1);
    check_ev(0, EV_TIMED_OUT, 2); /* the middle of the queue */
    check_stats(1, 0, 0, 1, 0, 0, 1, 2);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 100);
    fc.mono += 50;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_ev(1, EV_TIMED_OUT, 1);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    ck_assert_int_eq(locktable_release(T, K("k"), tok), 1);
    check_handoff(2, 3, tok, "k");
    check_stats(2, 1, 0, 2, 0, 1, 1, 0);
}
END_TEST

/* A wait that ends at the very moment the lock expires is granted. */
START_TEST(test_wait_and_expiry_same_instant)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = grab("k", 0);

    queue("k", 100, 100, &s, 1);
    /* Re-key the lock after the wait exists, so the tie is by deadline and
     * not by which heap entry came first. */
    ck_assert_int_eq(locktable_extend(T, K("k"), tok, 100), 1);
    fc.mono += 100;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    tok = check_handoff(0, 1, tok, "k");
    ck_assert_uint_eq(locktable_run_timers(T, 100), 0);

    queue("k", 100, 100, &s, 2); /* the same through the lazy path */
    fc.mono += 100;
    ck_assert_int_eq(locktable_is_locked(T, K("k")), 1);
    check_handoff(1, 2, tok, "k");
    check_stats(3, 0, 2, 0, 0, 2, 1, 0);
}
END_TEST

START_TEST(test_wait_forever)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = grab("k", 0);

    queue("k", 100, 0, &s, 1);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    fc.mono += 10000000000000ull;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 0);
    ck_assert_uint_eq(nevs, 0);
    check_stats(1, 0, 0, 0, 0, 0, 1, 1);
    ck_assert_int_eq(locktable_extend(T, K("k"), tok, 10), 1);
    fc.mono += 10;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_handoff(0, 1, tok, "k");
}
END_TEST

/* A wait that ran out before the lock came free must end in a timeout even
 * when the timer has not run yet (late timer, or a slice of run_timers still
 * to come): it may not be granted, and it may not hold up the waiter behind
 * it.  run_timers would process the two deadlines in this order. */
START_TEST(test_stale_wait_not_granted)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = grab("k", 200), t2;

    queue("k", 100, 100, &s, 1);
    queue("k", 100, 0, &s, 2);
    fc.mono += 300; /* the wait ended at +100, the lock at +200 */
    ck_assert_int_eq(locktable_is_locked(T, K("k")), 1);
    ck_assert_uint_eq(nevs, 2);
    check_ev(0, EV_TIMED_OUT, 1);
    check_handoff(1, 2, tok, "k");
    check_stats(2, 0, 1, 1, 0, 1, 1, 0);

    /* The same on RELEASE, with no waiter left behind: the key goes free. */
    t2 = grab("j", 0);
    queue("j", 100, 100, &s, 3);
    fc.mono += 150;
    ck_assert_int_eq(locktable_release(T, K("j"), t2), 1);
    ck_assert_uint_eq(nevs, 3);
    check_ev(2, EV_TIMED_OUT, 3);
    ck_assert_int_eq(locktable_is_locked(T, K("j")), 0);
    ck_assert_ptr_null(s.waiters);
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1); /* "k" expires */
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    check_stats(3, 1, 2, 2, 0, 1, 0, 0);
}
END_TEST

START_TEST(test_limits)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = 0;

    open_table(2, 2);
    grab("a", 0);
    grab("b", 0);
    ck_assert_int_eq(acq("c", 0, 0, 0, NULL, 0, 0, &tok), LOCK_LIMIT_LOCKS);
    ck_assert_int_eq(acq("c", 0, 1, 0, &s, 0, 0, &tok), LOCK_LIMIT_LOCKS);
    /* Waiting on a key that exists needs no new entry. */
    queue("a", 0, 0, &s, 1);
    queue("a", 0, 0, &s, 2);
    ck_assert_int_eq(acq("a", 0, 1, 0, &s, 0, 3, &tok), LOCK_LIMIT_WAITERS);
    queue("b", 0, 0, &s, 4); /* the bound is per key */
    ck_assert_int_eq(acq("a", 0, 0, 0, NULL, 0, 0, &tok), LOCK_BUSY);
    /* Limits are not "rejected": only the LOCK_BUSY counts. */
    check_stats(2, 0, 0, 0, 1, 0, 2, 3);
    locktable_session_cancel_waits(T, &s);
    ck_assert_int_eq(locktable_release(T, K("a"), 0), 1);
    ck_assert_uint_eq(grab("c", 0), 3);
    ck_assert_uint_eq(nevs, 0);
}
END_TEST

/* ---- sessions ---- */

START_TEST(test_session_end)
{
    struct lock_session s = { NULL, NULL }, o = { NULL, NULL };
    uint64_t t1 = 0, t2 = 0, t3;

    ck_assert_int_eq(acq("k1", 0, 0, 0, &s, 1, 0, &t1), LOCK_GRANTED);
    ck_assert_int_eq(acq("k2", 0, 0, 0, &s, 0, 0, &t2), LOCK_GRANTED);
    t3 = grab("k3", 0);
    queue("k1", 100, 0, &o, 1);
    queue("k1", 100, 0, &o, 2);
    queue("k2", 100, 0, &o, 3);
    queue("k3", 100, 0, &s, 4); /* s's own pending wait */
    check_stats(3, 0, 0, 0, 0, 0, 3, 4);

    locktable_session_end(T, &s);
    ck_assert_ptr_null(s.rec);
    ck_assert_ptr_null(s.waiters);
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_handoff(0, 1, t3, "k1"); /* k1 went to its head only */
    ck_assert_uint_eq(locktable_holder_token(T, K("k2")), t2); /* not SESSION */
    check_stats(4, 1, 0, 0, 0, 1, 3, 2);

    /* s's wait on k3 was dropped without a callback: a release frees k3. */
    ck_assert_int_eq(locktable_release(T, K("k3"), t3), 1);
    ck_assert_uint_eq(nevs, 1);
    ck_assert_uint_eq(grab("k3", 0), evs[0].token + 1);
    locktable_session_end(T, &s); /* a second end is harmless */
    ck_assert_uint_eq(nevs, 1);
}
END_TEST

START_TEST(test_session_cancel_waits_keeps_locks)
{
    struct lock_session s = { NULL, NULL };
    uint64_t t1 = 0, t2 = grab("k2", 0);

    ck_assert_int_eq(acq("k1", 0, 0, 0, &s, 1, 0, &t1), LOCK_GRANTED);
    queue("k2", 100, 0, &s, 1);
    queue("k2", 100, 10, &s, 2);
    locktable_session_cancel_waits(T, &s);
    ck_assert_ptr_null(s.waiters);
    ck_assert_ptr_nonnull(s.rec);
    ck_assert_uint_eq(locktable_holder_token(T, K("k1")), t1);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX); /* wait gone */
    check_stats(2, 0, 0, 0, 0, 0, 2, 0);
    ck_assert_int_eq(locktable_release(T, K("k2"), t2), 1);
    locktable_session_end(T, &s);
    ck_assert_uint_eq(run_all_timers(), 1);
    ck_assert_uint_eq(nevs, 0);
    check_stats(2, 2, 0, 0, 0, 0, 0, 0);
}
END_TEST

/* A SESSION lock obtained by waiting belongs to the waiter's session. */
START_TEST(test_session_lock_after_wait)
{
    struct lock_session a = { NULL, NULL }, b = { NULL, NULL }, c = { NULL, NULL };
    uint64_t tok = 0, unused = 0;

    ck_assert_int_eq(acq("k", 0, 0, 0, &a, 1, 0, &tok), LOCK_GRANTED);
    ck_assert_int_eq(acq("k", 100, 1, 0, &b, 1, 1, &unused), LOCK_QUEUED);
    queue("k", 100, 0, &c, 2);
    locktable_session_end(T, &a);
    ck_assert_uint_eq(run_all_timers(), 1);
    tok = check_handoff(0, 1, tok, "k");
    ck_assert_ptr_nonnull(b.rec);
    ck_assert_ptr_null(b.waiters);
    locktable_session_end(T, &b);
    ck_assert_ptr_null(b.rec);
    ck_assert_uint_eq(run_all_timers(), 1);
    check_handoff(1, 2, tok, "k");
    check_stats(3, 2, 0, 0, 0, 2, 1, 0);
}
END_TEST

/* A SESSION lock that ran out is expired, not released, by the session's end,
 * and one the timer expired is no longer linked to the session. */
START_TEST(test_session_lock_expired)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = 0;

    ck_assert_int_eq(acq("a", 100, 0, 0, &s, 1, 0, &tok), LOCK_GRANTED);
    ck_assert_int_eq(acq("b", 50, 0, 0, &s, 1, 0, &tok), LOCK_GRANTED);
    fc.mono += 60;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    ck_assert_uint_eq(locktable_draining(T), 0);
    fc.mono += 40;
    locktable_session_end(T, &s);
    ck_assert_ptr_null(s.rec);
    ck_assert_uint_eq(locktable_draining(T), 1); /* "a" only */
    ck_assert_uint_eq(run_all_timers(), 1);
    check_stats(2, 0, 2, 0, 0, 0, 0, 0);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
}
END_TEST

/* ---- crash recovery ---- */

START_TEST(test_recovery)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = 0;

    ck_assert_int_eq(locktable_recovering(T), 0);
    ck_assert_int_eq(locktable_restore(T, K("r"), 50, 1000, NULL, 0), 0);
    locktable_block_grants_until(T, T0 + 5000);
    ck_assert_int_eq(locktable_recovering(T), 1);
    ck_assert_int_eq(acq("k", 0, 0, 0, NULL, 0, 0, &tok), LOCK_BUSY);
    queue("k", 100, 0, &s, 1);
    queue("k", 100, 0, &s, 2);
    queue("k", 100, 0, &s, 3);
    queue("t", 100, 1000, &s, 4); /* runs out during recovery */
    queue("r", 100, 0, &s, 5);    /* behind a lock expiring in recovery */
    check_stats(0, 0, 0, 0, 1, 0, 1, 5);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 1000);

    fc.mono = T0 + 1000;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 2); /* "r" and "t" */
    ck_assert_uint_eq(nevs, 1);
    check_ev(0, EV_TIMED_OUT, 4);
    /* Free now, but while recovering any key may still be held by a lock
     * from before the crash: it reads as held until recovery ends. */
    ck_assert_int_eq(locktable_is_locked(T, K("r")), 1);
    ck_assert_int_eq(locktable_pttl_us(T, K("r")), 4000);
    ck_assert_int_eq(locktable_is_locked(T, K("never-seen")), 1);
    ck_assert_int_eq(locktable_pttl_us(T, K("never-seen")), 4000);
    ck_assert_int_eq(locktable_release(T, K("never-seen"), 0), 0);
    ck_assert_int_eq(locktable_extend(T, K("never-seen"), 7, 10), 0);
    ck_assert_uint_eq(locktable_holder_token(T, K("never-seen")), 0);
    check_stats(0, 0, 1, 1, 1, 0, 0, 4);
    fc.mono = T0 + 4999;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 0);
    ck_assert_int_eq(locktable_recovering(T), 1);
    ck_assert_int_eq(acq("new", 0, 0, 0, NULL, 0, 0, &tok), LOCK_BUSY);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 5000);

    fc.mono = T0 + 5000;
    ck_assert_int_eq(locktable_recovering(T), 0);
    ck_assert_uint_eq(locktable_run_timers(T, 100), 2);
    ck_assert_uint_eq(nevs, 3);
    /* One grant per key, to its head; the rest stay queued. */
    size_t ik = evs[1].ctx == 1 ? 1 : 2, ir = 3 - ik;
    check_ev(ik, EV_GRANTED, 1);
    check_ev(ir, EV_GRANTED, 5);
    ck_assert_uint_eq(locktable_holder_token(T, K("k")), evs[ik].token);
    ck_assert_uint_eq(locktable_holder_token(T, K("r")), evs[ir].token);
    ck_assert_uint_gt(evs[1].token, 50); /* above the restored token */
    check_stats(2, 0, 1, 1, 2, 2, 2, 2);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + 5100);
    ck_assert_uint_eq(grab("new", 0), evs[2].token + 1);
}
END_TEST

/* Recovery ends for a key even when no timer runs: the first access grants
 * the head of its queue before anything else happens. */
START_TEST(test_recovery_ends_lazily)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = 0;

    locktable_block_grants_until(T, T0 + 5000);
    queue("k", 100, 0, &s, 1);
    queue("k", 100, 0, &s, 2);
    fc.mono = T0 + 5000;
    ck_assert_int_eq(acq("k", 0, 0, 0, NULL, 0, 0, &tok), LOCK_BUSY);
    check_handoff(0, 1, 0, "k");
    check_stats(1, 0, 0, 0, 1, 1, 1, 1);
}
END_TEST

/* A wait that alone made its key's entry (possible only in recovery) takes
 * the entry with it when its session ends. */
START_TEST(test_recovery_wait_entry_freed)
{
    struct lock_session s = { NULL, NULL }, o = { NULL, NULL };
    uint64_t tok = 0;

    open_table(1, 0);
    locktable_block_grants_until(T, T0 + 5000);
    queue("k", 100, 0, &s, 1);
    ck_assert_int_eq(acq("j", 0, 1, 0, &o, 0, 2, &tok), LOCK_LIMIT_LOCKS);
    locktable_session_end(T, &s);
    ck_assert_ptr_null(s.waiters);
    check_stats(0, 0, 0, 0, 0, 0, 0, 0);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    queue("j", 100, 0, &o, 2); /* the one entry allowed is free again */
    fc.mono = T0 + 5000;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_handoff(0, 2, 0, "j");
    ck_assert_int_eq(locktable_release(T, K("j"), 0), 1);
    ck_assert_uint_eq(grab("k", 0), evs[0].token + 1); /* at once */
    ck_assert_uint_eq(nevs, 1);
}
END_TEST

/* ---- restore and snapshot ---- */

struct held { char key[8]; uint64_t token, left; };

struct held_log {
    struct held h[8];
    int n;
    int stop_with; /* returned by the callback */
};

static int collect(const struct lock_view *v, void *arg)
{
    const char *key = v->key;
    size_t keylen = v->keylen;
    uint64_t token = v->token, ttl_left_us = v->ttl_left_us;
    struct held_log *l = arg;
    REQUIRE(l->n < 8 && keylen < 8); /* key has no terminator */
    memcpy(l->h[l->n].key, key, keylen);
    l->h[l->n].key[keylen] = '\0';
    l->h[l->n].token = token;
    l->h[l->n].left = ttl_left_us;
    l->n++;
    return l->stop_with;
}

static const struct held *find_held(const struct held_log *l, const char *key)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->h[i].key, key) == 0)
            return &l->h[i];
    return NULL;
}

START_TEST(test_restore_foreach_held)
{
    struct held_log l;
    const struct held *h;

    ck_assert_int_eq(locktable_restore(T, K("a"), 500, 1000, NULL, 0), 0);
    ck_assert_int_eq(locktable_restore(T, K("b"), 700, 0, NULL, 0), 0);
    ck_assert_int_eq(locktable_restore(T, K("c"), 600, 50, NULL, 0), 0);
    ck_assert_int_eq(locktable_restore(T, K("a"), 900, 10, NULL, 0), -1); /* held */
    ck_assert_uint_eq(locktable_holder_token(T, K("a")), 500);
    ck_assert_uint_eq(locktable_last_token(T), 700);
    ck_assert_int_eq(locktable_pttl_us(T, K("b")), -1);
    check_stats(0, 0, 0, 0, 0, 0, 3, 0);

    fc.mono += 100; /* "c" ran out, not yet collected */
    memset(&l, 0, sizeof(l));
    ck_assert_int_eq(locktable_foreach_held(T, collect, &l), 0);
    ck_assert_int_eq(l.n, 2);
    ck_assert_ptr_nonnull(h = find_held(&l, "a"));
    ck_assert_uint_eq(h->token, 500);
    ck_assert_uint_eq(h->left, 900);
    ck_assert_ptr_nonnull(h = find_held(&l, "b"));
    ck_assert_uint_eq(h->token, 700);
    ck_assert_uint_eq(h->left, 0); /* no expiry */

    /* A non-zero return stops the walk and is passed on. */
    memset(&l, 0, sizeof(l));
    l.stop_with = 7;
    ck_assert_int_eq(locktable_foreach_held(T, collect, &l), 7);
    ck_assert_int_eq(l.n, 1);

    /* Grants continue above the restored tokens; a lower restore keeps it. */
    ck_assert_uint_eq(grab("d", 0), 701);
    ck_assert_int_eq(locktable_restore(T, K("c"), 3, 10, NULL, 0), 0); /* expired one */
    ck_assert_uint_eq(locktable_last_token(T), 701);
    ck_assert_int_eq(locktable_restore(T, K("e"), 9000, 10, NULL, 0), 0);
    ck_assert_uint_eq(grab("f", 0), 9001);
    check_stats(2, 0, 1, 0, 0, 0, 6, 0);
}
END_TEST

/* ---- the journal hooks (crash safety) ---- */

/* What the fake journal was asked, and whether it says yes. */
struct jlog {
    int fail;               /* every hook fails while set */
    int horizons, holds, frees;
    uint64_t horizon_asked; /* last deadline raise_horizon was given */
    uint64_t hold_until;    /* last deadline hold was given */
    int hold_has_value;     /* last hold carried a value ... */
    char hold_value[16];    /* ... this one */
    uint64_t hold_token, free_token;
    char hold_key[8], free_key[8];
};

static struct jlog jl;

#define J_SLACK 500u        /* the fake horizon's slack */
#define J_LONG 10000u       /* long_lease_us */
#define J_RETRY 1000u       /* journal_retry_us */

static uint64_t j_horizon(void *arg, uint64_t deadline)
{
    REQUIRE(arg == &jl);
    jl.horizons++;
    jl.horizon_asked = deadline;
    return jl.fail ? 0 : deadline + J_SLACK;
}

static void j_key(char *out, const char *key, size_t keylen)
{
    REQUIRE(keylen < 8);
    memcpy(out, key, keylen);
    out[keylen] = '\0';
}

static int j_hold(void *arg, const char *key, size_t keylen, uint64_t token,
                  uint64_t deadline, const char *value, size_t vlen)
{
    REQUIRE(arg == &jl);
    jl.holds++;
    j_key(jl.hold_key, key, keylen);
    jl.hold_token = token;
    jl.hold_until = deadline;
    jl.hold_has_value = value != NULL;
    if (value) {
        REQUIRE(vlen < sizeof(jl.hold_value));
        memcpy(jl.hold_value, value, vlen);
        jl.hold_value[vlen] = '\0';
    }
    return jl.fail ? -1 : 0;
}

static void j_freed(void *arg, const char *key, size_t keylen, uint64_t token)
{
    REQUIRE(arg == &jl);
    jl.frees++;
    j_key(jl.free_key, key, keylen);
    jl.free_token = token;
}

static void journal_on(uint64_t horizon)
{
    struct lock_journal j = { j_horizon, j_hold, j_freed, J_LONG, J_RETRY,
                              &jl };
    memset(&jl, 0, sizeof(jl));
    locktable_set_journal(T, &j, horizon);
}

/* Short leases only move the horizon, and only past it; long ones and
 * FOREVER are written one by one, and so is every later extend of them;
 * a SESSION lease counts for at most long_lease_us and is never written. */
START_TEST(test_journal_horizon_and_holds)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = 0;

    journal_on(T0 + 100);
    grab("a", 50);                       /* within the horizon: nothing */
    ck_assert_int_eq(jl.horizons, 0);
    grab("b", 1000);
    ck_assert_int_eq(jl.horizons, 1);
    ck_assert_uint_eq(jl.horizon_asked, T0 + 1000);
    ck_assert_uint_eq(locktable_horizon(T), T0 + 1000 + J_SLACK);
    grab("c", 1400);                     /* under the slack: no write */
    ck_assert_int_eq(jl.horizons, 1);
    ck_assert_int_eq(jl.holds, 0);

    uint64_t tf = grab("f", 0);          /* FOREVER */
    ck_assert_int_eq(jl.holds, 1);
    ck_assert_str_eq(jl.hold_key, "f");
    ck_assert_uint_eq(jl.hold_token, tf);
    ck_assert_uint_eq(jl.hold_until, UINT64_MAX);
    uint64_t tl = grab("l", J_LONG + 1); /* just longer than long_lease */
    ck_assert_int_eq(jl.holds, 2);
    ck_assert_uint_eq(jl.hold_until, T0 + J_LONG + 1);
    grab("m", J_LONG);                   /* exactly long_lease: a horizon */
    ck_assert_int_eq(jl.holds, 2);
    ck_assert_int_eq(jl.horizons, 2);
    ck_assert_uint_eq(jl.horizon_asked, T0 + J_LONG);

    /* An extend of a written lease is written, even a short one. */
    ck_assert_int_eq(locktable_extend(T, K("l"), tl, 10), 1);
    ck_assert_int_eq(jl.holds, 3);
    ck_assert_uint_eq(jl.hold_until, T0 + 10);
    /* A short lease extended past long_lease becomes written. */
    uint64_t tb = locktable_holder_token(T, K("b"));
    ck_assert_int_eq(locktable_extend(T, K("b"), tb, 0), 1);
    ck_assert_int_eq(jl.holds, 4);
    ck_assert_str_eq(jl.hold_key, "b");

    /* SESSION FOREVER: the horizon covers long_lease_us, no hold. */
    ck_assert_int_eq(acq("s", 0, 0, 0, &s, 1, 0, &tok), LOCK_GRANTED);
    ck_assert_int_eq(jl.holds, 4);
    ck_assert_uint_eq(jl.horizon_asked, T0 + J_LONG);
    ck_assert_int_eq(jl.horizons, 2); /* T0 + J_LONG is covered already */

    struct held_log hl = { .n = 0 };
    ck_assert_int_eq(locktable_foreach_durable(T, collect, &hl), 0);
    ck_assert_int_eq(hl.n, 3); /* f, l, b */
    ck_assert_ptr_nonnull(find_held(&hl, "f"));
    ck_assert_ptr_nonnull(find_held(&hl, "l"));
    ck_assert_ptr_nonnull(find_held(&hl, "b"));
    locktable_session_end(T, &s);
    ck_assert_int_eq(jl.frees, 0); /* it was never written */
}
END_TEST

/* The end of a written lease is written (release, session end), except
 * an expiry, which its hold record already says. */
START_TEST(test_journal_frees)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = 0;

    journal_on(0);
    uint64_t tf = grab("f", 0);
    ck_assert_int_eq(locktable_release(T, K("f"), tf), 1);
    ck_assert_int_eq(jl.frees, 1);
    ck_assert_str_eq(jl.free_key, "f");
    ck_assert_uint_eq(jl.free_token, tf);

    grab("x", J_LONG + 5);
    fc.mono = T0 + J_LONG + 5;
    ck_assert_uint_eq(locktable_run_timers(T, 10), 1);
    ck_assert_int_eq(jl.frees, 1);

    /* Restored long leases are durable too: a release is written. */
    ck_assert_int_eq(locktable_restore(T, K("r"), 777, 0, NULL, 0), 0);
    ck_assert_int_eq(locktable_restore(T, K("q"), 778, 5, NULL, 0), 0);
    ck_assert_int_eq(locktable_release(T, K("r"), 0), 1);
    ck_assert_int_eq(jl.frees, 2);
    ck_assert_uint_eq(jl.free_token, 777);
    ck_assert_int_eq(locktable_release(T, K("q"), 0), 1);
    ck_assert_int_eq(jl.frees, 2); /* a short one was never written */
    (void)s;
    (void)tok;
}
END_TEST

/* A hook that fails promises nothing: the acquire is refused with nothing
 * held, the extend keeps the old expiry, and a handoff keeps its waiter
 * first in line and is tried again journal_retry_us later. */
START_TEST(test_journal_failures)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tok = 0;

    journal_on(0);
    jl.fail = 1;
    ck_assert_int_eq(acq("a", 1000, 0, 0, NULL, 0, 0, &tok), LOCK_NOT_DURABLE);
    ck_assert_int_eq(acq("f", 0, 0, 0, NULL, 0, 0, &tok), LOCK_NOT_DURABLE);
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 0);
    ck_assert_int_eq(locktable_is_locked(T, K("f")), 0);
    check_stats(0, 0, 0, 0, 0, 0, 0, 0);

    jl.fail = 0;
    uint64_t ta = grab("a", 1000);
    ck_assert_uint_eq(ta, 3); /* two tokens were used up */
    jl.fail = 1;
    ck_assert_int_eq(locktable_extend(T, K("a"), ta, 5000), -1);
    ck_assert_int_eq(locktable_pttl_us(T, K("a")), 1000);
    ck_assert_int_eq(locktable_extend(T, K("a"), ta, 0), -1);
    ck_assert_int_eq(locktable_pttl_us(T, K("a")), 1000);

    /* A waiter for a FOREVER lease: its grant cannot be written. */
    queue("a", 0, 0, &s, 7);
    ck_assert_int_eq(locktable_release(T, K("a"), ta), 1);
    ck_assert_uint_eq(nevs, 0);
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 0);
    ck_assert_uint_eq(locktable_next_deadline(T), T0 + J_RETRY);
    fc.mono = T0 + J_RETRY;
    ck_assert_uint_eq(locktable_run_timers(T, 10), 1); /* fails again */
    ck_assert_uint_eq(nevs, 0);
    jl.fail = 0;
    fc.mono = T0 + 2 * J_RETRY;
    ck_assert_uint_eq(locktable_run_timers(T, 10), 1);
    check_ev(0, EV_GRANTED, 7);
    ck_assert_uint_eq(locktable_holder_token(T, K("a")), evs[0].token);
    ck_assert_uint_eq(jl.hold_token, evs[0].token);
    ck_assert_ptr_null(s.waiters);
}
END_TEST

/* Out of memory at every allocation of a journaled grant and restore:
 * refused or granted, never half done (ASan and valgrind see no leak).
 * Each round starts from a fresh table, so that the allocations a first
 * grant or restore makes (slab page, both heaps' arrays) are all reached,
 * with the grant first in odd rounds and the restore first in even ones. */
START_TEST(test_journal_no_memory)
{
    int refused = 0, unrestored = 0;
    for (int n = 1; n <= 8; n++) {
        uint64_t tok = 0;
        enum lock_result r;
        int restored;
        open_table(0, 0);
        journal_on(0);
        alloc_fail_nth((n + 1) / 2);
        if (n % 2) {
            r = acq("f", 0, 0, 0, NULL, 0, 0, &tok);
            restored = locktable_restore(T, K("r"), 5, 0, NULL, 0);
        } else {
            restored = locktable_restore(T, K("r"), 5, 0, NULL, 0);
            r = acq("f", 0, 0, 0, NULL, 0, 0, &tok);
        }
        alloc_fail_reset();
        ck_assert(r == LOCK_GRANTED || r == LOCK_NOT_DURABLE ||
                  r == LOCK_NO_MEMORY);
        ck_assert_int_eq(locktable_is_locked(T, K("f")), r == LOCK_GRANTED);
        ck_assert_int_eq(locktable_is_locked(T, K("r")), restored == 0);
        struct held_log hl = { .n = 0 };
        ck_assert_int_eq(locktable_foreach_durable(T, collect, &hl), 0);
        ck_assert_int_eq(hl.n, (r == LOCK_GRANTED) + (restored == 0));
        if (r == LOCK_GRANTED)
            ck_assert_int_eq(locktable_release(T, K("f"), tok), 1);
        if (restored == 0)
            ck_assert_int_eq(locktable_forget(T, K("r"), 5), 1);
        ck_assert_int_eq(jl.frees, r == LOCK_GRANTED);
        check_stats(r == LOCK_GRANTED, r == LOCK_GRANTED, 0, 0, 0, 0, 0, 0);
        refused += r != LOCK_GRANTED;
        unrestored += restored != 0;
    }
    ck_assert_int_gt(refused, 0);    /* the failures were reached */
    ck_assert_int_gt(unrestored, 0);
}
END_TEST

/* Replaying a journal: forget removes a lock without counting it or
 * writing anything, by token or whoever holds it. */
START_TEST(test_forget)
{
    journal_on(0);
    ck_assert_int_eq(locktable_restore(T, K("a"), 500, 0, NULL, 0), 0);
    ck_assert_int_eq(locktable_restore(T, K("b"), 600, 1000, NULL, 0), 0);
    ck_assert_int_eq(locktable_forget(T, K("a"), 499), 0);
    ck_assert_int_eq(locktable_forget(T, K("a"), 500), 1);
    ck_assert_int_eq(locktable_forget(T, K("a"), 0), 0);
    ck_assert_int_eq(locktable_forget(T, K("b"), 0), 1);
    ck_assert_int_eq(jl.frees, 0);
    check_stats(0, 0, 0, 0, 0, 0, 0, 0);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    ck_assert_uint_eq(grab("a", 0), 601);
}
END_TEST

/* ---- stats ---- */

START_TEST(test_stats_script)
{
    struct lock_session s = { NULL, NULL };
    uint64_t a, b, tok = 0;

    check_stats(0, 0, 0, 0, 0, 0, 0, 0);
    a = grab("a", 100);                                   /* acquired 1 */
    b = grab("b", 0);                                     /* acquired 2 */
    ck_assert_int_eq(acq("a", 0, 0, 0, NULL, 0, 0, &tok), LOCK_BUSY);
    ck_assert_int_eq(acq("b", 0, 0, 0, NULL, 0, 0, &tok), LOCK_BUSY);
    queue("a", 100, 0, &s, 1);
    queue("b", 100, 30, &s, 2);
    check_stats(2, 0, 0, 0, 2, 0, 2, 2);
    fc.mono += 30;                                        /* wait on b ends */
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);
    check_stats(2, 0, 0, 1, 2, 0, 2, 1);
    fc.mono += 70;                                        /* a expires */
    ck_assert_uint_eq(locktable_run_timers(T, 100), 1);   /* handed to 1 */
    check_stats(3, 0, 1, 1, 2, 1, 2, 0);
    ck_assert_int_eq(locktable_release(T, K("a"), a), 0); /* stale token */
    ck_assert_int_eq(locktable_release(T, K("b"), b), 1);
    ck_assert_int_eq(locktable_release(T, K("a"), 0), 1);
    check_stats(3, 2, 1, 1, 2, 1, 0, 0);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
}
END_TEST

/* ---- links records and entry memory ---- */

/* The SESSION links and waiter queues live in links records, found by the
 * entry's address.  After thousands of plain locks came and went (their
 * memory reused by later entries), SESSION locks, waiters and handoffs
 * still behave, plain locks never get a record, and no record outlives its
 * key. */
START_TEST(test_links_after_churn)
{
    enum { PLAIN = 5000, SESS = 50, QUEUED = 10 };
    struct lock_session s = { NULL, NULL }, w = { NULL, NULL };
    uint64_t stoks[SESS];
    char key[32];
    struct lock_stats st;

    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < PLAIN; i++) {
            snprintf(key, sizeof(key), "p%d", i);
            grab(key, 1000);
        }
        REQUIRE(locktable_links_records(T) == 0);
        for (int i = 0; i < PLAIN; i++) {
            snprintf(key, sizeof(key), "p%d", i);
            REQUIRE(locktable_release(T, K(key), 0) == 1);
        }
    }
    /* SESSION locks between plain ones: one record each. */
    for (int i = 0; i < SESS; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        ck_assert_int_eq(acq(key, 0, 0, 0, &s, 1, 0, &stoks[i]), LOCK_GRANTED);
        for (int j = 0; j < PLAIN / SESS; j++) {
            snprintf(key, sizeof(key), "p%d", i * (PLAIN / SESS) + j);
            grab(key, 1000);
        }
    }
    ck_assert_uint_eq(locktable_links_records(T), SESS);
    /* RELEASE of the even ones drops their records; their entries' memory
     * goes to the "q" keys below, which have no SESSION holder. */
    for (int i = 0; i < SESS; i += 2) {
        snprintf(key, sizeof(key), "s%d", i);
        ck_assert_int_eq(locktable_release(T, K(key), stoks[i]), 1);
    }
    ck_assert_uint_eq(locktable_links_records(T), SESS / 2);
    for (int i = 0; i < PLAIN; i++) {
        snprintf(key, sizeof(key), "p%d", i);
        REQUIRE(locktable_release(T, K(key), 0) == 1);
    }
    for (int i = 0; i < PLAIN; i++) {
        snprintf(key, sizeof(key), "q%d", i);
        grab(key, 0);
    }
    ck_assert_uint_eq(locktable_links_records(T), SESS / 2);
    /* Three waiters on each of q0..q9: one more record per key. */
    for (int k = 0; k < QUEUED; k++) {
        snprintf(key, sizeof(key), "q%d", k);
        for (uintptr_t c = 1; c <= 3; c++)
            queue(key, 100, 0, &w, (uintptr_t)k * 3 + c);
    }
    ck_assert_uint_eq(locktable_links_records(T), SESS / 2 + QUEUED);

    /* The session's end releases exactly its (odd) SESSION locks. */
    locktable_session_end(T, &s);
    ck_assert_ptr_null(s.rec);
    ck_assert_uint_eq(run_all_timers(), SESS / 2);
    for (int i = 0; i < SESS; i++) {
        snprintf(key, sizeof(key), "s%d", i);
        REQUIRE(locktable_is_locked(T, K(key)) == 0);
    }
    for (int i = 0; i < PLAIN; i++) {
        snprintf(key, sizeof(key), "q%d", i);
        REQUIRE(locktable_holder_token(T, K(key)) != 0);
    }
    ck_assert_uint_eq(locktable_links_records(T), QUEUED);
    ck_assert_uint_eq(nevs, 0);

    /* RELEASE hands each key to its waiters in queue order; the last
     * release frees the key and its record. */
    for (int k = 0; k < QUEUED; k++) {
        snprintf(key, sizeof(key), "q%d", k);
        uint64_t tok = locktable_holder_token(T, K(key));
        for (uintptr_t c = 1; c <= 3; c++) {
            ck_assert_int_eq(locktable_release(T, K(key), tok), 1);
            tok = check_handoff(nevs - 1, (uintptr_t)k * 3 + c,
                                tok, key);
        }
        ck_assert_int_eq(locktable_release(T, K(key), tok), 1);
        ck_assert_int_eq(locktable_is_locked(T, K(key)), 0);
        ck_assert_uint_eq(locktable_links_records(T), QUEUED - 1 - (size_t)k);
    }
    ck_assert_uint_eq(nevs, 3 * QUEUED);
    ck_assert_ptr_null(w.waiters);
    locktable_stats(T, &st);
    ck_assert_uint_eq(st.held, PLAIN - QUEUED);
    ck_assert_uint_eq(st.waiters, 0);
    ck_assert_uint_eq(st.handoffs, 3 * QUEUED);
    ck_assert_uint_eq(st.released, 3 * PLAIN + SESS / 2 + PLAIN + SESS / 2 +
                                       4 * QUEUED);
}
END_TEST

/* A key's entry memory goes to the next entry of its size: the new key
 * must not inherit the old one's SESSION holder or links record. */
START_TEST(test_reused_entry_memory)
{
    struct lock_session s = { NULL, NULL };
    uint64_t ta = 0, tb, tc, td;

    ck_assert_int_eq(acq("a", 0, 0, 0, &s, 1, 0, &ta), LOCK_GRANTED);
    ck_assert_uint_eq(locktable_links_records(T), 1);
    ck_assert_int_eq(locktable_release(T, K("a"), ta), 1);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    tb = grab("b", 0);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    locktable_session_end(T, &s); /* "b" is not the session's */
    ck_assert_uint_eq(locktable_holder_token(T, K("b")), tb);

    /* The same after a waiter queue: the record goes with the last waiter,
     * while "c" stays held. */
    tc = grab("c", 0);
    queue("c", 100, 0, &s, 1);
    ck_assert_uint_eq(locktable_links_records(T), 1);
    locktable_session_cancel_waits(T, &s);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    ck_assert_uint_eq(locktable_holder_token(T, K("c")), tc);
    ck_assert_int_eq(locktable_release(T, K("c"), tc), 1);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    td = grab("d", 0);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    ck_assert_int_eq(locktable_release(T, K("d"), td), 1);
    ck_assert_uint_eq(nevs, 0);
    check_stats(4, 3, 0, 0, 0, 0, 1, 0);
}
END_TEST

/* A key's links record lives only while something needs it: a SESSION
 * holder or a waiter.  A held lock whose waiters are gone (granted, timed
 * out, cancelled) is back to a plain entry, and a wait refused for memory
 * leaves no record behind. */
START_TEST(test_links_record_trimmed)
{
    struct lock_session s = { NULL, NULL }, s2 = { NULL, NULL };
    uint64_t ta = grab("a", 0), tok = 0;

    /* Granted to a plain waiter, the last one: no record. */
    queue("a", 0, 0, &s, 1);
    ck_assert_uint_eq(locktable_links_records(T), 1);
    ck_assert_int_eq(locktable_release(T, K("a"), ta), 1);
    check_ev(0, EV_GRANTED, 1);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    ck_assert_ptr_null(s.waiters);

    /* Granted to a SESSION waiter: its record holds the session link,
     * until the session ends and the lock goes. */
    ta = evs[0].token;
    ck_assert_int_eq(acq("a", 0, 1, 0, &s2, 1, 2, &tok), LOCK_QUEUED);
    ck_assert_int_eq(locktable_release(T, K("a"), ta), 1);
    check_ev(1, EV_GRANTED, 2);
    ck_assert_uint_eq(locktable_links_records(T), 1);
    ck_assert_ptr_nonnull(s2.rec);
    locktable_session_end(T, &s2);
    ck_assert_int_eq(locktable_is_locked(T, K("a")), 0);
    ck_assert_uint_eq(locktable_links_records(T), 0);

    /* A wait that runs out on a held lock (the timer's path). */
    uint64_t tb = grab("b", 0);
    queue("b", 0, 1000, &s, 3);
    fc.mono += 2000;
    ck_assert_uint_eq(locktable_run_timers(T, 10), 1);
    check_ev(2, EV_TIMED_OUT, 3);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    ck_assert_uint_eq(locktable_holder_token(T, K("b")), tb);

    /* The waiter's allocation fails after the record was made (the 1st
     * allocation): LOCK_NO_MEMORY, and no record is left. */
    alloc_fail_nth(2);
    ck_assert_int_eq(acq("b", 0, 1, 0, &s, 0, 4, &tok), LOCK_NO_MEMORY);
    alloc_fail_reset();
    ck_assert_uint_eq(locktable_links_records(T), 0);
    ck_assert_ptr_null(s.waiters);
    ck_assert_uint_eq(nevs, 3);
}
END_TEST

/* Binary keys of every length from 1 to KEYS_MAX bytes, each a prefix of
 * the next: entries of every slab class and, past SLAB_MAX_SIZE, from
 * malloc.  Each is found by its exact bytes and listed with them; the ones
 * left held are freed by locktable_free (the sanitizer runs check it). */
#define KEYS_MAX 400

static char long_key[KEYS_MAX];

static int check_long_key(const struct lock_view *v, void *arg)
{
    const char *key = v->key;
    size_t keylen = v->keylen;
    uint64_t token = v->token, ttl_left_us = v->ttl_left_us;
    size_t *count = arg;
    REQUIRE(keylen >= 1 && keylen <= KEYS_MAX && keylen % 2 == 0);
    REQUIRE(memcmp(key, long_key, keylen) == 0);
    REQUIRE(token == keylen && ttl_left_us == 0);
    (*count)++;
    return 0;
}

START_TEST(test_key_lengths)
{
    uint64_t tok = 0;
    size_t count = 0;

    for (size_t i = 0; i < KEYS_MAX; i++)
        long_key[i] = (char)(i * 7); /* NULs at 0, 256: in the keys */
    for (size_t len = 1; len <= KEYS_MAX; len++) {
        struct lock_request rq = { long_key, len, 0, 0, 0, 0, NULL, NULL,
                                   NULL, 0 };
        REQUIRE(locktable_acquire(T, &rq, &tok) == LOCK_GRANTED);
        REQUIRE(tok == len); /* wall clock 0: tokens 1, 2, 3, ... */
    }
    for (size_t len = 1; len <= KEYS_MAX; len++)
        REQUIRE(locktable_holder_token(T, long_key, len) == len);
    for (size_t len = 1; len <= KEYS_MAX; len += 2)
        REQUIRE(locktable_release(T, long_key, len, len) == 1);
    for (size_t len = 1; len <= KEYS_MAX; len++)
        REQUIRE(locktable_is_locked(T, long_key, len) == (len % 2 == 0));
    ck_assert_int_eq(locktable_foreach_held(T, check_long_key, &count), 0);
    ck_assert_uint_eq(count, KEYS_MAX / 2);
}
END_TEST

/* ---- sessions ended in slices ---- */

/* Takes n SESSION locks "<prefix><i>" for s (no TTL); tokens not kept. */
static void grab_session(struct lock_session *s, const char *prefix, int n)
{
    char key[32];
    uint64_t tok;
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%s%d", prefix, i);
        REQUIRE(acq(key, 0, 0, 0, s, 1, 0, &tok) == LOCK_GRANTED);
    }
}

/* Ending a session of N locks does no release at all; run_timers then
 * releases at most max_events locks per call, and all of them in the end.
 * While any are left the engine says its timers are due now. */
START_TEST(test_session_end_sliced)
{
    enum { N = 5000, SLICE = 128 };
    struct lock_session s = { NULL, NULL };
    struct lock_stats st;
    size_t calls = 0, left = N;

    grab_session(&s, "k", N);
    ck_assert_uint_eq(locktable_links_records(T), N);
    locktable_session_end(T, &s);
    ck_assert_ptr_null(s.rec);
    check_stats(N, 0, 0, 0, 0, 0, N, 0); /* nothing released yet */
    ck_assert_uint_eq(locktable_draining(T), N);
    while (left > 0) {
        ck_assert_uint_eq(locktable_next_deadline(T), 0);
        size_t did = locktable_run_timers(T, SLICE);
        ck_assert_uint_eq(did, left < SLICE ? left : SLICE);
        left -= did;
        calls++;
        locktable_stats(T, &st);
        REQUIRE(st.held == left && st.released == N - left);
        REQUIRE(locktable_draining(T) == left);
    }
    ck_assert_uint_eq(calls, (N + SLICE - 1) / SLICE);
    ck_assert_uint_eq(locktable_run_timers(T, SLICE), 0);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    check_stats(N, N, 0, 0, 0, 0, 0, 0);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    ck_assert_uint_eq(nevs, 0);
}
END_TEST

/* Waiters on a draining session's keys get them in FIFO order, one grant
 * per key, as the drain reaches each key.  A bounded wait that runs out
 * after the session ended (while the drain is still busy elsewhere) is
 * granted, not timed out: the key was free from the end on. */
START_TEST(test_session_drain_fifo)
{
    enum { KEYS = 10 };
    struct lock_session hs = { NULL, NULL }, ws = { NULL, NULL };
    char key[32];
    int granted[KEYS] = { 0 };

    grab_session(&hs, "k", KEYS);
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof(key), "k%d", k);
        for (uintptr_t c = 1; c <= 3; c++) /* the first bounded: 50 us */
            ck_assert_int_eq(acq(key, 100, 1, c == 1 ? 50 : 0, &ws, 1,
                                 (uintptr_t)k * 10 + c, &(uint64_t){ 0 }),
                             LOCK_QUEUED);
    }
    locktable_session_end(T, &hs);
    ck_assert_uint_eq(nevs, 0);
    ck_assert_uint_eq(locktable_run_timers(T, 3), 3);
    ck_assert_uint_eq(nevs, 3);
    fc.mono += 60; /* the bounded waits of the keys left run out now */
    while (locktable_run_timers(T, 1) == 1)
        ;
    ck_assert_uint_eq(nevs, KEYS);
    for (size_t i = 0; i < nevs; i++) {
        /* Each key's first waiter, whose wait ended after the session. */
        ck_assert_int_eq(evs[i].kind, EV_GRANTED);
        ck_assert_uint_eq(evs[i].ctx % 10, 1);
        int k = (int)(evs[i].ctx / 10);
        ck_assert_int_eq(granted[k]++, 0);
        snprintf(key, sizeof(key), "k%d", k);
        ck_assert_uint_eq(locktable_holder_token(T, K(key)), evs[i].token);
    }
    check_stats(KEYS * 2, KEYS, 0, 0, 0, KEYS, KEYS, 2 * KEYS);
    /* The new holders' session ends: the next in each queue, in order. */
    locktable_session_end(T, &ws);
    ck_assert_uint_eq(run_all_timers(), KEYS);
    ck_assert_uint_eq(nevs, KEYS); /* ws's own waits were cancelled */
    check_stats(KEYS * 2, KEYS * 2, 0, 0, 0, KEYS, 0, 0);
    ck_assert_uint_eq(locktable_links_records(T), 0);
}
END_TEST

/* A session that ends while another still drains queues behind it: the
 * older one's keys are all handed on before any of the newer one's. */
START_TEST(test_session_end_while_draining)
{
    enum { N = 100 };
    struct lock_session a = { NULL, NULL }, b = { NULL, NULL },
                        w = { NULL, NULL };
    char key[32];

    grab_session(&a, "a", N);
    grab_session(&b, "b", N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "a%d", i);
        queue(key, 0, 0, &w, 1);
        snprintf(key, sizeof(key), "b%d", i);
        queue(key, 0, 0, &w, 2);
    }
    locktable_session_end(T, &a);
    ck_assert_uint_eq(locktable_run_timers(T, 10), 10);
    locktable_session_end(T, &b);
    ck_assert_uint_eq(locktable_draining(T), 2 * N - 10);
    ck_assert_uint_eq(locktable_run_timers(T, N - 10), N - 10);
    ck_assert_uint_eq(nevs, N);
    for (size_t i = 0; i < nevs; i++)
        REQUIRE(evs[i].kind == EV_GRANTED && evs[i].ctx == 1);
    ck_assert_uint_eq(locktable_run_timers(T, 1000), N);
    ck_assert_uint_eq(nevs, 2 * N);
    for (size_t i = N; i < nevs; i++)
        REQUIRE(evs[i].kind == EV_GRANTED && evs[i].ctx == 2);
    check_stats(4 * N, 2 * N, 0, 0, 0, 2 * N, 2 * N, 0);
    ck_assert_uint_eq(locktable_draining(T), 0);
}
END_TEST

/* Every way of touching a lock still on the draining list sees it as
 * released at the session's end, and counts it once: RELEASE by token and
 * EXTEND answer 0; IS_LOCKED and PTTL say free; a new ACQUIRE gets it at
 * once; a TTL that ran out before the end is an expiry, one that ran out
 * after is a release; the snapshot leaves them out. */
START_TEST(test_session_lock_touched_while_draining)
{
    struct lock_session s = { NULL, NULL };
    uint64_t tr = 0, tx = 0, tok = 0, tn = 0;
    struct held_log log = { .n = 0, .stop_with = 0 };

    ck_assert_int_eq(acq("r", 0, 0, 0, &s, 1, 0, &tr), LOCK_GRANTED);
    ck_assert_int_eq(acq("x", 0, 0, 0, &s, 1, 0, &tx), LOCK_GRANTED);
    ck_assert_int_eq(acq("i", 0, 0, 0, &s, 1, 0, &tok), LOCK_GRANTED);
    ck_assert_int_eq(acq("n", 0, 0, 0, &s, 1, 0, &tn), LOCK_GRANTED);
    ck_assert_int_eq(acq("e", 50, 0, 0, &s, 1, 0, &tok), LOCK_GRANTED);
    ck_assert_int_eq(acq("f", 200, 0, 0, &s, 1, 0, &tok), LOCK_GRANTED);
    grab("p", 0);
    fc.mono += 100; /* "e" ran out before the end, "f" will after it */
    locktable_session_end(T, &s);
    ck_assert_uint_eq(locktable_draining(T), 6);
    ck_assert_int_eq(locktable_foreach_held(T, collect, &log), 0);
    ck_assert_int_eq(log.n, 1); /* "p" only */
    ck_assert_str_eq(log.h[0].key, "p");

    ck_assert_int_eq(locktable_release(T, K("r"), tr), 0);
    ck_assert_int_eq(locktable_extend(T, K("x"), tx, 1000), 0);
    ck_assert_int_eq(locktable_is_locked(T, K("i")), 0);
    ck_assert_int_eq(locktable_pttl_us(T, K("i")), -2);
    ck_assert_uint_eq(grab("n", 0), tn + 4); /* after the tokens of e, f, p */
    ck_assert_uint_eq(locktable_draining(T), 2);
    check_stats(8, 4, 0, 0, 0, 0, 4, 0);

    fc.mono += 200;
    ck_assert_uint_eq(locktable_run_timers(T, 100), 2);
    check_stats(8, 5, 1, 0, 0, 0, 2, 0); /* "e" expired, "f" released */
    ck_assert_uint_eq(locktable_draining(T), 0);
    ck_assert_uint_eq(locktable_next_deadline(T), UINT64_MAX);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    ck_assert_uint_eq(nevs, 0);
}
END_TEST

/* The table is freed with sessions in every state: one draining half-way
 * (with waiters of a live session on its keys), one ended behind it, one
 * live holding SESSION locks, one live that held some and let them go.
 * Everything goes (the sanitizer and valgrind runs see any leak). */
START_TEST(test_free_while_draining)
{
    struct lock_session a = { NULL, NULL }, b = { NULL, NULL },
                        live = { NULL, NULL }, idle = { NULL, NULL };
    char key[32];
    uint64_t tok = 0;

    grab_session(&a, "a", 1000);
    grab_session(&b, "b", 10);
    grab_session(&live, "l", 10);
    for (int i = 0; i < 1000; i += 100) {
        snprintf(key, sizeof(key), "a%d", i);
        ck_assert_int_eq(acq(key, 0, 1, 0, &live, 1, 1, &tok), LOCK_QUEUED);
    }
    ck_assert_int_eq(acq("z", 0, 0, 0, &idle, 1, 0, &tok), LOCK_GRANTED);
    ck_assert_int_eq(locktable_release(T, K("z"), tok), 1);
    locktable_session_end(T, &a);
    locktable_session_end(T, &b);
    ck_assert_uint_eq(locktable_run_timers(T, 450), 450);
    ck_assert_uint_lt(nevs, 10); /* some of a0, a100, ... went to `live` */
    ck_assert_uint_eq(locktable_draining(T), 560);
    ck_assert_ptr_nonnull(live.rec);
    ck_assert_ptr_nonnull(idle.rec);
    /* teardown frees the table here */
}
END_TEST

/* locktable_free meets every kind of object the maps and heaps name by a
 * reference from slab_enter (slab.h), and each must be unregistered as it
 * is freed, as on every other free path: a lock waiter and its links
 * record, a SESSION lock's links record, a value, entries too big for the
 * slab's pages (held, waited on, with a value), a pool, its plain and
 * SESSION slots and a pool waiter.  On the old shutdown path these were
 * freed still registered, which locktable_free's check of the slab's
 * count now stops at. */
START_TEST(test_free_leaves_every_reference)
{
    struct lock_session s = { NULL, NULL }, w = { NULL, NULL };
    char big[300];
    uint64_t tok = 0;

    memset(big, 'b', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(acq("held", 0, 0, 0, NULL, 0, 0, &tok), LOCK_GRANTED);
    queue("held", 0, 0, &w, 1);
    ck_assert_int_eq(acq("sess", 0, 0, 0, &s, 1, 0, &tok), LOCK_GRANTED);
    struct lock_request rq = { K(big), 0, 0, 0, 0, NULL, NULL, "v", 1 };
    ck_assert_int_eq(locktable_acquire(T, &rq, &tok), LOCK_GRANTED);
    queue(big, 0, 0, &w, 2);
    rq.key = "valued";
    rq.keylen = strlen("valued");
    ck_assert_int_eq(locktable_acquire(T, &rq, &tok), LOCK_GRANTED);
    struct lock_request pr = { K("pool"), 0, 0, 0, 0, NULL, NULL, NULL, 0 };
    ck_assert_int_eq(locktable_pool_acquire(T, &pr, 2, &tok), LOCK_GRANTED);
    pr.session = &s;
    pr.session_lock = 1;
    ck_assert_int_eq(locktable_pool_acquire(T, &pr, 2, &tok), LOCK_GRANTED);
    pr.session = &w;
    pr.session_lock = 0;
    pr.wait = 1;
    ck_assert_int_eq(locktable_pool_acquire(T, &pr, 2, &tok), LOCK_QUEUED);
    ck_assert_uint_eq(locktable_links_records(T), 3);
    check_stats(6, 0, 0, 0, 0, 0, 4, 2);
    locktable_free(T); /* aborts on a registration left behind */
    T = NULL;
}
END_TEST

/* The session record is made where "out of memory" can still be answered
 * with nothing changed: before the grant, and before a SESSION wait is
 * queued (so the hand-off later never allocates). */
START_TEST(test_session_record_no_memory)
{
    struct lock_session s = { NULL, NULL }, o = { NULL, NULL };
    uint64_t tok = 0, th = grab("h", 0);

    alloc_fail_nth(1);
    ck_assert_int_eq(acq("k", 0, 0, 0, &s, 1, 0, &tok), LOCK_NO_MEMORY);
    alloc_fail_reset();
    ck_assert_ptr_null(s.rec);
    ck_assert_int_eq(locktable_is_locked(T, K("k")), 0);
    alloc_fail_nth(1);
    ck_assert_int_eq(acq("h", 0, 1, 0, &s, 1, 1, &tok), LOCK_NO_MEMORY);
    alloc_fail_reset();
    ck_assert_ptr_null(s.rec);
    ck_assert_ptr_null(s.waiters);
    check_stats(1, 0, 0, 0, 0, 0, 1, 0);
    /* With memory, the wait is queued and its grant links into s. */
    ck_assert_int_eq(acq("h", 0, 1, 0, &s, 1, 1, &tok), LOCK_QUEUED);
    ck_assert_ptr_nonnull(s.rec);
    alloc_fail_after(0); /* the hand-off must not need any */
    ck_assert_int_eq(locktable_release(T, K("h"), th), 1);
    alloc_fail_reset();
    check_ev(0, EV_GRANTED, 1);
    locktable_session_end(T, &s);
    locktable_session_end(T, &o);
    ck_assert_uint_eq(run_all_timers(), 1);
    ck_assert_int_eq(locktable_is_locked(T, K("h")), 0);
}
END_TEST

static Suite *locktable_suite(void)
{
    Suite *s = suite_create("locktable");
    TCase *tc;

#define ADD_TCASE(name) \
    suite_add_tcase(s, tc = tcase_create(name)); \
    tcase_add_checked_fixture(tc, setup, teardown)

    ADD_TCASE("basic");
    tcase_add_test(tc, test_grant_busy_release);
    tcase_add_test(tc, test_pttl_extend);
    ADD_TCASE("expiry");
    tcase_add_test(tc, test_lazy_expiry);
    tcase_add_test(tc, test_run_timers_due_only);
    tcase_add_test(tc, test_run_timers_max_events);
    tcase_add_test(tc, test_many_locks_expire_in_order);
    ADD_TCASE("tokens");
    tcase_add_test(tc, test_tokens_follow_wall_clock);
    tcase_add_test(tc, test_token_ceiling);
    tcase_add_test(tc, test_token_ceiling_zero);
    ADD_TCASE("waiters");
    tcase_add_test(tc, test_fifo_on_release);
    tcase_add_test(tc, test_fifo_on_expiry_run_timers);
    tcase_add_test(tc, test_fifo_on_expiry_lazy);
    tcase_add_test(tc, test_fifo_on_session_end);
    tcase_add_test(tc, test_wait_timeout);
    tcase_add_test(tc, test_wait_and_expiry_same_instant);
    tcase_add_test(tc, test_wait_forever);
    tcase_add_test(tc, test_stale_wait_not_granted);
    tcase_add_test(tc, test_limits);
    ADD_TCASE("sessions");
    tcase_add_test(tc, test_session_end);
    tcase_add_test(tc, test_session_cancel_waits_keeps_locks);
    tcase_add_test(tc, test_session_lock_after_wait);
    tcase_add_test(tc, test_session_lock_expired);
    ADD_TCASE("session_drain");
    tcase_add_test(tc, test_session_end_sliced);
    tcase_add_test(tc, test_session_drain_fifo);
    tcase_add_test(tc, test_session_end_while_draining);
    tcase_add_test(tc, test_session_lock_touched_while_draining);
    tcase_add_test(tc, test_free_while_draining);
    tcase_add_test(tc, test_free_leaves_every_reference);
    tcase_add_test(tc, test_session_record_no_memory);
    ADD_TCASE("recovery");
    tcase_add_test(tc, test_recovery);
    tcase_add_test(tc, test_recovery_ends_lazily);
    tcase_add_test(tc, test_recovery_wait_entry_freed);
    ADD_TCASE("restore");
    tcase_add_test(tc, test_restore_foreach_held);
    ADD_TCASE("journal");
    tcase_add_test(tc, test_journal_horizon_and_holds);
    tcase_add_test(tc, test_journal_frees);
    tcase_add_test(tc, test_journal_failures);
    tcase_add_test(tc, test_journal_no_memory);
    tcase_add_test(tc, test_forget);
    ADD_TCASE("stats");
    tcase_add_test(tc, test_stats_script);
    ADD_TCASE("memory");
    tcase_add_test(tc, test_links_after_churn);
    tcase_add_test(tc, test_reused_entry_memory);
    tcase_add_test(tc, test_links_record_trimmed);
    tcase_add_test(tc, test_key_lengths);
#undef ADD_TCASE
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(locktable_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
