/* client/async_net.c - the cachifyd backend of the async client: libevent
 * bufferevents to the daemon, RESP requests out, RESP replies in.
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
 * Does not own: callbacks (async.c runs them from its done queue, so
 * nothing here ever calls user code, and a connection can be freed from
 * inside its own bufferevent callbacks), URL parsing, the embedded store.
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
#include <event2/dns.h>
#include <event2/event.h>

#include "client/sync_net.h"
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
        if (r->kind == AQ_AUTH)
            async_req_free(r);
        else
            async_finish(r, status, 0, "%s", msg);
    }
    c->tail = NULL;
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

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct aconn *c = arg;
    char where[WHERE_MAX];

    (void)fd;
    (void)what;
    conn_where(c, where, sizeof where);
    if (c->state == CS_CONNECTING)
        conn_fail(c, CACHIFY_ERR_IO, "connect to %s timed out after %d ms",
                  where, c->ac->connect_timeout_ms);
    else
        conn_fail(c, CACHIFY_ERR_IO,
                  "no reply from %s within %llu ms; connection closed", where,
                  (unsigned long long)(c->head ? c->head->timeout_us / 1000
                                               : 0));
}

/* ------------------------------------------------------------- replies */

/* Error reply "CODE message": the status it means (as the sync API maps
 * it). */
static int error_status(const char *text)
{
    size_t n = strcspn(text, " ");

    if (n == 6 && memcmp(text, "LOCKED", 6) == 0)
        return CACHIFY_LOCKED;
    if (n == 7 && memcmp(text, "TIMEOUT", 7) == 0)
        return CACHIFY_TIMEOUT;
    if ((n == 6 && memcmp(text, "NOAUTH", 6) == 0) ||
        (n == 9 && memcmp(text, "WRONGPASS", 9) == 0))
        return CACHIFY_ERR_AUTH;
    return CACHIFY_ERR_SERVER;
}

static const char *kind_name(enum areq_kind k)
{
    switch (k) {
    case AQ_AUTH: return "AUTH";
    case AQ_ACQUIRE: return "ACQUIRE";
    case AQ_RELEASE: case AQ_FORCE: return "RELEASE";
    case AQ_IS_LOCKED: return "IS_LOCKED";
    case AQ_EXTEND: return "EXTEND";
    case AQ_PTTL: return "PTTL";
    }
    return "?";
}

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

/* The reply is not what r's command answers: the stream is not what we
 * think it is, so the connection goes, r first. */
