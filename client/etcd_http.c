/* client/etcd_http.c - JSON calls to etcd's v3 gateway (implements
 * client/etcd_http.h).
 *
 * Owns: the HTTP connections, the attempts of each call on the members, the
 * auth token.  One call goes through these states (struct ehttp_call):
 * waiting for its timer (a first attempt, or a retry after a failure) ->
 * in flight on one member (its attempt timer armed) -> answered: done, or
 * on to the next member.  Every attempt starts from the timer, never from
 * inside libevent's callback of the previous one, so a connection is never
 * reused or freed inside its own callback; a wait's own connection is
 * freed later, from ehttp's list of spent connections.
 *
 * How long an attempt may take: a call's whole time (io_timeout_ms, or the
 * caller's) is split between the members, with at least MIN_ATTEMPT_MS
 * each, so a member that accepts connections but does not answer (stopped,
 * partitioned) leaves time for the others.  Waits (timeout -1) have no
 * attempt bound: they end when the lock is granted or the connection
 * breaks.
 */
#include "client/etcd_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "client/cachify.h"

/* The least time one attempt on one member gets: an etcd write is a Raft
 * round and an fsync, which take hundreds of ms on a loaded machine. */
#define MIN_ATTEMPT_MS 1000
/* Pause after every member failed once in a row (a cluster electing a
 * leader answers "no leader" for about a second). */
#define ROUND_PAUSE_MS 200
/* Largest answer read: the calls ask for one key or a count, so anything
 * near this is not etcd. */
#define MAX_BODY (1 << 20)
/* Largest header block read: etcd's are a few hundred bytes. */
#define MAX_HEADERS (64 << 10)
/* libevent's own read timeout, in seconds: our timers decide, so it only
 * must never fire first (its default, 50 s, would end long lock waits). */
#define EVHTTP_TIMEOUT_S (365 * 24 * 3600)
/* A call is failing (ehttp_call_failing) while its last attempt failed
 * this recently: with every member down, attempts fail at least once a
 * round pause. */
#define FAILING_US (500 * 1000)
/* Short reasons, e.g. "127.0.0.1:2379: connection failed". */
#define REASON_MAX 320

struct ehttp_call {
    struct ehttp *h;
    struct ehttp_call *prev, *next;  /* h->calls */
    char *path;
    char *body;                      /* the JSON text */
    size_t bodylen;
    int wait;                        /* timeout -1: own connection */
    uint64_t deadline_us;            /* 0: none */
    int ep;                          /* member of the current attempt */
    int failures;                    /* in a row, for the round pause */
    uint64_t last_fail_us;           /* when the last attempt failed */
    int authing;                     /* in flight: /v3/auth/authenticate */
    int reauthed;                    /* the token was renewed once */
    struct evhttp_connection *own;   /* wait: this attempt's connection */
    struct evhttp_request *req;      /* in flight, or NULL */
    struct event *timer;
    ehttp_cb cb;
    void *arg;
    char reason[REASON_MAX];         /* the last failure */
};

struct spent {                       /* a wait's connection, to free */
    struct spent *next;
    struct evhttp_connection *conn;
};

struct ehttp {
    struct event_base *base;
    struct cachify_url url;
    int io_timeout_ms;
    int cur;                         /* member tried first */
    struct evhttp_connection *conns[CACHIFY_URL_ENDPOINTS_MAX];
    char *token;                     /* auth token, or NULL */
    struct ehttp_call *calls;
    struct spent *spent;
};

uint64_t ehttp_now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

int ehttp_error_code(const json_t *reply)
{
    json_t *c = json_object_get(reply, "code");

    return json_is_integer(c) ? (int)json_integer_value(c) : -1;
}

struct ehttp *ehttp_new(struct event_base *base, const struct cachify_url *url,
                        int io_timeout_ms)
{
    struct ehttp *h = calloc(1, sizeof *h);

    if (h == NULL)
        return NULL;
    h->base = base;
    h->url = *url;
    h->io_timeout_ms = io_timeout_ms;
    return h;
}

static void free_spent(struct ehttp *h)
{
    while (h->spent != NULL) {
        struct spent *s = h->spent;

        h->spent = s->next;
        evhttp_connection_free(s->conn);
        free(s);
    }
}

/* Puts a wait's connection on the list of spent ones (freed from outside
 * its own callbacks); if that list cannot grow, frees it now, which is
 * safe when we are not inside its callback (the caller says so). */
