/* engine/lock_pool.c - pools: keys that admit up to N holders (see
 * lock_pool.h for the contract).
 *
 * Owns: struct lock_pool, struct pool_slot and struct pool_waiter (laid
 * out in lock_pool_int.h) and everything a pool does but its crash safety,
 * restore and walks (lock_pool_journal.c).  Does not own: tokens, sessions,
 * the journal or the locks' keyspace (locktable.c, lock_session.c,
 * lock_journal.c), which it shares.
 *
 * Layout.  A pool is one allocation in t->pools, keyed by its key.  A held
 * slot is one allocation found by its token in t->slots (tokens are unique
 * over the table) and timed in its pool's own heap of slot expiries, which
 * is also the pool's list of them (for a forced release and the state
 * file).  The pool sits
 * in t->pool_due at the earlier of its first slot expiry and its retry
 * time, so the timer pops pools, and a lookup settles one pool's due slots
 * without touching any other pool: no step scans the slots of a pool but
 * a forced release (which frees them all) and the snapshot walk.
 * Waiters are a FIFO per pool and timed in t->pool_waits.
 *
 * A handoff allocates (the slot and its heap item), unlike a lock's: when
 * that, or the journal, fails, the waiter stays first in line and the pool
 * is tried again after the journal's retry time (POOL_RETRY_US without a
 * journal), as a lock's failed handoff is.
 */
#include "engine/lock_pool.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "engine/lock_pool_int.h"

/* Retry of a failed handoff when no journal sets journal_retry_us. */
#define POOL_RETRY_US 100000u

/* ---- pools ---- */

struct lock_pool *lp_find(struct locktable *t, const char *key,
                          size_t keylen, uint32_t *hash)
{
    /* Every ACQUIRE of a new key asks here; with no pool at all, and no
     * hash wanted, skip hashing the key (a second SipHash of it, ~400
     * instructions for 30 bytes: callgrind). */
    if (!hash && map_count(&t->pools) == 0)
        return NULL;
    uint32_t h = map_hash(&t->pools, key, keylen);
    if (hash)
        *hash = h;
    if (map_count(&t->pools) == 0)
        return NULL;
    struct map_node *n = map_find(&t->pools, key, keylen, h);
    return n ? CONTAINER_OF(n, struct lock_pool, node) : NULL;
}

/* Puts p in t->pool_due at its next deadline. */
static void pool_rearm(struct locktable *t, struct lock_pool *p)
{
    if (!p->wait_head)
        p->retry_at = 0; /* nobody to retry for */
    uint64_t d = heap_peek_deadline(&p->slots);
    if (p->retry_at && p->retry_at < d)
        d = p->retry_at;
    heap_update(&t->pool_due, &p->due, d);
}

struct lock_pool *lp_create(struct locktable *t, const char *key,
                            size_t keylen, uint32_t hash, uint32_t max)
{
    if (keylen > MAP_KEY_MAX)
        return NULL;
    struct lock_pool *p = lt_apart_alloc(t, sizeof(*p) + keylen, 1,
                                         offsetof(struct lock_pool, ref));
    if (!p)
        return NULL;
    memcpy(p->key, key, keylen);
    p->max = max;
    heap_init(&p->slots, &t->slab, offsetof(struct pool_slot, due));
    heap_node_init(&p->due);
    if (heap_push(&t->pool_due, &p->due, p->ref, ENTRY_NEVER) != 0) {
        lt_apart_free(t, p, p->ref);
        return NULL;
    }
    p->node.keylen = (uint32_t)keylen;
    p->node.hash = hash;
    map_insert(&t->pools, &p->node, p->ref);
    t->stats.pools++;
    t->data_bytes += keylen;
    return p;
}

struct lock_pool *lp_trim(struct locktable *t, struct lock_pool *p)
{
    if (p->used || p->wait_head) {
        pool_rearm(t, p);
        return p;
    }
    heap_remove(&t->pool_due, &p->due);
    heap_free(&p->slots);
    map_remove(&t->pools, &p->node);
    t->stats.pools--;
    t->data_bytes -= p->node.keylen;
    lt_apart_free(t, p, p->ref);
    return NULL;
}

/* ---- slots ---- */

struct pool_slot *lp_slot_find(struct locktable *t, uint64_t token)
{
    struct map_node *n = map_find(&t->slots, &token, sizeof(token),
                                  map_hash(&t->slots, &token, sizeof(token)));
    return n ? CONTAINER_OF(n, struct pool_slot, node) : NULL;
}

