/* engine/lock_pool_journal.c - the crash safety of pool slots, and
 * putting slots back and listing them for the state file (the contract is
 * in lock_pool.h and, for the hooks, locktable.h's struct lock_journal).
 *
 * Owns: which slot leases are durable and when the hooks are called for
 * them: a slot of at most long_lease_us (and every SESSION slot) is covered
 * by the lease horizon, as a short lock is; a longer one, or one without
 * expiry, is written one by one with the slot hook (key, max_size, token,
 * end) before it is answered, each extend too, and its end with the
 * journal's freed hook, exactly as a long lock is (lock_journal.c).  Such a
 * slot sits in t->slot_durables, so a journal rewrite visits those alone.
 * Also owns restore, forget (journal replay) and the walks.  Does not own
 * the file (daemon/state.c) or the rest of a pool (lock_pool.c).
 */
#include <stdint.h>

#include "engine/lock_pool_int.h"

static int journal_on(const struct locktable *t)
{
    return t->journal.hold != NULL;
}

void locktable_set_slot_journal(struct locktable *t, pool_hold_fn hold)
{
    t->slot_hold = hold;
}

int lp_make_durable(struct locktable *t, struct pool_slot *s, uint64_t now,
                    uint64_t deadline, int session)
{
    if (!journal_on(t))
        return 0;
    uint64_t long_after = lt_deadline_after(now, t->journal.long_lease_us);
    int written = heap_node_queued(&s->dur);
    /* A SESSION slot ends with its connection, which a crash ends: the
     * horizon covers it for long_lease_us, as for SESSION locks. */
    if (session || (!written && deadline <= long_after))
        return lt_cover_slot(t, now, deadline);
    if (!t->slot_hold)
        return -1; /* no way to write it: never promised */
    if (!written && heap_push(&t->slot_durables, &s->dur, s->ref, 0) != 0)
        return -1;
    struct lock_pool *p = slot_pool(s);
    if (t->slot_hold(t->journal.arg, p->key, p->node.keylen, p->max,
                     s->token, deadline) != 0) {
        if (!written)
            heap_remove(&t->slot_durables, &s->dur);
        return -1;
    }
    return 0;
}

void lp_slot_ended(struct locktable *t, struct pool_slot *s)
{
    if (!heap_node_queued(&s->dur))
        return;
    heap_remove(&t->slot_durables, &s->dur);
    if (t->journal.freed)
        t->journal.freed(t->journal.arg, slot_pool(s)->key,
                         slot_pool(s)->node.keylen, s->token);
}

int locktable_pool_restore(struct locktable *t, const char *key,
                           size_t keylen, uint32_t max, uint64_t token,
                           uint64_t ttl_us)
{
    uint64_t now = lt_now_us(t);
    uint32_t hash;
    if (token == 0 || max == 0 || max > LOCK_POOL_MAX_SIZE ||
        lt_lookup(t, key, keylen, now, NULL) || lp_slot_find(t, token))
        return -1;
    struct lock_pool *p = lp_get(t, key, keylen, now, &hash);
    if (p && p->max != max)
        return -1;
    if (!p && !(p = lp_create(t, key, keylen, hash, max)))
        return -1;
    struct pool_slot *s = lp_slot_new(t, p, token,
                                      lt_deadline_after(now, ttl_us), 0);
    /* Written into the next journal one by one, as at its grant. */
    if (s && journal_on(t) &&
        (ttl_us == 0 || ttl_us > t->journal.long_lease_us) &&
        heap_push(&t->slot_durables, &s->dur, s->ref, 0) != 0) {
        lp_slot_free(t, s);
        s = NULL;
    }
    if (s && p->used > p->max)
        p->overfull = 1;
    lp_trim(t, p);
    if (!s)
        return -1;
    locktable_raise_last_token(t, token);
    return 0;
}

int64_t locktable_pool_forget(struct locktable *t, const char *key,
                              size_t keylen, uint64_t token)
{
    struct lock_pool *p = lp_find(t, key, keylen, NULL);
    if (!p)
        return 0;
    int64_t n = lp_end_slots(t, p, token, 0);
    lp_trim(t, p);
    return n;
}