static void retire(struct ehttp *h, struct evhttp_connection *conn)
{
    struct spent *s = malloc(sizeof *s);

    if (s == NULL) {
        evhttp_connection_free(conn);
        return;
    }
    s->conn = conn;
    s->next = h->spent;
    h->spent = s;
}

static void call_free(struct ehttp_call *c)
{
    struct ehttp *h = c->h;

    if (c->prev)
        c->prev->next = c->next;
    else
        h->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->timer)
        event_free(c->timer);
    free(c->path);
    free(c->body);
    free(c);
}

/* Stops the attempt in flight, if any, without a callback. */
static void drop_attempt(struct ehttp_call *c)
{
    if (c->req != NULL) {
        struct evhttp_request *req = c->req;

        c->req = NULL;
        evhttp_cancel_request(req);
    }
    if (c->own != NULL) {
        retire(c->h, c->own);
        c->own = NULL;
    }
}

int ehttp_call_failing(const struct ehttp_call *c, char *reason,
                       size_t cap)
{
    uint64_t now = ehttp_now_us();

    if (c == NULL || c->failures == 0)
        return 0;
    if (c->req != NULL && now - c->last_fail_us >= FAILING_US)
        return 0;
    snprintf(reason, cap, "%s", c->reason);
    return 1;
}

void ehttp_cancel(struct ehttp_call *c)
{
    if (c == NULL)
        return;
    drop_attempt(c);
    call_free(c);
}

void ehttp_free(struct ehttp *h)
{
    if (h == NULL)
        return;
    while (h->calls != NULL)
        ehttp_cancel(h->calls);
    free_spent(h);
    for (int i = 0; i < h->url.nendpoints; i++)
        if (h->conns[i] != NULL)
            evhttp_connection_free(h->conns[i]);
    free(h->token);
    free(h);
}

/* Ends c with its callback, then frees it. */
static void finish(struct ehttp_call *c, int status, json_t *reply,
                   const char *msg)
{
    ehttp_cb cb = c->cb;
    void *arg = c->arg;

    drop_attempt(c);
    call_free(c);
    cb(arg, status, reply, msg);
}

static void arm(struct ehttp_call *c, long long ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

    event_add(c->timer, &tv);
}

/* The attempt failed (reason already in c->reason): the next member, now
 * or after the round pause, or the end when the deadline has passed. */
static void next_member(struct ehttp_call *c)
{
    struct ehttp *h = c->h;

    drop_attempt(c);
    event_del(c->timer);
    c->last_fail_us = ehttp_now_us();
    if (c->deadline_us != 0 && ehttp_now_us() >= c->deadline_us) {
        char msg[REASON_MAX + 64];

        snprintf(msg, sizeof msg, "etcd: no member answered in time (last: %s)",
                 c->reason);
        finish(c, CACHIFY_ERR_IO, NULL, msg);
        return;
    }
    c->failures++;
    c->ep = (c->ep + 1) % h->url.nendpoints;
    arm(c, c->failures % h->url.nendpoints == 0 ? ROUND_PAUSE_MS : 0);
}

static void set_reason(struct ehttp_call *c, const char *what)
{
    const struct cachify_url_endpoint *ep = &c->h->url.endpoints[c->ep];

    snprintf(c->reason, sizeof c->reason, "%s:%d: %s", ep->host, ep->port,
             what);
}

/* Whether an error answer means "try another member": no leader, a
 * request that timed out inside etcd (a leader lost mid-request), a member
 * shutting down.  The lock service passes such errors on with code 2
 * (UNKNOWN), so their text counts too. */
static int retryable(int http, int code, const char *text)
{
    return http == 503 || code == 14 /* UNAVAILABLE */ ||
           code == 4 /* DEADLINE_EXCEEDED */ ||
           strstr(text, "etcdserver: request timed out") != NULL ||
           strstr(text, "etcdserver: no leader") != NULL ||
           strstr(text, "etcdserver: leader changed") != NULL ||
           strstr(text, "etcdserver: server stopped") != NULL;
}

/* Whether an error answer is about who we are. */
static int auth_error(int code, const char *text)
{
    return code == 16 /* UNAUTHENTICATED */ || code == 7 /* PERMISSION_DENIED */ ||
           strstr(text, "authentication failed") != NULL ||
           strstr(text, "user name is empty") != NULL ||
           strstr(text, "invalid auth token") != NULL;
}

