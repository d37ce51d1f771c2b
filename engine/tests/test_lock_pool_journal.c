/* engine/tests/test_lock_pool_journal.c - Check suite for the crash
 * safety of pools (engine/lock_pool_journal.c).
 *
 * Owns: the journal's rules for slots (short ones under the horizon,
 * SESSION ones never written, long and FOREVER ones written one by one
 * before they are granted, each extend and handoff too, their ends; a
 * write that fails refuses the grant, the extend or the handoff), restore
 * (over max_size too, durable again with a journal), forget, and the
 * walks.  Does not own the rest of the pools' contract (test_lock_pool.c).
 *
 * Nothing sleeps: the table reads a fake clock that the tests move by
 * hand (engine/tests/pooltest.h).
 */
#include "engine/tests/pooltest.h"

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

int main(void)
{
    Suite *s;
    TCase *tc = pooltest_tcase(&s, "lock_pool_journal", "journal");
    tcase_add_test(tc, test_journal);
    tcase_add_test(tc, test_journal_long_slots);
    tcase_add_test(tc, test_restore_and_walk);
    tcase_add_test(tc, test_restore_durable);
    return pooltest_main(s);
}
