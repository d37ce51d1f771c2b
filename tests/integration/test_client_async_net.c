/* tests/integration/test_client_async_net.c - Check suite: the async
 * client where only a network can fail it: the daemon dies mid-wait and
 * comes back (CACHIFY_ERR_IO, then a reconnect), nobody listens, AUTH with
 * a wrong or missing password, a fake server that sends garbage, the wrong
 * reply type, a bad token, nothing, or closes; bad URLs; unix sockets and
 * host names.
 *
 * Owns: those tests.  Does not own: the calls themselves on both backends
 * (test_client_async.c).  The helpers are tests/integration/async_itest.h.
 */
#include "tests/integration/async_itest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

/* ---- the daemon goes away and comes back ---- */

START_TEST(test_server_gone)
{
    backend_start(BE_NET, NULL);
    struct cachify_async *holder = open_h(g_url, NULL, 0);
    struct cachify_async *ac = open_h(g_url, NULL, 0);
    struct cachify_lock_opts w = waiting(CACHIFY_FOREVER);
    struct rec wt = { 0 }, q = { 0 };

    take(holder, "gone", NULL);
    CALL(cachify_async_acquire(ac, "gone", &w, rec_tok, &wt));
    ck_assert_int_eq(IS_LOCKED(ac, "gone"), 1);
    ts_kill9(&g_ts);
    RUN_UNTIL(wt.called);
    rec_check(&wt, CACHIFY_ERR_IO, "waiter");
    ck_assert_msg(strstr(wt.err, "closed") || strstr(wt.err, "reset"),
                  "message: %s", wt.err);
    /* Down: the next request fails with a reason, the one after too. */
    CALL(cachify_async_is_locked(ac, "gone", rec_val, &q));
    RUN_UNTIL(q.called);
    rec_check(&q, CACHIFY_ERR_IO, "while down");
    ck_assert_msg(strstr(q.err, "127.0.0.1"), "message: %s", q.err);
    /* Back: both handles reconnect on their next request. */
    srv_run(NULL);
    ck_assert_int_eq(IS_LOCKED(ac, "gone"), 0);
    uint64_t t = take(ac, "gone", NULL);
    ck_assert_int_eq(IS_LOCKED(holder, "gone"), 1);
    ck_assert_int_eq(rel(ac, "gone", t), 1);
    cachify_async_close(ac);
    cachify_async_close(holder);
    backend_finish(BE_NET);
}
END_TEST

/* ---- URLs, AUTH, broken servers ---- */

START_TEST(test_bad_open)
{
    struct cachify_async *ac = (struct cachify_async *)&ac;
    struct cachify_options neg = { -1, 0, 0, NULL, 0 };
    char err[256] = "";
    static const char *const bad[] = { "redis://127.0.0.1", "cachify://",
                                       "unix://relative", "cachify://h:99999" };

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        ck_assert_int_eq(cachify_async_open(&ac, g_base, bad[i], NULL, err,
                                            sizeof err), CACHIFY_ERR_ARG);
        ck_assert_ptr_null(ac);
        ck_assert_msg(err[0] != '\0', "no message for %s", bad[i]);
    }
    ck_assert_int_eq(cachify_async_open(&ac, NULL, "mem:", NULL, err,
                                        sizeof err), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_open(&ac, g_base, "mem:", &neg, err,
                                        sizeof err), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_async_open(&ac, g_base, NULL, NULL, NULL, 0),
                     CACHIFY_OK);
    cachify_async_close(ac);

    /* Nobody listening: the error comes through the callback. */
    srv_init();
    snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    ac = open_h(g_url, NULL, 0);
    struct rec r = { 0 };
    CALL(cachify_async_acquire(ac, "k", NULL, rec_tok, &r));
    RUN_UNTIL(r.called);
    rec_check(&r, CACHIFY_ERR_IO, "refused");
    ck_assert_msg(strstr(r.err, "connect"), "message: %s", r.err);
    cachify_async_close(ac);
    ts_cleanup(&g_ts);
    event_free(g_guard);
    event_base_free(g_base);
}
END_TEST

