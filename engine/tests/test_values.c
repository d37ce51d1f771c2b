/* engine/tests/test_values.c - Check suite for values stored with a hold
 * and the Redis SET operations on the engine (engine/lock_value.c):
 * locktable_get, locktable_set, SET NX as locktable_acquire with a value.
 *
 * Owns: what a value's life is (it goes with the hold that stored it, by
 * release, expiry, overwrite or session end), what an overwrite does to the
 * old holder, its waiters and its journal records, the max_data_bytes
 * bound, and the recovery answers.  Does not own the rest of the engine's
 * contract (test_locktable.c).
 *
 * As there, nothing sleeps: a fake clock the tests move by hand; the wall
 * clock stays 0, so tokens are 1, 2, 3, ...
 */
#include "engine/locktable.h"

#include "alloc.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

#define K(s) (s), strlen(s)
#define T0 1000000u
#define MS 1000u

static uint64_t mono_now;
static uint64_t fake_mono(void *arg) { (void)arg; return mono_now; }
static uint64_t fake_wall(void *arg) { (void)arg; return 0; }

/* Grants to waiters, as the engine reports them. */
static uint64_t granted_token[8];
static uintptr_t granted_ctx[8];
static size_t ngranted;

static void on_granted(void *ctx, uint64_t token, void *arg)
{
    (void)arg;
    ck_assert_uint_lt(ngranted, 8);
    granted_ctx[ngranted] = (uintptr_t)ctx;
    granted_token[ngranted++] = token;
}

static void on_timed_out(void *ctx, const char *key, size_t keylen, void *arg)
{
    (void)ctx, (void)key, (void)keylen, (void)arg;
    ck_abort_msg("no wait in these tests times out");
}

/* The journal, as the daemon's state file would see it. */
static struct {
    int on, fail;
    unsigned holds, frees;
    uint64_t hold_token, free_token;
    int hold_has_value;
    char hold_value[32];
} jr;

static uint64_t j_horizon(void *arg, uint64_t deadline)
{
    (void)arg;
    return jr.fail ? 0 : deadline + 1000 * MS;
}

static int j_hold(void *arg, const char *key, size_t keylen, uint64_t token,
                  uint64_t deadline, const char *value, size_t vlen)
{
    (void)arg, (void)key, (void)keylen, (void)deadline;
    if (jr.fail)
        return -1;
    jr.holds++;
    jr.hold_token = token;
    jr.hold_has_value = value != NULL;
    ck_assert_uint_lt(vlen, sizeof(jr.hold_value));
    if (value)
        memcpy(jr.hold_value, value, vlen);
    jr.hold_value[value ? vlen : 0] = '\0';
    return 0;
}

static void j_freed(void *arg, const char *key, size_t keylen, uint64_t token)
{
    (void)arg, (void)key, (void)keylen;
    jr.frees++;
    jr.free_token = token;
}

static struct locktable *T;

static void open_table(uint64_t max_data_bytes, int journal)
{
    static const uint8_t seed[16] = { 9, 8, 7, 6, 5, 4, 3, 2,
                                      1, 0, 1, 2, 3, 4, 5, 6 };
    struct lock_clock clock = { fake_mono, fake_wall, NULL };
    struct lock_events events = { on_granted, on_timed_out, NULL };
    struct locktable_limits limits = { 0, 0, max_data_bytes };
    locktable_free(T);
    T = locktable_new(&clock, &events, &limits, seed);
    ck_assert_ptr_nonnull(T);
    memset(&jr, 0, sizeof(jr));
    if (journal) {
        /* Leases over 60 s (and none) are written one by one. */
        struct lock_journal j = { j_horizon, j_hold, j_freed, 60000 * MS,
                                  100 * MS, NULL };
        locktable_set_journal(T, &j, 0);
    }
}

static void setup(void)
{
    mono_now = T0;
    ngranted = 0;
    T = NULL;
    open_table(0, 0);
}

static void teardown(void)
{
    locktable_free(T);
    T = NULL;
}

/* GET: 1 with the value (or "" and *token when none), 0 free. */
static int get(const char *key, char *out, size_t cap, uint64_t *token)
{
    const char *v = NULL;
    size_t vlen = 0;
    uint64_t tok = 0;
    int r = locktable_get(T, K(key), &tok, &v, &vlen);
    out[0] = '\0';
    if (r == 1 && v) {
        ck_assert_uint_lt(vlen, cap);
        memcpy(out, v, vlen);
        out[vlen] = '\0';
    }
    if (token)
        *token = tok;
    return r;
}

static enum lock_result set(const char *key, const char *value,
                            uint64_t ttl_us, int keep_ttl,
                            enum lock_set_when when, uint64_t *token)
{
    struct lock_set s = { K(key), value, value ? strlen(value) : 0, ttl_us,
                          keep_ttl, when };
    return locktable_set(T, &s, token);
}

