/* client/sync.c - the sync API of cachify.h: handles, the lock calls over
 * cachifyd or the embedded store, and the error model.
 *
 * Owns: struct cachify (the URL, options, prefix, one connection or one
 * embedded session, the error message of the last failed call), turning
 * lock options into ACQUIRE arguments, turning replies into statuses.  Does
 * not own: the socket and reply parsing (sync_net.c, proto/resp.c), the
 * embedded store (embedded.c), URLs (url.c), guards and decorators
 * (scoped.c).
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
 * its messages never show the prefix either.  Both backends build the
 * message here, so they read the same byte for byte.
 */
#include "client/cachify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/sync_net.h"
#include "client/embedded.h"
#include "client/sync_internal.h"
#include "client/url.h"
#include "proto/limits.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_EXP_MS 30000 /* py-cachify's default_lock_expiration */
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
    struct sconn conn;      /* TCP and UNIX */
    struct mem_session *mem;/* "mem:" */
    char *err;              /* message of the last failed call, "" */
    size_t errcap;
    char *key;              /* scratch: prefix + key of the current call */
    size_t keycap;
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

static void clear_err(struct cachify *c)
{
    c->err[0] = '\0';
}

const char *cachify_errstr(const struct cachify *c)
{
    return c != NULL ? c->err : "no handle";
}

/* The message of CACHIFY_LOCKED / CACHIFY_TIMEOUT (see the top). */
static int locked_err(struct cachify *c, int status, const char *key)
{
    return cachify_impl_set_err(c, status, "%s is already locked!", key);
}

/* Builds prefix + key into c->key.  CACHIFY_OK with *len, or an error. */
static int full_key(struct cachify *c, const char *key, size_t *len)
{
    size_t klen;

    if (key == NULL || key[0] == '\0')
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "empty key");
    klen = strlen(key);
    if (klen > CACHIFY_KEY_MAX || c->prefixlen + klen > CACHIFY_KEY_MAX)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG,
                                    "key longer than %d bytes "
                                    "(prefix included)", CACHIFY_KEY_MAX);
    if (c->prefixlen + klen + 1 > c->keycap) {
        char *nk = realloc(c->key, c->prefixlen + klen + 1);

        if (nk == NULL)
            return cachify_impl_set_err(c, CACHIFY_ERR_NOMEM, "out of memory");
        c->key = nk;
        c->keycap = c->prefixlen + klen + 1;
    }
    memcpy(c->key, c->prefix, c->prefixlen);
    memcpy(c->key + c->prefixlen, key, klen + 1);
    *len = c->prefixlen + klen;
    return CACHIFY_OK;
}

/* ---- the wire ---- */

/* The status an error reply "CODE message" means, by its code. */
static int error_status(const char *text)
{
    size_t code = strcspn(text, " ");

#define IS_CODE(s) (code == sizeof(s) - 1 && memcmp(text, s, code) == 0)
    if (IS_CODE("LOCKED"))
        return CACHIFY_LOCKED;
    if (IS_CODE("TIMEOUT"))
        return CACHIFY_TIMEOUT;
    if (IS_CODE("NOAUTH") || IS_CODE("WRONGPASS"))
        return CACHIFY_ERR_AUTH;
#undef IS_CODE
    return CACHIFY_ERR_SERVER;
}

/* Maps an error reply to a status and message. */
static int error_reply(struct cachify *c, const struct resp_reply *r,
                       const char *key)
{
    int st = error_status(r->str);

    if (st == CACHIFY_LOCKED || st == CACHIFY_TIMEOUT)
        return locked_err(c, st, key ? key : "");
    return cachify_impl_set_err(c, st, "%s", r->str);
}

/* Drops the connection after an I/O or protocol error (see the top). */
static int conn_failed(struct cachify *c, int status)
{
    sconn_close(&c->conn);
    return status;
}

/* Sends one command and reads its reply within timeout_ms (< 0: none). */
static int roundtrip(struct cachify *c, int argc, const char *const *argv,
                     const size_t *len, long long timeout_ms,
                     struct resp_reply **out)
{
    int rc = sconn_send(&c->conn, argc, argv, len, c->io_timeout_ms, c->err,
                        c->errcap);

    if (rc == CACHIFY_OK)
        rc = sconn_recv(&c->conn, timeout_ms, out, c->err, c->errcap);
    return rc == CACHIFY_OK ? rc : conn_failed(c, rc);
}