void lp_slot_free(struct locktable *t, struct pool_slot *s)
{
    struct lock_pool *p = slot_pool(s);
    struct sess_link *l = slot_link(s);
    if (heap_node_queued(&s->dur))
        heap_remove(&t->slot_durables, &s->dur);
    if (l)
        sess_unlink(l);
    heap_remove(&p->slots, &s->due);
    map_remove(&t->slots, &s->node);
    p->used--;
    t->pool_slots--;
    t->stats.pool_slots--;
    lt_apart_free(t, s, s->ref); /* a pool_slot_sess starts with s */
}

/* Ends slot s's hold (its written lease's end written) and frees it. */
static void slot_drop(struct locktable *t, struct pool_slot *s)
{
    lp_slot_ended(t, s);
    lp_slot_free(t, s);
}

int64_t lp_end_slots(struct locktable *t, struct lock_pool *p,
                     uint64_t token, int journal)
{
    int64_t n = 0;
    struct pool_slot *s;
    if (token) {
        if ((s = lp_slot_find(t, token)) != NULL && slot_pool(s) == p) {
            if (journal)
                lp_slot_ended(t, s);
            lp_slot_free(t, s);
            n = 1;
        }
        return n;
    }
    while ((s = slot_at(p, 0)) != NULL) { /* O(slots held): the one O(N)
                                           * step */
        if (journal)
            lp_slot_ended(t, s);
        lp_slot_free(t, s);
        n++;
    }
    return n;
}

struct pool_slot *lp_slot_new(struct locktable *t, struct lock_pool *p,
                              uint64_t token, uint64_t deadline, int session)
{
    struct pool_slot *s = lt_apart_alloc(
        t, session ? sizeof(struct pool_slot_sess) : sizeof(*s), 1,
        offsetof(struct pool_slot, ref));
    if (!s)
        return NULL;
    if (session)
        CONTAINER_OF(s, struct pool_slot_sess, s)->link.kind = SESS_KIND_POOL;
    heap_node_init(&s->due);
    heap_node_init(&s->dur);
    if (heap_push(&p->slots, &s->due, s->ref, deadline) != 0) {
        lt_apart_free(t, s, s->ref);
        return NULL;
    }
    s->token = token;
    s->pool_bits = (uintptr_t)p | (session ? SLOT_SESSION : 0);
    s->node.keylen = sizeof(s->token);
    s->node.hash = map_hash(&t->slots, &s->token, sizeof(s->token));
    map_insert(&t->slots, &s->node, s->ref);
    p->used++;
    t->pool_slots++;
    t->stats.pool_slots++;
    return s;
}

/* Grants a slot of p (which has a free one) for ttl_us; a SESSION slot
 * links into session's record, which sess_reserve made.  LOCK_GRANTED with
 * *token, or LOCK_NO_MEMORY / LOCK_NOT_DURABLE with nothing changed but a
 * token used up (as a failed lock grant). */
static enum lock_result slot_grant(struct locktable *t, struct lock_pool *p,
                                   uint64_t now, uint64_t ttl_us,
                                   struct lock_session *session,
                                   int session_lock, uint64_t *token)
{
    uint64_t deadline = lt_deadline_after(now, ttl_us);
    int in_session = session_lock && session;
    struct pool_slot *s = lp_slot_new(t, p, lt_next_token(t), deadline,
                                      in_session);
    if (!s)
        return LOCK_NO_MEMORY;
    /* Journaled before it is linked into its session or answered: the
     * hook sees the slot's own token. */
    if (lp_make_durable(t, s, now, deadline, in_session) != 0) {
        lp_slot_free(t, s);
        return LOCK_NOT_DURABLE;
    }
    if (in_session) {
        assert(session->rec != NULL);
        sess_link(session->rec, slot_link(s));
    }
    t->stats.acquired++;
    *token = s->token;
    return LOCK_GRANTED;
}

/* ---- waiters ---- */

static void waiter_unlink(struct locktable *t, struct pool_waiter *w)
{
    struct lock_pool *p = w->pool;
    if (w->prev)
        w->prev->next = w->next;
    else
        p->wait_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->wait_tail = w->prev;
    p->nwaiters--;
    t->stats.pool_waiters--;
    heap_remove(&t->pool_waits, &w->due);
    sess_remove_wait(&w->slink);
}

/* w's wait ran out: -TIMEOUT through the events; p stays for the caller
 * to trim (the callback gets its key). */