static enum lock_result set_nx(const char *key, const char *value,
                               uint64_t ttl_us, uint64_t *token)
{
    struct lock_request rq = { K(key), ttl_us, 0, 0, 0, NULL, NULL,
                               value, value ? strlen(value) : 0 };
    return locktable_acquire(T, &rq, token);
}

static enum lock_result wait_for(const char *key, struct lock_session *s,
                                 uintptr_t ctx, uint64_t *token)
{
    struct lock_request rq = { K(key), 0, 1, 0, 0, s, (void *)ctx, NULL, 0 };
    return locktable_acquire(T, &rq, token);
}

static void check_counts(uint64_t held, uint64_t values, uint64_t bytes)
{
    struct lock_stats st;
    locktable_stats(T, &st);
    ck_assert_uint_eq(st.held, held);
    ck_assert_uint_eq(st.values, values);
    ck_assert_uint_eq(st.data_bytes, bytes);
}

START_TEST(test_set_nx_get_release)
{
    char buf[32];
    uint64_t tok = 0, seen = 0;
    ck_assert_int_eq(set_nx("k", "pickled", 10 * MS, &tok), LOCK_GRANTED);
    ck_assert_uint_eq(tok, 1);
    ck_assert_int_eq(get("k", buf, sizeof(buf), &seen), 1);
    ck_assert_str_eq(buf, "pickled");
    ck_assert_uint_eq(seen, 1);
    check_counts(1, 1, 1 + 7);
    /* A second SET NX is refused and changes nothing. */
    ck_assert_int_eq(set_nx("k", "other", 10 * MS, &tok), LOCK_BUSY);
    ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), 1);
    ck_assert_str_eq(buf, "pickled");
    /* It is a lock like any other: RELEASE by token frees the value. */
    ck_assert_int_eq(locktable_release(T, K("k"), 1), 1);
    ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), 0);
    check_counts(0, 0, 0);
    /* A lock taken without a value reads as its token. */
    ck_assert_int_eq(set_nx("plain", NULL, 0, &tok), LOCK_GRANTED);
    const char *v = "x";
    size_t vlen = 9;
    ck_assert_int_eq(locktable_get(T, K("plain"), &seen, &v, &vlen), 1);
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(seen, tok);
    check_counts(1, 0, 5);
}
END_TEST

START_TEST(test_value_goes_with_the_hold)
{
    char buf[32];
    uint64_t tok;
    /* Expiry, lazy and by the timer. */
    ck_assert_int_eq(set_nx("a", "1", 10 * MS, &tok), LOCK_GRANTED);
    ck_assert_int_eq(set("b", "2", 10 * MS, 0, LOCK_SET_ALWAYS, &tok),
                     LOCK_GRANTED);
    mono_now += 10 * MS;
    ck_assert_int_eq(get("a", buf, sizeof(buf), NULL), 0);
    ck_assert_uint_eq(locktable_run_timers(T, 10), 1);
    ck_assert_int_eq(get("b", buf, sizeof(buf), NULL), 0);
    check_counts(0, 0, 0);
    /* A handoff to a waiter: the waiter's lock has no value. */
    struct lock_session s = { 0 };
    ck_assert_int_eq(set_nx("c", "v", 0, &tok), LOCK_GRANTED);
    ck_assert_int_eq(wait_for("c", &s, 7, &tok), LOCK_QUEUED);
    ck_assert_int_eq(locktable_release(T, K("c"), 0), 1);
    ck_assert_uint_eq(ngranted, 1);
    const char *v = "x";
    size_t vlen;
    uint64_t seen;
    ck_assert_int_eq(locktable_get(T, K("c"), &seen, &v, &vlen), 1);
    ck_assert_ptr_null(v);
    ck_assert_uint_eq(seen, granted_token[0]);
    check_counts(1, 0, 1);
    locktable_session_end(T, &s);
}
END_TEST