/* Connects and authenticates.  CACHIFY_OK, or an error with c->err set. */
static int connect_server(struct cachify *c)
{
    static const char auth[] = "AUTH";
    struct resp_reply *r = NULL;
    const char *argv[2];
    size_t len[2];
    int rc = sconn_open(&c->conn, &c->url, c->connect_timeout_ms, c->err,
                        c->errcap);

    if (rc != CACHIFY_OK || c->url.password[0] == '\0')
        return rc;
    argv[0] = auth;
    len[0] = sizeof auth - 1;
    argv[1] = c->url.password;
    len[1] = strlen(c->url.password);
    rc = roundtrip(c, 2, argv, len, c->io_timeout_ms, &r);
    if (rc != CACHIFY_OK)
        return rc;
    if (r->type == RESP_STATUS) {
        rc = CACHIFY_OK;
    } else if (r->type == RESP_ERROR_REPLY) {
        /* Mapped like any error reply: WRONGPASS (and NOAUTH), or "ERR no
         * password is set" (the URL's password does not match the server)
         * are CACHIFY_ERR_AUTH; anything else (-LIMIT max number of clients
         * reached, -DENIED, ...) is the server refusing for another reason,
         * CACHIFY_ERR_SERVER, not a wrong password.  LOCKED / TIMEOUT mean
         * nothing as a reply to AUTH: CACHIFY_ERR_SERVER too. */
        rc = error_status(r->str);
        if (strcmp(r->str, "ERR no password is set") == 0)
            rc = CACHIFY_ERR_AUTH;
        else if (rc != CACHIFY_ERR_AUTH)
            rc = CACHIFY_ERR_SERVER;
        rc = cachify_impl_set_err(c, rc, "AUTH failed: %s", r->str);
        sconn_close(&c->conn);
    } else {
        rc = conn_failed(c, cachify_impl_set_err(c, CACHIFY_ERR_PROTO,
                                                 "unexpected reply to AUTH"));
    }
    resp_reply_free(r);
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

/* Runs a command whose success reply is an integer: CACHIFY_OK with *value,
 * or an error.  key (the caller's, for messages) may be NULL. */
static int int_command(struct cachify *c, const char *key, int argc,
                       const char *const *argv, const size_t *len,
                       long long timeout_ms, long long *value)
{
    struct resp_reply *r = NULL;
    int rc;

    if ((rc = ready_conn(c)) != CACHIFY_OK)
        return rc;
    rc = roundtrip(c, argc, argv, len, timeout_ms, &r);
    if (rc != CACHIFY_OK)
        return rc;
    if (r->type == RESP_INTEGER) {
        *value = r->integer;
    } else if (r->type == RESP_ERROR_REPLY) {
        rc = error_reply(c, r, key);
    } else {
        /* A nil or a status where an integer belongs: the stream is not
         * what we think it is, so nothing after it can be trusted. */
        rc = conn_failed(c, cachify_impl_set_err(
                                c, CACHIFY_ERR_PROTO,
                                "unexpected reply type %d to %s",
                                (int)r->type, argv[0]));
    }
    resp_reply_free(r);
    return rc;
}

/* ---- open / close ---- */

int cachify_open(struct cachify **out, const char *url,
                 const struct cachify_options *opts, char *err, size_t errlen)
{
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
    if (rc == CACHIFY_OK && opts != NULL &&
        (opts->connect_timeout_ms < 0 || opts->io_timeout_ms < 0 ||
         opts->default_exp_ms < 0 || opts->default_exp_ms > PROTO_MS_MAX))
        rc = cachify_impl_set_err(c, CACHIFY_ERR_ARG,
                                  "bad options: timeouts and default_exp_ms "
                                  "must be 0 (default) or positive");
    if (rc == CACHIFY_OK) {
        const char *prefix = opts && opts->prefix ? opts->prefix : "";

        c->connect_timeout_ms = opts && opts->connect_timeout_ms
                                    ? opts->connect_timeout_ms
                                    : DEFAULT_TIMEOUT_MS;
        c->io_timeout_ms = opts && opts->io_timeout_ms ? opts->io_timeout_ms
                                                       : DEFAULT_TIMEOUT_MS;
        c->default_exp_ms = opts && opts->default_exp_ms ? opts->default_exp_ms
                                                         : DEFAULT_EXP_MS;
        c->prefixlen = strlen(prefix);
        if (c->prefixlen > CACHIFY_KEY_MAX)
            rc = cachify_impl_set_err(c, CACHIFY_ERR_ARG, "prefix too long");
        else if ((c->prefix = strdup(prefix)) == NULL)
            rc = cachify_impl_set_err(c, CACHIFY_ERR_NOMEM, "out of memory");
    }
    if (rc == CACHIFY_OK) {
        if (c->url.kind == CACHIFY_URL_MEM) {
            c->mem = mem_session_new();
            if (c->mem == NULL)
                rc = cachify_impl_set_err(c, CACHIFY_ERR_NOMEM,
                                          "out of memory");
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
    sconn_close(&c->conn);
    mem_session_free(c->mem);
    free(c->prefix);
    free(c->key);
    free(c->err);
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
    static const struct cachify_lock_opts defaults = CACHIFY_LOCK_OPTS_DEFAULT;
    const char *argv[SCONN_MAX_ARGS];
    size_t len[SCONN_MAX_ARGS], klen;
    char ttl[24], waitbuf[24];
    long long exp, wait_ms, timeout, value = 0;
    int argc = 0, rc;

    BEGIN(c, key, klen);
    if (opts == NULL)
        opts = &defaults;
    exp = opts->exp_ms == CACHIFY_EXP_DEFAULT ? c->default_exp_ms : opts->exp_ms;
    wait_ms = opts->nowait ? 0 : opts->timeout_ms;
    if (exp < 0 || exp > PROTO_MS_MAX)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG,
                                    "bad exp_ms %lld: expected milliseconds, "
                                    "CACHIFY_EXP_DEFAULT or CACHIFY_EXP_NONE",
                                    opts->exp_ms);
    if ((wait_ms < 0 && wait_ms != CACHIFY_FOREVER) || wait_ms > PROTO_MS_MAX)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG,
                                    "bad timeout_ms %lld: expected "
                                    "milliseconds or CACHIFY_FOREVER",
                                    opts->timeout_ms);
    if (token == NULL)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "token is NULL");
    *token = 0;
    if (c->mem != NULL) {
        rc = mem_acquire_wait(c->mem, c->key, klen, (uint64_t)exp * 1000,
                              wait_ms, opts->session, token);
        if (rc == CACHIFY_LOCKED || rc == CACHIFY_TIMEOUT)
            return locked_err(c, rc, key);
        if (rc == CACHIFY_ERR_NOMEM)
            return cachify_impl_set_err(c, rc, "out of memory");
        return rc;
    }
    argv[argc] = "ACQUIRE"; len[argc++] = 7;
    argv[argc] = c->key; len[argc++] = klen;
    argv[argc] = "TTL"; len[argc++] = 3;
    if (exp == CACHIFY_EXP_NONE)
        snprintf(ttl, sizeof ttl, "FOREVER");
    else
        snprintf(ttl, sizeof ttl, "%lld", exp);
    argv[argc] = ttl; len[argc++] = strlen(ttl);
    /* The reply to a wait comes when the wait ends: allow the wait, plus
     * the usual time for a reply; no bound for a wait without one. */
    timeout = c->io_timeout_ms;
    if (wait_ms != 0) {
        if (wait_ms == CACHIFY_FOREVER) {
            snprintf(waitbuf, sizeof waitbuf, "FOREVER");
            timeout = -1;
        } else {
            snprintf(waitbuf, sizeof waitbuf, "%lld", wait_ms);
            timeout += wait_ms;
        }
        argv[argc] = "WAIT"; len[argc++] = 4;
        argv[argc] = waitbuf; len[argc++] = strlen(waitbuf);
    }
    if (opts->session) {
        argv[argc] = "SESSION"; len[argc++] = 7;
    }
    rc = int_command(c, key, argc, argv, len, timeout, &value);
    if (rc != CACHIFY_OK)
        return rc;
    if (value <= 0)
        return conn_failed(c, cachify_impl_set_err(
                                  c, CACHIFY_ERR_PROTO,
                                  "bad token %lld from the server", value));
    *token = (uint64_t)value;
    return CACHIFY_OK;
}

