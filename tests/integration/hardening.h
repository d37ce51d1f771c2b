/* tests/integration/hardening.h - helpers of the adversarial suites
 * test_limits.c and test_hostile.c only (each its own program, so the
 * helpers are static and live in this header).
 *
 * Owns: the scale-down knob for valgrind runs, reading the daemon's log
 * while it runs, and the close-expecting assertion that keeps reading past
 * its buffer (a hostile peer may be sent more than it can hold).  Does not
 * own: the daemon of the test and its clean-up on failure (the
 * _ck_assert_failed hook), sends, reply assertions, STATS, TCase creation
 * and main(), which are tests/support/itest_common.h; starting the daemon,
 * VmRSS and the open-file limit, which are tests/support/testserver.[ch].
 */
#ifndef CACHIFY_TESTS_HARDENING_H
#define CACHIFY_TESTS_HARDENING_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/itest_common.h"

/* n normally, n / div under valgrind (at least 1): counts scale down
 * there, never assertions. */
static inline long h_scale(long n, long div)
{
    return slow_mode() ? (n / div > 0 ? n / div : 1) : n;
}

/* Requires exactly `want`, then the close, reading on past 64 KiB. */
#define H_EXPECT_CLOSE(fd, want) ITEST_EXPECT_CLOSE((fd), (want), 1)

/* 1 when the daemon's log holds text (polled for up to secs). */
static inline int h_log_has(const char *text, double secs)
{
    double end = mono_s() + secs;
    for (;;) {
        FILE *f = fopen(g_ts.log_path, "r");
        if (f) {
            static char all[1 << 20];
            size_t n = fread(all, 1, sizeof(all) - 1, f);
            fclose(f);
            all[n] = '\0';
            if (strstr(all, text))
                return 1;
        }
        if (mono_s() >= end)
            return 0;
        usleep(50000);
    }
}

#endif
