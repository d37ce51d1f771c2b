/* tests/integration/test_crash.c - Check suite: the daemon killed with
 * kill -9, against the real daemon and its state file.
 *
 * Owns: kill -9 at every kind of lease (longer than the horizon, FOREVER,
 * extended, renewed, short ones waited out, SESSION ones, one released
 * just before), the answers while recovering, and kill -9 at random
 * moments during grant and extend traffic (CACHIFYD_CRASH_ROUNDS rounds,
 * 5 by default; CACHIFYD_CRASH_SEED replays a printed seed).  Does not
 * own: clean restarts, a clean stop or a journal that fails, and hostile
 * files (test_restart.c), the engine's journal hooks
 * (engine/tests/test_locktable.c) or waiting (test_waiting.c).
 *
 * The crash checks use the bounds of test_stress.c's checker, which hold
 * whatever the scheduling: a lease granted for ttl on an ACQUIRE *sent* at
 * a ends no earlier than a + ttl on the daemon's clock (CLOCK_MONOTONIC,
 * ours too); an EXTEND key token ms answered :1 and sent at s ends no
 * earlier than s + ms.  After a crash no other grant of the key may be
 * *received* before that end, and a lease that has not ended must still be
 * held by its token (RELEASE key token answers :1).  A request whose reply
 * never came (the kill cut it) may or may not have happened: an ACQUIRE
 * may then hold its key on unknown terms (the check accepts -TIMEOUT for
 * it), a RELEASE may have ended its lease (that key is not checked).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/integration/stateitest.h"

/* ---- the crash of the issue: leases that outlive the recovery wait ---- */

/* Starts the daemon with the state file and long_lease_ms 2 s (scaled);
 * args (cap entries) gets its arguments, for the restarts. */
static void run_short_long_lease(const char **args, size_t cap)
{
    static char lease[32];
    srv_init();
    snprintf(lease, sizeof(lease), "%lld", scaled(2000));
    args_with(args, cap, (const char *const[]){ "--long_lease_ms", lease,
                                                NULL });
    srv_run(args);
}

/* Waits (boundedly) until the restarted daemon has stopped recovering. */
static void wait_recovered(void)
{
    double until = now_ms() + LATE_MS;
    while (stat_of("recovering") && now_ms() < until)
        usleep(20000);
    ck_assert_msg(!stat_of("recovering"), "still recovering");
}

/* A takes k1 for 120 s, k2 forever, k3 for 1 s then extends it to 120 s,
 * k4 for 1 s then renews it five times, and s1 as a SESSION lock forever;
 * then the daemon is killed.  After the restart B waits for k1..k4 with no
 * bound: none of them is granted while A's leases run (they come back
 * held, with A's tokens), and the answers agree (IS_LOCKED 1, PTTL what is
 * left, -LOCKED).  A's tokens still release them; only then is B served,
 * with larger tokens.  s1 ended with A's connection (the crash closed it):
 * it is free once recovery ends. */
