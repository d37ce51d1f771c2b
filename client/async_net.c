/* client/async_net.c - the cachifyd backend of the async client: libevent
 * bufferevents to the daemon (the sync API's counterpart is sync_net.c).
 *
 * Owns: the handle's connections and the requests in flight on them.
 * cachifyd answers the requests of one connection in order, so each
 * connection keeps a FIFO and a reply always belongs to its head.  Because
 * the server holds back every reply queued behind a waiting ACQUIRE, a
 * waiting acquire never shares a connection: it gets a dedicated one,
 * closed once answered.  A SESSION acquire gets a dedicated connection too,
 * which then *is* the lock's session: it stays open while the lock is held
 * and is closed when the lock is released through this handle (a release
 * with its token goes on that connection), force-released through it, or
 * the handle closes.  Everything else shares the main connection, made on
 * first use and again after any failure (errors are not sticky).
 * Does not own: the bytes of requests and what a reply means (wire.c,
 * shared with the sync API: this file writes what wire_request gives and
 * acts on what wire_reply says), callbacks (async.c runs them from its
 * done queue, so nothing here ever calls user code, and a connection can
 * be freed from inside its own bufferevent callbacks), URL parsing, the
 * embedded store.
 *
 * Failure rules: an I/O error, a close by the server, a reply that is not
 * RESP, or a missed deadline fails every request of that connection with a
 * status and a message that says why, and frees the connection.  Deadlines:
 * connect_timeout_ms for the connect, io_timeout_ms for each reply from
 * when it was sent (or the connect finished), plus the wait bound for a
 * waiting acquire; one evtimer per connection is armed for its head.
 *
 * libevent specifics the caller inherits (docs/client.md): writes use
 * writev, so the program must ignore SIGPIPE; a host name is resolved with
 * evdns (a literal address never is), and a lookup still running at close
 * is finished by libevent on the base's next turn.
 *
 * cachifys://: every connection is a bufferevent over OpenSSL made from
 * the handle's TLS settings (client/tls.h, built by anet_open), connected
 * the same way; its BEV_EVENT_CONNECTED comes once the handshake is done,
 * so connect_timeout_ms bounds the handshake too, and requests written
 * meanwhile wait in its output buffer as they do while connecting.  A
 * connection closed cleanly sends close_notify first (best effort).
 */
#include "client/async_internal.h"

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "client/sync_net.h"
#include "client/tls.h"
#include "client/wire.h"
#include "proto/resp.h"

/* A reply is at most an error line naming a key of up to max_key_len
 * (65536) bytes, each escaped to 4: 1 MiB bounds it with room to spare. */
#define REPLY_MAX_BULK (1024 * 1024)
#define REPLY_MAX_ELEMENTS 1024
/* "host:port" or "unix:path" for messages. */
#define WHERE_MAX (CACHIFY_URL_HOST_MAX + CACHIFY_URL_PATH_MAX + 16)

enum conn_state {
    CS_CONNECTING, /* name lookup or connect under way; requests written
                      meanwhile wait in the output buffer */
    CS_READY,      /* connected: replies are matched to head in order */
};

enum conn_role {
    ROLE_MAIN,    /* every request that does not wait */
    ROLE_WAIT,    /* one waiting acquire; closed when answered */
    ROLE_SESSION, /* one SESSION acquire, then its lock's lifetime */
};

struct aconn {
    struct aconn *prev, *next;   /* ac->dedicated (not the main one) */
    struct cachify_async *ac;
    enum conn_state state;
    enum conn_role role;
    struct bufferevent *bev;
    struct resp_parser *rp;
    struct event *timer;
    uint64_t connect_deadline;   /* CS_CONNECTING */
    struct areq *head, *tail;    /* sent, unanswered, in order */
    /* ROLE_SESSION once granted: the lock this connection holds. */
    int held;
    char *skey;
    size_t skeylen;
    uint64_t stoken;
    uint64_t grant_seq;          /* ac->seq when the grant arrived */
    /* A failure reported while bufferevent_socket_connect runs is kept
     * here and acted on when it returns (the connection must not be freed
     * under it). */
    int starting;
    int start_failed;
    int start_errno;
    int failed;                  /* conn_fail: no TLS close_notify */
};