static void waiter_time_out(struct locktable *t, struct pool_waiter *w)
{
    struct lock_pool *p = w->pool;
    void *ctx = w->ctx;
    waiter_unlink(t, w);
    lt_apart_free(t, w, w->ref);
    t->stats.timeouts++;
    if (t->events.timed_out)
        t->events.timed_out(ctx, p->key, p->node.keylen, t->events.arg);
}

/* Slots of p came free at freed_at: grants them to the waiters in FIFO
 * order; a wait that ended before freed_at is a timeout, as for locks.
 * Does not trim p. */
static void pool_serve(struct locktable *t, struct lock_pool *p, uint64_t now,
                       uint64_t freed_at)
{
    struct pool_waiter *w;
    while (p->used < p->max && (w = p->wait_head) != NULL) {
        if (heap_deadline(&t->pool_waits, &w->due) < freed_at) {
            waiter_time_out(t, w);
            continue;
        }
        if (lt_recovering_at(t, now)) {
            p->retry_at = t->recovery_until;
            return;
        }
        uint64_t token;
        if (slot_grant(t, p, now, w->ttl_us, w->slink.session,
                       w->session_lock, &token) != LOCK_GRANTED) {
            uint64_t retry = t->journal.journal_retry_us
                                 ? t->journal.journal_retry_us
                                 : POOL_RETRY_US;
            p->retry_at = lt_deadline_after(now, retry);
            return;
        }
        p->retry_at = 0;
        waiter_unlink(t, w);
        t->stats.handoffs++;
        void *ctx = w->ctx;
        lt_apart_free(t, w, w->ref);
        if (t->events.granted)
            t->events.granted(ctx, token, t->events.arg);
    }
}

/* Expires up to max of p's due slots (each handed on as it goes) and,
 * when none is left due, runs a due retry.  Returns p, or NULL when it
 * went.  A lookup settles them all (no answer may show an expired slot);
 * the timer one at a time, so a big pool running out at once is freed in
 * slices, as lock expiries are, and p stays at the top of t->pool_due. */
static struct lock_pool *pool_settle(struct locktable *t, struct lock_pool *p,
                                     uint64_t now, size_t max)
{
    uint64_t d;
    while (max > 0 && (d = heap_peek_deadline(&p->slots)) <= now) {
        slot_drop(t, CONTAINER_OF(heap_peek(&p->slots), struct pool_slot,
                                  due));
        t->stats.expired++;
        pool_serve(t, p, now, d);
        max--;
    }
    if (heap_peek_deadline(&p->slots) > now && p->retry_at &&
        p->retry_at <= now) {
        p->retry_at = 0;
        pool_serve(t, p, now, now);
    }
    return lp_trim(t, p);
}

struct lock_pool *lp_get(struct locktable *t, const char *key, size_t keylen,
                         uint64_t now, uint32_t *hash)
{
    struct lock_pool *p = lp_find(t, key, keylen, hash);
    return p ? pool_settle(t, p, now, SIZE_MAX) : NULL;
}

/* For the calls on an existing pool: -1 when key is a lock (*p NULL),
 * else 0 with *p key's pool settled (NULL: none). */
static int pool_of(struct locktable *t, const char *key, size_t keylen,
                   uint64_t now, struct lock_pool **p)
{
    *p = NULL;
    if (lt_lookup(t, key, keylen, now, NULL))
        return -1;
    *p = lp_get(t, key, keylen, now, NULL);
    return 0;
}

/* ---- engine-internal ---- */

int lt_pool_init(struct locktable *t, const uint8_t seed[16])
{
    heap_init(&t->pool_due, &t->slab, offsetof(struct lock_pool, due));
    heap_init(&t->pool_waits, &t->slab, offsetof(struct pool_waiter, due));
    heap_init(&t->slot_durables, &t->slab, offsetof(struct pool_slot, dur));
    if (map_init(&t->pools, seed, &t->slab, POOL_KEY_OFFSET) != 0 ||
        map_init(&t->slots, seed, &t->slab, SLOT_KEY_OFFSET) != 0) {
        map_free(&t->pools);
        map_free(&t->slots);
        return -1;
    }
    return 0;
}

void lt_pool_free(struct locktable *t)
{
    struct heap_node *hn;
    while ((hn = heap_pop(&t->pool_waits)) != NULL) {
        struct pool_waiter *w = CONTAINER_OF(hn, struct pool_waiter, due);
        lt_apart_free(t, w, w->ref);
    }
    struct map_iter it;
    struct map_node *n;
    map_iter_init(&t->pools, &it);
    while ((n = map_iter_next(&it)) != NULL) {
        struct lock_pool *p = CONTAINER_OF(n, struct lock_pool, node);
        struct pool_slot *s;
        for (size_t i = 0; (s = slot_at(p, i)) != NULL; i++)
            lt_apart_free(t, s, s->ref); /* a pool_slot_sess starts with s */
        heap_free(&p->slots);
        lt_apart_free(t, p, p->ref);
    }
    map_iter_done(&it);
    heap_free(&t->pool_due);
    heap_free(&t->pool_waits);
    heap_free(&t->slot_durables);
    map_free(&t->pools);
    map_free(&t->slots);
}

