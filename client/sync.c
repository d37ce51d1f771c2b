/* client/sync.c - the sync API of cachify.h: handles, the lock calls over
 * cachifyd or the embedded store, and the error model.
 *
 * Owns: struct cachify (the URL, options, prefix, one connection (with
 * its TLS settings for cachifys://), one embedded session or one etcd
 * backend, the error message of the last failed call), and the order of
 * a call: check, connect when needed, send, read, keep the
 * message.  Does not own: the socket (sync_net.c), the bytes of requests,
 * the checks of arguments and the meaning of replies (wire.c, shared with
 * the async API), reply parsing (proto/resp.c), the embedded store
 * (embedded.c), etcd (sync_etcd.c over etcd.c), URLs (url.c), guards and decorators (scoped.c).
 *
 * Error model (cachify.h): every call first clears the message, so errors
 * are never sticky (hiredis #1112).  An I/O or protocol error closes the
 * connection; the next call reconnects (and re-authenticates) before it
 * sends anything.  A call is never retried by itself: the server may have
 * done it already.  An error reply and a missing reply are told apart
 * (hiredis #242): a reply of an unexpected type is CACHIFY_ERR_PROTO, an
 * error reply is mapped by its code, and no reply is CACHIFY_ERR_IO.  A
 * connection the server closed while it was idle is noticed before a
 * request is sent (ready_conn) and replaced, so it costs no error.
 *
 * "<key> is already locked!" names the key as the caller gave it, without
 * the handle's prefix: py-cachify builds the message from the formatted key
 * and adds its prefix ("PYC-" by default) only inside its cache client, so
 * its messages never show the prefix either.  Both backends take the
 * wording from wire.c, so they read the same byte for byte.
 */
#include "client/cachify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/embedded.h"
#include "client/sync_internal.h"
#include "client/sync_etcd.h"
#include "client/sync_net.h"
#include "client/url.h"
#include "client/wire.h"

/* First size of the message buffer; it grows for messages that quote a
 * long key (bounded by CACHIFY_KEY_MAX). */
#define ERR_INITIAL 256

struct cachify {
    struct cachify_url url;
    int connect_timeout_ms;
    int io_timeout_ms;
    long long default_exp_ms;
    char *prefix;           /* "" when none */
    size_t prefixlen;
    int pycachify_keys;     /* decorated keys take py-cachify's suffixes */
    struct sconn conn;      /* TCP and UNIX */
    struct mem_session *mem;/* "mem:" */
    struct setcd *etcd;     /* "etcd://" */
    char *err;              /* message of the last failed call, "" */
    size_t errcap;
    char *key;              /* scratch: prefix + key of the current call */
    size_t keycap;
    char *url_text;         /* the URL opened, for a renewer's own handle */
    cachify_renew_cb renew_cb; /* cachify_set_renew_cb */
    void *renew_arg;
};

const char *cachify_status_name(int status)
{
    switch (status) {
    case CACHIFY_OK: return "OK";
    case CACHIFY_LOCKED: return "LOCKED";
    case CACHIFY_TIMEOUT: return "TIMEOUT";
    case CACHIFY_ERR_IO: return "ERR_IO";
    case CACHIFY_ERR_PROTO: return "ERR_PROTO";
    case CACHIFY_ERR_SERVER: return "ERR_SERVER";
    case CACHIFY_ERR_AUTH: return "ERR_AUTH";
    case CACHIFY_ERR_ARG: return "ERR_ARG";
    case CACHIFY_ERR_NOMEM: return "ERR_NOMEM";
    case CACHIFY_ERR_CLOSED: return "ERR_CLOSED";
    case CACHIFY_LOST: return "LOST";
    case CACHIFY_FULL: return "FULL";
    case CACHIFY_ERR_TYPE: return "ERR_TYPE";
    default: return "?";
    }
}

/* ---- messages ---- */

int cachify_impl_set_err(struct cachify *c, int status, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(c->err, c->errcap, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= c->errcap) {
        /* Too long for the buffer: grow it; on failure keep the cut one. */
        char *bigger = realloc(c->err, (size_t)n + 1);

        if (bigger != NULL) {
            c->err = bigger;
            c->errcap = (size_t)n + 1;
            va_start(ap, fmt);
            vsnprintf(c->err, c->errcap, fmt, ap);
            va_end(ap);
        }
    }
    return status;
}

