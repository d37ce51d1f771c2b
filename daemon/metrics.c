/* daemon/metrics.c - GET /metrics over libevent's evhttp (see metrics.h).
 *
 * The HTTP side shares the lock service's one thread, so it must never
 * cost that service more than a bounded amount of work or descriptors:
 *  - evhttp reads and writes without blocking; a client silent for
 *    METRICS_IDLE_TIMEOUT_S (reading or writing) is dropped by evhttp;
 *  - a request line plus headers over METRICS_MAX_HEADER_BYTES, or any
 *    body, is refused by evhttp before it is buffered;
 *  - at most METRICS_MAX_CONNECTIONS connections are open at once: when
 *    they are all taken the listener pauses, and further clients wait in
 *    the kernel's backlog rather than take descriptors from lock clients;
 *  - evhttp's idle timeout restarts with every byte, so a client trickling
 *    one byte every few seconds (slowloris) would keep its connection for
 *    hours: every connection is shut down METRICS_CONN_LIFETIME_S after it
 *    was accepted, whatever it is doing.
 * evhttp (libevent 2.1) tells nobody when it frees a connection, so each
 * connection's bufferevent is made here (evhttp_set_bevcb) with one extra
 * reference: the descriptor stays open, and its number cannot be reused,
 * until that reference is dropped.  A sweep every METRICS_SWEEP_MS, armed
 * only while connections are tracked, drops the reference of those evhttp
 * let go (it clears their callbacks when it does) and shuts down the
 * sockets of those past their lifetime, which evhttp then frees as closed.
 */
#include "daemon/metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "alloc.h"
#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/server.h"
#include "daemon/version.h"
#include "daemon/wait_hist.h"
#include "engine/clock.h"

/* Scrapers are few (a Prometheus server or two, a curl now and then);
 * these descriptors come out of admission.h's ADMISSION_RESERVED_FDS. */
#define METRICS_MAX_CONNECTIONS 8

/* A scrape takes milliseconds; a client this silent is gone or hostile. */
#define METRICS_IDLE_TIMEOUT_S 5

/* The longest any HTTP connection is kept, busy or not (see above). */
#define METRICS_CONN_LIFETIME_S 10

/* Request line plus headers: a scraper sends a few hundred bytes. */
#define METRICS_MAX_HEADER_BYTES 8192

#define METRICS_SWEEP_MS 500

struct metrics_conn {
    struct bufferevent *bev; /* holds our extra reference */
    uint64_t opened_us;      /* monotonic */
};

struct metrics {
    struct server *srv;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *sweep;     /* persistent; pending while nconns > 0 */
    struct metrics_conn conns[METRICS_MAX_CONNECTIONS];
    size_t nconns;
    int paused;              /* the listener is disabled: all slots taken */
};

/* ---- the exposition ---- */

/* One figure of the snapshot below, with its Prometheus identity. */
enum metric_type { GAUGE, COUNTER };

struct metric_view {
    uint64_t uptime_seconds, clients, maxclients, client_buffer_bytes,
        recovering, locks_held, waiters, values, data_bytes, pools,
        pool_slots, pool_waiters, acquired,
        released, expired,
        timeouts, rejected, handoffs, auth_failures, noperm,
        connections_total,
        rejected_clients, denied_clients, commands, protocol_errors,
        idle_closed, request_timeouts, stalled_clients,
        budget_closed_clients, tls_connections, tls_handshake_failures,
        journal_syncs, journal_failures;
};

struct metric_def {
    const char *name; /* without the cachifyd_ prefix; counters end _total */
    enum metric_type type;
    size_t offset;    /* in struct metric_view */
    const char *help;
};

#define VIEW(f) offsetof(struct metric_view, f)

/* Each row reads the same counter as the STATS field named in its help
 * (docs/protocol.md lists both). */
