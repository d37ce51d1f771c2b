/* tests/integration/test_pool_state.c - Check suite: pools and the state
 * file (docs/protocol.md, "Pools" and "Restart safety").
 *
 * Owns: pools across a clean stop and kill -9: long and FOREVER slots
 * journaled (their extends and handoffs too) and given back with their
 * tokens, short ones waited out, never N+1 across a crash, the recovering
 * period included, tokens increasing; kill -9 at random moments of
 * pipelined pool traffic (CACHIFYD_CRASH_SEED replays a run); the replay
 * of a journal that lost free records.  Does not own: the pool commands
 * on a running daemon (test_pool.c), the locks' restart and crash tests
 * (test_restart.c, test_crash.c).
 */
#include "tests/integration/itest.h"
#include "tests/integration/lockitest.h"

/* The state file keeps pools as it keeps locks.  Slots longer than
 * long_lease_ms (and FOREVER) are journaled one by one, every extend and
 * handoff too: they come back with their tokens after a clean stop and
 * after kill -9; short ones are waited out.  The pool admits at most
 * max_size throughout, the recovering period included, and tokens keep
 * increasing. */
START_TEST(test_pool_restart)
{
    /* The short slot c keeps the pool recovering for its TTL after the
     * crash: long enough that a restart (under valgrind too) sees it. */
    const long long lease = slow_mode() ? 8000 : 2000, c_ttl = lease - 500;
    char lease_arg[32], line[192];
    snprintf(lease_arg, sizeof(lease_arg), "%lld", lease);
    srv_init();
    const char *const args[] = { "--state_file", g_ts.state_path,
                                 "--long_lease_ms", lease_arg, NULL };
    srv_run(args);
    int fd = conn_new();
    long long a = acquire(fd, "POOL_ACQUIRE r 3 TTL FOREVER\r\n");
    long long b = acquire(fd, "POOL_ACQUIRE r 3 TTL 120000\r\n");
    acquire(fd, "POOL_ACQUIRE r 3 TTL 1000 SESSION\r\n");
    close(fd);
    srv_stop();
    /* A clean stop keeps both long slots (the SESSION one ended). */
    srv_run(args);
    fd = conn_new();
    say(fd, "POOL_SIZE r\r\nPOOL_ACQUIRE r 2 TTL 1000\r\n");
    EXPECT(fd, ":2\r\n-WRONGSIZE the pool has max_size 3, not 2: a pool "
               "keeps its size while a slot is held or requested\r\n");
    snprintf(line, sizeof(line), "POOL_ACQUIRE r 3 TTL %lld\r\n", c_ttl);
    double c_sent = now_ms();
    long long c = acquire(fd, line); /* short: covered by the horizon */
    ck_assert_int_gt(c, b);
    say(fd, "POOL_ACQUIRE r 3 TTL 1000\r\n");
    EXPECT(fd, "-FULL r pool is full\r\n");
    snprintf(line, sizeof(line), "POOL_EXTEND r %lld 90000\r\n", b);
    say(fd, line);
    EXPECT(fd, ":1\r\n");
    close(fd);
    ts_kill9(&g_ts);

    /* After the crash a and b are back with their tokens; c may still be
     * in use until it runs out, so the pool is full meanwhile. */
    srv_run(args);
    fd = conn_new();
    int w1 = conn_new(), w2 = conn_new();
    ck_assert_msg(now_ms() < c_sent + (double)c_ttl, "too slow to test");
    say(fd, "POOL_SIZE r\r\nIS_LOCKED r\r\nPOOL_ACQUIRE r 3 TTL 1000\r\n");
    EXPECT(fd, ":2\r\n:1\r\n-FULL r pool is full\r\n");
    say(w1, "POOL_ACQUIRE r 3 TTL 60000 WAIT 60000\r\n");
    wait_stat("pool_waiters", 1);
    say(w2, "POOL_ACQUIRE r 3 TTL 60000 WAIT 60000\r\n");
    wait_stat("pool_waiters", 2);
    /* Recovery over: one place is free (3 minus a and b), one gets in. */
    long long d = READ_INT(w1);
    ck_assert_int_gt(d, c);
    expect_quiet(w2, quiet_ms());
    say(fd, "POOL_SIZE r\r\n");
    EXPECT(fd, ":3\r\n");
    snprintf(line, sizeof(line), "POOL_EXTEND r %lld 90000\r\n"
             "POOL_RELEASE r %lld\r\n", b, a);
    say(fd, line);
    EXPECT(fd, ":1\r\n:1\r\n");
    long long e = READ_INT(w2);
    ck_assert_int_gt(e, d);
    /* b's end record is gathered for a few ms (state.c); the extend of e,
     * a journaled record, is written after it, so b's end is on file
     * before the crash without waiting for the daemon's timer. */
    snprintf(line, sizeof(line), "POOL_RELEASE r %lld\r\n"
             "POOL_EXTEND r %lld 60000\r\n", b, e);
    say(fd, line);
    EXPECT(fd, ":1\r\n:1\r\n");
    close_fds(fd, w1, w2, -1);
    ts_kill9(&g_ts);

    /* A second crash: the slots handed to the waiters are back; a and b,
     * whose ends were journaled, are not. */
    srv_run(args);
    fd = conn_new();
    snprintf(line, sizeof(line), "POOL_SIZE r\r\nPOOL_RELEASE r %lld\r\n"
             "POOL_RELEASE r %lld\r\nPOOL_RELEASE r %lld\r\n", a, b, d);
    say(fd, line);
    EXPECT(fd, ":2\r\n:0\r\n:0\r\n:1\r\n");
    long long f = acquire(fd, "POOL_ACQUIRE r 3 TTL 1000 WAIT 60000\r\n");
    ck_assert_int_gt(f, e);
    close(fd);
    srv_finish();
}
END_TEST

