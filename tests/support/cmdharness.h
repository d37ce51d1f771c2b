/* tests/support/cmdharness.h - the daemon's whole command path without
 * sockets: a struct server built by hand around a fake clock, and fake
 * clients that are bufferevent pairs, for fuzz_commands and test_oom.
 *
 * Owns: the harness server (config, event_base, lock engine on a fake
 * monotonic and wall clock), up to HX_CLIENTS fake clients (the client end
 * of a bufferevent_pair whose other end conn_attach() adopts, so requests go
 * through the daemon's own conn.c: reader, dispatch, waits, pausing,
 * closing; with hx.sockets an AF_UNIX socketpair instead, so the daemon's
 * socket read path runs too), reply validation, and the engine invariants checked after every
 * step.  Does not own: listeners, signals and the state file, which the
 * harness server has none of (server_new is not used).
 *
 * Determinism: nothing reads the real clock where it matters.  The lock
 * engine and the connection deadlines (srv->clock) read hx->now_us, which
 * only hx_advance() moves, and which starts ~100 years after boot so that
 * the timers libevent arms from it never come due during a run; the harness
 * runs the engine's timers and the connection deadlines itself.
 *
 * Header-only (static functions), like tests/integration/itest.h, because
 * each user is its own program: the fuzz targets are built from their one
 * .c file.  HX_FAIL(...) must be defined by the includer (abort for the
 * fuzzer, ck_abort_msg for Check).
 *
 * Out-of-memory injection (alloc.h) only ever hits the daemon's
 * work: the fake clients' own allocations run under alloc_fail_hold.
 */
#ifndef CACHIFY_TESTS_CMDHARNESS_H
#define CACHIFY_TESTS_CMDHARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "alloc.h"
#include "daemon/cmd_lock.h"
#include "daemon/config.h"
#include "daemon/conn.h"
#include "daemon/users.h"
#include "engine/lock_pool.h"
#include "daemon/conn_timer.h"
#include "engine/locktable.h"
#include "daemon/log.h"
#include "daemon/server.h"

#ifndef HX_FAIL
#error "define HX_FAIL(...) before including cmdharness.h"
#endif

#define HX_CLIENTS 4
/* Where the fake monotonic clock starts: about 100 years of microseconds,
 * far beyond any real CLOCK_MONOTONIC, so deadlines computed from it put
 * libevent timers a century away. */
#define HX_EPOCH_US (100ULL * 365 * 24 * 3600 * 1000000)
/* Replies kept per client for inspection before older ones are dropped. */
#define HX_KEEP_BYTES (1u << 20)

struct hx_client {
    struct bufferevent *bev; /* client end of the pair; NULL = not connected */
    int reading;             /* 1: replies are taken from the pair */
    int eof;                 /* the server closed its end */
    struct evbuffer *got;    /* replies received, not yet validated */
    unsigned long replies;   /* whole replies validated so far */
    unsigned long drops;     /* times the server closed this client */
    char last[256];          /* the last reply's first line, for tests */
    struct evbuffer *trace;  /* with hx.tracing: every reply's first line,
                                '\n'-separated, tokens shown as ":T" and
                                bulk lengths as "$" (they vary by run) */
};

struct hx {
    struct cachify_config cfg;
    struct server *srv;
    struct lock_clock clock;
    uint64_t now_us;
    int tracing;
    int sockets;   /* clients connect over AF_UNIX socketpairs, so the
                      daemon reads them with its socket path (conn.c,
                      read_socket), not libevent's pair */
    struct hx_client cl[HX_CLIENTS];
};

static inline uint64_t hx_mono(void *arg)
{
    return ((struct hx *)arg)->now_us;
}

static inline uint64_t hx_wall(void *arg)
{
    /* Any fixed offset will do: tokens only need to grow with it. */
    return ((struct hx *)arg)->now_us - HX_EPOCH_US + 1700000000000000ULL;
}

static inline void hx_noop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Routes libevent's and jansson's allocations through the seam, so
 * alloc_fail_*() reaches them too.  Must run before any other libevent
 * call in the process. */
static inline void hx_route_allocations(void);

/* Builds the server around h->cfg (already filled; config_check is run).
 * Returns 0, or -1 when out of memory (everything undone). */