static void conn_arm(struct aconn *c);

/* ------------------------------------------------------ free and failure */

static void conn_free(struct aconn *c)
{
    struct cachify_async *ac = c->ac;

    if (ac->main_conn == c) {
        ac->main_conn = NULL;
    } else {
        if (c->prev)
            c->prev->next = c->next;
        else
            ac->dedicated = c->next;
        if (c->next)
            c->next->prev = c->prev;
    }
    if (c->bev) {
        evutil_socket_t fd = bufferevent_getfd(c->bev);

        if (ac->tls != NULL && !c->failed && c->state == CS_READY)
            ctls_close_notify(bufferevent_openssl_get_ssl(c->bev));
        /* libevent 2.1 closes the socket in a finalizer on the loop's next
         * turn; the server must see us go now (SESSION locks, waits). */
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
        bufferevent_free(c->bev); /* safe inside its own callbacks */
    }
    if (c->timer)
        event_free(c->timer);
    resp_parser_free(c->rp);
    free(c->skey);
    free(c);
}

/* Fails every request of c with status and the message, then frees c. */
__attribute__((format(printf, 3, 4)))
static void conn_fail(struct aconn *c, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    while (c->head != NULL) {
        struct areq *r = c->head;

        c->head = r->next;
        if (r->op == WIRE_AUTH)
            async_req_free(r);
        else
            async_finish(r, status, 0, "%s", msg);
    }
    c->tail = NULL;
    c->failed = 1;
    conn_free(c);
}

static const char *conn_where(const struct aconn *c, char *buf, size_t n)
{
    const struct cachify_url *u = &c->ac->url;

    if (u->kind == CACHIFY_URL_UNIX)
        snprintf(buf, n, "unix:%s", u->path);
    else
        snprintf(buf, n, "%s:%d", u->host, u->port);
    return buf;
}

/* A dedicated connection with nothing in flight and no lock to keep is
 * done.  Returns 1 when c was freed. */
static int conn_maybe_close(struct aconn *c)
{
    if (c->role != ROLE_MAIN && c->head == NULL && !c->held) {
        conn_free(c);
        return 1;
    }
    conn_arm(c);
    return 0;
}

/* --------------------------------------------------------------- timers */

static void conn_arm(struct aconn *c)
{
    uint64_t dl = 0, now;
    struct timeval tv;

    if (c->state == CS_CONNECTING)
        dl = c->connect_deadline;
    else if (c->head != NULL)
        dl = c->head->deadline_us;
    if (dl == 0) {
        evtimer_del(c->timer);
        return;
    }
    now = async_now_us();
    dl = dl > now ? dl - now : 0;
    tv.tv_sec = (time_t)(dl / 1000000u);
    tv.tv_usec = (suseconds_t)(dl % 1000000u);
    evtimer_add(c->timer, &tv);
}

/* 1 when c, still connecting, is a TLS connection whose socket is
 * connected: what it waits for is the handshake. */
static int conn_handshaking(const struct aconn *c)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    evutil_socket_t fd;

    if (c->ac->tls == NULL || (fd = bufferevent_getfd(c->bev)) < 0)
        return 0;
    return getpeername(fd, (struct sockaddr *)&peer, &len) == 0;
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct aconn *c = arg;
    char where[WHERE_MAX];

    (void)fd;
    (void)what;
    conn_where(c, where, sizeof where);
    if (c->state == CS_CONNECTING && conn_handshaking(c))
        conn_fail(c, CACHIFY_ERR_IO,
                  "TLS handshake with %s timed out after %d ms", where,
                  c->ac->connect_timeout_ms);
    else if (c->state == CS_CONNECTING)
        conn_fail(c, CACHIFY_ERR_IO, "connect to %s timed out after %d ms",
                  where, c->ac->connect_timeout_ms);
    else
        conn_fail(c, CACHIFY_ERR_IO,
                  "no reply from %s within %llu ms; connection closed", where,
                  (unsigned long long)(c->head ? c->head->timeout_us / 1000
                                               : 0));
}

