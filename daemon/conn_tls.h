/* daemon/conn_tls.h - a TLS connection's socket I/O on the daemon's own
 * events: the handshake, reads and writes through its OpenSSL session
 * (tls.h), and the one thing a plain socket does not have, OpenSSL
 * needing the socket readable to write or writable to read.
 *
 * Owns: driving the handshake from the connection's read event (and its
 * end: tls_connections, or the logged failure that conn_free counts in
 * tls_handshake_failures), reading decrypted bytes where conn.c would
 * readv a plain socket's, writing the output where conn.c would writev
 * it, and the TLS write event c->wr, armed only while OpenSSL waits for
 * room in the socket (never per reply).  Does not own: when a connection
 * reads or writes, its buffers, state or accounting (conn.c).
 *
 * Wants: c->tls_wants records a step that waits for the other direction
 * (CONN_TLS_READ_WANTS_WRITE: a read or the handshake needs the socket
 * writable; CONN_TLS_WRITE_WANTS_READ: a write needs it readable).
 * conn.c's events retry that step first.  With OpenSSL 3.0 and
 * renegotiation off (ssl/statem/statem_srvr.c):
 * - A read wants a write when the handshake's flight does not fit in the
 *   socket (SSL_do_handshake writes the server's whole flight, and
 *   TLS 1.3's NewSessionTickets right after the client's Finished), or
 *   when our KeyUpdate (the answer to a client's update_requested, begun
 *   by the next SSL_write, which puts the session back "in init") could
 *   not be flushed: SSL_read then flushes it first.  The first is
 *   tested (test_tls_hostile: tls_handshake_waits_for_room, an 80 KB
 *   certificate to a client that keeps the daemon's send buffer small).
 * - A write wants a read only while the session is in a handshake that
 *   reads: the first one (no reply exists before it ends: requests are
 *   read only after it) or a renegotiation (refused, test_tls_hostile:
 *   tls_renegotiation_refused).  Post-handshake, a TLS 1.3 server only
 *   writes (KeyUpdate, tickets: TLS_ST_SW_KEY_UPDATE and
 *   TLS_ST_SW_SESSION_TICKET lead to TLS_ST_OK without a read), so
 *   CONN_TLS_WRITE_WANTS_READ is kept only as the safe answer to what
 *   the API allows: the write is retried at the next readable event.
 */
#ifndef CACHIFY_DAEMON_CONN_TLS_H
#define CACHIFY_DAEMON_CONN_TLS_H

#include <sys/types.h>

#include <event2/util.h>

struct conn;
struct iovec;
struct ssl_st;

#define CONN_TLS_READ_WANTS_WRITE 1
#define CONN_TLS_WRITE_WANTS_READ 2

/* Sets up c's TLS I/O (c->fd and c->ssl set; c owns the session, freed by
 * conn_tls_free even when this fails); on_writable is c->wr's callback.
 * Returns 0, or -1 when out of memory. */
int conn_tls_init(struct conn *c,
                  void (*on_writable)(evutil_socket_t fd, short what,
                                      void *arg));

/* Frees c's session and write event (before c's socket closes); safe
 * after a failed or no init. */
void conn_tls_free(struct conn *c);

/* As readv(c->fd, iov, niov), through TLS: the handshake first while it
 * is not done, then decrypted bytes.  Returns the bytes read (more may
 * wait in OpenSSL: c->tls_more), 0 at the end of the client's stream, or
 * -1 with errno EAGAIN (nothing now; what OpenSSL waits for is armed) or
 * ECONNRESET (the handshake or the stream failed; a failed handshake is
 * logged).  An end met after bytes is returned at the next call, which
 * is scheduled at once. */
ssize_t conn_tls_read(struct conn *c, const struct iovec *iov, int niov);

/* Sends what c's output holds, as far as the socket takes it.  Returns
 * the bytes left in the output (the write event or, for a write that
 * wants a read, the read event finishes them), or -1 when the stream
 * failed (c is to be dropped). */
long conn_tls_write(struct conn *c);

/* Arms or disarms c->wr as c->writing and c->tls_wants say. */
void conn_tls_sync(struct conn *c);

#endif
