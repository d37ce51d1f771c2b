/* client/embedded.h - internal: the in-process lock store behind "mem:".
 *
 * Owns: one process-wide lock table (cachifyd's own engine, daemon/
 * locktable.c) behind a mutex, shared by every handle opened on "mem:", and
 * a timer thread that sleeps until the engine's next deadline, so locks
 * expire and waits time out on time without anyone polling.  Does not own:
 * the public API (sync.c, async.c) or key prefixes (keys arrive prefixed).
 *
 * Completions of queued waits are reported through callbacks called with
 * the store's mutex held, from whichever thread freed the lock (or the timer
 * thread).  A callback must not call back into the store: it signals its
 * waiter (a condition variable for sync calls, an eventfd for async ones).
 */
#ifndef CACHIFY_CLIENT_EMBEDDED_H
#define CACHIFY_CLIENT_EMBEDDED_H

#include <stddef.h>
#include <stdint.h>

struct mem_session;
struct lock_clock;

/* A queued acquire finished: status is CACHIFY_OK (with token) or
 * CACHIFY_TIMEOUT.  Called with the store mutex held; see above. */
typedef void (*mem_wait_cb)(void *arg, int status, uint64_t token);

/* A session on the process-wide store (created on first use, freed with the
 * last session).  One per handle: it owns the handle's SESSION locks and
 * pending waits.  NULL when out of memory. */
struct mem_session *mem_session_new(void);

/* Releases the session's SESSION locks (handing them to waiters), cancels
 * its pending waits without callbacks, and drops the store when it was the
 * last session (keeping its last fencing token: the next store issues
 * larger ones, even when the wall clock went back meanwhile). */
void mem_session_free(struct mem_session *ms);

/* For tests: the clocks (engine/clock.h) of the next store created, NULL
 * for the system's; a live store keeps the one it was created with.
 * clock must outlive that store.  Fencing tokens stay increasing across
 * stores whatever the clock says (see mem_session_free). */
void mem_store_set_clock(const struct lock_clock *clock);

/* Acquire that blocks the calling thread: wait_ms 0 = no wait, -1 = no
 * bound.  ttl_us 0 = no expiry.  Returns CACHIFY_OK with *token,
 * CACHIFY_LOCKED, CACHIFY_TIMEOUT, CACHIFY_ERR_SERVER (a limit) or
 * CACHIFY_ERR_NOMEM. */
int mem_acquire_wait(struct mem_session *ms, const char *key, size_t keylen,
                     uint64_t ttl_us, long long wait_ms, int session_lock,
                     uint64_t *token);

/* Acquire that never blocks: CACHIFY_OK with *token, CACHIFY_LOCKED when
 * wait_ms is 0, or 1 (queued: cb(arg, ...) comes later, exactly once,
 * unless the session is freed first), or an error as mem_acquire_wait. */
int mem_acquire_async(struct mem_session *ms, const char *key, size_t keylen,
                      uint64_t ttl_us, long long wait_ms, int session_lock,
                      mem_wait_cb cb, void *arg, uint64_t *token);

/* Same results as the lock engine's calls of the same names; release and
 * extend answer CACHIFY_ERR_TYPE on a pool's key, as cachifyd answers
 * -WRONGTYPE (its message: WIRE_NOT_A_LOCK). */
int mem_release(struct mem_session *ms, const char *key, size_t keylen,
                uint64_t token);
int mem_is_locked(struct mem_session *ms, const char *key, size_t keylen);
int mem_extend(struct mem_session *ms, const char *key, size_t keylen,
               uint64_t token, uint64_t ttl_us);
int64_t mem_pttl_us(struct mem_session *ms, const char *key, size_t keylen);

/* A pool slot (max 1..1000000) that blocks as mem_acquire_wait; a full
 * pool is CACHIFY_FULL, a lock key or another max CACHIFY_ERR_TYPE. */
int mem_pool_acquire_wait(struct mem_session *ms, const char *key,
                          size_t keylen, unsigned max, uint64_t ttl_us,
                          long long wait_ms, int session_lock,
                          uint64_t *token);

/* mem_acquire_async for a pool slot (max 1..1000000); a full pool is
 * CACHIFY_FULL. */
int mem_pool_acquire_async(struct mem_session *ms, const char *key,
                           size_t keylen, unsigned max, uint64_t ttl_us,
                           long long wait_ms, int session_lock,
                           mem_wait_cb cb, void *arg, uint64_t *token);

/* The other pool calls, with the engine's results (lock_pool.h): release
 * by token (0: every slot; the count), size, extend; -1 for a lock key. */
enum mem_pool_op { MEM_POOL_RELEASE, MEM_POOL_SIZE, MEM_POOL_EXTEND };
int64_t mem_pool_call(struct mem_session *ms, enum mem_pool_op op,
                      const char *key, size_t keylen, uint64_t token,
                      uint64_t ttl_us);

#endif
