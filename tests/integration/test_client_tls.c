/* tests/integration/test_client_tls.c - Check suite: the client library
 * over TLS (cachifys://) against the real build/cachifyd with its TLS
 * listener.
 *
 * Owns: both APIs over TLS with a verified server certificate (acquire,
 * release, a waiting acquire, a SESSION lock, renewal, a reconnect after
 * the daemon restarts or closes an idle connection); what must be
 * refused, and how: a server certificate from another CA or none known to
 * the system, a name or address the certificate does not carry, a client
 * without a certificate (or with one from an unknown CA) when the daemon
 * asks for one (tls_auth_clients yes), bad URL options and files that
 * cannot be used; and hostile servers: the daemon's plain port (it answers
 * the TLS hello with text) and a socket that accepts and never answers,
 * both ending in an error within the connect timeout; sends over TLS to a
 * server that went away, which raise no SIGPIPE.  The certificates
 * are made fresh per test (tests/support/testcerts.h).  Does not own: the
 * calls' semantics (test_client_sync.c, test_client_async.c), the URL
 * grammar without TLS (those suites and test_etcd_url.c).
 */
#include "tests/integration/async_itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/wait.h>

#include "client/sync_net.h"
#include "client/url.h"
#include "tests/support/testcerts.h"

static struct test_certs g_tc;
static int g_tls_port;
static char g_tls_port_s[16];
/* The daemon's arguments, kept for a restart. */
static const char *g_args[24];

/* Starts the daemon with its TLS listener on a second free port, the
 * certificates made fresh in its directory, and client certificates asked
 * for as auth says ("yes", "no" or "optional"); more (NULL or
 * NULL-terminated) is added after. */
static void tls_start(const char *auth, const char *const *more)
{
    char dir[sizeof g_ts.dir + 8];
    size_t n = 0;

    srv_init();
    snprintf(dir, sizeof dir, "%s/certs", g_ts.dir);
    ck_assert_msg(tcert_make(&g_tc, dir) == 0, "cannot make certificates");
    g_tls_port = ts_free_port();
    ck_assert_int_gt(g_tls_port, 0);
    snprintf(g_tls_port_s, sizeof g_tls_port_s, "%d", g_tls_port);
    g_args[n++] = "--tls-port";
    g_args[n++] = g_tls_port_s;
    g_args[n++] = "--tls-cert-file";
    g_args[n++] = g_tc.server_crt;
    g_args[n++] = "--tls-key-file";
    g_args[n++] = g_tc.server_key;
    g_args[n++] = "--tls-ca-cert-file";
    g_args[n++] = g_tc.ca;
    g_args[n++] = "--tls-auth-clients";
    g_args[n++] = auth;
    for (; more != NULL && *more != NULL; more++) {
        ck_assert(n + 1 < sizeof g_args / sizeof g_args[0]);
        g_args[n++] = *more;
    }
    g_args[n] = NULL;
    srv_run(g_args);
}

/* A cachifys:// URL of the daemon's TLS port on host (NULL: 127.0.0.1)
 * with the query made of fmt ("" for none).  Two buffers in turn. */
__attribute__((format(printf, 2, 3)))
static const char *turl(const char *host, const char *fmt, ...)
{
    static char bufs[2][2048];
    static unsigned turn;
    char *b = bufs[turn++ % 2], q[1800];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    snprintf(b, sizeof bufs[0], "cachifys://%s:%d%s%s",
             host ? host : "127.0.0.1", g_tls_port, q[0] ? "?" : "", q);
    return b;
}

/* Generous timeouts: the daemon may run under valgrind. */
static const struct cachify_options g_opts = { 20000, 20000, 0, NULL, 0 };

static struct cachify *sopen(const char *url)
{
    struct cachify *c = NULL;
    char err[512];
    int rc = cachify_open(&c, url, &g_opts, err, sizeof err);

    ck_assert_msg(rc == CACHIFY_OK, "open %s: %s: %s", url,
                  cachify_status_name(rc), err);
    return c;
}