/* Calls fn for s when it is held now: not expired, and not a SESSION slot
 * of an ended session (both gone, whatever the timer has done yet).
 * Returns fn's value, or 0 when s was skipped. */
static int visit_slot(struct pool_slot *s, uint64_t now, pool_visit_fn fn,
                      void *arg)
{
    struct lock_pool *p = slot_pool(s);
    uint64_t d = heap_deadline(&p->slots, &s->due);
    if (d <= now || slot_session_ended(s))
        return 0;
    struct pool_slot_view v = {
        .key = p->key,
        .keylen = p->node.keylen,
        .max = p->max,
        .token = s->token,
        .ttl_left_us = d == ENTRY_NEVER ? 0 : d - now,
    };
    return fn(&v, arg);
}

int locktable_foreach_slot(struct locktable *t, pool_visit_fn fn, void *arg)
{
    uint64_t now = lt_now_us(t);
    struct map_iter it;
    struct map_node *n;
    int rc = 0;
    map_iter_init(&t->pools, &it);
    while (rc == 0 && (n = map_iter_next(&it)) != NULL) {
        struct lock_pool *p = CONTAINER_OF(n, struct lock_pool, node);
        struct pool_slot *s;
        for (size_t i = 0; rc == 0 && (s = slot_at(p, i)) != NULL; i++)
            rc = visit_slot(s, now, fn, arg);
    }
    map_iter_done(&it);
    return rc;
}

int locktable_foreach_durable_slot(struct locktable *t, pool_visit_fn fn,
                                   void *arg)
{
    uint64_t now = lt_now_us(t);
    int rc = 0;
    struct heap_node *n;
    for (size_t i = 0; rc == 0 && (n = heap_node_at(&t->slot_durables, i));
         i++)
        rc = visit_slot(CONTAINER_OF(n, struct pool_slot, dur), now, fn, arg);
    return rc;
}

int locktable_pool_audit(struct locktable *t, const char **why)
{
    struct map_iter it;
    struct map_node *n;
    uint64_t slots = 0, waiters = 0, durables = 0;
    *why = NULL;
    map_iter_init(&t->pools, &it);
    while (!*why && (n = map_iter_next(&it)) != NULL) {
        struct lock_pool *p = CONTAINER_OF(n, struct lock_pool, node);
        size_t listed = 0, queued = 0;
        struct pool_slot *s;
        for (; (s = slot_at(p, listed)) != NULL; listed++) {
            if (slot_pool(s) != p || lp_slot_find(t, s->token) != s)
                *why = "a slot is not found by its token";
            else if (slot_link(s) && heap_node_queued(&s->dur))
                *why = "a SESSION slot was written one by one";
            durables += heap_node_queued(&s->dur) ? 1u : 0u;
        }
        for (struct pool_waiter *w = p->wait_head; w; w = w->next)
            queued++;
        if (p->used > p->max && !p->overfull)
            *why = "a pool holds more slots than its max_size";
        else if (listed != p->used)
            *why = "slot heap and count disagree";
        else if (queued != p->nwaiters)
            *why = "waiter count and queue disagree";
        else if (!p->used && !p->wait_head)
            *why = "an empty pool was kept";
        else if (p->wait_head && p->used < p->max && !p->retry_at)
            *why = "a waiter waits beside a free slot";
        slots += listed;
        waiters += queued;
    }
    map_iter_done(&it);
    if (!*why && (slots != t->stats.pool_slots || slots != t->pool_slots ||
                  slots != map_count(&t->slots)))
        *why = "slot counters disagree";
    if (!*why && durables != heap_len(&t->slot_durables))
        *why = "durable slot count and the journal's heap disagree";
    if (!*why && waiters != t->stats.pool_waiters)
        *why = "pool waiter counter disagrees";
    if (!*why && map_count(&t->pools) != t->stats.pools)
        *why = "pool counter disagrees";
    return *why ? -1 : 0;
}
