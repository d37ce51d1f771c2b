/* daemon/locktable.c - the lock engine (see locktable.h for the contract).
 *
 * Data layout: each key is one struct lock_entry, in a hash map (map.h) and
 * always in the `expiries` heap.  A held lock's heap deadline is its expiry
 * (ENTRY_NEVER for no expiry); an entry that is not held only exists while
 * it has waiters during crash recovery, and then its deadline is the end of
 * recovery, so the same heap pop that expires locks also ends recovery for
 * that key.  Keeping every entry in the heap from birth to death means the
 * only allocations happen when an entry or a waiter is created: grants,
 * releases, extends and expiries never allocate and so never fail.
 *
 * Waiters are a doubly linked FIFO per entry and are always in the `waits`
 * heap (ENTRY_NEVER for WAIT FOREVER), for the same reason.
 *
 * What only some keys need, the SESSION holder's links and the waiter
 * queue, lives in a struct lock_extra that an entry gets the first time it
 * needs one (a SESSION acquire, a queued waiter; both may fail with
 * LOCK_NO_MEMORY before anything changed) and keeps until it is destroyed,
 * so a handoff to a SESSION waiter still never allocates.  The common lock,
 * held by one client with a TTL, is a 72-byte struct plus its key: with
 * the 48 bytes of links inline a million such locks took 161 bytes each.
 */
#include "daemon/locktable.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/alloc.h"
#include "daemon/heap.h"
#include "daemon/map.h"

#define ENTRY_NEVER UINT64_MAX

#define CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

struct lock_extra {
    struct lock_session *session;  /* holder's session for SESSION locks */
    struct lock_entry *s_prev, *s_next; /* in session->locks */
    struct lock_waiter *wait_head, *wait_tail;
    size_t nwaiters;
};

struct lock_entry {
    struct map_node node;
    struct heap_node due;          /* expiry, or end of recovery; see above */
    uint64_t token;                /* holder's token; 0 when not held */
    struct lock_extra *x;          /* NULL until needed (see the top) */
    char key[];                    /* keylen bytes, then a NUL */
};

/* e's extra record, made if it has none; NULL when out of memory. */
static struct lock_extra *entry_extra(struct lock_entry *e)
{
    if (!e->x)
        e->x = cfy_calloc(1, sizeof(*e->x));
    return e->x;
}

/* The first waiter in e's queue, or NULL. */
static struct lock_waiter *first_waiter(const struct lock_entry *e)
{
    return e->x ? e->x->wait_head : NULL;
}

struct lock_waiter {
    struct heap_node due;          /* end of the wait; ENTRY_NEVER = forever */
    struct lock_entry *entry;
    struct lock_waiter *prev, *next;       /* in entry's FIFO */
    struct lock_session *session;
    struct lock_waiter *s_prev, *s_next;   /* in session->waiters */
    uint64_t ttl_us;
    int session_lock;
    void *ctx;
};

struct locktable {
    struct map map;
    struct heap expiries;   /* every entry */
    struct heap waits;      /* every waiter */
    struct lock_clock clock;
    struct lock_events events;
    struct locktable_limits limits;
    uint64_t last_token;
    uint64_t recovery_until; /* monotonic us; 0 = not recovering */
    uint64_t token_ceiling;  /* see locktable_set_token_ceiling; checked
                              * only while raise_ceiling is set */
    uint64_t (*raise_ceiling)(void *arg, uint64_t token);
    void *raise_arg;
    size_t entries;
    struct lock_stats stats;
};

static uint64_t now_us(const struct locktable *t)
{
    return t->clock.mono_us(t->clock.arg);
}

static uint64_t deadline_after(uint64_t now, uint64_t span_us)
{
    if (span_us == 0 || span_us >= ENTRY_NEVER - now)
        return ENTRY_NEVER;
    return now + span_us;
}

