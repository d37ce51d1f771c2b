/* daemon/conn_tls.c - a TLS connection's socket I/O (see conn_tls.h).
 *
 * Reading: conn.c's read_socket hands its vectors (the reader's free room,
 * then its stack chunk) to conn_tls_read instead of readv.  OpenSSL reads
 * ahead, so one read() usually brings a whole request's record; the read
 * stops once OpenSSL holds no bytes of its own, so a TLS client gets one
 * read() per readable event, as a plain one gets one readv, unless a
 * record arrived split (then a second read() completes it; see
 * tls_readv).  When the
 * vectors fill first, OpenSSL may still hold bytes the socket will never
 * announce again: c->tls_more says so and conn.c's sync_reading schedules
 * the read again once there is room (the SSL_pending drain).
 *
 * Writing: conn.c's conn_flush calls conn_tls_write where a plain
 * connection writev's, once per connection per loop turn, after the
 * group commit; SSL_write goes straight to the socket.  Only when it
 * cannot finish is the write event armed (WANT_WRITE) or the read event
 * made to retry it (WANT_READ); c->wr is disarmed once the output drains.
 * libevent's OpenSSL bufferevent instead armed its write event for every
 * reply and disarmed it after the write: two epoll_ctl calls a request.
 */
#include "daemon/conn_tls.h"

#include <errno.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/tls.h"

int conn_tls_init(struct conn *c,
                  void (*on_writable)(evutil_socket_t fd, short what,
                                      void *arg))
{
    struct ssl_st *ssl = c->ssl;
    c->wr = event_new(c->srv->base, c->fd, EV_WRITE | EV_PERSIST,
                      on_writable, c);
    if (!c->wr || tls_watch_reads(ssl, conn_timer_tls_bytes, c) != 0)
        return -1;
    return 0;
}

void conn_tls_free(struct conn *c)
{
    if (c->wr)
        event_free(c->wr);
    c->wr = NULL;
    tls_session_free(c->ssl); /* NULL is fine; the socket stays open */
    c->ssl = NULL;
}

void conn_tls_sync(struct conn *c)
{
    int want = (c->writing && !(c->tls_wants & CONN_TLS_WRITE_WANTS_READ)) ||
               (c->tls_wants & CONN_TLS_READ_WANTS_WRITE);
    /* A no-op (no epoll_ctl) when the event already agrees. */
    if (want)
        event_add(c->wr, NULL);
    else
        event_del(c->wr);
}

/* The handshake is done: requests may come. */
static void handshake_done(struct conn *c)
{
    char how[512];
    c->handshaking = 0;
    c->srv->stats.tls_connections++;
    log_msg(LOG_DEBUG, "client %s: TLS: %s", c->peer,
            tls_describe(c->ssl, 0, how, sizeof how));
    conn_timer_touch(c);
    conn_timer_update(c);
}

/* A read (or the handshake) waits for room in the socket: the write
 * event resumes it. */
static void read_wants_write(struct conn *c)
{
    c->tls_wants |= CONN_TLS_READ_WANTS_WRITE;
    conn_tls_sync(c);
}

/* conn_tls_read's answer when a step (the handshake, if handshaking)
 * brought no bytes and ended with st. */
static ssize_t no_bytes(struct conn *c, enum tls_status st)
{
    if (st == TLS_END && !c->handshaking)
        return 0;
    if (st == TLS_WANT_READ || st == TLS_WANT_WRITE || st == TLS_DONE) {
        if (st == TLS_WANT_WRITE)
            read_wants_write(c);
        errno = EAGAIN;
        return -1;
    }
    if (c->handshaking) {
        /* Refused (no or a bad certificate, an old protocol, plain text)
         * or the client left: counted in conn_free. */
        static struct log_limit hs_log;
        char why[512];
        log_limited(&hs_log, LOG_INFO, "client %s: TLS handshake failed: "
                    "%s", c->peer, tls_describe(c->ssl, 1, why, sizeof why));
    }
    errno = ECONNRESET;
    return -1;
}

ssize_t conn_tls_read(struct conn *c, const struct iovec *iov, int niov)
{
    if (c->tls_end != TLS_DONE) /* met behind the last bytes */
        return no_bytes(c, (enum tls_status)c->tls_end);
    if (c->handshaking) {
        enum tls_status st = tls_handshake(c->ssl);
        if (st != TLS_DONE)
            return no_bytes(c, st);
        handshake_done(c);
    }
    size_t got = 0;
    enum tls_status st = tls_readv(c->ssl, iov, niov, &got);
    c->tls_more = st == TLS_DONE && tls_buffered(c->ssl);
    if (got == 0)
        return no_bytes(c, st);
    if (st == TLS_END || st == TLS_FAILED) {
        /* These bytes are handled first; then the end, from the loop:
         * the socket may not become readable again (a close_notify with
         * the TCP connection left open). */
        c->tls_end = (int)st;
        event_active(c->rd, EV_READ, 1);
    } else if (st == TLS_WANT_WRITE) {
        read_wants_write(c);
    }
    return (ssize_t)got;
}

long conn_tls_write(struct conn *c)
{
    struct evbuffer *out = c->out;
    /* The socket bufferevent freezes its output's start (only it would
     * drain it); thaw it for this write, as conn_flush does. */
    evbuffer_unfreeze(out, 1);
    enum tls_status st = tls_write_out(c->ssl, out, &c->tls_retry);
    evbuffer_freeze(out, 1);
    if (st == TLS_FAILED)
        return -1;
    if (st == TLS_WANT_READ)
        c->tls_wants |= CONN_TLS_WRITE_WANTS_READ;
    else
        c->tls_wants &= ~CONN_TLS_WRITE_WANTS_READ;
    conn_tls_sync(c);
    return (long)evbuffer_get_length(out);
}
