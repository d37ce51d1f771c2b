/* engine/lock_journal.c - the lock engine's crash safety and persistence:
 * the durability hooks (struct lock_journal in locktable.h), the heap of
 * durable leases a journal rewrite walks, the token ceiling and recovery
 * settings, and restoring and listing locks for the state file.
 *
 * Owns: which leases are durable (ENTRY_DURABLE, t->durables) and when the
 * hooks are called.  Does not own: the file (daemon/state.c) or the rest of
 * the engine (locktable.c, whose layout is in locktable_int.h).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "engine/locktable_int.h"

static int journal_on(const struct locktable *t)
{
    return t->journal.hold != NULL;
}

/* Makes the horizon reach deadline.  0, or -1 when it could not be
 * written. */
static int cover_by_horizon(struct locktable *t, uint64_t deadline)
{
    if (deadline <= t->horizon)
        return 0;
    uint64_t raised = t->journal.raise_horizon(t->journal.arg, deadline);
    if (raised < deadline)
        return -1;
    t->horizon = raised;
    return 0;
}

int lt_cover_slot(struct locktable *t, uint64_t now, uint64_t deadline)
{
    if (!journal_on(t))
        return 0;
    uint64_t long_after = lt_deadline_after(now, t->journal.long_lease_us);
    return cover_by_horizon(t, deadline < long_after ? deadline : long_after);
}

/* Marks e (held) durable, moving it to t->durables.  0, or -1 when out of
 * memory (e is then as it was). */
static int durable_link(struct locktable *t, struct lock_entry *e)
{
    if (!(e->flags & ENTRY_IN_DURABLES)) {
        if (heap_move(&t->expiries, &t->durables, &e->due) != 0)
            return -1;
        e->flags |= ENTRY_IN_DURABLES;
    }
    e->flags |= ENTRY_DURABLE;
    return 0;
}

/* e is not durable (any more): back to t->expiries, if memory allows; if
 * not, it stays in t->durables, where a rewrite skips it. */
static void durable_leave(struct locktable *t, struct lock_entry *e)
{
    if ((e->flags & (ENTRY_IN_DURABLES | ENTRY_DURABLE)) == ENTRY_IN_DURABLES &&
        heap_move(&t->durables, &t->expiries, &e->due) == 0)
        e->flags &= (uint8_t)~ENTRY_IN_DURABLES;
}

/* Before e (held by e->token) gets `deadline`: makes that lease durable.
 * session_lock: e's holder is a SESSION (never written one by one).
 * Returns 0, or -1 when the journal failed or memory ran out (nothing was
 * promised). */
int lt_make_durable(struct locktable *t, struct lock_entry *e,
                        uint64_t now, uint64_t deadline, int session_lock)
{
    if (!journal_on(t))
        return 0;
    uint64_t long_after = lt_deadline_after(now, t->journal.long_lease_us);
    if (session_lock) {
        durable_leave(t, e);
        return cover_by_horizon(t, deadline < long_after ? deadline
                                                         : long_after);
    }
    if (!(e->flags & ENTRY_DURABLE) && deadline <= long_after) {
        durable_leave(t, e);
        return cover_by_horizon(t, deadline);
    }
    /* Moved first (it may need memory), marked not durable again if the
     * write fails: a durable entry is one whose lease is on disk. */
    int was = (e->flags & ENTRY_DURABLE) != 0;
    if (durable_link(t, e) != 0)
        return -1;
    const struct lock_value *v = lt_value_find(t, e);
    if (t->journal.hold(t->journal.arg, e->key, e->node.keylen, e->token,
                        deadline, v ? v->bytes : NULL, v ? v->len : 0) != 0) {
        if (!was)
            e->flags &= (uint8_t)~ENTRY_DURABLE; /* stays in durables */
        return -1;
    }
    return 0;
}

/* e's hold is ending: a written lease gets its end written too. */
void lt_hold_ended(struct locktable *t, struct lock_entry *e)
{
    if (lt_durable_unlink(t, e))
        t->journal.freed(t->journal.arg, e->key, e->node.keylen, e->token);
}

int lt_durable_unlink(struct locktable *t, struct lock_entry *e)
{
    (void)t;
    if (!(e->flags & ENTRY_DURABLE))
        return 0;
    e->flags &= (uint8_t)~ENTRY_DURABLE;
    return 1;
}

