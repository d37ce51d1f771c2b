/* daemon/tls.c - the OpenSSL context and TLS sessions (see tls.h).
 *
 * The private key is read here rather than by SSL_CTX_use_PrivateKey_file
 * so that a key that does not belong to the certificate is reported as
 * that (OpenSSL's own loader drops the certificate and leaves only "no
 * certificate assigned"), and so that an encrypted key fails at once
 * instead of asking for a passphrase on a terminal the daemon may not
 * have.  Files are opened once with fopen first, so a missing or
 * unreadable file is named with the system's reason.  Paths are quoted
 * back as config.c quotes values (config_quote): a conf file may hold
 * anything.
 *
 * A connection's SSL reads and writes its socket itself (a socket BIO,
 * with read-ahead); conn.c and conn_tls.c call it from the daemon's own
 * read and write events, and say when it needs the socket readable or
 * writable (tls_status).  A client that closes its socket without TLS's close_notify
 * ends its stream as an EOF, as a plain client's close does (a "dirty"
 * shutdown; OpenSSL 3 needs SSL_OP_IGNORE_UNEXPECTED_EOF for it): every
 * request and reply is framed, so a cut stream cannot pass for a shorter
 * one.
 */
#include "daemon/tls.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/uio.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/server.h"

/* OpenSSL's longest error string is under 256 bytes. */
#define REASON_MAX 256

/* The session ID context OpenSSL needs before it resumes sessions of
 * clients whose certificates it verified; any fixed bytes will do. */
static const unsigned char session_context[] = "cachifyd";

static const char *const auth_names[] = { "no", "yes", "optional" };

const char *tls_auth_name(int auth)
{
    return auth >= 0 && auth < 3 ? auth_names[auth] : "unknown";
}

/* The first error OpenSSL queued (the cause; later ones say what gave up
 * because of it), and the queue is emptied. */
static const char *ssl_reason(char buf[REASON_MAX])
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, REASON_MAX, "no reason given");
    else
        ERR_error_string_n(e, buf, REASON_MAX);
    ERR_clear_error();
    return buf;
}