/* Replaying a journal that lost free records (a write failed, or the
 * machine went down before the page cache was written): what a later
 * lease shows had ended is dropped, what cannot be told apart is kept, so
 * a pool never admits more than max_size; a free record ends a slot. */
START_TEST(test_pool_replay_rules)
{
    srv_init();
    const char *const args[] = { "--state_file", g_ts.state_path,
                                 "--loglevel", "warning", NULL };
#define HOLD(k, t) "{\"hold\":\"" k "\",\"token\":" #t \
                   ",\"until_wall_us\":0,\"until_mono_us\":0"
    FILE *fp = fopen(g_ts.state_path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs("{\"cachifyd_state\":2,\"status\":\"running\",\"boot_id\":\"x\"}\n"
          /* p: three slots of a pool of 2, no free record. */
          HOLD("70", 1) ",\"max\":2}\n" HOLD("70", 2) ",\"max\":2}\n"
          HOLD("70", 3) ",\"max\":2}\n"
          /* q: a pool of 2, then of 3: the first had gone. */
          HOLD("71", 10) ",\"max\":2}\n" HOLD("71", 11) ",\"max\":3}\n"
          /* k: a lock, then a pool; m: a pool, then a lock. */
          HOLD("6b", 20) "}\n" HOLD("6b", 21) ",\"max\":1}\n"
          HOLD("6d", 30) ",\"max\":1}\n" HOLD("6d", 31) "}\n"
          /* f: a slot and its end; e: a slot extended; g: a slot that
           * ran out while the daemon was down. */
          HOLD("66", 40) ",\"max\":1}\n{\"free\":\"66\",\"token\":40}\n"
          HOLD("65", 50) ",\"max\":1}\n" HOLD("65", 50) ",\"max\":1}\n"
          "{\"hold\":\"67\",\"token\":60,\"until_wall_us\":1,"
          "\"until_mono_us\":1,\"max\":1}\n",
          fp);
    ck_assert_int_eq(fclose(fp), 0);
#undef HOLD
    srv_run(args);
    int fd = conn_new();
    say(fd, "POOL_SIZE p\r\nPOOL_ACQUIRE p 2\r\nPOOL_RELEASE p 1\r\n"
            "POOL_ACQUIRE p 2\r\n");
    EXPECT(fd, ":3\r\n-FULL p pool is full\r\n:1\r\n-FULL p pool is full\r\n");
    say(fd, "POOL_RELEASE p 2\r\n");
    EXPECT(fd, ":1\r\n");
    long long t = acquire(fd, "POOL_ACQUIRE p 2\r\n");
    ck_assert_int_gt(t, 60);
    say(fd, "POOL_SIZE q\r\nPOOL_RELEASE q 10\r\nPOOL_ACQUIRE q 2\r\n"
            "POOL_SIZE k\r\nPOOL_RELEASE k 21\r\nRELEASE m 31\r\n"
            "POOL_SIZE f\r\nPOOL_SIZE e\r\nPOOL_ACQUIRE e 1\r\n"
            "POOL_RELEASE e 50\r\nPOOL_SIZE g\r\n");
    EXPECT(fd, ":1\r\n:0\r\n-WRONGSIZE the pool has max_size 3, not 2: a "
               "pool keeps its size while a slot is held or requested\r\n"
               ":1\r\n:1\r\n:1\r\n:0\r\n:1\r\n-FULL e pool is full\r\n"
               ":1\r\n:0\r\n");
    close(fd);
    srv_finish();
}
END_TEST

/* ---- kill -9 at random moments of pool traffic ---- */

#define CR_ROUNDS 4
#define CR_N 3        /* the pools' max_size */
#define CR_BURST 24   /* pipelined requests the kill cuts into */
#define CR_SLOTS 64

struct cr_slot {
    long long token;
    int is_long;      /* granted or extended beyond long_lease_ms */
    int released;     /* a release of it was answered :1 */
    int pending;      /* releases and extends of it not answered yet:
                       * once the kill cut them, it may be either way */
};

/* One request of the burst, to read its reply by. */
struct cr_req {
    char op;          /* 'a' acquire, 'r' release, 'e' extend */
    int slot;         /* r, e: the slot */
    long long ttl;    /* a: its TTL (0: FOREVER) */
};

struct cr_round {
    char key[16];
    struct cr_slot sl[CR_SLOTS];
    int ns;
    long long maxtok;
    double short_end; /* the latest answered short lease ends no earlier */
};

static unsigned cr_rand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fffu;
}