int cachify_impl_pycachify_keys(const struct cachify *c)
{
    return c->pycachify_keys;
}

static void clear_err(struct cachify *c)
{
    c->err[0] = '\0';
}

const char *cachify_errstr(const struct cachify *c)
{
    return c != NULL ? c->err : "no handle";
}

/* Keeps the message of a mapped reply and returns its status. */
static int result_err(struct cachify *c, const struct wire_result *res)
{
    if (res->status == CACHIFY_OK)
        return CACHIFY_OK;
    return cachify_impl_set_err(c, res->status, "%s%s%s", res->head,
                                res->text, res->tail);
}

/* The message of CACHIFY_LOCKED / CACHIFY_TIMEOUT (see the top). */
static int locked_err(struct cachify *c, int status, const char *key)
{
    struct wire_result res;

    wire_locked(&res, status, key);
    return result_err(c, &res);
}

/* Builds prefix + key into c->key.  CACHIFY_OK with *len, or an error.
 * The checks' messages are short: c->err (256 bytes or more) holds them. */
static int full_key(struct cachify *c, const char *key, size_t *len)
{
    size_t klen;
    int rc = wire_check_key(key, c->prefixlen, &klen, c->err, c->errcap);

    if (rc != CACHIFY_OK)
        return rc;
    if (c->prefixlen + klen + 1 > c->keycap) {
        char *nk = realloc(c->key, c->prefixlen + klen + 1);

        if (nk == NULL)
            return cachify_impl_set_err(c, CACHIFY_ERR_NOMEM,
                                        "out of memory");
        c->key = nk;
        c->keycap = c->prefixlen + klen + 1;
    }
    memcpy(c->key, c->prefix, c->prefixlen);
    memcpy(c->key + c->prefixlen, key, klen + 1);
    *len = c->prefixlen + klen;
    return CACHIFY_OK;
}

/* ---- the connection ---- */

/* Drops the connection after an I/O or protocol error (see the top). */
static int conn_failed(struct cachify *c, int status)
{
    sconn_close(&c->conn);
    return status;
}

/* Sends q and reads its reply within the time wire.c gives it. */
static int roundtrip(struct cachify *c, const struct wire_req *q,
                     struct resp_reply **out)
{
    char stackbuf[WIRE_REQUEST_STACK], *buf;
    size_t n;
    int rc;

    buf = wire_request(q, stackbuf, sizeof stackbuf, &n);
    if (buf == NULL)
        return conn_failed(c, cachify_impl_set_err(c, CACHIFY_ERR_NOMEM,
                                                   "out of memory"));
    rc = sconn_send(&c->conn, buf, n, c->io_timeout_ms, c->err, c->errcap);
    if (buf != stackbuf)
        free(buf);
    if (rc == CACHIFY_OK)
        rc = sconn_recv(&c->conn,
                        wire_reply_timeout_ms(q->op, &q->lock,
                                              c->io_timeout_ms),
                        out, c->err, c->errcap);
    return rc == CACHIFY_OK ? rc : conn_failed(c, rc);
}

/* Runs q on the open connection: CACHIFY_OK with *value (when value is not
 * NULL), or an error with c->err set.  key (the caller's, for messages)
 * may be NULL.  A reply that is not the one q has drops the connection:
 * nothing after it can be trusted. */
static int exchange(struct cachify *c, const struct wire_req *q,
                    const char *key, long long *value)
{
    struct resp_reply *r = NULL;
    struct wire_result res;
    int rc = roundtrip(c, q, &r);

    if (rc != CACHIFY_OK)
        return rc;
    wire_reply(q->op, r, key, &res);
    rc = result_err(c, &res); /* before the free: the message quotes r */
    resp_reply_free(r);
    if (rc == CACHIFY_ERR_PROTO)
        return conn_failed(c, rc);
    if (rc == CACHIFY_OK && value != NULL)
        *value = res.value;
    return rc;
}

/* Connects and authenticates.  CACHIFY_OK, or an error with c->err set.
 * Over TLS without a password a PING takes AUTH's place: with TLS 1.3 the
 * server refuses a client certificate only after the client's handshake
 * has ended, so without a first reply a refused client would open fine
 * and fail at its first call. */