/* 0 when path can be opened for reading, else -1 with the reason. */
static int readable(const char *key, const char *path, char *err,
                    size_t errlen)
{
    char q[CONFIG_QUOTE_BUF];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s: cannot open: %s", key,
            config_quote(q, path, 0), strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

/* A PEM passphrase callback that has none: an encrypted key fails to load
 * instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static int load_key(SSL_CTX *ctx, const struct cachify_config *c, char *err,
                    size_t errlen)
{
    char q[CONFIG_QUOTE_BUF], q2[CONFIG_QUOTE_BUF], why[REASON_MAX];
    if (readable("tls_key_file", c->tls_key_file, err, errlen) != 0)
        return -1;
    BIO *bio = BIO_new_file(c->tls_key_file, "r");
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase,
                                                  NULL)
                        : NULL;
    BIO_free(bio);
    if (key == NULL) {
        snprintf(err, errlen, "tls_key_file: %s: cannot load the private "
            "key (PEM, not encrypted): %s",
            config_quote(q, c->tls_key_file, 0), ssl_reason(why));
        return -1;
    }
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    int rc = -1;
    if (leaf == NULL || X509_check_private_key(leaf, key) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "tls_key_file: %s is not the key of the "
            "certificate in tls_cert_file %s",
            config_quote(q, c->tls_key_file, 0),
            config_quote(q2, c->tls_cert_file, 0));
    } else if (SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
               SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "tls_key_file: %s: cannot use the private "
            "key: %s", config_quote(q, c->tls_key_file, 0), ssl_reason(why));
    } else {
        rc = 0;
    }
    EVP_PKEY_free(key);
    return rc;
}

/* Client certificates: the CA file is what they must chain to, and its
 * names are sent to the client to pick a certificate by. */
static int load_ca(SSL_CTX *ctx, const struct cachify_config *c, char *err,
                   size_t errlen)
{
    char q[CONFIG_QUOTE_BUF], why[REASON_MAX];
    const char *ca = c->tls_ca_cert_file;
    if (ca[0] == '\0') {
        if (c->tls_auth_clients == TLS_AUTH_NO)
            return 0;
        snprintf(err, errlen, "tls_ca_cert_file: not set, but "
            "tls_auth_clients is %s: client certificates need a CA to be "
            "checked against (or set tls_auth_clients no)",
            tls_auth_name(c->tls_auth_clients));
        return -1;
    }
    if (readable("tls_ca_cert_file", ca, err, errlen) != 0)
        return -1;
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        snprintf(err, errlen, "tls_ca_cert_file: %s: cannot load the CA "
            "certificates (PEM): %s", config_quote(q, ca, 0), ssl_reason(why));
        return -1;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
    if (names == NULL) {
        snprintf(err, errlen, "tls_ca_cert_file: %s: no CA certificate "
            "names in it: %s", config_quote(q, ca, 0), ssl_reason(why));
        return -1;
    }
    SSL_CTX_set_client_CA_list(ctx, names); /* takes names */
    return 0;
}

struct ssl_ctx_st *tls_ctx_new(const struct cachify_config *c, char *err,
                               size_t errlen)
{
    char q[CONFIG_QUOTE_BUF], why[REASON_MAX];
    ERR_clear_error();
    if (c->tls_cert_file[0] == '\0' || c->tls_key_file[0] == '\0') {
        snprintf(err, errlen, "%s: not set, and tls_port needs a certificate "
            "and its key", c->tls_cert_file[0] == '\0' ? "tls_cert_file"
                                                      : "tls_key_file");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "TLS: cannot create a context: %s",
            ssl_reason(why));
        return NULL;
    }
    /* TLS 1.2 and 1.3 only; compression (CRIME) and renegotiation (a
     * client-driven CPU cost, and nothing here needs it) are off. */
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        snprintf(err, errlen, "TLS: cannot require TLS 1.2: %s",
            ssl_reason(why));
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    /* A client's TCP close without close_notify (nc -N, shutdown(2)) is
     * the end of its stream, as on the plain port (TLS_END).  Without
     * this OpenSSL 3 calls it a fatal error, and the connection would be
     * dropped at once: replies still owed (an ACQUIRE's token) would be
     * lost, and no close_notify could follow. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    /* tls_write_out may hand SSL_write its data again from a moved
     * buffer after a WANT_WRITE (evbuffer_pullup); idle connections
     * give their read and write buffers (about 34 KiB each) back, which
     * matters at 10,000 clients. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_session_id_context(ctx, session_context,
                                       sizeof session_context - 1) != 1) {
        snprintf(err, errlen, "TLS: cannot set the session context: %s",
            ssl_reason(why));
        goto fail;
    }
    if (readable("tls_cert_file", c->tls_cert_file, err, errlen) != 0)
        goto fail;
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert_file) != 1) {
        snprintf(err, errlen, "tls_cert_file: %s: cannot load the "
            "certificate chain (PEM, server certificate first): %s",
            config_quote(q, c->tls_cert_file, 0), ssl_reason(why));
        goto fail;
    }
    if (load_key(ctx, c, err, errlen) != 0 || load_ca(ctx, c, err, errlen) != 0)
        goto fail;
    int mode = SSL_VERIFY_NONE;
    if (c->tls_auth_clients == TLS_AUTH_YES)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else if (c->tls_auth_clients == TLS_AUTH_OPTIONAL)
        mode = SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx, mode, NULL);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void tls_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

int tls_config_check(const struct cachify_config *c, char *err, size_t errlen)
{
    if (c->tls_port == 0)
        return 0;
    if (c->tls_port == c->port || c->tls_port == c->metrics_port) {
        snprintf(err, errlen, "tls_port (%d) is %s too", c->tls_port,
            c->tls_port == c->port ? "port" : "metrics_port");
        return -1;
    }
    SSL_CTX *ctx = tls_ctx_new(c, err, errlen);
    if (ctx == NULL)
        return -1;
    SSL_CTX_free(ctx);
    return 0;
}

int tls_reload(struct server *srv)
{
    char err[512];
    if (srv->tls_ctx == NULL)
        return 0;
    SSL_CTX *ctx = tls_ctx_new(srv->config, err, sizeof err);
    if (ctx == NULL) {
        log_msg(LOG_ERROR, "config reload: TLS: keeping the running "
                "certificate, key and CA: %s", err);
        return -1;
    }
    /* Open connections hold their own reference to the old context. */
    SSL_CTX_free(srv->tls_ctx);
    srv->tls_ctx = ctx;
    log_msg(LOG_WARNING, "config reload: TLS: certificate, key and CA "
            "files read again; new connections use them "
            "(tls_auth_clients %s)",
            tls_auth_name(srv->config->tls_auth_clients));
    return 0;
}

struct ssl_st *tls_session_new(struct ssl_ctx_st *ctx, int fd)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        SSL_free(ssl); /* SSL_set_fd's socket BIO never closes fd */
        ERR_clear_error();
        return NULL;
    }
    SSL_set_accept_state(ssl);
    /* One read() per request: OpenSSL otherwise reads a record's 5-byte
     * header and then its body, two system calls for every request. */
    SSL_set_read_ahead(ssl, 1);
    return ssl;
}

void tls_session_free(struct ssl_st *ssl)
{
    SSL_free(ssl);
}