/* A held long slot not released, chosen at random; -1 when none. */
static int cr_pick_long(const struct cr_round *r, unsigned *seed)
{
    int live[CR_SLOTS], n = 0;
    for (int i = 0; i < r->ns; i++)
        if (r->sl[i].is_long && !r->sl[i].released && !r->sl[i].pending)
            live[n++] = i;
    return n ? live[cr_rand(seed) % (unsigned)n] : -1;
}

/* Notes an answered POOL_ACQUIRE of ttl (0: FOREVER) sent at `sent`. */
static void cr_granted(struct cr_round *r, const char *reply, long long ttl,
                       long long lease, double sent)
{
    if (strncmp(reply, "-FULL ", 6) == 0)
        return;
    REQUIRE(reply[0] == ':' && r->ns < CR_SLOTS, "POOL_ACQUIRE: %s",
            itest_esc(reply));
    struct cr_slot *s = &r->sl[r->ns++];
    *s = (struct cr_slot){ .token = strtoll(reply + 1, NULL, 10),
                           .is_long = ttl == 0 || ttl > lease };
    REQUIRE(s->token > r->maxtok, "token %lld after %lld", s->token,
            r->maxtok);
    r->maxtok = s->token;
    if (!s->is_long && sent + (double)ttl > r->short_end)
        r->short_end = sent + (double)ttl;
}

/* One round on pool r->key: a few slots taken (and long ones released)
 * one by one, then a pipelined burst of acquires, releases and extends
 * cut by kill -9 after a random number of replies.  After the restart:
 * every long slot whose grant (or extend) was answered and whose release
 * was not is back, held by its token; nothing is granted while an
 * answered short slot may still run; then exactly max_size minus the
 * restored slots are admitted, with larger tokens. */
