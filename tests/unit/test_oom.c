/* tests/unit/test_oom.c - Check suite: out of memory anywhere in the command
 * path never crashes the daemon, never loses a reply silently, and never
 * costs another client its locks.
 *
 * Owns: a scripted session of four fake clients (every command, waits and
 * hand-offs, expiry, SESSION locks, pipelining, a close, QUIT) run through
 * the daemon's own conn.c with tests/support/cmdharness.h, and its replay
 * with the Nth allocation failing (alloc_fail_nth), for every N the session
 * makes, then with every allocation from the Nth on failing
 * (alloc_fail_after).  libevent's and jansson's allocations go through the
 * seam too, so a reply that cannot be buffered is among the failures.
 *
 * What each replay must show: the engine's invariants after every step
 * (cmdharness hx_check); each client's replies equal to the healthy run's
 * up to the first difference, and that difference explained by the
 * failure: "-ERR out of memory" / "-PROTO out of memory" there, or the
 * connection dropped, or (only for a client whose result depended on
 * another's) a failure shown to some other client; after the injector is
 * off, a new client is served and a lock taken before the failure is still
 * held with its token.  Leaks are for the sanitizer run to find.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HX_FAIL(...) ck_abort_msg(__VA_ARGS__)
#include "daemon/cmd_compat.h"
#include "tests/support/cmdharness.h"

/* One step of the session: client, bytes (NULL: advance the clock by ms;
 * "" : close that client). */
struct step {
    int client;
    const char *bytes;
    unsigned ms;
};

static const struct step session[] = {
    { 1, "ACQUIRE a TTL 1000\r\n", 0 },
    { 1, "ACQUIRE b SESSION\r\nIS_LOCKED a\r\nPTTL a\r\n", 0 },
    { 2, "ACQUIRE a WAIT 5000 SESSION\r\n", 0 },
    { 2, "PING behind-the-wait\r\n", 0 },
    { 0, NULL, 1500 }, /* a expires: handed to client 2 */
    { 1, "*3\r\n$7\r\nACQUIRE\r\n$1\r\nc\r\n$7\r\nSESSION\r\n", 0 },
    { 1, "EXTEND a 1 100\r\nRELEASE b\r\nSTATS\r\nHELP\r\n", 0 },
    { 2, "ACQUIRE \"q k\\x01\" TTL 50\r\nRELEASE a\r\n", 0 },
    { 3, "ACQUIRE c WAIT 100\r\n", 0 },
    { 0, NULL, 200 },  /* client 3's wait times out */
    { 1, "PING xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n", 0 },
    { 2, "ACQUIRE x1\r\nACQUIRE x2\r\nACQUIRE x3\r\nACQUIRE x4\r\n"
         "ACQUIRE x5\r\nACQUIRE x6\r\nACQUIRE x7\r\nACQUIRE x8\r\n", 0 },
    { 3, "ACQUIRE c WAIT FOREVER\r\n", 0 },
    { 1, "", 0 },      /* client 1 closes: c goes to client 3 */
    { 3, "IS_LOCKED c\r\nRELEASE c\r\nFROB\r\n", 0 },
    { 1, "PING again\r\n", 0 },
    /* The Redis commands' allocations: values, a SET ... GET's copy of
     * the old value, client names, INFO's text. */
    { 3, "SET v1 hello NX PX 5000\r\nSET v1 bye GET\r\n"
         "CLIENT SETNAME me\r\nHELLO 2 SETNAME you\r\n", 0 },
    { 3, "MGET v1 nope\r\nGETDEL v1\r\nINFO keyspace\r\n"
         "SETEX v2 5 x\r\nEXPIRE v2 50\r\nCLIENT GETNAME\r\n", 0 },
    { 2, "QUIT\r\n", 0 },
};
#define NSTEPS (sizeof(session) / sizeof(session[0]))

struct outcome {
    char *trace[HX_CLIENTS]; /* each client's replies (cmdharness trace) */
    unsigned long drops[HX_CLIENTS];
    int eof[HX_CLIENTS];     /* closed by the server at the end */
    unsigned long allocs;    /* allocations the injector saw */
    unsigned long failures;  /* allocations it failed */
};

