/* tests/integration/test_client_net.c - the sync API of libcachify-client
 * on what only a network backend has.
 *
 * Owns: server limits answered as server errors, AUTH (a password in the
 * URL, a wrong one, a refusal that is not about it), URLs, a Unix socket
 * and IPv6, a daemon that goes away and comes back, the idle timeout's
 * reconnect, connect and read timeouts, socket options, and fake servers
 * in a thread that answer junk, an error, a reply of the wrong type or a
 * stray line before closing.  Every call on every backend is
 * test_client_sync.c.  Timing checks have lower bounds only (plus a
 * generous ceiling), for valgrind runs.
 */
#include "tests/integration/syncitest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>

#include "client/url.h"

/* ---- network backends ---- */

START_TEST(server_limits_are_server_errors)
{
    char key[2000];
    uint64_t t;
    struct cachify *c;

    backend_start(0, NULL);
    c = open_c();
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    ck_assert_int_eq(cachify_acquire(c, key, NULL, &t), CACHIFY_ERR_SERVER);
    ck_assert_msg(strncmp(cachify_errstr(c), "LIMIT ", 6) == 0, "%s",
                  cachify_errstr(c));
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK); /* same connection, fine */
    cachify_close(c);
    backend_finish(0);
}
END_TEST

START_TEST(auth)
{
    struct cachify *c = NULL;
    char err[256];
    uint64_t t;

    SRV_START("--requirepass", "s3cr:t@x");
    snprintf(g_url, sizeof g_url, "cachify://:s3cr:t@x@127.0.0.1:%d",
             g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "auth", NULL, &t), CACHIFY_OK);
    cachify_close(c);
    snprintf(g_url, sizeof g_url, "cachify://:wrong@127.0.0.1:%d", g_ts.port);
    ck_assert_int_eq(cachify_open(&c, g_url, NULL, err, sizeof err),
                     CACHIFY_ERR_AUTH);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(err, "WRONGPASS") != NULL, "%s", err);
    /* No password: the first command says so. */
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "auth2", NULL, &t), CACHIFY_ERR_AUTH);
    ck_assert_msg(strstr(cachify_errstr(c), "NOAUTH") != NULL, "%s",
                  cachify_errstr(c));
    cachify_close(c);
    srv_finish();
    /* A password for a server that has none is an error at open too. */
    SRV_START("--loglevel", "warning");
    snprintf(g_url, sizeof g_url, "cachify://:pw@127.0.0.1:%d", g_ts.port);
    ck_assert_int_eq(cachify_open(&c, g_url, NULL, err, sizeof err),
                     CACHIFY_ERR_AUTH);
    srv_finish();
}
END_TEST

/* Takes the one client slot of a --maxclients 1 --requirepass daemon: a
 * connection it answers (PONG, not -LIMIT: the slot may still be taken by
 * the start-up probe of tests/support/testserver for a moment). */
static int hold_only_slot(void)
{
    char buf[256];

    for (int i = 0; i < 200; i++) {
        int fd = tc_connect(&g_ts);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(tc_send(fd, "PING\r\n"), 0);
        if (tc_read_reply(fd, buf, sizeof buf) > 0 &&
            strncmp(buf, "-LIMIT", 6) != 0)
            return fd;
        close(fd);
        usleep(20 * 1000);
    }
    ck_abort_msg("could not take the daemon's only client slot");
    return -1;
}

/* A server that refuses for another reason than the password (here
 * -LIMIT max number of clients reached, as its reply to AUTH) is not
 * CACHIFY_ERR_AUTH: the password may well be right. */
START_TEST(auth_refused_not_auth)
{
    struct cachify *c = (struct cachify *)1;
    char err[256] = "";
    int held, rc;

    SRV_START("--requirepass", "s3cret", "--maxclients", "1");
    held = hold_only_slot();
    snprintf(g_url, sizeof g_url, "cachify://:s3cret@127.0.0.1:%d",
             g_ts.port);
    rc = cachify_open(&c, g_url, NULL, err, sizeof err);
    ck_assert_msg(rc == CACHIFY_ERR_SERVER || rc == CACHIFY_ERR_IO,
                  "got %s (%s)", cachify_status_name(rc), err);
    ck_assert_ptr_null(c);
    if (rc == CACHIFY_ERR_SERVER)
        ck_assert_msg(strstr(err, "LIMIT") != NULL, "%s", err);
    /* Once the slot is free the same URL works. */
    close(held);
    for (int i = 0; i < 100; i++) {
        if ((rc = cachify_open(&c, g_url, NULL, err, sizeof err)) ==
            CACHIFY_OK)
            break;
        ck_assert_int_ne(rc, CACHIFY_ERR_AUTH);
        usleep(50 * 1000);
    }
    ck_assert_msg(rc == CACHIFY_OK, "%s", err);
    ck_assert_int_eq(cachify_ping(c), CACHIFY_OK);
    cachify_close(c);
    srv_finish();
}
END_TEST

