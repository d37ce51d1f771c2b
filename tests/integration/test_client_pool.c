/* tests/integration/test_client_pool.c - Check suite: libcachify-client's
 * pools (cachify_pool_*, the pool guard, CACHIFY_POOLED_FN) on every
 * backend of tests/integration/backends.h: each test runs on a cachifyd
 * forked for it, on "mem:" and on the suite's etcd cluster, and must see
 * the same statuses and messages (where a backend truly differs, a trait
 * of backends.h says by how much).
 *
 * Owns: the client side of pools: slots up to max_size, CACHIFY_FULL and
 * CACHIFY_TIMEOUT with "<key> pool is full", release by token and forced,
 * size, extend, a waiting acquire served by another thread's release,
 * SESSION slots freed when their handle closes, CACHIFY_ERR_TYPE for a
 * lock/pool mix-up and a size mismatch, argument checks, the guard, and
 * the decorators' on_full / raise_on_full / size companion, and several
 * handles in processes (threads on mem:) racing for a pool of 2: never a
 * third holder, every token once, each handle's tokens increasing.  Does not own the server's
 * pool tests (test_pool.c) or the example (test_examples.c).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "client/cachify.h"
#include "tests/integration/itest.h"
#include "tests/integration/backends.h"

static char g_url[512];

/* Opens a handle on backend bk (_i), the daemon or the test's etcd
 * prefix first. */
static struct cachify *open_backend(int bk)
{
    struct cachify *c;
    char err[256];

    if (bk == BK_CACHIFYD) {
        srv_start(NULL);
        snprintf(g_url, sizeof g_url, "cachify://127.0.0.1:%d", g_ts.port);
    } else if (bk == BK_ETCD) {
        bk_etcd_url(NULL, g_url, sizeof g_url);
    } else {
        snprintf(g_url, sizeof g_url, "mem:");
    }
    ck_assert_msg(cachify_open(&c, g_url, NULL, err, sizeof err) == CACHIFY_OK,
                  "open %s: %s", g_url, err);
    return c;
}

static void close_backend(struct cachify *c, int bk)
{
    cachify_close(c);
    if (bk == BK_CACHIFYD)
        srv_finish();
}

static const struct cachify_lock_opts one_try = CACHIFY_LOCK_OPTS_DEFAULT;

/* A pool acquire in a thread of its own (a waiter). */
struct waiter {
    struct cachify *c;
    const char *key;
    unsigned max;
    struct cachify_lock_opts opts;
    uint64_t token;
    int rc;
};

static void *wait_slot(void *p)
{
    struct waiter *w = p;

    w->rc = cachify_pool_acquire(w->c, w->key, w->max, &w->opts, &w->token);
    return NULL;
}

/* Waits (10 s at most) until the pool on key has n requests, holders and
 * waiters: on etcd its entries, elsewhere a short pause (the daemon and
 * mem: queue a request at once). */
static void wait_for_requests(int bk, const char *key, long n)
{
    if (bk != BK_ETCD) {
        usleep(200000);
        return;
    }
    for (int i = 0; i < 500 && bk_etcd_pool_entries(key) != n; i++)
        usleep(20000);
    ck_assert_int_eq(bk_etcd_pool_entries(key), n);
}

