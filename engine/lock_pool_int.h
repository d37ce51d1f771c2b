/* engine/lock_pool_int.h - the pools' insides, shared by their two files:
 * lock_pool.c (pools, slots, waiters, expiry) and lock_pool_journal.c
 * (crash safety of slots, restore, forget and the walks).
 *
 * Owns: the pool, slot and waiter layouts and the helpers both files use.
 * Not a public header: only those two files include it, and nothing else
 * in the engine needs the layouts (locktable.c reaches pools through the
 * lt_pool_* calls of locktable_int.h).
 */
#ifndef CACHIFY_ENGINE_LOCK_POOL_INT_H
#define CACHIFY_ENGINE_LOCK_POOL_INT_H

#include "engine/lock_pool.h"
#include "engine/locktable_int.h"

/* A pool: a key that admits up to `max` holders.  It lives while a slot is
 * held or a request waits, like a lock entry. */
struct pool_waiter;
struct lock_pool {
    struct map_node node;          /* in t->pools; the key is `key` below */
    uint32_t ref;                  /* its slab reference (slab_enter) */
    uint32_t max;                  /* max_size, fixed while the pool lives */
    uint32_t used;                 /* slots held now */
    struct heap slots;             /* held slots by expiry (ENTRY_NEVER);
                                    * also the list of them (walks, a
                                    * forced release) */
    struct pool_waiter *wait_head, *wait_tail;
    size_t nwaiters;
    uint64_t retry_at;             /* recovery end or a failed handoff's
                                    * retry (monotonic us); 0 = none */
    struct heap_node due;          /* in t->pool_due: the earlier of the
                                    * first slot expiry and retry_at */
    uint8_t overfull;              /* restored with more slots than max (a
                                    * journal that lost a free record):
                                    * nothing is granted until used < max */
    char key[];
};

/* One held slot: found by its token (t->slots), listed and timed in its
 * pool's heap.  40 bytes, a 48-byte malloc chunk (see docs/protocol.md,
 * pools, "Costs"): no list links (the pool's heap lists its slots) and no
 * session link unless its holder is a SESSION (struct pool_slot_sess).
 * Ordered so that nothing is padded: the 12-byte map node and `due` put
 * the token on an 8-byte boundary. */
struct pool_slot {
    struct map_node node;          /* in t->slots, keyed by `token` */
    struct heap_node due;          /* in its pool's slots */
    uint64_t token;
    uintptr_t pool_bits;           /* its struct lock_pool *, with
                                    * SLOT_SESSION or'ed in: use slot_pool
                                    * and slot_link */
    struct heap_node dur;          /* in t->slot_durables while its lease
                                    * is written one by one */
    uint32_t ref;                  /* its slab reference (slab_enter) */
};

_Static_assert(sizeof(struct pool_slot) == 40,
               "a slot is 40 bytes: a 48-byte malloc chunk");

/* pool_bits: the slot is a struct pool_slot_sess.  Pools come from malloc,
 * aligned to at least 8, so the pointer's low bit is free. */
#define SLOT_SESSION ((uintptr_t)1)

/* A SESSION holder's slot: the slot and its link in the session's record,
 * one allocation. */
struct pool_slot_sess {
    struct pool_slot s;
    struct sess_link link;         /* kind SESS_KIND_POOL */
};

_Static_assert(offsetof(struct lock_pool, node) == 0 &&
                   offsetof(struct pool_slot, node) == 0 &&
                   offsetof(struct pool_slot_sess, s) == 0,
               "a map node starts what its reference names (map.h)");

static inline struct lock_pool *slot_pool(const struct pool_slot *s)
{
    return (struct lock_pool *)(s->pool_bits & ~SLOT_SESSION);
}

/* s's link in its SESSION holder's record, or NULL when s has none. */
static inline struct sess_link *slot_link(struct pool_slot *s)
{
    return (s->pool_bits & SLOT_SESSION)
               ? &CONTAINER_OF(s, struct pool_slot_sess, s)->link
               : NULL;
}