static void start_attempt(struct ehttp_call *c);

/* An answer with a JSON error object. */
static void on_error_reply(struct ehttp_call *c, int http, json_t *reply)
{
    struct ehttp *h = c->h;
    json_t *m = json_object_get(reply, "message");
    const char *text = json_is_string(m) ? json_string_value(m) : "";
    int code = ehttp_error_code(reply);
    char msg[REASON_MAX + 64];

    if (retryable(http, code, text)) {
        set_reason(c, text[0] ? text : "unavailable");
        next_member(c);
        return;
    }
    if (auth_error(code, text)) {
        /* A token that expired (etcd's simple tokens live 5 minutes
         * unused) is renewed once; anything else is the credentials. */
        if (code == 16 && h->url.user[0] != '\0' && !c->reauthed &&
            !c->authing) {
            c->reauthed = 1;
            free(h->token);
            h->token = NULL;
            arm(c, 0);
            return;
        }
        snprintf(msg, sizeof msg, "etcd: %s", text[0] ? text : "not allowed");
        finish(c, CACHIFY_ERR_AUTH, NULL, msg);
        return;
    }
    if (text[0] == '\0')
        snprintf(msg, sizeof msg, "etcd: HTTP %d for %s", http, c->path);
    else
        snprintf(msg, sizeof msg, "etcd: %s", text);
    finish(c, CACHIFY_ERR_SERVER, reply, msg);
}

static void on_reply(struct evhttp_request *req, void *arg)
{
    struct ehttp_call *c = arg;
    struct ehttp *h = c->h;
    struct evbuffer *in;
    json_error_t jerr;
    json_t *reply;
    int http;

    if (c->req == NULL)
        return; /* cancelled meanwhile */
    c->req = NULL;
    event_del(c->timer);
    http = req != NULL ? evhttp_request_get_response_code(req) : 0;
    if (http == 0) {
        set_reason(c, "connection failed");
        next_member(c);
        return;
    }
    in = evhttp_request_get_input_buffer(req);
    reply = json_loadb((const char *)evbuffer_pullup(in, -1),
                       evbuffer_get_length(in), 0, &jerr);
    if (!json_is_object(reply)) {
        char msg[REASON_MAX + 64];

        json_decref(reply);
        if (http != 200) {
            snprintf(msg, sizeof msg, "etcd: HTTP %d for %s", http, c->path);
            finish(c, http == 404 ? CACHIFY_ERR_SERVER : CACHIFY_ERR_PROTO,
                   NULL, msg);
            return;
        }
        snprintf(msg, sizeof msg, "etcd: the answer to %s is not JSON: %s",
                 c->path, jerr.text);
        finish(c, CACHIFY_ERR_PROTO, NULL, msg);
        return;
    }
    h->cur = c->ep; /* it answered: new calls start there */
    if (http != 200) {
        on_error_reply(c, http, reply);
    } else if (c->authing) {
        json_t *t = json_object_get(reply, "token");

        c->authing = 0;
        free(h->token);
        h->token = json_is_string(t) ? strdup(json_string_value(t)) : NULL;
        if (h->token == NULL) {
            finish(c, json_is_string(t) ? CACHIFY_ERR_NOMEM : CACHIFY_ERR_AUTH,
                   NULL, json_is_string(t) ? "out of memory"
                   : "etcd: authentication gave no token (is auth enabled?)");
        } else {
            if (c->own != NULL) { /* a wait: its request on a new one */
                retire(h, c->own);
                c->own = NULL;
            }
            arm(c, 0);
        }
    } else {
        finish(c, CACHIFY_OK, reply, "");
    }
    json_decref(reply);
}

static struct evhttp_connection *new_conn(struct ehttp *h, int ep)
{
    const struct cachify_url_endpoint *e = &h->url.endpoints[ep];
    struct evhttp_connection *conn =
        evhttp_connection_base_new(h->base, NULL, e->host, (unsigned short)e->port);

    if (conn != NULL) {
        evhttp_connection_set_timeout(conn, EVHTTP_TIMEOUT_S);
        evhttp_connection_set_max_body_size(conn, MAX_BODY);
        evhttp_connection_set_max_headers_size(conn, MAX_HEADERS);
    }
    return conn;
}

