/* engine/locktable.c - the lock engine (see locktable.h for the contract).
 * Its crash-safety hooks, restore and snapshots are in lock_journal.c; the
 * layouts below are declared in locktable_int.h, which both share.
 *
 * Data layout: each key is one struct lock_entry, in the hash map `map`
 * (map.h) and always in one of two deadline heaps (heap.h): `expiries`,
 * or `durables` for an entry whose lease was journaled one by one
 * (lock_journal.c; a journal rewrite then visits that heap alone).  A held
 * lock's heap deadline is its expiry (ENTRY_NEVER for no expiry); an entry
 * that is not held only exists while it has waiters during crash recovery,
 * and then its deadline is the end of recovery, so the same heap pop that
 * expires locks also ends recovery for that key.  Keeping every entry in a
 * heap from birth to death means the only allocations happen when an entry
 * or a waiter is created, or when a lease moves to `durables` (which can
 * fail like the journal write beside it): releases, expiries and plain
 * grants and extends never allocate and so never fail.
 *
 * The entry is what a million held locks are made of, so it holds only what
 * every lock needs: its map node (a 32-bit chain link, the 32-bit hash and
 * the key length: 12 bytes), its heap index (4), the token (8), a flags
 * byte, and the key bytes right after them at offset 25, without a
 * terminator.  The deadline lives in the heap's array (heap_deadline), not
 * in the entry.  Entries come from a slab allocator (slab.h) that rounds
 * them to 8 bytes and adds no header, and that numbers them: the map's
 * chains and buckets and the heap's items name an entry by its 32-bit slab
 * reference, not an 8-byte pointer.  A 30-byte key makes a 56-byte slot,
 * plus its bucket (4.2 bytes at a million) and heap item (12: the whole
 * deadline and the reference): about 72 bytes per lock (88 with pointers;
 * docs/performance.md).  Every other object in a map or heap (links
 * records, values, waiters, pools, slots) keeps its own malloc, which the
 * fault injector reaches, and a reference from slab_enter kept in it.
 *
 * What only some keys need, the SESSION holder's link, the waiter queue
 * and the place on the durable list, lives in a struct lock_links (the
 * links record) outside the entry: the entry's ENTRY_HAS_LINKS flag says it
 * has one, and the record itself is found in a second map, `links`, keyed
 * by the entry's address.  An entry gets its links record when it first
 * needs one (a SESSION acquire, a queued waiter; both may fail with
 * LOCK_NO_MEMORY before anything changed) and keeps it while it has a
 * SESSION holder or a waiter, so a handoff to a SESSION waiter still never
 * allocates; links_trim frees it once it has neither.  Release and expiry
 * test the flag before any lookup, so a plain lock never pays for the
 * links map.  Waiters and session lists point at
 * the links record directly (it knows its entry), so walking them needs no
 * lookup either; entries never move, so the address key stays valid.
 * A holder's value (Redis SET) is kept the same way, in a third map keyed
 * by the entry's address (lock_value.c), behind the ENTRY_HAS_VALUE flag.
 *
 * A SESSION lock's links record is linked into its session's record
 * (lock_session.h).  Ending a session moves that record to a draining FIFO
 * in O(1); run_timers releases its locks from there a slice at a time, and
 * any lookup or due deadline that meets such a lock settles it first
 * (settle_ended, as lazy expiry does), so no answer shows one held.
 *
 * Waiters are a doubly linked FIFO per key (in the links record) and are
 * always in the `waits` heap (ENTRY_NEVER for WAIT FOREVER), for the same
 * reason as entries.  First come, first served is the FIFO's order; the
 * heaps order only by deadline (equal deadlines leave in no set order).
 */
#include "engine/locktable.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine/locktable_int.h"

/* Tokens: max(last + 1, wall clock in us), so they grow strictly within a
 * run and start above the previous run's tokens after a restart. */
