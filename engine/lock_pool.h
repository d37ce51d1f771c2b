/* engine/lock_pool.h - pools: keys that admit up to N holders at once
 * (counting semaphores), on the same table, clock, tokens, sessions and
 * events as the locks of locktable.h.
 *
 * Owns: the pool calls.  A pool is made by its first slot request, fixes
 * its max_size while it lives, and goes when its last slot is freed and no
 * request waits (as a lock entry does); a later request may then give it
 * another size.  Each slot is granted a token from the locks' strictly
 * increasing sequence and has its own expiry; waiters are served first
 * come, first served as slots free up (release, expiry, session end).
 *
 * One keyspace with the locks: a pool call on a key that is a lock (held,
 * or waited on) answers LOCK_WRONGTYPE / -1, and locktable_acquire and
 * locktable_set on a pool key answer LOCK_WRONGTYPE.
 *
 * Costs: acquire, release by token, size, extend are O(1) plus O(log N)
 * heap work, plus the expiry of the pool's slots that came due since its
 * last access (each slot's expiry is paid once); a forced release of a
 * whole pool is O(slots held), the only step proportional to N.  The
 * timer (locktable_run_timers) expires due slots one per unit of its
 * budget, so slots running out together are freed in slices.  A held
 * slot costs about 1.1 times a lock's memory, a pool key a few hundred
 * bytes more (docs/protocol.md, pools, "Costs").
 *
 * Crash safety (a journal set, struct lock_journal): a slot is made durable
 * as a lock of the same TTL is, by the horizon up to long_lease_us, else
 * by a record of its own (locktable_set_slot_journal), so a crash gives a
 * long slot back with its token and a pool never admits N+1 across it.
 * A SESSION slot of an ended session counts as held until the table's
 * drain (locktable_run_timers, at once on the next timer turn) reaches it.
 */
#ifndef CACHIFY_ENGINE_LOCK_POOL_H
#define CACHIFY_ENGINE_LOCK_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/locktable.h"

/* The largest max_size a pool may have. */
#define LOCK_POOL_MAX_SIZE 1000000u

/* What a key is now. */
enum lock_kind {
    LOCK_KIND_NONE,    /* nothing: free */
    LOCK_KIND_LOCK,    /* a lock (held, or waited on while recovering) */
    LOCK_KIND_POOL,    /* a pool */
};

/* Takes a slot of pool rq->key, whose max_size is max (1 ..
 * LOCK_POOL_MAX_SIZE), with rq's ttl, wait and session (rq->value is
 * ignored).  LOCK_GRANTED with *token; LOCK_BUSY when every slot is held
 * (or recovering) and rq did not wait; LOCK_QUEUED; LOCK_WRONGTYPE when
 * key is a lock; LOCK_POOL_SIZE when the pool lives with another size
 * (*token then holds that size); LOCK_LIMIT_*, LOCK_NO_MEMORY,
 * LOCK_NOT_DURABLE (the journal could not record the slot) refuse with
 * nothing changed. */
enum lock_result locktable_pool_acquire(struct locktable *t,
                                        const struct lock_request *rq,
                                        uint32_t max, uint64_t *token);

/* Releases key's slot held by token: 1, or 0 when no slot of key has it.
 * token 0 releases every slot of key (a forced release) and returns how
 * many.  -1 when key is a lock.  Freed slots go to waiters at once. */
int64_t locktable_pool_release(struct locktable *t, const char *key,
                               size_t keylen, uint64_t token);

/* Slots of key held now (py-cachify's size()), with *max its max_size (0
 * when key is no pool); -1 when key is a lock. */
int64_t locktable_pool_size(struct locktable *t, const char *key,
                            size_t keylen, uint32_t *max);

/* When token holds a slot of key, its expiry becomes ttl_us from now
 * (0 = never): 1; 0 when not (a SESSION slot whose session ended holds
 * nothing); -1 when the journal could not record it (the old expiry
 * stands); -2 when key is a lock. */
int locktable_pool_extend(struct locktable *t, const char *key,
                          size_t keylen, uint64_t token, uint64_t ttl_us);

/* What key is now (expired holders settled first). */
enum lock_kind locktable_key_kind(struct locktable *t, const char *key,
                                  size_t keylen);

/* A held slot as locktable_foreach_slot shows it; key valid during the
 * call only. */
struct pool_slot_view {
    const char *key;
    size_t keylen;
    uint32_t max;
    uint64_t token;
    uint64_t ttl_left_us;        /* 0 = no expiry */
};

typedef int (*pool_visit_fn)(const struct pool_slot_view *v, void *arg);

/* Calls fn once per held slot of every pool (SESSION slots of ended
 * sessions skipped).  fn must not change the table.  0, or fn's first
 * non-zero value. */
int locktable_foreach_slot(struct locktable *t, pool_visit_fn fn, void *arg);

/* Puts back a slot saved at a clean stop or replayed from a journal:
 * key's pool (max_size max) holds token for ttl_us more (0 = none).
 * Limits are not applied, and neither is max_size: a pool restored with
 * more slots than max (a journal that lost a free record cannot say which
 * slot ended) admits nobody until fewer than max are held.  With a journal
 * set, a slot longer than long_lease_us (or without expiry) is durable:
 * the caller writes it into the new journal (locktable_foreach_durable_slot).
 * 0, or -1 when out of memory, key is a lock, the pool lives with another
 * size, or the token is in use. */
int locktable_pool_restore(struct locktable *t, const char *key,
                           size_t keylen, uint32_t max, uint64_t token,
                           uint64_t ttl_us);

/* Removes key's slot held by token (0: every slot of key) without counting
 * it, writing its end or serving waiters: for replaying a journal at
 * start, before any client.  Returns how many slots went. */
int64_t locktable_pool_forget(struct locktable *t, const char *key,
                              size_t keylen, uint64_t token);

/* Writes a slot's lease one by one (see struct lock_journal: a slot longer
 * than long_lease_us, or without expiry): key's pool of max_size max is
 * held by token until deadline (monotonic us; UINT64_MAX = no expiry).
 * Returns 0 once recorded (durable by the end of the callback, as hold),
 * or -1: the slot is then not granted or extended.  Its end goes through
 * the journal's freed hook, as a lock's.  arg is the journal's. */
typedef int (*pool_hold_fn)(void *arg, const char *key, size_t keylen,
                            uint32_t max, uint64_t token, uint64_t deadline);

/* Sets the slot hook of the journal locktable_set_journal set (NULL: none,
 * and then a long slot is refused, LOCK_NOT_DURABLE).  Call both before
 * restoring. */
void locktable_set_slot_journal(struct locktable *t, pool_hold_fn hold);

/* As locktable_foreach_slot, for the durable slots only: what a new
 * journal must start with, beside locktable_foreach_durable.  Visits those
 * alone, however many other slots are held. */
int locktable_foreach_durable_slot(struct locktable *t, pool_visit_fn fn,
                                   void *arg);

/* Checks every pool's books, for tests and fuzzing: at most max_size slots
 * held, the slot list, the expiry heap and the counters agree, waiters only
 * beside a full pool or a pending retry.  O(slots + waiters).  0, or -1
 * with *why naming the first broken rule. */
int locktable_pool_audit(struct locktable *t, const char **why);

#endif
