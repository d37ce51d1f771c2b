/* client/etcd_keep.h - internal: the etcd leases a handle keeps alive or
 * still has to revoke.
 *
 * Owns: a list of leases, each of a kind: a lock being waited for (renewed
 * so its queue entry lives as long as the wait), a SESSION lock (renewed
 * until its expiry, then revoked; revoked when the handle ends), or a lease
 * that must go (a revoke that failed: retried every second).  One timer on
 * the handle's event_base does the renewals (each lease at a third of its
 * TTL, as etcd's own clients do).  Does not own: the locks' meaning
 * (etcd.c) or HTTP (etcd_http.c).
 */
#ifndef CACHIFY_CLIENT_ETCD_KEEP_H
#define CACHIFY_CLIENT_ETCD_KEEP_H

#include <stdint.h>

#include "client/url.h"

struct event_base;
struct ehttp;
struct ekeep;

/* The TTL of a SESSION lock's lease, in seconds: how long a SESSION lock
 * outlives a handle that died without closing (a closed handle revokes
 * at once).  etcd's shortest lease is about 2 s. */
#define EKEEP_SESSION_TTL_S 6
/* etcd's longest lease (MaxLeaseTTL): a lock with CACHIFY_EXP_NONE. */
#define EKEEP_FOREVER_TTL_S 9000000000LL

enum ekeep_kind {
    EKEEP_NONE,     /* not kept */
    EKEEP_WAIT,     /* a lock being waited for */
    EKEEP_SESSION,  /* a SESSION lock, until its deadline */
    EKEEP_DOOMED,   /* to revoke */
};

/* A keeper on base sending through http.  NULL when out of memory. */
struct ekeep *ekeep_new(struct event_base *base, struct ehttp *http);

/* Keeps lease (of ttl_s seconds) as kind; deadline_us: when a SESSION
 * lock expires (monotonic microseconds; 0 never).  A lease kept already
 * changes kind.  0, or -1 when out of memory. */
int ekeep_add(struct ekeep *k, long long lease, long long ttl_s,
              enum ekeep_kind kind, uint64_t deadline_us);

/* Stops keeping lease (no-op when not kept). */
void ekeep_forget(struct ekeep *k, long long lease);

/* The kind of lease (EKEEP_NONE when not kept), and its deadline. */
enum ekeep_kind ekeep_find(const struct ekeep *k, long long lease,
                           uint64_t *deadline_us);

/* A SESSION lock's new expiry. */
void ekeep_set_deadline(struct ekeep *k, long long lease,
                        uint64_t deadline_us);

/* Frees k after revoking every lease it keeps, blocking on an event loop
 * of its own for at most io_timeout_ms (url: where to send them). */
void ekeep_free(struct ekeep *k, const struct cachify_url *url,
                int io_timeout_ms);

#endif