START_TEST(test_overwrite)
{
    char buf[32];
    uint64_t t1, t2, t3, seen;
    struct lock_session ws = { 0 };
    ck_assert_int_eq(set_nx("k", "old", 10 * MS, &t1), LOCK_GRANTED);
    ck_assert_int_eq(wait_for("k", &ws, 5, &seen), LOCK_QUEUED);
    /* SET without NX: a new holder, a new token, the waiter still waits. */
    ck_assert_int_eq(set("k", "new", 50 * MS, 0, LOCK_SET_ALWAYS, &t2),
                     LOCK_GRANTED);
    ck_assert_uint_gt(t2, t1);
    ck_assert_uint_eq(ngranted, 0);
    ck_assert_int_eq(get("k", buf, sizeof(buf), &seen), 1);
    ck_assert_str_eq(buf, "new");
    ck_assert_uint_eq(seen, t2);
    ck_assert_int_eq(locktable_pttl_us(T, K("k")), 50 * MS);
    check_counts(1, 1, 1 + 3);
    /* The old token no longer releases it. */
    ck_assert_int_eq(locktable_release(T, K("k"), t1), 0);
    /* KEEPTTL keeps the time left; XX needs a holder. */
    mono_now += 20 * MS;
    ck_assert_int_eq(set("k", "kept", 0, 1, LOCK_SET_IF_HELD, &t3),
                     LOCK_GRANTED);
    ck_assert_int_eq(locktable_pttl_us(T, K("k")), 30 * MS);
    ck_assert_int_eq(set("none", "x", 0, 0, LOCK_SET_IF_HELD, &seen),
                     LOCK_BUSY);
    ck_assert_int_eq(get("none", buf, sizeof(buf), NULL), 0);
    /* The new holder's expiry hands the key to the waiter. */
    mono_now += 30 * MS;
    ck_assert_uint_eq(locktable_run_timers(T, 10), 1);
    ck_assert_uint_eq(ngranted, 1);
    ck_assert_uint_gt(granted_token[0], t3);
    struct lock_stats st;
    locktable_stats(T, &st);
    ck_assert_uint_eq(st.held, 1);
    ck_assert_uint_eq(st.acquired, 4); /* NX, two SETs, the handoff */
    ck_assert_uint_eq(st.expired, 1);
    locktable_session_end(T, &ws);
}
END_TEST

START_TEST(test_overwrite_session_lock)
{
    struct lock_session s = { 0 };
    uint64_t t1, t2;
    struct lock_request rq = { K("s"), 0, 0, 0, 1, &s, NULL, NULL, 0 };
    ck_assert_int_eq(locktable_acquire(T, &rq, &t1), LOCK_GRANTED);
    ck_assert_int_eq(set("s", "v", 0, 0, LOCK_SET_ALWAYS, &t2), LOCK_GRANTED);
    ck_assert_uint_eq(locktable_links_records(T), 0);
    /* The old holder's session ending leaves the new holder alone. */
    locktable_session_end(T, &s);
    locktable_run_timers(T, 100);
    ck_assert_uint_eq(locktable_holder_token(T, K("s")), t2);
}
END_TEST

START_TEST(test_data_limit)
{
    uint64_t tok;
    open_table(10, 0);
    ck_assert_int_eq(set_nx("k", "12345678", 0, &tok), LOCK_GRANTED); /* 9 */
    ck_assert_int_eq(set_nx("j", "", 0, &tok), LOCK_GRANTED);       /* 10 */
    ck_assert_int_eq(set_nx("i", NULL, 0, &tok), LOCK_LIMIT_MEMORY);
    ck_assert_int_eq(set("i", "v", 0, 0, LOCK_SET_ALWAYS, &tok),
                     LOCK_LIMIT_MEMORY);
    /* An overwrite counts what it frees: same size fits, larger not. */
    ck_assert_int_eq(set("k", "abcdefgh", 0, 0, LOCK_SET_ALWAYS, &tok),
                     LOCK_GRANTED);
    ck_assert_int_eq(set("k", "abcdefghi", 0, 0, LOCK_SET_ALWAYS, &tok),
                     LOCK_LIMIT_MEMORY);
    char buf[32];
    ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), 1);
    ck_assert_str_eq(buf, "abcdefgh");
    check_counts(2, 2, 10);
    ck_assert_int_eq(locktable_release(T, K("k"), 0), 1);
    ck_assert_int_eq(set_nx("i", NULL, 0, &tok), LOCK_GRANTED);
    check_counts(2, 1, 2);
}
END_TEST

