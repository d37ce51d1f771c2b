/* daemon/tls.h - TLS for the lock service: the server's OpenSSL context,
 * built from the settings and rebuilt on SIGHUP, and the OpenSSL session
 * of one accepted TLS connection (its handshake, reads and writes).
 *
 * Owns: every OpenSSL call the daemon makes (the rest of daemon/ sees only
 * the opaque context and session and the tls_status of each step), the
 * checks of the tls_* keys (config_check calls tls_config_check, so
 * --test-config and a reload catch a bad certificate or key before
 * anything starts or changes), the TLS policy (TLS 1.2 and later, no
 * compression, no renegotiation, client certificates per tls_auth_clients)
 * and the messages that name the file and OpenSSL's reason.  Does not own:
 * the listeners (server.c), when a connection reads and writes and what it
 * waits for on its socket (conn.c and conn_tls.c drive a TLS connection
 * from the daemon's own read and write events, as they do a plain socket),
 * the counters (struct server_stats).
 *
 * A reload builds a new context and swaps it in only when the whole of it
 * loaded; connections already open keep the context they were accepted
 * with (each SSL holds a reference), so they go on undisturbed.
 */
#ifndef CACHIFY_DAEMON_TLS_H
#define CACHIFY_DAEMON_TLS_H

#include <stddef.h>

struct cachify_config;
struct evbuffer;
struct iovec;
struct server;
struct ssl_ctx_st; /* OpenSSL's SSL_CTX */
struct ssl_st;     /* OpenSSL's SSL */

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

/* What an OpenSSL step on a connection's socket ended with. */
enum tls_status {
    TLS_DONE,       /* finished: the handshake, or every byte asked for */
    TLS_WANT_READ,  /* OpenSSL needs the socket readable to go on */
    TLS_WANT_WRITE, /* OpenSSL needs the socket writable to go on */
    TLS_END,        /* the client's stream ended (close_notify or TCP's
                       EOF, which SSL_OP_IGNORE_UNEXPECTED_EOF makes an
                       end, not an error) */
    TLS_FAILED,     /* a protocol error, a reset, or out of memory */
};

/* The server side of a TLS connection on fd (a freshly accepted,
 * non-blocking socket) with ctx, its handshake not begun.  The SSL reads
 * the socket itself, with read-ahead (one read() takes whatever the
 * kernel holds, up to a record buffer, instead of a record's header and
 * body apart).  NULL when out of memory; fd is the caller's either way
 * (tls_session_free does not close it). */
struct ssl_st *tls_session_new(struct ssl_ctx_st *ctx, int fd);
void tls_session_free(struct ssl_st *ssl);

/* Takes the handshake of ssl as far as the socket allows: TLS_DONE,
 * TLS_WANT_READ or TLS_WANT_WRITE, else TLS_END or TLS_FAILED with the
 * reason left for tls_describe(ssl, 1, ...), which must come next. */
enum tls_status tls_handshake(struct ssl_st *ssl);

/* Reads decrypted bytes into iov[niov] (the handshake done), as readv
 * would: *got says how many.  Stops when the vectors are full (TLS_DONE;
 * OpenSSL may hold more: tls_buffered), when OpenSSL would have to read
 * the socket again after bytes came (TLS_WANT_READ: one read() per call,
 * as a plain connection makes one readv per readable event), or at
 * TLS_WANT_WRITE, TLS_END or TLS_FAILED, with or without bytes. */
enum tls_status tls_readv(struct ssl_st *ssl, const struct iovec *iov,
                          int niov, size_t *got);

/* Encrypts and sends out's bytes, a record (up to 16 KiB) per SSL_write,
 * draining each from out once OpenSSL took it.  *retry carries the length
 * of an SSL_write to be repeated (0 when none): OpenSSL must be asked
 * again for the same bytes, which stay at out's start.  Returns TLS_DONE
 * (out is empty), TLS_WANT_WRITE, TLS_WANT_READ or TLS_FAILED (the error
 * is dropped). */
enum tls_status tls_write_out(struct ssl_st *ssl, struct evbuffer *out,
                              size_t *retry);

/* 1 when OpenSSL holds bytes of ssl's connection that no read returned
 * yet (decrypted, or records read ahead), else 0. */
int tls_buffered(struct ssl_st *ssl);

/* Calls on_bytes(arg) after each read that takes bytes from ssl's socket,
 * whether or not they complete a record: the connection's
 * request_timeout must start at the first encrypted byte of a request,
 * which tls_readv reports only once a whole record decrypted.  on_bytes
 * runs inside OpenSSL's read: it may only note the time (no I/O, no
 * freeing).  arg must outlive ssl.  Returns 0, or -1 (no callback). */
int tls_watch_reads(struct ssl_st *ssl, void (*on_bytes)(void *arg),
                    void *arg);

/* 1 when OpenSSL holds bytes of ssl's connection it could not decrypt yet
 * (a record not received whole), else 0. */
int tls_record_pending(struct ssl_st *ssl);

/* Sends the TLS close_notify alert on ssl's connection, best effort (the
 * socket may be full or gone), before the socket is shut down for
 * writing: the client then knows the stream ended where we meant it to. */
void tls_close_notify(struct ssl_st *ssl);

/* Describes ssl's connection into buf[len]: after a completed handshake
 * the protocol, cipher and client certificate subject (or "no client
 * certificate"); after a failure (failed set, right after the step that
 * failed), OpenSSL's reason, or "the client left" when there is none.
 * Returns buf. */
const char *tls_describe(struct ssl_st *ssl, int failed, char *buf,
                         size_t len);

/* "no", "yes" or "optional". */
const char *tls_auth_name(int auth);

#endif