static const struct metric_def metric_defs[] = {
    { "uptime_seconds", GAUGE, VIEW(uptime_seconds),
      "Seconds since the daemon started (STATS uptime_ms)." },
    { "clients", GAUGE, VIEW(clients),
      "Client connections open now (STATS clients)." },
    { "maxclients", GAUGE, VIEW(maxclients),
      "Connections served at once, after fitting ulimit -n (STATS maxclients)." },
    { "client_buffer_bytes", GAUGE, VIEW(client_buffer_bytes),
      "Input and unsent output all clients hold (STATS client_buffer_bytes)." },
    { "recovering", GAUGE, VIEW(recovering),
      "1 while grants wait out a crash's recovery horizon (STATS recovering)." },
    { "locks_held", GAUGE, VIEW(locks_held),
      "Locks held now (STATS locks_held)." },
    { "waiters", GAUGE, VIEW(waiters),
      "ACQUIRE ... WAIT requests queued now (STATS waiters)." },
    { "values", GAUGE, VIEW(values),
      "Held keys that carry a value from a Redis SET (STATS values)." },
    { "data_bytes", GAUGE, VIEW(data_bytes),
      "Bytes of all keys and values, what maxmemory bounds (STATS data_bytes)." },
    { "pools", GAUGE, VIEW(pools),
      "Pool keys now: a slot held or a request waiting (STATS pools)." },
    { "pool_slots", GAUGE, VIEW(pool_slots),
      "Pool slots held now (STATS pool_slots)." },
    { "pool_waiters", GAUGE, VIEW(pool_waiters),
      "POOL_ACQUIRE ... WAIT requests queued now (STATS pool_waiters)." },
    { "acquires_total", COUNTER, VIEW(acquired),
      "Locks and pool slots granted, at once or after a wait (STATS acquired)." },
    { "releases_total", COUNTER, VIEW(released),
      "Locks freed by RELEASE or a session's end (STATS released)." },
    { "expiries_total", COUNTER, VIEW(expired),
      "Locks that ran out their TTL (STATS expired)." },
    { "wait_timeouts_total", COUNTER, VIEW(timeouts),
      "Waits that ended in -TIMEOUT (STATS timeouts)." },
    { "rejections_total", COUNTER, VIEW(rejected),
      "ACQUIREs without WAIT refused because the key was held (STATS rejected)." },
    { "handoffs_total", COUNTER, VIEW(handoffs),
      "Locks handed to a waiter (STATS handoffs)." },
    { "auth_failures_total", COUNTER, VIEW(auth_failures),
      "AUTH attempts with a wrong password (STATS auth_failures)." },
    { "noperm_total", COUNTER, VIEW(noperm),
      "Requests a named user was refused with -NOPERM (STATS noperm)." },
    { "connections_total", COUNTER, VIEW(connections_total),
      "Client connections accepted (STATS connections_total)." },
    { "rejected_clients_total", COUNTER, VIEW(rejected_clients),
      "Connections refused at maxclients (STATS rejected_clients)." },
    { "denied_clients_total", COUNTER, VIEW(denied_clients),
      "Connections refused by protected mode (STATS denied_clients)." },
    { "commands_total", COUNTER, VIEW(commands),
      "Requests executed (STATS commands)." },
    { "protocol_errors_total", COUNTER, VIEW(protocol_errors),
      "Connections closed for bad framing (STATS protocol_errors)." },
    { "idle_closed_total", COUNTER, VIEW(idle_closed),
      "Connections closed after timeout idle seconds (STATS idle_closed)." },
    { "request_timeouts_total", COUNTER, VIEW(request_timeouts),
      "Connections closed for an incomplete request (STATS request_timeouts)." },
    { "stalled_clients_total", COUNTER, VIEW(stalled_clients),
      "Connections dropped for leaving replies unread (STATS stalled_clients)." },
    { "budget_closed_clients_total", COUNTER, VIEW(budget_closed_clients),
      "Connections closed at client_buffer_budget (STATS budget_closed_clients)." },
    { "tls_connections_total", COUNTER, VIEW(tls_connections),
      "TLS handshakes completed (STATS tls_connections)." },
    { "tls_handshake_failures_total", COUNTER, VIEW(tls_handshake_failures),
      "TLS connections closed before their handshake completed (STATS tls_handshake_failures)." },
    { "journal_syncs_total", COUNTER, VIEW(journal_syncs),
      "State file appends waited for (STATS journal_syncs)." },
    { "journal_failures_total", COUNTER, VIEW(journal_failures),
      "State file writes that failed (STATS journal_failures)." },
};