START_TEST(test_calls)
{
    struct cachify *c = open_backend(_i);
    uint64_t a = 0, b = 0, t = 0;
    ck_assert_int_eq(cachify_pool_acquire(c, "cp", 2, NULL, &a), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "cp", 2, &one_try, &b),
                     CACHIFY_OK);
    ck_assert_uint_gt(b, a);
    ck_assert_int_eq(cachify_pool_acquire(c, "cp", 2, NULL, &t), CACHIFY_FULL);
    ck_assert_str_eq(cachify_errstr(c), "cp pool is full");
    ck_assert_str_eq(cachify_status_name(CACHIFY_FULL), "FULL");
    ck_assert_int_eq(cachify_pool_size(c, "cp"), 2);
    ck_assert_int_eq(cachify_is_locked(c, "cp"), 1);
    ck_assert_int_eq(cachify_pool_release(c, "cp", a), 1);
    ck_assert_int_eq(cachify_pool_release(c, "cp", a), 0);
    ck_assert_int_eq(cachify_pool_size(c, "cp"), 1);
    long long brief = bk_exp(_i, 200);
    ck_assert_int_eq(cachify_pool_extend(c, "cp", b, brief), 1);
    ck_assert_int_eq(cachify_pool_extend(c, "cp", a, brief), 0);
    /* b's slot runs out */
    usleep((useconds_t)(brief + BACKENDS[_i].expiry_late_ms) * 1000);
    ck_assert_int_eq(cachify_pool_size(c, "cp"), 0);
    ck_assert_int_eq(cachify_pool_size(c, "nothing"), 0);
    /* A wait that runs out. */
    ck_assert_int_eq(cachify_pool_acquire(c, "one", 1, NULL, &a), CACHIFY_OK);
    struct cachify_lock_opts wait = {.timeout_ms = 150};
    ck_assert_int_eq(cachify_pool_acquire(c, "one", 1, &wait, &t),
                     CACHIFY_TIMEOUT);
    ck_assert_str_eq(cachify_errstr(c), "one pool is full");
    ck_assert_int_eq(cachify_pool_acquire(c, "x3", 3, NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "x3", 3, NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_force_release(c, "x3"), 2);
    ck_assert_int_eq(cachify_pool_force_release(c, "x3"), 0);
    /* A forced release frees the holders; a waiter moves up. */
    struct cachify_lock_opts long_wait = {.timeout_ms = 20000};
    struct cachify *d;
    char err[256];
    ck_assert_int_eq(cachify_open(&d, g_url, NULL, err, sizeof err),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "fr", 1, NULL, &a), CACHIFY_OK);
    struct waiter wt = {d, "fr", 1, long_wait, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, wait_slot, &wt), 0);
    wait_for_requests(_i, "fr", 2);
    ck_assert_int_eq(cachify_pool_force_release(c, "fr"), 1);
    pthread_join(th, NULL);
    ck_assert_int_eq(wt.rc, CACHIFY_OK);
    ck_assert_uint_gt(wt.token, a);
    ck_assert_int_eq(cachify_pool_size(c, "fr"), 1);
    ck_assert_int_eq(cachify_pool_release(c, "fr", a), 0);
    ck_assert_int_eq(cachify_pool_release(c, "fr", wt.token), 1);
    cachify_close(d);
    close_backend(c, _i);
}
END_TEST

START_TEST(test_errors)
{
    struct cachify *c = open_backend(_i);
    uint64_t t = 0;
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 0, NULL, &t),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 1000001, NULL, &t),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 2, NULL, NULL),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_acquire(c, NULL, 2, NULL, &t),
                     CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_release(c, "p", 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_extend(c, "p", 1, 0), CACHIFY_ERR_ARG);
    ck_assert_int_eq(cachify_pool_size(NULL, "p"), CACHIFY_ERR_ARG);
    /* Size mismatch and lock/pool mix-ups, both ways. */
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 2, NULL, &t), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "p", 3, NULL, &t),
                     CACHIFY_ERR_TYPE);
    if (_i != BK_MEM) /* mem: words it its own way */
        ck_assert_str_eq(cachify_errstr(c),
                         "WRONGSIZE the pool has max_size 2, not 3: a pool "
                         "keeps its size while a slot is held or requested");
    ck_assert_int_eq(cachify_acquire(c, "p", NULL, &t), CACHIFY_ERR_TYPE);
    struct cachify_lock_opts wait = {.timeout_ms = 5000};
    ck_assert_int_eq(cachify_acquire(c, "p", &wait, &t), CACHIFY_ERR_TYPE);
    /* Every backend answers a lock call on a pool's key in cachifyd's
     * words. */
    ck_assert_int_eq(cachify_release(c, "p", 12345), CACHIFY_ERR_TYPE);
    ck_assert_str_eq(cachify_errstr(c),
                     "WRONGTYPE Operation against a pool key: use "
                     "POOL_ACQUIRE, POOL_RELEASE, POOL_SIZE or POOL_EXTEND");
    ck_assert_int_eq(cachify_force_release(c, "p"), CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_extend(c, "p", 12345, 5000), CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_is_locked(c, "p"), 0); /* 1 of 2 slots held */
    /* Tokens that name no slot: 1 (never a revision), the largest, a
     * lock's, one of another pool. */
    ck_assert_int_eq(cachify_pool_release(c, "p", 1), 0);
    ck_assert_int_eq(cachify_pool_release(c, "p", (uint64_t)INT64_MAX), 0);
    ck_assert_int_eq(cachify_pool_extend(c, "p", (uint64_t)INT64_MAX, 1000), 0);
    uint64_t other = 0;
    ck_assert_int_eq(cachify_pool_acquire(c, "q", 1, NULL, &other),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_release(c, "p", other), 0);
    ck_assert_int_eq(cachify_pool_size(c, "q"), 1);
    uint64_t lock = 0;
    ck_assert_int_eq(cachify_acquire(c, "l", NULL, &lock), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "l", 2, NULL, &t),
                     CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_size(c, "l"), CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_release(c, "l", lock), CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_extend(c, "l", lock, 100),
                     CACHIFY_ERR_TYPE);
    ck_assert_int_eq(cachify_pool_force_release(c, "l"), CACHIFY_ERR_TYPE);
    ck_assert_ptr_nonnull(strstr(cachify_errstr(c), "WRONGTYPE"));
    ck_assert_int_eq(cachify_pool_size(c, "p"), 1);
    close_backend(c, _i);
}
END_TEST

