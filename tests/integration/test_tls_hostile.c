/* tests/integration/test_tls_hostile.c - Check suite: TLS clients that
 * misbehave inside the TLS stream, against the real daemon (the daemon
 * and the OpenSSL client: tls_itest.h).
 *
 * Owns: a TLS client that never reads its replies (paused, bounded,
 * dropped after client_stall_timeout, others served), one over
 * client_buffer_budget (-LIMIT, closed, accounting back to 0),
 * close_notify or a TCP half-close right behind pipelined requests, short
 * or with 6 MB of replies to a small window (all answered, close_notify
 * last), TLS 1.2 renegotiation requests (refused, nobody stalls), a TLS
 * record left incomplete (request_timeout applies), a pipeline of full
 * records whose tail OpenSSL holds once the socket is drained (all
 * answered), a KeyUpdate while replies wait for room, a handshake whose
 * flight waits for room (the read that wants a write, conn_tls.h), and
 * fairness: a TLS client pipelining without end, reading its replies or
 * not, while a plain and a TLS client's PINGs keep coming back.  Does
 * not own: the TLS port's normal use, certificates, reloads and the
 * hostile handshakes (test_tls.c).
 */
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/conn.h" /* OUTPUT_PAUSE_BYTES */
#include "tests/integration/tls_itest.h"

/* ---- hostile TLS streams ---- */

/* A client whose socket accepts no more (non-blocking SSL_write): the
 * bytes written so far; stops at cap. */
static size_t tls_push_until_full(struct tls_client *cl, const char *chunk,
                                  size_t n, size_t cap)
{
    size_t sent = 0;
    tc_set_nonblock(cl->fd, 1);
    double until = mono_s() + (slow_mode() ? 30 : 10);
    while (sent < cap && mono_s() < until) {
        int w = SSL_write(cl->ssl, chunk, (int)n);
        if (w > 0) {
            sent += (size_t)w;
            continue;
        }
        int e = SSL_get_error(cl->ssl, w);
        ERR_clear_error();
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
            break;
        usleep(20000);
        /* Full for a while: the daemon stopped reading. */
        struct pollfd pfd = { cl->fd, POLLOUT, 0 };
        if (poll(&pfd, 1, slow_mode() ? 3000 : 1000) == 0)
            break;
    }
    tc_set_nonblock(cl->fd, 0);
    return sent;
}

/* SET v to 60,000 bytes over the plain connection p: GETs of it make
 * replies fast. */
static void set_value(int p)
{
    static char set[60100];
    int h = snprintf(set, 64, "*3\r\n$3\r\nSET\r\n$1\r\nv\r\n$60000\r\n");
    memset(set + h, 'v', 60000);
    memcpy(set + h + 60000, "\r\n", 2);
    sayn(p, set, (size_t)h + 60002);
    EXPECT(p, "+OK\r\n");
}

/* A TLS client that sends requests and never reads their replies is
 * bounded as a plain one is: its processing pauses at the output mark
 * (the daemon stops reading it, so its writes stop), it is dropped after
 * client_stall_timeout, and others are served meanwhile. */
START_TEST(tls_client_never_reads)
{
    start_tls("yes", "--client-stall-timeout", "2", NULL, NULL);
    int p = conn_new();
    long rss0 = ts_rss_kib(g_ts.pid);
    /* A 60 KB value, then GETs of it, unread. */
    say(p, "PING\r\n");
    EXPECT(p, "+PONG\r\n");
    set_value(p);
    struct tls_client c;
    tls_open_ok(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    static char gets[100 * 9];
    for (int i = 0; i < 100; i++)
        memcpy(gets + i * 9, "GET v\r\n\r\n", 9);
    size_t sent = tls_push_until_full(&c, gets, sizeof gets, 64u << 20);
    /* 64 MiB of GETs would ask for 400 GiB of replies: the daemon stopped
     * reading long before. */
    ck_assert_msg(sent < (64u << 20), "sent %zu bytes of GETs unhindered",
                  sent);
    say(p, "PING\r\n");
    EXPECT(p, "+PONG\r\n");
    long grown = ts_rss_kib(g_ts.pid) - rss0;
    ck_assert_msg(grown < 32 * 1024, "VmRSS grew %ld KiB", grown);
    ck_assert_int_eq(plain_stat_poll("stalled_clients", 1), 1);
    tls_drop(&c);
    close(p);
    srv_finish();
}
END_TEST

/* close_notify right behind pipelined requests, or a TCP half-close
 * without one: they all run and are answered (TLS 1.3 lets the server
 * write after the client's close_notify), and the daemon ends the stream
 * with its own close_notify. */
START_TEST(tls_close_notify_after_pipeline)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    for (int round = 0; round < 20; round++) {
        struct tls_client c;
        tls_open_ok(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key);
        char req[128];
        snprintf(req, sizeof req, "ACQUIRE cn:%d TTL 60000\r\nPING\r\n",
                 round);
        TSAY(&c, req);
        if (round % 2 == 0)
            ck_assert_int_ge(SSL_shutdown(c.ssl), 0);
        else
            ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0); /* no notify */
        ck_assert_int_gt(tls_token(&c), 0);
        TEXPECT(&c, "+PONG\r\n");
        char b;
        ck_assert_int_le(SSL_read(c.ssl, &b, 1), 0);
        ck_assert_int_eq(SSL_get_error(c.ssl, 0), SSL_ERROR_ZERO_RETURN);
        ERR_clear_error();
        tls_drop(&c);
    }
    int p = conn_new();
    say(p, "IS_LOCKED cn:19\r\n");
    EXPECT(p, ":1\r\n");
    close(p);
    srv_finish();
}
END_TEST

