/* tests/integration/test_tls.c - Check suite: the daemon's TLS port
 * (tls_port, daemon/tls.h), against the real daemon, with an OpenSSL
 * client written here (blocking SSL on a socket with read timeouts) and
 * certificates made fresh per test (tests/support/testcerts.h).
 *
 * Owns: requests over TLS (ACQUIRE, RELEASE, a WAIT handed over, a 1 MiB
 * SET and GET, pipelining, the counters in STATS and INFO); plain and TLS
 * ports of one daemon on one lock table; tls_auth_clients yes, optional
 * and no against no certificate, the CA's client certificate and a rogue
 * CA's; a TLS 1.1 client; start-up with a missing, garbage or mismatched
 * certificate or key; SIGHUP with a new certificate (new connections get
 * it, an open one keeps working), with a broken one (the old stays) and
 * from tls_auth_clients yes to no (a half-done handshake across it);
 * hostile clients: plain text on the TLS port, a handshake left half done
 * (idle timeout and request_timeout), a TLS client over maxclients or
 * refused by protected mode, a TLS waiter that leaves, with 72 KiB
 * pipelined behind its wait or not.  Does not own: the client helpers
 * (tls_itest.h), clients misbehaving inside the TLS stream
 * (test_tls_hostile.c), the client library's cachifys:// (the client
 * suites), redis-cli --tls (tests/scripts/tls_redis_cli.sh).
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/integration/tls_itest.h"

/* ---- requests over TLS ---- */