uint64_t lt_next_token(struct locktable *t)
{
    uint64_t wall = t->clock.wall_us(t->clock.arg);
    uint64_t token = t->last_token + 1 > wall ? t->last_token + 1 : wall;
    if (t->raise_ceiling && token > t->token_ceiling) {
        uint64_t raised = t->raise_ceiling(t->raise_arg, token);
        if (raised >= token)
            t->token_ceiling = raised;
    }
    t->last_token = token;
    return token;
}

/* ---- links records ---- */

/* e's links record, or NULL when it has none; looks in t->links only when
 * e's flag says there is one. */
struct lock_links *lt_links_find(struct locktable *t,
                                     const struct lock_entry *e)
{
    if (!(e->flags & ENTRY_HAS_LINKS))
        return NULL;
    struct map_node *n = map_find(&t->links, &e, sizeof(e),
                                  map_hash(&t->links, &e, sizeof(e)));
    assert(n != NULL);
    return CONTAINER_OF(n, struct lock_links, node);
}

/* e's links record, made if it has none; NULL when out of memory. */
struct lock_links *lt_links_get(struct locktable *t, struct lock_entry *e)
{
    struct lock_links *x = lt_links_find(t, e);
    if (x)
        return x;
    x = lt_apart_alloc(t, sizeof(*x), 1, offsetof(struct lock_links, ref));
    if (!x)
        return NULL;
    x->entry = e;
    x->node.keylen = sizeof(x->entry);
    x->node.hash = map_hash(&t->links, &x->entry, sizeof(x->entry));
    map_insert(&t->links, &x->node, x->ref);
    e->flags |= ENTRY_HAS_LINKS;
    return x;
}

/* Frees x, e's links record (NULL: none), once nothing needs it: no SESSION
 * holder and no waiter.  Without this a key that once had a waiter would
 * carry the record (about 80 bytes with malloc's header) for as long as it
 * stays held.  Never allocates, so the paths that call it cannot fail. */
void lt_links_trim(struct locktable *t, struct lock_entry *e,
                       struct lock_links *x)
{
    if (!x || x->link.rec || x->wait_head)
        return;
    map_remove(&t->links, &x->node);
    lt_apart_free(t, x, x->ref);
    e->flags &= (uint8_t)~ENTRY_HAS_LINKS;
}

/* ---- SESSION locks: links in their session's record ---- */

/* SESSION locks are links in the session's record (lock_session.h), which
 * sess_reserve made before the grant or before the SESSION wait was queued,
 * so a hand-off never allocates. */
static void session_link_lock(struct lock_session *s, struct lock_links *x)
{
    assert(s->rec != NULL);
    sess_link(s->rec, &x->link);
    x->entry->flags |= ENTRY_SESSION;
}

void lt_session_unlink_lock(struct lock_links *x)
{
    sess_unlink(&x->link);
    x->entry->flags &= (uint8_t)~ENTRY_SESSION;
}

/* ---- entries ---- */

/* Bytes of the entry for a key of keylen bytes. */
static size_t entry_size(size_t keylen)
{
    size_t n = offsetof(struct lock_entry, key) + keylen;
    return n < sizeof(struct lock_entry) ? sizeof(struct lock_entry) : n;
}

struct lock_entry *lt_entry_create(struct locktable *t, const char *key,
                                       size_t keylen, uint32_t hash)
{
    if (keylen > MAP_KEY_MAX ||
        keylen > SIZE_MAX - offsetof(struct lock_entry, key))
        return NULL; /* the second test matters only where size_t is 32 bits */
    uint32_t ref;
    struct lock_entry *e = slab_alloc(&t->slab, entry_size(keylen), &ref);
    if (!e)
        return NULL;
    e->token = 0;
    e->flags = 0;
    memcpy(e->key, key, keylen);
    e->node.keylen = (uint32_t)keylen;
    e->node.hash = hash;
    heap_node_init(&e->due);
    if (heap_push(&t->expiries, &e->due, ref, ENTRY_NEVER) != 0) {
        slab_free(&t->slab, e, entry_size(keylen));
        return NULL;
    }
    map_insert(&t->map, &e->node, ref);
    t->entries++;
    t->data_bytes += keylen;
    return e;
}