START_TEST(crash_keeps_long_leases)
{
    const char *args[16];
    run_short_long_lease(args, 16);
    int a = conn_new();
    double t0 = now_ms();
    long long t1 = acquire(a, "ACQUIRE k1 TTL 120000\r\n");
    long long t2 = acquire(a, "ACQUIRE k2 TTL FOREVER\r\n");
    long long t3 = acquire(a, "ACQUIRE k3 TTL 1000\r\n");
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "EXTEND k3 %lld 120000\r\n", t3);
    say(a, cmd);
    EXPECT(a, ":1\r\n");
    long long t4 = acquire(a, "ACQUIRE k4 TTL 1000\r\n");
    for (int i = 0; i < 5; i++) {
        snprintf(cmd, sizeof(cmd), "EXTEND k4 %lld %d\r\n", t4,
                 30000 + 20000 * i);
        say(a, cmd);
        EXPECT(a, ":1\r\n");
    }
    long long ts1 = acquire(a, "ACQUIRE s1 SESSION TTL FOREVER\r\n");
    long long maxold = llmax(llmax(t1, t2), llmax(llmax(t3, t4), ts1));
    ts_kill9(&g_ts);
    close(a);

    srv_run(args);
    int b[4], c = conn_new();
    const char *keys[4] = { "k1", "k2", "k3", "k4" };
    for (int i = 0; i < 4; i++) {
        b[i] = conn_new();
        snprintf(cmd, sizeof(cmd), "ACQUIRE %s WAIT FOREVER\r\n", keys[i]);
        say(b[i], cmd);
    }
    double el = now_ms() - t0;
    int_between(c, "PTTL k1\r\n", 1, 120000);
    int_between(c, "PTTL k1\r\n", (long long)(120000 - el - 60000), 120000);
    say(c, "PTTL k2\r\nIS_LOCKED k1\r\nIS_LOCKED k2\r\nIS_LOCKED k3\r\n"
           "IS_LOCKED k4\r\nACQUIRE k1\r\n");
    EXPECT(c, ":-1\r\n:1\r\n:1\r\n:1\r\n:1\r\n"
              "-LOCKED k1 is already locked!\r\n");
    int_between(c, "PTTL k3\r\n", (long long)(120000 - el - 60000), 120000);
    int_between(c, "PTTL k4\r\n", (long long)(110000 - el - 60000), 110000);
    /* Well past the recovery wait (2 s of long_lease_ms plus a quarter),
     * nobody is served: those leases are A's. */
    wait_recovered();
    for (int i = 0; i < 4; i++)
        expect_quiet(b[i], quiet_ms());
    /* The SESSION lock ended with its connection. */
    say(c, "IS_LOCKED s1\r\n");
    EXPECT(c, ":0\r\n");
    long long prev = maxold;
    long long toks[4] = { t1, t2, t3, t4 };
    for (int i = 0; i < 4; i++) {
        release_ok(c, keys[i], toks[i]);
        long long got = read_token(b[i]);
        ck_assert_msg(got > prev, "token %lld after %lld", got, prev);
        prev = got;
    }
    close_fds(b[0], b[1], b[2], b[3], c, -1);
    srv_finish();
}
END_TEST

/* Free records are gathered for a few ms, then written with no request
 * behind them to push them out: after RELEASEs of long leases (a binary
 * key among them) and nothing else, the journal gets their free records
 * by itself, and a kill -9 then does not bring those locks back.  The
 * leases not released come back with their tokens, a stored value (SET)
 * with its bytes: the hold records the daemon formats itself load. */
START_TEST(crash_after_release_forgets_lease)
{
    const char *args[16];
    run_short_long_lease(args, 16);
    int a = conn_new();
    long long t1 = acquire(a, "ACQUIRE k1 TTL 120000\r\n");
    long long t2 = acquire(a, "ACQUIRE k2 TTL 120000\r\n");
    long long tbin = acquire_bin(a, "120000");
    say(a, "SET kv some-value NX PX 120000\r\n");
    EXPECT(a, "+OK\r\n");
    release_ok(a, "k1", t1);
    release_bin(a, tbin);
    /* Nothing else is sent: the daemon's own timer writes them. */
    char k1_free[64], bin_free[64];
    snprintf(k1_free, sizeof(k1_free), "{\"free\":\"6b31\",\"token\":%lld}\n",
             t1);
    snprintf(bin_free, sizeof(bin_free),
             "{\"free\":\"6200ff0d\",\"token\":%lld}\n", tbin);
    double until = now_ms() + LATE_MS;
    while (!(file_has_tail(g_ts.state_path, k1_free) &&
             file_has_tail(g_ts.state_path, bin_free)) &&
           now_ms() < until)
        usleep(20000);
    ck_assert_msg(file_has_tail(g_ts.state_path, k1_free) &&
                      file_has_tail(g_ts.state_path, bin_free),
                  "the free records were not written");
    ts_kill9(&g_ts);
    close(a);

    srv_run(args);
    int c = conn_new();
    wait_recovered();
    say(c, "IS_LOCKED k1\r\nIS_LOCKED k2\r\nGET kv\r\n");
    EXPECT(c, ":0\r\n:1\r\n$10\r\nsome-value\r\n");
    const char *isl[] = { "IS_LOCKED", bin_key };
    size_t isll[] = { 9, sizeof(bin_key) };
    say_resp(c, 2, isl, isll);
    EXPECT(c, ":0\r\n");
    release_ok(c, "k2", t2);
    check_stats("locks_held", 1LL, NULL);
    close(c);
    srv_finish();
}
END_TEST