/* cachify_open that must fail with status; its message in err[n]. */
static void sopen_fails(const char *url, int status, char *err, size_t n)
{
    struct cachify *c = (struct cachify *)&c;
    int rc;

    err[0] = '\0';
    rc = cachify_open(&c, url, &g_opts, err, n);
    ck_assert_msg(rc == status, "open %s: %s (%s), want %s", url,
                  cachify_status_name(rc), err, cachify_status_name(status));
    ck_assert_ptr_null(c);
    ck_assert_msg(err[0] != '\0', "open %s: no message", url);
}

/* Any of the NULL-terminated words in s, for messages whose wording
 * depends on the TLS version or on timing (an alert, or the reset that
 * beat it). */
static int has_any(const char *s, const char *const *words)
{
    for (; *words != NULL; words++)
        if (strstr(s, *words) != NULL)
            return 1;
    return 0;
}

#define HAS_ANY(s, ...) has_any((s), (const char *const[]){ __VA_ARGS__, NULL })

static struct cachify_async *aopen(const char *url)
{
    struct cachify_async *ac = NULL;
    char err[512];
    int rc = cachify_async_open(&ac, g_base, url, &g_opts, err, sizeof err);

    ck_assert_msg(rc == CACHIFY_OK, "async open %s: %s", url, err);
    return ac;
}

/* The async acquire of key on url that must fail with CACHIFY_ERR_IO; its
 * message in r->err. */
static void async_refused(const char *url, struct rec *r)
{
    struct cachify_async *ac = aopen(url);

    CALL(cachify_async_acquire(ac, "refused", NULL, rec_tok, r));
    RUN_UNTIL(r->called);
    rec_check(r, CACHIFY_ERR_IO, url);
    cachify_async_close(ac);
}

static void finish(void)
{
    event_free(g_guard);
    event_base_free(g_base);
    srv_finish();
}

/* ---- the calls over TLS ---- */

START_TEST(sync_calls)
{
    struct cachify_lock_opts quick = { 1, 0, 300, 0, 0 };
    struct cachify_lock_opts wait = { 0, 15000, 5000, 0, 0 };
    struct cachify_lock_opts session = { 1, 0, 60000, 1, 0 };
    struct cachify *a, *b;
    uint64_t t1, t2, t3;
    long long ms = 0;

    tls_start("no", NULL);
    a = sopen(turl(NULL, "ca=%s", g_tc.ca));
    /* A DNS name: checked against the certificate's names, sent as SNI. */
    b = sopen(turl("localhost", "ca=%s", g_tc.ca));
    ck_assert_int_eq(cachify_acquire(a, "k", &quick, &t1), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(b, "k"), 1);
    ck_assert_int_eq(cachify_pttl(b, "k", &ms), CACHIFY_OK);
    ck_assert(ms > 0 && ms <= 300);
    ck_assert_int_eq(cachify_acquire(b, "k", NULL, &t2), CACHIFY_LOCKED);
    /* A wait the server answers when the lock expires. */
    ck_assert_int_eq(cachify_acquire(b, "k", &wait, &t2), CACHIFY_OK);
    ck_assert(t2 > t1);
    ck_assert_int_eq(cachify_release(a, "k", t1), 0);
    ck_assert_int_eq(cachify_release(b, "k", t2), 1);
    /* A SESSION lock ends with its handle's connection. */
    ck_assert_int_eq(cachify_acquire(a, "s", &session, &t3), CACHIFY_OK);
    ck_assert_int_eq(cachify_is_locked(b, "s"), 1);
    cachify_close(a);
    ck_assert_int_eq(cachify_acquire(b, "s", &wait, &t3), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(b, "s", t3), 1);
    cachify_close(b);
    finish();
}
END_TEST