static void read_view(struct server *srv, struct metric_view *v)
{
    struct lock_stats ls;
    const struct server_stats *s = &srv->stats;

    locktable_stats(srv->locks, &ls);
    *v = (struct metric_view){
        .uptime_seconds = (clock_mono_us(NULL) - srv->started_us) / 1000000,
        .clients = srv->nconns,
        .maxclients = (uint64_t)srv->maxclients,
        .client_buffer_bytes = srv->client_bytes,
        .recovering = locktable_recovering(srv->locks) != 0,
        .locks_held = ls.held,
        .waiters = ls.waiters,
        .values = ls.values,
        .data_bytes = ls.data_bytes,
        .pools = ls.pools,
        .pool_slots = ls.pool_slots,
        .pool_waiters = ls.pool_waiters,
        .acquired = ls.acquired,
        .released = ls.released,
        .expired = ls.expired,
        .timeouts = ls.timeouts,
        .rejected = ls.rejected,
        .handoffs = ls.handoffs,
        .auth_failures = s->auth_failures,
        .noperm = s->noperm,
        .connections_total = s->connections_total,
        .rejected_clients = s->rejected_clients,
        .denied_clients = s->denied_clients,
        .commands = s->commands,
        .protocol_errors = s->protocol_errors,
        .idle_closed = s->idle_closed,
        .request_timeouts = s->request_timeouts,
        .stalled_clients = s->stalled_clients,
        .budget_closed_clients = s->budget_closed_clients,
        .tls_connections = s->tls_connections,
        .tls_handshake_failures = s->tls_handshake_failures,
        .journal_syncs = s->journal_syncs,
        .journal_failures = s->journal_failures,
    };
}

static int header(struct evbuffer *out, const char *name, const char *type,
                  const char *help)
{
    return evbuffer_add_printf(out, "# HELP cachifyd_%s %s\n"
                               "# TYPE cachifyd_%s %s\n",
                               name, help, name, type) < 0 ? -1 : 0;
}

/* The wait histogram: cumulative le buckets, then _sum in seconds (exact:
 * printed from microseconds without floating point) and _count. */
static int format_waits(const struct wait_hist *h, struct evbuffer *out)
{
    char le[32];

    if (header(out, "wait_seconds", "histogram",
               "Time queued ACQUIRE ... WAIT requests waited, counted when "
               "the wait ended in a grant or a timeout (STATS wait_seconds).") != 0)
        return -1;
    for (size_t i = 0; i <= WAIT_HIST_FINITE; i++) {
        wait_hist_le(i, le, sizeof le);
        if (evbuffer_add_printf(out, "cachifyd_wait_seconds_bucket{le=\"%s\"} %"
                                PRIu64 "\n", le,
                                wait_hist_cumulative(h, i)) < 0)
            return -1;
    }
    return evbuffer_add_printf(out, "cachifyd_wait_seconds_sum %" PRIu64
                               ".%06" PRIu64 "\ncachifyd_wait_seconds_count %"
                               PRIu64 "\n", h->sum_us / 1000000,
                               h->sum_us % 1000000, h->count) < 0 ? -1 : 0;
}