static int connect_server(struct cachify *c)
{
    struct wire_req q = {.op = WIRE_AUTH};
    int rc = sconn_open(&c->conn, &c->url, c->connect_timeout_ms, c->err,
                        c->errcap);

    if (rc != CACHIFY_OK || (c->url.password[0] == '\0' && !c->url.tls))
        return rc;
    q.key = c->url.password;
    q.keylen = strlen(c->url.password);
    if (q.keylen == 0)
        q.op = WIRE_PING;
    rc = exchange(c, &q, NULL, NULL);
    if (rc != CACHIFY_OK)
        sconn_close(&c->conn); /* refused: nothing to use it for */
    return rc;
}

/* Makes c's connection ready for a request: every request on the network
 * backends starts here, before anything is sent.  A connection that is no
 * longer idle (the server closed it while we were not looking, e.g. its
 * idle `timeout`, or wrote an unsolicited -LIMIT / -DENIED line before
 * closing) is dropped and replaced: safe, since nothing of this request was
 * sent yet, and without it the request would fail with CACHIFY_ERR_IO or
 * read the stray line as its reply.  A missing connection is opened (and
 * authenticated). */
static int ready_conn(struct cachify *c)
{
    if (c->conn.fd >= 0 && !sconn_idle(&c->conn))
        sconn_close(&c->conn);
    return c->conn.fd >= 0 ? CACHIFY_OK : connect_server(c);
}

/* Runs q on the etcd backend; as exchange. */
static int etcd_command(struct cachify *c, const struct wire_req *q,
                        const char *key, long long *value)
{
    char msg[256];
    int rc = setcd_call(c->etcd, q->op, q->key, q->keylen, &q->lock,
                        q->max_size, q->token, q->ms, value, msg, sizeof msg);

    if (rc == CACHIFY_FULL ||
        (rc == CACHIFY_TIMEOUT && q->op == WIRE_POOL_ACQUIRE)) {
        struct wire_result res;

        wire_full(&res, rc, key);
        return result_err(c, &res);
    }
    if (rc == CACHIFY_LOCKED || rc == CACHIFY_TIMEOUT)
        return locked_err(c, rc, key);
    if (rc != CACHIFY_OK)
        return cachify_impl_set_err(c, rc, "%s", msg);
    return rc;
}

/* Runs q on a ready connection (or on etcd); as exchange. */
static int command(struct cachify *c, const struct wire_req *q,
                   const char *key, long long *value)
{
    int rc;

    if (c->etcd != NULL)
        return etcd_command(c, q, key, value);
    rc = ready_conn(c);

    return rc != CACHIFY_OK ? rc : exchange(c, q, key, value);
}

/* ---- open / close ---- */

int cachify_open(struct cachify **out, const char *url,
                 const struct cachify_options *opts, char *err, size_t errlen)
{
    struct wire_options wo;
    struct cachify *c;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "out is NULL");
        return CACHIFY_ERR_ARG;
    }
    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL || (c->err = malloc(ERR_INITIAL)) == NULL) {
        free(c);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    c->errcap = ERR_INITIAL;
    c->err[0] = '\0';
    sconn_init(&c->conn);
    rc = cachify_url_parse(url, &c->url, c->err, c->errcap);
    if (rc == CACHIFY_OK &&
        (c->url_text = strdup(url != NULL ? url : "")) == NULL)
        rc = cachify_impl_set_err(c, CACHIFY_ERR_NOMEM, "out of memory");
    if (rc == CACHIFY_OK)
        rc = wire_options(opts, &wo, c->err, c->errcap);
    if (rc == CACHIFY_OK) {
        c->connect_timeout_ms = wo.connect_timeout_ms;
        c->io_timeout_ms = wo.io_timeout_ms;
        c->default_exp_ms = wo.default_exp_ms;
        c->prefixlen = wo.prefixlen;
        c->pycachify_keys = wo.pycachify_keys;
        if ((c->prefix = strdup(wo.prefix)) == NULL)
            rc = cachify_impl_set_err(c, CACHIFY_ERR_NOMEM, "out of memory");
    }
    if (rc == CACHIFY_OK) {
        if (c->url.kind == CACHIFY_URL_MEM) {
            c->mem = mem_session_new();
            if (c->mem == NULL)
                rc = cachify_impl_set_err(c, CACHIFY_ERR_NOMEM,
                                          "out of memory");
        } else if (c->url.kind == CACHIFY_URL_ETCD) {
            /* A first call, so a cluster that is not there or a wrong
             * password is reported here, as for cachifyd. */
            struct wire_req q = {.op = WIRE_PING};

            rc = setcd_open(&c->etcd, &c->url, c->io_timeout_ms, c->err,
                            c->errcap);
            if (rc == CACHIFY_OK)
                rc = command(c, &q, NULL, NULL);
        } else {
            rc = connect_server(c);
        }
    }
    if (rc != CACHIFY_OK) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s", c->err);
        cachify_close(c);
        return rc;
    }
    *out = c;
    return CACHIFY_OK;
}

