/* tests/integration/test_pool.c - Check suite: pools against the real
 * daemon (docs/protocol.md, "Pools").
 *
 * Owns: exact replies of POOL_ACQUIRE, POOL_RELEASE, POOL_SIZE and
 * POOL_EXTEND; their errors (bad arguments, the size mismatch, lock/pool
 * mix-ups in both directions, for every key command); slot expiry and a
 * SESSION holder's close waking waiters; FIFO order with increasing tokens;
 * the STATS gauges; and the stress run: 50 clients through a pool of 5,
 * never more than 5 inside (a counter the clients share, raised after a
 * grant is received and lowered before the release is sent, so the test's
 * "inside" interval lies within the daemon's hold: a count over 5 is a real
 * N+1), every client gets in, each client's tokens strictly increase, no
 * token is given twice, and FIFO order holds (see test_pool_stress).  Does
 * not own: pools across restarts and crashes (test_pool_state.c), the
 * engine's unit tests (engine/tests/test_lock_pool*.c).
 */
#include <pthread.h>
#include <stdatomic.h>

#include "tests/integration/itest.h"
#include "tests/integration/lockitest.h"

/* ---- commands and errors ---- */

START_TEST(test_pool_commands)
{
    SRV_START("--default_ttl_ms", "30000");
    int fd = conn_new();
    say(fd, "POOL_ACQUIRE p 2\r\n");
    long long a = READ_INT(fd);
    say(fd, "POOL_ACQUIRE p 2 TTL 10000\r\n");
    long long b = READ_INT(fd);
    ck_assert_int_gt(b, a);
    say(fd, "POOL_ACQUIRE p 2\r\n");
    EXPECT(fd, "-FULL p pool is full\r\n");
    say(fd, "POOL_SIZE p\r\nIS_LOCKED p\r\nEXISTS p\r\nPOOL_SIZE nope\r\n");
    EXPECT(fd, ":2\r\n:1\r\n:1\r\n:0\r\n");
    char line[128];
    snprintf(line, sizeof(line), "POOL_RELEASE p %lld\r\nPOOL_RELEASE p "
             "%lld\r\nPOOL_SIZE p\r\nIS_LOCKED p\r\nEXISTS p\r\n", a, a);
    say(fd, line);
    EXPECT(fd, ":1\r\n:0\r\n:1\r\n:0\r\n:1\r\n");
    snprintf(line, sizeof(line), "POOL_EXTEND p %lld 500\r\nPOOL_EXTEND p "
             "%lld 500\r\n", b, a);
    say(fd, line);
    EXPECT(fd, ":1\r\n:0\r\n");
    /* Extended to 500 ms: gone after it, with nobody asking before. */
    usleep(700000);
    say(fd, "POOL_SIZE p\r\nEXISTS p\r\n");
    EXPECT(fd, ":0\r\n:0\r\n");
    /* Forced release counts what it freed. */
    say(fd, "POOL_ACQUIRE q 3\r\n");
    READ_INT(fd);
    say(fd, "POOL_ACQUIRE q 3\r\n");
    READ_INT(fd);
    say(fd, "POOL_RELEASE q\r\nPOOL_RELEASE q\r\nPOOL_SIZE q\r\n");
    EXPECT(fd, ":2\r\n:0\r\n:0\r\n");
    /* Binary keys in RESP framing. */
    static const char bin[] =
        "*3\r\n$12\r\nPOOL_ACQUIRE\r\n$3\r\nk\0k\r\n$1\r\n1\r\n";
    sayn(fd, bin, sizeof(bin) - 1);
    READ_INT(fd);
    sayn(fd, bin, sizeof(bin) - 1);
    EXPECT(fd, "-FULL k\\x00k pool is full\r\n");
    close(fd);
    srv_finish();
}
END_TEST

