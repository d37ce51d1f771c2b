/* client/tls.c - TLS settings and TLS errors for cachifys:// (implements
 * client/tls.h).
 *
 * Owns: the SSL_CTX of a handle and what goes into it (minimum version,
 * verification, the CA, the client certificate), the per-connection host
 * or address check and SNI, the socket BIO that writes with MSG_NOSIGNAL,
 * and turning OpenSSL's errors into a sentence.  Does no I/O itself
 * except ctls_close_notify's one write.
 *
 * Each handle has its own SSL_CTX: nothing here is global, so handles in
 * different threads share nothing (OpenSSL 1.1+ initialises itself and
 * locks its own tables).
 */
#include "client/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "client/cachify.h"

struct ctls {
    SSL_CTX *ctx;
    /* The socket BIO of OpenSSL with its write replaced (nosig_write):
     * made per handle, freed with it. */
    BIO_METHOD *bio;
    /* What the server's certificate must name: the URL's host or its
     * servername=; an IP address (is_ip) or a DNS name (also sent as
     * SNI).  An IPv6 address is kept without its "%zone". */
    char name[CACHIFY_URL_HOST_MAX + 1];
    int is_ip;
};

/* OpenSSL's socket BIO writes with write(2): a peer that closed would
 * raise SIGPIPE in the caller's process, which the sync API promises not
 * to do (its plain sockets send with MSG_NOSIGNAL).  This is the same
 * write through send(2) with MSG_NOSIGNAL, and the same retry rules. */
static int nosig_write(BIO *b, const char *in, int inl)
{
    int fd = (int)BIO_get_fd(b, NULL);
    ssize_t w;

    BIO_clear_retry_flags(b);
    if (inl <= 0)
        return 0;
    w = send(fd, in, (size_t)inl, MSG_NOSIGNAL);
    if (w < 0 && BIO_sock_should_retry((int)w))
        BIO_set_retry_write(b);
    return (int)w;
}

/* Refuses an encrypted key instead of letting OpenSSL prompt on the
 * terminal (its default when no callback is set). */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

int ctls_has_reason(unsigned long e)
{
    /* libevent also queues SSL_get_error's small codes (1, 5): library
     * 0, not errors of OpenSSL's. */
    return e != 0 && (ERR_SYSTEM_ERROR(e) || ERR_GET_LIB(e) != 0) &&
           ERR_reason_error_string(e) != NULL;
}

unsigned long ctls_take_error(void)
{
    unsigned long e, first = 0;

    while ((e = ERR_get_error()) != 0)
        if (first == 0 && ctls_has_reason(e))
            first = e;
    return first;
}

/* "<what> <path>: <OpenSSL's reason>" into err, and CACHIFY_ERR_ARG. */
static int load_failed(const char *what, const char *path, char *err,
                       size_t errlen)
{
    unsigned long e = ctls_take_error();
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

    snprintf(err, errlen, "cachifys: cannot use the %s %s: %s", what, path,
             why != NULL ? why : "unknown OpenSSL error");
    return CACHIFY_ERR_ARG;
}

/* stat(path) into *st, or CACHIFY_ERR_ARG with the system's reason: "No
 * such file or directory" says more than OpenSSL's "system lib". */
static int stat_file(const char *what, const char *path, struct stat *st,
                     char *err, size_t errlen)
{
    if (stat(path, st) == 0)
        return CACHIFY_OK;
    snprintf(err, errlen, "cachifys: cannot use the %s %s: %s", what, path,
             strerror(errno));
    return CACHIFY_ERR_ARG;
}

/* Loads the CA (a file, or a hashed directory) or the system's defaults. */
static int load_ca(SSL_CTX *ctx, const char *ca, char *err, size_t errlen)
{
    struct stat st;

    if (ca[0] == '\0') {
        if (SSL_CTX_set_default_verify_paths(ctx) != 1)
            return load_failed("system's CA", "store", err, errlen);
        return CACHIFY_OK;
    }
    if (stat_file("CA", ca, &st, err, errlen) != CACHIFY_OK)
        return CACHIFY_ERR_ARG;
    if (SSL_CTX_load_verify_locations(ctx, S_ISDIR(st.st_mode) ? NULL : ca,
                                      S_ISDIR(st.st_mode) ? ca : NULL) != 1)
        return load_failed("CA", ca, err, errlen);
    return CACHIFY_OK;
}

/* Loads the client certificate (with its chain) and its key, and checks
 * that they belong together. */
static int load_client_cert(SSL_CTX *ctx, const struct cachify_url_tls *o,
                            char *err, size_t errlen)
{
    struct stat st;

    if (o->cert[0] == '\0')
        return CACHIFY_OK;
    if (stat_file("client certificate", o->cert, &st, err, errlen) != 0 ||
        stat_file("client key", o->key, &st, err, errlen) != 0)
        return CACHIFY_ERR_ARG;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
        return load_failed("client certificate", o->cert, err, errlen);
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1)
        return load_failed("client key", o->key, err, errlen);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return load_failed("client key", o->key, err, errlen);
    return CACHIFY_OK;
}