static void outcome_free(struct outcome *o)
{
    for (int i = 0; i < HX_CLIENTS; i++)
        free(o->trace[i]);
    memset(o, 0, sizeof(*o));
}

static char *take_trace(struct hx_client *cl)
{
    size_t n = cl->trace ? evbuffer_get_length(cl->trace) : 0;
    char *s = malloc(n + 1);
    ck_assert_ptr_nonnull(s);
    if (n)
        evbuffer_remove(cl->trace, s, n);
    s[n] = '\0';
    return s;
}

/* Runs the session; mode 0: healthy, 1: the nth allocation fails, 2: every
 * allocation from the nth on fails.  Fills *o and checks recovery. */
static void run(int mode, long n, struct outcome *o)
{
    struct hx h;
    char line[128];
    memset(&h, 0, sizeof(h));
    ck_assert_int_eq(config_defaults(&h.cfg), 0);
    h.cfg.loglevel = LOG_ERROR;
    h.tracing = 1;
    ck_assert_int_eq(hx_start(&h), 0);

    /* A lock taken before anything fails, by a client that then idles. */
    hx_send(&h, 0, "ACQUIRE ctl TTL FOREVER\r\n", 25);
    hx_check(&h);
    ck_assert_uint_eq(h.cl[0].replies, 1);
    ck_assert_msg(h.cl[0].last[0] == ':', "ctl: %s", h.cl[0].last);
    long long ctl_token = atoll(h.cl[0].last + 1);
    if (h.cl[0].trace)
        evbuffer_drain(h.cl[0].trace, evbuffer_get_length(h.cl[0].trace));

    unsigned long a0 = alloc_count(), f0 = alloc_failures();
    if (getenv("OOM_TRACE")) /* names the run a failure happened in */
        fprintf(stderr, "run mode %d n %ld\n", mode, n);
    if (mode == 1)
        alloc_fail_nth(n);
    else if (mode == 2)
        alloc_fail_after(n - 1);
    for (size_t s = 0; s < NSTEPS; s++) {
        const struct step *st = &session[s];
        if (!st->bytes)
            hx_advance(&h, (uint64_t)st->ms * 1000);
        else if (!st->bytes[0])
            hx_close(&h, st->client);
        else
            hx_send(&h, st->client, st->bytes, strlen(st->bytes));
        hx_check(&h);
    }
    alloc_fail_reset();
    o->allocs = alloc_count() - a0;
    o->failures = alloc_failures() - f0;
    hx_check(&h);
    for (int i = 0; i < HX_CLIENTS; i++) {
        o->trace[i] = take_trace(&h.cl[i]);
        o->drops[i] = h.cl[i].drops;
        o->eof[i] = h.cl[i].eof;
    }

    /* Recovery: a new client is served, and the lock from before the
     * failure is held by the same token. */
    hx_close(&h, 3);
    hx_send(&h, 3, "PING\r\n", 6);
    hx_check(&h);
    ck_assert_str_eq(h.cl[3].last, "+PONG");
    hx_send(&h, 3, "IS_LOCKED ctl\r\n", 15);
    hx_check(&h);
    ck_assert_str_eq(h.cl[3].last, ":1");
    snprintf(line, sizeof(line), "RELEASE ctl %lld\r\n", ctl_token);
    hx_send(&h, 3, line, strlen(line));
    hx_check(&h);
    ck_assert_str_eq(h.cl[3].last, ":1");
    hx_send(&h, 3, "ACQUIRE after-oom\r\n", 19);
    hx_check(&h);
    ck_assert_msg(h.cl[3].last[0] == ':', "after: %s", h.cl[3].last);
    hx_stop(&h);
}

static int is_oom_line(const char *line, size_t len)
{
    return (len == 18 && memcmp(line, "-ERR out of memory", 18) == 0) ||
           (len == 20 && memcmp(line, "-PROTO out of memory", 20) == 0);
}

/* Compares one client's replies with the healthy run's.  Returns 0 when
 * equal, 1 when the first difference is explained by this client (an
 * out-of-memory line there, or a shorter run ended by a drop), 2 when it is
 * not (then another client must show the failure). */