/* 1 when s's SESSION holder has ended: s waits for the drain, but is no
 * one's any more. */
static inline int slot_session_ended(struct pool_slot *s)
{
    struct sess_link *l = slot_link(s);
    return l && l->rec && l->rec->ended;
}

/* The i-th slot of p's heap (any order), or NULL past the last. */
static inline struct pool_slot *slot_at(const struct lock_pool *p, size_t i)
{
    struct heap_node *n = heap_node_at(&p->slots, i);
    return n ? CONTAINER_OF(n, struct pool_slot, due) : NULL;
}

struct pool_waiter {
    struct heap_node due;          /* in t->pool_waits; ENTRY_NEVER: none */
    uint32_t ref;                  /* its slab reference (slab_enter) */
    struct lock_pool *pool;
    struct pool_waiter *prev, *next;
    struct lock_wait_link slink;   /* kind SESS_KIND_POOL */
    uint64_t ttl_us;
    int session_lock;
    void *ctx;
};

#define POOL_KEY_OFFSET \
    (offsetof(struct lock_pool, key) - offsetof(struct lock_pool, node))
#define SLOT_KEY_OFFSET \
    (offsetof(struct pool_slot, token) - offsetof(struct pool_slot, node))

/* ---- lock_pool.c ---- */

/* key's pool, not settled; NULL when none.  *hash (if not NULL) gets the
 * key's hash in t->pools. */
struct lock_pool *lp_find(struct locktable *t, const char *key,
                          size_t keylen, uint32_t *hash);

/* key's pool with its due work done, or NULL. */
struct lock_pool *lp_get(struct locktable *t, const char *key, size_t keylen,
                         uint64_t now, uint32_t *hash);

/* A new, empty pool of max slots; NULL when out of memory. */
struct lock_pool *lp_create(struct locktable *t, const char *key,
                            size_t keylen, uint32_t hash, uint32_t max);

/* Frees p when no slot is held and nobody waits, else rearms it.  Returns
 * p, or NULL when it went. */
struct lock_pool *lp_trim(struct locktable *t, struct lock_pool *p);

/* The slot token holds, or NULL. */
struct pool_slot *lp_slot_find(struct locktable *t, uint64_t token);

/* A new slot of p held by token until deadline, linked everywhere but its
 * session (session: it gets a link for one, slot_link) and the journal's
 * heap.  NULL when out of memory (nothing changed). */
struct pool_slot *lp_slot_new(struct locktable *t, struct lock_pool *p,
                              uint64_t token, uint64_t deadline, int session);

/* Unlinks slot s from everything (t->slot_durables too, silently) and
 * frees it; counts nothing but the gauges. */
void lp_slot_free(struct locktable *t, struct pool_slot *s);

/* Ends p's slot held by token (0: every slot of p; O(slots held)) and
 * frees it; journal: writes a written lease's end (lp_slot_ended), as a
 * release does; 0 for a replay's forget.  Counts nothing but the gauges,
 * serves no waiter and does not trim p.  Returns how many went. */
int64_t lp_end_slots(struct locktable *t, struct lock_pool *p,
                     uint64_t token, int journal);

/* ---- lock_pool_journal.c ---- */

/* Before slot s (session: a SESSION holder's) gets `deadline`: makes that
 * lease durable, by the horizon for a lease of at most long_lease_us (and
 * for every SESSION one), else by a record of its own (slot_hold), after
 * which s is durable until it ends, every extend written too.  0, or -1
 * when the journal failed or memory ran out (s is as it was). */
int lp_make_durable(struct locktable *t, struct pool_slot *s, uint64_t now,
                    uint64_t deadline, int session);

/* s's hold is ending: a written lease gets its end written (journal's
 * freed) and leaves t->slot_durables. */
void lp_slot_ended(struct locktable *t, struct pool_slot *s);

#endif
