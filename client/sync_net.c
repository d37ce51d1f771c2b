/* client/sync_net.c - one blocking connection to cachifyd (implements
 * client/sync_net.h).
 *
 * Owns: the socket and its reply parser.  Connects with a non-blocking
 * connect() and poll() for the timeout, then keeps the socket non-blocking
 * and poll()s before every read and write with the time left before the
 * call's deadline, so a stalled server costs at most that deadline.  No
 * sleeping and no retry loops: a poll() that runs out is the timeout.
 */
#include "client/sync_net.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/cachify.h"

/* Bytes read per recv(): replies are a few bytes; 16 KiB drains a
 * pipeline or a STATS reply in one call. */
#define READ_CHUNK 16384

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The deadline timeout_ms from now; -1 (none) when timeout_ms < 0. */
static long long deadline_after(long long timeout_ms)
{
    if (timeout_ms < 0)
        return -1;
    if (timeout_ms > LLONG_MAX / 4)
        return -1; /* longer than anyone will wait: no bound */
    return now_ms() + timeout_ms;
}

/* Waits until fd is ready for events or deadline (-1: none) passes.
 * 1 ready (or in error: the next call reports it), 0 timed out, -1 poll
 * failed (errno). */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd pfd = {fd, events, 0};
        int ms = -1, rc;

        if (deadline >= 0) {
            long long left = deadline - now_ms();

            if (left <= 0)
                return 0;
            ms = left > INT_MAX ? INT_MAX : (int)left;
        }
        rc = poll(&pfd, 1, ms);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
        /* rc 0: poll's own bound ran out (INT_MAX ms) or the deadline
         * arrived; EINTR: a signal.  Either way recompute the time left. */
    }
}

void cachify_impl_tune_socket(int fd, int tcp)
{
    int one = 1;

    /* Keepalive: see sync_net.h (a WAIT FOREVER must not outlive a server
     * that vanished without a word). */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    if (!tcp)
        return;
#ifdef TCP_KEEPIDLE
    {
        int idle = CACHIFY_KEEPIDLE_S, intvl = CACHIFY_KEEPINTVL_S,
            cnt = CACHIFY_KEEPCNT;

        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
    }
#endif
    /* Requests are small and answered one by one: no Nagle delay. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void sconn_init(struct sconn *sc)
{
    sc->fd = -1;
    sc->parser = NULL;
}

void sconn_close(struct sconn *sc)
{
    if (sc->fd >= 0)
        close(sc->fd);
    resp_parser_free(sc->parser);
    sconn_init(sc);
}

/* Non-blocking connect of a new socket to sa, done by deadline.  The fd,
 * or -1 with a message. */
static int connect_one(int family, const struct sockaddr *sa, socklen_t salen,
                       long long deadline, const char *what, char *err,
                       size_t errlen)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int soerr = 0, rc;
    socklen_t sl = sizeof soerr;

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, sa, salen) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EINTR) {
        snprintf(err, errlen, "connect to %s: %s", what, strerror(errno));
        close(fd);
        return -1;
    }
    rc = wait_fd(fd, POLLOUT, deadline);
    if (rc == 0) {
        snprintf(err, errlen, "connect to %s: timed out", what);
        close(fd);
        return -1;
    }
    if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
        soerr = errno;
    if (soerr != 0) {
        snprintf(err, errlen, "connect to %s: %s", what, strerror(soerr));
        close(fd);
        return -1;
    }
    return fd;
}

static int open_tcp(const struct cachify_url *u, long long deadline,
                    char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[8], what[CACHIFY_URL_HOST_MAX + 16];
    int rc, fd = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", u->port);
    snprintf(what, sizeof what, strchr(u->host, ':') ? "[%s]:%d" : "%s:%d",
             u->host, u->port);
    rc = getaddrinfo(u->host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", what,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }
    /* Each address in turn, all within the one connect deadline. */
    for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, deadline,
                         what, err, errlen);
    freeaddrinfo(res);
    if (fd >= 0)
        cachify_impl_tune_socket(fd, 1);
    return fd;
}

static int open_unix(const struct cachify_url *u, long long deadline,
                     char *err, size_t errlen)
{
    struct sockaddr_un sa;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    /* url.c bounds path to sizeof sun_path with its NUL. */
    memcpy(sa.sun_path, u->path, strlen(u->path) + 1);
    int fd = connect_one(AF_UNIX, (const struct sockaddr *)&sa, sizeof sa,
                         deadline, u->path, err, errlen);

    if (fd >= 0)
        cachify_impl_tune_socket(fd, 0);
    return fd;
}

