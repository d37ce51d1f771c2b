/* engine/lock_session.c - session records and the draining FIFO of
 * engine/lock_session.h.
 *
 * Owns: the records' memory and the list bookkeeping (records, their lock
 * links, an owner's waits).  Does not own the links (they sit in the
 * engine's lock records and waiters) nor the decision of how a lock is
 * released (locktable.c).  Every function here is O(1); none but
 * sess_reserve allocates, so the engine's release and expiry paths, which
 * call sess_unlink, cannot fail.
 */
#include "engine/lock_session.h"

#include <assert.h>

#include "alloc.h"

/* ---- the two record lists ---- */

static void live_push(struct sess_table *st, struct lock_session_rec *r)
{
    r->prev = NULL;
    r->next = st->live;
    if (st->live)
        st->live->prev = r;
    st->live = r;
}

static void live_unlink(struct sess_table *st, struct lock_session_rec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        st->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Appends r to the draining FIFO: sessions drain in the order they ended. */
static void drain_push(struct sess_table *st, struct lock_session_rec *r)
{
    r->next = NULL;
    r->prev = st->drain_tail;
    if (st->drain_tail)
        st->drain_tail->next = r;
    else
        st->drain_head = r;
    st->drain_tail = r;
    st->draining++;
    st->draining_locks += r->nlocks;
}

static void drain_unlink(struct sess_table *st, struct lock_session_rec *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        st->drain_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        st->drain_tail = r->prev;
    st->draining--;
}

/* ---- public ---- */

void sess_add_wait(struct lock_session *s, struct lock_wait_link *l)
{
    l->session = s;
    l->prev = NULL;
    l->next = s->waiters;
    if (s->waiters)
        s->waiters->prev = l;
    s->waiters = l;
}

void sess_remove_wait(struct lock_wait_link *l)
{
    struct lock_session *s = l->session;
    if (!s)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        s->waiters = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->session = NULL;
    l->prev = l->next = NULL;
}

void sess_table_init(struct sess_table *st)
{
    st->live = NULL;
    st->drain_head = st->drain_tail = NULL;
    st->draining = 0;
    st->draining_locks = 0;
}

void sess_table_free(struct sess_table *st)
{
    struct lock_session_rec *lists[2] = { st->live, st->drain_head };
    for (int i = 0; i < 2; i++) {
        struct lock_session_rec *r = lists[i];
        while (r) {
            struct lock_session_rec *next = r->next;
            cfy_free(r);
            r = next;
        }
    }
    sess_table_init(st);
}

int sess_reserve(struct sess_table *st, struct lock_session *s)
{
    if (s->rec)
        return 0;
    struct lock_session_rec *r = cfy_calloc(1, sizeof(*r));
    if (!r)
        return -1;
    r->table = st;
    live_push(st, r);
    s->rec = r;
    return 0;
}

void sess_link(struct lock_session_rec *r, struct sess_link *l)
{
    assert(l->rec == NULL);
    l->rec = r;
    l->prev = NULL;
    l->next = r->locks;
    if (r->locks)
        r->locks->prev = l;
    r->locks = l;
    r->nlocks++;
    if (r->ended) /* not done by the engine today, but keep the count true */
        r->table->draining_locks++;
}

void sess_unlink(struct sess_link *l)
{
    struct lock_session_rec *r = l->rec;
    if (!r)
        return;
    if (l->prev)
        l->prev->next = l->next;
    else
        r->locks = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->rec = NULL;
    l->prev = l->next = NULL;
    r->nlocks--;
    if (r->ended) {
        r->table->draining_locks--;
        if (!r->locks) { /* drained: nothing refers to it any more */
            drain_unlink(r->table, r);
            cfy_free(r);
        }
    }
}

void sess_end(struct sess_table *st, struct lock_session *s, uint64_t now)
{
    struct lock_session_rec *r = s->rec;
    if (!r)
        return;
    s->rec = NULL;
    live_unlink(st, r);
    if (!r->locks) {
        cfy_free(r);
        return;
    }
    r->ended = 1;
    r->ended_at = now;
    drain_push(st, r);
}
