/* tests/integration/backends.h - the backends the client conformance
 * suites (test_client_sync.c, test_client_async.c) run every shared test
 * case on, and the one place that says where they truly differ.
 *
 * Owns: the backend numbers (a loop test's _i), their traits, the etcd
 * cluster those suites share (started once by the suite's main(), before
 * Check forks the tests, and stopped on every path by
 * tests/support/etcdcluster.c) and the URL of the backend under test.
 * Each etcd test gets a key prefix of its own, so the tests never see each
 * other's locks.  Does not own: the cachifyd daemon of a test
 * (tests/support/itest_common.h; bk_start starts it as the others).
 */
#ifndef CACHIFY_TESTS_BACKENDS_H
#define CACHIFY_TESTS_BACKENDS_H

#include <check.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/base64.h"
#include "tests/support/etcdcluster.h"
#include "tests/support/itest_common.h"

enum { BK_CACHIFYD, BK_MEM, BK_ETCD, BK_COUNT };

struct backend_traits {
    const char *name;
    /* The shortest lock lifetime the backend keeps as asked.  etcd leases
     * last whole seconds and at least about 2 s (etcd's minimum TTL, 1.5
     * election timeouts, rounded up). */
    long long min_exp_ms;
    /* How far below its exp the PTTL of a fresh lock may read: etcd
     * reports whole seconds. */
    long long pttl_slack_ms;
    /* The shortest io timeout the suites use on it: every etcd call is a
     * Raft commit (with an fsync) and some calls are two. */
    int quick_io_ms;
    /* 0: PTTL of a SESSION lock reads its own expiry on every handle.
     * Else the bound of what another handle reads: on etcd a SESSION
     * lock's lease is a short one its holder renews (EKEEP_SESSION_TTL_S),
     * and only the holder knows the lock's own expiry. */
    long long other_session_pttl_ms;
    /* How late after its expiry a lock or pool slot may still be seen:
     * etcd revokes an expired lease from its lessor's loop (every 500 ms)
     * through a Raft commit, and leases are whole seconds. */
    long long expiry_late_ms;
};

static const struct backend_traits BACKENDS[BK_COUNT] = {
    [BK_CACHIFYD] = {"cachifyd", 1, 1000, 100, 0, 200},
    [BK_MEM] = {"mem", 1, 1000, 100, 0, 200},
    [BK_ETCD] = {"etcd", 2000, 2000, 3000, 6000, 2000},
};

/* A lifetime of ms, or the backend's shortest when ms is shorter. */
static inline long long bk_exp(int bk, long long ms)
{
    return ms < BACKENDS[bk].min_exp_ms ? BACKENDS[bk].min_exp_ms : ms;
}

/* The cluster of the suite (see the top), and the key prefix of the
 * running test.  Unused in suites that include this header for the
 * backend numbers only. */
static struct etcd_cluster g_ec __attribute__((unused)) = {.owner = -1};
static char g_bk_prefix[64] __attribute__((unused));

/* How many backends a loop test runs on: all of them, but with the daemon
 * under valgrind (CACHIFYD_VALGRIND=1, make valgrind) cachifyd alone: the
 * mem: and etcd cases run no daemon, and valgrind runs nothing else, so
 * there they would only repeat the plain pass.  BK_CACHIFYD is the first
 * backend, BK_ETCD the last. */
static inline __attribute__((unused)) int bk_count(void)
{
    const char *v = getenv("CACHIFYD_VALGRIND");
    return v && v[0] == '1' ? BK_CACHIFYD + 1 : BK_COUNT;
}

/* Starts g_ec; main() calls it before running the tests.  0 or -1. */
static inline int bk_etcd_start(void)
{
    return ec_start(&g_ec);
}

/* main() of a suite that uses g_ec: starts it, runs s, stops it (the
 * atexit hook would too).  The exit status. */
static inline __attribute__((unused)) int bk_run(Suite *s)
{
    SRunner *sr;
    int failed;

    signal(SIGPIPE, SIG_IGN);
    if (bk_count() > BK_ETCD && bk_etcd_start() != 0) {
        fprintf(stderr, "the etcd cluster did not start\n");
        return 1;
    }
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    ec_stop(&g_ec);
    return failed != 0;
}

/* The URL of g_ec with a key prefix no other test uses (Check forks each
 * test, so the pid differs; a counter covers CK_FORK=no). */
static inline void bk_etcd_url(const char *userpass, char *buf, size_t cap)
{
    static unsigned n;

    snprintf(g_bk_prefix, sizeof g_bk_prefix, "cachify-test/%ld-%u/",
             (long)getpid(), ++n);
    ec_url(&g_ec, userpass, g_bk_prefix, buf, cap);
}

/* Starts the backend bk of a loop test and writes its URL to url[cap]: a
 * daemon forked for BK_CACHIFYD (extra arguments may be NULL), "mem:" for
 * BK_MEM, the suite's cluster with a key prefix of the test's own for
 * BK_ETCD.  The daemon is g_ts (tests/support/itest_common.h): srv_finish
 * stops it. */
static inline __attribute__((unused)) void bk_start(int bk,
                                                    const char *const *extra,
                                                    char *url, size_t cap)
{
    if (bk == BK_MEM) {
        snprintf(url, cap, "mem:");
        return;
    }
    if (bk == BK_ETCD) {
        bk_etcd_url(NULL, url, cap);
        return;
    }
    srv_start(extra);
    snprintf(url, cap, "cachify://127.0.0.1:%d", g_ts.port);
}

/* How many entries etcd holds under the running test's prefix + key +
 * tail, read from member 0 (key without '/' or '%'), or -1. */
static inline __attribute__((unused)) long bk_etcd_entries(const char *key,
                                                           const char *tail)
{
    char name[256], k64[400], e64[400], body[1024], out[4096];
    size_t n = (size_t)snprintf(name, sizeof name, "%s%s%s", g_bk_prefix, key,
                                tail);
    json_t *j;
    long count = -1;

    base64_encode(name, n, k64);
    name[n - 1] = '0'; /* the end of the range: just past every "name/" */
    base64_encode(name, n, e64);
    snprintf(body, sizeof body,
             "{\"key\":\"%s\",\"range_end\":\"%s\",\"count_only\":true}",
             k64, e64);
    if (ec_post(&g_ec, 0, "/v3/kv/range", body, NULL, out, sizeof out) != 200)
        return -1;
    j = json_loads(out, 0, NULL);
    if (j != NULL) {
        json_t *c = json_object_get(j, "count");

        /* The gateway leaves out a count of 0. */
        count = json_is_string(c) ? atol(json_string_value(c)) : 0;
        json_decref(j);
    }
    return count;
}

/* How many takers (holder and waiters) the lock on key has in etcd, or -1.
 * What cachifyd's STATS "waiters" is to the other suites. */
static inline __attribute__((unused)) long bk_etcd_takers(const char *key)
{
    return bk_etcd_entries(key, "/");
}

/* How many slot requests (holders and waiters) the pool on key has in
 * etcd (client/etcd_pool.c: its entries are under key + "%P/"), or -1. */
static inline __attribute__((unused)) long bk_etcd_pool_entries(const char *key)
{
    return bk_etcd_entries(key, "%P/");
}

#endif