int lt_pool_exists(struct locktable *t, const char *key, size_t keylen)
{
    return lp_get(t, key, keylen, lt_now_us(t), NULL) != NULL;
}

int lt_pool_full(struct locktable *t, const char *key, size_t keylen)
{
    struct lock_pool *p = lp_get(t, key, keylen, lt_now_us(t), NULL);
    return p && p->used >= p->max;
}

uint64_t lt_pool_next_deadline(const struct locktable *t)
{
    uint64_t a = heap_peek_deadline(&t->pool_due);
    uint64_t b = heap_peek_deadline(&t->pool_waits);
    return a < b ? a : b;
}

int lt_pool_run_one(struct locktable *t, uint64_t now)
{
    /* Slots first: a wait that ends as a slot frees is granted. */
    struct heap_node *hn = heap_peek(&t->pool_due);
    if (hn && heap_peek_deadline(&t->pool_due) <= now) {
        pool_settle(t, CONTAINER_OF(hn, struct lock_pool, due), now, 1);
        return 1;
    }
    hn = heap_peek(&t->pool_waits);
    if (hn && heap_peek_deadline(&t->pool_waits) <= now) {
        struct pool_waiter *w = CONTAINER_OF(hn, struct pool_waiter, due);
        struct lock_pool *p = w->pool;
        waiter_time_out(t, w);
        lp_trim(t, p);
        return 1;
    }
    return 0;
}

void lt_pool_release_ended(struct locktable *t, struct sess_link *l,
                           uint64_t now)
{
    struct pool_slot *s = &CONTAINER_OF(l, struct pool_slot_sess, link)->s;
    struct lock_pool *p = slot_pool(s);
    uint64_t ended_at = l->rec->ended_at;
    uint64_t deadline = heap_deadline(&p->slots, &s->due);
    slot_drop(t, s);
    if (deadline <= ended_at) {
        t->stats.expired++;
        pool_serve(t, p, now, deadline);
    } else {
        t->stats.released++;
        pool_serve(t, p, now, ended_at);
    }
    lp_trim(t, p);
}

void lt_pool_cancel_wait(struct locktable *t, struct lock_wait_link *l)
{
    struct pool_waiter *w = CONTAINER_OF(l, struct pool_waiter, slink);
    struct lock_pool *p = w->pool;
    waiter_unlink(t, w);
    lt_apart_free(t, w, w->ref);
    /* The waiter that left may have been the one a retry was for; those
     * behind it may fit now. */
    pool_serve(t, p, lt_now_us(t), lt_now_us(t));
    lp_trim(t, p);
}

/* ---- public ---- */

/* Queues rq on p (made for it if NULL).  LOCK_QUEUED, or a refusal with
 * nothing changed. */
static enum lock_result pool_enqueue(struct locktable *t, struct lock_pool *p,
                                     const struct lock_request *rq,
                                     uint32_t max, uint32_t hash, uint64_t now)
{
    if (p && t->limits.max_waiters && p->nwaiters >= t->limits.max_waiters)
        return LOCK_LIMIT_WAITERS;
    if (!p && lt_over_data_limit(t, rq->keylen))
        return LOCK_LIMIT_MEMORY;
    if (rq->session_lock && rq->session &&
        sess_reserve(&t->sessions, rq->session) != 0)
        return LOCK_NO_MEMORY;
    struct pool_waiter *w = lt_apart_alloc(t, sizeof(*w), 1,
                                           offsetof(struct pool_waiter, ref));
    if (!w)
        return LOCK_NO_MEMORY;
    if (!p && !(p = lp_create(t, rq->key, rq->keylen, hash, max))) {
        lt_apart_free(t, w, w->ref);
        return LOCK_NO_MEMORY;
    }
    heap_node_init(&w->due);
    if (heap_push(&t->pool_waits, &w->due, w->ref,
                  lt_deadline_after(now, rq->wait_us)) != 0) {
        lt_apart_free(t, w, w->ref);
        lp_trim(t, p);
        return LOCK_NO_MEMORY;
    }
    w->pool = p;
    w->ttl_us = rq->ttl_us;
    w->session_lock = rq->session_lock;
    w->ctx = rq->ctx;
    w->slink.kind = SESS_KIND_POOL;
    w->prev = p->wait_tail;
    if (p->wait_tail)
        p->wait_tail->next = w;
    else
        p->wait_head = w;
    p->wait_tail = w;
    p->nwaiters++;
    t->stats.pool_waiters++;
    if (rq->session)
        sess_add_wait(rq->session, &w->slink);
    if (lt_recovering_at(t, now) && !p->retry_at)
        p->retry_at = t->recovery_until; /* served when recovery ends */
    pool_rearm(t, p);
    return LOCK_QUEUED;
}

