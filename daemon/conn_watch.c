/* daemon/conn_watch.c - the close watch of a waiter (see conn_watch.h and
 * conn.h, WAIT_PROBE_MS). */
#include "daemon/conn_watch.h"

#include <poll.h>
#include <sys/ioctl.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/server.h"

int conn_can_watch_close(const struct conn *c)
{
    return c->fd >= 0 &&
           (event_base_get_features(c->srv->base) & EV_FEATURE_EARLY_CLOSE);
}

/* 1 when the waiter behind fd pushes more than it may (conn.h,
 * WAIT_KERNEL_BYTES): its close could be stuck behind our closed window. */
static int waiter_overflows(evutil_socket_t fd)
{
    int queued = 0;
    return ioctl(fd, FIONREAD, &queued) == 0 && queued >= WAIT_KERNEL_BYTES;
}

static void drop_overflowing_waiter(struct conn *c)
{
    static struct log_limit overflow_log;
    log_limited(&overflow_log, LOG_WARNING, "client %s dropped: pipelined "
                "over %u bytes behind a waiting ACQUIRE", c->peer,
                INPUT_READAHEAD_BYTES + WAIT_KERNEL_BYTES);
    conn_free(c);
}

/* The watch of a waiter whose reading stopped at the mark (conn.h): its
 * peer closed (EV_CLOSED), or the periodic probe found a reset (epoll
 * reports one as EPOLLERR, which libevent 2.1 passes on as EV_READ|EV_WRITE
 * only, so the EV_CLOSED event never sees it; the loop may spin on that
 * error until the probe, at most WAIT_PROBE_MS) or a client pushing more
 * than it may.  The client is gone, and so is its wait, as on_event does
 * on EOF. */
static void on_close_watch(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    if (!(what & EV_CLOSED)) {
        struct pollfd p = { fd, 0, 0 };
        if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLERR | POLLHUP))) {
            if (waiter_overflows(fd))
                drop_overflowing_waiter(c);
            return;
        }
    }
    log_msg(LOG_DEBUG, "client %s left while waiting", c->peer);
    conn_free(c);
}

int conn_watch_close(struct conn *c)
{
    evutil_socket_t fd = c->fd;
    if (c->close_watch ||
        evbuffer_get_length(c->in) <
            INPUT_READAHEAD_BYTES ||
        !conn_can_watch_close(c))
        return 0;
    if (waiter_overflows(fd)) {
        drop_overflowing_waiter(c);
        return 1;
    }
    struct timeval probe = { WAIT_PROBE_MS / 1000,
                             (WAIT_PROBE_MS % 1000) * 1000 };
    c->close_watch = event_new(c->srv->base, fd, EV_CLOSED | EV_PERSIST,
                               on_close_watch, c);
    if (!c->close_watch || event_add(c->close_watch, &probe) != 0) {
        log_msg(LOG_WARNING, "client %s dropped: out of memory watching "
                "a waiting connection", c->peer);
        conn_free(c);
        return 1;
    }
    return 0;
}

void conn_unwatch_close(struct conn *c)
{
    if (c->close_watch) {
        event_free(c->close_watch);
        c->close_watch = NULL;
    }
}