/* ------------------------------------------------------------- replies */

/* After a forced release of key answered, the SESSION connections of this
 * handle that held key since before it was sent hold nothing any more. */
static void drop_sessions_of(struct cachify_async *ac, const struct areq *r)
{
    struct aconn *c = ac->dedicated, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (c->held && c->grant_seq < r->seq && c->skeylen == r->keylen &&
            memcmp(c->skey, r->key, r->keylen) == 0) {
            c->held = 0;
            conn_maybe_close(c);
        }
    }
}

/* The reply is not what r's command answers (res says how): the stream
 * is not what we think it is, so the connection goes, r first. */
static void conn_bad_reply(struct aconn *c, struct areq *r,
                           const struct wire_result *res)
{
    r->next = c->head;
    c->head = r;
    if (c->tail == NULL)
        c->tail = r;
    conn_fail(c, res->status, "%s%s%s", res->head, res->text, res->tail);
}

/* A SESSION connection's first grant: from now on the connection is the
 * lock's session and remembers which lock it holds. */
static void session_granted(struct aconn *c, const struct areq *r,
                            uint64_t token)
{
    c->skey = malloc(r->keylen + 1);
    if (c->skey != NULL) {
        memcpy(c->skey, r->key, r->keylen + 1);
        c->skeylen = r->keylen;
    }
    /* Out of memory: still held (closing would drop the lock), just not
     * findable by release; it ends with the handle. */
    c->held = 1;
    c->stoken = token;
    c->grant_seq = ++c->ac->seq;
}

/* Finishes r (popped from c) with its reply, as wire.c reads it.  Returns
 * -1 when c was failed and freed (a refused AUTH, a reply that does not
 * fit), else 0. */
static int handle_reply(struct aconn *c, struct areq *r,
                        const struct resp_reply *rep)
{
    struct wire_result res;

    wire_reply(r->op, rep,
               r->op == WIRE_AUTH ? NULL : r->key + c->ac->prefixlen, &res);
    if (r->op == WIRE_AUTH) {
        /* Every request behind a refused AUTH fails with its reason. */
        async_req_free(r);
        if (res.status == CACHIFY_OK)
            return 0;
        conn_fail(c, res.status, "%s%s%s", res.head, res.text, res.tail);
        return -1;
    }
    if (res.status == CACHIFY_ERR_PROTO) {
        conn_bad_reply(c, r, &res);
        return -1;
    }
    if (res.status != CACHIFY_OK) {
        async_finish(r, res.status, 0, "%s%s%s", res.head, res.text,
                     res.tail);
        return 0;
    }
    switch (r->op) {
    case WIRE_ACQUIRE:
    case WIRE_POOL_ACQUIRE:
        if (c->role == ROLE_SESSION && !c->held)
            session_granted(c, r, (uint64_t)res.value);
        async_finish_token(r, CACHIFY_OK, (uint64_t)res.value, NULL);
        return 0;
    case WIRE_RELEASE:
    case WIRE_POOL_RELEASE:
        if (c->held && r->token == c->stoken)
            c->held = 0; /* released, or it had expired: either way gone */
        break;
    case WIRE_FORCE:
    case WIRE_POOL_FORCE:
        drop_sessions_of(c->ac, r);
        break;
    case WIRE_AUTH:
    case WIRE_PING:
    case WIRE_IS_LOCKED:
    case WIRE_EXTEND:
    case WIRE_PTTL:
    case WIRE_POOL_SIZE:
    case WIRE_POOL_EXTEND:
        break;
    }
    async_finish(r, CACHIFY_OK, res.value, NULL);
    return 0;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct aconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        struct resp_reply *rep;
        enum resp_status st;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        if (resp_parser_feed(c->rp, v.iov_base, v.iov_len) != 0) {
            conn_fail(c, CACHIFY_ERR_NOMEM, "out of memory reading a reply");
            return;
        }
        evbuffer_drain(in, v.iov_len);
        while ((st = resp_parser_next(c->rp, &rep)) == RESP_OK) {
            struct areq *r = c->head;

            if (r == NULL) {
                resp_reply_free(rep);
                conn_fail(c, CACHIFY_ERR_PROTO,
                          "the server sent a reply nobody asked for");
                return;
            }
            c->head = r->next;
            if (c->head == NULL)
                c->tail = NULL;
            st = handle_reply(c, r, rep) == 0 ? RESP_OK : RESP_ERROR;
            resp_reply_free(rep);
            if (st == RESP_ERROR)
                return; /* c is gone */
        }
        if (st == RESP_ERROR) {
            conn_fail(c, CACHIFY_ERR_PROTO, "bad reply from the server: %s",
                      resp_parser_error(c->rp));
            return;
        }
    }
    conn_maybe_close(c);
}

