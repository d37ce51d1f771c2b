/* tests/integration/tls_itest.h - the daemon with its TLS port and an
 * OpenSSL client, for the TLS suites test_tls.c and test_tls_hostile.c
 * (each its own program, so the helpers are static and live here, as
 * hardening.h's do).
 *
 * Owns: starting the daemon with tls_port and certificates made fresh
 * per test (tests/support/testcerts.h), a blocking OpenSSL client over a
 * socket with the harness's read timeouts (open, send, read exact bytes,
 * a reply line, a token, "was it refused"), and STATS read over a plain
 * connection of its own.  Does not own: the tests, the daemon's clean-up
 * on failure (tests/support/itest_common.h).
 */
#ifndef CACHIFY_TESTS_TLS_ITEST_H
#define CACHIFY_TESTS_TLS_ITEST_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tests/integration/hardening.h"
#include "tests/support/testcerts.h"

static struct test_certs g_tc;
static int g_tls_port;

/* ---- the daemon ---- */

/* srv_init, certificates in DIR/certs and a free port for TLS. */
static inline void tls_init(void)
{
    char dir[200];
    srv_init();
    snprintf(dir, sizeof dir, "%s/certs", g_ts.dir);
    ck_assert_int_eq(tcert_make(&g_tc, dir), 0);
    do
        g_tls_port = ts_free_port();
    while (g_tls_port == g_ts.port);
    ck_assert_int_gt(g_tls_port, 0);
}

/* Starts the daemon with the TLS port, the test certificates and
 * tls_auth_clients auth, then up to 4 more arguments (NULL-ended). */
static inline void start_tls(const char *auth, const char *a1,
                             const char *a2, const char *a3,
                             const char *a4)
{
    static char port[16];
    tls_init();
    snprintf(port, sizeof port, "%d", g_tls_port);
    const char *args[] = { "--tls-port", port,
                           "--tls-cert-file", g_tc.server_crt,
                           "--tls-key-file", g_tc.server_key,
                           "--tls-ca-cert-file", g_tc.ca,
                           "--tls-auth-clients", auth,
                           a1, a2, a3, a4, NULL };
    srv_run(args);
}

/* ---- an OpenSSL client ---- */