int locktable_restore(struct locktable *t, const char *key, size_t keylen,
                      uint64_t token, uint64_t ttl_us, const char *value,
                      size_t vlen)
{
    uint64_t now = lt_now_us(t);
    uint32_t hash;
    if (token == 0 || lt_lookup(t, key, keylen, now, &hash) != NULL ||
        lt_pool_exists(t, key, keylen)) /* one keyspace, as at acquire */
        return -1;
    struct lock_value *v = NULL;
    if (value && !(v = lt_value_new(t, value, vlen)))
        return -1;
    struct lock_entry *e = lt_entry_create(t, key, keylen, hash);
    if (!e) {
        lt_value_free(t, v);
        return -1;
    }
    e->token = token;
    if (journal_on(t) && (ttl_us == 0 || ttl_us > t->journal.long_lease_us) &&
        durable_link(t, e) != 0) {
        e->token = 0;
        lt_value_free(t, v);
        lt_entry_destroy(t, e, NULL);
        return -1;
    }
    if (v)
        lt_value_attach(t, e, v);
    lt_set_deadline(t, e, lt_deadline_after(now, ttl_us));
    locktable_raise_last_token(t, token);
    t->stats.held++;
    return 0;
}

int locktable_forget(struct locktable *t, const char *key, size_t keylen,
                     uint64_t token)
{
    struct lock_entry *e = lt_lookup(t, key, keylen, lt_now_us(t), NULL);
    if (!e || !e->token || (token && e->token != token))
        return 0;
    struct lock_links *x = lt_links_find(t, e);
    if (x && x->wait_head)
        return 0; /* only before any client: never with waiters */
    if (x)
        lt_session_unlink_lock(x);
    lt_durable_unlink(t, e); /* no end record: replaying */
    lt_value_free(t, lt_value_detach(t, e));
    t->stats.held--;
    lt_entry_destroy(t, e, x);
    return 1;
}

void locktable_set_journal(struct locktable *t, const struct lock_journal *j,
                           uint64_t horizon)
{
    t->journal = *j;
    t->horizon = horizon;
}

uint64_t locktable_horizon(const struct locktable *t)
{
    return t->horizon;
}

/* Calls fn for e when it is held now (not expired or released but not
 * collected yet).  Returns fn's value, or 0 when e was skipped. */
static int visit_held(struct locktable *t, struct lock_entry *e, uint64_t now,
                      lock_visit_fn fn, void *arg)
{
    uint64_t deadline = lt_entry_deadline(t, e);
    if (!e->token || deadline <= now)
        return 0; /* expired already, just not collected yet */
    if ((e->flags & ENTRY_SESSION) && lt_links_find(t, e)->link.rec->ended)
        return 0; /* its session ended: released, just not drained */
    const struct lock_value *v = lt_value_find(t, e);
    struct lock_view view = {
        .key = e->key,
        .keylen = e->node.keylen,
        .token = e->token,
        .ttl_left_us = deadline == ENTRY_NEVER ? 0 : deadline - now,
        .value = v ? v->bytes : NULL,
        .vlen = v ? v->len : 0,
    };
    return fn(&view, arg);
}

int locktable_foreach_held(struct locktable *t, lock_visit_fn fn, void *arg)
{
    uint64_t now = lt_now_us(t);
    struct map_iter it;
    struct map_node *n;
    int rc = 0;
    map_iter_init(&t->map, &it);
    while (rc == 0 && (n = map_iter_next(&it)) != NULL)
        rc = visit_held(t, CONTAINER_OF(n, struct lock_entry, node), now, fn,
                        arg);
    map_iter_done(&it);
    return rc;
}

int locktable_foreach_durable(struct locktable *t, lock_visit_fn fn,
                              void *arg)
{
    uint64_t now = lt_now_us(t);
    int rc = 0;
    struct heap_node *n;
    for (size_t i = 0; rc == 0 && (n = heap_node_at(&t->durables, i)); i++) {
        struct lock_entry *e = CONTAINER_OF(n, struct lock_entry, due);
        if (e->flags & ENTRY_DURABLE)
            rc = visit_held(t, e, now, fn, arg);
    }
    return rc;
}