/* The BIO method of nosig_write: OpenSSL's socket BIO but for its write. */
static BIO_METHOD *nosig_method(void)
{
    const BIO_METHOD *sock = BIO_s_socket();
    int type = BIO_get_new_index();
    BIO_METHOD *m;

    if (type < 0)
        return NULL;
    m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                     "cachify socket");
    if (m == NULL)
        return NULL;
    if (BIO_meth_set_write(m, nosig_write) != 1 ||
        BIO_meth_set_read(m, BIO_meth_get_read(sock)) != 1 ||
        BIO_meth_set_puts(m, BIO_meth_get_puts(sock)) != 1 ||
        BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(sock)) != 1 ||
        BIO_meth_set_create(m, BIO_meth_get_create(sock)) != 1 ||
        BIO_meth_set_destroy(m, BIO_meth_get_destroy(sock)) != 1) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* The name to check: servername= or the host, without an IPv6 zone, and
 * a DNS name without the trailing dot of its absolute form
 * ("locks.example.com."): certificates never carry the dot, OpenSSL's
 * match does not drop it, and SNI is sent without it (RFC 6066, 3).  A
 * lone "." stays, and matches no certificate. */
static void set_name(struct ctls *t, const struct cachify_url *u)
{
    const char *src = u->tlsopt.servername[0] ? u->tlsopt.servername
                                               : u->host;
    unsigned char addr[sizeof(struct in6_addr)];
    size_t len;
    char *zone;

    snprintf(t->name, sizeof t->name, "%s", src);
    zone = strchr(t->name, '%');
    if (zone != NULL && strchr(t->name, ':') != NULL)
        *zone = '\0';
    t->is_ip = inet_pton(AF_INET, t->name, addr) == 1 ||
               inet_pton(AF_INET6, t->name, addr) == 1;
    len = strlen(t->name);
    if (!t->is_ip && len > 1 && t->name[len - 1] == '.')
        t->name[len - 1] = '\0';
}

int ctls_new(struct ctls **out, const struct cachify_url *u, char *err,
             size_t errlen)
{
    struct ctls *t = calloc(1, sizeof *t);
    int rc = CACHIFY_OK;

    *out = NULL;
    ERR_clear_error(); /* only this call's errors may be reported */
    if (t == NULL || (t->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
        (t->bio = nosig_method()) == NULL) {
        ctls_free(t);
        snprintf(err, errlen, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    set_name(t, u);
    SSL_CTX_set_default_passwd_cb(t->ctx, no_password);
    if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION) != 1)
        rc = load_failed("minimum version", "TLS 1.2", err, errlen);
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A server that closes without close_notify (a restart, its idle
     * timeout, a crash) reads as a close, as on a plain socket, not as a
     * protocol error (OpenSSL 3; libevent 2.1 would call it an error even
     * with dirty shutdowns allowed).  No reply is taken as whole because
     * of it: replies are framed, and a close fails the call in flight. */
    SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (rc == CACHIFY_OK)
        rc = load_ca(t->ctx, u->tlsopt.ca, err, errlen);
    if (rc == CACHIFY_OK)
        rc = load_client_cert(t->ctx, &u->tlsopt, err, errlen);
    if (rc != CACHIFY_OK) {
        ctls_free(t);
        return rc;
    }
    *out = t;
    return CACHIFY_OK;
}

void ctls_free(struct ctls *t)
{
    if (t == NULL)
        return;
    SSL_CTX_free(t->ctx);
    if (t->bio != NULL)
        BIO_meth_free(t->bio);
    free(t);
}

/* A new SSL of t with the name check (and SNI) set; no BIO yet. */
static SSL *ssl_new(const struct ctls *t)
{
    SSL *ssl = SSL_new(t->ctx);
    int ok;

    if (ssl == NULL)
        return NULL;
    if (t->is_ip) {
        ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), t->name);
    } else {
        /* "*.example.com" matches one label, never "a.b.example.com". */
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl, t->name) == 1 &&
             SSL_set_tlsext_host_name(ssl, t->name) == 1;
    }
    if (!ok) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    return ssl;
}

SSL *ctls_ssl_new(const struct ctls *t, int fd)
{
    SSL *ssl = ssl_new(t);
    BIO *b = ssl != NULL ? BIO_new(t->bio) : NULL;

    if (b == NULL) {
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_fd(b, fd, BIO_NOCLOSE);
    SSL_set_bio(ssl, b, b);
    return ssl;
}

struct bufferevent *ctls_bufferevent_new(const struct ctls *t,
                                         struct event_base *base)
{
    SSL *ssl = ssl_new(t);
    struct bufferevent *bev;

    if (ssl == NULL)
        return NULL;
    /* Frees ssl itself when it fails (BEV_OPT_CLOSE_ON_FREE). */
    bev = bufferevent_openssl_socket_new(base, -1, ssl,
                                         BUFFEREVENT_SSL_CONNECTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

int ctls_reason(SSL *ssl, unsigned long e, int sys_errno, char *buf,
                size_t n)
{
    long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
    const char *why = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (v != X509_V_OK) {
        snprintf(buf, n, "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        return 1;
    }
    if (why != NULL) {
        snprintf(buf, n, "%s", why);
        return 1;
    }
    snprintf(buf, n, "%s", sys_errno != 0 ? strerror(sys_errno)
                                          : "the server closed the "
                                            "connection");
    return 0;
}

void ctls_close_notify(SSL *ssl)
{
    if (ssl != NULL && SSL_is_init_finished(ssl))
        SSL_shutdown(ssl);
    ERR_clear_error(); /* a refused write leaves errors: not ours to keep */
}