START_TEST(test_pool_errors)
{
    SRV_START("--max_ttl_ms", "0");
    int fd = conn_new();
    say(fd, "POOL_ACQUIRE p\r\nPOOL_ACQUIRE p 0\r\nPOOL_ACQUIRE p -1\r\n"
            "POOL_ACQUIRE p x\r\nPOOL_ACQUIRE p 1000001\r\n"
            "POOL_ACQUIRE p 99999999999999999999999\r\n"
            "POOL_ACQUIRE p 2 TTL 0\r\nPOOL_ACQUIRE p 2 WAIT\r\n"
            "POOL_ACQUIRE p 2 TTL 5 TTL 5\r\nPOOL_ACQUIRE p 2 NOPE\r\n"
            "POOL_ACQUIRE \"\" 2\r\nPOOL_RELEASE p 0\r\nPOOL_RELEASE p x\r\n"
            "POOL_SIZE\r\nPOOL_SIZE a b\r\nPOOL_EXTEND p 1 0\r\n"
            "POOL_EXTEND p 0 10\r\n");
    EXPECT(fd,
           "-ERR wrong number of arguments for 'POOL_ACQUIRE'\r\n"
           "-ERR invalid max_size '0': expected a slot count (1..1000000)\r\n"
           "-ERR invalid max_size '-1': expected a slot count (1..1000000)\r\n"
           "-ERR invalid max_size 'x': expected a slot count (1..1000000)\r\n"
           "-ERR invalid max_size '1000001': expected a slot count "
           "(1..1000000)\r\n"
           "-ERR invalid max_size '99999999999999999999999': expected a slot "
           "count (1..1000000)\r\n"
           "-ERR invalid TTL '0': expected milliseconds (1..1099511627776) "
           "or FOREVER\r\n"
           "-ERR option 'WAIT' needs a value\r\n"
           "-ERR option 'TTL' given twice\r\n"
           "-ERR unknown option 'NOPE' for 'POOL_ACQUIRE'\r\n"
           "-ERR empty key\r\n"
           "-ERR invalid token '0': expected a positive integer\r\n"
           "-ERR invalid token 'x': expected a positive integer\r\n"
           "-ERR wrong number of arguments for 'POOL_SIZE'\r\n"
           "-ERR wrong number of arguments for 'POOL_SIZE'\r\n"
           "-ERR invalid POOL_EXTEND ms '0': expected milliseconds "
           "(1..1099511627776)\r\n"
           "-ERR invalid token '0': expected a positive integer\r\n");
    /* The size is fixed while the pool lives. */
    say(fd, "POOL_ACQUIRE p 2\r\n");
    READ_INT(fd);
    say(fd, "POOL_ACQUIRE p 3\r\nPOOL_ACQUIRE p 1 WAIT 1000\r\n");
    EXPECT(fd, "-WRONGSIZE the pool has max_size 2, not 3: a pool keeps its "
               "size while a slot is held or requested\r\n"
               "-WRONGSIZE the pool has max_size 2, not 1: a pool keeps its "
               "size while a slot is held or requested\r\n");
    close(fd);
    srv_finish();
}
END_TEST

#define POOL_WT "-WRONGTYPE Operation against a pool key: use POOL_ACQUIRE, " \
                "POOL_RELEASE, POOL_SIZE or POOL_EXTEND\r\n"
#define LOCK_WT "-WRONGTYPE Operation against a lock key: POOL_* commands " \
                "need a pool key or a free one\r\n"