int sconn_open(struct sconn *sc, const struct cachify_url *u, int timeout_ms,
               char *err, size_t errlen)
{
    long long deadline = deadline_after(timeout_ms);

    sconn_close(sc);
    sc->parser = resp_parser_new(NULL);
    if (sc->parser == NULL) {
        snprintf(err, errlen, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    sc->fd = u->kind == CACHIFY_URL_UNIX ? open_unix(u, deadline, err, errlen)
                                          : open_tcp(u, deadline, err, errlen);
    if (sc->fd < 0) {
        sconn_close(sc);
        return CACHIFY_ERR_IO;
    }
    return CACHIFY_OK;
}

int sconn_idle(struct sconn *sc)
{
    struct pollfd pfd;
    int rc;

    if (sc->fd < 0 || sc->parser == NULL || resp_parser_busy(sc->parser))
        return 0;
    do {
        pfd.fd = sc->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        rc = poll(&pfd, 1, 0);
    } while (rc < 0 && errno == EINTR);
    /* Readable (bytes or EOF), POLLHUP, POLLERR: not idle.  A poll that
     * fails says nothing good either. */
    return rc == 0;
}

/* Writes n bytes of buf by deadline.  CACHIFY_OK or CACHIFY_ERR_IO. */
static int send_all(struct sconn *sc, const char *buf, size_t n,
                    long long deadline, char *err, size_t errlen)
{
    while (n > 0) {
        ssize_t w = send(sc->fd, buf, n, MSG_NOSIGNAL);

        if (w > 0) {
            buf += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = wait_fd(sc->fd, POLLOUT, deadline);

            if (rc == 0) {
                snprintf(err, errlen, "sending to the server: timed out");
                return CACHIFY_ERR_IO;
            }
            if (rc > 0)
                continue;
        }
        snprintf(err, errlen, "sending to the server: %s",
                 w == 0 ? "nothing written" : strerror(errno));
        return CACHIFY_ERR_IO;
    }
    return CACHIFY_OK;
}

int sconn_send(struct sconn *sc, const char *buf, size_t n, int timeout_ms,
               char *err, size_t errlen)
{
    if (sc->fd < 0) {
        snprintf(err, errlen, "not connected");
        return CACHIFY_ERR_IO;
    }
    return send_all(sc, buf, n, deadline_after(timeout_ms), err, errlen);
}

int sconn_recv(struct sconn *sc, long long timeout_ms, struct resp_reply **out,
               char *err, size_t errlen)
{
    long long deadline = deadline_after(timeout_ms);
    char buf[READ_CHUNK];

    *out = NULL;
    if (sc->fd < 0) {
        snprintf(err, errlen, "not connected");
        return CACHIFY_ERR_IO;
    }
    for (;;) {
        enum resp_status st = resp_parser_next(sc->parser, out);
        ssize_t r;
        int rc;

        if (st == RESP_OK)
            return CACHIFY_OK;
        if (st == RESP_ERROR) {
            snprintf(err, errlen, "bad reply from the server: %s",
                     resp_parser_error(sc->parser));
            return strcmp(resp_parser_error(sc->parser), "out of memory") == 0
                       ? CACHIFY_ERR_NOMEM : CACHIFY_ERR_PROTO;
        }
        rc = wait_fd(sc->fd, POLLIN, deadline);
        if (rc == 0) {
            snprintf(err, errlen, "timed out waiting for the server's reply");
            return CACHIFY_ERR_IO;
        }
        if (rc < 0) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return CACHIFY_ERR_IO;
        }
        r = recv(sc->fd, buf, sizeof buf, 0);
        if (r == 0) {
            snprintf(err, errlen, "connection closed by the server");
            return CACHIFY_ERR_IO;
        }
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            snprintf(err, errlen, "receiving from the server: %s",
                     strerror(errno));
            return CACHIFY_ERR_IO;
        }
        if (resp_parser_feed(sc->parser, buf, (size_t)r) != 0) {
            snprintf(err, errlen, "out of memory");
            return CACHIFY_ERR_NOMEM;
        }
    }
}