static void crash_round(int round, unsigned *seed, const char *const *args,
                        long long lease)
{
    static struct cr_round r;
    char cmd[128], reply[256];
    memset(&r, 0, sizeof(r));
    snprintf(r.key, sizeof(r.key), "cr%d", round);
    const long long ttls[3] = { lease / 2, 120000, 0 };
    int a = conn_new();
    for (int i = 0; i < 8; i++) {
        int j = cr_rand(seed) % 3 == 0 ? cr_pick_long(&r, seed) : -1;
        if (j >= 0) {
            snprintf(cmd, sizeof(cmd), "POOL_RELEASE %s %lld\r\n", r.key,
                     r.sl[j].token);
            say(a, cmd);
            EXPECT(a, ":1\r\n");
            r.sl[j].released = 1;
            continue;
        }
        long long ttl = ttls[cr_rand(seed) % 3];
        snprintf(cmd, sizeof(cmd), ttl ? "POOL_ACQUIRE %s 3 TTL %lld\r\n"
                                       : "POOL_ACQUIRE %s 3 TTL FOREVER\r\n",
                 r.key, ttl);
        double sent = now_ms();
        say(a, cmd);
        REQUIRE(tc_read_reply(a, reply, sizeof(reply)) > 0, "no reply");
        cr_granted(&r, reply, ttl, lease, sent);
    }
    /* The burst: what each request was, to read its reply by. */
    struct cr_req q[CR_BURST];
    struct itest_buf out = { 0 };
    for (int i = 0; i < CR_BURST; i++) {
        int j = cr_pick_long(&r, seed), op = cr_rand(seed) % 3;
        if (op == 1 && j >= 0) {
            q[i] = (struct cr_req){ 'r', j, 0 };
            r.sl[j].pending++;
            buf_fmt(&out, "POOL_RELEASE %s %lld\r\n", r.key, r.sl[j].token);
        } else if (op == 2 && r.ns > 0) {
            j = (int)(cr_rand(seed) % (unsigned)r.ns);
            q[i] = (struct cr_req){ 'e', j, 0 };
            r.sl[j].pending++;
            buf_fmt(&out, "POOL_EXTEND %s %lld 120000\r\n", r.key,
                    r.sl[j].token);
        } else {
            q[i] = (struct cr_req){ 'a', -1, ttls[cr_rand(seed) % 3] };
            buf_fmt(&out, q[i].ttl ? "POOL_ACQUIRE %s 3 TTL %lld\r\n"
                                   : "POOL_ACQUIRE %s 3 TTL FOREVER\r\n",
                    r.key, q[i].ttl);
        }
    }
    int answered = (int)(cr_rand(seed) % (CR_BURST + 1));
    double sent = now_ms();
    ck_assert_int_eq(tc_sendn(a, out.p, out.len), 0);
    free(out.p);
    for (int i = 0; i < answered; i++) {
        REQUIRE(tc_read_reply(a, reply, sizeof(reply)) > 0, "no reply");
        if (q[i].op == 'a') {
            cr_granted(&r, reply, q[i].ttl, lease, sent);
            continue;
        }
        struct cr_slot *s = &r.sl[q[i].slot];
        s->pending--;
        if (q[i].op == 'r' && strcmp(reply, ":1\r\n") == 0)
            s->released = 1;
        else if (q[i].op == 'e' && strcmp(reply, ":1\r\n") == 0)
            s->is_long = 1;
    }
    ts_kill9(&g_ts);
    close(a);

    srv_run(args);
    int b = conn_new();
    snprintf(cmd, sizeof(cmd), "POOL_SIZE %s\r\n", r.key);
    say(b, cmd);
    long long restored = READ_INT(b);
    int held = 0;
    for (int i = 0; i < r.ns; i++)
        held += r.sl[i].is_long && !r.sl[i].released && !r.sl[i].pending;
    REQUIRE(restored >= held, "round %d: %lld slots back, %d answered long "
            "ones held", round, restored, held);
    /* Nothing is granted while an answered short slot may still run. */
    double until = now_ms() + LATE_MS;
    while (stat_of("recovering") && now_ms() < until)
        usleep(20000);
    REQUIRE(!stat_of("recovering"), "round %d: still recovering", round);
    REQUIRE(now_ms() >= r.short_end - CLOCK_SLACK_MS, "round %d: recovered "
            "%.0f ms before a short slot's end", round,
            r.short_end - now_ms());
    int admitted = 0;
    for (;;) {
        snprintf(cmd, sizeof(cmd), "POOL_ACQUIRE %s 3 TTL 60000\r\n", r.key);
        say(b, cmd);
        REQUIRE(tc_read_reply(b, reply, sizeof(reply)) > 0, "no reply");
        if (reply[0] != ':')
            break;
        REQUIRE(strtoll(reply + 1, NULL, 10) > r.maxtok, "round %d: token "
                "%s after %lld", round, reply + 1, r.maxtok);
        admitted++;
    }
    REQUIRE(admitted + restored == CR_N || (restored >= CR_N && !admitted),
            "round %d: %d admitted beside %lld restored, max_size %d", round,
            admitted, restored, CR_N);
    for (int i = 0; i < r.ns; i++) {
        if (!r.sl[i].is_long || r.sl[i].released || r.sl[i].pending)
            continue;
        snprintf(cmd, sizeof(cmd), "POOL_EXTEND %s %lld 120000\r\n", r.key,
                 r.sl[i].token);
        say(b, cmd);
        EXPECT(b, ":1\r\n");
    }
    close(b);
}

START_TEST(test_pool_crash_rounds)
{
    const long long lease = slow_mode() ? 4000 : 1000;
    char lease_arg[32];
    snprintf(lease_arg, sizeof(lease_arg), "%lld", lease);
    unsigned seed = (unsigned)time(NULL);
    const char *env = getenv("CACHIFYD_CRASH_SEED");
    if (env)
        seed = (unsigned)strtoul(env, NULL, 10);
    fprintf(stderr, "test_pool_crash_rounds: CACHIFYD_CRASH_SEED=%u\n", seed);
    srv_init();
    const char *const args[] = { "--state_file", g_ts.state_path,
                                 "--long_lease_ms", lease_arg, NULL };
    srv_run(args);
    for (int round = 0; round < CR_ROUNDS; round++)
        crash_round(round, &seed, args, lease);
    srv_finish();
}
END_TEST

static Suite *pool_state_suite(void)
{
    Suite *s = suite_create("pool_state");
    TCase *tc = itest_tcase(s, "state");
    tcase_add_test(tc, test_pool_restart);
    tcase_add_test(tc, test_pool_replay_rules);
    tcase_add_test(tc, test_pool_crash_rounds);
    return s;
}

int main(void)
{
    return itest_main(pool_state_suite());
}
