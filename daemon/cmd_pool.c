/* daemon/cmd_pool.c - the pool commands (see cmd_pool.h).
 *
 * Owns: POOL_ACQUIRE, POOL_RELEASE, POOL_SIZE and POOL_EXTEND, each reply
 * a pool request can get (the late ones come through cmd_lock_events), and
 * the -WRONGTYPE guard of the lock and Redis commands.  Does not own: pool
 * semantics (engine/lock_pool.c), option syntax shared with ACQUIRE
 * (cmd_lock.c), dispatch (commands.c).
 */
#include "daemon/cmd_pool.h"

#include <stdio.h>

#include "daemon/args.h"
#include "daemon/cmd_lock.h"
#include "daemon/conn.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "engine/lock_pool.h"

/* -WRONGTYPE for a pool command that names a lock (or a Redis value). */
static void reply_not_a_pool(struct conn *c)
{
    reply_error(c, "WRONGTYPE", "Operation against a lock key: POOL_* "
                "commands need a pool key or a free one");
}

void cmd_reply_pool_full(struct conn *c, const char *code, const char *key,
                         size_t keylen)
{
    reply_error_quoted(c, code, "", key, keylen, " pool is full");
}

int cmd_check_not_pool(struct conn *c, const struct proto_request *req,
                       size_t first, size_t last)
{
    struct locktable *t = c->srv->locks;
    struct lock_stats ls;
    locktable_stats(t, &ls);
    if (ls.pools == 0)
        return 0;
    for (size_t i = first; i <= last && i < req->argc; i++) {
        if (locktable_key_kind(t, req->argv[i], req->argvlen[i]) ==
            LOCK_KIND_POOL) {
            reply_error(c, "WRONGTYPE", "%s", WRONGTYPE_POOL_MESSAGE);
            return -1;
        }
    }
    return 0;
}

/* Parses max_size (1..LOCK_POOL_MAX_SIZE): 0, or -1 after replying. */
static int parse_max_size(struct conn *c, const char *arg, size_t len,
                          uint32_t *max)
{
    unsigned long long v;
    if (parse_uint_arg(arg, len, LOCK_POOL_MAX_SIZE, &v) == 0 && v > 0) {
        *max = (uint32_t)v;
        return 0;
    }
    char after[64];
    snprintf(after, sizeof(after), "': expected a slot count (1..%u)",
             LOCK_POOL_MAX_SIZE);
    reply_error_arg(c, "invalid max_size '", arg, len, after);
    return -1;
}

void cmd_pool_acquire(struct conn *c, const struct proto_request *req)
{
    struct acquire_options o;
    uint32_t max;
    if (arg_check_key(c, req->argv[1], req->argvlen[1]) != 0 ||
        parse_max_size(c, req->argv[2], req->argvlen[2], &max) != 0 ||
        cmd_parse_acquire_options(c, req, 3, "POOL_ACQUIRE", &o) != 0)
        return;
    const char *key = req->argv[1];
    size_t keylen = req->argvlen[1];
    struct lock_request rq;
    cmd_begin_acquire(c, req, &o, &rq);
    c->wait_pool = rq.wait;
    uint64_t token = 0;
    enum lock_result r = locktable_pool_acquire(c->srv->locks, &rq, max,
                                                &token);
    if (r != LOCK_QUEUED && rq.wait) {
        c->wait_pool = 0;
        conn_end_wait(c);
    }
    switch (r) {
    case LOCK_GRANTED:
        reply_int(c, (long long)token);
        break;
    case LOCK_QUEUED:
        break; /* cmd_lock_events replies later */
    case LOCK_BUSY:
        cmd_reply_pool_full(c, "FULL", key, keylen);
        break;
    case LOCK_WRONGTYPE:
        reply_not_a_pool(c);
        break;
    case LOCK_POOL_SIZE:
        reply_error(c, "WRONGSIZE", "the pool has max_size %llu, not %lu: "
                    "a pool keeps its size while a slot is held or "
                    "requested", (unsigned long long)token,
                    (unsigned long)max);
        break;
    default:
        cmd_reply_refusal(c, r);
        break;
    }
}

void cmd_pool_release(struct conn *c, const struct proto_request *req)
{
    uint64_t token = 0;
    if (arg_check_key(c, req->argv[1], req->argvlen[1]) != 0)
        return;
    if (req->argc == 3 &&
        cmd_parse_token(c, req->argv[2], req->argvlen[2], &token) != 0)
        return;
    int64_t n = locktable_pool_release(c->srv->locks, req->argv[1],
                                       req->argvlen[1], token);
    if (n < 0)
        reply_not_a_pool(c);
    else
        reply_int(c, (long long)n);
}

void cmd_pool_size(struct conn *c, const struct proto_request *req)
{
    uint32_t max;
    if (arg_check_key(c, req->argv[1], req->argvlen[1]) != 0)
        return;
    int64_t n = locktable_pool_size(c->srv->locks, req->argv[1],
                                    req->argvlen[1], &max);
    if (n < 0)
        reply_not_a_pool(c);
    else
        reply_int(c, (long long)n);
}

void cmd_pool_extend(struct conn *c, const struct proto_request *req)
{
    uint64_t token;
    unsigned long long ms;
    if (arg_check_key(c, req->argv[1], req->argvlen[1]) != 0 ||
        cmd_parse_token(c, req->argv[2], req->argvlen[2], &token) != 0 ||
        parse_ms_arg(c, "POOL_EXTEND ms", req->argv[3], req->argvlen[3], 1,
                     cmd_ttl_bound(c), 0, &ms) != 0)
        return;
    int r = locktable_pool_extend(c->srv->locks, req->argv[1],
                                  req->argvlen[1], token, ms * 1000);
    switch (r) {
    case -1:
        reply_error(c, "ERR", NOT_DURABLE_MESSAGE);
        break;
    case -2:
        reply_not_a_pool(c);
        break;
    default:
        reply_int(c, r);
        break;
    }
}