static int recovering_at(const struct locktable *t, uint64_t now)
{
    return t->recovery_until != 0 && now < t->recovery_until;
}

/* Tokens: max(last + 1, wall clock in us), so they grow strictly within a
 * run and start above the previous run's tokens after a restart. */
static uint64_t next_token(struct locktable *t)
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

/* ---- sessions: intrusive doubly linked lists ---- */

/* e must have its extra record (see the top). */
static void session_link_lock(struct lock_session *s, struct lock_entry *e)
{
    struct lock_extra *x = e->x;
    x->session = s;
    x->s_prev = NULL;
    x->s_next = s->locks;
    if (s->locks)
        s->locks->x->s_prev = e;
    s->locks = e;
}

static void session_unlink_lock(struct lock_entry *e)
{
    struct lock_extra *x = e->x;
    struct lock_session *s = x ? x->session : NULL;
    if (!s)
        return;
    if (x->s_prev)
        x->s_prev->x->s_next = x->s_next;
    else
        s->locks = x->s_next;
    if (x->s_next)
        x->s_next->x->s_prev = x->s_prev;
    x->session = NULL;
    x->s_prev = x->s_next = NULL;
}

static void session_link_waiter(struct lock_session *s, struct lock_waiter *w)
{
    w->session = s;
    w->s_prev = NULL;
    w->s_next = s->waiters;
    if (s->waiters)
        s->waiters->s_prev = w;
    s->waiters = w;
}

static void session_unlink_waiter(struct lock_waiter *w)
{
    struct lock_session *s = w->session;
    if (!s)
        return;
    if (w->s_prev)
        w->s_prev->s_next = w->s_next;
    else
        s->waiters = w->s_next;
    if (w->s_next)
        w->s_next->s_prev = w->s_prev;
    w->session = NULL;
}

/* ---- entries ---- */

static struct lock_entry *entry_create(struct locktable *t, const char *key,
                                       size_t keylen, uint64_t hash)
{
    struct lock_entry *e = cfy_malloc(sizeof(*e) + keylen + 1);
    if (!e)
        return NULL;
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, keylen);
    e->key[keylen] = '\0';
    e->node.key = e->key;
    e->node.keylen = keylen;
    e->node.hash = hash;
    heap_node_init(&e->due);
    e->due.deadline = ENTRY_NEVER;
    if (heap_push(&t->expiries, &e->due) != 0) {
        cfy_free(e);
        return NULL;
    }
    map_insert(&t->map, &e->node);
    t->entries++;
    return e;
}

static void entry_destroy(struct locktable *t, struct lock_entry *e)
{
    heap_remove(&t->expiries, &e->due);
    map_remove(&t->map, &e->node);
    t->entries--;
    cfy_free(e->x);
    cfy_free(e);
}

static void waiter_unlink(struct locktable *t, struct lock_waiter *w)
{
    struct lock_extra *x = w->entry->x; /* a waiter's entry has one */
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
    session_unlink_waiter(w);
}

/* Makes e held by a new token; e's heap node already exists. */
static uint64_t grant(struct locktable *t, struct lock_entry *e, uint64_t now,
                      uint64_t ttl_us, struct lock_session *session,
                      int session_lock)
{
    e->token = next_token(t);
    if (session_lock && session)
        session_link_lock(session, e);
    heap_update(&t->expiries, &e->due, deadline_after(now, ttl_us));
    t->stats.acquired++;
    t->stats.held++;
    return e->token;
}

static void end_hold(struct locktable *t, struct lock_entry *e)
{
    session_unlink_lock(e);
    e->token = 0;
    t->stats.held--;
}

/* After e's hold ended (or recovery ended for it) at freed_at: hand it to the
 * first waiter, keep it waiting for recovery, or free it.  May free e. */