/* Short leases are waited out: nothing else is granted before the last
 * one granted before the crash has run out, and the answers agree while
 * waiting.  Then a second crash *during* the recovery wait must keep it. */
START_TEST(crash_waits_out_short_leases)
{
    srv_init();
    const char *args[16];
    long long ttl = scaled(1500);
    char lease[32], cmd[128];
    snprintf(lease, sizeof(lease), "%lld", scaled(4000));
    args_with(args, 16, (const char *const[]){ "--long_lease_ms", lease,
                                               NULL });
    srv_run(args);
    int a = conn_new();
    double sent = now_ms();
    snprintf(cmd, sizeof(cmd), "ACQUIRE p1 TTL %lld\r\n", ttl);
    long long maxold = acquire(a, cmd);
    ts_kill9(&g_ts);
    close(a);
    srv_run(args);
    a = conn_new();
    double before = now_ms();
    say(a, "ACQUIRE p1\r\nACQUIRE other\r\nIS_LOCKED p1\r\nIS_LOCKED other\r\n"
           "RELEASE p1\r\n");
    EXPECT(a, "-LOCKED p1 is already locked!\r\n"
              "-LOCKED other is already locked!\r\n:1\r\n:1\r\n:0\r\n");
    ck_assert_msg(now_ms() < sent + (double)ttl, "too slow to test");
    ck_assert(stat_of("recovering"));
    /* PTTL says how long the key may still be held (at least what is left
     * of p1, at most the lease plus the horizon's slack). */
    int_between(a, "PTTL other\r\n",
                (long long)(sent + (double)ttl - now_ms()) - 2,
                ttl + scaled(4000));
    /* A second crash while recovering: the wait is kept. */
    ts_kill9(&g_ts);
    close(a);
    srv_run(args);
    a = conn_new();
    if (now_ms() < sent + (double)ttl - 50) {
        say(a, "IS_LOCKED p1\r\n");
        EXPECT(a, ":1\r\n");
    }
    long long got = acquire(a, "ACQUIRE p1 WAIT 60000\r\n");
    double at = now_ms();
    ck_assert_msg(at >= sent + (double)ttl - CLOCK_SLACK_MS,
                  "p1 granted %.0f ms after A's grant, its TTL %lld",
                  at - sent, ttl);
    ck_assert_msg(at < before + (double)ttl + (double)scaled(4000) + LATE_MS,
                  "granted %.0f ms after the restart", at - before);
    ck_assert(got > maxold);
    close(a);
    srv_finish();
}
END_TEST

/* ---- kill -9 at random moments during grant and extend traffic ---- */

#define CK_KEYS 24
#define CK_BURST 160
#define CK_LONG_LEASE scaled(1000) /* the daemon's long_lease_ms */

struct ck_lease {
    long long token;   /* 0: no lease we know of */
    double lo_end;     /* its end is no earlier (ms, monotonic); INFINITY */
    int durable;       /* longer than long_lease_ms once: journaled, so
                          restored after a crash with its token */
    int unsure;        /* a request on it went unanswered */
};

struct ck_req {
    int key;
    int kind;          /* 0 ACQUIRE, 1 EXTEND, 2 RELEASE */
    long long ttl;     /* ms; 0 = FOREVER */
    double sent;
};