struct releaser {
    uint64_t token;
    int rc;
};

static void *release_later(void *p)
{
    struct releaser *r = p;
    struct cachify *c;
    char err[256];
    if (cachify_open(&c, g_url, NULL, err, sizeof err) != CACHIFY_OK) {
        r->rc = -100;
        return NULL;
    }
    usleep(200000);
    r->rc = cachify_pool_release(c, "w", r->token);
    cachify_close(c);
    return NULL;
}

START_TEST(test_wait_and_session)
{
    struct cachify *c = open_backend(_i), *d;
    char err[256];
    uint64_t t = 0;
    struct releaser r = {0, 0};
    ck_assert_int_eq(cachify_pool_acquire(c, "w", 1, NULL, &r.token),
                     CACHIFY_OK);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, release_later, &r), 0);
    struct cachify_lock_opts wait = {.timeout_ms = 10000};
    ck_assert_int_eq(cachify_pool_acquire(c, "w", 1, &wait, &t), CACHIFY_OK);
    pthread_join(th, NULL);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_uint_gt(t, r.token);
    /* A SESSION slot goes with its handle. */
    ck_assert_int_eq(cachify_open(&d, g_url, NULL, err, sizeof err),
                     CACHIFY_OK);
    struct cachify_lock_opts session = {.nowait = 1, .session = 1};
    ck_assert_int_eq(cachify_pool_acquire(d, "s", 1, &session, &t),
                     CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_size(c, "s"), 1);
    cachify_close(d);
    ck_assert_int_eq(cachify_pool_acquire(c, "s", 1, &wait, &t), CACHIFY_OK);
    close_backend(c, _i);
}
END_TEST

/* Waiters are served in the order they asked, one per freed slot. */
START_TEST(test_fifo)
{
    struct cachify *c = open_backend(_i), *h[3];
    struct waiter w[3];
    pthread_t th[3];
    char err[256];
    uint64_t a = 0, b = 0;
    struct cachify_lock_opts long_wait = {.timeout_ms = 30000};
    ck_assert_int_eq(cachify_pool_acquire(c, "ff", 2, NULL, &a), CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_acquire(c, "ff", 2, NULL, &b), CACHIFY_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(cachify_open(&h[i], g_url, NULL, err, sizeof err),
                         CACHIFY_OK);
        w[i] = (struct waiter){h[i], "ff", 2, long_wait, 0, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, wait_slot, &w[i]), 0);
        wait_for_requests(_i, "ff", 3 + i); /* queued in this order */
    }
    /* A newcomer without a wait does not pass them. */
    uint64_t t = 0;
    ck_assert_int_eq(cachify_pool_acquire(c, "ff", 2, NULL, &t), CACHIFY_FULL);
    ck_assert_int_eq(cachify_pool_size(c, "ff"), 2);
    ck_assert_int_eq(cachify_pool_release(c, "ff", a), 1);
    pthread_join(th[0], NULL);
    ck_assert_int_eq(w[0].rc, CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_release(c, "ff", b), 1);
    pthread_join(th[1], NULL);
    ck_assert_int_eq(w[1].rc, CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_release(c, "ff", w[0].token), 1);
    pthread_join(th[2], NULL);
    ck_assert_int_eq(w[2].rc, CACHIFY_OK);
    ck_assert_uint_gt(w[0].token, b);
    ck_assert_uint_gt(w[1].token, w[0].token);
    ck_assert_uint_gt(w[2].token, w[1].token);
    ck_assert_int_eq(cachify_pool_size(c, "ff"), 2);
    for (int i = 0; i < 3; i++)
        cachify_close(h[i]);
    close_backend(c, _i);
}
END_TEST