int metrics_format(struct server *srv, struct evbuffer *out)
{
    struct metric_view v;

    read_view(srv, &v);
    if (header(out, "build_info", "gauge",
               "Always 1; the version is in its label.") != 0 ||
        evbuffer_add_printf(out, "cachifyd_build_info{version=\"%s\"} 1\n",
                            CACHIFYD_VERSION) < 0)
        return -1;
    for (size_t i = 0; i < sizeof metric_defs / sizeof metric_defs[0]; i++) {
        const struct metric_def *d = &metric_defs[i];
        uint64_t value;

        memcpy(&value, (const char *)&v + d->offset, sizeof value);
        if (header(out, d->name, d->type == GAUGE ? "gauge" : "counter",
                   d->help) != 0 ||
            evbuffer_add_printf(out, "cachifyd_%s %" PRIu64 "\n", d->name,
                                value) < 0)
            return -1;
    }
    return format_waits(&srv->stats.wait_time, out);
}

/* ---- HTTP ---- */

/* Sends body (then frees it) with code.  evhttp 2.1 would send a body
 * after HEAD's headers too, where the client reads the next answer: for
 * HEAD the length is announced, and the body left out, here. */
static void send_body(struct evhttp_request *req, int code,
                      const char *reason, struct evbuffer *body)
{
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
        char len[32];
        snprintf(len, sizeof len, "%zu", evbuffer_get_length(body));
        evbuffer_drain(body, evbuffer_get_length(body));
        if (evhttp_add_header(headers, "Content-Length", len) != 0) {
            evbuffer_free(body);
            evhttp_send_error(req, HTTP_INTERNAL, "Out Of Memory");
            return;
        }
    }
    evhttp_send_reply(req, code, reason, body);
    evbuffer_free(body);
}

/* An error answer with a one-line text body.  Not evhttp_send_error, which
 * clears the headers (the Allow of a 405 must stay). */
static void send_status(struct evhttp_request *req, int code,
                        const char *reason, const char *allow)
{
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *body = evbuffer_new();

    if (body == NULL || evbuffer_add_printf(body, "%d %s\n", code, reason) < 0 ||
        evhttp_add_header(headers, "Content-Type", "text/plain") != 0 ||
        (allow != NULL && evhttp_add_header(headers, "Allow", allow) != 0)) {
        if (body != NULL)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, "Out Of Memory");
        return;
    }
    send_body(req, code, reason, body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct metrics *m = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    struct evbuffer *body;

    if (path == NULL || strcmp(path, "/metrics") != 0) {
        send_status(req, HTTP_NOTFOUND, "Not Found", NULL);
        return;
    }
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
        send_status(req, 405, "Method Not Allowed", "GET, HEAD");
        return;
    }
    body = evbuffer_new();
    if (body == NULL || metrics_format(m->srv, body) != 0 ||
        evhttp_add_header(headers, "Content-Type", METRICS_CONTENT_TYPE) != 0) {
        if (body != NULL)
            evbuffer_free(body);
        evhttp_send_error(req, HTTP_INTERNAL, "Out Of Memory");
        return;
    }
    send_body(req, HTTP_OK, "OK", body);
}

static void set_paused(struct metrics *m, int paused)
{
    struct evconnlistener *l = evhttp_bound_socket_get_listener(m->bound);

    if (paused == m->paused || l == NULL)
        return;
    if (paused)
        evconnlistener_disable(l);
    else
        evconnlistener_enable(l);
    m->paused = paused;
}

/* Drops our reference to conns[i] and fills its slot with the last one. */
static void untrack(struct metrics *m, size_t i)
{
    bufferevent_decref(m->conns[i].bev);
    m->conns[i] = m->conns[--m->nconns];
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct metrics *m = arg;
    uint64_t now = clock_mono_us(NULL);
    (void)fd;
    (void)what;

    for (size_t i = 0; i < m->nconns;) {
        struct bufferevent *bev = m->conns[i].bev;
        bufferevent_data_cb rd, wr;
        bufferevent_event_cb ev;
        evutil_socket_t s = bufferevent_getfd(bev);

        bufferevent_getcb(bev, &rd, &wr, &ev, NULL);
        if ((rd == NULL && wr == NULL && ev == NULL) || s < 0) {
            untrack(m, i); /* evhttp is done with it */
            continue;
        }
        if (now - m->conns[i].opened_us >= METRICS_CONN_LIFETIME_S * 1000000ULL) {
            /* Our reference keeps s open, so it is still this socket. */
            log_msg(LOG_DEBUG, "metrics: closing an HTTP connection open for "
                    "%d s", METRICS_CONN_LIFETIME_S);
            shutdown(s, SHUT_RDWR);
        }
        i++;
    }
    if (m->nconns < METRICS_MAX_CONNECTIONS)
        set_paused(m, 0);
    if (m->nconns == 0)
        event_del(m->sweep);
}