/* Frees e and x, which must be lt_links_find(t, e). */
void lt_entry_destroy(struct locktable *t, struct lock_entry *e,
                          struct lock_links *x)
{
    assert((x != NULL) == ((e->flags & ENTRY_HAS_LINKS) != 0));
    assert(!(e->flags & (ENTRY_DURABLE | ENTRY_HAS_VALUE))); /* its hold
                                                               * ended first */
    heap_remove(lt_due_heap(t, e), &e->due);
    map_remove(&t->map, &e->node);
    t->entries--;
    t->data_bytes -= e->node.keylen;
    if (x) {
        map_remove(&t->links, &x->node);
        lt_apart_free(t, x, x->ref);
    }
    slab_free(&t->slab, e, entry_size(e->node.keylen));
}

static void waiter_unlink(struct locktable *t, struct lock_waiter *w)
{
    struct lock_links *x = w->x;
    if (w->prev)
        w->prev->next = w->next;
    else
        x->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        x->wait_tail = w->prev;
    x->nwaiters--;
    t->stats.waiters--;
    heap_remove(&t->waits, &w->due);
    sess_remove_wait(&w->slink);
}

/* Makes e held by a new token; e's heap node already exists.  x is e's
 * links record, needed only to link a SESSION lock to its session; v is
 * the holder's value (NULL: none), attached before the journal sees the
 * lease so that a written lease carries it.  Returns the token, or 0 when
 * the lease could not be made durable: then e is left as it was (not
 * held, v detached again for the caller to free) and only a token was
 * used up. */
uint64_t lt_grant(struct locktable *t, struct lock_entry *e,
                  struct lock_links *x, uint64_t now, uint64_t ttl_us,
                  struct lock_session *session, int session_lock,
                  struct lock_value *v)
{
    uint64_t deadline = lt_deadline_after(now, ttl_us);
    e->token = lt_next_token(t);
    if (v)
        lt_value_attach(t, e, v);
    if (lt_make_durable(t, e, now, deadline, session_lock && session) != 0) {
        if (v)
            lt_value_detach(t, e);
        e->token = 0;
        return 0;
    }
    if (session_lock && session) {
        assert(x != NULL);
        session_link_lock(session, x);
    }
    lt_set_deadline(t, e, deadline);
    t->stats.acquired++;
    t->stats.held++;
    return e->token;
}

/* Ends e's hold; x is lt_links_find(t, e).  The holder's value goes with
 * it: a value belongs to the hold that stored it, not to the key. */
void lt_end_hold(struct locktable *t, struct lock_entry *e,
                 struct lock_links *x)
{
    if (x)
        lt_session_unlink_lock(x);
    lt_hold_ended(t, e);
    lt_value_free(t, lt_value_detach(t, e));
    e->token = 0;
    t->stats.held--;
}

/* After e's hold ended (or recovery ended for it) at freed_at: hand it to the
 * first waiter, keep it waiting for recovery, or free it.  x is
 * lt_links_find(t, e).  May free e. */