static void pass_on(struct locktable *t, struct lock_entry *e, uint64_t now,
                    uint64_t freed_at)
{
    struct lock_waiter *w;
    /* A wait that ended before the lock came free is a timeout even when
     * run_timers has not reached it yet (lazy expiry, a late timer, a
     * release just before the timer): run_timers would have ended it first,
     * and granting it would also jump it ahead of the waiters behind it. */
    while ((w = first_waiter(e)) != NULL && w->due.deadline < freed_at) {
        void *ctx = w->ctx;
        waiter_unlink(t, w);
        cfy_free(w);
        t->stats.timeouts++;
        if (t->events.timed_out)
            t->events.timed_out(ctx, t->events.arg);
    }
    if (!w) {
        entry_destroy(t, e);
        return;
    }
    if (recovering_at(t, now)) {
        heap_update(&t->expiries, &e->due, t->recovery_until);
        return;
    }
    struct lock_session *session = w->session; /* waiter_unlink clears it */
    waiter_unlink(t, w);
    uint64_t token = grant(t, e, now, w->ttl_us, session, w->session_lock);
    t->stats.handoffs++;
    void *ctx = w->ctx;
    cfy_free(w);
    if (t->events.granted)
        t->events.granted(ctx, token, t->events.arg);
}

/* e's heap deadline has passed: its lock expired, or recovery ended. */
static void entry_due(struct locktable *t, struct lock_entry *e, uint64_t now)
{
    uint64_t freed_at = e->due.deadline;
    if (e->token) {
        end_hold(t, e);
        t->stats.expired++;
    }
    heap_update(&t->expiries, &e->due, ENTRY_NEVER);
    pass_on(t, e, now, freed_at);
}

/* Finds key, first settling a passed deadline (lazy expiry), so callers
 * never see an expired holder.  NULL when the key has no entry. */