START_TEST(async_calls)
{
    struct cachify_lock_opts session = { 1, 0, 60000, 1, 0 };
    struct cachify_lock_opts quick = { 1, 0, 300, 0, 0 };
    struct cachify_lock_opts wait = { 0, 15000, 5000, 0, 0 };
    struct cachify_async *a, *b;
    struct rec w = { 0 };
    uint64_t t1, t2;

    tls_start("no", NULL);
    a = aopen(turl(NULL, "ca=%s", g_tc.ca));
    b = aopen(turl("localhost", "ca=%s", g_tc.ca));
    t1 = take(a, "k", &quick);
    ck_assert_int_eq(IS_LOCKED(b, "k"), 1);
    /* A waiting acquire has a connection (and a handshake) of its own. */
    CALL(cachify_async_acquire(b, "k", &wait, rec_tok, &w));
    RUN_UNTIL(w.called);
    rec_check(&w, CACHIFY_OK, "waiter");
    ck_assert(w.token > t1);
    ck_assert_int_eq(rel(b, "k", w.token), 1);
    /* A SESSION lock lives on its own connection until released. */
    t2 = take(a, "s", &session);
    ck_assert_int_eq(IS_LOCKED(b, "s"), 1);
    ck_assert_int_eq(rel(a, "s", t2), 1);
    ck_assert_int_eq(IS_LOCKED(b, "s"), 0);
    take(a, "s", &session);
    cachify_async_close(a); /* ends the session: the lock goes */
    double deadline = mono_s() + bound_s();
    while (IS_LOCKED(b, "s") && mono_s() < deadline)
        run_for(0.02);
    ck_assert_int_eq(IS_LOCKED(b, "s"), 0);
    cachify_async_close(b);
    finish();
}
END_TEST

/* A renewer opens its own connection from the handle's URL: over TLS
 * too, with the same CA. */