/* A TLS 1.2 client asking to renegotiate is refused (no_renegotiation),
 * and the daemon goes on serving it and the others. */
START_TEST(tls_renegotiation_refused)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    struct tls_client c;
    c.fd = -1;
    int fd;
    {
        struct test_server t = g_ts;
        t.port = g_tls_port;
        fd = tc_connect(&t);
    }
    c.fd = fd;
    c.ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(c.ctx);
    SSL_CTX_set_max_proto_version(c.ctx, TLS1_2_VERSION);
    ck_assert_int_eq(SSL_CTX_load_verify_locations(c.ctx, g_tc.ca, NULL), 1);
    ck_assert_int_eq(SSL_CTX_use_certificate_file(c.ctx, g_tc.client_crt,
                                                  SSL_FILETYPE_PEM), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey_file(c.ctx, g_tc.client_key,
                                                 SSL_FILETYPE_PEM), 1);
    c.ssl = SSL_new(c.ctx);
    SSL_set_fd(c.ssl, fd);
    ck_assert_int_eq(SSL_connect(c.ssl), 1);
    TSAY(&c, "PING\r\n");
    TEXPECT(&c, "+PONG\r\n");
    for (int i = 0; i < 50; i++) {
        ck_assert_int_eq(SSL_renegotiate(c.ssl), 1);
        SSL_do_handshake(c.ssl);
        ERR_clear_error();
    }
    int p = conn_new();
    say(p, "PING\r\n");
    EXPECT(p, "+PONG\r\n");
    close(p);
    tls_drop(&c);
    srv_finish();
}
END_TEST

/* The bytes of one TLS record carrying s, made by cl's session but not
 * sent: its writes go to a memory BIO for the call.  Returns the length
 * (at most cap). */
static size_t tls_record_of(struct tls_client *cl, const char *s,
                            char *rec, size_t cap)
{
    BIO *sock = SSL_get_wbio(cl->ssl), *mem = BIO_new(BIO_s_mem());
    ck_assert_ptr_nonnull(mem);
    BIO_up_ref(sock);
    SSL_set0_wbio(cl->ssl, mem); /* frees one reference of sock */
    ck_assert_int_eq(SSL_write(cl->ssl, s, (int)strlen(s)), (int)strlen(s));
    int n = BIO_read(mem, rec, (int)cap);
    ck_assert_int_gt(n, 0);
    SSL_set0_wbio(cl->ssl, sock); /* frees mem */
    return (size_t)n;
}

/* A TLS record left incomplete is a request left incomplete: a slow loris
 * that trickles the encrypted bytes of its request (here: all but the
 * last byte of a record, then nothing) is closed after request_timeout
 * with -PROTO, as a plain one is, even with timeout 0.  Records that
 * carry no data (a TLS 1.3 KeyUpdate) and an idle client after a whole
 * request are not on that clock. */
