/* daemon/admission.c - admission control: protected mode, the fd limit
 * and polite refusals (see admission.h). */
#include "daemon/admission.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/log.h"

/* Unread bytes drained before closing a refused socket: one read's worth is
 * enough for a client that sent its first request at once, and bounds the
 * work a refused client can cause. */
#define REFUSE_DRAIN_BYTES 4096

int admission_is_local(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_UNIX)
        return 1;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        /* An IPv4 client of a dual-stack socket: ::ffff:127.x.x.x. */
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && a[12] == 127;
    }
    return 0;
}

int admission_denied(const struct cachify_config *cfg,
                     const struct sockaddr *sa)
{
    /* Named users (`user` lines) are passwords too: every client must
     * AUTH then, so remote ones are let in to do it. */
    return cfg->protected_mode && cfg->requirepass[0] == '\0' &&
           cfg->user[0] == '\0' && !admission_is_local(sa);
}

void admission_refuse(int fd, const char *msg)
{
    char sink[REFUSE_DRAIN_BYTES];
    ssize_t n = send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n; /* a fresh socket's send buffer takes one line at once */
    shutdown(fd, SHUT_WR);
    n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT);
    close(fd);
}

long long admission_fit_maxclients(long long maxclients)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)maxclients + ADMISSION_RESERVED_FDS;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_msg(LOG_WARNING, "cannot read the open file limit: %s; keeping "
                "maxclients %lld", strerror(errno), maxclients);
        return maxclients;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want
                          ? rl.rlim_max : want;
        if (rl.rlim_cur > old && setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
        if (rl.rlim_cur > old)
            log_msg(LOG_INFO, "raised the open file limit from %llu to %llu",
                    (unsigned long long)old, (unsigned long long)rl.rlim_cur);
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return maxclients;
    if (rl.rlim_cur <= ADMISSION_RESERVED_FDS) {
        log_msg(LOG_ERROR, "the open file limit (ulimit -n) is %llu: not "
                "even one client fits next to the %d descriptors kept for "
                "the server; raise it", (unsigned long long)rl.rlim_cur,
                ADMISSION_RESERVED_FDS);
        return -1;
    }
    long long fit = (long long)rl.rlim_cur - ADMISSION_RESERVED_FDS;
    log_msg(LOG_WARNING, "maxclients lowered from %lld to %lld: the open "
            "file limit (ulimit -n) is %llu and cannot be raised (hard "
            "limit), and %d descriptors are kept for the server; raise the "
            "limit (ulimit -n, systemd LimitNOFILE) to serve %lld clients",
            maxclients, fit, (unsigned long long)rl.rlim_cur,
            ADMISSION_RESERVED_FDS, maxclients);
    return fit;
}

int admission_bind_is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

void admission_warn_exposure(const struct cachify_config *cfg, int exposed)
{
    if (!exposed || cfg->requirepass[0] != '\0' || cfg->user[0] != '\0')
        return;
    if (cfg->protected_mode)
        log_msg(LOG_WARNING, "protected mode: bind '%s' reaches other hosts "
                "but no password is set, so their clients get -DENIED; set "
                "requirepass (or requirepass_file) to serve them",
                cfg->bind);
    else
        log_msg(LOG_WARNING, "bind '%s' reaches other hosts, no password is "
                "set and protected_mode is no: anyone who can reach this "
                "port can take and release locks", cfg->bind);
}
