/* client/sync_net.h - internal: one blocking connection to cachifyd for the
 * sync API (the async API's counterpart is async_net.c).
 *
 * Owns: the socket (TCP, TCP with TLS, or Unix), connecting with a
 * timeout (the TLS handshake included), sending the bytes of one request,
 * and reading one reply through proto/resp with a deadline; for
 * cachifys:// the handle's TLS settings (client/tls.h), made on the first
 * connect and kept for every reconnect.  Does not own: the bytes of a
 * request or what a reply means (client/wire.c), error messages of the
 * public API beyond "what went wrong on the connection", reconnecting
 * (sync.c decides).
 *
 * Every wait is a poll() on the socket with the time left, never a sleep;
 * over TLS too, where a read may need the socket writable and a write
 * readable (OpenSSL says which).  The socket stays non-blocking; SIGPIPE
 * is avoided with MSG_NOSIGNAL (client/tls.c writes TLS records the same
 * way).  Host names are resolved with getaddrinfo, which has no timeout of
 * its own: use a numeric address where a DNS stall is not acceptable.
 */
#ifndef CACHIFY_CLIENT_SYNC_NET_H
#define CACHIFY_CLIENT_SYNC_NET_H

#include <stddef.h>

#include "client/tls.h"
#include "client/url.h"
#include "proto/resp.h"

struct sconn {
    int fd;                    /* -1 when not connected */
    struct resp_parser *parser;/* replies of this connection; NULL when closed */
    struct ctls *tls;          /* cachifys://: kept across reconnects */
    SSL *ssl;                  /* cachifys://: this connection's; else NULL */
    int tls_failed;            /* ssl had a fatal error: no close_notify */
};

/* Keepalive timings set on every client socket (TCP): the first probe
 * after this many idle seconds, then one every INTVL seconds, and the
 * connection is dead after CNT unanswered ones (~90 s in all), so a wait
 * without bound (WAIT FOREVER) on a server that vanished (host down,
 * network cut: no FIN, no RST) ends with CACHIFY_ERR_IO instead of never. */
#define CACHIFY_KEEPIDLE_S 60
#define CACHIFY_KEEPINTVL_S 10
#define CACHIFY_KEEPCNT 3

/* Sets SO_KEEPALIVE (with the timings above) on fd and, when tcp is
 * non-zero, TCP_NODELAY (requests are small and answered one by one).
 * Best effort: a refused option is ignored.  Shared by the sync and the
 * async connections. */
void cachify_impl_tune_socket(int fd, int tcp);

/* A closed connection (fd -1) without TLS settings. */
void sconn_init(struct sconn *sc);

/* Connects to u (TCP, TCP with TLS, or UNIX) within timeout_ms, the TLS
 * handshake included; the first connect to a cachifys:// URL builds the
 * TLS settings from it.  CACHIFY_OK, or CACHIFY_ERR_IO /
 * CACHIFY_ERR_NOMEM / CACHIFY_ERR_ARG (a TLS file that cannot be used)
 * with a message in err[errlen]. */
int sconn_open(struct sconn *sc, const struct cachify_url *u, int timeout_ms,
               char *err, size_t errlen);

/* Closes the socket (after a best-effort TLS close_notify) and drops
 * unread bytes; keeps the TLS settings for the next sconn_open.  A closed
 * sc is a no-op. */
void sconn_close(struct sconn *sc);

/* sconn_close, and the TLS settings freed: sc is as sconn_init left it. */
void sconn_free(struct sconn *sc);

/* 1 when sc is open and idle: nothing arrived since its last reply (no
 * unread bytes, no EOF, no socket error), checked with a poll() that does
 * not wait.  0 otherwise: the server closed it (its idle `timeout`, a
 * restart) or sent something unasked (a -LIMIT / -DENIED line before
 * closing), and a request sent on it would fail or read that line as its
 * reply.  Over TLS, records that carry no data (TLS 1.3 session tickets)
 * are read and leave it idle; decrypted bytes not yet read, an alert or a
 * close_notify do not. */
int sconn_idle(struct sconn *sc);

/* Sends buf[0..n) (one encoded request, see wire_request) within
 * timeout_ms.  CACHIFY_OK or CACHIFY_ERR_IO (message in err).  Does not
 * close sc on failure. */
int sconn_send(struct sconn *sc, const char *buf, size_t n, int timeout_ms,
               char *err, size_t errlen);

/* Reads the next reply within timeout_ms (< 0: without bound) into *out
 * (free it with resp_reply_free).  CACHIFY_OK, CACHIFY_ERR_IO (closed,
 * timed out, failed), CACHIFY_ERR_PROTO (not RESP) or CACHIFY_ERR_NOMEM,
 * with a message in err.  Does not close sc on failure. */
int sconn_recv(struct sconn *sc, long long timeout_ms, struct resp_reply **out,
               char *err, size_t errlen);

#endif
