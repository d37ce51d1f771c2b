/* tests/integration/syncitest.h - helpers of the sync client suites
 * (test_client_sync.c, test_client_net.c; each is its own program, so the
 * helpers are static and live in this header).
 *
 * Owns: the URL a test opens (g_url), the backend of a loop test's _i
 * started and finished (a daemon, mem: or the suite's etcd cluster, as
 * tests/integration/backends.h numbers them) and handles opened on g_url
 * or the test fails.  Does not own: the daemon of the test
 * (tests/support/itest_common.h) or the backends' traits and cluster
 * (backends.h).
 */
#ifndef CACHIFY_TESTS_SYNCITEST_H
#define CACHIFY_TESTS_SYNCITEST_H

#include <stdio.h>

#include "client/cachify.h"
#include "tests/integration/backends.h"
#include "tests/integration/itest.h"

/* The URL open_c and open_opts open. */
static char g_url[512];

/* Starts the backend i (backends.h, bk_start) and sets g_url to reach
 * it. */
static inline void backend_start(int i, const char *const *extra)
{
    bk_start(i, extra, g_url, sizeof g_url);
}

/* Stops the daemon backend_start started for BK_CACHIFYD, asserting a
 * clean exit. */
static inline void backend_finish(int i)
{
    if (i == BK_CACHIFYD)
        srv_finish();
}

/* A handle on g_url with options o (NULL: the defaults); fails the test
 * when it cannot open. */
static inline struct cachify *open_opts(const struct cachify_options *o)
{
    struct cachify *c = NULL;
    char err[256];
    int rc = cachify_open(&c, g_url, o, err, sizeof err);

    if (rc != CACHIFY_OK)
        ck_abort_msg("cachify_open(%s): %s: %s", g_url, cachify_status_name(rc),
                     err);
    return c;
}

static inline struct cachify *open_c(void)
{
    return open_opts(NULL);
}

#endif