START_TEST(renewal)
{
    /* Each renewal (a new connection's handshake first) has a third of
     * the lifetime: room for a daemon under valgrind. */
    long long exp = slow_mode() ? 6000 : 1500;
    struct cachify_lock_opts o = { 1, 0, exp, 0, 0 };
    struct cachify_renewer *r = NULL;
    struct cachify *c;
    uint64_t t;

    tls_start("yes", NULL);
    c = sopen(turl(NULL, "ca=%s&cert=%s&key=%s", g_tc.ca, g_tc.client_crt,
                   g_tc.client_key));
    ck_assert_int_eq(cachify_acquire(c, "r", &o, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_renewer_start(&r, c, "r", t, exp, NULL, NULL),
                     CACHIFY_OK);
    usleep((useconds_t)(exp * 2000)); /* two lifetimes */
    ck_assert_int_eq(cachify_is_locked(c, "r"), 1);
    ck_assert_int_eq(cachify_renewer_stop(r), CACHIFY_OK);
    ck_assert_int_eq(cachify_release(c, "r", t), 1);
    cachify_close(c);
    finish();
}
END_TEST

/* The daemon restarts: a call while it is down fails, the next one after
 * it is back reconnects (a new handshake with the same settings). */
START_TEST(reconnect)
{
    struct cachify *c;
    struct cachify_async *ac;
    struct rec q = { 0 };
    uint64_t t;
    char msg[512];

    tls_start("no", NULL);
    c = sopen(turl(NULL, "ca=%s", g_tc.ca));
    ac = aopen(turl(NULL, "ca=%s", g_tc.ca));
    ck_assert_int_eq(cachify_acquire(c, "a", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(IS_LOCKED(ac, "a"), 1);
    srv_stop();
    ck_assert_int_eq(cachify_is_locked(c, "a"), CACHIFY_ERR_IO);
    snprintf(msg, sizeof msg, "%s", cachify_errstr(c));
    ck_assert_msg(HAS_ANY(msg, "127.0.0.1", "closed", "reset"), "message: %s",
                  msg);
    CALL(cachify_async_is_locked(ac, "a", rec_val, &q));
    RUN_UNTIL(q.called);
    rec_check(&q, CACHIFY_ERR_IO, "while down");
    srv_run(g_args);
    ck_assert_int_eq(cachify_acquire(c, "a", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(IS_LOCKED(ac, "a"), 1);
    ck_assert_int_eq(cachify_release(c, "a", t), 1);
    cachify_async_close(ac);
    cachify_close(c);
    finish();
}
END_TEST

/* The daemon closes idle clients after 1 s: a sync handle notices before
 * its next request and reconnects without an error; records that carry
 * no data (TLS 1.3 session tickets) never count as unasked bytes. */
START_TEST(idle_close)
{
    struct cachify *c;
    uint64_t t;

    tls_start("no", (const char *const[]){ "--timeout", "1", NULL });
    c = sopen(turl(NULL, "ca=%s", g_tc.ca));
    ck_assert_int_eq(cachify_acquire(c, "i", NULL, &t), CACHIFY_OK);
    usleep(2500 * 1000);
    ck_assert_msg(cachify_is_locked(c, "i") == 1, "%s", cachify_errstr(c));
    ck_assert_int_eq(cachify_release(c, "i", t), 1);
    /* Right after a reply nothing is unread: no reconnect, no error. */
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK);
    cachify_close(c);
    finish();
}
END_TEST

/* ---- refused: the server's certificate ---- */

START_TEST(wrong_ca)
{
    struct rec r = { 0 };
    char err[512];

    tls_start("no", NULL);
    sopen_fails(turl(NULL, "ca=%s", g_tc.rogue_ca), CACHIFY_ERR_IO, err,
                sizeof err);
    ck_assert_msg(strstr(err, "certificate verify failed"), "%s", err);
    /* Without ca=: the system's CAs, which never signed the test CA. */
    sopen_fails(turl(NULL, "%s", ""), CACHIFY_ERR_IO, err, sizeof err);
    ck_assert_msg(strstr(err, "certificate verify failed"), "%s", err);
    async_refused(turl(NULL, "ca=%s", g_tc.rogue_ca), &r);
    ck_assert_msg(strstr(r.err, "TLS handshake") &&
                      strstr(r.err, "certificate verify failed"), "%s", r.err);
    finish();
}
END_TEST

START_TEST(name_mismatch)
{
    struct rec r = { 0 }, r2 = { 0 };
    char err[512];

    tls_start("no", NULL);
    /* The certificate names 127.0.0.1, ::1 and localhost only. */
    sopen_fails(turl(NULL, "ca=%s&servername=other.example", g_tc.ca),
                CACHIFY_ERR_IO, err, sizeof err);
    ck_assert_msg(strstr(err, "hostname mismatch"), "%s", err);
    sopen_fails(turl(NULL, "ca=%s&servername=127.0.0.2", g_tc.ca),
                CACHIFY_ERR_IO, err, sizeof err);
    ck_assert_msg(strstr(err, "IP address mismatch"), "%s", err);
    async_refused(turl(NULL, "ca=%s&servername=other.example", g_tc.ca), &r);
    ck_assert_msg(strstr(r.err, "hostname mismatch"), "%s", r.err);
    async_refused(turl(NULL, "ca=%s&servername=127.0.0.2", g_tc.ca), &r2);
    ck_assert_msg(strstr(r2.err, "IP address mismatch"), "%s", r2.err);
    /* The name it does carry passes, whatever address was dialled; in
     * its absolute form too (a trailing dot, as in a FQDN), which names
     * the same host. */
    cachify_close(sopen(turl(NULL, "ca=%s&servername=localhost", g_tc.ca)));
    cachify_close(sopen(turl(NULL, "ca=%s&servername=localhost.", g_tc.ca)));
    /* A dot alone names nothing: still checked, and refused. */
    sopen_fails(turl(NULL, "ca=%s&servername=.", g_tc.ca), CACHIFY_ERR_IO,
                err, sizeof err);
    ck_assert_msg(strstr(err, "hostname mismatch"), "%s", err);
    finish();
}
END_TEST

/* ---- refused: the client's certificate ---- */

START_TEST(client_certificates)
{
    const char *good = NULL;
    struct cachify_async *ac;
    struct rec r = { 0 }, r2 = { 0 };
    struct cachify *c;
    char err[512];
    uint64_t t;

    tls_start("yes", NULL);
    good = turl(NULL, "ca=%s&cert=%s&key=%s", g_tc.ca, g_tc.client_crt,
                g_tc.client_key);
    c = sopen(good);
    ck_assert_int_eq(cachify_acquire(c, "c", NULL, &t), CACHIFY_OK);
    ac = aopen(good);
    ck_assert_int_eq(IS_LOCKED(ac, "c"), 1);
    cachify_async_close(ac);
    ck_assert_int_eq(cachify_release(c, "c", t), 1);
    cachify_close(c);
    /* No certificate: refused at open (TLS 1.3 refuses it after the
     * client's handshake: the alert comes with the first reply, or a
     * reset beats it). */
    sopen_fails(turl(NULL, "ca=%s", g_tc.ca), CACHIFY_ERR_IO, err,
                sizeof err);
    ck_assert_msg(HAS_ANY(err, "certificate", "alert", "reset", "closed"),
                  "%s", err);
    /* One from a CA the daemon does not know. */
    sopen_fails(turl(NULL, "ca=%s&cert=%s&key=%s", g_tc.ca,
                     g_tc.rogue_client_crt, g_tc.rogue_client_key),
                CACHIFY_ERR_IO, err, sizeof err);
    ck_assert_msg(HAS_ANY(err, "unknown ca", "alert", "reset", "closed"),
                  "%s", err);
    async_refused(turl(NULL, "ca=%s", g_tc.ca), &r);
    ck_assert_msg(HAS_ANY(r.err, "certificate", "alert", "reset", "closed"),
                  "%s", r.err);
    async_refused(turl(NULL, "ca=%s&cert=%s&key=%s", g_tc.ca,
                       g_tc.rogue_client_crt, g_tc.rogue_client_key), &r2);
    ck_assert_msg(HAS_ANY(r2.err, "unknown ca", "alert", "reset", "closed"),
                  "%s", r2.err);
    finish();
}
END_TEST

/* tls_auth_clients optional: a client without a certificate gets in, one
 * with a good certificate too; one with a certificate from an unknown CA
 * does not. */
START_TEST(client_certificate_optional)
{
    struct cachify *c;
    char err[512];

    tls_start("optional", NULL);
    c = sopen(turl(NULL, "ca=%s", g_tc.ca));
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK);
    cachify_close(c);
    c = sopen(turl(NULL, "ca=%s&cert=%s&key=%s", g_tc.ca, g_tc.client_crt,
                   g_tc.client_key));
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK);
    cachify_close(c);
    sopen_fails(turl(NULL, "ca=%s&cert=%s&key=%s", g_tc.ca,
                     g_tc.rogue_client_crt, g_tc.rogue_client_key),
                CACHIFY_ERR_IO, err, sizeof err);
    ck_assert_msg(HAS_ANY(err, "unknown ca", "alert", "reset", "closed"),
                  "%s", err);
    finish();
}
END_TEST

/* ---- refused: the URL and its files, before any connection ---- */

START_TEST(bad_options)
{
    struct {
        const char *query, *want;
    } bad[] = {
        { "cafile=/x", "unknown option \"cafile\"" },
        { "ca=/x&ca=/y", "given twice" },
        { "ca=", "needs a value" },
        { "ca", "needs a value" },
        { "ca=/x&", "unknown option \"\"" },
        { "cert=/x", "both cert= and key=" },
        { "key=/x", "both cert= and key=" },
        { "ca=%zz", "escape" },
        { "ca=%00", "escape" },
        { "ca=%4", "escape" },
        { "servername=a/b", "servername" },
    };
    char err[512];
    struct cachify_async *ac = (struct cachify_async *)&ac;

    /* No daemon needed: nothing is connected.  The port is never used. */
    g_tls_port = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *u = turl(NULL, "%s", bad[i].query);

        sopen_fails(u, CACHIFY_ERR_ARG, err, sizeof err);
        ck_assert_msg(strstr(err, "bad URL") && strstr(err, bad[i].want),
                      "%s: %s", u, err);
        err[0] = '\0';
        ck_assert_int_eq(cachify_async_open(&ac, g_base, u, NULL, err,
                                            sizeof err), CACHIFY_ERR_ARG);
        ck_assert_ptr_null(ac);
        ck_assert_msg(strstr(err, bad[i].want), "async %s: %s", u, err);
    }
    /* Options belong to cachifys:// alone. */
    sopen_fails("cachify://127.0.0.1:1?ca=/x", CACHIFY_ERR_ARG, err,
                sizeof err);
    ck_assert_msg(strstr(err, "cachifys://"), "%s", err);
    /* The password never shows, even in a cachifys:// message. */
    sopen_fails("cachifys://:hunter2@127.0.0.1:1?bogus=1", CACHIFY_ERR_ARG,
                err, sizeof err);
    ck_assert_msg(strstr(err, "hunter2") == NULL, "%s", err);
    /* Too long for a file name. */
    {
        static char huge[CACHIFY_URL_FILE_MAX + 64];

        snprintf(huge, sizeof huge, "cachifys://h?ca=/");
        memset(huge + strlen(huge), 'p', CACHIFY_URL_FILE_MAX);
        huge[sizeof huge - 1] = '\0';
        sopen_fails(huge, CACHIFY_ERR_ARG, err, sizeof err);
        ck_assert_msg(strstr(err, "longer than"), "%s", err);
    }
    event_free(g_guard);
    event_base_free(g_base);
}
END_TEST

/* Files that cannot be used are refused at open, sync and async alike,
 * naming the file and the reason, whether or not a server is up. */
START_TEST(bad_files)
{
    struct {
        const char *what, *want;
        char query[1200];
    } bad[6];
    struct cachify_async *ac = (struct cachify_async *)&ac;
    char err[512], missing[300], ca_key[300];
    size_t n = 0;

    srv_init(); /* a directory for the certificates; no daemon */
    snprintf(missing, sizeof missing, "%s/certs", g_ts.dir);
    ck_assert_int_eq(tcert_make(&g_tc, missing), 0);
    snprintf(missing, sizeof missing, "%s/none.pem", g_ts.dir);
    snprintf(ca_key, sizeof ca_key, "%s/certs/ca.key", g_ts.dir);
    g_tls_port = g_ts.port; /* nobody listens there */
    bad[n].what = "missing CA";
    bad[n].want = "No such file";
    snprintf(bad[n++].query, sizeof bad[0].query, "ca=%s", missing);
    bad[n].what = "a key for a CA";
    bad[n].want = "the CA";
    snprintf(bad[n++].query, sizeof bad[0].query, "ca=%s", ca_key);
    bad[n].what = "missing certificate";
    bad[n].want = "No such file";
    snprintf(bad[n++].query, sizeof bad[0].query, "ca=%s&cert=%s&key=%s",
             g_tc.ca, missing, g_tc.client_key);
    bad[n].what = "missing key";
    bad[n].want = "No such file";
    snprintf(bad[n++].query, sizeof bad[0].query, "ca=%s&cert=%s&key=%s",
             g_tc.ca, g_tc.client_crt, missing);
    bad[n].what = "a key for another certificate";
    bad[n].want = "the client key";
    snprintf(bad[n++].query, sizeof bad[0].query, "ca=%s&cert=%s&key=%s",
             g_tc.ca, g_tc.client_crt, g_tc.rogue_client_key);
    bad[n].what = "a certificate that is not one";
    bad[n].want = "the client certificate";
    snprintf(bad[n++].query, sizeof bad[0].query, "ca=%s&cert=%s&key=%s",
             g_tc.ca, g_tc.client_key, g_tc.client_key);
    for (size_t i = 0; i < n; i++) {
        const char *u = turl(NULL, "%s", bad[i].query);

        sopen_fails(u, CACHIFY_ERR_ARG, err, sizeof err);
        ck_assert_msg(strstr(err, bad[i].want), "%s: %s", bad[i].what, err);
        err[0] = '\0';
        ck_assert_int_eq(cachify_async_open(&ac, g_base, u, NULL, err,
                                            sizeof err), CACHIFY_ERR_ARG);
        ck_assert_msg(strstr(err, bad[i].want), "async %s: %s", bad[i].what,
                      err);
    }
    /* The same good files work once a server is there. */
    ts_cleanup(&g_ts);
    event_free(g_guard);
    event_base_free(g_base);
}
END_TEST

/* ---- hostile servers ---- */

/* cachifys:// to the daemon's plain port: it takes the TLS hello for a
 * bad request and answers in text; the handshake fails at once, with the
 * reason, and the daemon lives on. */
START_TEST(plain_server)
{
    char url[600], err[512];
    struct rec r = { 0 };
    struct cachify *c;
    double t0;

    tls_start("no", NULL);
    snprintf(url, sizeof url, "cachifys://127.0.0.1:%d?ca=%s", g_ts.port,
             g_tc.ca);
    t0 = mono_s();
    sopen_fails(url, CACHIFY_ERR_IO, err, sizeof err);
    ck_assert_msg(strstr(err, "TLS handshake"), "%s", err);
    ck_assert_msg(mono_s() - t0 < 15, "took %.1f s", mono_s() - t0);
    async_refused(url, &r);
    ck_assert_msg(strstr(r.err, "TLS handshake"), "%s", r.err);
    /* And the other way round: plain text to the TLS port fails the
     * first call (a plain open sends nothing to fail on). */
    snprintf(url, sizeof url, "cachify://127.0.0.1:%d", g_tls_port);
    {
        struct cachify_options quick = { 2000, 2000, 0, NULL, 0 };
        int rc;

        c = NULL;
        rc = cachify_open(&c, url, &quick, err, sizeof err);
        if (rc == CACHIFY_OK) {
            rc = cachify_ping(c);
            cachify_close(c);
        }
        ck_assert_msg(rc == CACHIFY_ERR_IO || rc == CACHIFY_ERR_PROTO,
                      "plain PING to the TLS port: %s",
                      cachify_status_name(rc));
    }
    c = sopen(turl(NULL, "ca=%s", g_tc.ca));
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK);
    cachify_close(c);
    finish();
}
END_TEST