/* What SSL_get_error says about a step that returned rc <= 0. */
static enum tls_status step_status(SSL *ssl, int rc)
{
    switch (SSL_get_error(ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        return TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return TLS_END;
    case SSL_ERROR_SYSCALL:
        /* No queued error and no errno (cleared before each step): the
         * peer's EOF, where OpenSSL does not make it ZERO_RETURN. */
        return ERR_peek_error() == 0 && errno == 0 ? TLS_END : TLS_FAILED;
    default:
        return TLS_FAILED;
    }
}

enum tls_status tls_handshake(struct ssl_st *ssl)
{
    ERR_clear_error(); /* SSL_get_error reads the queue */
    errno = 0;
    int rc = SSL_do_handshake(ssl);
    return rc == 1 ? TLS_DONE : step_status(ssl, rc);
}

enum tls_status tls_readv(struct ssl_st *ssl, const struct iovec *iov,
                          int niov, size_t *got)
{
    *got = 0;
    for (int i = 0; i < niov; i++) {
        char *p = iov[i].iov_base;
        size_t room = iov[i].iov_len;
        while (room > 0) {
            /* Past the first bytes, go on only while OpenSSL holds bytes
             * of its own (SSL_has_pending: decrypted ones, or part of a
             * record it read ahead, whose rest SSL_read_ex may then read
             * from the socket in the same call); otherwise the socket is
             * read again at its next readable event.  So a readable event
             * costs one read() unless a record arrived split. */
            if (*got > 0 && !SSL_has_pending(ssl))
                return TLS_WANT_READ;
            size_t n = 0;
            ERR_clear_error();
            errno = 0;
            int rc = SSL_read_ex(ssl, p, room, &n);
            if (rc != 1) {
                enum tls_status st = step_status(ssl, rc);
                if (st == TLS_FAILED)
                    ERR_clear_error();
                return st;
            }
            p += n;
            room -= n;
            *got += n;
        }
    }
    return TLS_DONE;
}

/* The most tls_write_out hands SSL_write at once: one full record. */
#define TLS_WRITE_MAX (16u * 1024u)

enum tls_status tls_write_out(struct ssl_st *ssl, struct evbuffer *out,
                              size_t *retry)
{
    for (;;) {
        size_t len = *retry;
        if (len == 0) {
            len = evbuffer_get_length(out);
            if (len == 0)
                return TLS_DONE;
            if (len > TLS_WRITE_MAX)
                len = TLS_WRITE_MAX;
        }
        /* One record from many small replies; a copy only when they span
         * chains (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows a retry from
         * where the copy lands). */
        unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)len);
        if (p == NULL)
            return TLS_FAILED; /* out of memory */
        size_t n = 0;
        ERR_clear_error();
        errno = 0;
        if (SSL_write_ex(ssl, p, len, &n) != 1) {
            enum tls_status st = step_status(ssl, 0);
            if (st == TLS_FAILED || st == TLS_END) {
                ERR_clear_error();
                return TLS_FAILED;
            }
            *retry = len;
            return st;
        }
        *retry = 0;
        evbuffer_drain(out, n);
    }
}

int tls_buffered(struct ssl_st *ssl)
{
    return SSL_has_pending(ssl);
}

/* What tls_watch_reads keeps on the socket BIO (its callback argument). */
struct read_watch {
    void (*on_bytes)(void *arg);
    void *arg;
};

/* The socket BIO's callback: after each read that returned bytes. */
static long read_watch_cb(BIO *b, int oper, const char *argp, size_t len,
                          int argi, long argl, int ret, size_t *processed)
{
    (void)argp;
    (void)len;
    (void)argi;
    (void)argl;
    struct read_watch *w = (struct read_watch *)BIO_get_callback_arg(b);
    if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 &&
        processed != NULL && *processed > 0)
        w->on_bytes(w->arg);
    else if (oper == BIO_CB_FREE)
        cfy_free(w);
    return ret;
}

int tls_watch_reads(struct ssl_st *ssl, void (*on_bytes)(void *arg),
                    void *arg)
{
    BIO *rbio = SSL_get_rbio(ssl);
    struct read_watch *w = rbio != NULL ? cfy_malloc(sizeof *w) : NULL;
    if (w == NULL)
        return -1;
    w->on_bytes = on_bytes;
    w->arg = arg;
    /* Freed by the callback when the BIO goes (BIO_CB_FREE), with ssl. */
    BIO_set_callback_arg(rbio, (char *)w);
    BIO_set_callback_ex(rbio, read_watch_cb);
    return 0;
}

int tls_record_pending(struct ssl_st *ssl)
{
    return SSL_has_pending(ssl) && SSL_pending(ssl) == 0;
}

void tls_close_notify(struct ssl_st *ssl)
{
    if (SSL_is_init_finished(ssl))
        SSL_shutdown(ssl); /* one try: the socket is non-blocking */
    ERR_clear_error();
}

const char *tls_describe(struct ssl_st *ssl, int failed, char *buf,
                         size_t len)
{
    char why[REASON_MAX];
    if (failed) {
        unsigned long e = ERR_peek_error();
        long verify = SSL_get_verify_result(ssl);
        if (e != 0)
            ERR_error_string_n(e, why, sizeof why);
        if (verify != X509_V_OK)
            snprintf(buf, len, "%s (client certificate: %s)",
                e != 0 ? why : "handshake failed",
                X509_verify_cert_error_string(verify));
        else
            snprintf(buf, len, "%s", e != 0 ? why : "the client left");
        ERR_clear_error();
        return buf;
    }
    char subject[256] = "no client certificate";
    X509 *peer = SSL_get_peer_certificate(ssl);
    if (peer != NULL) {
        X509_NAME_oneline(X509_get_subject_name(peer), subject,
                          sizeof subject);
        X509_free(peer);
    }
    snprintf(buf, len, "%s %s, %s", SSL_get_version(ssl),
        SSL_get_cipher_name(ssl), subject);
    return buf;
}