void cachify_close(struct cachify *c)
{
    if (c == NULL)
        return;
    sconn_free(&c->conn);
    mem_session_free(c->mem);
    setcd_close(c->etcd);
    free(c->prefix);
    free(c->key);
    free(c->err);
    free(c->url_text);
    free(c);
}

/* ---- lock calls ---- */

/* Common start of every key call: clears the message, builds the key. */
#define BEGIN(c, key, len)                                                   \
    do {                                                                     \
        int begin_rc_;                                                       \
        if ((c) == NULL)                                                     \
            return CACHIFY_ERR_ARG;                                          \
        clear_err(c);                                                        \
        if ((begin_rc_ = full_key((c), (key), &(len))) != CACHIFY_OK)        \
            return begin_rc_;                                                \
    } while (0)

int cachify_acquire(struct cachify *c, const char *key,
                    const struct cachify_lock_opts *opts, uint64_t *token)
{
    struct wire_req q = {.op = WIRE_ACQUIRE};
    long long value = 0;
    int rc;

    BEGIN(c, key, q.keylen);
    rc = wire_lock_opts(opts, c->default_exp_ms, &q.lock, c->err, c->errcap);
    if (rc != CACHIFY_OK)
        return rc;
    if (token == NULL)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "token is NULL");
    *token = 0;
    if (c->mem != NULL) {
        rc = mem_acquire_wait(c->mem, c->key, q.keylen,
                              (uint64_t)q.lock.ttl_ms * 1000, q.lock.wait_ms,
                              q.lock.session, token);
        if (rc == CACHIFY_LOCKED || rc == CACHIFY_TIMEOUT)
            return locked_err(c, rc, key);
        if (rc == CACHIFY_ERR_NOMEM)
            return cachify_impl_set_err(c, rc, "out of memory");
        return rc;
    }
    q.key = c->key;
    rc = command(c, &q, key, &value);
    if (rc == CACHIFY_OK)
        *token = (uint64_t)value; /* > 0: wire.c refuses any other */
    return rc;
}

/* A mem: release or extend's result r, with cachifyd's words when the key
 * is a pool's. */
static int mem_typed(struct cachify *c, int r)
{
    if (r == CACHIFY_ERR_TYPE)
        return cachify_impl_set_err(c, r, "%s", WIRE_NOT_A_LOCK);
    return r;
}

/* RELEASE key token, or RELEASE key (forced): 1, 0, or an error. */
static int release_common(struct cachify *c, const char *key, uint64_t token,
                          int forced)
{
    struct wire_req q = {.op = forced ? WIRE_FORCE : WIRE_RELEASE,
                         .token = token};
    long long value = 0;
    int rc;

    BEGIN(c, key, q.keylen);
    if (!forced &&
        (rc = wire_check_release(token, c->err, c->errcap)) != CACHIFY_OK)
        return rc;
    if (c->mem != NULL)
        return mem_typed(c, mem_release(c->mem, c->key, q.keylen,
                                        forced ? 0 : token));
    q.key = c->key;
    rc = command(c, &q, key, &value);
    return rc != CACHIFY_OK ? rc : (int)value;
}

int cachify_release(struct cachify *c, const char *key, uint64_t token)
{
    return release_common(c, key, token, 0);
}