void lt_pass_on(struct locktable *t, struct lock_entry *e,
                struct lock_links *x, uint64_t now, uint64_t freed_at)
{
    struct lock_waiter *w;
    /* A wait that ended before the lock came free is a timeout even when
     * run_timers has not reached it yet (lazy expiry, a late timer, a
     * release just before the timer): run_timers would have ended it first,
     * and granting it would also jump it ahead of the waiters behind it. */
    while ((w = x ? x->wait_head : NULL) != NULL &&
           heap_deadline(&t->waits, &w->due) < freed_at) {
        void *ctx = w->ctx;
        waiter_unlink(t, w);
        lt_apart_free(t, w, w->ref);
        t->stats.timeouts++;
        if (t->events.timed_out)
            t->events.timed_out(ctx, e->key, e->node.keylen, t->events.arg);
    }
    if (!w) {
        lt_entry_destroy(t, e, x);
        return;
    }
    if (lt_recovering_at(t, now)) {
        lt_set_deadline(t, e, t->recovery_until);
        return;
    }
    /* Granted before it leaves the queue: when the journal fails it stays
     * first in line and the handoff is tried again a little later. */
    struct lock_session *session = w->slink.session; /* waiter_unlink clears it */
    uint64_t token = lt_grant(t, e, x, now, w->ttl_us, session,
                              w->session_lock, NULL);
    if (!token) {
        lt_set_deadline(t, e,
                    lt_deadline_after(now, t->journal.journal_retry_us));
        return;
    }
    waiter_unlink(t, w); /* its own links only: the lock's are set */
    t->stats.handoffs++;
    lt_links_trim(t, e, x); /* the last waiter, granted a plain lock */
    void *ctx = w->ctx;
    lt_apart_free(t, w, w->ref);
    if (t->events.granted)
        t->events.granted(ctx, token, t->events.arg);
}

/* e's heap deadline has passed: its lock expired, or recovery ended. */
static void entry_due(struct locktable *t, struct lock_entry *e, uint64_t now)
{
    uint64_t freed_at = lt_entry_deadline(t, e);
    struct lock_links *x = lt_links_find(t, e);
    if (e->token) {
        /* An expired lease needs no end record: its hold record says when
         * it ends, and a replay drops it from then on. */
        lt_durable_unlink(t, e);
        lt_end_hold(t, e, x);
        t->stats.expired++;
    }
    lt_set_deadline(t, e, ENTRY_NEVER);
    lt_pass_on(t, e, x, now, freed_at);
}

/* ---- ended sessions: their locks are released in slices ---- */

/* Releases x's lock, held by a session that has ended, as of that end: what
 * locktable_session_end did at once before the release was sliced.  A TTL
 * that ran out before the end makes it an expiry; otherwise it is a
 * release, and the wait that decides who gets the key is judged against
 * the end time, so a waiter is not timed out for the time the drain took to
 * reach its key.  May free x and its entry. */
static void release_ended(struct locktable *t, struct lock_links *x,
                          uint64_t now)
{
    struct lock_entry *e = x->entry;
    uint64_t ended_at = x->link.rec->ended_at;
    if (lt_entry_deadline(t, e) <= ended_at) {
        entry_due(t, e, now);
        return;
    }
    lt_end_hold(t, e, x);
    t->stats.released++;
    lt_set_deadline(t, e, ENTRY_NEVER);
    lt_pass_on(t, e, x, now, ended_at);
}

/* When e is held by a SESSION lock whose session has ended, releases it
 * (release_ended) and returns 1: e may be gone.  Else 0.  Only SESSION
 * locks pay for the links record lookup. */
static int settle_ended(struct locktable *t, struct lock_entry *e, uint64_t now)
{
    if (!(e->flags & ENTRY_SESSION))
        return 0;
    struct lock_links *x = lt_links_find(t, e);
    if (!x->link.rec->ended)
        return 0;
    release_ended(t, x, now);
    return 1;
}

/* Finds key, first settling a passed deadline (lazy expiry) or a lock whose
 * session ended (lazy drain), so callers never see an expired holder or a
 * gone session's lock.  NULL when the key has no entry. */
struct lock_entry *lt_lookup(struct locktable *t, const char *key,
                                 size_t keylen, uint64_t now, uint32_t *hash)
{
    uint32_t h = map_hash(&t->map, key, keylen);
    if (hash)
        *hash = h;
    struct map_node *n = map_find(&t->map, key, keylen, h);
    if (!n)
        return NULL;
    struct lock_entry *e = CONTAINER_OF(n, struct lock_entry, node);
    int settled = settle_ended(t, e, now);
    if (!settled && lt_entry_deadline(t, e) <= now) {
        entry_due(t, e, now);
        settled = 1;
    }
    if (settled) {
        n = map_find(&t->map, key, keylen, h); /* either may free it */
        e = n ? CONTAINER_OF(n, struct lock_entry, node) : NULL;
    }
    return e;
}