/* A server that accepts (the kernel's backlog does) and never answers:
 * the handshake ends with the connect timeout, sync and async.  2 s: the
 * TCP connect inside it must not time out, even with this process under
 * valgrind. */
START_TEST(silent_server)
{
    struct cachify_options o = { 2000, 2000, 0, NULL, 0 };
    struct sockaddr_in sa = { 0 };
    socklen_t sl = sizeof sa;
    struct cachify_async *ac = NULL;
    struct cachify *c = NULL;
    struct rec r = { 0 };
    char url[200], err[512];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    double t0;

    ck_assert_int_ge(fd, 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(url, sizeof url, "cachifys://127.0.0.1:%d",
             ntohs(sa.sin_port));
    t0 = mono_s();
    ck_assert_int_eq(cachify_open(&c, url, &o, err, sizeof err),
                     CACHIFY_ERR_IO);
    ck_assert_msg(strstr(err, "TLS handshake") && strstr(err, "timed out"),
                  "%s", err);
    ck_assert_msg(mono_s() - t0 >= 1.9 && mono_s() - t0 < 20,
                  "took %.1f s", mono_s() - t0);
    ck_assert_int_eq(cachify_async_open(&ac, g_base, url, &o, err,
                                        sizeof err), CACHIFY_OK);
    t0 = mono_s();
    CALL(cachify_async_acquire(ac, "k", NULL, rec_tok, &r));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_ERR_IO, "silent server");
    ck_assert_msg(strstr(r.err, "TLS handshake") && strstr(r.err, "timed out"),
                  "%s", r.err);
    ck_assert_msg(mono_s() - t0 >= 1.9, "took %.1f s", mono_s() - t0);
    cachify_async_close(ac);
    close(fd);
    event_free(g_guard);
    event_base_free(g_base);
}
END_TEST

