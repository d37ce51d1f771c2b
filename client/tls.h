/* client/tls.h - internal: TLS for cachifys:// URLs, shared by the sync
 * transport (sync_net.c) and the async one (async_net.c).
 *
 * Owns: one handle's TLS settings (struct ctls: an OpenSSL SSL_CTX built
 * once from the URL's options and kept for every connection and reconnect
 * of the handle), making an SSL for one connection with the server's name
 * or address to check, and the words of a TLS failure.  Does not own:
 * sockets, deadlines and the handshake, read and write loops (the
 * transports), or the URL's grammar (url.c).
 *
 * What is checked, always: TLS 1.2 or later; the server's certificate
 * chains to ca= (a PEM file, or a directory of hashed certificates) or,
 * without ca=, to the system's default CAs; it names the host of the URL
 * (or servername=): a DNS name (without the trailing dot of its absolute
 * form) is matched against the certificate's names and sent as SNI, an IP
 * address is matched against its IP addresses and never sent.  There is
 * no option to skip a check.  A client certificate (cert= and key=) is
 * offered when the server asks for one.  Encrypted keys are refused rather
 * than prompted for: a library must never read the terminal.
 */
#ifndef CACHIFY_CLIENT_TLS_H
#define CACHIFY_CLIENT_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "client/url.h"

struct bufferevent;
struct event_base;
struct ctls;

/* Builds the settings of u (a cachifys:// URL): loads its CA, client
 * certificate and key.  CACHIFY_OK with *out; CACHIFY_ERR_ARG when a file
 * cannot be used (the message names it and gives the system's or
 * OpenSSL's reason); CACHIFY_ERR_NOMEM.  Free with ctls_free. */
int ctls_new(struct ctls **out, const struct cachify_url *u, char *err,
             size_t errlen);

/* Frees t; NULL is a no-op.  No SSL made from t may outlive it. */
void ctls_free(struct ctls *t);

/* A new client-side SSL for one connection of t, with the checks above
 * set, writing to the connected socket fd with MSG_NOSIGNAL (so a peer
 * that went away costs EPIPE, never SIGPIPE).  NULL when out of memory.
 * The caller frees it with SSL_free (the socket stays open). */
SSL *ctls_ssl_new(const struct ctls *t, int fd);

/* A bufferevent that will run the TLS handshake on the socket that
 * bufferevent_socket_connect (or _connect_hostname) gives it, then
 * carries the plain bytes; its event callback sees BEV_EVENT_CONNECTED
 * once the handshake is done.  A close by the server without TLS's
 * close_notify is BEV_EVENT_EOF, as on a plain socket: replies are framed,
 * so a cut one is seen anyway.  NULL when out of memory. */
struct bufferevent *ctls_bufferevent_new(const struct ctls *t,
                                         struct event_base *base);

/* Why a TLS call on ssl failed, into buf[n]: "certificate verify
 * failed: <why>" when the server's certificate was refused, else the
 * reason of the OpenSSL error e (0: none; the caller takes it from the
 * error queue or the bufferevent), else sys_errno's text, else "the
 * server closed the connection".  Returns 1 when the reason is TLS's own
 * (a certificate, an alert, a protocol error), 0 when it is the socket's
 * (sys_errno or an end of file). */
int ctls_reason(SSL *ssl, unsigned long e, int sys_errno, char *buf,
                size_t n);

/* 1 when e is an OpenSSL error code with a reason to show. */
int ctls_has_reason(unsigned long e);

/* The first error in OpenSSL's queue of this thread that has a reason
 * (0: none), and the queue emptied: what ctls_reason takes as e. */
unsigned long ctls_take_error(void);

/* Sends close_notify once, without waiting (best effort: the socket is
 * about to close).  Call only on an SSL whose handshake ended and that
 * never failed (OpenSSL forbids it after a fatal error). */
void ctls_close_notify(SSL *ssl);

#endif
