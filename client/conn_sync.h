/* client/conn_sync.h - internal: one blocking connection to cachifyd for the
 * sync API.
 *
 * Owns: the socket (TCP or Unix), connecting with a timeout, sending one
 * RESP-framed command, and reading one reply through proto/resp with a
 * deadline.  Does not own: what commands mean, error messages of the public
 * API beyond "what went wrong on the wire", reconnecting (sync.c decides).
 *
 * Every wait is a poll() on the socket with the time left, never a sleep.
 * The socket stays non-blocking; SIGPIPE is avoided with MSG_NOSIGNAL.
 * Host names are resolved with getaddrinfo, which has no timeout of its
 * own: use a numeric address where a DNS stall is not acceptable.
 */
#ifndef CACHIFY_CLIENT_CONN_SYNC_H
#define CACHIFY_CLIENT_CONN_SYNC_H

#include <stddef.h>

#include "client/url.h"
#include "proto/resp.h"

/* Most arguments in one command (ACQUIRE key TTL n WAIT n SESSION). */
#define SCONN_MAX_ARGS 8

struct sconn {
    int fd;                    /* -1 when not connected */
    struct resp_parser *parser;/* replies of this connection; NULL when closed */
};

/* A closed connection (fd -1). */
void sconn_init(struct sconn *sc);

/* Connects to u (TCP or UNIX) within timeout_ms.  CACHIFY_OK, or
 * CACHIFY_ERR_IO / CACHIFY_ERR_NOMEM with a message in err[errlen]. */
int sconn_open(struct sconn *sc, const struct cachify_url *u, int timeout_ms,
               char *err, size_t errlen);

/* Closes the socket and drops unread bytes; a closed sc is a no-op. */
void sconn_close(struct sconn *sc);

/* Sends argv[0..argc) (lengths in len) as one RESP array within
 * timeout_ms.  CACHIFY_OK, CACHIFY_ERR_IO or CACHIFY_ERR_NOMEM (message in
 * err).  Does not close sc on failure. */
int sconn_send(struct sconn *sc, int argc, const char *const *argv,
               const size_t *len, int timeout_ms, char *err, size_t errlen);

/* Reads the next reply within timeout_ms (< 0: without bound) into *out
 * (free it with resp_reply_free).  CACHIFY_OK, CACHIFY_ERR_IO (closed,
 * timed out, failed), CACHIFY_ERR_PROTO (not RESP) or CACHIFY_ERR_NOMEM,
 * with a message in err.  Does not close sc on failure. */
int sconn_recv(struct sconn *sc, long long timeout_ms, struct resp_reply **out,
               char *err, size_t errlen);

#endif