/* ---- public API ---- */

struct locktable *locktable_new(const struct lock_clock *clock,
                                const struct lock_events *events,
                                const struct locktable_limits *limits,
                                const uint8_t seed[16])
{
    struct locktable *t = cfy_calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    slab_init(&t->slab);
    if (map_init(&t->map, seed, &t->slab, ENTRY_KEY_OFFSET) != 0 ||
        map_init(&t->links, seed, &t->slab, LINKS_KEY_OFFSET) != 0 ||
        map_init(&t->values, seed, &t->slab, VALUE_KEY_OFFSET) != 0 ||
        lt_pool_init(t, seed) != 0) {
        map_free(&t->map);
        map_free(&t->links);
        map_free(&t->values);
        cfy_free(t);
        return NULL;
    }
    heap_init(&t->expiries, &t->slab, offsetof(struct lock_entry, due));
    heap_init(&t->durables, &t->slab, offsetof(struct lock_entry, due));
    heap_init(&t->waits, &t->slab, offsetof(struct lock_waiter, due));
    sess_table_init(&t->sessions);
    t->clock = *clock;
    if (events)
        t->events = *events;
    if (limits)
        t->limits = *limits;
    return t;
}

void locktable_set_limits(struct locktable *t,
                          const struct locktable_limits *limits)
{
    t->limits = *limits;
}

void locktable_free(struct locktable *t)
{
    if (!t)
        return;
    lt_pool_free(t);
    struct heap_node *hn;
    while ((hn = heap_pop(&t->waits)) != NULL) {
        struct lock_waiter *w = CONTAINER_OF(hn, struct lock_waiter, due);
        lt_apart_free(t, w, w->ref);
    }
    struct map_iter it;
    struct map_node *n;
    map_iter_init(&t->links, &it);
    while ((n = map_iter_next(&it)) != NULL) {
        struct lock_links *x = CONTAINER_OF(n, struct lock_links, node);
        lt_apart_free(t, x, x->ref);
    }
    map_iter_done(&it);
    map_iter_init(&t->values, &it);
    while ((n = map_iter_next(&it)) != NULL) {
        struct lock_value *v = CONTAINER_OF(n, struct lock_value, node);
        lt_apart_free(t, v, v->ref);
    }
    map_iter_done(&it);
    /* The slab's pages hold every entry but those too big for it. */
    map_iter_init(&t->map, &it);
    while ((n = map_iter_next(&it)) != NULL) {
        if (entry_size(n->keylen) > SLAB_MAX_SIZE)
            slab_free(&t->slab, CONTAINER_OF(n, struct lock_entry, node),
                      entry_size(n->keylen));
    }
    map_iter_done(&it);
    /* Every object numbered in the slab was left once as it was freed, on
     * this path as on every other (a second leave trips slab.c's assert):
     * a registration still counted here is a free path that skipped
     * slab_leave, or an object never freed. */
    assert(slab_apart(&t->slab) == 0);
    slab_destroy(&t->slab);
    sess_table_free(&t->sessions); /* live and draining records */
    heap_free(&t->waits);
    heap_free(&t->expiries);
    heap_free(&t->durables);
    map_free(&t->links);
    map_free(&t->values);
    map_free(&t->map);
    cfy_free(t);
}

