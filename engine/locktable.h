/* engine/locktable.h - the lock engine: keys, holders, tokens, waiters, expiry.
 *
 * Owns: every lock entry (a key with its holder and its FIFO of waiters), the
 * fencing-token counter, and two deadline heaps (lock expiries and bounded
 * waits).  Does not own: sockets, timers or threads.  It never reads a clock
 * except through the struct lock_clock it was given, and it never sleeps:
 * the caller asks locktable_next_deadline() when to call
 * locktable_run_timers(), which is what lets tests drive it with a fake
 * clock and lets the embedded client wrap it in a mutex.
 *
 * Expiry is exact: a lock is gone at its deadline even if nobody asks (the
 * caller's timer runs locktable_run_timers), and every access also checks
 * the deadline first (lazy expiry), so no answer ever shows an expired lock.
 * Nothing here scans all locks.
 *
 * Waiters are served first come, first served, one at a time, the moment the
 * lock is released or expires, or when its ended session's locks are
 * drained (in slices, from locktable_run_timers).  A grant or a timed-out
 * wait is reported through struct lock_events *synchronously*, from inside
 * the call that caused it; those callbacks must not call back into the
 * engine (defer follow-up work instead).
 */
#ifndef CACHIFY_ENGINE_LOCKTABLE_H
#define CACHIFY_ENGINE_LOCKTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "engine/clock.h"

struct locktable;
struct lock_links;
struct lock_waiter;

/* A connection (or client thread): what SESSION locks and pending waits
 * belong to, so they can be dropped together when it goes away.  Embed one,
 * zero-initialised, in the owner; the engine links its records in (NULL
 * means none; the pointers are opaque otherwise).  The SESSION locks hang
 * off `rec`, a record the engine allocates for the session's first SESSION
 * lock or SESSION wait and keeps until the session ends: then the record
 * (and the locks) leave the owner's struct, which may be freed at once. */
struct lock_session_rec;
struct lock_wait_link;
struct lock_session {
    struct lock_session_rec *rec;   /* SESSION locks held, owned by the engine */
    struct lock_wait_link *waiters; /* waits not yet resolved, linked by the engine */
};

/* Callbacks for waits resolved later.  ctx is the one given to
 * locktable_acquire; the waiter is freed right after the callback.
 * timed_out gets the key waited for (valid during the call only), so the
 * caller need not keep a copy of it for its reply. */
struct lock_events {
    void (*granted)(void *ctx, uint64_t token, void *arg);
    void (*timed_out)(void *ctx, const char *key, size_t keylen, void *arg);
    void *arg;
};

struct locktable_limits {
    size_t max_locks;   /* most entries (held or waited on); 0 = no bound */
    size_t max_waiters; /* longest queue of one key; 0 = no bound */
    uint64_t max_data_bytes; /* key bytes plus value bytes of every entry
                              * (the daemon's maxmemory); 0 = no bound */
};

/* Counters since start, for STATS. */
struct lock_stats {
    uint64_t acquired;  /* grants, immediate or after a wait */
    uint64_t released;  /* RELEASEs (and session ends) that freed a lock */
    uint64_t expired;   /* locks that ran out their TTL */
    uint64_t timeouts;  /* waits that ran out */
    uint64_t rejected;  /* no-wait acquires refused because the key was held */
    uint64_t handoffs;  /* grants made to a waiter */
    uint64_t held;      /* locks held now */
    uint64_t waiters;   /* waits queued now */
    uint64_t values;    /* held locks that carry a value now */
    uint64_t data_bytes;/* key and value bytes stored now */
    uint64_t pools;     /* pool keys now (lock_pool.h) */
    uint64_t pool_slots;/* pool slots held now (not counted in `held`) */
    uint64_t pool_waiters; /* slot requests queued now (not in `waiters`) */
};