/* A TLS connection's error or close, when TLS explains it: the
 * handshake refused (a certificate, an alert, not TLS at all) or cut short
 * by a close, or an alert after it (with TLS 1.3 a refused client
 * certificate is answered after the client's handshake ended).  Returns 1
 * when c was failed with that reason, 0 to let the socket's error speak
 * (a refused connect, a reset). */
static int conn_tls_failed(struct aconn *c, short what, const char *where)
{
    unsigned long e, first = 0;
    char why[256];
    int tls_own;

    while ((e = bufferevent_get_openssl_error(c->bev)) != 0)
        if (first == 0 && ctls_has_reason(e))
            first = e;
    tls_own = ctls_reason(bufferevent_openssl_get_ssl(c->bev), first, 0, why,
                          sizeof why);
    if (c->state == CS_CONNECTING && (tls_own || (what & BEV_EVENT_EOF))) {
        conn_fail(c, CACHIFY_ERR_IO, "TLS handshake with %s failed: %s",
                  where, why);
        return 1;
    }
    if (c->state == CS_READY && tls_own) {
        conn_fail(c, CACHIFY_ERR_IO, "connection to %s failed: %s", where,
                  why);
        return 1;
    }
    return 0;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct aconn *c = arg;
    char where[WHERE_MAX];
    int dns_err;

    if (c->starting) {
        if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
            c->start_failed = 1;
            c->start_errno = EVUTIL_SOCKET_ERROR();
        }
        if (!(what & BEV_EVENT_CONNECTED))
            return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        uint64_t now = async_now_us();
        evutil_socket_t fd = bufferevent_getfd(bev);

        /* SO_KEEPALIVE (a WAIT FOREVER on a vanished server ends), and
         * TCP_NODELAY on TCP, as the sync connections have them. */
        if (fd >= 0)
            cachify_impl_tune_socket((int)fd,
                                     c->ac->url.kind != CACHIFY_URL_UNIX);
        c->state = CS_READY;
        for (struct areq *r = c->head; r != NULL; r = r->next)
            r->deadline_us = r->timeout_us ? now + r->timeout_us : 0;
        conn_arm(c);
        return;
    }
    conn_where(c, where, sizeof where);
    dns_err = bufferevent_socket_get_dns_error(bev);
    if (dns_err != 0)
        conn_fail(c, CACHIFY_ERR_IO, "cannot resolve %s: %s", where,
                  evutil_gai_strerror(dns_err));
    else if (c->ac->tls != NULL && conn_tls_failed(c, what, where))
        return; /* c is gone */
    else if (c->state == CS_CONNECTING)
        conn_fail(c, CACHIFY_ERR_IO, "cannot connect to %s: %s", where,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    else if (what & BEV_EVENT_EOF)
        conn_fail(c, CACHIFY_ERR_IO, "connection to %s closed by the server",
                  where);
    else
        conn_fail(c, CACHIFY_ERR_IO, "connection to %s failed: %s", where,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* --------------------------------------------------------- connections */

static struct aconn *conn_new(struct cachify_async *ac, enum conn_role role)
{
    static const struct resp_limits lim = { REPLY_MAX_BULK,
                                            REPLY_MAX_ELEMENTS };
    struct aconn *c = calloc(1, sizeof *c);

    if (c == NULL)
        return NULL;
    c->ac = ac;
    c->role = role;
    c->state = CS_CONNECTING;
    c->rp = resp_parser_new(&lim);
    c->timer = evtimer_new(ac->base, conn_timer_cb, c);
    c->bev = ac->tls != NULL
                 ? ctls_bufferevent_new(ac->tls, ac->base)
                 : bufferevent_socket_new(ac->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (role == ROLE_MAIN) {
        ac->main_conn = c;
    } else {
        c->next = ac->dedicated;
        if (c->next)
            c->next->prev = c;
        ac->dedicated = c;
    }
    if (c->rp == NULL || c->timer == NULL || c->bev == NULL) {
        conn_free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
    if (bufferevent_enable(c->bev, EV_READ) != 0) {
        conn_free(c);
        return NULL;
    }
    return c;
}

/* Starts connecting c (its first requests are already in its output
 * buffer).  A failure fails those requests through the done queue. */
static void conn_connect(struct aconn *c)
{
    struct cachify_async *ac = c->ac;
    const struct cachify_url *u = &ac->url;
    char where[WHERE_MAX];
    int rc;

    c->connect_deadline =
        async_now_us() + (uint64_t)ac->connect_timeout_ms * 1000u;
    c->starting = 1;
    if (u->kind == CACHIFY_URL_UNIX) {
        struct sockaddr_un sa_un;

        memset(&sa_un, 0, sizeof sa_un);
        sa_un.sun_family = AF_UNIX;
        memcpy(sa_un.sun_path, u->path, strlen(u->path) + 1);
        rc = bufferevent_socket_connect(c->bev, (struct sockaddr *)&sa_un,
                                        (int)sizeof sa_un);
    } else {
        /* A literal address needs no lookup; getaddrinfo with
         * AI_NUMERICHOST never blocks.  A name goes through evdns. */
        struct addrinfo hints, *res = NULL;
        char port[16];

        memset(&hints, 0, sizeof hints);
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        hints.ai_socktype = SOCK_STREAM;
        snprintf(port, sizeof port, "%d", u->port);
        if (getaddrinfo(u->host, port, &hints, &res) == 0) {
            rc = bufferevent_socket_connect(c->bev, res->ai_addr,
                                            (int)res->ai_addrlen);
            freeaddrinfo(res);
        } else {
            if (ac->dns == NULL)
                ac->dns = evdns_base_new(ac->base,
                                         EVDNS_BASE_INITIALIZE_NAMESERVERS);
            if (ac->dns == NULL) {
                errno = ENOMEM;
                rc = -1;
            } else {
                rc = bufferevent_socket_connect_hostname(
                    c->bev, ac->dns, AF_UNSPEC, u->host, u->port);
            }
        }
    }
    if (rc != 0 && !c->start_failed) {
        c->start_failed = 1;
        c->start_errno = errno;
    }
    c->starting = 0;
    if (c->start_failed) {
        int dns_err = bufferevent_socket_get_dns_error(c->bev);

        conn_where(c, where, sizeof where);
        if (dns_err != 0)
            conn_fail(c, CACHIFY_ERR_IO, "cannot resolve %s: %s", where,
                      evutil_gai_strerror(dns_err));
        else
            conn_fail(c, CACHIFY_ERR_IO, "cannot connect to %s: %s", where,
                      strerror(c->start_errno ? c->start_errno : EIO));
        return;
    }
    if (c->state == CS_CONNECTING)
        conn_arm(c);
}

/* ------------------------------------------------------------- requests */

int anet_open(struct cachify_async *ac, char *err, size_t errlen)
{
    char msg[512];
    int rc;

    if (ac->url.kind != CACHIFY_URL_TCP || !ac->url.tls)
        return CACHIFY_OK;
    rc = ctls_new(&ac->tls, &ac->url, msg, sizeof msg);
    if (rc != CACHIFY_OK && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return rc;
}

/* Writes r to c (the bytes wire.c makes of it) and appends it to c's
 * FIFO with the reply bound wire.c gives it.  0, or -1 out of memory (r is
 * not queued then, and nothing of it was written). */
static int conn_send(struct aconn *c, struct areq *r)
{
    struct wire_req q = {.op = r->op, .key = r->key, .keylen = r->keylen,
                         .token = r->token, .ms = r->ms, .lock = r->lock,
                         .max_size = r->max_size};
    char stackbuf[WIRE_REQUEST_STACK], *buf;
    long long timeout_ms;
    size_t n;
    int rc;

    if (r->op == WIRE_AUTH) {
        q.key = c->ac->url.password;
        q.keylen = strlen(q.key);
    }
    buf = wire_request(&q, stackbuf, sizeof stackbuf, &n);
    if (buf == NULL)
        return -1;
    /* All n bytes or none: evbuffer_add allocates before it copies. */
    rc = bufferevent_write(c->bev, buf, n);
    if (buf != stackbuf)
        free(buf);
    if (rc != 0)
        return -1;
    timeout_ms = wire_reply_timeout_ms(r->op, &r->lock, c->ac->io_timeout_ms);
    r->timeout_us = timeout_ms < 0 ? 0 : (uint64_t)timeout_ms * 1000u;
    r->next = NULL;
    r->deadline_us = 0;
    if (c->state == CS_READY && r->timeout_us)
        r->deadline_us = async_now_us() + r->timeout_us;
    if (c->tail)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    return 0;
}

/* The SESSION connection holding key with token, if any. */
static struct aconn *session_conn(struct cachify_async *ac,
                                  const struct areq *r)
{
    for (struct aconn *c = ac->dedicated; c != NULL; c = c->next)
        if (c->held && c->skey && c->stoken == r->token &&
            c->skeylen == r->keylen && memcmp(c->skey, r->key, r->keylen) == 0)
            return c;
    return NULL;
}

int anet_submit(struct cachify_async *ac, struct areq *r)
{
    struct aconn *c = NULL;
    int fresh = 0;

    if (r->op == WIRE_RELEASE || r->op == WIRE_POOL_RELEASE)
        c = session_conn(ac, r);
    if (c == NULL && (r->op == WIRE_ACQUIRE || r->op == WIRE_POOL_ACQUIRE) &&
        (r->lock.wait_ms != 0 || r->lock.session)) {
        c = conn_new(ac, r->lock.session ? ROLE_SESSION : ROLE_WAIT);
        fresh = 1;
    } else if (c == NULL && ac->main_conn == NULL) {
        c = conn_new(ac, ROLE_MAIN);
        fresh = 1;
    } else if (c == NULL) {
        c = ac->main_conn;
    }
    if (c == NULL)
        return CACHIFY_ERR_NOMEM;
    if (fresh && ac->url.password[0] != '\0') {
        /* AUTH goes first; its reply is checked and never reaches a user. */
        struct areq *auth = calloc(1, sizeof *auth);

        if (auth != NULL) {
            auth->ac = ac;
            auth->op = WIRE_AUTH;
        }
        if (auth == NULL || conn_send(c, auth) != 0) {
            free(auth);
            conn_free(c);
            return CACHIFY_ERR_NOMEM;
        }
    }
    if (conn_send(c, r) != 0) {
        if (fresh)
            conn_fail(c, CACHIFY_ERR_NOMEM, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    if (fresh)
        conn_connect(c);
    else if (c->head == r)
        conn_arm(c);
    return CACHIFY_OK;
}

void anet_shutdown(struct cachify_async *ac, struct areq ***tail)
{
    while (ac->main_conn != NULL || ac->dedicated != NULL) {
        struct aconn *c = ac->main_conn ? ac->main_conn : ac->dedicated;

        while (c->head != NULL) {
            struct areq *r = c->head;

            c->head = r->next;
            if (r->op == WIRE_AUTH) {
                async_req_free(r);
                continue;
            }
            r->next = NULL;
            **tail = r;
            *tail = &r->next;
        }
        c->tail = NULL;
        conn_free(c);
    }
    if (ac->dns != NULL) {
        /* Lookups still running are failed (their bufferevents hold a
         * reference until then). */
        evdns_base_free(ac->dns, 1);
        ac->dns = NULL;
    }
    ctls_free(ac->tls);
    ac->tls = NULL;
}