static enum lock_result enqueue(struct locktable *t, struct lock_entry *e,
                                const struct lock_request *rq, uint64_t now)
{
    struct lock_links *x = lt_links_find(t, e);
    if (t->limits.max_waiters && x && x->nwaiters >= t->limits.max_waiters)
        return LOCK_LIMIT_WAITERS;
    /* The grant to come links into the session's record: make it now. */
    if (rq->session_lock && rq->session &&
        sess_reserve(&t->sessions, rq->session) != 0)
        return LOCK_NO_MEMORY;
    if (!x && !(x = lt_links_get(t, e)))
        return LOCK_NO_MEMORY;
    struct lock_waiter *w = lt_apart_alloc(t, sizeof(*w), 1,
                                           offsetof(struct lock_waiter, ref));
    if (!w) {
        lt_links_trim(t, e, x); /* made just now: nothing changed after all */
        return LOCK_NO_MEMORY;
    }
    heap_node_init(&w->due);
    if (heap_push(&t->waits, &w->due, w->ref,
                  lt_deadline_after(now, rq->wait_us)) != 0) {
        lt_apart_free(t, w, w->ref);
        lt_links_trim(t, e, x);
        return LOCK_NO_MEMORY;
    }
    w->x = x;
    w->ttl_us = rq->ttl_us;
    w->session_lock = rq->session_lock;
    w->ctx = rq->ctx;
    w->prev = x->wait_tail;
    if (x->wait_tail)
        x->wait_tail->next = w;
    else
        x->wait_head = w;
    x->wait_tail = w;
    x->nwaiters++;
    t->stats.waiters++;
    if (rq->session)
        sess_add_wait(rq->session, &w->slink);
    return LOCK_QUEUED;
}

enum lock_result locktable_acquire(struct locktable *t,
                                   const struct lock_request *rq,
                                   uint64_t *token)
{
    uint64_t now = lt_now_us(t);
    uint32_t hash;
    struct lock_entry *e = lt_lookup(t, rq->key, rq->keylen, now, &hash);
    int recovering = lt_recovering_at(t, now);

    /* An entry that is not held only exists during recovery (its deadline
     * is the end of recovery, which lt_lookup() settles), so outside recovery
     * `e` is either NULL or held (or, rarely, waiting for a journal retry:
     * see pass_on). */
    if (!e && lt_pool_exists(t, rq->key, rq->keylen))
        return LOCK_WRONGTYPE; /* one keyspace: see lock_pool.h */
    if (!e && !recovering) {
        if (t->limits.max_locks &&
            t->entries + t->pool_slots >= t->limits.max_locks)
            return LOCK_LIMIT_LOCKS;
        if (lt_over_data_limit(t, rq->keylen) ||
            (rq->value && lt_over_data_limit(t, rq->keylen + rq->vlen)))
            return LOCK_LIMIT_MEMORY;
        if (rq->session_lock && rq->session &&
            sess_reserve(&t->sessions, rq->session) != 0)
            return LOCK_NO_MEMORY;
        struct lock_value *v = NULL;
        if (rq->value && !(v = lt_value_new(t, rq->value, rq->vlen)))
            return LOCK_NO_MEMORY;
        e = lt_entry_create(t, rq->key, rq->keylen, hash);
        if (!e) {
            lt_value_free(t, v);
            return LOCK_NO_MEMORY;
        }
        struct lock_links *x = NULL;
        if (rq->session_lock && rq->session && !(x = lt_links_get(t, e))) {
            lt_value_free(t, v);
            lt_entry_destroy(t, e, NULL);
            return LOCK_NO_MEMORY;
        }
        *token = lt_grant(t, e, x, now, rq->ttl_us, rq->session,
                          rq->session_lock, v);
        if (*token)
            return LOCK_GRANTED;
        lt_value_free(t, v);
        lt_entry_destroy(t, e, lt_links_find(t, e));
        return LOCK_NOT_DURABLE;
    }
    if (!rq->wait) {
        t->stats.rejected++;
        return LOCK_BUSY;
    }
    int created = 0;
    if (!e) { /* recovering: an unheld entry carries the queue */
        if (t->limits.max_locks && t->entries >= t->limits.max_locks)
            return LOCK_LIMIT_LOCKS;
        if (lt_over_data_limit(t, rq->keylen))
            return LOCK_LIMIT_MEMORY;
        e = lt_entry_create(t, rq->key, rq->keylen, hash);
        if (!e)
            return LOCK_NO_MEMORY;
        lt_set_deadline(t, e, t->recovery_until);
        created = 1;
    }
    enum lock_result r = enqueue(t, e, rq, now);
    if (r != LOCK_QUEUED && created)
        lt_entry_destroy(t, e, lt_links_find(t, e));
    return r;
}