struct tls_client {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

static inline void tls_drop(struct tls_client *cl)
{
    if (cl->ssl)
        SSL_free(cl->ssl);
    if (cl->ctx)
        SSL_CTX_free(cl->ctx);
    if (cl->fd >= 0)
        close(cl->fd);
    cl->ssl = NULL;
    cl->ctx = NULL;
    cl->fd = -1;
}

/* Shakes hands over fd, connected to the TLS port: the server's certificate
 * must chain to ca and name 127.0.0.1; cert and key (both or neither) are
 * the client's; old_only offers TLS 1.0 and 1.1 alone.  Returns 0, or -1
 * when the handshake failed (then cl holds nothing).  Under TLS 1.3 the
 * server judges the client's certificate after the client's handshake
 * ended: see tls_refused. */
static inline int tls_open_fd(struct tls_client *cl, int fd,
                              const char *ca, const char *cert,
                              const char *key, int old_only)
{
    cl->fd = fd;
    ck_assert_int_ge(cl->fd, 0);
    cl->ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(cl->ctx);
    if (old_only) {
        /* OpenSSL 3 refuses TLS 1.1 itself at its default security level. */
        SSL_CTX_set_security_level(cl->ctx, 0);
        SSL_CTX_set_min_proto_version(cl->ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(cl->ctx, TLS1_1_VERSION);
        SSL_CTX_set_cipher_list(cl->ctx, "DEFAULT:@SECLEVEL=0");
    }
    ck_assert_int_eq(SSL_CTX_load_verify_locations(cl->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(cl->ctx, SSL_VERIFY_PEER, NULL);
    if (cert) {
        ck_assert_int_eq(SSL_CTX_use_certificate_file(cl->ctx, cert,
                                                      SSL_FILETYPE_PEM), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(cl->ctx, key,
                                                     SSL_FILETYPE_PEM), 1);
    }
    cl->ssl = SSL_new(cl->ctx);
    ck_assert_ptr_nonnull(cl->ssl);
    ck_assert_int_eq(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cl->ssl),
                                                   "127.0.0.1"), 1);
    SSL_set_fd(cl->ssl, cl->fd);
    if (SSL_connect(cl->ssl) != 1) {
        ERR_clear_error();
        tls_drop(cl);
        return -1;
    }
    return 0;
}

static inline int tls_open(struct tls_client *cl, const char *ca,
                           const char *cert, const char *key,
                           int old_only)
{
    struct test_server t = g_ts;
    t.port = g_tls_port;
    return tls_open_fd(cl, tc_connect(&t), ca, cert, key, old_only);
}

/* tls_open that must succeed. */
static inline void tls_open_ok(struct tls_client *cl, const char *ca,
                               const char *cert, const char *key)
{
    REQUIRE(tls_open(cl, ca, cert, key, 0) == 0, "TLS handshake failed");
}

static inline void tls_say(struct tls_client *cl, const char *s, size_t n)
{
    while (n > 0) {
        int w = SSL_write(cl->ssl, s, n > 65536 ? 65536 : (int)n);
        REQUIRE(w > 0, "SSL_write failed (%d)", SSL_get_error(cl->ssl, w));
        s += w;
        n -= (size_t)w;
    }
}

#define TSAY(cl, s) tls_say((cl), (s), strlen(s))

/* Reads exactly n bytes; 0, or -1 at a close, an error or the timeout. */
static inline int tls_read_n(struct tls_client *cl, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got;
        int r = SSL_read(cl->ssl, buf + got, want > 65536 ? 65536 : (int)want);
        if (r <= 0) {
            ERR_clear_error();
            return -1;
        }
        got += (size_t)r;
    }
    return 0;
}

#define TEXPECT(cl, s) tls_expect((cl), (s), __LINE__)

static inline void tls_expect(struct tls_client *cl, const char *want,
                              int line)
{
    static char got[4096];
    size_t n = strlen(want);
    ck_assert_uint_lt(n, sizeof got);
    REQUIRE(tls_read_n(cl, got, n) == 0, "line %d: no \"%s\" over TLS",
            line, itest_esc(want));
    REQUIRE(memcmp(got, want, n) == 0, "line %d: expected \"%s\", got \"%s\"",
            line, itest_esc(want), itest_escn(got, n));
}

/* One reply line (up to CRLF, at most cap - 1 bytes) into buf. */
static inline void tls_line(struct tls_client *cl, char *buf,
                            size_t cap)
{
    size_t n = 0;
    for (;;) {
        REQUIRE(n + 1 < cap, "reply line too long");
        REQUIRE(tls_read_n(cl, buf + n, 1) == 0, "no reply over TLS");
        n++;
        if (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n')
            break;
    }
    buf[n] = '\0';
}

/* ":<token>\r\n" as a number. */
static inline long long tls_token(struct tls_client *cl)
{
    char line[128];
    tls_line(cl, line, sizeof line);
    REQUIRE(line[0] == ':', "expected a token, got \"%s\"", itest_esc(line));
    return strtoll(line + 1, NULL, 10);
}

/* 1 when the server refuses the connection: under TLS 1.3 a client
 * certificate is judged after the client's side of the handshake, so the
 * refusal comes as an alert where the first reply would be. */
static inline int tls_refused(struct tls_client *cl)
{
    char buf[8];
    if (SSL_write(cl->ssl, "PING\r\n", 6) != 6) {
        ERR_clear_error();
        return 1;
    }
    if (tls_read_n(cl, buf, 7) != 0)
        return 1;
    REQUIRE(memcmp(buf, "+PONG\r\n", 7) == 0, "PING: \"%s\"",
            itest_escn(buf, 7));
    return 0;
}

/* A STATS member read over a plain connection of its own. */
static inline long long plain_stat(const char *key)
{
    int fd = conn_new();
    long long v = stat1(fd, key);
    close(fd);
    return v;
}

static inline long long plain_stat_poll(const char *key, long long want)
{
    int fd = conn_new();
    long long v = stat_poll(fd, key, want, slow_mode() ? 60 : 20);
    close(fd);
    return v;
}

#endif
