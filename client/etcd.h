/* client/etcd.h - internal: the lock and pool calls of cachify.h on an
 * etcd cluster, driven by an event_base (the async API's, or the sync
 * API's own thread: client/sync_etcd.c).
 *
 * Owns: how each call maps onto etcd (leases, the v3lock queue,
 * transactions: see etcd.c; pools: etcd_pool.c), the leases the handle
 * keeps alive (locks and slots being waited for, SESSION ones) and their
 * renewal timer.  Does not own:
 * HTTP and the choice of member (etcd_http.c), argument checks and
 * messages for "<key> is already locked!" (wire.c, through the callers),
 * the handles (async.c, sync_etcd.c).
 */
#ifndef CACHIFY_CLIENT_ETCD_H
#define CACHIFY_CLIENT_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "client/url.h"
#include "client/wire.h"

struct event_base;
struct etcd;

/* The end of a call: status as the sync call returns it (CACHIFY_LOCKED,
 * CACHIFY_FULL and CACHIFY_TIMEOUT without a message: the caller words
 * them), value the token of an acquire, 1/0, a pool's count, or PTTL's
 * milliseconds; msg never NULL. */
typedef void (*etcd_cb)(void *arg, int status, long long value,
                        const char *msg);

/* A backend on base for url (CACHIFY_URL_ETCD).  NULL when out of
 * memory. */
struct etcd *etcd_new(struct event_base *base, const struct cachify_url *url,
                      int io_timeout_ms);

/* Starts op on key (the handle's prefix included; keylen bytes) with its
 * inputs (lock: the acquires; max_size: WIRE_POOL_ACQUIRE; token:
 * release, extend; ms: extend).  Pools: etcd_pool.c.
 * CACHIFY_OK: cb comes exactly once, from the loop -- except when out of
 * memory for the first request, when it comes at once with
 * CACHIFY_ERR_NOMEM (the callers only queue results, so that is safe);
 * else CACHIFY_ERR_NOMEM and cb does not come. */
int etcd_start(struct etcd *e, enum wire_op op, const char *key,
               size_t keylen, const struct wire_lock *lock, unsigned max_size,
               uint64_t token,
               long long ms, etcd_cb cb, void *arg);

/* Ends e: every call under way is dropped, orphan(arg, ctx) is called
 * with its arg (orphan may be NULL), then the leases e keeps (its SESSION
 * locks, abandoned waits) are revoked -- blocking, on a loop of its own,
 * for at most the io timeout -- and e is freed.  NULL is a no-op. */
void etcd_free(struct etcd *e, void (*orphan)(void *arg, void *ctx),
               void *ctx);

#endif