START_TEST(tls_partial_record_request_timeout)
{
    start_tls("yes", "--timeout", "0", "--request-timeout", "1");
    struct tls_client idle, slow;
    tls_open_ok(&idle, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    TSAY(&idle, "PING\r\n");
    TEXPECT(&idle, "+PONG\r\n");
    ck_assert_int_eq(SSL_key_update(idle.ssl, SSL_KEY_UPDATE_NOT_REQUESTED),
                     1);
    ck_assert_int_eq(SSL_do_handshake(idle.ssl), 1); /* sends it */

    tls_open_ok(&slow, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    TSAY(&slow, "PING\r\n");
    TEXPECT(&slow, "+PONG\r\n");
    char rec[256];
    size_t n = tls_record_of(&slow, "ACQUIRE k\r\n", rec, sizeof rec);
    ck_assert_int_gt(n, 6);
    sayn(slow.fd, rec, n - 1);
    TEXPECT(&slow, "-PROTO request not completed within request_timeout "
            "(1 s)\r\n");
    char b;
    ck_assert_int_le(SSL_read(slow.ssl, &b, 1), 0);
    ERR_clear_error();
    ck_assert_int_eq(plain_stat_poll("request_timeouts", 1), 1);
    tls_drop(&slow);

    /* Well past request_timeout: the idle client is still served. */
    usleep(slow_mode() ? 3000000 : 1500000);
    TSAY(&idle, "PING\r\n");
    TEXPECT(&idle, "+PONG\r\n");
    ck_assert_int_eq(plain_stat("request_timeouts"), 1);
    tls_drop(&idle);
    srv_finish();
}
END_TEST

/* A socket connected to the TLS port with a 4 KiB receive buffer, set
 * before the connect so the window it offers stays small: the daemon's
 * replies then wait in its output instead of the kernel's buffers. */
static int small_window_fd(int mss)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), small = 4096;
    struct timeval tv = { TS_READ_TIMEOUT_S, 0 };
    struct sockaddr_in in;
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small,
                                sizeof small), 0);
    ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
                                sizeof tv), 0);
    /* A small segment size also keeps the daemon's send buffer small:
     * Linux sizes it from the segment size at the connection's start
     * (about 48 KB for 536 bytes, over 2 MB for loopback's usual 64 KB). */
    if (mss > 0)
        ck_assert_int_eq(setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss,
                                    sizeof mss), 0);
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)g_tls_port);
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&in, sizeof in), 0);
    return fd;
}

/* The daemon with the 60,000-byte value v (set_value) over the plain
 * connection *p, and c, a TLS client behind a small window. */
static void start_small_window(struct tls_client *c, int *p)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    *p = conn_new();
    set_value(*p);
    REQUIRE(tls_open_fd(c, small_window_fd(0), g_tc.ca, g_tc.client_crt,
                        g_tc.client_key, 0) == 0, "TLS handshake failed");
}

/* Reads n whole replies to GET v. */
static void read_values(struct tls_client *c, int n)
{
    static char val[60000];
    for (int i = 0; i < n; i++) {
        TEXPECT(c, "$60000\r\n");
        REQUIRE(tls_read_n(c, val, sizeof val) == 0, "GET %d cut short", i);
        REQUIRE(val[0] == 'v' && val[sizeof val - 1] == 'v', "GET %d", i);
        TEXPECT(c, "\r\n");
    }
}

/* A TCP half-close (no close_notify, as nc -N or a shutdown(SHUT_WR)
 * does) behind a pipeline of 6 MB of replies to a client with a small
 * window: every request before it still runs and is answered, the last
 * one (an ACQUIRE) included, as on the plain port.  The end of the
 * stream is read while the last replies still wait in the output. */
#define GETS 100

START_TEST(tls_half_close_long_pipeline)
{
    struct tls_client c;
    int p;
    start_small_window(&c, &p);
    static char req[GETS * 7 + 64];
    size_t n = 0;
    for (int i = 0; i < GETS; i++)
        n += (size_t)snprintf(req + n, sizeof req - n, "GET v\r\n");
    n += (size_t)snprintf(req + n, sizeof req - n,
                          "ACQUIRE tail TTL 60000\r\n");
    tls_say(&c, req, n);
    ck_assert_int_eq(shutdown(c.fd, SHUT_WR), 0);
    read_values(&c, GETS);
    ck_assert_int_gt(tls_token(&c), 0);
    char b;
    ck_assert_int_le(SSL_read(c.ssl, &b, 1), 0); /* then close_notify */
    ck_assert_int_eq(SSL_get_error(c.ssl, 0), SSL_ERROR_ZERO_RETURN);
    ERR_clear_error();
    tls_drop(&c);
    say(p, "IS_LOCKED tail\r\n");
    EXPECT(p, ":1\r\n");
    close(p);
    srv_finish();
}
END_TEST