static unsigned ck_rand(unsigned *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static long long ck_ttl(unsigned *seed)
{
    static const long long ttls[] = { 300, 700, 1000, 1500, 4000, 0 };
    long long t = ttls[ck_rand(seed) % 6];
    return t ? scaled(t) : 0;
}

static void ck_format(char *cmd, size_t cap, int round, const struct ck_req *q,
                      const struct ck_lease *l)
{
    char ttl[32];
    if (q->ttl)
        snprintf(ttl, sizeof(ttl), "%lld", q->ttl);
    else
        snprintf(ttl, sizeof(ttl), "FOREVER");
    if (q->kind == 0)
        snprintf(cmd, cap, "ACQUIRE c%d-%d TTL %s\r\n", round, q->key, ttl);
    else if (q->kind == 1)
        snprintf(cmd, cap, "EXTEND c%d-%d %lld %lld\r\n", round, q->key,
                 l->token, q->ttl ? q->ttl : scaled(4000));
    else
        snprintf(cmd, cap, "RELEASE c%d-%d %lld\r\n", round, q->key,
                 l->token);
}

/* What a reply (or its absence) tells about the lease. */
static void ck_apply(struct ck_lease *l, const struct ck_req *q,
                     const char *reply, long long *maxtok)
{
    long long n, ms = q->ttl ? q->ttl : scaled(4000);
    if (!reply) {
        l->unsure |= q->kind != 1; /* an EXTEND only ever lengthens */
        return;
    }
    if (q->kind == 0 && sscanf(reply, ":%lld", &n) == 1) {
        ck_assert_msg(!l->token, "granted a key we hold");
        l->token = n;
        l->lo_end = q->ttl ? q->sent + (double)q->ttl : INFINITY;
        l->durable = !q->ttl || q->ttl > CK_LONG_LEASE;
        *maxtok = llmax(*maxtok, n);
    } else if (q->kind == 1 && strcmp(reply, ":1") == 0) {
        l->lo_end = q->sent + (double)ms;
        l->durable |= ms > CK_LONG_LEASE;
    } else if (q->kind == 2 && strcmp(reply, ":1") == 0) {
        l->token = 0;
    }
}

static long ck_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = recv(fd, buf + n, 1, 0);
        if (r <= 0)
            return -1;
        if (buf[n] == '\n') {
            buf[n > 0 && buf[n - 1] == '\r' ? n - 1 : n] = '\0';
            return (long)n;
        }
        n++;
    }
    return -1;
}

/* One round: some requests one by one, then a pipelined burst that the
 * kill cuts after a random number of replies; then the checks. */