enum lock_result locktable_pool_acquire(struct locktable *t,
                                        const struct lock_request *rq,
                                        uint32_t max, uint64_t *token)
{
    uint64_t now = lt_now_us(t);
    *token = 0;
    if (max == 0 || max > LOCK_POOL_MAX_SIZE)
        return LOCK_POOL_SIZE;
    if (lt_lookup(t, rq->key, rq->keylen, now, NULL))
        return LOCK_WRONGTYPE;
    int session_lock = rq->session_lock && rq->session;
    uint32_t hash;
    struct lock_pool *p = lp_get(t, rq->key, rq->keylen, now, &hash);
    if (p && p->max != max) {
        *token = p->max;
        return LOCK_POOL_SIZE;
    }
    /* Free slots with waiters only happen while a handoff waits for its
     * retry: the newcomer queues behind them. */
    if (!lt_recovering_at(t, now) &&
        (!p || (p->used < p->max && !p->wait_head))) {
        if (t->limits.max_locks &&
            t->entries + t->pool_slots >= t->limits.max_locks)
            return LOCK_LIMIT_LOCKS;
        if (!p && lt_over_data_limit(t, rq->keylen))
            return LOCK_LIMIT_MEMORY;
        if (session_lock && sess_reserve(&t->sessions, rq->session) != 0)
            return LOCK_NO_MEMORY;
        if (!p && !(p = lp_create(t, rq->key, rq->keylen, hash, max)))
            return LOCK_NO_MEMORY;
        enum lock_result r = slot_grant(t, p, now, rq->ttl_us, rq->session,
                                        session_lock, token);
        lp_trim(t, p);
        return r;
    }
    if (!rq->wait) {
        t->stats.rejected++;
        return LOCK_BUSY;
    }
    return pool_enqueue(t, p, rq, max, hash, now);
}

int64_t locktable_pool_release(struct locktable *t, const char *key,
                               size_t keylen, uint64_t token)
{
    uint64_t now = lt_now_us(t);
    struct lock_pool *p;
    if (pool_of(t, key, keylen, now, &p) != 0)
        return -1;
    if (!p)
        return 0;
    int64_t freed = lp_end_slots(t, p, token, 1);
    t->stats.released += (uint64_t)freed;
    if (freed)
        pool_serve(t, p, now, now);
    lp_trim(t, p);
    return freed;
}

int64_t locktable_pool_size(struct locktable *t, const char *key,
                            size_t keylen, uint32_t *max)
{
    struct lock_pool *p;
    *max = 0;
    if (pool_of(t, key, keylen, lt_now_us(t), &p) != 0)
        return -1;
    if (!p)
        return 0;
    *max = p->max;
    return p->used;
}

int locktable_pool_extend(struct locktable *t, const char *key,
                          size_t keylen, uint64_t token, uint64_t ttl_us)
{
    uint64_t now = lt_now_us(t);
    struct lock_pool *p;
    if (pool_of(t, key, keylen, now, &p) != 0)
        return -2;
    struct pool_slot *s = p && token ? lp_slot_find(t, token) : NULL;
    /* A SESSION slot of an ended session waits for the drain but is no
     * one's any more: renewing it would tell a renewer its holder is in. */
    if (!s || slot_pool(s) != p || slot_session_ended(s))
        return 0;
    uint64_t deadline = lt_deadline_after(now, ttl_us);
    if (lp_make_durable(t, s, now, deadline, slot_link(s) != NULL) != 0)
        return -1;
    heap_update(&p->slots, &s->due, deadline);
    pool_rearm(t, p);
    return 1;
}

enum lock_kind locktable_key_kind(struct locktable *t, const char *key,
                                  size_t keylen)
{
    struct lock_pool *p;
    if (pool_of(t, key, keylen, lt_now_us(t), &p) != 0)
        return LOCK_KIND_LOCK;
    return p ? LOCK_KIND_POOL : LOCK_KIND_NONE;
}
