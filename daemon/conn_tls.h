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
 * OpenSSL's API allows both at any step; with TLS 1.2 and later and
 * renegotiation off, no test has seen either (a KeyUpdate's answer goes
 * out with the next write).  conn.c's events retry that step first.
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
