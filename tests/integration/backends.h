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
 * (tests/support/itest_common.h).
 */
#ifndef CACHIFY_TESTS_BACKENDS_H
#define CACHIFY_TESTS_BACKENDS_H

#include <stdio.h>
#include <unistd.h>

#include "tests/support/etcdcluster.h"

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
};

static const struct backend_traits BACKENDS[BK_COUNT] = {
    [BK_CACHIFYD] = {"cachifyd", 1, 1000, 100},
    [BK_MEM] = {"mem", 1, 1000, 100},
    [BK_ETCD] = {"etcd", 2000, 2000, 3000},
};

/* A lifetime of ms, or the backend's shortest when ms is shorter. */
static inline long long bk_exp(int bk, long long ms)
{
    return ms < BACKENDS[bk].min_exp_ms ? BACKENDS[bk].min_exp_ms : ms;
}

/* The cluster of the suite (see the top). */
static struct etcd_cluster g_ec = {.owner = -1};

/* Starts g_ec; main() calls it before running the tests.  0 or -1. */
static inline int bk_etcd_start(void)
{
    return ec_start(&g_ec);
}

/* The URL of g_ec with a key prefix no other test uses (Check forks each
 * test, so the pid differs; a counter covers CK_FORK=no). */
static inline void bk_etcd_url(const char *userpass, char *buf, size_t cap)
{
    static unsigned n;
    char prefix[64];

    snprintf(prefix, sizeof prefix, "cachify-test/%ld-%u/", (long)getpid(),
             ++n);
    ec_url(&g_ec, userpass, prefix, buf, cap);
}

#endif
