/* tests/integration/hardening.h - helpers of the adversarial suites
 * test_limits.c, test_hostile.c, test_service.c and the TLS suites
 * (through tls_itest.h) only (each its own program, so the helpers are
 * static and live in this header).
 *
 * Owns: the scale-down knob for valgrind runs, reading the daemon's log
 * while it runs (and waiting there for a SIGHUP's reload), the close-expecting assertion that keeps reading past
 * its buffer (a hostile peer may be sent more than it can hold), and
 * connecting from a non-loopback address of this machine (protected
 * mode).  Does not
 * own: the daemon of the test and its clean-up on failure (the
 * _ck_assert_failed hook), sends, reply assertions, STATS, TCase creation
 * and main(), which are tests/support/itest_common.h; starting the daemon,
 * VmRSS and the open-file limit, which are tests/support/testserver.[ch].
 */
#ifndef CACHIFY_TESTS_HARDENING_H
#define CACHIFY_TESTS_HARDENING_H

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
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

/* Sends SIGHUP and waits for the reload's last line (the nth of its kind
 * in the log). */
static inline void h_hup(const char *line, int nth)
{
    ck_assert_int_eq(kill(g_ts.pid, SIGHUP), 0);
    double end = mono_s() + (slow_mode() ? 60 : 20);
    for (;;) {
        FILE *f = fopen(g_ts.log_path, "r");
        static char all[1 << 20];
        size_t n = f ? fread(all, 1, sizeof all - 1, f) : 0;
        int seen = 0;
        if (f)
            fclose(f);
        all[n] = '\0';
        for (const char *p = all; (p = strstr(p, line)) != NULL; p++)
            seen++;
        if (seen >= nth)
            return;
        REQUIRE(mono_s() < end, "no \"%s\" (#%d) in the log after SIGHUP",
                line, nth);
        usleep(50000);
    }
}

/* A non-loopback IPv4 address of this machine, or 0 when it has none. */
static inline int local_ipv4(struct in_addr *out, char *name, size_t namelen)
{
    struct ifaddrs *ifs, *i;
    int found = 0;
    if (getifaddrs(&ifs) != 0)
        return 0;
    for (i = ifs; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
            !(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK))
            continue;
        *out = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        found = (ntohl(out->s_addr) >> 24) != 127;
        if (found)
            inet_ntop(AF_INET, out, name, (socklen_t)namelen);
    }
    freeifaddrs(ifs);
    return found;
}

/* Connects to port on addr, from addr: the daemon sees a non-loopback
 * peer. */
static inline int connect_from_port(struct in_addr addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    struct timeval tv = { TS_READ_TIMEOUT_S, 0 };
    ck_assert_int_ge(fd, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr = addr;
    REQUIRE(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s",
        strerror(errno));
    sa.sin_port = htons((uint16_t)port);
    REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
        strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* connect_from to the daemon's (plain) port. */
static inline int connect_from(struct in_addr addr)
{
    return connect_from_port(addr, g_ts.port);
}

#endif