START_TEST(test_pool_lock_mixups)
{
    SRV_START("--loglevel", "warning");
    int fd = conn_new();
    say(fd, "POOL_ACQUIRE p 2\r\n");
    READ_INT(fd);
    static const char *const on_pool[] = {
        "ACQUIRE p", "ACQUIRE p WAIT 100", "RELEASE p", "RELEASE p 5",
        "EXTEND p 5 100", "PTTL p", "TTL p", "SET p v", "SET p v NX",
        "SET p v XX GET", "SETNX p v", "SETEX p 5 v", "PSETEX p 5 v",
        "GET p", "GETDEL p", "DEL p", "DEL a p b", "UNLINK p",
        "EXPIRE p 5", "PEXPIRE p 5", "EXPIREAT p 5", "PEXPIREAT p 5",
        "PERSIST p",
    };
    for (size_t i = 0; i < sizeof(on_pool) / sizeof(on_pool[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "%s\r\n", on_pool[i]);
        say(fd, line);
        EXPECT(fd, POOL_WT);
    }
    /* Nothing changed: the pool still holds its one slot; MGET shows nil
     * for it, as Redis does for a key of another type. */
    say(fd, "POOL_SIZE p\r\nMGET p\r\nEXISTS p a\r\n");
    EXPECT(fd, ":1\r\n*1\r\n$-1\r\n:1\r\n");

    /* A held lock, a stored value and a lock waited on are no pools. */
    say(fd, "ACQUIRE l\r\nSET v x\r\n");
    READ_INT(fd);
    EXPECT(fd, "+OK\r\n");
    static const char *const pool_cmds[] = {
        "POOL_ACQUIRE l 2", "POOL_ACQUIRE l 2 WAIT 100", "POOL_RELEASE l",
        "POOL_RELEASE l 5", "POOL_SIZE l", "POOL_EXTEND l 5 100",
        "POOL_ACQUIRE v 1", "POOL_SIZE v",
    };
    for (size_t i = 0; i < sizeof(pool_cmds) / sizeof(pool_cmds[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "%s\r\n", pool_cmds[i]);
        say(fd, line);
        EXPECT(fd, LOCK_WT);
    }
    say(fd, "GET v\r\nIS_LOCKED l\r\n");
    EXPECT(fd, "$1\r\nx\r\n:1\r\n");
    /* Freed, the name can be the other kind. */
    say(fd, "POOL_RELEASE p\r\nACQUIRE p\r\n");
    EXPECT(fd, ":1\r\n");
    READ_INT(fd);
    say(fd, "RELEASE l\r\nPOOL_ACQUIRE l 1\r\n");
    EXPECT(fd, ":1\r\n");
    READ_INT(fd);
    close(fd);
    srv_finish();
}
END_TEST

/* ---- waking waiters ---- */

START_TEST(test_pool_expiry_and_session_wake)
{
    SRV_START("--loglevel", "warning");
    int holder = conn_new(), waiter = conn_new(), ctl = conn_new();
    say(holder, "POOL_ACQUIRE p 1 TTL 300\r\n");
    long long a = READ_INT(holder);
    double t0 = mono_s();
    say(waiter, "POOL_ACQUIRE p 1 WAIT 10000\r\n");
    long long b = READ_INT(waiter);
    double waited = mono_s() - t0;
    ck_assert_int_gt(b, a);
    ck_assert(waited > 0.2); /* it waited for the expiry, nobody asked */
    /* A SESSION slot goes with its holder's connection. */
    say(ctl, "POOL_ACQUIRE s 1 SESSION\r\n");
    READ_INT(ctl);
    say(waiter, "POOL_ACQUIRE s 1 WAIT 10000\r\n");
    for (int i = 0; i < 200; i++) { /* queued before the close */
        json_t *st = stats_get(holder);
        long long w = stat_int(st, "pool_waiters");
        json_decref(st);
        if (w == 1)
            break;
        usleep(10000);
    }
    close(ctl);
    long long c = READ_INT(waiter);
    ck_assert_int_gt(c, b);
    /* A wait that runs out answers -TIMEOUT naming the full pool. */
    say(holder, "POOL_ACQUIRE s 1 WAIT 200\r\n");
    EXPECT(holder, "-TIMEOUT s pool is full\r\n");
    json_t *st = stats_get(holder);
    ck_assert_int_eq(stat_int(st, "pools"), 2);
    ck_assert_int_eq(stat_int(st, "pool_slots"), 2);
    ck_assert_int_eq(stat_int(st, "pool_waiters"), 0);
    ck_assert_int_ge(stat_int(st, "expired"), 1);
    ck_assert_int_ge(stat_int(st, "timeouts"), 1);
    json_decref(st);
    close(holder);
    close(waiter);
    srv_finish();
}
END_TEST

#define NWAITERS 6

START_TEST(test_pool_fifo)
{
    SRV_START("--loglevel", "warning");
    int ctl = conn_new(), w[NWAITERS];
    say(ctl, "POOL_ACQUIRE f 2\r\n");
    long long t1 = READ_INT(ctl);
    say(ctl, "POOL_ACQUIRE f 2\r\n");
    long long t2 = READ_INT(ctl);
    for (int i = 0; i < NWAITERS; i++) {
        w[i] = conn_new();
        say(w[i], "POOL_ACQUIRE f 2 WAIT 30000\r\n");
        wait_stat("pool_waiters", i + 1);
    }
    char line[64];
    snprintf(line, sizeof(line), "POOL_RELEASE f %lld\r\n", t1);
    say(ctl, line);
    EXPECT(ctl, ":1\r\n");
    long long last = READ_INT(w[0]);
    ck_assert_int_gt(last, t2);
    snprintf(line, sizeof(line), "POOL_RELEASE f %lld\r\n", t2);
    say(ctl, line);
    EXPECT(ctl, ":1\r\n");
    long long tok = READ_INT(w[1]);
    ck_assert_int_gt(tok, last);
    last = tok;
    /* Each later release goes to the next in line, in order. */
    for (int i = 2; i < NWAITERS; i++) {
        close(w[i - 2]); /* not SESSION: its slot stays held */
        snprintf(line, sizeof(line), "POOL_RELEASE f %lld\r\n", last);
        say(ctl, line);
        EXPECT(ctl, ":1\r\n");
        tok = READ_INT(w[i]);
        ck_assert_int_gt(tok, last);
        last = tok;
    }
    say(ctl, "POOL_SIZE f\r\n");
    EXPECT(ctl, ":2\r\n");
    for (int i = NWAITERS - 2; i < NWAITERS; i++)
        close(w[i]);
    close(ctl);
    srv_finish();
}
END_TEST

/* ---- stress: 50 clients, pool of 5 ---- */

#define STRESS_CLIENTS 50
#define STRESS_N 5

static atomic_int inside;
static atomic_int inside_max;
static atomic_int stress_failed;

struct stress_client {
    int fd;
    int id;
    int queued_first;  /* its first request was sent and queued already */
    double until;
    int entries;
    int fulls;         /* -FULL answers (the no-wait half) */
    long long tokens[4096];
    char err[160];
};

static void *stress_run(void *arg)
{
    struct stress_client *sc = arg;
    unsigned seed = (unsigned)sc->id * 7919u + 1;
    char buf[256];
    int sent = sc->queued_first;
    while (!atomic_load(&stress_failed) &&
           (mono_s() < sc->until || sc->entries == 0) &&
           sc->entries < (int)(sizeof(sc->tokens) / sizeof(sc->tokens[0]))) {
        /* Half the clients wait in the queue, half retry without
         * waiting: both grant paths are under load. */
        const char *rq = sc->id % 2
                             ? "POOL_ACQUIRE stress 5 TTL 20000\r\n"
                             : "POOL_ACQUIRE stress 5 TTL 20000 WAIT 60000\r\n";
        long long token = 0;
        if ((!sent && tc_send(sc->fd, rq) != 0) ||
            tc_read_reply(sc->fd, buf, sizeof(buf)) < 0) {
            snprintf(sc->err, sizeof(sc->err), "acquire: %s", tc_last());
            atomic_store(&stress_failed, 1);
            break;
        }
        sent = 0;
        if (sc->id % 2 && strcmp(buf, "-FULL stress pool is full\r\n") == 0) {
            sc->fulls++;
            usleep((useconds_t)(rand_r(&seed) % 2000));
            continue;
        }
        if (buf[0] != ':' || (token = strtoll(buf + 1, NULL, 10)) <= 0) {
            snprintf(sc->err, sizeof(sc->err), "acquire: %s", tc_last());
            atomic_store(&stress_failed, 1);
            break;
        }
        int now_in = atomic_fetch_add(&inside, 1) + 1;
        int m = atomic_load(&inside_max);
        while (now_in > m && !atomic_compare_exchange_weak(&inside_max, &m,
                                                           now_in))
            ;
        sc->tokens[sc->entries++] = token;
        usleep((useconds_t)(rand_r(&seed) % 3000));
        atomic_fetch_sub(&inside, 1);
        snprintf(buf, sizeof(buf), "POOL_RELEASE stress %lld\r\n", token);
        long long released = -1;
        if (tc_send(sc->fd, buf) != 0 || tc_read_int(sc->fd, &released) != 0 ||
            released != 1) {
            snprintf(sc->err, sizeof(sc->err), "release %lld: %s", token,
                     tc_last());
            atomic_store(&stress_failed, 1);
            break;
        }
    }
    return NULL;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* FIFO, checked so that a loaded machine cannot fake or hide a reorder:
 * the order the daemon received the requests is made known by queueing
 * every client's first request one at a time behind a full pool (the next
 * is sent only once STATS shows the previous one queued), and the order of
 * the grants is read from the tokens, which the daemon issues in strictly
 * increasing order.  So client i's first token must be below client
 * i+1's, and every later grant (a request sent after its client's first
 * grant, so after all of those arrived) above all first ones: a newcomer
 * without WAIT may not pass the queue either. */
START_TEST(test_pool_stress)
{
    SRV_START("--loglevel", "warning");
    static struct stress_client sc[STRESS_CLIENTS];
    pthread_t th[STRESS_CLIENTS];
    long long fill[STRESS_N];
    double secs = slow_mode() ? 6.0 : 3.0;
    atomic_store(&inside, 0);
    atomic_store(&inside_max, 0);
    atomic_store(&stress_failed, 0);
    int ctl = conn_new();
    for (int k = 0; k < STRESS_N; k++)
        fill[k] = acquire(ctl, "POOL_ACQUIRE stress 5 TTL 20000\r\n");
    for (int i = 0; i < STRESS_CLIENTS; i++) {
        sc[i] = (struct stress_client){ .fd = conn_new(), .id = i,
                                        .queued_first = 1 };
        say(sc[i].fd, "POOL_ACQUIRE stress 5 TTL 20000 WAIT 60000\r\n");
        wait_stat("pool_waiters", i + 1);
    }
    double until = mono_s() + secs;
    for (int i = 0; i < STRESS_CLIENTS; i++) {
        sc[i].until = until;
        ck_assert_int_eq(pthread_create(&th[i], NULL, stress_run, &sc[i]), 0);
    }
    for (int k = 0; k < STRESS_N; k++) { /* the queue starts moving */
        char line[64];
        snprintf(line, sizeof(line), "POOL_RELEASE stress %lld\r\n", fill[k]);
        say(ctl, line);
        EXPECT(ctl, ":1\r\n");
    }
    for (int i = 0; i < STRESS_CLIENTS; i++)
        pthread_join(th[i], NULL);
    size_t total = 0;
    for (int i = 0; i < STRESS_CLIENTS; i++) {
        REQUIRE(sc[i].err[0] == '\0', "client %d: %s", i, sc[i].err);
        REQUIRE(sc[i].entries > 0, "client %d never got in", i);
        for (int k = 1; k < sc[i].entries; k++)
            REQUIRE(sc[i].tokens[k] > sc[i].tokens[k - 1],
                    "client %d: token %lld after %lld", i, sc[i].tokens[k],
                    sc[i].tokens[k - 1]);
        total += (size_t)sc[i].entries;
    }
    long long first_max = 0;
    for (int i = 0; i < STRESS_CLIENTS; i++) {
        REQUIRE(i == 0 || sc[i].tokens[0] > sc[i - 1].tokens[0],
                "FIFO: client %d, queued after client %d, was served first "
                "(token %lld, %lld)", i, i - 1, sc[i].tokens[0],
                sc[i - 1].tokens[0]);
        first_max = sc[i].tokens[0];
    }
    for (int i = 0; i < STRESS_CLIENTS; i++)
        for (int k = 1; k < sc[i].entries; k++)
            REQUIRE(sc[i].tokens[k] > first_max, "FIFO: client %d's later "
                    "request (token %lld) passed the queued ones (last "
                    "served %lld)", i, sc[i].tokens[k], first_max);
    REQUIRE(atomic_load(&inside_max) <= STRESS_N,
            "%d clients inside a pool of %d", atomic_load(&inside_max),
            STRESS_N);
    ck_assert_int_ge(atomic_load(&inside_max), 1);
    /* No token was given twice. */
    long long *all = malloc(total * sizeof(*all));
    ck_assert_ptr_nonnull(all);
    size_t n = 0;
    for (int i = 0; i < STRESS_CLIENTS; i++)
        for (int k = 0; k < sc[i].entries; k++)
            all[n++] = sc[i].tokens[k];
    qsort(all, n, sizeof(*all), cmp_ll);
    for (size_t k = 1; k < n; k++)
        REQUIRE(all[k] != all[k - 1], "token %lld granted twice", all[k]);
    free(all);
    json_t *st = stats_get(sc[0].fd);
    ck_assert_int_eq(stat_int(st, "pool_slots"), 0);
    ck_assert_int_eq(stat_int(st, "pools"), 0);
    ck_assert_int_ge(stat_int(st, "acquired"), (long long)total);
    json_decref(st);
    fprintf(stderr, "pool stress: %zu entries by %d clients, at most %d "
            "inside\n", total, STRESS_CLIENTS, atomic_load(&inside_max));
    for (int i = 0; i < STRESS_CLIENTS; i++)
        close(sc[i].fd);
    close(ctl);
    srv_finish();
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = itest_tcase(s, "commands");
    tcase_add_test(tc, test_pool_commands);
    tcase_add_test(tc, test_pool_errors);
    tcase_add_test(tc, test_pool_lock_mixups);
    tc = itest_tcase(s, "waiting");
    tcase_add_test(tc, test_pool_expiry_and_session_wake);
    tcase_add_test(tc, test_pool_fifo);
    tcase_add_test(tc, test_pool_stress);
    return s;
}

int main(void)
{
    return itest_main(pool_suite());
}