/* client_buffer_budget over TLS: a TLS client whose request grows the
 * daemon's buffers past the budget (a 600 KB SET against 256 KiB) gets
 * -LIMIT, encrypted, and is closed, as a plain one is; the accounting
 * returns to 0 and a plain client is served throughout. */
START_TEST(tls_client_buffer_budget)
{
    start_tls("yes", "--client-buffer-budget", "262144", NULL, NULL);
    int p = conn_new();
    struct tls_client c;
    tls_open_ok(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    size_t big = 600000;
    char *req = malloc(big + 64);
    ck_assert_ptr_nonnull(req);
    int h = snprintf(req, 64, "*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$%zu\r\n",
                     big);
    memset(req + h, 'b', big);
    memcpy(req + h + big, "\r\n", 2);
    /* The daemon may close before it has all of it: a failed write ends
     * the sending, the reply is read either way. */
    size_t off = 0, n = (size_t)h + big + 2;
    while (off < n) {
        int w = SSL_write(c.ssl, req + off,
                          n - off > 16384 ? 16384 : (int)(n - off));
        if (w <= 0) {
            ERR_clear_error();
            break;
        }
        off += (size_t)w;
    }
    free(req);
    TEXPECT(&c, "-LIMIT client_buffer_budget reached (the daemon's client "
            "buffers are full); closing the connection\r\n");
    tls_drop(&c);
    ck_assert_int_eq(plain_stat_poll("budget_closed_clients", 1), 1);
    ck_assert_int_eq(stat_poll(p, "clients", 1, slow_mode() ? 60 : 20), 1);
    ck_assert_int_eq(stat1(p, "client_buffer_bytes"), 0);
    say(p, "PING\r\n");
    EXPECT(p, "+PONG\r\n");
    close(p);
    srv_finish();
}
END_TEST

/* A pipeline sent as full TLS records, faster than one read's room: the
 * daemon reads from the socket what OpenSSL asks, and OpenSSL may then
 * hold the rest of a record (or the next ones, read ahead) that no
 * readable event will announce again.  Every request is still answered
 * without the client sending another byte. */
#define PIPE_PINGS 12000

START_TEST(tls_pipeline_held_by_openssl)
{
    start_tls("yes", NULL, NULL, NULL, NULL);
    for (int round = 0; round < 4; round++) {
        struct tls_client c;
        tls_open_ok(&c, g_tc.ca, g_tc.client_crt, g_tc.client_key);
        static char req[PIPE_PINGS * 6], got[PIPE_PINGS * 7];
        for (int i = 0; i < PIPE_PINGS; i++)
            memcpy(req + i * 6, "PING\r\n", 6);
        tls_say(&c, req, sizeof req);
        REQUIRE(tls_read_n(&c, got, sizeof got) == 0,
                "round %d: replies cut short", round);
        for (int i = 0; i < PIPE_PINGS; i++)
            REQUIRE(memcmp(got + i * 7, "+PONG\r\n", 7) == 0,
                    "round %d: reply %d: \"%s\"", round, i,
                    itest_escn(got + i * 7, 7));
        tls_drop(&c);
    }
    srv_finish();
}
END_TEST

/* A TLS 1.3 KeyUpdate while the daemon's output is backed up behind a
 * small client window (processing paused at the output mark, an
 * SSL_write waiting for room): the daemon reads it when processing
 * resumes and answers with its own KeyUpdate (OpenSSL sends that with its
 * next write), and the SSL_write it retried under the old keys must not
 * break the stream.  Everything arrives in order, and the next request
 * is answered. */
#define KU_GETS 150

START_TEST(tls_key_update_with_output_blocked)
{
    struct tls_client c;
    int p;
    start_small_window(&c, &p);
    REQUIRE(SSL_version(c.ssl) == TLS1_3_VERSION, "not TLS 1.3");
    static char req[KU_GETS * 7];
    for (int i = 0; i < KU_GETS; i++)
        memcpy(req + i * 7, "GET v\r\n", 7);
    tls_say(&c, req, sizeof req);
    /* The socket took what it could and processing paused at the output
     * mark; it stays paused, with over half the mark unsent, until the
     * client reads. */
    double until = mono_s() + (slow_mode() ? 60 : 20);
    while (stat1(p, "client_buffer_bytes") < OUTPUT_PAUSE_BYTES / 2 &&
           mono_s() < until)
        usleep(10000);
    REQUIRE(stat1(p, "client_buffer_bytes") >= OUTPUT_PAUSE_BYTES / 2,
            "the replies never backed up");
    REQUIRE(SSL_key_update(c.ssl, SSL_KEY_UPDATE_REQUESTED) == 1,
            "SSL_key_update");
    REQUIRE(SSL_do_handshake(c.ssl) == 1, "KeyUpdate not sent");
    TSAY(&c, "PING\r\n");
    read_values(&c, KU_GETS);
    TEXPECT(&c, "+PONG\r\n");
    TSAY(&c, "PING\r\n");
    TEXPECT(&c, "+PONG\r\n");
    tls_drop(&c);
    close(p);
    srv_finish();
}
END_TEST

/* ---- a handshake that waits for room ---- */

/* A server certificate of about 80 KB (2,400 padding names besides
 * 127.0.0.1), signed by the test CA with the test server's key, in
 * DIR/big.crt.  OpenSSL clients take certificate lists up to 100 KB. */
static void make_big_server_cert(char *crt, size_t len)
{
    char ext[256], cmd[1024];
    snprintf(ext, sizeof ext, "%s/big.ext", g_tc.dir);
    FILE *f = fopen(ext, "w");
    REQUIRE(f != NULL, "cannot write %s", ext);
    fputs("subjectAltName=IP:127.0.0.1", f);
    for (int i = 0; i < 2400; i++)
        fprintf(f, ",DNS:padding-%04d.cachifyd-test.example", i);
    fputs("\nextendedKeyUsage=serverAuth\n", f);
    REQUIRE(fclose(f) == 0, "cannot write %s", ext);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && openssl req -new -key server.key -subj /CN=big "
             "-out big.csr && openssl x509 -req -in big.csr -CA ca.crt "
             "-CAkey ca.key -CAcreateserial -sha256 -days 30 -extfile "
             "big.ext -out big.crt 2>/dev/null", g_tc.dir);
    REQUIRE(system(cmd) == 0, "openssl could not make big.crt");
    snprintf(crt, len, "%s/big.crt", g_tc.dir);
}