/* The body of the authentication call. */
static char *auth_body(const struct ehttp *h)
{
    json_t *o = json_pack("{s:s, s:s}", "name", h->url.user, "password",
                          h->url.password);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    return s;
}

static void start_attempt(struct ehttp_call *c)
{
    struct ehttp *h = c->h;
    struct evhttp_connection *conn;
    struct evhttp_request *req;
    struct evkeyvalq *hd;
    const struct cachify_url_endpoint *ep = &h->url.endpoints[c->ep];
    char hostport[CACHIFY_URL_HOST_MAX + 16], *authbody = NULL;
    long long ms = -1;

    free_spent(h);
    c->authing = h->url.user[0] != '\0' && h->token == NULL;
    if (c->authing && (authbody = auth_body(h)) == NULL) {
        finish(c, CACHIFY_ERR_NOMEM, NULL, "out of memory");
        return;
    }
    if (c->wait) {
        if (c->own != NULL) /* a renewed token: a fresh connection */
            retire(h, c->own);
        conn = c->own = new_conn(h, c->ep);
    } else {
        if (h->conns[c->ep] == NULL)
            h->conns[c->ep] = new_conn(h, c->ep);
        conn = h->conns[c->ep];
    }
    req = conn ? evhttp_request_new(on_reply, c) : NULL;
    if (req == NULL) {
        free(authbody);
        finish(c, CACHIFY_ERR_NOMEM, NULL, "out of memory");
        return;
    }
    snprintf(hostport, sizeof hostport,
             strchr(ep->host, ':') ? "[%s]:%d" : "%s:%d", ep->host, ep->port);
    hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Host", hostport);
    evhttp_add_header(hd, "Content-Type", "application/json");
    if (!c->authing && h->token != NULL)
        evhttp_add_header(hd, "Authorization", h->token);
    if (c->authing)
        evbuffer_add(evhttp_request_get_output_buffer(req), authbody,
                     strlen(authbody));
    else
        evbuffer_add(evhttp_request_get_output_buffer(req), c->body,
                     c->bodylen);
    free(authbody);
    c->req = req;
    if (evhttp_make_request(conn, req, EVHTTP_REQ_POST,
                            c->authing ? "/v3/auth/authenticate" : c->path)
        != 0) {
        c->req = NULL; /* libevent freed it */
        set_reason(c, "cannot send");
        next_member(c);
        return;
    }
    /* The attempt's bound: its share of the call's time (see the top). */
    if (!c->wait || c->authing) {
        long long share = h->io_timeout_ms / h->url.nendpoints;

        ms = share < MIN_ATTEMPT_MS ? MIN_ATTEMPT_MS : share;
    }
    if (c->deadline_us != 0) {
        uint64_t now = ehttp_now_us();
        long long left = c->deadline_us > now
                             ? (long long)((c->deadline_us - now + 999) / 1000)
                             : 1;

        if (ms < 0 || left < ms)
            ms = left;
    }
    if (ms >= 0)
        arm(c, ms);
}

/* The call's timer: an attempt that took too long, or the next attempt. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ehttp_call *c = arg;

    (void)fd;
    (void)what;
    if (c->req != NULL) {
        set_reason(c, "no answer in time");
        next_member(c);
        return;
    }
    start_attempt(c);
}

struct ehttp_call *ehttp_post(struct ehttp *h, const char *path, json_t *body,
                              long long timeout_ms, ehttp_cb cb, void *arg)
{
    struct ehttp_call *c = calloc(1, sizeof *c);

    if (c == NULL || body == NULL ||
        (c->body = json_dumps(body, JSON_COMPACT)) == NULL ||
        (c->path = strdup(path)) == NULL ||
        (c->timer = evtimer_new(h->base, on_timer, c)) == NULL) {
        json_decref(body);
        if (c != NULL) {
            free(c->body);
            free(c->path);
            free(c);
        }
        return NULL;
    }
    json_decref(body);
    c->h = h;
    c->bodylen = strlen(c->body);
    c->wait = timeout_ms < 0;
    c->deadline_us = timeout_ms < 0 ? 0 : ehttp_now_us() + (uint64_t)timeout_ms * 1000;
    c->ep = h->cur;
    c->cb = cb;
    c->arg = arg;
    snprintf(c->reason, sizeof c->reason, "not tried");
    c->next = h->calls;
    if (h->calls)
        h->calls->prev = c;
    h->calls = c;
    arm(c, 0); /* never inside this call: see the top */
    return c;
}