static struct lock_entry *lookup(struct locktable *t, const char *key,
                                 size_t keylen, uint64_t now, uint64_t *hash)
{
    uint64_t h = map_hash(&t->map, key, keylen);
    if (hash)
        *hash = h;
    struct map_node *n = map_find(&t->map, key, keylen, h);
    if (!n)
        return NULL;
    struct lock_entry *e = CONTAINER_OF(n, struct lock_entry, node);
    if (e->due.deadline <= now) {
        entry_due(t, e, now);
        n = map_find(&t->map, key, keylen, h); /* entry_due may free it */
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
    if (map_init(&t->map, seed) != 0) {
        cfy_free(t);
        return NULL;
    }
    heap_init(&t->expiries);
    heap_init(&t->waits);
    t->clock = *clock;
    if (events)
        t->events = *events;
    if (limits)
        t->limits = *limits;
    return t;
}

void locktable_free(struct locktable *t)
{
    if (!t)
        return;
    struct heap_node *n;
    while ((n = heap_pop(&t->waits)) != NULL)
        cfy_free(CONTAINER_OF(n, struct lock_waiter, due));
    while ((n = heap_pop(&t->expiries)) != NULL) {
        struct lock_entry *e = CONTAINER_OF(n, struct lock_entry, due);
        map_remove(&t->map, &e->node);
        cfy_free(e->x);
        cfy_free(e);
    }
    heap_free(&t->waits);
    heap_free(&t->expiries);
    map_free(&t->map);
    cfy_free(t);
}

static enum lock_result enqueue(struct locktable *t, struct lock_entry *e,
                                const struct lock_request *rq, uint64_t now)
{
    if (t->limits.max_waiters && e->x &&
        e->x->nwaiters >= t->limits.max_waiters)
        return LOCK_LIMIT_WAITERS;
    struct lock_extra *x = entry_extra(e);
    if (!x)
        return LOCK_NO_MEMORY;
    struct lock_waiter *w = cfy_calloc(1, sizeof(*w));
    if (!w)
        return LOCK_NO_MEMORY;
    heap_node_init(&w->due);
    w->due.deadline = deadline_after(now, rq->wait_us);
    if (heap_push(&t->waits, &w->due) != 0) {
        cfy_free(w);
        return LOCK_NO_MEMORY;
    }
    w->entry = e;
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
        session_link_waiter(rq->session, w);
    return LOCK_QUEUED;
}

enum lock_result locktable_acquire(struct locktable *t,
                                   const struct lock_request *rq,
                                   uint64_t *token)
{
    uint64_t now = now_us(t), hash;
    struct lock_entry *e = lookup(t, rq->key, rq->keylen, now, &hash);
    int recovering = recovering_at(t, now);

    /* An entry that is not held only exists during recovery (its deadline
     * is the end of recovery, which lookup() settles), so outside recovery
     * `e` is either NULL or held. */
    if (!e && !recovering) {
        if (t->limits.max_locks && t->entries >= t->limits.max_locks)
            return LOCK_LIMIT_LOCKS;
        e = entry_create(t, rq->key, rq->keylen, hash);
        if (!e)
            return LOCK_NO_MEMORY;
        if (rq->session_lock && rq->session && !entry_extra(e)) {
            entry_destroy(t, e);
            return LOCK_NO_MEMORY;
        }
        *token = grant(t, e, now, rq->ttl_us, rq->session, rq->session_lock);
        return LOCK_GRANTED;
    }
    if (!rq->wait) {
        t->stats.rejected++;
        return LOCK_BUSY;
    }
    int created = 0;
    if (!e) { /* recovering: an unheld entry carries the queue */
        if (t->limits.max_locks && t->entries >= t->limits.max_locks)
            return LOCK_LIMIT_LOCKS;
        e = entry_create(t, rq->key, rq->keylen, hash);
        if (!e)
            return LOCK_NO_MEMORY;
        heap_update(&t->expiries, &e->due, t->recovery_until);
        created = 1;
    }
    enum lock_result r = enqueue(t, e, rq, now);
    if (r != LOCK_QUEUED && created)
        entry_destroy(t, e);
    return r;
}

int locktable_release(struct locktable *t, const char *key, size_t keylen,
                      uint64_t token)
{
    uint64_t now = now_us(t);
    struct lock_entry *e = lookup(t, key, keylen, now, NULL);
    if (!e || !e->token || (token && e->token != token))
        return 0;
    end_hold(t, e);
    t->stats.released++;
    heap_update(&t->expiries, &e->due, ENTRY_NEVER);
    pass_on(t, e, now, now);
    return 1;
}

int locktable_is_locked(struct locktable *t, const char *key, size_t keylen)
{
    struct lock_entry *e = lookup(t, key, keylen, now_us(t), NULL);
    return e && e->token;
}

int locktable_extend(struct locktable *t, const char *key, size_t keylen,
                     uint64_t token, uint64_t ttl_us)
{
    uint64_t now = now_us(t);
    struct lock_entry *e = lookup(t, key, keylen, now, NULL);
    if (!e || !e->token || e->token != token)
        return 0;
    heap_update(&t->expiries, &e->due, deadline_after(now, ttl_us));
    return 1;
}

int64_t locktable_pttl_us(struct locktable *t, const char *key, size_t keylen)
{
    uint64_t now = now_us(t);
    struct lock_entry *e = lookup(t, key, keylen, now, NULL);
    if (!e || !e->token)
        return -2;
    if (e->due.deadline == ENTRY_NEVER)
        return -1;
    uint64_t left = e->due.deadline - now; /* > 0: lookup settled due ones */
    return left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
}

uint64_t locktable_holder_token(struct locktable *t, const char *key,
                                size_t keylen)
{
    struct lock_entry *e = lookup(t, key, keylen, now_us(t), NULL);
    return e ? e->token : 0;
}

void locktable_session_cancel_waits(struct locktable *t,
                                    struct lock_session *session)
{
    struct lock_waiter *w;
    while ((w = session->waiters) != NULL) {
        struct lock_entry *e = w->entry;
        waiter_unlink(t, w);
        cfy_free(w);
        if (!e->token && !first_waiter(e))
            entry_destroy(t, e);
    }
}

void locktable_session_end(struct locktable *t, struct lock_session *session)
{
    uint64_t now = now_us(t);
    locktable_session_cancel_waits(t, session);
    struct lock_entry *e;
    while ((e = session->locks) != NULL) {
        if (e->due.deadline <= now) { /* ran out already: an expiry */
            entry_due(t, e, now);     /* unlinks e from session->locks */
            continue;
        }
        end_hold(t, e); /* unlinks e from session->locks */
        t->stats.released++;
        heap_update(&t->expiries, &e->due, ENTRY_NEVER);
        pass_on(t, e, now, now);
    }
}

uint64_t locktable_next_deadline(const struct locktable *t)
{
    const struct heap_node *a = heap_peek(&t->expiries);
    const struct heap_node *b = heap_peek(&t->waits);
    uint64_t da = a ? a->deadline : ENTRY_NEVER;
    uint64_t db = b ? b->deadline : ENTRY_NEVER;
    return da < db ? da : db;
}

size_t locktable_run_timers(struct locktable *t, size_t max_events)
{
    uint64_t now = now_us(t);
    size_t done = 0;
    while (done < max_events) {
        struct heap_node *a = heap_peek(&t->expiries);
        struct heap_node *b = heap_peek(&t->waits);
        int a_due = a && a->deadline <= now;
        int b_due = b && b->deadline <= now;
        if (!a_due && !b_due)
            break;
        /* On a tie the lock expiry goes first: a waiter whose wait ends at
         * the very moment the lock frees up is granted, not timed out. */
        if (a_due && (!b_due || a->deadline <= b->deadline)) {
            entry_due(t, CONTAINER_OF(a, struct lock_entry, due), now);
        } else {
            struct lock_waiter *w = CONTAINER_OF(b, struct lock_waiter, due);
            struct lock_entry *e = w->entry;
            void *ctx = w->ctx;
            waiter_unlink(t, w);
            cfy_free(w);
            t->stats.timeouts++;
            if (!e->token && !first_waiter(e))
                entry_destroy(t, e);
            if (t->events.timed_out)
                t->events.timed_out(ctx, t->events.arg);
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
    return recovering_at(t, now_us(t));
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

int locktable_restore(struct locktable *t, const char *key, size_t keylen,
                      uint64_t token, uint64_t ttl_us)
{
    uint64_t now = now_us(t), hash;
    if (token == 0 || lookup(t, key, keylen, now, &hash) != NULL)
        return -1;
    struct lock_entry *e = entry_create(t, key, keylen, hash);
    if (!e)
        return -1;
    e->token = token;
    heap_update(&t->expiries, &e->due, deadline_after(now, ttl_us));
    locktable_raise_last_token(t, token);
    t->stats.held++;
    return 0;
}

int locktable_foreach_held(struct locktable *t,
                           int (*fn)(const char *key, size_t keylen,
                                     uint64_t token, uint64_t ttl_left_us,
                                     void *arg),
                           void *arg)
{
    uint64_t now = now_us(t);
    struct map_iter it;
    struct map_node *n;
    int rc = 0;
    map_iter_init(&t->map, &it);
    while (rc == 0 && (n = map_iter_next(&it)) != NULL) {
        struct lock_entry *e = CONTAINER_OF(n, struct lock_entry, node);
        if (!e->token || e->due.deadline <= now)
            continue; /* expired already, just not collected yet */
        uint64_t left = e->due.deadline == ENTRY_NEVER ? 0
                                                       : e->due.deadline - now;
        rc = fn(e->key, n->keylen, e->token, left, arg);
    }
    map_iter_done(&it);
    return rc;
}

void locktable_stats(const struct locktable *t, struct lock_stats *out)
{
    *out = t->stats;
}