/* The server's first flight (an 80 KB certificate) does not fit in its
 * socket's send buffer while the client offers a 4 KB window: its
 * SSL_do_handshake wants the socket writable (conn_tls.c,
 * read_wants_write), and only the write event can resume it, since the
 * client sends nothing before the whole flight arrived.  The handshake
 * completes and requests are answered. */
START_TEST(tls_handshake_waits_for_room)
{
    static char port[16], crt[256];
    tls_init();
    make_big_server_cert(crt, sizeof crt);
    snprintf(port, sizeof port, "%d", g_tls_port);
    const char *args[] = { "--tls-port", port, "--tls-cert-file", crt,
                           "--tls-key-file", g_tc.server_key,
                           "--tls-ca-cert-file", g_tc.ca,
                           "--tls-auth-clients", "yes", NULL };
    srv_run(args);
    for (int round = 0; round < 3; round++) {
        struct tls_client c;
        REQUIRE(tls_open_fd(&c, small_window_fd(536), g_tc.ca,
                            g_tc.client_crt, g_tc.client_key, 0) == 0,
                "round %d: TLS handshake failed", round);
        TSAY(&c, "PING\r\n");
        TEXPECT(&c, "+PONG\r\n");
        tls_drop(&c);
    }
    srv_finish();
}
END_TEST

/* ---- fairness ---- */

/* The flooder, in a child process (its own core and its own SSL copy):
 * req, n bytes of whole requests, pipelined without end on c until
 * killed (or for 60 s, should the parent fail first); with read_replies,
 * the replies are read as they come, so the daemon's output never
 * pauses. */
static void flood_child(struct tls_client *c, const char *req, size_t n,
                        int read_replies)
{
    static char sink[65536];
    double stop = mono_s() + 60;
    tc_set_nonblock(c->fd, 1);
    while (mono_s() < stop) { /* SIGKILLed by the parent */
        int w = SSL_write(c->ssl, req, (int)n);
        if (w <= 0) {
            int e = SSL_get_error(c->ssl, w);
            ERR_clear_error();
            if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
                _exit(1);
        }
        while (read_replies && SSL_read(c->ssl, sink, sizeof sink) > 0)
            ;
        ERR_clear_error();
        struct pollfd pfd = { c->fd, POLLOUT | (read_replies ? POLLIN : 0),
                              0 };
        (void)poll(&pfd, 1, 100);
    }
    _exit(0);
}