/* evhttp's hook for each accepted connection: the bufferevent it will
 * use, tracked here (see the top of the file). */
static struct bufferevent *on_new_connection(struct event_base *base,
                                             void *arg)
{
    struct metrics *m = arg;
    struct bufferevent *bev;

    if (m->nconns >= METRICS_MAX_CONNECTIONS)
        return NULL; /* cannot happen while paused; evhttp makes its own */
    bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL;
    bufferevent_incref(bev);
    m->conns[m->nconns].bev = bev;
    m->conns[m->nconns].opened_us = clock_mono_us(NULL);
    if (m->nconns++ == 0) {
        struct timeval tv = { 0, METRICS_SWEEP_MS * 1000 };
        event_add(m->sweep, &tv);
    }
    if (m->nconns == METRICS_MAX_CONNECTIONS)
        set_paused(m, 1);
    return bev;
}

int metrics_start(struct server *srv)
{
    const struct cachify_config *cfg = srv->config;
    struct metrics *m = cfy_calloc(1, sizeof *m);

    if (m == NULL) {
        log_msg(LOG_ERROR, "metrics: out of memory");
        return -1;
    }
    srv->metrics = m;
    m->srv = srv;
    m->http = evhttp_new(srv->base);
    m->sweep = event_new(srv->base, -1, EV_PERSIST, on_sweep, m);
    if (m->http == NULL || m->sweep == NULL) {
        log_msg(LOG_ERROR, "metrics: out of memory");
        metrics_stop(srv);
        return -1;
    }
    evhttp_set_timeout(m->http, METRICS_IDLE_TIMEOUT_S);
    evhttp_set_max_headers_size(m->http, METRICS_MAX_HEADER_BYTES);
    evhttp_set_max_body_size(m->http, 0);
    /* Every method reaches on_request, which answers 405 itself (evhttp
     * would answer 501 to the ones it was not told about). */
    evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
        EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
        EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
        EVHTTP_REQ_PATCH);
    evhttp_set_gencb(m->http, on_request, m);
    evhttp_set_bevcb(m->http, on_new_connection, m);
    m->bound = evhttp_bind_socket_with_handle(m->http, cfg->metrics_bind,
                                              (ev_uint16_t)cfg->metrics_port);
    if (m->bound == NULL) {
        log_msg(LOG_ERROR, "metrics: cannot listen on %s port %d: %s",
                cfg->metrics_bind, cfg->metrics_port, strerror(errno));
        metrics_stop(srv);
        return -1;
    }
    log_msg(LOG_INFO, "metrics: serving GET /metrics on %s%s%s:%d",
            strchr(cfg->metrics_bind, ':') ? "[" : "", cfg->metrics_bind,
            strchr(cfg->metrics_bind, ':') ? "]" : "", cfg->metrics_port);
    return 0;
}

void metrics_stop(struct server *srv)
{
    struct metrics *m = srv->metrics;

    if (m == NULL)
        return;
    /* evhttp first: it frees its connections, then our references go. */
    if (m->http != NULL)
        evhttp_free(m->http);
    while (m->nconns > 0)
        untrack(m, m->nconns - 1);
    if (m->sweep != NULL)
        event_free(m->sweep);
    cfy_free(m);
    srv->metrics = NULL;
}
