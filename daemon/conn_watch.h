/* daemon/conn_watch.h - the close watch of a waiting connection whose
 * reading stopped at the read-ahead mark (conn.h, WAIT_PROBE_MS).
 *
 * Owns: the EV_CLOSED event on the waiter's socket and its periodic probe
 * (a reset, or a client pushing WAIT_KERNEL_BYTES more than it may), and
 * dropping the waiter when either shows it is gone or over its bound.
 * Does not own: the connection's state or its reading (conn.c decides
 * when to watch and stops the watch when the wait ends or it is freed).
 * Works on the socket alone, so a TLS connection (whose bytes OpenSSL
 * reads, conn_tls.c) is watched like a plain one.
 */
#ifndef CACHIFY_DAEMON_CONN_WATCH_H
#define CACHIFY_DAEMON_CONN_WATCH_H

struct conn;

/* 1 when the loop can tell us about c's peer closing while we do not read
 * (EV_CLOSED): c has a socket, and the backend EV_FEATURE_EARLY_CLOSE
 * (epoll). */
int conn_can_watch_close(const struct conn *c);

/* Called while c waits: once its input reached the read-ahead mark, watch
 * its socket.  A waiter that already pushes more than it may, or whose
 * watch cannot be set up (out of memory), is dropped: it must not outlive
 * its client unseen.  Returns 1 when c was freed, else 0. */
int conn_watch_close(struct conn *c);

/* Stops the watch (a no-op when none is set). */
void conn_unwatch_close(struct conn *c);

#endif
