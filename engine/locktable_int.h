/* engine/locktable_int.h - the lock engine's insides, shared by its two
 * files: locktable.c (keys, holders, waiters, sessions, expiry) and
 * lock_journal.c (durability hooks, restore and snapshots).
 *
 * Owns: the entry, links-record, waiter and table layouts (explained at the
 * top of locktable.c) and the helpers both files use.  Not a public header:
 * nothing outside the engine includes it; everything here may change.
 */
#ifndef CACHIFY_ENGINE_LOCKTABLE_INT_H
#define CACHIFY_ENGINE_LOCKTABLE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "alloc.h"
#include "engine/heap.h"
#include "engine/lock_session.h"
#include "engine/locktable.h"
#include "engine/map.h"
#include "engine/slab.h"

#define ENTRY_NEVER UINT64_MAX

#define CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* lock_entry.flags */
#define ENTRY_HAS_LINKS 0x01u /* a struct lock_links in t->links is its */
#define ENTRY_SESSION 0x02u   /* held as a SESSION lock (its links record
                               * is linked into a session record), so
                               * lookups check whether that session ended */
#define ENTRY_DURABLE 0x04u   /* its lease was written with journal.hold */
#define ENTRY_IN_DURABLES 0x08u /* its `due` is in t->durables, not in
                                 * t->expiries (see lt_due_heap) */
#define ENTRY_HAS_VALUE 0x10u /* its holder stored a value (SET): a struct
                               * lock_value in t->values is its */

struct lock_links {
    struct map_node node;          /* in t->links, keyed by `entry` */
    uint32_t ref;                  /* its slab reference (slab_enter) */
    struct lock_entry *entry;      /* the key: these pointer bytes */
    struct sess_link link;         /* in the SESSION holder's record */
    struct lock_waiter *wait_head, *wait_tail;
    size_t nwaiters;
};

/* The fields are ordered so that none needs padding: the 12-byte map node
 * and the 4-byte heap index put the token on an 8-byte boundary.  An
 * entry is named by its slab slot's reference (slab_ref_of). */
struct lock_entry {
    struct map_node node;          /* in t->map; the key is `key` below */
    struct heap_node due;          /* in t->expiries; see the top */
    uint64_t token;                /* holder's token; 0 when not held */
    uint8_t flags;                 /* ENTRY_HAS_LINKS */
    char key[];                    /* node.keylen bytes, no terminator */
};

_Static_assert(offsetof(struct lock_entry, node) == 0 &&
                   offsetof(struct lock_entry, key) ==
                       sizeof(struct map_node) + sizeof(uint64_t) +
                           sizeof(struct heap_node) + 1,
               "the node first (map.h), and no padding before the key");

/* Where the maps find the key bytes, counted from the node. */
#define ENTRY_KEY_OFFSET \
    (offsetof(struct lock_entry, key) - offsetof(struct lock_entry, node))
#define LINKS_KEY_OFFSET \
    (offsetof(struct lock_links, entry) - offsetof(struct lock_links, node))

/* A holder's value (Redis SET), outside the entry for the same reason as
 * the links record: a lock without one pays nothing.  One allocation, the
 * bytes inline; it lives exactly as long as the hold that stored it. */
struct lock_value {
    struct map_node node;          /* in t->values, keyed by `entry` */
    uint32_t ref;                  /* its slab reference (slab_enter) */
    struct lock_entry *entry;      /* the key: these pointer bytes */
    uint32_t len;                  /* bytes[] length */
    char bytes[];
};

#define VALUE_KEY_OFFSET \
    (offsetof(struct lock_value, entry) - offsetof(struct lock_value, node))

_Static_assert(offsetof(struct lock_links, node) == 0 &&
                   offsetof(struct lock_value, node) == 0,
               "a map node starts what its reference names (map.h)");

struct lock_waiter {
    struct heap_node due;          /* end of the wait; ENTRY_NEVER = forever */
    uint32_t ref;                  /* its slab reference (slab_enter) */
    struct lock_links *x;          /* the waited-on entry's links (x->entry) */
    struct lock_waiter *prev, *next;       /* in the entry's FIFO */
    struct lock_wait_link slink;           /* in its session's waiters */
    uint64_t ttl_us;
    int session_lock;
    void *ctx;
};