/* Seconds until one PING round trip on fd (plain) or tc (TLS) ends; the
 * bound fails the test. */
static double ping_rtt(int fd, struct tls_client *tc, double bound)
{
    double t0 = mono_s();
    if (tc) {
        /* SSL_read waits up to TS_READ_TIMEOUT_S; the bound is checked
         * after it. */
        TSAY(tc, "PING\r\n");
        TEXPECT(tc, "+PONG\r\n");
    } else {
        say(fd, "PING\r\n");
        struct pollfd pfd = { fd, POLLIN, 0 };
        REQUIRE(poll(&pfd, 1, (int)(bound * 1000)) == 1,
                "plain PING: no reply in %.0f s", bound);
        EXPECT(fd, "+PONG\r\n");
    }
    double rtt = mono_s() - t0;
    REQUIRE(rtt < bound, "PING took %.1f s (bound %.0f s)", rtt, bound);
    return rtt;
}

/* One TLS client pipelining without end (unit, repeated), reading its
 * replies or not, must not starve the others: a plain and a TLS client's
 * PINGs keep coming back, each within a bound of seconds, for 3 s of
 * flood. */
static void flood_others_served(const char *unit, int read_replies)
{
    static char req[32768];
    size_t n = 0, len = strlen(unit);
    while (n + len <= sizeof req) {
        memcpy(req + n, unit, len);
        n += len;
    }
    start_tls("yes", NULL, NULL, NULL, NULL);
    int p = conn_new();
    struct tls_client other, flood;
    tls_open_ok(&other, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    tls_open_ok(&flood, g_tc.ca, g_tc.client_crt, g_tc.client_key);
    pid_t kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0)
        flood_child(&flood, req, n, read_replies);
    double bound = slow_mode() ? 20 : 5, worst = 0;
    double end = mono_s() + 3;
    int pings = 0;
    usleep(300000); /* the flood under way */
    while (mono_s() < end) {
        double a = ping_rtt(p, NULL, bound), b = ping_rtt(-1, &other, bound);
        worst = a > worst ? a : worst;
        worst = b > worst ? b : worst;
        pings++;
    }
    kill(kid, SIGKILL);
    waitpid(kid, NULL, 0);
    long long commands = plain_stat("commands");
    fprintf(stderr, "flood (%zu-byte requests, %s replies): %d PING "
            "pairs, worst %.3f s, %lld commands run\n", len,
            read_replies ? "reading" : "not reading", pings, worst,
            commands);
    REQUIRE(pings > 0, "no PING in 3 s");
    tls_drop(&flood);
    tls_drop(&other);
    close(p);
    srv_finish();
}

/* EXISTS of 400 keys: 808 bytes of request for a 4-byte reply, so the
 * flooder's output never pauses it: only its input paces it. */
static const char *exists_400(void)
{
    static char line[8 + 400 * 2 + 2];
    strcpy(line, "EXISTS");
    for (int i = 0; i < 400; i++)
        strcat(line, " k");
    strcat(line, "\r\n");
    return line;
}

START_TEST(tls_flood_unread_others_served)
{
    flood_others_served("PING\r\n", 0);
}
END_TEST

START_TEST(tls_flood_read_others_served)
{
    flood_others_served("PING\r\n", 1);
}
END_TEST

START_TEST(tls_flood_small_replies_others_served)
{
    flood_others_served(exists_400(), 1);
}
END_TEST

static Suite *tls_hostile_suite(void)
{
    Suite *s = suite_create("tls_hostile");
    TCase *tc = itest_tcase(s, "tls_hostile");
    tcase_add_test(tc, tls_client_never_reads);
    tcase_add_test(tc, tls_client_buffer_budget);
    tcase_add_test(tc, tls_close_notify_after_pipeline);
    tcase_add_test(tc, tls_half_close_long_pipeline);
    tcase_add_test(tc, tls_renegotiation_refused);
    tcase_add_test(tc, tls_partial_record_request_timeout);
    tcase_add_test(tc, tls_pipeline_held_by_openssl);
    tcase_add_test(tc, tls_key_update_with_output_blocked);
    tcase_add_test(tc, tls_handshake_waits_for_room);
    tcase_add_test(tc, tls_flood_unread_others_served);
    tcase_add_test(tc, tls_flood_read_others_served);
    tcase_add_test(tc, tls_flood_small_replies_others_served);
    return s;
}

int main(void)
{
    return itest_main(tls_hostile_suite());
}
