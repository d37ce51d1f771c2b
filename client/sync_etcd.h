/* client/sync_etcd.h - internal: the "etcd://" backend of the sync API.
 *
 * Owns: a thread per handle that runs client/etcd.c on an event_base of
 * its own, so that what etcd needs done between the caller's calls is
 * done: the leases of SESSION locks renewed until their expiry and revoked
 * when the handle closes, failed revokes retried.  Each sync call is handed
 * to that thread and waited for.  Does not own: the handle, its messages
 * and its checks (sync.c), how calls map onto etcd (etcd.c).
 */
#ifndef CACHIFY_CLIENT_SYNC_ETCD_H
#define CACHIFY_CLIENT_SYNC_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include "client/url.h"
#include "client/wire.h"

struct setcd;

/* Starts the backend for url.  CACHIFY_OK and *out, or an error with a
 * message in err[errlen]. */
int setcd_open(struct setcd **out, const struct cachify_url *url,
               int io_timeout_ms, char *err, size_t errlen);

/* Stops the thread after it revoked the SESSION leases (at most the io
 * timeout), frees s.  NULL is a no-op. */
void setcd_close(struct setcd *s);

/* Runs one call (arguments as etcd_start) and waits for its end: its
 * status, *value, and a message in msg[msglen] when it failed (not for
 * CACHIFY_LOCKED / CACHIFY_TIMEOUT / CACHIFY_FULL, which the caller
 * words). */
int setcd_call(struct setcd *s, enum wire_op op, const char *key,
               size_t keylen, const struct wire_lock *lock, unsigned max_size,
               uint64_t token,
               long long ms, long long *value, char *msg, size_t msglen);

#endif
