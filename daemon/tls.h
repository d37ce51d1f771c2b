/* daemon/tls.h - TLS for the lock service: the server's OpenSSL context,
 * built from the settings and rebuilt on SIGHUP, and the bufferevent of one
 * accepted TLS connection.
 *
 * Owns: every OpenSSL call the daemon makes (the rest of daemon/ sees only
 * the opaque context and libevent bufferevents), the checks of the tls_*
 * keys (config_check calls tls_config_check, so --test-config and a reload
 * catch a bad certificate or key before anything starts or changes), the
 * TLS policy (TLS 1.2 and later, no compression, no renegotiation, client
 * certificates per tls_auth_clients) and the messages that name the file
 * and OpenSSL's reason.  Does not own: the listeners (server.c), the
 * connection's I/O and state (conn.c reads and writes a TLS connection
 * through its bufferevent, as it does a bufferevent pair), the counters
 * (struct server_stats).
 *
 * A reload builds a new context and swaps it in only when the whole of it
 * loaded; connections already open keep the context they were accepted
 * with (each SSL holds a reference), so they go on undisturbed.
 */
#ifndef CACHIFY_DAEMON_TLS_H
#define CACHIFY_DAEMON_TLS_H

#include <stddef.h>

struct bufferevent;
struct cachify_config;
struct event_base;
struct server;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* Checks the tls_* keys of c: with tls_port set, the certificate chain, the
 * key (which must match it) and the CA file (required unless
 * tls_auth_clients is no) are loaded exactly as the daemon will load them,
 * and tls_port may not be port or metrics_port.  With tls_port 0 the files
 * are not read.  Returns 0, or -1 with "KEY: 'PATH': why (OpenSSL's
 * reason)" in err[errlen]. */
int tls_config_check(const struct cachify_config *c, char *err,
                     size_t errlen);

/* A server context for c's tls_* keys (tls_port need not be set).  NULL
 * with the reason in err[errlen].  The caller frees it with tls_ctx_free
 * (NULL is fine). */
struct ssl_ctx_st *tls_ctx_new(const struct cachify_config *c, char *err,
                               size_t errlen);
void tls_ctx_free(struct ssl_ctx_st *ctx);

/* SIGHUP (reload.c): a new context from srv->config replaces
 * srv->tls_ctx for the connections accepted from now on; when it cannot
 * be built, the running one stays and the reason is logged.  Returns 0 or
 * -1.  A no-op (0) when the daemon has no TLS listener. */
int tls_reload(struct server *srv);

/* A bufferevent for fd, a freshly accepted socket, that runs the server
 * side of a TLS handshake with ctx and then carries the connection's
 * bytes in clear; it closes fd when freed.  NULL when out of memory (fd is
 * closed then too). */
struct bufferevent *tls_bufferevent_new(struct event_base *base,
                                        struct ssl_ctx_st *ctx, int fd);

/* 1 when bev is a TLS bufferevent (tls_bufferevent_new), else 0. */
int tls_is_tls(struct bufferevent *bev);

/* Calls on_bytes(arg) after each read that takes bytes from bev's socket
 * (bev a TLS bufferevent), whether or not they complete a record: the
 * connection's request_timeout must start at the first encrypted byte of
 * a request, which libevent reports only once a whole record decrypted.
 * on_bytes runs inside OpenSSL's read: it may only note the time (no I/O,
 * no freeing).  arg must outlive bev.  Returns 0, or -1 (no callback). */
int tls_watch_reads(struct bufferevent *bev, void (*on_bytes)(void *arg),
                    void *arg);

/* 1 when OpenSSL holds bytes of bev's connection it could not decrypt yet
 * (a record not received whole), else 0. */
int tls_record_pending(struct bufferevent *bev);

/* Sends the TLS close_notify alert on bev's connection, best effort (the
 * socket may be full or gone), before the socket is shut down for
 * writing: the client then knows the stream ended where we meant it to. */
void tls_close_notify(struct bufferevent *bev);

/* Describes bev's connection into buf[len]: after a completed handshake
 * the protocol, cipher and client certificate subject (or "no client
 * certificate"); after a failure, OpenSSL's reason, or "the client left"
 * when there is none.  Returns buf. */
const char *tls_describe(struct bufferevent *bev, int failed, char *buf,
                         size_t len);

/* "no", "yes" or "optional". */
const char *tls_auth_name(int auth);

#endif