static void crash_round(int round, unsigned *seed, const char *const *args,
                        long long *maxtok)
{
    struct ck_lease l[CK_KEYS];
    struct ck_req q[CK_BURST];
    char cmd[160], reply[160];
    memset(l, 0, sizeof(l));
    int a = conn_new();
    for (int i = 0; i < 3 * CK_KEYS; i++) {
        struct ck_req r = { (int)(ck_rand(seed) % CK_KEYS), 0, ck_ttl(seed),
                            0 };
        r.kind = l[r.key].token ? 1 + (int)(ck_rand(seed) % 4 == 0) : 0;
        ck_format(cmd, sizeof(cmd), round, &r, &l[r.key]);
        r.sent = now_ms();
        say(a, cmd);
        ck_assert_int_ge(ck_line(a, reply, sizeof(reply)), 0);
        ck_apply(&l[r.key], &r, reply, maxtok);
    }
    /* The burst: every key once or more, grants and extends mixed. */
    struct ck_lease planned[CK_KEYS];
    memcpy(planned, l, sizeof(l));
    size_t nq = 0;
    struct itest_buf out = { 0 };
    double sent = now_ms();
    while (nq < CK_BURST) {
        struct ck_req r = { (int)(ck_rand(seed) % CK_KEYS), 0, ck_ttl(seed),
                            sent };
        if (planned[r.key].token) {
            r.kind = 1; /* extend with the token known before the burst */
        } else {
            planned[r.key].token = -1; /* one ACQUIRE per free key */
        }
        if (r.kind == 1 && l[r.key].token == 0)
            continue;
        ck_format(cmd, sizeof(cmd), round, &r, &l[r.key]);
        buf_str(&out, cmd);
        q[nq++] = r;
    }
    ck_assert_int_eq(tc_sendn(a, out.p, out.len), 0);
    free(out.p);
    size_t cut = ck_rand(seed) % (CK_BURST + 1), got = 0;
    for (; got < cut; got++) {
        ck_assert_int_ge(ck_line(a, reply, sizeof(reply)), 0);
        ck_apply(&l[q[got].key], &q[got], reply, maxtok);
    }
    ts_kill9(&g_ts);
    /* What was answered before the kill still counts. */
    for (; got < nq; got++) {
        long n = ck_line(a, reply, sizeof(reply));
        ck_apply(&l[q[got].key], &q[got], n >= 0 ? reply : NULL, maxtok);
    }
    close(a);

    srv_run(args);
    int w[CK_KEYS];
    int c = conn_new();
    for (int k = 0; k < CK_KEYS; k++) {
        w[k] = -1;
        if (!l[k].token || (l[k].unsure && isinf(l[k].lo_end)))
            continue;
        double left = l[k].lo_end - now_ms();
        if (l[k].durable && !l[k].unsure && left > 1000) {
            /* A journaled lease not over yet: still held by its token.
             * (A short one is waited out instead, checked below.) */
            snprintf(cmd, sizeof(cmd), "RELEASE c%d-%d %lld\r\n", round, k,
                     l[k].token);
            say(c, cmd);
            ck_assert_int_ge(ck_line(c, reply, sizeof(reply)), 0);
            ck_assert_msg(strcmp(reply, ":1") == 0 || now_ms() >= l[k].lo_end,
                          "round %d key %d: lease (token %lld) not held after "
                          "the crash: %s", round, k, l[k].token, reply);
            continue;
        }
        if (isinf(l[k].lo_end))
            continue;
        w[k] = conn_new();
        snprintf(cmd, sizeof(cmd), "ACQUIRE c%d-%d WAIT %lld TTL 1000\r\n",
                 round, k, (long long)left + 2 * scaled(4000) + 2000);
        say(w[k], cmd);
    }
    for (int k = 0; k < CK_KEYS; k++) {
        long long n;
        if (w[k] < 0)
            continue;
        ck_assert_int_ge(ck_line(w[k], reply, sizeof(reply)), 0);
        double at = now_ms();
        if (sscanf(reply, ":%lld", &n) == 1) {
            ck_assert_msg(at >= l[k].lo_end - CLOCK_SLACK_MS,
                          "round %d key %d granted %.0f ms before the lease "
                          "from before the crash ended", round, k,
                          l[k].lo_end - at);
            ck_assert_msg(n > *maxtok, "token %lld after %lld", n, *maxtok);
        } else {
            ck_assert_msg(l[k].unsure, "round %d key %d: %s", round, k, reply);
        }
        close(w[k]);
    }
    close(c);
}

START_TEST(crash_at_random_moments)
{
    srv_init();
    const char *args[16];
    char lease[32];
    snprintf(lease, sizeof(lease), "%lld", CK_LONG_LEASE);
    args_with(args, 16, (const char *const[]){ "--long_lease_ms", lease,
                                               NULL });
    const char *env = getenv("CACHIFYD_CRASH_SEED");
    unsigned seed = env ? (unsigned)strtoul(env, NULL, 10)
                        : (unsigned)(wall_us() & 0x7fffffff) | 1u;
    fprintf(stderr, "crash_at_random_moments: CACHIFYD_CRASH_SEED=%u\n", seed);
    long long maxtok = 0;
    /* A short default keeps make test quick; CACHIFYD_CRASH_ROUNDS=N runs
     * a longer fault campaign (each round is one kill -9). */
    int rounds = slow_mode() ? 2 : 5;
    const char *rounds_env = getenv("CACHIFYD_CRASH_ROUNDS");
    if (rounds_env && atoi(rounds_env) > 0)
        rounds = atoi(rounds_env);
    fprintf(stderr, "crash_at_random_moments: %d rounds "
            "(CACHIFYD_CRASH_ROUNDS)\n", rounds);
    srv_run(args);
    for (int round = 0; round < rounds; round++)
        crash_round(round, &seed, args, &maxtok);
    srv_finish();
}
END_TEST

static Suite *crash_suite(void)
{
    Suite *s = suite_create("crash");
    TCase *c = itest_tcase_timed(s, "crash", 600);
    tcase_add_test(c, crash_keeps_long_leases);
    tcase_add_test(c, crash_waits_out_short_leases);
    tcase_add_test(c, crash_after_release_forgets_lease);
    tcase_add_test(c, crash_at_random_moments);
    return s;
}

int main(void)
{
    return itest_main(crash_suite());
}