/* RELEASE key token, or RELEASE key (forced): 1, 0, or an error. */
static int release_common(struct cachify *c, const char *key, uint64_t token,
                          int forced)
{
    const char *argv[3];
    size_t len[3], klen;
    char tok[24];
    long long value = 0;
    int rc;

    BEGIN(c, key, klen);
    if (!forced && (token == 0 || token > PROTO_TOKEN_MAX))
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG,
                                    "bad token %llu: tokens are positive; use "
                                    "cachify_force_release to free any holder",
                                    (unsigned long long)token);
    if (c->mem != NULL)
        return mem_release(c->mem, c->key, klen, forced ? 0 : token);
    argv[0] = "RELEASE"; len[0] = 7;
    argv[1] = c->key; len[1] = klen;
    snprintf(tok, sizeof tok, "%llu", (unsigned long long)token);
    argv[2] = tok; len[2] = strlen(tok);
    rc = int_command(c, key, forced ? 2 : 3, argv, len, c->io_timeout_ms,
                     &value);
    return rc != CACHIFY_OK ? rc : value != 0;
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
    const char *argv[2];
    size_t len[2], klen;
    long long value = 0;
    int rc;

    BEGIN(c, key, klen);
    if (c->mem != NULL)
        return mem_is_locked(c->mem, c->key, klen);
    argv[0] = "IS_LOCKED"; len[0] = 9;
    argv[1] = c->key; len[1] = klen;
    rc = int_command(c, key, 2, argv, len, c->io_timeout_ms, &value);
    return rc != CACHIFY_OK ? rc : value != 0;
}