static inline int hx_start(struct hx *h)
{
    char err[256];
    static const uint8_t seed[16] = { 0 };
    h->now_us = HX_EPOCH_US;
    h->clock.mono_us = hx_mono;
    h->clock.wall_us = hx_wall;
    h->clock.arg = h;
    memset(h->cl, 0, sizeof(h->cl));
    if (config_check(&h->cfg, err, sizeof(err)) != 0)
        HX_FAIL("harness config rejected: %s", err);
    struct server *srv = cfy_calloc(1, sizeof(*srv));
    if (!srv)
        return -1;
    srv->config = &h->cfg;
    srv->clock = &h->clock;
    srv->maxclients = h->cfg.maxclients;
    srv->limits.max_line = (size_t)h->cfg.max_line;
    srv->limits.max_bulk = (size_t)h->cfg.max_value_len;
    srv->limits.max_request = (size_t)h->cfg.max_request;
    srv->timer_armed_for = UINT64_MAX;
    srv->started_us = h->now_us;
    struct locktable_limits limits = { (size_t)h->cfg.max_locks,
                                       (size_t)h->cfg.max_waiters,
                                       (uint64_t)h->cfg.maxmemory };
    srv->base = event_base_new();
    srv->locks = locktable_new(&h->clock, &cmd_lock_events, &limits, seed);
    srv->users = users_build(h->cfg.user, err, sizeof(err));
    srv->expiry_timer = srv->base ? evtimer_new(srv->base, hx_noop_cb, NULL)
                                  : NULL;
    h->srv = srv;
    if (!srv->base || !srv->locks || !srv->expiry_timer || !srv->users) {
        server_free(srv);
        h->srv = NULL;
        return -1;
    }
    return 0;
}

static inline void hx_on_read(struct bufferevent *bev, void *arg)
{
    struct hx_client *cl = arg;
    alloc_fail_hold(1);
    evbuffer_add_buffer(cl->got, bufferevent_get_input(bev));
    alloc_fail_hold(0);
}

static inline void hx_on_event(struct bufferevent *bev, short what, void *arg)
{
    struct hx_client *cl = arg;
    (void)bev;
    if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) && !cl->eof) {
        cl->eof = 1;
        cl->drops++;
    }
}

/* Two connected bufferevents over an AF_UNIX socketpair (each closes its
 * socket when freed): pair[0] for the daemon, pair[1] for the client.
 * Returns 0, or -1 (nothing left open). */
