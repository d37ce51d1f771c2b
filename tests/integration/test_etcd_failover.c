/* tests/integration/test_etcd_failover.c - Check suite: mutual exclusion
 * and fencing tokens on the etcd:// backend while the cluster's leader is
 * killed (kill -9) under contention.
 *
 * Owns: NWORKERS threads, each with its own sync handle on a three-member
 * cluster, that take one key over and over (waiting for it, holding it a
 * few ms, releasing it with its token), a kill -9 of the leader in the
 * middle, and the checker.  Why the checker is sound: every lock is taken
 * with an exp far longer than the whole test (LOCK_EXP_MS), so no lock
 * can end by expiry while the test runs; a worker marks the critical
 * section entered after its acquire returned and left before it sends the
 * release, so two workers inside at once means two holders at once, a
 * real double grant, whatever the scheduling.  Entries are serialized by
 * the lock, so the order workers enter in is the grant order, and each
 * entry's token must be larger than the one before (revisions grow).
 * Locks must keep working: grants continue after the kill, and no call
 * fails (a member that dies mid-call is retried on the next one within
 * the io timeout, a wait keeps its place in the queue).
 */
#include "tests/integration/itest.h"

#include <pthread.h>

#include "client/cachify.h"
#include "tests/integration/backends.h"

#define NWORKERS 4
#define LOCK_EXP_MS 600000
#define HOLD_US 5000

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_url[512];
static int g_stop;             /* g_mu */
static int g_inside;           /* g_mu: workers in the critical section */
static long g_grants;          /* g_mu */
static uint64_t g_last_token;  /* g_mu */
static long g_overlaps;        /* g_mu */
static long g_token_disorder;  /* g_mu */
static long g_errors;          /* g_mu */
static char g_first_error[512];/* g_mu */

static void note_error(const char *what, int rc, const char *msg)
{
    pthread_mutex_lock(&g_mu);
    if (g_errors++ == 0)
        snprintf(g_first_error, sizeof g_first_error, "%.32s: %.16s: %.300s", what,
                 cachify_status_name(rc), msg);
    pthread_mutex_unlock(&g_mu);
}

static void *worker(void *arg)
{
    struct cachify_options o = {0, 8000, 0, NULL, 0};
    struct cachify_lock_opts wait = {0, 60000, LOCK_EXP_MS, 0, 0};
    struct cachify *c = NULL;
    char err[256];
    int rc, stop = 0;

    (void)arg;
    rc = cachify_open(&c, g_url, &o, err, sizeof err);
    if (rc != CACHIFY_OK) {
        note_error("open", rc, err);
        return NULL;
    }
    while (!stop) {
        uint64_t token = 0;

        rc = cachify_acquire(c, "crit", &wait, &token);
        if (rc != CACHIFY_OK) {
            note_error("acquire", rc, cachify_errstr(c));
        } else {
            pthread_mutex_lock(&g_mu);
            if (g_inside != 0)
                g_overlaps++;
            g_inside++;
            if (token <= g_last_token)
                g_token_disorder++;
            g_last_token = token;
            g_grants++;
            pthread_mutex_unlock(&g_mu);
            usleep(HOLD_US);
            pthread_mutex_lock(&g_mu);
            g_inside--;
            pthread_mutex_unlock(&g_mu);
            rc = cachify_release(c, "crit", token);
            /* 0 is allowed: a release whose answer was lost with a member
             * is retried, and the retry finds the lock already gone. */
            if (rc < 0)
                note_error("release", rc, cachify_errstr(c));
        }
        pthread_mutex_lock(&g_mu);
        stop = g_stop;
        pthread_mutex_unlock(&g_mu);
    }
    cachify_close(c);
    return NULL;
}

static long grants(void)
{
    long n;

    pthread_mutex_lock(&g_mu);
    n = g_grants;
    pthread_mutex_unlock(&g_mu);
    return n;
}

/* The member that leads now, or -1. */
static int leader(void)
{
    for (int i = 0; i < EC_MEMBERS; i++) {
        char out[2048];
        json_t *j;
        int found = 0;

        if (ec_post(&g_ec, i, "/v3/maintenance/status", "{}", NULL, out,
                    sizeof out) != 200)
            continue;
        j = json_loads(out, 0, NULL);
        if (j != NULL) {
            json_t *me = json_object_get(json_object_get(j, "header"),
                                         "member_id");
            json_t *lead = json_object_get(j, "leader");

            found = json_is_string(me) && json_is_string(lead) &&
                    strcmp(json_string_value(me), json_string_value(lead)) == 0;
            json_decref(j);
        }
        if (found)
            return i;
    }
    return -1;
}

START_TEST(leader_killed_under_contention)
{
    pthread_t th[NWORKERS];
    long before, after;
    double deadline;
    int lead;

    bk_etcd_url(NULL, g_url, sizeof g_url);
    for (int i = 0; i < NWORKERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, NULL), 0);
    /* Contention first. */
    deadline = mono_s() + 60;
    while (grants() < 20 && mono_s() < deadline)
        usleep(20 * 1000);
    lead = leader();
    ck_assert_int_ge(lead, 0);
    before = grants();
    ck_assert_int_ge(before, 20);
    kill(g_ec.pid[lead], SIGKILL); /* main() reaps it */
    /* Locks keep working: more grants after the kill. */
    deadline = mono_s() + 60;
    while (grants() < before + 25 && mono_s() < deadline)
        usleep(20 * 1000);
    after = grants();
    pthread_mutex_lock(&g_mu);
    g_stop = 1;
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "leader (member %d) killed after %ld grants; %ld in all; "
            "%ld errors\n", lead, before, grants(), g_errors);
    ck_assert_msg(g_overlaps == 0, "%ld double grants", g_overlaps);
    ck_assert_msg(g_token_disorder == 0, "%ld tokens out of grant order",
                  g_token_disorder);
    ck_assert_msg(g_errors == 0, "%ld failed calls, first: %s", g_errors,
                  g_first_error);
    ck_assert_msg(after >= before + 25, "only %ld grants after the kill",
                  after - before);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("etcd_failover");
    TCase *tc = tcase_create("failover");

    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, leader_killed_under_contention);
    suite_add_tcase(s, tc);
    return bk_run(s);
}