static int compare(const char *base, const char *got, unsigned long base_drops,
                   unsigned long drops, int eof)
{
    size_t i = 0;
    while (base[i] && base[i] == got[i])
        i++;
    if (!base[i] && !got[i])
        return 0;
    /* Back to the start of the differing line. */
    while (i > 0 && got[i - 1] != '\n')
        i--;
    /* Dropped: its later replies (after a reconnect) may differ; or cut
     * short by a close that came early (the healthy run's QUIT never ran). */
    if (drops > base_drops || (!got[i] && eof))
        return 1;
    size_t len = strcspn(got + i, "\n");
    return got[i] && is_oom_line(got + i, len) ? 1 : 2;
}

static void check_against(const struct outcome *base, const struct outcome *o,
                          int mode, long n)
{
    int explained = 0, unexplained = 0;
    for (int i = 1; i < HX_CLIENTS; i++) {
        int r = compare(base->trace[i], o->trace[i], base->drops[i],
                        o->drops[i], o->eof[i]);
        explained |= r == 1;
        unexplained |= r == 2;
    }
    if (o->failures == 0) {
        for (int i = 1; i < HX_CLIENTS; i++)
            ck_assert_msg(strcmp(base->trace[i], o->trace[i]) == 0,
                          "mode %d n %ld: no allocation failed, yet client "
                          "%d's replies differ:\n%s\n--- healthy:\n%s", mode,
                          n, i, o->trace[i], base->trace[i]);
        return;
    }
    if (unexplained && !explained) {
        for (int i = 1; i < HX_CLIENTS; i++)
            fprintf(stderr, "client %d (drops %lu, healthy %lu):\n%s--- "
                    "healthy:\n%s\n", i, o->drops[i], base->drops[i],
                    o->trace[i], base->trace[i]);
        ck_abort_msg("mode %d n %ld: replies changed with no client told "
                     "of the failure (see above)", mode, n);
    }
}

START_TEST(test_healthy_session)
{
    struct outcome base = { 0 };
    run(0, 0, &base);
    ck_assert_uint_eq(base.failures, 0);
    ck_assert_uint_gt(base.allocs, 20);
    /* The harness really drives the daemon: spot-check the replies. */
    ck_assert_ptr_nonnull(strstr(base.trace[2], ":T\n+OK\n")); /* QUIT */
    ck_assert_ptr_nonnull(strstr(base.trace[2], "$\n"));       /* PING msg */
    ck_assert_ptr_nonnull(strstr(base.trace[3], "-TIMEOUT c is already locked!\n"));
    ck_assert_ptr_nonnull(strstr(base.trace[3], "-ERR unknown command 'FROB'\n"));
    char help[32];
    snprintf(help, sizeof(help), "*%zu\n", commands_count());
    ck_assert_ptr_nonnull(strstr(base.trace[1], help));        /* HELP */
    ck_assert_uint_eq(base.drops[2], 1);                       /* QUIT */
    /* The Redis steps, one reply each (the trace shows each reply's type:
     * SET NX, SET GET, CLIENT SETNAME, HELLO, MGET, GETDEL, INFO, SETEX,
     * EXPIRE, CLIENT GETNAME). */
    ck_assert_ptr_nonnull(strstr(base.trace[3],
                                 "+OK\n$\n+OK\n*14\n*2\n$\n$\n+OK\n:1\n$\n"));
    outcome_free(&base);
}
END_TEST

static void sweep(int mode)
{
    struct outcome base = { 0 };
    run(0, 0, &base);
    long k = (long)base.allocs;
    unsigned long failed_total = 0;
    for (long n = 1; n <= k + 1; n++) {
        struct outcome o = { 0 };
        run(mode, n, &o);
        check_against(&base, &o, mode, n);
        failed_total += o.failures;
        outcome_free(&o);
    }
    /* Every allocation of the session was made to fail once. */
    ck_assert_uint_ge(failed_total, (unsigned long)k);
    outcome_free(&base);
}

START_TEST(test_fail_each_allocation_once)
{
    sweep(1);
}
END_TEST

START_TEST(test_fail_every_allocation_from_n)
{
    sweep(2);
}
END_TEST

int main(void)
{
    hx_route_allocations();
    Suite *s = suite_create("oom");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_healthy_session);
    tcase_add_test(tc, test_fail_each_allocation_once);
    tcase_add_test(tc, test_fail_every_allocation_from_n);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