int cachify_extend(struct cachify *c, const char *key, uint64_t token,
                   long long ms)
{
    const char *argv[4];
    size_t len[4], klen;
    char tok[24], msbuf[24];
    long long value = 0;
    int rc;

    BEGIN(c, key, klen);
    if (token == 0 || token > PROTO_TOKEN_MAX)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "bad token %llu",
                                    (unsigned long long)token);
    if (ms <= 0 || ms > PROTO_MS_MAX)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG,
                                    "bad ms %lld: expected 1..%lld", ms,
                                    PROTO_MS_MAX);
    if (c->mem != NULL)
        return mem_extend(c->mem, c->key, klen, token, (uint64_t)ms * 1000);
    snprintf(tok, sizeof tok, "%llu", (unsigned long long)token);
    snprintf(msbuf, sizeof msbuf, "%lld", ms);
    argv[0] = "EXTEND"; len[0] = 6;
    argv[1] = c->key; len[1] = klen;
    argv[2] = tok; len[2] = strlen(tok);
    argv[3] = msbuf; len[3] = strlen(msbuf);
    rc = int_command(c, key, 4, argv, len, c->io_timeout_ms, &value);
    return rc != CACHIFY_OK ? rc : value != 0;
}

int cachify_pttl(struct cachify *c, const char *key, long long *ms)
{
    const char *argv[2];
    size_t len[2], klen;
    int rc;

    BEGIN(c, key, klen);
    if (ms == NULL)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "ms is NULL");
    if (c->mem != NULL) {
        int64_t us = mem_pttl_us(c->mem, c->key, klen);

        /* Rounded up as cachifyd does, so a held lock never shows 0. */
        *ms = us < 0 ? (long long)us : (long long)((us + 999) / 1000);
        return CACHIFY_OK;
    }
    argv[0] = "PTTL"; len[0] = 4;
    argv[1] = c->key; len[1] = klen;
    rc = int_command(c, key, 2, argv, len, c->io_timeout_ms, ms);
    return rc;
}

int cachify_ping(struct cachify *c)
{
    static const char ping[] = "PING";
    const char *argv[1] = {ping};
    size_t len[1] = {sizeof ping - 1};
    struct resp_reply *r = NULL;
    int rc;

    if (c == NULL)
        return CACHIFY_ERR_ARG;
    clear_err(c);
    if (c->mem != NULL)
        return CACHIFY_OK;
    if ((rc = ready_conn(c)) != CACHIFY_OK)
        return rc;
    rc = roundtrip(c, 1, argv, len, c->io_timeout_ms, &r);
    if (rc != CACHIFY_OK)
        return rc;
    if (r->type == RESP_ERROR_REPLY)
        rc = error_reply(c, r, NULL);
    else if (r->type != RESP_STATUS)
        rc = conn_failed(c, cachify_impl_set_err(c, CACHIFY_ERR_PROTO,
                                                 "unexpected reply to PING"));
    resp_reply_free(r);
    return rc;
}