START_TEST(test_auth)
{
    SRV_START("--requirepass", "s3cret");
    char url[300];
    struct rec r = { 0 }, n = { 0 }, wt = { 0 };
    struct cachify_lock_opts w = waiting(5000);

    snprintf(url, sizeof url, "cachify://:wrong@127.0.0.1:%d", g_ts.port);
    struct cachify_async *bad = open_h(url, NULL, 0);
    CALL(cachify_async_acquire(bad, "a", NULL, rec_tok, &r));
    CALL(cachify_async_acquire(bad, "a", &w, rec_tok, &wt));
    RUN_UNTIL(r.called && wt.called);
    rec_check(&r, CACHIFY_ERR_AUTH, "wrong password");
    rec_check(&wt, CACHIFY_ERR_AUTH, "wrong password, waiting");
    ck_assert_msg(strstr(r.err, "WRONGPASS"), "message: %s", r.err);
    cachify_async_close(bad);

    snprintf(url, sizeof url, "cachify://127.0.0.1:%d", g_ts.port);
    struct cachify_async *none = open_h(url, NULL, 0);
    CALL(cachify_async_is_locked(none, "a", rec_val, &n));
    RUN_UNTIL(n.called);
    rec_check(&n, CACHIFY_ERR_AUTH, "no password");
    ck_assert_msg(strstr(n.err, "NOAUTH"), "message: %s", n.err);
    cachify_async_close(none);

    snprintf(url, sizeof url, "cachify://:s3cret@127.0.0.1:%d", g_ts.port);
    struct cachify_async *ok = open_h(url, NULL, 0);
    uint64_t t = take(ok, "a", NULL);
    memset(&wt, 0, sizeof wt);
    CALL(cachify_async_acquire(ok, "a", &w, rec_tok, &wt));
    ck_assert_int_eq(rel(ok, "a", t), 1);
    RUN_UNTIL(wt.called);
    rec_check(&wt, CACHIFY_OK, "waiter with AUTH");
    cachify_async_close(ok);
    event_free(g_guard);
    event_base_free(g_base);
    srv_finish();
}
END_TEST

/* Refused for another reason than the password (-LIMIT max number of
 * clients reached as the reply to AUTH): not CACHIFY_ERR_AUTH. */
START_TEST(test_auth_refused_not_auth)
{
    SRV_START("--requirepass", "s3cret", "--maxclients", "1");
    char url[300], buf[256];
    struct rec r = { 0 };
    int held = -1;

    /* Take the only slot: a connection answered, not with -LIMIT (the
     * start-up probe of testserver may hold it for a moment). */
    for (int i = 0; i < 200 && held < 0; i++) {
        held = tc_connect(&g_ts);
        ck_assert_int_ge(held, 0);
        ck_assert_int_eq(tc_send(held, "PING\r\n"), 0);
        if (tc_read_reply(held, buf, sizeof buf) <= 0 ||
            strncmp(buf, "-LIMIT", 6) == 0) {
            close(held);
            held = -1;
            usleep(20 * 1000);
        }
    }
    ck_assert_int_ge(held, 0);
    snprintf(url, sizeof url, "cachify://:s3cret@127.0.0.1:%d", g_ts.port);
    struct cachify_async *ac = open_h(url, NULL, 0);
    CALL(cachify_async_is_locked(ac, "a", rec_val, &r));
    RUN_UNTIL(r.called);
    ck_assert_msg(r.status == CACHIFY_ERR_SERVER || r.status == CACHIFY_ERR_IO,
                  "got %s (%s)", cachify_status_name(r.status), r.err);
    if (r.status == CACHIFY_ERR_SERVER)
        ck_assert_msg(strstr(r.err, "LIMIT"), "message: %s", r.err);
    cachify_async_close(ac);
    close(held);
    event_free(g_guard);
    event_base_free(g_base);
    srv_finish();
}
END_TEST

/* Keepalive (a WAIT FOREVER on a vanished server ends) and no Nagle delay
 * on the async TCP connection. */
START_TEST(test_socket_options)
{
    backend_start(BE_NET, NULL);
    struct cachify_async *ac = open_h(g_url, NULL, 0);

    ck_assert_int_eq(IS_LOCKED(ac, "opt"), 0); /* connected */
    ck_assert_int_eq(tc_peer_sockopt(g_ts.port, SOL_SOCKET, SO_KEEPALIVE), 1);
    ck_assert_int_eq(tc_peer_sockopt(g_ts.port, IPPROTO_TCP, TCP_NODELAY), 1);
    cachify_async_close(ac);
    backend_finish(BE_NET);
}
END_TEST