START_TEST(requests_over_tls)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    struct tls_client a, b;
    tls_open_ok(&a, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    tls_open_ok(&b, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    TSAY(&a, "PING\r\n");
    TEXPECT(&a, "+PONG\r\n");
    /* A handed-over wait: b queues, a releases, b is granted. */
    TSAY(&a, "ACQUIRE job TTL 60000\r\n");
    long long t1 = tls_token(&a);
    TSAY(&b, "ACQUIRE job TTL 60000 WAIT 30000\r\n");
    ck_assert_int_eq(plain_stat_poll("waiters", 1), 1);
    char rel[128];
    snprintf(rel, sizeof rel, "RELEASE job %lld\r\n", t1);
    TSAY(&a, rel);
    TEXPECT(&a, ":1\r\n");
    long long t2 = tls_token(&b);
    ck_assert_int_gt(t2, t1);
    snprintf(rel, sizeof rel, "RELEASE job %lld\r\n", t2);
    TSAY(&b, rel);
    TEXPECT(&b, ":1\r\n");

    /* A 1 MiB value each way, across many TLS records. */
    size_t big = 1u << 20;
    char *val = malloc(big), *req = malloc(big + 128), *got = malloc(big);
    ck_assert(val && req && got);
    for (size_t i = 0; i < big; i++)
        val[i] = (char)('a' + i * 7 % 26);
    int h = snprintf(req, 128, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", big);
    memcpy(req + h, val, big);
    memcpy(req + h + big, "\r\n", 2);
    tls_say(&a, req, (size_t)h + big + 2);
    TEXPECT(&a, "+OK\r\n");
    TSAY(&b, "GET big\r\n");
    char head[32];
    snprintf(head, sizeof head, "$%zu\r\n", big);
    TEXPECT(&b, head);
    ck_assert_int_eq(tls_read_n(&b, got, big), 0);
    ck_assert(memcmp(got, val, big) == 0);
    TEXPECT(&b, "\r\n");
    free(val);
    free(req);
    free(got);

    /* Pipelined: 200 requests in one write, 200 replies in order. */
    static char pipe[200 * 40];
    size_t n = 0;
    for (int i = 0; i < 200; i++)
        n += (size_t)snprintf(pipe + n, sizeof pipe - n,
                              "ACQUIRE p:%d TTL 60000\r\n", i);
    tls_say(&a, pipe, n);
    long long last = 0;
    for (int i = 0; i < 200; i++) {
        long long t = tls_token(&a);
        ck_assert_int_gt(t, last);
        last = t;
    }
    TSAY(&a, "IS_LOCKED p:199\r\n");
    TEXPECT(&a, ":1\r\n");
    ck_assert_int_eq(plain_stat("tls_connections"), 2);
    ck_assert_int_eq(plain_stat("tls_handshake_failures"), 0);
    /* INFO's Stats section carries the same counters. */
    TSAY(&a, "INFO stats\r\n");
    char info[4096];
    tls_line(&a, info, sizeof info); /* the bulk's length */
    long len = strtol(info + 1, NULL, 10);
    ck_assert(info[0] == '$' && len > 0 && len < (long)sizeof info - 2);
    ck_assert_int_eq(tls_read_n(&a, info, (size_t)len + 2), 0);
    info[len] = '\0';
    ck_assert_msg(strstr(info, "\r\ntls_connections:2\r\n"
                               "tls_handshake_failures:0\r\n") != NULL,
                  "%s", info);
    tls_drop(&a);
    tls_drop(&b);
    srv_finish();
}
END_TEST

/* One daemon, both ports, one lock table. */
START_TEST(plain_and_tls_side_by_side)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    int p = conn_new();
    struct tls_client t;
    tls_open_ok(&t, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    say(p, "ACQUIRE shared TTL 60000\r\n");
    long long tok = READ_INT(p);
    TSAY(&t, "ACQUIRE shared\r\n");
    TEXPECT(&t, "-LOCKED shared is already locked!\r\n");
    char rel[128];
    snprintf(rel, sizeof rel, "RELEASE shared %lld\r\n", tok);
    TSAY(&t, rel);
    TEXPECT(&t, ":1\r\n");
    say(p, "IS_LOCKED shared\r\n");
    EXPECT(p, ":0\r\n");
    TSAY(&t, "SET k v NX\r\n");
    TEXPECT(&t, "+OK\r\n");
    say(p, "GET k\r\n");
    EXPECT(p, "$1\r\nv\r\n");
    close(p);
    tls_drop(&t);
    srv_finish();
}
END_TEST

/* ---- client certificates ---- */

START_TEST(auth_clients_yes)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    struct tls_client c;
    /* No certificate, and one from a CA the server does not trust. */
    if (tls_open(&c, g_tc.ca, NULL, NULL, 0) == 0) {
        ck_assert(tls_refused(&c));
        tls_drop(&c);
    }
    if (tls_open(&c, g_tc.ca, g_tc.rogue_client_crt, g_tc.rogue_client_key,
                 0) == 0) {
        ck_assert(tls_refused(&c));
        tls_drop(&c);
    }
    ck_assert_int_eq(plain_stat_poll("tls_handshake_failures", 2), 2);
    ck_assert(h_log_has("TLS handshake failed: error:0A0000C7:SSL routines::"
                        "peer did not return a certificate", 10));
    ck_assert(h_log_has("(client certificate: unable to get local issuer "
                        "certificate)", 10));
    tls_open_ok(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    ck_assert(!tls_refused(&c));
    ck_assert(h_log_has(", /CN=client", 10)); /* the subject is logged */
    tls_drop(&c);
    ck_assert_int_eq(plain_stat("tls_connections"), 1);
    srv_finish();
}
END_TEST

START_TEST(auth_clients_optional_and_no)
{
    start_tls("optional", NULL, NULL, NULL, NULL);
    struct tls_client c;
    tls_open_ok(&c, g_tc.ca, NULL, NULL);
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    tls_open_ok(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    /* A certificate that is sent must verify. */
    if (tls_open(&c, g_tc.ca, g_tc.rogue_client_crt, g_tc.rogue_client_key,
                 0) == 0) {
        ck_assert(tls_refused(&c));
        tls_drop(&c);
    }
    ck_assert_int_eq(plain_stat_poll("tls_handshake_failures", 1), 1);
    srv_finish();

    /* no: nothing is asked, so nothing is checked. */
    start_tls("no", NULL, NULL, NULL, NULL);
    tls_open_ok(&c, g_tc.ca, NULL, NULL);
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    srv_finish();
}
END_TEST

START_TEST(old_protocol_refused)
{
    start_tls("no", NULL, NULL, NULL, NULL);
    struct tls_client c;
    ck_assert_int_eq(tls_open(&c, g_tc.ca, NULL, NULL, 1), -1);
    ck_assert(h_log_has("TLS handshake failed: error:0A000102:SSL routines::"
                        "unsupported protocol", 10));
    ck_assert_int_eq(plain_stat_poll("tls_handshake_failures", 1), 1);
    srv_finish();
}
END_TEST

/* ---- start-up ---- */

/* Runs the daemon with the test certificates but for one key replaced
 * (key, value; auth "yes"), in --test-config mode when test is set, and
 * returns its exit status with its output in out. */
static int run_with(const char *key, const char *value, int test,
                    char *out, size_t cap)
{
    const char *cert = g_tc.server_crt, *pkey = g_tc.server_key,
               *ca = g_tc.ca;
    if (strcmp(key, "cert") == 0)
        cert = value;
    else if (strcmp(key, "key") == 0)
        pkey = value;
    else if (strcmp(key, "ca") == 0)
        ca = value;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s --port %d --tls-port %d "
             "--tls-cert-file '%s' --tls-key-file '%s' --tls-ca-cert-file "
             "'%s' 2>&1", getenv("CACHIFYD_BIN"), test ? "--test-config" : "",
             g_ts.port, g_tls_port, cert, pkey, ca);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#define START_FAILS(key, value, message)                                     \
    do {                                                                     \
        char out_[2048], want_[1024];                                        \
        snprintf(want_, sizeof want_, "%s", (message));                      \
        for (int test_ = 1; test_ >= 0; test_--) {                           \
            int rc_ = run_with((key), (value), test_, out_, sizeof out_);    \
            ck_assert_msg(rc_ == 2, "exit %d: %s", rc_, out_);               \
            ck_assert_msg(strstr(out_, want_) != NULL,                       \
                          "\"%s\" not in \"%s\"", want_, out_);              \
        }                                                                    \
    } while (0)

START_TEST(bad_files_fail_start)
{
    tls_init();
    char path[300], msg[700], out[2048];
    /* The good set passes the check. */
    ck_assert_int_eq(run_with("cert", g_tc.server_crt, 1, out, sizeof out), 0);

    snprintf(path, sizeof path, "%s/missing.crt", g_ts.dir);
    snprintf(msg, sizeof msg, "cachifyd: tls_cert_file: '%s': cannot open: "
             "No such file or directory", path);
    START_FAILS("cert", path, msg);

    snprintf(path, sizeof path, "%s/garbage.crt", g_ts.dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n", f);
    fclose(f);
    snprintf(msg, sizeof msg, "cachifyd: tls_cert_file: '%s': cannot load "
             "the certificate chain (PEM, server certificate first): error:",
             path);
    START_FAILS("cert", path, msg);

    /* The client's key is a good key, but not the server certificate's. */
    snprintf(msg, sizeof msg, "cachifyd: tls_key_file: '%s' is not the key "
             "of the certificate in tls_cert_file '%s'", g_tc.client_key,
             g_tc.server_crt);
    START_FAILS("key", g_tc.client_key, msg);

    snprintf(msg, sizeof msg, "cachifyd: tls_key_file: '%s': cannot load "
             "the private key (PEM, not encrypted): error:", path);
    START_FAILS("key", path, msg);

    START_FAILS("ca", "", "cachifyd: tls_ca_cert_file: not set, but "
                "tls_auth_clients is yes");
    snprintf(msg, sizeof msg, "cachifyd: tls_ca_cert_file: '%s': cannot "
             "load the CA certificates (PEM): error:", path);
    START_FAILS("ca", path, msg);
    ts_cleanup(&g_ts);
}
END_TEST

/* ---- SIGHUP ---- */

static char g_conf[256];

static void write_conf(const char *cert, const char *key, const char *ca,
                       const char *auth)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", g_conf);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "bind 127.0.0.1\nport %d\nloglevel debug\ntls_port %d\n"
            "tls_cert_file %s\ntls_key_file %s\ntls_ca_cert_file %s\n"
            "tls_auth_clients %s\n", g_ts.port, g_tls_port, cert, key, ca,
            auth);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(rename(tmp, g_conf), 0);
}

/* Starts the daemon from a conf file of the test certificates under
 * tls_auth_clients yes (write_conf changes it later), and opens *old, a
 * TLS connection with the client certificate, served. */
static void start_from_conf(struct tls_client *old)
{
    tls_init();
    snprintf(g_conf, sizeof g_conf, "%s/tls.conf", g_ts.dir);
    write_conf(g_tc.server_crt, g_tc.server_key, g_tc.ca, "yes");
    const char *args[] = { "-c", g_conf, NULL };
    if (ts_start_bare(&g_ts, args) != 0)
        ck_abort_msg("the daemon did not start");
    tls_open_ok(old, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    ck_assert(!tls_refused(old));
}

START_TEST(reload_certificates)
{
    struct tls_client old, c;
    start_from_conf(&old);

    /* A second, unrelated set: its CA signs neither the old server nor
     * the old client certificate. */
    struct test_certs next;
    char dir[200];
    snprintf(dir, sizeof dir, "%s/certs2", g_ts.dir);
    ck_assert_int_eq(tcert_make(&next, dir), 0);
    write_conf(next.server_crt, next.server_key, next.ca, "yes");
    h_hup("config reload done", 1);
    ck_assert(h_log_has("config reload: TLS: certificate, key and CA files "
                        "read again", 0));
    /* New connections get the new certificate: the old CA cannot verify
     * it, the new one can; the old client certificate is refused. */
    ck_assert_int_eq(tls_open(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key,
                              0), -1);
    tls_open_ok(&c, next.ca, next.client_crt, next.client_key);
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    if (tls_open(&c, next.ca, g_tc.client_crt, g_tc.client_key, 0) == 0) {
        ck_assert(tls_refused(&c));
        tls_drop(&c);
    }
    /* The connection from before goes on. */
    TSAY(&old, "ACQUIRE still TTL 60000\r\n");
    ck_assert_int_gt(tls_token(&old), 0);

    /* A broken certificate: the reload fails, the running one stays. */
    char garbage[300];
    snprintf(garbage, sizeof garbage, "%s/garbage.crt", g_ts.dir);
    FILE *f = fopen(garbage, "w");
    ck_assert_ptr_nonnull(f);
    fputs("garbage\n", f);
    fclose(f);
    write_conf(garbage, next.server_key, next.ca, "yes");
    h_hup("config reload failed", 1);
    ck_assert(h_log_has("tls_cert_file: '", 0));
    tls_open_ok(&c, next.ca, next.client_crt, next.client_key);
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    ck_assert(!tls_refused(&old));
    tls_drop(&old);
    srv_finish();
}
END_TEST

/* ---- hostile clients ---- */

/* A raw TCP connection to the TLS port. */
static int raw_tls_port(void)
{
    struct test_server t = g_ts;
    t.port = g_tls_port;
    int fd = tc_connect(&t);
    ck_assert_int_ge(fd, 0);
    return fd;
}

START_TEST(plain_text_on_tls_port)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    int fd = raw_tls_port();
    say(fd, "PING\r\nACQUIRE x\r\n");
    ck_assert(tc_closed(fd));
    close(fd);
    fd = raw_tls_port();
    say(fd, "*1\r\n$4\r\nPING\r\n");
    ck_assert(tc_closed(fd));
    close(fd);
    ck_assert_int_eq(plain_stat_poll("tls_handshake_failures", 2), 2);
    /* The daemon goes on serving both ports. */
    int p = conn_new();
    say(p, "PING\r\n");
    EXPECT(p, "+PONG\r\n");
    close(p);
    struct tls_client c;
    tls_open_ok(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    srv_finish();
}
END_TEST

/* The start of a ClientHello (a record header announcing 200 bytes, and
 * a few of them), then nothing. */
static int half_handshake(void)
{
    static const char hello[] = "\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03";
    int fd = raw_tls_port();
    sayn(fd, hello, sizeof hello - 1);
    return fd;
}

START_TEST(half_handshake_idle_timeout)
{
    /* The idle timeout alone (request_timeout off). */
    start_tls("yes", "--timeout", "1", "--request-timeout", "0");
    int fd = half_handshake();
    double t0 = mono_s();
    ck_assert(tc_closed(fd));
    ck_assert(mono_s() - t0 < TS_READ_TIMEOUT_S - 1);
    close(fd);
    ck_assert_int_eq(plain_stat_poll("idle_closed", 1), 1);
    ck_assert_int_eq(plain_stat("tls_handshake_failures"), 1);
    srv_finish();
}
END_TEST

START_TEST(half_handshake_request_timeout)
{
    /* timeout off, as shipped: request_timeout still bounds a handshake. */
    start_tls("yes", "--timeout", "0", "--request-timeout", "1");
    int fd = half_handshake();
    int silent = raw_tls_port(); /* connects and sends nothing at all */
    ck_assert(tc_closed(fd));
    ck_assert(tc_closed(silent));
    close(fd);
    close(silent);
    ck_assert_int_eq(plain_stat_poll("request_timeouts", 2), 2);
    ck_assert_int_eq(plain_stat("tls_handshake_failures"), 2);
    ck_assert(h_log_has("its TLS handshake did not complete within 1 s "
                        "(request_timeout)", 0));
    srv_finish();
}
END_TEST

/* SIGHUP from tls_auth_clients yes to no: new clients need no
 * certificate, the connection from before goes on, and a handshake left
 * half done across the reload, which holds the old context, ends
 * cleanly (the old context goes with the last connection that holds it:
 * the valgrind pass checks). */
START_TEST(reload_auth_clients)
{
    struct tls_client old, c;
    start_from_conf(&old);
    int half = half_handshake();
    if (tls_open(&c, g_tc.ca, NULL, NULL, 0) == 0) {
        ck_assert(tls_refused(&c)); /* no certificate, under yes */
        tls_drop(&c);
    }
    write_conf(g_tc.server_crt, g_tc.server_key, g_tc.ca, "no");
    h_hup("config reload done", 1);
    ck_assert(h_log_has("config reload: tls_auth_clients: yes -> no", 0));
    tls_open_ok(&c, g_tc.ca, NULL, NULL);
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    ck_assert(!tls_refused(&old));
    close(half);
    ck_assert_int_eq(plain_stat_poll("tls_handshake_failures", 2), 2);
    tls_drop(&old);
    srv_finish();
}
END_TEST

/* maxclients counts TLS clients too, and refuses one over it without a
 * reply (a plain-text -LIMIT would only look like a broken handshake). */
START_TEST(tls_over_maxclients)
{
    start_tls("yes", "--maxclients", "1", NULL, NULL);
    /* The one slot, once the start-up probe's connection has left it. */
    int p;
    double until = mono_s() + (slow_mode() ? 60 : 10);
    for (;;) {
        char reply[64];
        p = conn_new();
        say(p, "PING\r\n");
        REQUIRE(tc_read_reply(p, reply, sizeof reply) > 0, "no reply");
        if (strcmp(reply, "+PONG\r\n") == 0)
            break;
        close(p);
        REQUIRE(mono_s() < until, "no free slot: %s", itest_esc(reply));
        usleep(50000);
    }
    long long rejected = stat1(p, "rejected_clients");
    int raw = raw_tls_port();
    char buf[64];
    ck_assert_int_eq(read_to_close(raw, buf, sizeof buf), 0); /* no bytes */
    close(raw);
    struct tls_client c;
    ck_assert_int_eq(tls_open(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key,
                              0), -1);
    ck_assert_int_eq(stat1(p, "rejected_clients"), rejected + 2);
    close(p);
    /* The slot is free again: a TLS client gets it. */
    double end = mono_s() + (slow_mode() ? 60 : 10);
    while (tls_open(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key, 0) != 0) {
        REQUIRE(mono_s() < end, "the freed slot was not given to TLS");
        usleep(50000);
    }
    ck_assert(!tls_refused(&c));
    tls_drop(&c);
    srv_finish();
}
END_TEST

/* Protected mode on the TLS port: a non-loopback client is refused
 * without a reply while no password is set, and served (after AUTH) once
 * one is. */
START_TEST(tls_protected_mode)
{
    struct in_addr addr;
    char name[INET_ADDRSTRLEN];
    if (!local_ipv4(&addr, name, sizeof(name))) {
        fprintf(stderr, "SKIP tls_protected_mode: this machine has no "
                "non-loopback IPv4 address to connect from\n");
        return;
    }
    start_tls("yes", "--bind", "0.0.0.0", NULL, NULL);
    struct tls_client c;
    int remote = connect_from_port(addr, g_tls_port);
    char buf[64];
    ck_assert_int_eq(read_to_close(remote, buf, sizeof buf), 0); /* no bytes */
    close(remote);
    ck_assert_int_eq(tls_open_fd(&c, connect_from_port(addr, g_tls_port),
                                 g_tc.ca, g_tc.client_crt, g_tc.client_key,
                                 0), -1);
    ck_assert_int_eq(plain_stat("denied_clients"), 2);
    srv_finish();

    start_tls("yes", "--bind", "0.0.0.0", "--requirepass", "pw");
    ck_assert_int_eq(tls_open_fd(&c, connect_from_port(addr, g_tls_port),
                                 g_tc.ca, g_tc.client_crt, g_tc.client_key,
                                 0), 0);
    TSAY(&c, "ACQUIRE k\r\nAUTH pw\r\nPING\r\n");
    TEXPECT(&c, "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n");
    tls_drop(&c);
    srv_finish();
}
END_TEST

/* A waiter over TLS that goes away leaves the queue: the lock is not
 * handed to nobody. */
START_TEST(tls_waiter_leaves)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    int p = conn_new();
    say(p, "ACQUIRE q TTL 60000\r\n");
    long long tok = READ_INT(p);
    struct tls_client w;
    tls_open_ok(&w, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    TSAY(&w, "ACQUIRE q TTL 60000 WAIT 60000\r\n");
    ck_assert_int_eq(plain_stat_poll("waiters", 1), 1);
    tls_drop(&w); /* no close_notify: the socket just closes */
    ck_assert_int_eq(plain_stat_poll("waiters", 0), 0);
    char rel[128];
    snprintf(rel, sizeof rel, "RELEASE q %lld\r\n", tok);
    say(p, rel);
    EXPECT(p, ":1\r\n");
    say(p, "IS_LOCKED q\r\n");
    EXPECT(p, ":0\r\n");
    close(p);
    srv_finish();
}
END_TEST

/* A TLS waiter pipelining past the 64 KiB read-ahead (conn.h): its
 * bufferevent stops reading there and the close watch looks at its socket
 * as at a plain one's, so one that leaves still leaves the queue, and one
 * that stays gets its token and then every PONG, in order. */
#define PIPELINED (72 * 1024)

START_TEST(tls_waiter_big_pipeline)
{
    static char pings[PIPELINED];
    for (size_t i = 0; i < sizeof pings; i += 6)
        memcpy(pings + i, "PING\r\n", 6);
    start_tls("yes", NULL, NULL, NULL, NULL);
    int p = conn_new();
    say(p, "ACQUIRE k TTL 60000\r\n");
    long long tok = READ_INT(p);

    struct tls_client w, q;
    tls_open_ok(&w, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    TSAY(&w, "ACQUIRE k TTL 60000 WAIT 60000\r\n");
    ck_assert_int_eq(plain_stat_poll("waiters", 1), 1);
    tls_say(&w, pings, sizeof pings);
    usleep(slow_mode() ? 2000000 : 500000);
    ck_assert_int_eq(stat1(p, "waiters"), 1); /* within its bounds */
    tls_drop(&w);
    ck_assert_int_eq(plain_stat_poll("waiters", 0), 0);

    tls_open_ok(&q, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    TSAY(&q, "ACQUIRE k TTL 60000 WAIT 60000\r\n");
    ck_assert_int_eq(plain_stat_poll("waiters", 1), 1);
    tls_say(&q, pings, sizeof pings);
    /* Past a few probes (WAIT_PROBE_MS): still queued, not dropped. */
    usleep(slow_mode() ? 4000000 : 2500000);
    ck_assert_int_eq(stat1(p, "waiters"), 1);
    char rel[128];
    snprintf(rel, sizeof rel, "RELEASE k %lld\r\n", tok);
    say(p, rel);
    EXPECT(p, ":1\r\n");
    ck_assert_int_gt(tls_token(&q), tok);
    static char pongs[PIPELINED / 6 * 7];
    ck_assert_int_eq(tls_read_n(&q, pongs, sizeof pongs), 0);
    for (size_t i = 0; i < sizeof pongs; i++)
        REQUIRE(pongs[i] == "+PONG\r\n"[i % 7], "PONG byte %zu", i);
    tls_drop(&q);
    close(p);
    srv_finish();
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = itest_tcase(s, "tls");
    tcase_add_test(tc, requests_over_tls);
    tcase_add_test(tc, plain_and_tls_side_by_side);
    tcase_add_test(tc, auth_clients_yes);
    tcase_add_test(tc, auth_clients_optional_and_no);
    tcase_add_test(tc, old_protocol_refused);
    tcase_add_test(tc, bad_files_fail_start);
    tcase_add_test(tc, reload_certificates);
    tcase_add_test(tc, reload_auth_clients);
    tcase_add_test(tc, plain_text_on_tls_port);
    tcase_add_test(tc, half_handshake_idle_timeout);
    tcase_add_test(tc, half_handshake_request_timeout);
    tcase_add_test(tc, tls_over_maxclients);
    tcase_add_test(tc, tls_protected_mode);
    tcase_add_test(tc, tls_waiter_leaves);
    tcase_add_test(tc, tls_waiter_big_pipeline);
    return s;
}

int main(void)
{
    return itest_main(tls_suite());
}