static inline int hx_socket_pair(struct event_base *base,
                                 struct bufferevent *pair[2])
{
    evutil_socket_t sv[2];
    if (evutil_socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    if (evutil_make_socket_nonblocking(sv[0]) != 0 ||
        evutil_make_socket_nonblocking(sv[1]) != 0 ||
        !(pair[0] = bufferevent_socket_new(base, sv[0],
                                           BEV_OPT_CLOSE_ON_FREE))) {
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (!(pair[1] = bufferevent_socket_new(base, sv[1],
                                           BEV_OPT_CLOSE_ON_FREE))) {
        bufferevent_free(pair[0]);
        close(sv[1]);
        return -1;
    }
    return 0;
}

/* Connects client i (a no-op when it is).  Returns 0, or -1 when out of
 * memory (the client stays unconnected). */
static inline int hx_connect(struct hx *h, int i)
{
    struct hx_client *cl = &h->cl[i];
    struct bufferevent *pair[2];
    char peer[32];
    if (cl->bev)
        return 0;
    /* The pair stands for a socket: making it is not the daemon's work. */
    alloc_fail_hold(1);
    if (!cl->got)
        cl->got = evbuffer_new();
    int rc = cl->got ? 0 : -1;
    if (rc == 0 && h->sockets)
        rc = hx_socket_pair(h->srv->base, pair);
    else if (rc == 0)
        rc = bufferevent_pair_new(h->srv->base, 0, pair);
    alloc_fail_hold(0);
    if (rc != 0)
        return -1;
    /* A cut reply of the previous connection went with it. */
    evbuffer_drain(cl->got, evbuffer_get_length(cl->got));
    snprintf(peer, sizeof(peer), "fake:%d", i);
    cl->bev = pair[1];
    cl->eof = 0;
    cl->reading = 1;
    bufferevent_setcb(cl->bev, hx_on_read, NULL, hx_on_event, cl);
    bufferevent_enable(cl->bev, EV_READ | EV_WRITE);
    /* On failure conn_attach frees pair[0]: the client end then sees EOF. */
    conn_attach(h->srv, pair[0], peer);
    return 0;
}

/* A pair end whose partner is gone was closed by the server: what a
 * socket shows as EOF (freeing a pair end tells the other end nothing).
 * A socket's EOF reaches hx_on_event itself. */
static inline void hx_poll_eof(struct hx *h, struct hx_client *cl)
{
    if (!h->sockets && cl->bev && !cl->eof &&
        !bufferevent_pair_get_partner(cl->bev)) {
        cl->eof = 1;
        cl->drops++;
    }
}

/* Runs the loop until nothing is left to do now, the engine's timers
 * included when they are due at the fake now: the daemon's expiry timer
 * would fire at once while a closed client's SESSION locks are released in
 * slices (locktable_next_deadline says "now" then). */
static inline void hx_loop_once(struct hx *h);

static inline void hx_loop(struct hx *h)
{
    hx_loop_once(h);
    for (long turns = 0;
         locktable_next_deadline(h->srv->locks) <= h->now_us; turns++) {
        /* The daemon's expiry timer would spin the same way. */
        if (turns > 100000)
            HX_FAIL("the engine's timers stay due and make no progress");
        locktable_run_timers(h->srv->locks, 1000);
        hx_loop_once(h);
    }
}

/* What moves while the loop has work: bytes anywhere on the way, requests
 * run, connections.  Sockets take a loop pass per hop (client write,
 * daemon read, daemon write, client read) where a pair takes none. */
static inline size_t hx_progress(const struct hx *h)
{
    size_t sum = h->srv->client_bytes + h->srv->nconns +
                 (size_t)h->srv->stats.commands;
    for (int i = 0; i < HX_CLIENTS; i++) {
        const struct hx_client *cl = &h->cl[i];
        sum += (cl->got ? evbuffer_get_length(cl->got) : 0) + cl->replies +
               cl->drops +
               (cl->bev ? evbuffer_get_length(bufferevent_get_output(cl->bev))
                        : 0);
    }
    return sum;
}

/* One loop pass with pairs; with sockets, passes until nothing moves (at
 * most 256: the connections are few and the inputs short). */
static inline void hx_loop_once(struct hx *h)
{
    event_base_loop(h->srv->base, EVLOOP_NONBLOCK);
    for (int pass = 0; h->sockets && pass < 256; pass++) {
        size_t before = hx_progress(h);
        event_base_loop(h->srv->base, EVLOOP_NONBLOCK);
        if (hx_progress(h) == before)
            break;
    }
}

static inline void hx_send(struct hx *h, int i, const void *p, size_t n)
{
    if (hx_connect(h, i) != 0)
        return;
    /* The client's own write is never what the injector fails. */
    alloc_fail_hold(1);
    bufferevent_write(h->cl[i].bev, p, n);
    alloc_fail_hold(0);
    hx_loop(h);
}

static inline void hx_close(struct hx *h, int i)
{
    if (h->cl[i].bev) {
        /* What a FIN is to a socket: the server end sees EOF. */
        bufferevent_flush(h->cl[i].bev, EV_WRITE, BEV_FINISHED);
        bufferevent_free(h->cl[i].bev);
        h->cl[i].bev = NULL;
    }
    hx_loop(h);
}

static inline void hx_set_reading(struct hx *h, int i, int on)
{
    struct hx_client *cl = &h->cl[i];
    if (!cl->bev)
        return;
    cl->reading = on;
    if (on)
        bufferevent_enable(cl->bev, EV_READ);
    else
        bufferevent_disable(cl->bev, EV_READ);
    hx_loop(h);
}

/* Every connection's deadlines, as its timer would (conn_timer_fire may
 * free the connection, so the next one is taken first). */
static inline void hx_fire_conn_timers(struct hx *h)
{
    struct conn *c = h->srv->conns, *next;
    for (; c; c = next) {
        next = c->next;
        conn_timer_fire(c);
    }
}

/* Fuzz-input helpers shared by the fuzz targets' decoders. */

/* Client i closes and connects again. */
static inline void hx_reconnect(struct hx *h, int i)
{
    hx_close(h, i);
    hx_connect(h, i);
    hx_loop(h);
}

static inline void hx_stop(struct hx *h);

/* The end of a run: every client closes (under out-of-memory too, when it
 * is on), then the harness's own teardown with the allocator healthy. */
static inline void hx_finish(struct hx *h)
{
    for (int i = 0; i < HX_CLIENTS; i++)
        hx_close(h, i);
    alloc_fail_reset();
    hx_stop(h);
}

/* Deadlines a run can reach on the fake clock in a few steps: timeout 5,
 * request_timeout 3, client_stall_timeout 4 (seconds). */
static inline void hx_short_deadlines(struct cachify_config *cfg)
{
    cfg->timeout = 5;
    cfg->request_timeout = 3;
    cfg->client_stall_timeout = 4;
}

/* With on, starts out-of-memory injection at the allocation named by the
 * input's next byte (+1): only that one fails, or with after every one
 * from it on (alloc.h). */
static inline void hx_inject_from(const uint8_t *data, size_t size,
                                  size_t *pos, int on, int after)
{
    if (!on || *pos >= size)
        return;
    long nth = (long)data[(*pos)++] + 1;
    if (after)
        alloc_fail_after(nth - 1);
    else
        alloc_fail_nth(nth);
}

/* The input's next segment: a length byte, then up to that many bytes
 * (fewer at the end).  Sets *seg and returns its length; 0 at the end. */
static inline size_t hx_segment(const uint8_t *data, size_t size,
                                size_t *pos, const uint8_t **seg)
{
    if (*pos >= size)
        return 0;
    size_t n = data[(*pos)++];
    if (n > size - *pos)
        n = size - *pos;
    *seg = data + *pos;
    *pos += n;
    return n;
}

/* Moves the fake clock, then runs what came due: lock expiries, ended
 * waits, connection deadlines. */
static inline void hx_advance(struct hx *h, uint64_t us)
{
    h->now_us += us;
    while (locktable_run_timers(h->srv->locks, 1000) > 0)
        ;
    hx_loop(h);
    hx_fire_conn_timers(h);
    hx_loop(h);
}

/* Length of one whole RESP reply at p[0..n), 0 when incomplete; fails on
 * bad framing or a line that holds a bare CR or LF (a reply line must never
 * break, whatever the key). */
static inline size_t hx_reply_len(const char *p, size_t n, int depth)
{
    size_t i;
    if (n == 0)
        return 0;
    if (depth > 4)
        HX_FAIL("reply nested too deep");
    for (i = 0; i < n && p[i] != '\n'; i++)
        if (p[i] == '\r' && i + 1 < n && p[i + 1] != '\n')
            HX_FAIL("reply line holds a bare CR");
    if (i == n)
        return 0;
    if (i == 0 || p[i - 1] != '\r')
        HX_FAIL("reply line not ended by CRLF");
    size_t line = i + 1;
    char *end;
    long long v;
    switch (p[0]) {
    case '+':
        return line;
    case '-':
        /* "-CODE message": an upper-case code word first. */
        if (line < 4 || p[1] < 'A' || p[1] > 'Z')
            HX_FAIL("error reply without a CODE");
        return line;
    case ':':
        v = strtoll(p + 1, &end, 10);
        if (end != p + i - 1)
            HX_FAIL("bad integer reply");
        return line;
    case '$':
        v = strtoll(p + 1, &end, 10);
        if (end != p + i - 1 || v < -1)
            HX_FAIL("bad bulk header");
        if (v == -1)
            return line;
        if (n - line < (size_t)v + 2)
            return 0;
        if (p[line + v] != '\r' || p[line + v + 1] != '\n')
            HX_FAIL("bulk not ended by CRLF");
        return line + (size_t)v + 2;
    case '*': {
        v = strtoll(p + 1, &end, 10);
        if (end != p + i - 1 || v < 0)
            HX_FAIL("bad array header");
        size_t off = line;
        for (long long k = 0; k < v; k++) {
            size_t m = hx_reply_len(p + off, n - off, depth + 1);
            if (m == 0)
                return 0;
            off += m;
        }
        return off;
    }
    default:
        HX_FAIL("reply starts with 0x%02x", (unsigned char)p[0]);
    }
    return 0;
}

/* Validates and consumes every whole reply client i has received. */
static inline void hx_take_replies(struct hx *h, int i)
{
    struct hx_client *cl = &h->cl[i];
    if (!cl->got)
        return;
    alloc_fail_hold(1); /* pullup and the trace are the harness's memory */
    for (;;) {
        size_t n = evbuffer_get_length(cl->got);
        const char *p = (const char *)evbuffer_pullup(cl->got, -1);
        size_t m = p ? hx_reply_len(p, n, 0) : 0;
        if (m == 0)
            break;
        size_t first = strcspn(p, "\r");
        if (first >= sizeof(cl->last))
            first = sizeof(cl->last) - 1;
        memcpy(cl->last, p, first);
        cl->last[first] = '\0';
        cl->replies++;
        if (h->tracing) {
            if (!cl->trace)
                cl->trace = evbuffer_new();
            if (cl->last[0] == '$')
                evbuffer_add(cl->trace, "$\n", 2);
            else if (cl->last[0] == ':' && strlen(cl->last) > 13)
                evbuffer_add(cl->trace, ":T\n", 3);
            else
                evbuffer_add_printf(cl->trace, "%s\n", cl->last);
        }
        evbuffer_drain(cl->got, m);
    }
    /* A closed connection may end in a cut reply only when it was dropped
     * (client_output_limit, out of memory); keep memory bounded. */
    if (evbuffer_get_length(cl->got) > HX_KEEP_BYTES)
        evbuffer_drain(cl->got, evbuffer_get_length(cl->got));
    alloc_fail_hold(0);
}

/* The engine and the connections agree: one pending waiter per waiting
 * connection, the connection count matches the list, limits hold, and the
 * buffer accounting (client_buffer_budget) is the sum of what the
 * connections hold. */
static inline void hx_check(struct hx *h)
{
    struct lock_stats ls;
    size_t n = 0, waiting = 0, held = 0;
    for (struct conn *c = h->srv->conns; c; c = c->next) {
        n++;
        held += evbuffer_get_length(bufferevent_get_input(c->bev)) +
                evbuffer_get_length(bufferevent_get_output(c->bev)) +
                (c->reader ? proto_reader_pending(c->reader) : 0);
        if (c->state == CONN_WAITING) {
            waiting++;
            if (!c->session.waiters)
                HX_FAIL("waiting connection without its wait");
        }
        if (c->next && c->next->prev != c)
            HX_FAIL("connection list broken");
    }
    if (n != h->srv->nconns)
        HX_FAIL("nconns %zu, list holds %zu", h->srv->nconns, n);
    if (held != h->srv->client_bytes)
        HX_FAIL("client_bytes %zu, connections hold %zu",
                h->srv->client_bytes, held);
    locktable_stats(h->srv->locks, &ls);
    if (ls.waiters + ls.pool_waiters != waiting)
        HX_FAIL("engine has %llu waiters and %llu pool waiters, %zu "
                "connections wait", (unsigned long long)ls.waiters,
                (unsigned long long)ls.pool_waiters, waiting);
    if (h->cfg.max_locks > 0 &&
        ls.held + ls.pool_slots > (uint64_t)h->cfg.max_locks)
        HX_FAIL("%llu locks and %llu slots held over max_locks",
                (unsigned long long)ls.held,
                (unsigned long long)ls.pool_slots);
    const char *why; /* the audit allocates nothing */
    if (locktable_pool_audit(h->srv->locks, &why) != 0)
        HX_FAIL("pool audit: %s", why); /* a pool of N never admits N+1 */
    for (int i = 0; i < HX_CLIENTS; i++) {
        hx_take_replies(h, i);
        hx_poll_eof(h, &h->cl[i]);
    }
}

/* Closes every client, checks that their connections went and left no
 * wait behind, and frees everything.  Safe after a failed hx_start. */
static inline void hx_stop(struct hx *h)
{
    if (h->srv) {
        for (int i = 0; i < HX_CLIENTS; i++)
            hx_close(h, i);
        hx_check(h);
        struct lock_stats ls;
        locktable_stats(h->srv->locks, &ls);
        if (ls.waiters != 0 || ls.pool_waiters != 0)
            HX_FAIL("%llu waiters, %llu pool waiters left after every "
                    "client closed", (unsigned long long)ls.waiters,
                    (unsigned long long)ls.pool_waiters);
        server_free(h->srv);
        h->srv = NULL;
    }
    for (int i = 0; i < HX_CLIENTS; i++) {
        if (h->cl[i].got)
            evbuffer_free(h->cl[i].got);
        if (h->cl[i].trace)
            evbuffer_free(h->cl[i].trace);
        h->cl[i].got = h->cl[i].trace = NULL;
    }
    config_free(&h->cfg);
}

#include <jansson.h>

static inline void *hx_event_malloc(size_t n)
{
    return cfy_malloc(n);
}

static inline void *hx_event_realloc(void *p, size_t n)
{
    return cfy_realloc(p, n);
}

static inline void hx_route_allocations(void)
{
    event_set_mem_functions(hx_event_malloc, hx_event_realloc, cfy_free);
    json_set_alloc_funcs(hx_event_malloc, cfy_free);
}

#endif