int cachify_force_release(struct cachify *c, const char *key)
{
    return release_common(c, key, 0, 1);
}

int cachify_is_locked(struct cachify *c, const char *key)
{
    struct wire_req q = {.op = WIRE_IS_LOCKED};
    long long value = 0;
    int rc;

    BEGIN(c, key, q.keylen);
    if (c->mem != NULL)
        return mem_is_locked(c->mem, c->key, q.keylen);
    q.key = c->key;
    rc = command(c, &q, key, &value);
    return rc != CACHIFY_OK ? rc : (int)value;
}

int cachify_extend(struct cachify *c, const char *key, uint64_t token,
                   long long ms)
{
    struct wire_req q = {.op = WIRE_EXTEND, .token = token, .ms = ms};
    long long value = 0;
    int rc;

    BEGIN(c, key, q.keylen);
    rc = wire_check_extend(token, ms, c->err, c->errcap);
    if (rc != CACHIFY_OK)
        return rc;
    if (c->mem != NULL)
        return mem_typed(c, mem_extend(c->mem, c->key, q.keylen, token,
                                       (uint64_t)ms * 1000));
    q.key = c->key;
    rc = command(c, &q, key, &value);
    return rc != CACHIFY_OK ? rc : (int)value;
}

int cachify_pttl(struct cachify *c, const char *key, long long *ms)
{
    struct wire_req q = {.op = WIRE_PTTL};

    BEGIN(c, key, q.keylen);
    if (ms == NULL)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "ms is NULL");
    if (c->mem != NULL) {
        int64_t us = mem_pttl_us(c->mem, c->key, q.keylen);

        /* Rounded up as cachifyd does, so a held lock never shows 0. */
        *ms = us < 0 ? (long long)us : (long long)((us + 999) / 1000);
        return CACHIFY_OK;
    }
    q.key = c->key;
    return command(c, &q, key, ms);
}

/* ---- renewal (renew.c) ---- */

void cachify_set_renew_cb(struct cachify *c, cachify_renew_cb cb, void *arg)
{
    if (c == NULL)
        return;
    c->renew_cb = cb;
    c->renew_arg = arg;
}

int cachify_impl_reopen(struct cachify *c, int timeout_ms,
                        struct cachify **out)
{
    struct cachify_options o = {
        .connect_timeout_ms = timeout_ms < c->connect_timeout_ms
                                  ? timeout_ms : c->connect_timeout_ms,
        .io_timeout_ms = timeout_ms < c->io_timeout_ms ? timeout_ms
                                                       : c->io_timeout_ms,
        .default_exp_ms = c->default_exp_ms,
        .prefix = c->prefix, /* resolved already: pycachify_keys stays 0 */
    };
    char err[256];
    int rc = cachify_open(out, c->url_text, &o, err, sizeof err);

    if (rc != CACHIFY_OK)
        return cachify_impl_set_err(c, rc, "renewer: %s", err);
    return CACHIFY_OK;
}

void cachify_impl_renew_cb(const struct cachify *c, cachify_renew_cb *cb,
                           void **arg)
{
    *cb = c->renew_cb;
    *arg = c->renew_arg;
}

long long cachify_impl_default_exp(const struct cachify *c)
{
    return c->default_exp_ms;
}

/* ---- for pool.c (sync_internal.h) ---- */

int cachify_impl_begin(struct cachify *c, const char *key,
                       struct cachify_impl_call *call)
{
    BEGIN(c, key, call->keylen);
    call->key = c->key;
    call->mem = c->mem;
    call->err = c->err;
    call->errcap = c->errcap;
    call->default_exp_ms = c->default_exp_ms;
    return CACHIFY_OK;
}

int cachify_impl_command(struct cachify *c, const struct wire_req *q,
                         const char *key, long long *value)
{
    return command(c, q, key, value);
}

int cachify_impl_result(struct cachify *c, const struct wire_result *res)
{
    return result_err(c, res);
}

int cachify_ping(struct cachify *c)
{
    struct wire_req q = {.op = WIRE_PING};

    if (c == NULL)
        return CACHIFY_ERR_ARG;
    clear_err(c);
    if (c->mem != NULL)
        return CACHIFY_OK;
    return command(c, &q, NULL, NULL);
}