struct locktable {
    struct map pools;       /* every pool, by key (lock_pool.c) */
    struct map slots;       /* every held pool slot, by token */
    struct heap pool_due;   /* every pool, by its next deadline */
    struct heap pool_waits; /* every pool waiter, by the end of its wait */
    uint64_t pool_slots;    /* slots held, counted against max_locks */
    struct heap slot_durables; /* the slots whose lease was journaled one
                                * by one (lock_pool.c), for a rewrite */
    /* Journals a long slot (lock_pool.h, pool_hold_fn); NULL: never. */
    int (*slot_hold)(void *arg, const char *key, size_t keylen, uint32_t max,
                     uint64_t token, uint64_t deadline);
    struct map map;         /* every entry, by key */
    struct map links;       /* every links record, by its entry's address */
    struct map values;      /* every stored value, by its entry's address */
    struct heap expiries;   /* every entry but those in `durables` */
    struct heap durables;   /* the entries whose lease was journaled one by
                             * one (ENTRY_IN_DURABLES), so a journal
                             * rewrite visits those alone, at no memory
                             * cost per lock: a heap slot either way */
    struct heap waits;      /* every waiter */
    struct slab slab;       /* the entries' memory, and the references of
                             * every object in a map or heap above */
    struct lock_clock clock;
    struct lock_events events;
    struct locktable_limits limits;
    uint64_t last_token;
    uint64_t recovery_until; /* monotonic us; 0 = not recovering */
    uint64_t token_ceiling;  /* see locktable_set_token_ceiling; checked
                              * only while raise_ceiling is set */
    uint64_t (*raise_ceiling)(void *arg, uint64_t token);
    void *raise_arg;
    struct lock_journal journal; /* all NULL: no crash safety asked for */
    uint64_t horizon;        /* durable lease horizon (monotonic us) */
    size_t entries;
    uint64_t data_bytes;     /* every entry's key bytes plus every value's
                              * bytes: what limits.max_data_bytes bounds */
    struct lock_stats stats;
    struct sess_table sessions; /* session records; ended ones drain here */
};

static inline uint64_t lt_now_us(const struct locktable *t)
{
    return t->clock.mono_us(t->clock.arg);
}

static inline uint64_t lt_deadline_after(uint64_t now, uint64_t span_us)
{
    if (span_us == 0 || span_us >= ENTRY_NEVER - now)
        return ENTRY_NEVER;
    return now + span_us;
}

static inline int lt_recovering_at(const struct locktable *t, uint64_t now)
{
    return t->recovery_until != 0 && now < t->recovery_until;
}

/* The heap e's deadline is in. */
static inline struct heap *lt_due_heap(struct locktable *t,
                                       const struct lock_entry *e)
{
    return (e->flags & ENTRY_IN_DURABLES) ? &t->durables : &t->expiries;
}

/* When e's lock expires (or its recovery ends). */
static inline uint64_t lt_entry_deadline(struct locktable *t,
                                         const struct lock_entry *e)
{
    return heap_deadline(lt_due_heap(t, e), &e->due);
}

/* Sets e's deadline. */
static inline void lt_set_deadline(struct locktable *t, struct lock_entry *e,
                                   uint64_t deadline)
{
    heap_update(lt_due_heap(t, e), &e->due, deadline);
}

/* size bytes from cfy_malloc (zeroed when zero is set), registered in
 * t->slab so the maps and heaps can name them: the reference is stored in
 * the object's uint32_t at ref_offset.  NULL when out of memory (nothing
 * is left allocated). */
static inline void *lt_apart_alloc(struct locktable *t, size_t size,
                                   int zero, size_t ref_offset)
{
    char *p = zero ? cfy_calloc(1, size) : cfy_malloc(size);
    uint32_t ref;
    if (p && (ref = slab_enter(&t->slab, p)) == SLAB_REF_NONE) {
        cfy_free(p);
        return NULL;
    }
    if (p)
        memcpy(p + ref_offset, &ref, sizeof(ref));
    return p;
}

/* Frees p (NULL: no-op), made by lt_apart_alloc with reference ref. */
static inline void lt_apart_free(struct locktable *t, void *p, uint32_t ref)
{
    if (p) {
        slab_leave(&t->slab, ref);
        cfy_free(p);
    }
}

/* ---- locktable.c ---- */

/* e's links record, or NULL when it has none. */
struct lock_links *lt_links_find(struct locktable *t,
                                 const struct lock_entry *e);

/* e's links record, made if it has none; NULL when out of memory. */
struct lock_links *lt_links_get(struct locktable *t, struct lock_entry *e);

/* Frees x, e's links record (NULL: none), once nothing needs it. */
void lt_links_trim(struct locktable *t, struct lock_entry *e,
                   struct lock_links *x);

/* A new, unheld entry for key (in the map and the heap); NULL when out of
 * memory or the key is too long. */
struct lock_entry *lt_entry_create(struct locktable *t, const char *key,
                                   size_t keylen, uint32_t hash);

/* Frees e and x, which must be lt_links_find(t, e). */
void lt_entry_destroy(struct locktable *t, struct lock_entry *e,
                      struct lock_links *x);