int locktable_release(struct locktable *t, const char *key, size_t keylen,
                      uint64_t token)
{
    uint64_t now = lt_now_us(t);
    struct lock_entry *e = lt_lookup(t, key, keylen, now, NULL);
    if (!e || !e->token || (token && e->token != token))
        return 0;
    struct lock_links *x = lt_links_find(t, e);
    lt_end_hold(t, e, x);
    t->stats.released++;
    lt_set_deadline(t, e, ENTRY_NEVER);
    lt_pass_on(t, e, x, now, now);
    return 1;
}

int locktable_is_locked(struct locktable *t, const char *key, size_t keylen)
{
    uint64_t now = lt_now_us(t);
    struct lock_entry *e = lt_lookup(t, key, keylen, now, NULL);
    /* While recovering, a key nobody holds here may still be held by a
     * lock granted before the crash: the answer ACQUIRE gives. */
    return (e && e->token) || lt_recovering_at(t, now) ||
           (!e && lt_pool_full(t, key, keylen));
}

int locktable_extend(struct locktable *t, const char *key, size_t keylen,
                     uint64_t token, uint64_t ttl_us)
{
    uint64_t now = lt_now_us(t);
    struct lock_entry *e = lt_lookup(t, key, keylen, now, NULL);
    if (!e || !e->token || e->token != token)
        return 0;
    uint64_t deadline = lt_deadline_after(now, ttl_us);
    if (lt_make_durable(t, e, now, deadline,
                     (e->flags & ENTRY_SESSION) != 0) != 0)
        return -1;
    lt_set_deadline(t, e, deadline);
    return 1;
}

int64_t locktable_pttl_us(struct locktable *t, const char *key, size_t keylen)
{
    uint64_t now = lt_now_us(t);
    struct lock_entry *e = lt_lookup(t, key, keylen, now, NULL);
    if ((!e || !e->token) && lt_recovering_at(t, now))
        return (int64_t)(t->recovery_until - now); /* as is_locked says */
    if (!e || !e->token)
        return -2;
    uint64_t deadline = lt_entry_deadline(t, e);
    if (deadline == ENTRY_NEVER)
        return -1;
    uint64_t left = deadline - now; /* > 0: lookup settled due ones */
    return left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
}

uint64_t locktable_holder_token(struct locktable *t, const char *key,
                                size_t keylen)
{
    struct lock_entry *e = lt_lookup(t, key, keylen, lt_now_us(t), NULL);
    return e ? e->token : 0;
}

void locktable_session_cancel_waits(struct locktable *t,
                                    struct lock_session *session)
{
    while (session->waiters != NULL) {
        if (session->waiters->kind == SESS_KIND_POOL) {
            lt_pool_cancel_wait(t, session->waiters);
            continue;
        }
        struct lock_waiter *w =
            CONTAINER_OF(session->waiters, struct lock_waiter, slink);
        struct lock_links *x = w->x;
        waiter_unlink(t, w);
        lt_apart_free(t, w, w->ref);
        if (!x->entry->token && !x->wait_head)
            lt_entry_destroy(t, x->entry, x);
        else
            lt_links_trim(t, x->entry, x);
    }
}

/* O(1) plus the waits: the record, with every SESSION lock in it, goes to
 * the draining FIFO that run_timers works through (release_ended). */
void locktable_session_end(struct locktable *t, struct lock_session *session)
{
    locktable_session_cancel_waits(t, session);
    sess_end(&t->sessions, session, lt_now_us(t));
}

uint64_t locktable_next_deadline(const struct locktable *t)
{
    if (sess_draining(&t->sessions))
        return 0; /* an ended session's locks: work for run_timers now */
    uint64_t da = heap_peek_deadline(&t->expiries);
    uint64_t dd = heap_peek_deadline(&t->durables);
    uint64_t db = heap_peek_deadline(&t->waits);
    uint64_t dp = lt_pool_next_deadline(t);
    if (dd < da)
        da = dd;
    if (dp < da)
        da = dp;
    return da < db ? da : db;
}