enum lock_result {
    LOCK_GRANTED,      /* *token holds the new token */
    LOCK_BUSY,         /* held (or recovering) and the request did not wait */
    LOCK_QUEUED,       /* waiting; the outcome comes through lock_events */
    LOCK_LIMIT_LOCKS,  /* max_locks reached */
    LOCK_LIMIT_WAITERS,/* max_waiters reached for this key */
    LOCK_NO_MEMORY,    /* allocation failed; nothing changed */
    LOCK_NOT_DURABLE,  /* the journal could not record the lease; nothing
                        * changed but a token used up */
    LOCK_LIMIT_MEMORY, /* max_data_bytes reached; nothing changed */
    LOCK_WRONGTYPE,    /* the key is a pool and a lock was asked for, or
                        * the other way round (lock_pool.h) */
    LOCK_POOL_SIZE,    /* the pool exists with another max_size */
};

struct lock_request {
    const char *key;
    size_t keylen;
    uint64_t ttl_us;             /* lifetime once granted; 0 = no expiry */
    int wait;                    /* 0: answer LOCK_BUSY when held */
    uint64_t wait_us;            /* with wait: 0 = no bound, else the bound */
    int session_lock;            /* release when `session` ends */
    struct lock_session *session;/* owner; required for wait or session_lock */
    void *ctx;                   /* handed back through lock_events */
    const char *value;           /* stored with an immediate grant (Redis
                                  * SET NX), copied; NULL = none.  A
                                  * waiter's grant never carries one. */
    size_t vlen;
};

/* A held lock as the walks (locktable_foreach_*) and the journal show it.
 * key and value point into the table and are valid during the call only;
 * value NULL means the holder stored none. */
struct lock_view {
    const char *key;
    size_t keylen;
    uint64_t token;
    uint64_t ttl_left_us;        /* 0 = no expiry */
    const char *value;
    size_t vlen;
};

typedef int (*lock_visit_fn)(const struct lock_view *v, void *arg);

/* New, empty table.  clock is copied; seed keys the hash (random in the
 * daemon).  NULL when out of memory. */
struct locktable *locktable_new(const struct lock_clock *clock,
                                const struct lock_events *events,
                                const struct locktable_limits *limits,
                                const uint8_t seed[16]);

/* Frees every entry and pending waiter (without callbacks) and the table. */
void locktable_free(struct locktable *t);

/* Replaces t's limits (a config reload).  Nothing already held or queued
 * is touched: a limit below the current count only refuses new entries or
 * waiters until the count falls under it. */
void locktable_set_limits(struct locktable *t,
                          const struct locktable_limits *limits);

/* Takes key for rq's owner, or queues the request, or refuses; see
 * enum lock_result.  A key longer than UINT32_MAX bytes cannot be stored:
 * where an entry would be made for it the answer is LOCK_NO_MEMORY (the
 * daemon's max_key_len is far below that). */
enum lock_result locktable_acquire(struct locktable *t,
                                   const struct lock_request *rq,
                                   uint64_t *token);

/* Releases key when token holds it (token 0: whoever holds it).  Returns 1
 * when a lock was freed, else 0.  The next waiter is granted at once. */
int locktable_release(struct locktable *t, const char *key, size_t keylen,
                      uint64_t token);

/* 1 when key is held now, else 0. */
int locktable_is_locked(struct locktable *t, const char *key, size_t keylen);

/* What GET shows of key: 1 when held, with *token the holder's and *value
 * its value (NULL when it stored none; valid until the next call on t);
 * 0 when free; -1 while recovering when no lock here holds it (one granted
 * before the crash may: nobody can say, see locktable_block_grants_until). */
int locktable_get(struct locktable *t, const char *key, size_t keylen,
                  uint64_t *token, const char **value, size_t *vlen);

/* Redis SET on key: which holds it decides whether it happens. */
enum lock_set_when {
    LOCK_SET_ALWAYS,   /* held or not (a held lock gets a new holder) */
    LOCK_SET_IF_HELD,  /* XX: only over a holder */
};

struct lock_set {
    const char *key;
    size_t keylen;
    const char *value;           /* copied; NULL = none */
    size_t vlen;
    uint64_t ttl_us;             /* 0 = no expiry */
    int keep_ttl;                /* keep the holder's expiry (KEEPTTL) */
    enum lock_set_when when;
};