START_TEST(test_journal_carries_values)
{
    uint64_t t1, t2;
    open_table(0, 1);
    /* FOREVER: written, with its value. */
    ck_assert_int_eq(set_nx("k", "v1", 0, &t1), LOCK_GRANTED);
    ck_assert_uint_eq(jr.holds, 1);
    ck_assert_int_eq(jr.hold_has_value, 1);
    ck_assert_str_eq(jr.hold_value, "v1");
    /* Overwritten by a short lease: the new lease is written (the entry is
     * durable) and the old one's end too. */
    ck_assert_int_eq(set("k", "v2", 10 * MS, 0, LOCK_SET_ALWAYS, &t2),
                     LOCK_GRANTED);
    ck_assert_uint_eq(jr.holds, 2);
    ck_assert_uint_eq(jr.hold_token, t2);
    ck_assert_str_eq(jr.hold_value, "v2");
    ck_assert_uint_eq(jr.frees, 1);
    ck_assert_uint_eq(jr.free_token, t1);
    /* An EXTEND rewrites the value with the lease. */
    ck_assert_int_eq(locktable_extend(T, K("k"), t2, 0), 1);
    ck_assert_uint_eq(jr.holds, 3);
    ck_assert_str_eq(jr.hold_value, "v2");
    /* A failed write leaves the old holder whole: token, value, record. */
    jr.fail = 1;
    uint64_t t3 = 0;
    ck_assert_int_eq(set("k", "v3", 0, 0, LOCK_SET_ALWAYS, &t3),
                     LOCK_NOT_DURABLE);
    char buf[32];
    uint64_t seen;
    ck_assert_int_eq(get("k", buf, sizeof(buf), &seen), 1);
    ck_assert_str_eq(buf, "v2");
    ck_assert_uint_eq(seen, t2);
    ck_assert_uint_eq(jr.frees, 1);
    check_counts(1, 1, 3);
    jr.fail = 0;
    ck_assert_int_eq(locktable_release(T, K("k"), t2), 1);
    ck_assert_uint_eq(jr.frees, 2);
    ck_assert_uint_eq(jr.free_token, t2);
}
END_TEST

static int view_value(const struct lock_view *v, void *arg)
{
    char *out = arg;
    ck_assert_uint_lt(v->vlen, 32);
    if (v->value)
        memcpy(out, v->value, v->vlen);
    out[v->value ? v->vlen : 0] = '\0';
    return 0;
}

START_TEST(test_restore_and_walk)
{
    char seen[32] = "unset", buf[32];
    ck_assert_int_eq(locktable_restore(T, K("r"), 77, 0, "bin\0ary", 7), 0);
    ck_assert_int_eq(locktable_foreach_held(T, view_value, seen), 0);
    ck_assert_int_eq(memcmp(seen, "bin\0ary", 7), 0);
    ck_assert_int_eq(get("r", buf, sizeof(buf), NULL), 1);
    check_counts(1, 1, 1 + 7);
    ck_assert_int_eq(locktable_forget(T, K("r"), 77), 1);
    check_counts(0, 0, 0);
}
END_TEST

START_TEST(test_recovery_answers)
{
    char buf[32];
    uint64_t tok;
    locktable_block_grants_until(T, T0 + 100 * MS);
    ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), -1);
    ck_assert_int_eq(set_nx("k", "v", 0, &tok), LOCK_BUSY);
    ck_assert_int_eq(set("k", "v", 0, 0, LOCK_SET_IF_HELD, &tok), LOCK_BUSY);
    /* A plain SET overwrites whatever holds the key, as on a held key. */
    ck_assert_int_eq(set("k", "v", 10 * MS, 0, LOCK_SET_ALWAYS, &tok),
                     LOCK_GRANTED);
    ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), 1);
    ck_assert_str_eq(buf, "v");
    /* When it ends, the key reads as held again until recovery is over. */
    mono_now += 10 * MS;
    ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), -1);
    mono_now = T0 + 100 * MS;
    ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), 0);
}
END_TEST

START_TEST(test_out_of_memory)
{
    for (int n = 1; n <= 6; n++) {
        uint64_t tok = 0;
        open_table(0, 1);
        ck_assert_int_eq(set_nx("k", "old", 0, &tok), LOCK_GRANTED);
        alloc_fail_nth(n);
        enum lock_result a = set("k", "new", 0, 0, LOCK_SET_ALWAYS, &tok);
        enum lock_result b = set_nx("m", "val", 0, &tok);
        alloc_fail_reset();
        char buf[32];
        ck_assert_int_eq(get("k", buf, sizeof(buf), NULL), 1);
        ck_assert_str_eq(buf, a == LOCK_GRANTED ? "new" : "old");
        ck_assert_int_eq(get("m", buf, sizeof(buf), NULL),
                         b == LOCK_GRANTED);
        check_counts(1 + (b == LOCK_GRANTED), 1 + (b == LOCK_GRANTED),
                     1 + 3 + (b == LOCK_GRANTED) * (1 + 3));
    }
}
END_TEST

static Suite *values_suite(void)
{
    Suite *s = suite_create("values");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_set_nx_get_release);
    tcase_add_test(tc, test_value_goes_with_the_hold);
    tcase_add_test(tc, test_overwrite);
    tcase_add_test(tc, test_overwrite_session_lock);
    tcase_add_test(tc, test_data_limit);
    tcase_add_test(tc, test_journal_carries_values);
    tcase_add_test(tc, test_restore_and_walk);
    tcase_add_test(tc, test_recovery_answers);
    tcase_add_test(tc, test_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(values_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