START_TEST(urls)
{
    static const char *const bad[] = {
        "redis://127.0.0.1", "cachify://", "cachify://:7379",
        "cachify://host:0", "cachify://host:65536", "cachify://host:12a",
        "cachify://host:", "cachify://[::1", "cachify://[::1]x",
        "cachify://[nothex]:1", "cachify://::1:7379", "cachify://h/db",
        "cachify://h?x=1", "cachify://user:pw@host", "cachify://bad host",
        "unix://relative", "unix://", "mem", "mem:x",
    };
    struct cachify_url u;
    struct cachify *c = (struct cachify *)1;
    char err[256], path[200];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_msg(cachify_open(&c, bad[i], NULL, err, sizeof err) ==
                          CACHIFY_ERR_ARG, "%s accepted", bad[i]);
        ck_assert_ptr_null(c);
        ck_assert_msg(strncmp(err, "bad URL", 7) == 0, "%s: %s", bad[i], err);
    }
    /* No place for the handle: refused, as cachify_async_open does. */
    err[0] = '\0';
    ck_assert_int_eq(cachify_open(NULL, "mem:", NULL, err, sizeof err),
                     CACHIFY_ERR_ARG);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(cachify_open(NULL, "cachify://127.0.0.1:1", NULL, NULL,
                                  0), CACHIFY_ERR_ARG);
    /* The message never shows a password. */
    cachify_open(&c, "cachify://user:hunter2@host", NULL, err, sizeof err);
    ck_assert_msg(strstr(err, "hunter2") == NULL, "%s", err);
    memset(path, 'p', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    snprintf(err, sizeof err, "unix://%s", path);
    ck_assert_int_eq(cachify_url_parse(err, &u, NULL, 0), CACHIFY_ERR_ARG);
    /* Good ones. */
    ck_assert_int_eq(cachify_url_parse("cachify://[::1]:7000", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_TCP);
    ck_assert_str_eq(u.host, "::1");
    ck_assert_int_eq(u.port, 7000);
    ck_assert_int_eq(cachify_url_parse("cachify://:p@w@db.example:1/", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_str_eq(u.password, "p@w");
    ck_assert_str_eq(u.host, "db.example");
    ck_assert_int_eq(cachify_url_parse("cachify://localhost", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_int_eq(u.port, 7379);
    ck_assert_str_eq(u.password, "");
    ck_assert_int_eq(cachify_url_parse("unix:///run/c.sock", &u, err,
                                       sizeof err), CACHIFY_OK);
    ck_assert_str_eq(u.path, "/run/c.sock");
    ck_assert_int_eq(cachify_url_parse(NULL, &u, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_MEM);
    ck_assert_int_eq(cachify_url_parse("", &u, NULL, 0), CACHIFY_OK);
    ck_assert_int_eq(u.kind, CACHIFY_URL_MEM);
}
END_TEST

START_TEST(unix_and_ipv6)
{
    struct cachify *c;
    uint64_t t;

    srv_init();
    srv_run((const char *const[]){"--unixsocket", g_ts.sock_path, "--bind",
                                  "127.0.0.1 ::1", NULL});
    snprintf(g_url, sizeof g_url, "unix://%s", g_ts.sock_path);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "u", NULL, &t), CACHIFY_OK);
    cachify_close(c);
    snprintf(g_url, sizeof g_url, "cachify://[::1]:%d", g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_is_locked(c, "u"), 1);
    cachify_close(c);
    srv_finish();
}
END_TEST

/* The daemon stops: CACHIFY_ERR_IO; it comes back: the next call works. */
START_TEST(server_gone_and_back)
{
    struct cachify *c;
    uint64_t t;

    backend_start(0, NULL);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "g", NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(ts_stop(&g_ts), 0);
    ck_assert_int_eq(cachify_is_locked(c, "g"), CACHIFY_ERR_IO);
    ck_assert_str_ne(cachify_errstr(c), "");
    ck_assert_int_eq(cachify_ping(c), CACHIFY_ERR_IO); /* connect refused */
    ck_assert_msg(strstr(cachify_errstr(c), "connect") != NULL, "%s",
                  cachify_errstr(c));
    srv_run(NULL);
    ck_assert_int_eq(cachify_is_locked(c, "g"), 0);
    ck_assert_str_eq(cachify_errstr(c), "");
    ck_assert_int_eq(cachify_acquire(c, "g", NULL, &t), CACHIFY_OK);
    cachify_close(c);
    srv_finish();
}
END_TEST

/* The daemon closes an idle connection (--timeout 1): the next call
 * notices before sending and reconnects, so it succeeds. */
START_TEST(idle_timeout_reconnects)
{
    struct cachify *c;
    uint64_t t;

    SRV_START("--timeout", "1");
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    c = open_c();
    ck_assert_int_eq(cachify_acquire(c, "idle", NULL, &t), CACHIFY_OK);
    usleep(2500 * 1000);
    ck_assert_msg(cachify_is_locked(c, "idle") == 1, "%s", cachify_errstr(c));
    ck_assert_str_eq(cachify_errstr(c), "");
    usleep(2500 * 1000);
    ck_assert_msg(cachify_ping(c) == CACHIFY_OK, "%s", cachify_errstr(c));
    usleep(2500 * 1000);
    ck_assert_msg(cachify_release(c, "idle", t) == 1, "%s",
                  cachify_errstr(c));
    cachify_close(c);
    srv_finish();
}
END_TEST

/* A listening socket on 127.0.0.1 with a free port; *port set. */
static int listener(int backlog, int *port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, backlog), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

START_TEST(connect_timeout)
{
    struct cachify_options o = {200, 0, 0, NULL, 0};
    struct cachify *c = NULL;
    char err[256];
    int port, lfd, filler;
    double start;

    /* Nothing listens: refused at once. */
    lfd = listener(1, &port);
    close(lfd);
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    ck_assert_int_eq(cachify_open(&c, g_url, &o, err, sizeof err),
                     CACHIFY_ERR_IO);
    ck_assert_msg(strstr(err, "refused") != NULL, "%s", err);
    /* A listener whose accept queue is full drops SYNs: the connect hangs
     * until the connect timeout. */
    lfd = listener(0, &port);
    filler = socket(AF_INET, SOCK_STREAM, 0);
    {
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

        ck_assert_int_eq(connect(filler, (struct sockaddr *)&sa, sizeof sa), 0);
    }
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    start = mono_s();
    ck_assert_int_eq(cachify_open(&c, g_url, &o, err, sizeof err),
                     CACHIFY_ERR_IO);
    ck_assert(mono_s() - start >= 0.19);
    ck_assert(mono_s() - start < 10);
    ck_assert_msg(strstr(err, "timed out") != NULL, "%s", err);
    close(filler);
    close(lfd);
}
END_TEST

/* Keepalive on the client's socket, so a WAIT FOREVER on a server that
 * vanished without a FIN ends; no Nagle delay on TCP. */
START_TEST(socket_options)
{
    struct cachify *c;
    int port, lfd = listener(4, &port), sfd;

    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    c = open_c(); /* connected (the backlog accepts it) */
    sfd = accept(lfd, NULL, NULL);
    ck_assert_int_ge(sfd, 0);
    ck_assert_int_eq(tc_peer_sockopt(port, SOL_SOCKET, SO_KEEPALIVE), 1);
    ck_assert_int_eq(tc_peer_sockopt(port, IPPROTO_TCP, TCP_NODELAY), 1);
    cachify_close(c);
    close(sfd);
    close(lfd);
}
END_TEST

/* ---- fake servers ---- */

struct fake {
    int lfd;
    const char *reply; /* written after each request; NULL: never answer */
    int conns;         /* connections to serve */
};

static void *fake_main(void *p)
{
    struct fake *f = p;

    for (int i = 0; i < f->conns; i++) {
        int fd = accept(f->lfd, NULL, NULL);
        char buf[4096];

        if (fd < 0)
            break;
        /* One request per connection (the client drops it on error). */
        if (recv(fd, buf, sizeof buf, 0) > 0 && f->reply != NULL)
            tc_send(fd, f->reply);
        /* Wait for the client to hang up before the next accept. */
        while (recv(fd, buf, sizeof buf, 0) > 0)
            ;
        close(fd);
    }
    return NULL;
}

/* Runs `calls` pings-or-acquires against a fake server answering reply. */
static void fake_run(const char *reply, int want, int conns,
                     const struct cachify_options *o)
{
    struct fake f = {-1, reply, conns};
    pthread_t th;
    struct cachify *c;
    int port;
    uint64_t t;

    f.lfd = listener(4, &port);
    pthread_create(&th, NULL, fake_main, &f);
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    c = open_opts(o);
    for (int i = 0; i < conns; i++) {
        int rc = cachify_acquire(c, "k", NULL, &t);

        ck_assert_msg(rc == want, "reply \"%s\": got %s (%s)", itest_esc(reply ? reply : "(none)"),
                      cachify_status_name(rc), cachify_errstr(c));
        ck_assert_str_ne(cachify_errstr(c), "");
    }
    cachify_close(c);
    pthread_join(th, NULL);
    close(f.lfd);
}

START_TEST(fake_servers)
{
    struct cachify_options quick = {0, 200, 0, NULL, 0};

    /* Junk: a protocol error; the connection is dropped and the next call
     * reconnects (the fake server serves a second connection). */
    fake_run("hello there\r\n", CACHIFY_ERR_PROTO, 2, NULL);
    fake_run("$99999999999\r\n", CACHIFY_ERR_PROTO, 1, NULL);
    fake_run("*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n*9\r\n",
             CACHIFY_ERR_PROTO, 1, NULL);
    /* A nil where a token belongs is not an error reply (hiredis #242). */
    fake_run("$-1\r\n", CACHIFY_ERR_PROTO, 2, NULL);
    fake_run("+OK\r\n", CACHIFY_ERR_PROTO, 1, NULL);
    fake_run(":0\r\n", CACHIFY_ERR_PROTO, 1, NULL);
    /* Error replies are mapped by their code. */
    fake_run("-ERR something odd\r\n", CACHIFY_ERR_SERVER, 1, NULL);
    fake_run("-LOCKED k is already locked!\r\n", CACHIFY_LOCKED, 1, NULL);
    /* Closes without a word; never answers (the io timeout). */
    fake_run("", CACHIFY_ERR_IO, 1, NULL);
    fake_run(NULL, CACHIFY_ERR_IO, 1, &quick);
}
END_TEST

/* A server that answers the first connection's request, then writes an
 * unsolicited error line and closes it while the client is idle; the
 * second connection gets a normal reply. */
struct stray {
    int lfd;
    int sent; /* the stray line has been written and the socket closed */
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void *stray_main(void *p)
{
    struct stray *f = p;
    char buf[4096];
    int fd = accept(f->lfd, NULL, NULL);

    if (fd >= 0) {
        if (recv(fd, buf, sizeof buf, 0) > 0)
            tc_send(fd, ":0\r\n");
        tc_send(fd, "-DENIED go away\r\n");
        close(fd);
    }
    pthread_mutex_lock(&f->mu);
    f->sent = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    fd = accept(f->lfd, NULL, NULL);
    if (fd >= 0) {
        if (recv(fd, buf, sizeof buf, 0) > 0)
            tc_send(fd, ":1\r\n");
        while (recv(fd, buf, sizeof buf, 0) > 0)
            ;
        close(fd);
    }
    return NULL;
}

START_TEST(stray_line_then_close)
{
    struct stray f = {-1, 0, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    pthread_t th;
    struct cachify *c;
    int port;

    f.lfd = listener(4, &port);
    pthread_create(&th, NULL, stray_main, &f);
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", port);
    c = open_c();
    ck_assert_int_eq(cachify_is_locked(c, "k"), 0);
    pthread_mutex_lock(&f.mu);
    while (!f.sent)
        pthread_cond_wait(&f.cv, &f.mu);
    pthread_mutex_unlock(&f.mu);
    usleep(100 * 1000); /* let the bytes and the FIN arrive */
    /* Not "DENIED" read as this call's reply, not ERR_IO: a new
     * connection, and its answer. */
    ck_assert_msg(cachify_is_locked(c, "k") == 1, "%s", cachify_errstr(c));
    cachify_close(c);
    pthread_join(th, NULL);
    close(f.lfd);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_net");
    TCase *net = tcase_create("network");

    tcase_add_checked_fixture(net, itest_setup, itest_teardown);
    tcase_set_timeout(net, 120);
    tcase_add_test(net, server_limits_are_server_errors);
    tcase_add_test(net, auth);
    tcase_add_test(net, auth_refused_not_auth);
    tcase_add_test(net, unix_and_ipv6);
    tcase_add_test(net, server_gone_and_back);
    tcase_add_test(net, idle_timeout_reconnects);
    /* These run no daemon (URL parsing, listeners and fake servers of the
     * test's own): with it under valgrind they would only repeat the plain
     * pass. */
    if (!slow_mode()) {
        tcase_add_test(net, urls);
        tcase_add_test(net, stray_line_then_close);
        tcase_add_test(net, connect_timeout);
        tcase_add_test(net, fake_servers);
        tcase_add_test(net, socket_options);
    }
    suite_add_tcase(s, net);
    return itest_main(s);
}