__attribute__((format(printf, 3, 4)))
static void conn_bad_reply(struct aconn *c, struct areq *r, const char *fmt,
                           ...)
{
    char msg[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->next = c->head;
    c->head = r;
    if (c->tail == NULL)
        c->tail = r;
    conn_fail(c, CACHIFY_ERR_PROTO, "%s", msg);
}

/* Finishes r (popped from c) with its reply.  Returns -1 when c was failed
 * and freed (a refused AUTH, a reply that does not fit), else 0. */
static int handle_reply(struct aconn *c, struct areq *r,
                        const struct resp_reply *rep)
{
    int st;

    if (r->kind == AQ_AUTH) {
        async_req_free(r);
        if (rep->type == RESP_STATUS)
            return 0;
        /* Mapped as the sync API maps it: WRONGPASS (NOAUTH) or "ERR no
         * password is set" is CACHIFY_ERR_AUTH (the URL's password does not
         * match the server); any other refusal (-LIMIT max number of
         * clients reached, -DENIED, ...) is CACHIFY_ERR_SERVER. */
        if (rep->type == RESP_ERROR_REPLY) {
            st = error_status(rep->str);
            if (strcmp(rep->str, "ERR no password is set") == 0)
                st = CACHIFY_ERR_AUTH;
            else if (st != CACHIFY_ERR_AUTH)
                st = CACHIFY_ERR_SERVER;
            conn_fail(c, st, "AUTH failed: %s", rep->str);
        } else
            conn_fail(c, CACHIFY_ERR_PROTO, "unexpected reply to AUTH");
        return -1;
    }
    if (rep->type == RESP_ERROR_REPLY) {
        st = error_status(rep->str);
        if (st == CACHIFY_LOCKED || st == CACHIFY_TIMEOUT)
            async_finish(r, st, 0, "%s is already locked!",
                         r->key + c->ac->prefixlen);
        else
            async_finish(r, st, 0, "%s", rep->str);
        return 0;
    }
    if (rep->type != RESP_INTEGER) {
        conn_bad_reply(c, r, "unexpected reply type %d to %s",
                       (int)rep->type, kind_name(r->kind));
        return -1;
    }
    switch (r->kind) {
    case AQ_ACQUIRE:
        if (rep->integer <= 0) {
            conn_bad_reply(c, r, "bad token %lld from the server",
                           rep->integer);
            return -1;
        }
        if (c->role == ROLE_SESSION && !c->held) {
            c->skey = malloc(r->keylen + 1);
            if (c->skey != NULL) {
                memcpy(c->skey, r->key, r->keylen + 1);
                c->skeylen = r->keylen;
            }
            /* Out of memory: still held (closing would drop the lock),
             * just not findable by release; it ends with the handle. */
            c->held = 1;
            c->stoken = (uint64_t)rep->integer;
            c->grant_seq = ++c->ac->seq;
        }
        async_finish_token(r, CACHIFY_OK, (uint64_t)rep->integer, NULL);
        return 0;
    case AQ_RELEASE:
    case AQ_FORCE:
    case AQ_IS_LOCKED:
    case AQ_EXTEND:
        if (r->kind == AQ_RELEASE && c->held && r->token == c->stoken)
            c->held = 0; /* released, or it had expired: either way gone */
        if (r->kind == AQ_FORCE)
            drop_sessions_of(c->ac, r);
        async_finish(r, CACHIFY_OK, rep->integer != 0, NULL);
        return 0;
    case AQ_PTTL:
        async_finish(r, CACHIFY_OK, rep->integer, NULL);
        return 0;
    case AQ_AUTH:
        break;
    }
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
    c->bev = bufferevent_socket_new(ac->base, -1, BEV_OPT_CLOSE_ON_FREE);
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

static int enc_arg(struct evbuffer *b, const void *p, size_t n)
{
    if (evbuffer_add_printf(b, "$%zu\r\n", n) < 0 ||
        evbuffer_add(b, p, n) != 0 || evbuffer_add(b, "\r\n", 2) != 0)
        return -1;
    return 0;
}

static int enc_str(struct evbuffer *b, const char *s)
{
    return enc_arg(b, s, strlen(s));
}

static int enc_num(struct evbuffer *b, long long v)
{
    char num[32];

    snprintf(num, sizeof num, "%lld", v);
    return enc_str(b, num);
}

/* The RESP array for r (binary-safe key).  0, or -1 out of memory. */
static int encode(struct evbuffer *b, const struct areq *r,
                  const char *password)
{
    int n, bad = 0;

    switch (r->kind) {
    case AQ_AUTH:
        return evbuffer_add_printf(b, "*2\r\n") < 0 || enc_str(b, "AUTH") ||
               enc_str(b, password) ? -1 : 0;
    case AQ_ACQUIRE:
        n = 4 + (r->wait_ms != 0 ? 2 : 0) + (r->session ? 1 : 0);
        bad = evbuffer_add_printf(b, "*%d\r\n", n) < 0 ||
              enc_str(b, "ACQUIRE") || enc_arg(b, r->key, r->keylen) ||
              enc_str(b, "TTL") ||
              (r->ttl_ms > 0 ? enc_num(b, r->ttl_ms) : enc_str(b, "FOREVER"));
        if (r->wait_ms != 0)
            bad = bad || enc_str(b, "WAIT") ||
                  (r->wait_ms > 0 ? enc_num(b, r->wait_ms)
                                  : enc_str(b, "FOREVER"));
        if (r->session)
            bad = bad || enc_str(b, "SESSION");
        return bad ? -1 : 0;
    case AQ_RELEASE:
        bad = evbuffer_add_printf(b, "*3\r\n") < 0 ||
              enc_str(b, "RELEASE") || enc_arg(b, r->key, r->keylen) ||
              enc_num(b, (long long)r->token);
        return bad ? -1 : 0;
    case AQ_FORCE:
        bad = evbuffer_add_printf(b, "*2\r\n") < 0 ||
              enc_str(b, "RELEASE") || enc_arg(b, r->key, r->keylen);
        return bad ? -1 : 0;
    case AQ_IS_LOCKED:
    case AQ_PTTL:
        bad = evbuffer_add_printf(b, "*2\r\n") < 0 ||
              enc_str(b, kind_name(r->kind)) ||
              enc_arg(b, r->key, r->keylen);
        return bad ? -1 : 0;
    case AQ_EXTEND:
        bad = evbuffer_add_printf(b, "*4\r\n") < 0 ||
              enc_str(b, "EXTEND") || enc_arg(b, r->key, r->keylen) ||
              enc_num(b, (long long)r->token) || enc_num(b, r->ms);
        return bad ? -1 : 0;
    }
    return -1;
}

/* Writes r to c and appends it to c's FIFO.  0, or -1 out of memory (r is
 * not queued then). */
static int conn_send(struct aconn *c, struct areq *r)
{
    struct evbuffer *b = evbuffer_new();
    int rc;

    if (b == NULL)
        return -1;
    rc = encode(b, r, c->ac->url.password);
    if (rc == 0)
        rc = bufferevent_write_buffer(c->bev, b);
    evbuffer_free(b);
    if (rc != 0)
        return -1;
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
    uint64_t io_us = (uint64_t)ac->io_timeout_ms * 1000u;
    struct aconn *c = NULL;
    int fresh = 0;

    r->timeout_us = io_us;
    if (r->kind == AQ_ACQUIRE && r->wait_ms != 0)
        r->timeout_us =
            r->wait_ms < 0 ? 0 : io_us + (uint64_t)r->wait_ms * 1000u;
    if (r->kind == AQ_RELEASE)
        c = session_conn(ac, r);
    if (c == NULL && r->kind == AQ_ACQUIRE && (r->wait_ms != 0 || r->session)) {
        c = conn_new(ac, r->session ? ROLE_SESSION : ROLE_WAIT);
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
            auth->kind = AQ_AUTH;
            auth->timeout_us = io_us;
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
            if (r->kind == AQ_AUTH) {
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
}
