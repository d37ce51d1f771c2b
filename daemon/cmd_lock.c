/* daemon/cmd_lock.c - the lock commands: ACQUIRE, RELEASE, IS_LOCKED,
 * EXTEND, PTTL, TTL (see cmd_lock.h).
 *
 * Owns: argument syntax and the mapping of lock engine results to replies,
 * for ACQUIRE both the immediate ones and the late ones of a wait (granted:
 * the token; timed out: -TIMEOUT), so every answer ACQUIRE can get is read
 * in this one file.  Does not own: lock semantics (locktable.c), dispatch
 * (commands.c), or the connection's waiting state (conn.c).
 * Times on the wire are milliseconds; the engine counts microseconds.
 */
#include "daemon/cmd_lock.h"

#include <stdio.h>

#include "daemon/cmd_pool.h"
#include "engine/clock.h"

#include "daemon/args.h"
#include "daemon/conn.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "proto/limits.h"

/* Replies -ERR/-LIMIT and returns -1 when the key is empty or too long. */
static int check_key(struct conn *c, const struct proto_request *req)
{
    return arg_check_key(c, req->argv[1], req->argvlen[1]);
}

void cmd_reply_refusal(struct conn *c, enum lock_result r)
{
    switch (r) {
    case LOCK_LIMIT_LOCKS:
        reply_error(c, "LIMIT", "max_locks reached (%lld)",
                    c->srv->config->max_locks);
        break;
    case LOCK_LIMIT_WAITERS:
        reply_error(c, "LIMIT", "max_waiters reached for this key (%lld)",
                    c->srv->config->max_waiters);
        break;
    case LOCK_LIMIT_MEMORY:
        reply_error(c, "LIMIT", "maxmemory reached (%lld bytes of keys and "
                    "values); nothing is evicted", c->srv->config->maxmemory);
        break;
    case LOCK_NOT_DURABLE:
        reply_error(c, "ERR", NOT_DURABLE_MESSAGE);
        break;
    case LOCK_WRONGTYPE:
        reply_error(c, "WRONGTYPE", "%s", WRONGTYPE_POOL_MESSAGE);
        break;
    default:
        reply_error(c, "ERR", "out of memory");
        break;
    }
}

unsigned long long cmd_ttl_bound(const struct conn *c)
{
    long long max = c->srv->config->max_ttl_ms;
    return max > 0 ? (unsigned long long)max : PROTO_MS_MAX;
}

int cmd_parse_token(struct conn *c, const char *arg, size_t len,
                    uint64_t *token)
{
    unsigned long long v;
    if (parse_uint_arg(arg, len, PROTO_TOKEN_MAX, &v) == 0 && v > 0) {
        *token = v;
        return 0;
    }
    reply_error_arg(c, "invalid token '", arg, len,
                    "': expected a positive integer");
    return -1;
}

/* "-<code> <key> is already locked!": the answer of an ACQUIRE that found
 * key held, at once (-LOCKED) or at the end of its wait (-TIMEOUT). */
static void reply_already_locked(struct conn *c, const char *code,
                                 const char *key, size_t keylen)
{
    reply_error_quoted(c, code, "", key, keylen, " is already locked!");
}

void cmd_begin_acquire(struct conn *c, const struct proto_request *req,
                       const struct acquire_options *o,
                       struct lock_request *rq)
{
    *rq = (struct lock_request){
        .key = req->argv[1],
        .keylen = req->argvlen[1],
        .ttl_us = o->ttl_ms * 1000,
        .wait = o->wait != 0,
        .wait_us = o->wait == 1 ? o->wait_ms * 1000 : 0,
        .session_lock = o->session,
        .session = &c->session,
        .ctx = c,
    };
    /* Waiting before the engine can queue us: a grant may come from inside
     * the call. */
    if (rq->wait) {
        conn_begin_wait(c);
        c->wait_started_us = clock_mono_us(NULL);
    }
}

int cmd_parse_acquire_options(struct conn *c,
                              const struct proto_request *req, size_t first,
                              const char *cmd, struct acquire_options *o)
{
    int seen_ttl = 0, seen_wait = 0;
    o->ttl_ms = (unsigned long long)c->srv->config->default_ttl_ms;
    o->wait_ms = 0;
    o->wait = 0;
    o->session = 0;
    for (size_t i = first; i < req->argc; i++) {
        const char *opt = req->argv[i];
        size_t optlen = req->argvlen[i];
        int is_ttl = arg_is(opt, optlen, "TTL");
        int is_wait = arg_is(opt, optlen, "WAIT");
        if (arg_is(opt, optlen, "SESSION")) {
            if (o->session) {
                reply_error(c, "ERR", "option 'SESSION' given twice");
                return -1;
            }
            o->session = 1;
            continue;
        }
        if (!is_ttl && !is_wait) {
            char after[48];
            snprintf(after, sizeof(after), "' for '%s'", cmd);
            reply_error_arg(c, "unknown option '", opt, optlen, after);
            return -1;
        }
        const char *name = is_ttl ? "TTL" : "WAIT";
        if ((is_ttl && seen_ttl) || (is_wait && seen_wait)) {
            reply_error(c, "ERR", "option '%s' given twice", name);
            return -1;
        }
        if (i + 1 >= req->argc) {
            reply_error(c, "ERR", "option '%s' needs a value", name);
            return -1;
        }
        const char *val = req->argv[++i];
        size_t vallen = req->argvlen[i];
        int forever = arg_is(val, vallen, "FOREVER");
        if (is_ttl) {
            seen_ttl = 1;
            if (forever && c->srv->config->max_ttl_ms > 0) {
                reply_error(c, "ERR", "TTL FOREVER is not allowed: "
                            "max_ttl_ms is %lld", c->srv->config->max_ttl_ms);
                return -1;
            }
            if (forever)
                o->ttl_ms = 0;
            else if (parse_ms_arg(c, "TTL", val, vallen, 1, cmd_ttl_bound(c),
                                  c->srv->config->max_ttl_ms == 0,
                                  &o->ttl_ms) != 0)
                return -1;
        } else {
            seen_wait = 1;
            if (forever)
                o->wait = 2;
            else if (parse_ms_arg(c, "WAIT", val, vallen, 0, PROTO_MS_MAX,
                                  1, &o->wait_ms) != 0)
                return -1;
            else
                o->wait = o->wait_ms > 0;
        }
    }
    return 0;
}