/* Makes key held by a new token, with s's value and expiry, whoever held
 * it: the old holder's token no longer releases it (its hold ends as a
 * RELEASE's would, but the key is not handed on), the key's waiters keep
 * waiting, now for the new holder.  Also while recovering: overwriting is
 * what SET does to any holder, one granted before a crash included.  (A
 * SET that must not take a held key is SET NX: locktable_acquire with
 * rq->value.)  LOCK_GRANTED with *token; LOCK_BUSY when `when` was not met;
 * the LOCK_LIMIT_*, LOCK_NO_MEMORY and LOCK_NOT_DURABLE refusals change
 * nothing. */
enum lock_result locktable_set(struct locktable *t, const struct lock_set *s,
                               uint64_t *token);

/* When token holds key, its expiry becomes ttl_us from now (0 = never) and
 * 1 is returned; else 0.  -1 when the journal could not record the new
 * expiry (struct lock_journal): the old one stands. */
int locktable_extend(struct locktable *t, const char *key, size_t keylen,
                     uint64_t token, uint64_t ttl_us);

/* Microseconds left on a held lock; -1 held with no expiry; -2 not held. */
int64_t locktable_pttl_us(struct locktable *t, const char *key, size_t keylen);

/* Token of key's holder, or 0 when not held. */
uint64_t locktable_holder_token(struct locktable *t, const char *key,
                                size_t keylen);

/* Drops everything session owns, in O(1) plus its pending waits: the waits
 * are cancelled without callbacks; its SESSION locks stop belonging to
 * session (which the caller may free right after) and are released in
 * slices by locktable_run_timers, each handed to its next waiter as a
 * RELEASE would, and counted as released (as expired if its TTL ran out
 * before the session ended).  Until then they count in STATS `held`, but no
 * answer shows them: any access to such a key first releases it (as lazy
 * expiry does), a wait that comes due on one makes it released first, and
 * locktable_foreach_held skips them.  A second call is a no-op. */
void locktable_session_end(struct locktable *t, struct lock_session *session);

/* Cancels session's pending waits (no callbacks), keeping its locks: for a
 * shutdown, so releasing the locks next hands nothing to a dying client. */
void locktable_session_cancel_waits(struct locktable *t,
                                    struct lock_session *session);

/* Tokens at or below `ceiling` may be issued freely; before issuing one
 * above it the engine calls raise_fn(arg, token), which must make a new
 * ceiling durable and return it (the state file keeps the ceiling so that
 * after a crash every new token is above every token ever issued).  When
 * raise_fn fails it returns 0: the token is issued anyway and raise_fn is
 * asked again at the next grant.  raise_fn NULL turns this off. */
void locktable_set_token_ceiling(struct locktable *t, uint64_t ceiling,
                                 uint64_t (*raise_fn)(void *arg, uint64_t token),
                                 void *arg);

/* Crash safety (the daemon's state file, daemon/state.h).  Every lease
 * the engine grants or extends is recorded before the call returns, and
 * durable before anyone can be told of it, in one of two ways:
 *   - a plain lease that ends within long_lease_us is covered by the lease
 *     horizon: a monotonic time that no such lease outlives.  Only when a
 *     deadline passes the recorded horizon is raise_horizon asked to make a
 *     later one durable (it adds slack, so that happens about once per
 *     slack under steady traffic, not per grant);
 *   - a longer lease (or TTL FOREVER) is written one by one with hold(),
 *     and its end (release, session end, expiry) with freed().  The entry
 *     is then "durable" until its hold ends, and every extend of it is
 *     written too.
 * SESSION leases are never written one by one (a crash ends every
 * connection, so they end with it); the horizon covers them for at most
 * long_lease_us, the time their holders get to see the connection drop.
 * When a hook fails the lease is not granted or extended: an immediate
 * acquire answers LOCK_NOT_DURABLE, an extend -1, and a handoff to a waiter
 * is retried after journal_retry_us with the waiter kept at the head of
 * the queue.  All hooks NULL (the default) turns this off. */