/* ---- the URL itself ---- */

START_TEST(url_parse)
{
    static struct cachify_url u;
    char err[256];

    ck_assert_int_eq(cachify_url_parse("cachifys://db.example", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_TCP);
    ck_assert_int_eq(u.tls, 1);
    ck_assert_int_eq(u.port, 7380);
    ck_assert_str_eq(u.tlsopt.ca, "");
    ck_assert_int_eq(cachify_url_parse("cachify://db.example", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.tls, 0);
    ck_assert_int_eq(u.port, 7379);
    /* A password may hold '?' and '@'; the query starts after the last
     * '@'; values are percent-decoded. */
    ck_assert_int_eq(cachify_url_parse("cachifys://:p?w@d@[::1]:9/?ca=/a%20b"
                                       "%40c&servername=x.example&cert=%2Fc"
                                       "&key=k%25", &u, err, sizeof err),
                     CACHIFY_OK);
    ck_assert_str_eq(u.password, "p?w@d");
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 9);
    ck_assert_str_eq(u.tlsopt.ca, "/a b@c");
    ck_assert_str_eq(u.tlsopt.servername, "x.example");
    ck_assert_str_eq(u.tlsopt.cert, "/c");
    ck_assert_str_eq(u.tlsopt.key, "k%");
    ck_assert_int_eq(cachify_url_parse("cachifys://h?servername=::1", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_str_eq(u.tlsopt.servername, "::1");
    ck_assert_int_eq(cachify_url_parse("cachifys://h/db", &u, err,
                                       sizeof err), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_url_parse("cachifys://user@h", &u, err,
                                       sizeof err), CACHIFY_ERR_ARG);
    ck_assert_msg(strstr(err, "%40"), "%s", err);
    ck_assert_int_eq(cachify_url_parse("cachifys://", &u, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_url_parse("cachifys://h:0", &u, err, sizeof err),
                     CACHIFY_ERR_ARG);
    /* Every cut of a URL that uses all of the grammar, and every byte
     * value in place of each of its bytes: an answer (OK or a refusal
     * with a message) and nothing read or written out of bounds (the
     * sanitizer pass checks that). */
    {
        static const char full[] = "cachifys://:p?w@d@[::1%lo]:9/?ca=/a%20b"
                                   "&cert=/c&key=/k&servername=x.example";
        size_t len = sizeof full - 1;
        char buf[sizeof full];

        ck_assert_int_eq(cachify_url_parse(full, &u, err, sizeof err),
                         CACHIFY_OK);
        for (size_t i = 0; i < len; i++) {
            for (int b = 0; b < 256; b++) {
                memcpy(buf, full, sizeof full);
                buf[i] = (char)b; /* b 0: the URL cut at i */
                err[0] = '\0';
                int rc = cachify_url_parse(buf, &u, err, sizeof err);
                REQUIRE(rc == CACHIFY_OK ||
                            (rc == CACHIFY_ERR_ARG && err[0] != '\0'),
                        "%s: %d", itest_esc(buf), rc);
            }
        }
    }
    event_free(g_guard);
    event_base_free(g_base);
}
END_TEST

/* ---- SIGPIPE ---- */

/* Writes over TLS to a server that went away raise no SIGPIPE: a child
 * with SIGPIPE's default action (which kills) sends on a TLS connection
 * whose server stopped until a send fails, then closes it (close_notify
 * to the dead peer), and must exit normally. */
START_TEST(no_sigpipe)
{
    static char junk[256 * 1024];
    int go[2], done[2];
    char b;

    tls_start("no", NULL);
    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(done), 0);
    memset(junk, 'x', sizeof junk);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct cachify_url u;
        struct sconn sc;
        char err[512];
        int rc = 1;

        signal(SIGPIPE, SIG_DFL);
        sconn_init(&sc);
        if (cachify_url_parse(turl(NULL, "ca=%s", g_tc.ca), &u, err,
                              sizeof err) != CACHIFY_OK ||
            sconn_open(&sc, &u, 20000, err, sizeof err) != CACHIFY_OK)
            _exit(2);
        if (write(done[1], "o", 1) != 1 || read(go[0], &b, 1) != 1)
            _exit(3);
        /* The first sends may land in the kernel before the reset. */
        for (int i = 0; i < 200 && rc == 1; i++)
            if (sconn_send(&sc, junk, sizeof junk, 5000, err, sizeof err) !=
                CACHIFY_OK)
                rc = 0;
        sconn_free(&sc);
        _exit(rc == 0 && strstr(err, "sending to the server") ? 0 : 4);
    }
    close(go[0]);
    close(done[1]);
    ck_assert_int_eq(read(done[0], &b, 1), 1); /* connected */
    srv_stop();
    ck_assert_int_eq(write(go[1], "g", 1), 1);
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(!WIFSIGNALED(st), "the client died of signal %d",
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the client exited %d", WEXITSTATUS(st));
    close(go[1]);
    close(done[0]);
    event_free(g_guard);
    event_base_free(g_base);
    ts_cleanup(&g_ts); /* the daemon stopped above */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_tls");
    TCase *tc = itest_tcase(s, "client_tls");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, url_parse);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, bad_files);
    tcase_add_test(tc, silent_server);
    tcase_add_test(tc, sync_calls);
    tcase_add_test(tc, async_calls);
    tcase_add_test(tc, renewal);
    tcase_add_test(tc, reconnect);
    tcase_add_test(tc, idle_close);
    tcase_add_test(tc, wrong_ca);
    tcase_add_test(tc, name_mismatch);
    tcase_add_test(tc, client_certificates);
    tcase_add_test(tc, client_certificate_optional);
    tcase_add_test(tc, plain_server);
    tcase_add_test(tc, no_sigpipe);
    return itest_main(s);
}
