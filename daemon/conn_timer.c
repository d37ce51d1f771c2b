/* daemon/conn_timer.c - per-connection deadlines (see conn_timer.h).
 *
 * Timestamps use 0 for "not running": the monotonic clock is far from 0 on
 * any running system, and the fake clocks of the tests start high too.
 * Every action that ends a connection is logged with the key that caused
 * it, so an operator seeing clients vanish can find the setting.
 */
#include "daemon/conn_timer.h"

#include <event2/event.h>

#include "daemon/conn.h"
#include "daemon/log.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "daemon/tls.h"

#define US_PER_S 1000000ULL

static uint64_t now_us(const struct conn *c)
{
    const struct lock_clock *clk = c->srv->clock;
    return clk->mono_us(clk->arg);
}

static uint64_t after(uint64_t since_us, long long seconds)
{
    return since_us + (uint64_t)seconds * US_PER_S;
}

static uint64_t earlier(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* The earliest deadline that applies to c now, UINT64_MAX when none. */
static uint64_t next_deadline(const struct conn *c)
{
    const struct cachify_config *cfg = c->srv->config;
    const struct conn_deadlines *d = &c->deadlines;
    uint64_t next = UINT64_MAX;

    if (c->state == CONN_CLOSING)
        return d->closing_us ? after(d->closing_us, CLOSE_FLUSH_SECONDS)
                             : UINT64_MAX;
    if (c->output_paused) {
        if (cfg->client_stall_timeout > 0 && d->paused_us)
            next = after(d->paused_us, cfg->client_stall_timeout);
        return next;
    }
    if (c->state != CONN_READY)
        return next;
    if (cfg->request_timeout > 0 && d->partial_us)
        next = earlier(next, after(d->partial_us, cfg->request_timeout));
    if (cfg->timeout > 0)
        next = earlier(next, after(d->active_us, cfg->timeout));
    return next;
}

static void arm(struct conn *c, uint64_t now)
{
    struct conn_deadlines *d = &c->deadlines;
    uint64_t next = next_deadline(c);

    /* A later (or no) deadline needs nothing: the armed timer fires early,
     * finds nothing due and re-arms for the real one. */
    if (next == UINT64_MAX || next >= d->armed_for)
        return;
    uint64_t delay = next > now ? next - now : 0;
    struct timeval tv = { (time_t)(delay / US_PER_S),
                          (suseconds_t)(delay % US_PER_S) };
    if (evtimer_add(d->timer, &tv) == 0)
        d->armed_for = next;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_timer_fire(arg);
}

int conn_timer_init(struct conn *c)
{
    struct conn_deadlines *d = &c->deadlines;
    d->armed_for = UINT64_MAX;
    d->active_us = now_us(c);
    d->timer = evtimer_new(c->srv->base, on_timer, c);
    return d->timer ? 0 : -1;
}

void conn_timer_free(struct conn *c)
{
    if (c->deadlines.timer)
        event_free(c->deadlines.timer);
    c->deadlines.timer = NULL;
}

void conn_timer_touch(struct conn *c)
{
    c->deadlines.active_us = now_us(c);
}

/* 1 when c is in the middle of something request_timeout bounds: a
 * request the reader holds part of, a TLS handshake, or a TLS record
 * OpenSSL holds part of (the encrypted bytes of a request, most likely). */
static int incomplete(struct conn *c)
{
    return c->handshaking || proto_reader_pending(c->reader) > 0 ||
           (c->ssl && tls_record_pending(c->ssl));
}

void conn_timer_tls_bytes(void *arg)
{
    struct conn *c = arg;
    struct conn_deadlines *d = &c->deadlines;

    /* The record may be whole, and carry a request or nothing (a
     * KeyUpdate): conn_timer_update and conn_timer_fire look again. */
    if (c->state == CONN_READY && !c->output_paused && !d->partial_us) {
        uint64_t now = now_us(c);
        d->partial_us = now;
        arm(c, now);
    }
}

void conn_timer_update(struct conn *c)
{
    struct conn_deadlines *d = &c->deadlines;
    uint64_t now = now_us(c);
    int reading = c->state == CONN_READY && !c->output_paused;

    /* Only a connection we are reading from can be blamed for a request
     * that does not complete: bytes queued behind a waiting ACQUIRE or a
     * pause get a fresh request_timeout once processing resumes. */
    if (!reading || !incomplete(c))
        d->partial_us = 0;
    else if (!d->partial_us)
        d->partial_us = now;
    if (!c->output_paused)
        d->paused_us = 0;
    else if (!d->paused_us)
        d->paused_us = now;
    if (c->state == CONN_CLOSING && !d->closing_us)
        d->closing_us = now;
    /* Waiting is not idling: the idle clock restarts when the wait ends. */
    if (c->state == CONN_WAITING)
        d->waiting = 1;
    else if (d->waiting) {
        d->waiting = 0;
        d->active_us = now;
    }
    arm(c, now);
}

void conn_timer_fire(struct conn *c)
{
    struct server *srv = c->srv;
    const struct cachify_config *cfg = srv->config;
    struct conn_deadlines *d = &c->deadlines;
    uint64_t now = now_us(c);

    d->armed_for = UINT64_MAX;
    if (c->state == CONN_CLOSING) {
        if (d->closing_us && now >= after(d->closing_us, CLOSE_FLUSH_SECONDS)) {
            log_msg(LOG_INFO, "client %s dropped: its last reply was not "
                    "read within %d s", c->peer, CLOSE_FLUSH_SECONDS);
            conn_free(c);
            return;
        }
    } else if (c->output_paused) {
        if (cfg->client_stall_timeout > 0 && d->paused_us &&
            now >= after(d->paused_us, cfg->client_stall_timeout)) {
            srv->stats.stalled_clients++;
            log_msg(LOG_WARNING, "client %s dropped: it did not read its "
                    "replies for %lld s (client_stall_timeout)", c->peer,
                    cfg->client_stall_timeout);
            conn_free(c);
            return;
        }
    } else if (c->state == CONN_READY) {
        if (cfg->request_timeout > 0 && d->partial_us &&
            now >= after(d->partial_us, cfg->request_timeout) &&
            incomplete(c)) {
            srv->stats.request_timeouts++;
            if (c->handshaking) { /* no -PROTO: it cannot be encrypted */
                log_msg(LOG_WARNING, "client %s closed: its TLS handshake "
                        "did not complete within %lld s (request_timeout)",
                        c->peer, cfg->request_timeout);
                conn_free(c);
                return;
            }
            log_msg(LOG_WARNING, "client %s closed: a request stayed "
                    "incomplete for %lld s (request_timeout)", c->peer,
                    cfg->request_timeout);
            reply_error(c, "PROTO", "request not completed within "
                        "request_timeout (%lld s)", cfg->request_timeout);
            conn_close_after_reply(c);
        } else if (cfg->timeout > 0 && now >= after(d->active_us, cfg->timeout)) {
            srv->stats.idle_closed++;
            log_msg(LOG_INFO, "client %s closed: idle for %lld s (timeout)",
                    c->peer, cfg->timeout);
            conn_free(c);
            return;
        }
    }
    conn_timer_update(c);
}