/* Of the two heaps of entries, the one whose earliest deadline comes
 * first. */
static struct heap *earliest_entries(struct locktable *t)
{
    return heap_peek_deadline(&t->durables) <
                   heap_peek_deadline(&t->expiries)
               ? &t->durables
               : &t->expiries;
}

size_t locktable_run_timers(struct locktable *t, size_t max_events)
{
    uint64_t now = lt_now_us(t);
    size_t done = 0;
    while (done < max_events) {
        struct heap *entries = earliest_entries(t);
        struct heap_node *a = heap_peek(entries);
        struct heap_node *b = heap_peek(&t->waits);
        uint64_t da = heap_peek_deadline(entries);
        uint64_t db = heap_peek_deadline(&t->waits);
        int a_due = a && da <= now;
        int b_due = b && db <= now;
        if (!a_due && !b_due) {
            if (lt_pool_run_one(t, now)) { /* a pool's slot or wait */
                done++;
                continue;
            }
            /* Deadlines first, so draining never delays an expiry; then
             * one lock (or pool slot) of the oldest ended session. */
            struct sess_link *l = sess_drain_head(&t->sessions);
            if (!l)
                break;
            if (l->kind == SESS_KIND_POOL)
                lt_pool_release_ended(t, l, now);
            else
                release_ended(t, CONTAINER_OF(l, struct lock_links, link),
                              now);
            done++;
            continue;
        }
        /* On a tie the lock expiry goes first: a waiter whose wait ends at
         * the very moment the lock frees up is granted, not timed out. */
        if (a_due && (!b_due || da <= db)) {
            struct lock_entry *e = CONTAINER_OF(a, struct lock_entry, due);
            if (!settle_ended(t, e, now)) /* else released at the end */
                entry_due(t, e, now);
        } else {
            struct lock_waiter *w = CONTAINER_OF(b, struct lock_waiter, due);
            struct lock_links *x = w->x;
            void *ctx = w->ctx;
            /* The key's holder has ended: release it as of that end and
             * let pass_on decide (a grant in FIFO order, or a timeout for
             * a wait that ran out before the end). */
            if (settle_ended(t, x->entry, now)) {
                done++;
                continue;
            }
            waiter_unlink(t, w);
            lt_apart_free(t, w, w->ref);
            t->stats.timeouts++;
            /* Told before the entry may go: the callback gets its key. */
            struct lock_entry *e = x->entry;
            if (t->events.timed_out)
                t->events.timed_out(ctx, e->key, e->node.keylen,
                                    t->events.arg);
            if (!e->token && !x->wait_head)
                lt_entry_destroy(t, e, x);
            else
                lt_links_trim(t, e, x);
        }
        done++;
    }
    return done;
}

void locktable_block_grants_until(struct locktable *t, uint64_t until_us)
{
    t->recovery_until = until_us;
}

void locktable_set_token_ceiling(struct locktable *t, uint64_t ceiling,
                                 uint64_t (*raise_fn)(void *arg, uint64_t token),
                                 void *arg)
{
    t->token_ceiling = ceiling;
    t->raise_ceiling = raise_fn;
    t->raise_arg = arg;
}

int locktable_recovering(const struct locktable *t)
{
    return lt_recovering_at(t, lt_now_us(t));
}

uint64_t locktable_last_token(const struct locktable *t)
{
    return t->last_token;
}

void locktable_raise_last_token(struct locktable *t, uint64_t token)
{
    if (token > t->last_token)
        t->last_token = token;
}

void locktable_stats(const struct locktable *t, struct lock_stats *out)
{
    *out = t->stats;
    out->data_bytes = t->data_bytes;
}

size_t locktable_links_records(const struct locktable *t)
{
    return map_count(&t->links);
}

size_t locktable_draining(const struct locktable *t)
{
    return t->sessions.draining_locks;
}
