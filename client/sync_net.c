/* client/sync_net.c - one blocking connection to cachifyd (implements
 * client/sync_net.h).
 *
 * Owns: the socket, its TLS session (cachifys://) and its reply parser.
 * Connects with a non-blocking connect() and poll() for the timeout (the
 * TLS handshake within the same deadline), then keeps the socket
 * non-blocking and poll()s before every read and write with the time left
 * before the call's deadline, so a stalled server costs at most that
 * deadline.  No sleeping and no retry loops: a poll() that runs out is the
 * timeout.  Over TLS each SSL_connect / SSL_read / SSL_write is tried
 * first and, when OpenSSL wants the socket readable or writable, called
 * again after a poll() for that (tls_wait).
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

#include <openssl/err.h>

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
    sc->tls = NULL;
    sc->ssl = NULL;
    sc->tls_failed = 0;
}

void sconn_close(struct sconn *sc)
{
    if (sc->ssl != NULL) {
        if (!sc->tls_failed)
            ctls_close_notify(sc->ssl);
        SSL_free(sc->ssl);
    }
    if (sc->fd >= 0)
        close(sc->fd);
    resp_parser_free(sc->parser);
    sc->fd = -1;
    sc->parser = NULL;
    sc->ssl = NULL;
    sc->tls_failed = 0;
}

void sconn_free(struct sconn *sc)
{
    sconn_close(sc);
    ctls_free(sc->tls);
    sc->tls = NULL;
}

/* What tls_wait found. */
enum tls_next {
    TLS_AGAIN = 1,   /* the socket is ready for what OpenSSL wants: call again */
    TLS_TIMEOUT = 0, /* the deadline came first */
    TLS_FAILED = -1, /* an error; the reason is in why */
    TLS_CLOSED = -2, /* the server closed the connection (with or without
                        close_notify) */
};

/* After an SSL call on sc returned r (<= 0): waits, by deadline, for the
 * socket to be ready for what OpenSSL needs to go on.  A fatal error sets
 * sc->tls_failed (no close_notify may follow it). */
static enum tls_next tls_wait(struct sconn *sc, int r, long long deadline,
                              char *why, size_t whylen)
{
    int sys_errno = errno; /* SSL_get_error makes no system call */
    int e = SSL_get_error(sc->ssl, r), w;
    unsigned long err_code;

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        w = wait_fd(sc->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                    deadline);
        if (w < 0)
            snprintf(why, whylen, "poll: %s", strerror(errno));
        return w > 0 ? TLS_AGAIN : w == 0 ? TLS_TIMEOUT : TLS_FAILED;
    }
    if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify, or an end of file */
        ERR_clear_error();
        return TLS_CLOSED;
    }
    sc->tls_failed = 1;
    err_code = ctls_take_error();
    if (e == SSL_ERROR_SYSCALL && err_code == 0 && sys_errno == 0)
        return TLS_CLOSED; /* an end of file (OpenSSL 1.1) */
    ctls_reason(sc->ssl, err_code, e == SSL_ERROR_SYSCALL ? sys_errno : 0,
                why, whylen);
    return TLS_FAILED;
}

/* Before each SSL call: its errors alone are in the queue and in errno,
 * so tls_wait reads them and not some earlier call's. */
static void tls_prep(void)
{
    ERR_clear_error();
    errno = 0;
}

/* Runs the TLS handshake on sc's connected socket by deadline.  what
 * names the server for messages. */