/* Finds key after settling a passed deadline; NULL when it has no entry.
 * *hash (if not NULL) gets the key's hash. */
struct lock_entry *lt_lookup(struct locktable *t, const char *key,
                             size_t keylen, uint64_t now, uint32_t *hash);

/* Takes a SESSION lock's links record out of its session. */
void lt_session_unlink_lock(struct lock_links *x);

/* Makes e held by a new token with value v (NULL: none; v is attached to
 * e here and detached again on failure, never freed); see locktable.c. */
uint64_t lt_grant(struct locktable *t, struct lock_entry *e,
                  struct lock_links *x, uint64_t now, uint64_t ttl_us,
                  struct lock_session *session, int session_lock,
                  struct lock_value *v);

/* Ends e's hold (its value goes with it); x is lt_links_find(t, e). */
void lt_end_hold(struct locktable *t, struct lock_entry *e,
                 struct lock_links *x);

/* After e's hold ended at freed_at: the first waiter, or e goes. */
void lt_pass_on(struct locktable *t, struct lock_entry *e,
                struct lock_links *x, uint64_t now, uint64_t freed_at);

/* 1 when `more` bytes of keys or values would pass limits.max_data_bytes. */
static inline int lt_over_data_limit(const struct locktable *t, size_t more)
{
    return t->limits.max_data_bytes &&
           (more > t->limits.max_data_bytes ||
            t->data_bytes > t->limits.max_data_bytes - more);
}

/* The next token (see locktable.c). */
uint64_t lt_next_token(struct locktable *t);

/* ---- lock_pool.c ---- */

/* 1 when key is a pool now. */
int lt_pool_exists(struct locktable *t, const char *key, size_t keylen);

/* Sets up / frees the pool maps and heaps (and every pool, slot and
 * waiter, without callbacks).  lt_pool_init: 0, or -1 out of memory. */
int lt_pool_init(struct locktable *t, const uint8_t seed[16]);
void lt_pool_free(struct locktable *t);

/* The earliest pool deadline (slot expiry, wait end, retry). */
uint64_t lt_pool_next_deadline(const struct locktable *t);

/* Runs one due pool event (a slot expiry, a wait's end, a retry); 1 when
 * it did one, 0 when none is due at now. */
int lt_pool_run_one(struct locktable *t, uint64_t now);

/* Releases the slot of an ended session that l (kind SESS_KIND_POOL)
 * belongs to, as of the session's end. */
void lt_pool_release_ended(struct locktable *t, struct sess_link *l,
                           uint64_t now);

/* Cancels the pool wait l (kind SESS_KIND_POOL) belongs to, silently. */
void lt_pool_cancel_wait(struct locktable *t, struct lock_wait_link *l);

/* 1 when key is a pool with every slot held (what IS_LOCKED shows). */
int lt_pool_full(struct locktable *t, const char *key, size_t keylen);

/* ---- lock_value.c ---- */

/* A detached value holding a copy of bytes; NULL when out of memory or
 * longer than UINT32_MAX. */
struct lock_value *lt_value_new(struct locktable *t, const char *bytes,
                                size_t len);

/* Frees v (NULL: no-op), a detached value. */
void lt_value_free(struct locktable *t, struct lock_value *v);

/* Links v to e (which has none) and counts its bytes. */
void lt_value_attach(struct locktable *t, struct lock_entry *e,
                     struct lock_value *v);

/* e's value, or NULL when it has none. */
struct lock_value *lt_value_find(struct locktable *t,
                                 const struct lock_entry *e);

/* Unlinks e's value and returns it (NULL: none); the caller frees it. */
struct lock_value *lt_value_detach(struct locktable *t, struct lock_entry *e);

/* ---- lock_journal.c ---- */

/* A pool slot's lease until deadline (SESSION or not) is about to be
 * granted or extended and is not written one by one: raises the horizon to
 * cover it.  0, or -1 when the journal failed. */
int lt_cover_slot(struct locktable *t, uint64_t now, uint64_t deadline);

/* Before e (held by e->token) gets `deadline`: makes that lease durable
 * (struct lock_journal).  session_lock: e's holder is a SESSION.  0, or
 * -1 when the journal failed or memory ran out (nothing was promised). */
int lt_make_durable(struct locktable *t, struct lock_entry *e, uint64_t now,
                    uint64_t deadline, int session_lock);

/* e's hold is ending: a written lease gets its end written too. */
void lt_hold_ended(struct locktable *t, struct lock_entry *e);

/* e's lease is no longer on disk (its hold ended): clears ENTRY_DURABLE.
 * Returns 1 when it was durable.  e stays in t->durables until its next
 * grant or its end (moving needs memory, which this path must not). */
int lt_durable_unlink(struct locktable *t, struct lock_entry *e);

#endif