struct lock_journal {
    /* Returns a durable horizon >= deadline, or 0 when it could not. */
    uint64_t (*raise_horizon)(void *arg, uint64_t deadline);
    /* key (keylen bytes) is held by token until deadline (monotonic us;
     * UINT64_MAX = no expiry), with value (vlen bytes; NULL = none), so a
     * crash gives the value back with the lock.  Returns 0 once recorded,
     * or -1.  The
     * record must be durable before the grant is answered; the daemon
     * makes it so with one fdatasync at the end of the callback that
     * made the grant (state_commit, group commit). */
    int (*hold)(void *arg, const char *key, size_t keylen, uint64_t token,
                uint64_t deadline, const char *value, size_t vlen);
    /* key's written lease with token has ended.  Need not be durable
     * before returning: a lost one makes a crash restore a lock that was
     * free, which delays grants but never grants twice. */
    void (*freed)(void *arg, const char *key, size_t keylen, uint64_t token);
    uint64_t long_lease_us;     /* leases longer than this use hold() */
    uint64_t journal_retry_us;  /* a failed handoff is tried again after */
    void *arg;
};

/* Sets (copies) the journal hooks; horizon is the one already durable.
 * Call before locktable_restore so restored leases are sorted the same
 * way (locktable_restore marks those longer than long_lease_us durable). */
void locktable_set_journal(struct locktable *t, const struct lock_journal *j,
                           uint64_t horizon);

/* The lease horizon now (monotonic us; 0 before any). */
uint64_t locktable_horizon(const struct locktable *t);

/* Monotonic microsecond at which locktable_run_timers has work, or
 * UINT64_MAX when nothing is pending; 0 ("now") while an ended session's
 * locks are still to be released. */
uint64_t locktable_next_deadline(const struct locktable *t);

/* Expires due locks and ends due waits, then releases locks of ended
 * sessions, at most max_events of all these (so a million simultaneous
 * expiries, or a session of a million locks, are done in slices between
 * other work).  Returns how many it did: less than max_events means nothing
 * is left to do now. */
size_t locktable_run_timers(struct locktable *t, size_t max_events);

/* No grant until the monotonic time `until_us` (crash recovery): acquires
 * without wait answer LOCK_BUSY, waits queue and are served from then on.
 * Until then a key that is not held (a lock granted before the crash may
 * still hold it) reads as held everywhere: is_locked 1, pttl the time left
 * to until_us; release and extend find no lock their token holds (0). */
void locktable_block_grants_until(struct locktable *t, uint64_t until_us);

/* 1 while grants are blocked for recovery. */
int locktable_recovering(const struct locktable *t);

/* Largest token issued or restored, and raising it (state file restore). */
uint64_t locktable_last_token(const struct locktable *t);
void locktable_raise_last_token(struct locktable *t, uint64_t token);

/* Puts back a lock saved at a clean stop: key held by token for ttl_us more
 * (0 = no expiry), with value (vlen bytes; NULL = none).  With a journal
 * set, a lease longer than long_lease_us (or none) is marked durable: the
 * caller writes it into the new journal.  Limits are not applied (what
 * was held stays held).  Returns 0, or -1 when out of memory or key is
 * held or is a pool's. */
int locktable_restore(struct locktable *t, const char *key, size_t keylen,
                      uint64_t token, uint64_t ttl_us, const char *value,
                      size_t vlen);

/* Removes key's lock when token holds it (0: any holder) without counting
 * it or handing it on: for replaying a journal at start, before any client.
 * Returns 1 when a lock was removed, else 0. */
int locktable_forget(struct locktable *t, const char *key, size_t keylen,
                     uint64_t token);

/* Calls fn once per held lock (struct lock_view).  fn must not change the
 * table.  Returns 0, or the first non-zero value fn returned (which stops
 * the walk). */
int locktable_foreach_held(struct locktable *t, lock_visit_fn fn, void *arg);

/* As locktable_foreach_held, for the durable locks only (see struct
 * lock_journal): what a new journal must start with.  Visits those alone,
 * however many other locks are held. */
int locktable_foreach_durable(struct locktable *t, lock_visit_fn fn,
                              void *arg);

/* A copy of the counters (held and waiters are current). */
void locktable_stats(const struct locktable *t, struct lock_stats *out);

/* Keys that have the engine's links record now (a SESSION holder or a
 * waiter queue, kept until the key's entry goes): for tests. */
size_t locktable_links_records(const struct locktable *t);

/* Locks of ended sessions not released yet: for tests and STATS. */
size_t locktable_draining(const struct locktable *t);

#endif