/* A fake server: accepts, reads a request, answers `reply` (NULL: never,
 * "" : closes), keeps the connection open.  Returns its port. */
static int fake_server(const char *reply)
{
    struct sockaddr_in in = { 0 };
    socklen_t len = sizeof in;
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert(lfd >= 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert(bind(lfd, (struct sockaddr *)&in, sizeof in) == 0);
    ck_assert(listen(lfd, 16) == 0);
    ck_assert(getsockname(lfd, (struct sockaddr *)&in, &len) == 0);
    g_fake = fork();
    ck_assert(g_fake >= 0);
    if (g_fake == 0) {
        for (;;) {
            char buf[512];
            int c = accept(lfd, NULL, NULL);
            if (c < 0)
                _exit(0);
            if (read(c, buf, sizeof buf) > 0 && reply != NULL) {
                if (*reply == '\0')
                    close(c);
                else if (write(c, reply, strlen(reply)) < 0)
                    _exit(1);
            }
        }
    }
    close(lfd);
    return ntohs(in.sin_port);
}

START_TEST(test_broken_server)
{
    static const struct {
        const char *reply;
        int status;
        const char *says;
    } cases[] = {
        { "%%% this is not RESP\r\n", CACHIFY_ERR_PROTO, "bad reply" },
        { "+OK\r\n", CACHIFY_ERR_PROTO, "unexpected reply" },
        { ":-5\r\n", CACHIFY_ERR_PROTO, "bad token" },
        { NULL, CACHIFY_ERR_IO, "no reply" },
        { "", CACHIFY_ERR_IO, "" }, /* "closed", or a reset */
    };
    int c = _i;
    char url[64];
    struct rec a = { 0 }, b = { 0 };

    snprintf(url, sizeof url, "cachify://127.0.0.1:%d",
             fake_server(cases[c].reply));
    struct cachify_async *ac = open_h(url, NULL, 300);
    CALL(cachify_async_acquire(ac, "k", NULL, rec_tok, &a));
    CALL(cachify_async_is_locked(ac, "k", rec_val, &b));
    RUN_UNTIL(a.called && b.called);
    rec_check(&a, cases[c].status, "first");
    rec_check(&b, cases[c].status, "second");
    ck_assert_msg(strstr(a.err, cases[c].says), "message: %s", a.err);
    cachify_async_close(ac);
    event_free(g_guard);
    event_base_free(g_base);
}
END_TEST

START_TEST(test_unix_and_names)
{
    srv_init();
    srv_run((const char *const[]){ "--unixsocket", g_ts.sock_path, NULL });
    char url[300];
    int fd = -1;

    /* ts_start waits for the TCP listener; the unix one may come a moment
     * later. */
    for (double end = mono_s() + bound_s(); fd < 0 && mono_s() < end;) {
        fd = tc_connect_unix(g_ts.sock_path);
        if (fd < 0)
            usleep(20000);
    }
    ck_assert_msg(fd >= 0, "no unix socket at %s", g_ts.sock_path);
    close(fd);
    snprintf(url, sizeof url, "unix://%s", g_ts.sock_path);
    struct cachify_async *ux = open_h(url, NULL, 0);
    uint64_t t = take(ux, "u", NULL);
    /* A host name goes through the resolver (localhost: /etc/hosts). */
    snprintf(url, sizeof url, "cachify://localhost:%d", g_ts.port);
    struct cachify_async *nm = open_h(url, NULL, 0);
    ck_assert_int_eq(IS_LOCKED(nm, "u"), 1);
    ck_assert_int_eq(rel(ux, "u", t), 1);
    ck_assert_int_eq(IS_LOCKED(nm, "u"), 0);
    cachify_async_close(nm);
    cachify_async_close(ux);
    event_free(g_guard);
    event_base_free(g_base);
    srv_finish();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_async_net");
    TCase *tc = itest_tcase(s, "async_net");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_server_gone);
    tcase_add_test(tc, test_bad_open);
    tcase_add_test(tc, test_auth);
    tcase_add_test(tc, test_auth_refused_not_auth);
    tcase_add_loop_test(tc, test_broken_server, 0, 5);
    tcase_add_test(tc, test_unix_and_names);
    tcase_add_test(tc, test_socket_options);
    return itest_main(s);
}