void cmd_acquire(struct conn *c, const struct proto_request *req)
{
    struct acquire_options o;
    if (check_key(c, req) != 0 ||
        cmd_parse_acquire_options(c, req, 2, "ACQUIRE", &o) != 0)
        return;
    const char *key = req->argv[1];
    size_t keylen = req->argvlen[1];
    struct lock_request rq;
    cmd_begin_acquire(c, req, &o, &rq);
    uint64_t token = 0;
    enum lock_result r = locktable_acquire(c->srv->locks, &rq, &token);
    if (r != LOCK_QUEUED && rq.wait)
        conn_end_wait(c);
    switch (r) {
    case LOCK_GRANTED:
        reply_int(c, (long long)token);
        break;
    case LOCK_QUEUED:
        break; /* acquire_granted or acquire_timed_out replies later */
    case LOCK_BUSY:
        reply_already_locked(c, "LOCKED", key, keylen);
        break;
    default:
        cmd_reply_refusal(c, r);
        break;
    }
}

/* The end of a queued ACQUIRE, reported by the engine from inside the call
 * that caused it (a RELEASE, a lazy expiry, the expiry timer).  Nothing
 * else of c's has run since its ACQUIRE (conn.c executes nothing behind a
 * wait), so this reply is next in order; conn_wait_done then lets the
 * requests behind it run, from the loop rather than from inside the
 * engine. */
/* Both ends of a queued wait are counted in the wait_time histogram. */
static void observe_wait(struct conn *c)
{
    uint64_t now = clock_mono_us(NULL);
    wait_hist_observe(&c->srv->stats.wait_time,
                      now > c->wait_started_us ? now - c->wait_started_us : 0);
}

static void acquire_granted(void *ctx, uint64_t token, void *arg)
{
    struct conn *c = ctx;
    (void)arg;
    observe_wait(c);
    reply_int(c, (long long)token);
    c->wait_pool = 0;
    conn_wait_done(c);
}

static void acquire_timed_out(void *ctx, const char *key, size_t keylen,
                              void *arg)
{
    struct conn *c = ctx;
    (void)arg;
    observe_wait(c);
    if (c->wait_pool)
        cmd_reply_pool_full(c, "TIMEOUT", key, keylen);
    else
        reply_already_locked(c, "TIMEOUT", key, keylen);
    c->wait_pool = 0;
    conn_wait_done(c);
}

const struct lock_events cmd_lock_events = {
    acquire_granted, acquire_timed_out, NULL,
};

void cmd_release(struct conn *c, const struct proto_request *req)
{
    uint64_t token = 0;
    if (check_key(c, req) != 0)
        return;
    if (req->argc == 3 &&
        cmd_parse_token(c, req->argv[2], req->argvlen[2], &token) != 0)
        return;
    reply_int(c, locktable_release(c->srv->locks, req->argv[1],
                                   req->argvlen[1], token));
}

void cmd_is_locked(struct conn *c, const struct proto_request *req)
{
    if (check_key(c, req) != 0)
        return;
    reply_int(c, locktable_is_locked(c->srv->locks, req->argv[1],
                                     req->argvlen[1]));
}

void cmd_extend(struct conn *c, const struct proto_request *req)
{
    uint64_t token;
    unsigned long long ms;
    if (check_key(c, req) != 0 ||
        cmd_parse_token(c, req->argv[2], req->argvlen[2], &token) != 0 ||
        parse_ms_arg(c, "EXTEND ms", req->argv[3], req->argvlen[3], 1,
                     cmd_ttl_bound(c), 0, &ms) != 0)
        return;
    int extended = locktable_extend(c->srv->locks, req->argv[1],
                                    req->argvlen[1], token, ms * 1000);
    if (extended < 0)
        reply_error(c, "ERR", NOT_DURABLE_MESSAGE);
    else
        reply_int(c, extended);
}

/* Microseconds left on key's lock, -1 no expiry, -2 not held. */
static int64_t pttl_us(struct conn *c, const struct proto_request *req)
{
    return locktable_pttl_us(c->srv->locks, req->argv[1], req->argvlen[1]);
}

/* PTTL is rounded up, so a held lock never shows 0; TTL is rounded to the
 * nearest second from the exact time left (rounding the rounded PTTL again
 * would be off near x.5 s). */
void cmd_pttl(struct conn *c, const struct proto_request *req)
{
    if (check_key(c, req) != 0)
        return;
    int64_t us = pttl_us(c, req);
    reply_int(c, us < 0 ? us : (us + 999) / 1000);
}

void cmd_ttl(struct conn *c, const struct proto_request *req)
{
    if (check_key(c, req) != 0)
        return;
    int64_t us = pttl_us(c, req);
    reply_int(c, us < 0 ? us : (us + 500000) / 1000000);
}