/* ---- several handles racing for a pool of 2 ---- */

/* Racers: processes (forked, each with its own handle and its own HTTP
 * connections) on cachifyd and etcd; threads on mem:, whose table is the
 * process's own. */
#define RACERS 4
#define ROUNDS 6

struct racer {
    int id, failures;
    char why[200];
};

/* What the racers share: in memory mapped before the fork. */
struct race_board {
    atomic_int inside, most;
    uint64_t tokens[RACERS * ROUNDS];
    struct racer r[RACERS];
};

static struct race_board *g_board;

static void *race(void *p)
{
    struct racer *r = p;
    struct cachify *c;
    struct cachify_lock_opts o = {.timeout_ms = 60000};
    uint64_t last = 0;

    if (cachify_open(&c, g_url, NULL, r->why, sizeof r->why) != CACHIFY_OK) {
        r->failures++;
        return NULL;
    }
    for (int i = 0; i < ROUNDS; i++) {
        uint64_t t = 0;
        int rc = cachify_pool_acquire(c, "race", 2, &o, &t);

        if (rc != CACHIFY_OK || t <= last) {
            snprintf(r->why, sizeof r->why, "round %d: %s token %llu after "
                     "%llu: %s", i, cachify_status_name(rc),
                     (unsigned long long)t, (unsigned long long)last,
                     cachify_errstr(c));
            r->failures++;
            break;
        }
        last = t;
        int now = atomic_fetch_add(&g_board->inside, 1) + 1;
        int most = atomic_load(&g_board->most);
        while (now > most &&
               !atomic_compare_exchange_weak(&g_board->most, &most, now))
            ;
        g_board->tokens[r->id * ROUNDS + i] = t;
        usleep(20000);
        atomic_fetch_sub(&g_board->inside, 1);
        if ((rc = cachify_pool_release(c, "race", t)) != 1) {
            snprintf(r->why, sizeof r->why, "release %llu: %d %s",
                     (unsigned long long)t, rc, cachify_errstr(c));
            r->failures++;
            break;
        }
    }
    cachify_close(c);
    return NULL;
}

START_TEST(test_race)
{
    struct cachify *c = open_backend(_i);
    pthread_t th[RACERS];
    pid_t pid[RACERS];
    int status;

    g_board = mmap(NULL, sizeof *g_board, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(g_board, MAP_FAILED);
    memset(g_board, 0, sizeof *g_board);
    for (int i = 0; i < RACERS; i++) {
        g_board->r[i].id = i;
        if (_i == BK_MEM) {
            ck_assert_int_eq(pthread_create(&th[i], NULL, race,
                                            &g_board->r[i]), 0);
            continue;
        }
        pid[i] = fork();
        ck_assert_int_ge(pid[i], 0);
        if (pid[i] == 0) {
            race(&g_board->r[i]);
            _exit(0);
        }
    }
    for (int i = 0; i < RACERS; i++) {
        if (_i == BK_MEM) {
            pthread_join(th[i], NULL);
            continue;
        }
        ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "racer %d ended with status %d", i, status);
    }
    for (int i = 0; i < RACERS; i++)
        ck_assert_msg(g_board->r[i].failures == 0, "racer %d: %s", i,
                      g_board->r[i].why);
    ck_assert_int_le(atomic_load(&g_board->most), 2);
    ck_assert_int_ge(atomic_load(&g_board->most), 1);
    /* Every slot had a token of its own. */
    for (int i = 0; i < RACERS * ROUNDS; i++)
        for (int j = i + 1; j < RACERS * ROUNDS; j++)
            ck_assert_msg(g_board->tokens[i] != g_board->tokens[j],
                          "token %llu twice",
                          (unsigned long long)g_board->tokens[i]);
    ck_assert_int_eq(cachify_pool_size(c, "race"), 0);
    munmap(g_board, sizeof *g_board);
    close_backend(c, _i);
}
END_TEST