static int tls_handshake(struct sconn *sc, const char *what,
                         long long deadline, char *err, size_t errlen)
{
    char why[256];

    for (;;) {
        enum tls_next next;
        int r;

        tls_prep();
        r = SSL_connect(sc->ssl);
        if (r == 1)
            return CACHIFY_OK;
        next = tls_wait(sc, r, deadline, why, sizeof why);
        if (next == TLS_AGAIN)
            continue;
        snprintf(err, errlen, "TLS handshake with %s failed: %s", what,
                 next == TLS_TIMEOUT  ? "timed out"
                 : next == TLS_CLOSED ? "the server closed the connection"
                                      : why);
        return CACHIFY_ERR_IO;
    }
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

/* "host:port" ("[v6]:port") of u into what[WHAT_MAX], for messages. */
#define WHAT_MAX (CACHIFY_URL_HOST_MAX + 16)
static void tcp_what(const struct cachify_url *u, char *what)
{
    snprintf(what, WHAT_MAX, strchr(u->host, ':') ? "[%s]:%d" : "%s:%d",
             u->host, u->port);
}

static int open_tcp(const struct cachify_url *u, long long deadline,
                    char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char port[8], what[WHAT_MAX];
    int rc, fd = -1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", u->port);
    tcp_what(u, what);
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
    int tls = u->kind == CACHIFY_URL_TCP && u->tls;
    long long deadline;
    char what[WHAT_MAX];
    int rc;

    sconn_close(sc);
    /* Built before the first connect, so a CA or key file that cannot be
     * used is reported whether or not the server is up; and before the
     * deadline starts: reading files is not the server's time. */
    if (tls && sc->tls == NULL &&
        (rc = ctls_new(&sc->tls, u, err, errlen)) != CACHIFY_OK)
        return rc;
    deadline = deadline_after(timeout_ms);
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
    if (!tls)
        return CACHIFY_OK;
    sc->ssl = ctls_ssl_new(sc->tls, sc->fd);
    if (sc->ssl == NULL) {
        sconn_close(sc);
        snprintf(err, errlen, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    tcp_what(u, what);
    rc = tls_handshake(sc, what, deadline, err, errlen);
    if (rc != CACHIFY_OK)
        sconn_close(sc);
    return rc;
}

/* sconn_idle over TLS, once poll() said the socket is readable: reads
 * the records that arrived without taking their data (SSL_peek).  Records
 * with no data for us (TLS 1.3 sends session tickets after the handshake)
 * leave the connection idle; data, an alert, a close or an error do not.
 * A bounded number of rounds: a server that keeps sending is not idle. */
static int tls_idle(struct sconn *sc)
{
    for (int round = 0; round < 8; round++) {
        struct pollfd pfd = {sc->fd, POLLIN, 0};
        char byte;
        int r, e;

        tls_prep();
        r = SSL_peek(sc->ssl, &byte, 1);
        if (r > 0)
            return 0;
        e = SSL_get_error(sc->ssl, r);
        if (e != SSL_ERROR_WANT_READ) {
            if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_SSL)
                sc->tls_failed = 1;
            ERR_clear_error();
            return 0;
        }
        if (poll(&pfd, 1, 0) == 0)
            return 1; /* all read, and nothing but records without data */
    }
    return 0;
}

int sconn_idle(struct sconn *sc)
{
    struct pollfd pfd;
    int rc;

    if (sc->fd < 0 || sc->parser == NULL || resp_parser_busy(sc->parser) ||
        (sc->ssl != NULL && SSL_pending(sc->ssl) > 0))
        return 0;
    do {
        pfd.fd = sc->fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        rc = poll(&pfd, 1, 0);
    } while (rc < 0 && errno == EINTR);
    /* Readable (bytes or EOF), POLLHUP, POLLERR: not idle.  A poll that
     * fails says nothing good either.  Over TLS, readable may still be
     * idle: see tls_idle. */
    if (rc == 1 && sc->ssl != NULL && pfd.revents == POLLIN)
        return tls_idle(sc);
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

/* send_all over TLS.  After a WANT_*, SSL_write is called again with the
 * same bytes, as OpenSSL requires. */
static int tls_send_all(struct sconn *sc, const char *buf, size_t n,
                        long long deadline, char *err, size_t errlen)
{
    char why[256];

    while (n > 0) {
        enum tls_next next;
        int r;

        tls_prep();
        r = SSL_write(sc->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
        if (r > 0) {
            buf += r;
            n -= (size_t)r;
            continue;
        }
        next = tls_wait(sc, r, deadline, why, sizeof why);
        if (next == TLS_AGAIN)
            continue;
        snprintf(err, errlen, "sending to the server: %s",
                 next == TLS_TIMEOUT  ? "timed out"
                 : next == TLS_CLOSED ? "connection closed by the server"
                                      : why);
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
    if (sc->ssl != NULL)
        return tls_send_all(sc, buf, n, deadline_after(timeout_ms), err,
                            errlen);
    return send_all(sc, buf, n, deadline_after(timeout_ms), err, errlen);
}

/* The next bytes from the server into buf[cap] by deadline: their count
 * (> 0), or CACHIFY_ERR_IO with a message. */
static long read_some(struct sconn *sc, char *buf, size_t cap,
                      long long deadline, char *err, size_t errlen)
{
    char why[256];

    for (;;) {
        enum tls_next next;
        ssize_t r;
        int rc;

        if (sc->ssl != NULL) {
            tls_prep();
            rc = SSL_read(sc->ssl, buf, cap > INT_MAX ? INT_MAX : (int)cap);
            if (rc > 0)
                return rc;
            next = tls_wait(sc, rc, deadline, why, sizeof why);
            if (next == TLS_AGAIN)
                continue;
            if (next == TLS_TIMEOUT)
                snprintf(err, errlen,
                         "timed out waiting for the server's reply");
            else if (next == TLS_CLOSED)
                snprintf(err, errlen, "connection closed by the server");
            else
                snprintf(err, errlen, "receiving from the server: %s", why);
            return CACHIFY_ERR_IO;
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
        r = recv(sc->fd, buf, cap, 0);
        if (r > 0)
            return (long)r;
        if (r == 0) {
            snprintf(err, errlen, "connection closed by the server");
            return CACHIFY_ERR_IO;
        }
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            continue;
        snprintf(err, errlen, "receiving from the server: %s",
                 strerror(errno));
        return CACHIFY_ERR_IO;
    }
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
        long r;

        if (st == RESP_OK)
            return CACHIFY_OK;
        if (st == RESP_ERROR) {
            snprintf(err, errlen, "bad reply from the server: %s",
                     resp_parser_error(sc->parser));
            return strcmp(resp_parser_error(sc->parser), "out of memory") == 0
                       ? CACHIFY_ERR_NOMEM : CACHIFY_ERR_PROTO;
        }
        r = read_some(sc, buf, sizeof buf, deadline, err, errlen);
        if (r < 0)
            return (int)r;
        if (resp_parser_feed(sc->parser, buf, (size_t)r) != 0) {
            snprintf(err, errlen, "out of memory");
            return CACHIFY_ERR_NOMEM;
        }
    }
}