START_TEST(test_guard)
{
    struct cachify *c = open_backend(_i);
    {
        CACHIFY_SCOPED_POOL(g, c, "g", 1, NULL);
        ck_assert_int_eq(g.status, CACHIFY_OK);
        ck_assert_int_eq(cachify_pool_size(c, "g"), 1);
        struct cachify_pool_guard h =
            cachify_pool_guard_acquire(c, "g", 1, NULL);
        ck_assert_int_eq(h.status, CACHIFY_FULL);
        ck_assert_int_eq(cachify_pool_guard_release(&h), CACHIFY_OK);
    }
    ck_assert_int_eq(cachify_pool_size(c, "g"), 0);
    struct cachify_pool_guard g = cachify_pool_guard_acquire(c, "g", 1, NULL);
    ck_assert_int_eq(g.status, CACHIFY_OK);
    ck_assert_int_eq(cachify_pool_force_release(c, "g"), 1);
    ck_assert_int_eq(cachify_pool_guard_release(&g), CACHIFY_LOST);
    ck_assert_int_eq(cachify_pool_guard_release(&g), CACHIFY_OK);
    close_backend(c, _i);
}
END_TEST

/* ---- the decorators ---- */

static int g_full_calls;
static int g_body_calls;

static int note_full(int job)
{
    g_full_calls++;
    return -job;
}

CACHIFY_POOLED_FN(int, pooled_job, (struct cachify *other, int job),
                  (other, job), ("jobs-%d", job % 2), 1, NULL, 0,
                  note_full(job))
{
    g_body_calls++;
    /* Inside: the pool of this key is full for another call. */
    int inner = 0;
    int st = other ? pooled_job(other, &inner, NULL, job + 2) : 1;
    ck_assert_int_eq(st, 1);
    ck_assert_int_eq(inner, -(job + 2));
    return job * 10;
}

CACHIFY_POOLED_FN_VOID(strict_job, (int job), (job), ("strict-%d", job), 1,
                       NULL, 1, (void)0)
{
    (void)job;
    g_body_calls++;
}

START_TEST(test_decorators)
{
    struct cachify *c = open_backend(_i), *d;
    char err[256];
    ck_assert_int_eq(cachify_open(&d, g_url, NULL, err, sizeof err),
                     CACHIFY_OK);
    g_full_calls = g_body_calls = 0;
    int result = 0;
    ck_assert_int_eq(pooled_job(c, &result, d, 3), CACHIFY_OK);
    ck_assert_int_eq(result, 30);
    ck_assert_int_eq(g_body_calls, 2 - 1); /* the inner call was full */
    ck_assert_int_eq(g_full_calls, 1);
    ck_assert_int_eq(pooled_job_size(c, NULL, 3), 0);
    /* raise_on_full: the status, no body. */
    uint64_t t;
    ck_assert_int_eq(cachify_pool_acquire(d, "strict-7", 1, NULL, &t),
                     CACHIFY_OK);
    ck_assert_int_eq(strict_job_size(c, 7), 1);
    ck_assert_int_eq(strict_job(c, 7), CACHIFY_FULL);
    ck_assert_str_eq(cachify_errstr(c), "strict-7 pool is full");
    ck_assert_int_eq(strict_job(c, 8), CACHIFY_OK);
    ck_assert_int_eq(g_body_calls, 2);
    cachify_close(d);
    close_backend(c, _i);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_pool");
    TCase *tc = itest_tcase(s, "pool");
    tcase_add_loop_test(tc, test_calls, 0, bk_count());
    tcase_add_loop_test(tc, test_errors, 0, bk_count());
    tcase_add_loop_test(tc, test_wait_and_session, 0, bk_count());
    tcase_add_loop_test(tc, test_fifo, 0, bk_count());
    tcase_add_loop_test(tc, test_race, 0, bk_count());
    tcase_add_loop_test(tc, test_guard, 0, bk_count());
    tcase_add_loop_test(tc, test_decorators, 0, bk_count());
    return bk_run(s);
}
