/* daemon/cmd_keys.c - the Redis key commands (see cmd_keys.h).
 *
 * One keyspace: every command here works on the lock engine's entries.
 * SET NX is an ACQUIRE that stores a value; plain SET gives the key a new
 * holder (locktable_set); DEL is a forced RELEASE and hands the key to its
 * first waiter; EXPIRE is an EXTEND by the holder's token; GET of a lock
 * taken with ACQUIRE answers its token.  Replies and error texts are
 * Redis's own where a client might match them ("syntax error", "value is
 * not an integer or out of range", "invalid expire time in 'set'
 * command", the OOM line), the protocol's elsewhere.
 *
 * While the daemon recovers from a crash, a key nobody holds here may be
 * held by a lock from before it: the commands that would have to say
 * "free" answer -LOCKED instead (as ACQUIRE would), the others answer as
 * RELEASE and EXTEND do (nothing held by that token here).
 */
#include "daemon/cmd_keys.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "daemon/args.h"
#include "daemon/cmd_lock.h"
#include "daemon/conn.h"
#include "daemon/reply.h"
#include "daemon/server.h"
#include "engine/lock_pool.h"
#include "proto/limits.h"

#define ERR_SYNTAX "syntax error"
#define ERR_NOT_INT "value is not an integer or out of range"
#define OOM_MESSAGE "command not allowed when used memory > 'maxmemory'."

static struct locktable *locks(struct conn *c)
{
    return c->srv->locks;
}

static long long now_ms(struct conn *c)
{
    const struct lock_clock *clk = c->srv->clock;
    return (long long)(clk->wall_us(clk->arg) / 1000);
}

/* Replies -LIMIT and returns -1 when a value is over max_value_len. */
static int check_value(struct conn *c, size_t len)
{
    long long max = c->srv->config->max_value_len;
    if ((long long)len <= max)
        return 0;
    reply_error(c, "LIMIT", "value is longer than max_value_len (%lld bytes)",
                max);
    return -1;
}

/* Replies -ERR and returns -1 when max_ttl_ms forbids a lifetime of ms
 * (0 = no expiry). */
static int check_ttl_bound(struct conn *c, long long ms)
{
    long long max = c->srv->config->max_ttl_ms;
    if (max == 0 || (ms > 0 && ms <= max))
        return 0;
    if (ms == 0)
        reply_error(c, "ERR", "a key without expiry is not allowed: "
                    "max_ttl_ms is %lld", max);
    else
        reply_error(c, "ERR", "expire time is longer than max_ttl_ms "
                    "(%lld ms)", max);
    return -1;
}

/* The answer for a key that reads as held while recovering. */
static void reply_recovering(struct conn *c, const char *key, size_t keylen)
{
    reply_error_quoted(c, "LOCKED", "", key, keylen,
                       " may still be held by a lock granted before the "
                       "restart (recovering)");
}

static void reply_refused(struct conn *c, enum lock_result r)
{
    if (r == LOCK_LIMIT_MEMORY)
        reply_error(c, "OOM", OOM_MESSAGE);
    else
        cmd_reply_refusal(c, r);
}

/* What GET shows of a held key: its value, or the token of a holder that
 * stored none, as decimal text. */
static void reply_held(struct conn *c, uint64_t token, const char *value,
                       size_t vlen)
{
    if (value) {
        reply_bulk(c, value, vlen);
        return;
    }
    char digits[24];
    int n = snprintf(digits, sizeof(digits), "%" PRIu64, token);
    reply_bulk(c, digits, (size_t)n);
}

/* ---- SET and its variants ---- */

struct set_args {
    const char *key, *value;
    size_t keylen, vlen;
    int nx, xx, get, keepttl;
    long long ms;   /* lifetime; 0 = none */
    int expired;    /* EXAT/PXAT in the past: the key ends at once */
};

/* A copy of what GET showed of key before a SET ... GET changed it. */
struct old_value {
    int held;
    char *bytes;    /* value or token digits; NULL when not held */
    size_t len;
};

/* Parses an expiry of `unit_ms` per unit, absolute (a Unix time) or not,
 * into a->ms / a->expired.  0, or -1 after replying. */
static int parse_expiry(struct conn *c, const char *cmd, const char *arg,
                        size_t len, long long unit_ms, int absolute,
                        struct set_args *a)
{
    long long n;
    if (parse_int_arg(arg, len, &n) != 0) {
        reply_error(c, "ERR", ERR_NOT_INT);
        return -1;
    }
    if (n <= 0 || n > (long long)(PROTO_MS_MAX * 1000ULL) / unit_ms) {
        reply_error(c, "ERR", "invalid expire time in '%s' command", cmd);
        return -1;
    }
    long long ms = n * unit_ms;
    if (absolute) {
        ms -= now_ms(c);
        if (ms <= 0) {
            a->expired = 1;
            return 0;
        }
    }
    if (ms > (long long)PROTO_MS_MAX) {
        reply_error(c, "ERR", "invalid expire time in '%s' command", cmd);
        return -1;
    }
    a->ms = ms;
    return 0;
}

/* SET's options after key and value.  0, or -1 after replying. */
static int parse_set_options(struct conn *c, const struct proto_request *req,
                             struct set_args *a)
{
    int expiry_seen = 0;
    for (size_t i = 3; i < req->argc; i++) {
        const char *opt = req->argv[i];
        size_t len = req->argvlen[i];
        int has_next = i + 1 < req->argc;
        if (arg_is(opt, len, "NX") && !a->xx) {
            a->nx = 1;
        } else if (arg_is(opt, len, "XX") && !a->nx) {
            a->xx = 1;
        } else if (arg_is(opt, len, "GET")) {
            a->get = 1;
        } else if (arg_is(opt, len, "KEEPTTL") && !expiry_seen) {
            a->keepttl = 1;
            expiry_seen = 1;
        } else if (has_next && !expiry_seen &&
                   (arg_is(opt, len, "EX") || arg_is(opt, len, "PX") ||
                    arg_is(opt, len, "EXAT") || arg_is(opt, len, "PXAT"))) {
            int seconds = opt[0] == 'E' || opt[0] == 'e';
            expiry_seen = 1;
            i++;
            if (parse_expiry(c, "set", req->argv[i], req->argvlen[i],
                             seconds ? 1000 : 1, len == 4, a) != 0)
                return -1;
        } else {
            reply_error(c, "ERR", ERR_SYNTAX);
            return -1;
        }
    }
    return 0;
}

/* Keeps what GET shows of a->key in *old (for SET ... GET).  0, or -1
 * after replying (recovering, or out of memory). */
static int save_old(struct conn *c, const struct set_args *a,
                    struct old_value *old)
{
    uint64_t token = 0;
    const char *value = NULL;
    size_t vlen = 0;
    char digits[24];
    int r = locktable_get(locks(c), a->key, a->keylen, &token, &value, &vlen);
    if (r < 0) {
        reply_recovering(c, a->key, a->keylen);
        return -1;
    }
    old->held = r;
    if (!r)
        return 0;
    if (!value) {
        vlen = (size_t)snprintf(digits, sizeof(digits), "%" PRIu64, token);
        value = digits;
    }
    old->bytes = cfy_malloc(vlen ? vlen : 1);
    if (!old->bytes) {
        reply_error(c, "ERR", "out of memory");
        return -1;
    }
    memcpy(old->bytes, value, vlen);
    old->len = vlen;
    return 0;
}

/* An expiry already passed: the key ends (Redis stores it and drops it at
 * once), when NX or XX let the SET happen.  1 when it did. */
static int set_expired(struct conn *c, const struct set_args *a)
{
    if (a->nx)
        return !locktable_is_locked(locks(c), a->key, a->keylen);
    int released = locktable_release(locks(c), a->key, a->keylen, 0);
    return a->xx ? released : 1;
}

/* Does a parsed SET.  Returns 1 set, 0 stopped by NX/XX, -1 after replying
 * an error. */
static int apply_set(struct conn *c, const struct set_args *a)
{
    if (a->expired)
        return set_expired(c, a);
    uint64_t token;
    enum lock_result r;
    if (a->nx) {
        struct lock_request rq = {
            .key = a->key, .keylen = a->keylen,
            .ttl_us = (uint64_t)a->ms * 1000,
            .value = a->value, .vlen = a->vlen,
        };
        r = locktable_acquire(locks(c), &rq, &token);
    } else {
        struct lock_set s = {
            .key = a->key, .keylen = a->keylen,
            .value = a->value, .vlen = a->vlen,
            .ttl_us = (uint64_t)a->ms * 1000,
            .keep_ttl = a->keepttl,
            .when = a->xx ? LOCK_SET_IF_HELD : LOCK_SET_ALWAYS,
        };
        r = locktable_set(locks(c), &s, &token);
    }
    if (r == LOCK_GRANTED)
        return 1;
    if (r == LOCK_BUSY)
        return 0;
    reply_refused(c, r);
    return -1;
}

/* The checks every SET form shares, then the SET and its reply: +OK or
 * nil, or (as_int, SETNX) :1 or :0, or (a->get) what was there before. */
static void run_set(struct conn *c, struct set_args *a, int as_int)
{
    if (arg_check_key(c, a->key, a->keylen) != 0 ||
        check_value(c, a->vlen) != 0 ||
        (!a->keepttl && !a->expired && check_ttl_bound(c, a->ms) != 0))
        return;
    struct old_value old = { 0, NULL, 0 };
    if (a->get && save_old(c, a, &old) != 0)
        return;
    int done = apply_set(c, a);
    if (done >= 0) {
        if (a->get && old.held)
            reply_bulk(c, old.bytes, old.len);
        else if (a->get)
            reply_nil(c);
        else if (as_int)
            reply_int(c, done);
        else if (done)
            reply_status(c, "OK");
        else
            reply_nil(c);
    }
    cfy_free(old.bytes);
}

static void set_args_init(struct set_args *a, const struct proto_request *req,
                          size_t value_at)
{
    memset(a, 0, sizeof(*a));
    a->key = req->argv[1];
    a->keylen = req->argvlen[1];
    a->value = req->argv[value_at];
    a->vlen = req->argvlen[value_at];
}

void cmd_set(struct conn *c, const struct proto_request *req)
{
    struct set_args a;
    set_args_init(&a, req, 2);
    if (parse_set_options(c, req, &a) != 0)
        return;
    run_set(c, &a, 0);
}

void cmd_setnx(struct conn *c, const struct proto_request *req)
{
    struct set_args a;
    set_args_init(&a, req, 2);
    a.nx = 1;
    run_set(c, &a, 1);
}

/* SETEX key seconds value, PSETEX key ms value. */
static void set_with_expiry(struct conn *c, const struct proto_request *req,
                            const char *cmd, long long unit_ms)
{
    struct set_args a;
    set_args_init(&a, req, 3);
    if (parse_expiry(c, cmd, req->argv[2], req->argvlen[2], unit_ms, 0,
                     &a) != 0)
        return;
    run_set(c, &a, 0);
}

void cmd_setex(struct conn *c, const struct proto_request *req)
{
    set_with_expiry(c, req, "setex", 1000);
}

void cmd_psetex(struct conn *c, const struct proto_request *req)
{
    set_with_expiry(c, req, "psetex", 1);
}

/* ---- reading and removing ---- */

/* GET's answer for one key; -1 (nothing written) when it reads as held
 * while recovering. */
static int reply_get(struct conn *c, const char *key, size_t keylen)
{
    uint64_t token = 0;
    const char *value = NULL;
    size_t vlen = 0;
    int r = locktable_get(locks(c), key, keylen, &token, &value, &vlen);
    if (r < 0)
        return -1;
    if (r == 0)
        reply_nil(c);
    else
        reply_held(c, token, value, vlen);
    return 0;
}

void cmd_get(struct conn *c, const struct proto_request *req)
{
    if (arg_check_key(c, req->argv[1], req->argvlen[1]) != 0)
        return;
    if (reply_get(c, req->argv[1], req->argvlen[1]) != 0)
        reply_recovering(c, req->argv[1], req->argvlen[1]);
}

/* Checks every key argument from argv[first] on; 0, or -1 after replying. */
static int check_keys(struct conn *c, const struct proto_request *req,
                      size_t first)
{
    for (size_t i = first; i < req->argc; i++)
        if (arg_check_key(c, req->argv[i], req->argvlen[i]) != 0)
            return -1;
    return 0;
}

void cmd_mget(struct conn *c, const struct proto_request *req)
{
    if (check_keys(c, req, 1) != 0)
        return;
    /* An array cannot carry an error in its middle: while recovering,
     * look first (only then), and answer for the first unknown key. */
    if (locktable_recovering(locks(c))) {
        for (size_t i = 1; i < req->argc; i++) {
            uint64_t token;
            const char *value;
            size_t vlen;
            if (locktable_get(locks(c), req->argv[i], req->argvlen[i], &token,
                              &value, &vlen) < 0) {
                reply_recovering(c, req->argv[i], req->argvlen[i]);
                return;
            }
        }
    }
    reply_array(c, req->argc - 1);
    for (size_t i = 1; i < req->argc; i++)
        reply_get(c, req->argv[i], req->argvlen[i]);
}

void cmd_getdel(struct conn *c, const struct proto_request *req)
{
    const char *key = req->argv[1];
    size_t keylen = req->argvlen[1];
    if (arg_check_key(c, key, keylen) != 0)
        return;
    if (reply_get(c, key, keylen) != 0) {
        reply_recovering(c, key, keylen);
        return;
    }
    locktable_release(locks(c), key, keylen, 0);
}

/* DEL and UNLINK: forced releases, counted. */
void cmd_del(struct conn *c, const struct proto_request *req)
{
    if (check_keys(c, req, 1) != 0)
        return;
    long long removed = 0;
    for (size_t i = 1; i < req->argc; i++)
        removed += locktable_release(locks(c), req->argv[i],
                                     req->argvlen[i], 0);
    reply_int(c, removed);
}

/* Counts a key named twice twice, as Redis does. */
void cmd_exists(struct conn *c, const struct proto_request *req)
{
    if (check_keys(c, req, 1) != 0)
        return;
    long long held = 0;
    for (size_t i = 1; i < req->argc; i++) /* a pool exists as Redis's
                                              * other types do */
        held += locktable_is_locked(locks(c), req->argv[i],
                                    req->argvlen[i]) ||
                locktable_key_kind(locks(c), req->argv[i], req->argvlen[i]) ==
                    LOCK_KIND_POOL;
    reply_int(c, held);
}

/* ---- expiry ---- */

enum expire_when { EXPIRE_ALWAYS, EXPIRE_NX, EXPIRE_XX, EXPIRE_GT, EXPIRE_LT };

/* EXPIRE's condition word(s) after key and time.  0, or -1 after
 * replying. */
static int parse_expire_options(struct conn *c,
                                const struct proto_request *req,
                                enum expire_when *when)
{
    int nx = 0, xx = 0, gt = 0, lt = 0;
    for (size_t i = 3; i < req->argc; i++) {
        const char *opt = req->argv[i];
        size_t len = req->argvlen[i];
        if (arg_is(opt, len, "NX"))
            nx = 1;
        else if (arg_is(opt, len, "XX"))
            xx = 1;
        else if (arg_is(opt, len, "GT"))
            gt = 1;
        else if (arg_is(opt, len, "LT"))
            lt = 1;
        else {
            reply_error_arg(c, "Unsupported option ", opt, len, "");
            return -1;
        }
    }
    if (nx && (xx || gt || lt)) {
        reply_error(c, "ERR", "NX and XX, GT or LT options at the same time "
                    "are not compatible");
        return -1;
    }
    if (gt && lt) {
        reply_error(c, "ERR", "GT and LT options at the same time are not "
                    "compatible");
        return -1;
    }
    *when = nx ? EXPIRE_NX : xx ? EXPIRE_XX : gt ? EXPIRE_GT
          : lt ? EXPIRE_LT : EXPIRE_ALWAYS;
    return 0;
}

/* Whether the condition lets a new lifetime of ms replace the current one
 * (left_us: -1 = none), counting "none" as forever as Redis does. */
static int expire_allowed(enum expire_when when, int64_t left_us,
                          long long ms)
{
    int64_t new_us = ms * 1000;
    switch (when) {
    case EXPIRE_NX: return left_us == -1;
    case EXPIRE_XX: return left_us != -1;
    case EXPIRE_GT: return left_us != -1 && new_us > left_us;
    case EXPIRE_LT: return left_us == -1 || new_us < left_us;
    default: return 1;
    }
}

/* EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: the holder keeps its token; an
 * expiry not in the future ends the hold (a forced release). */
static void expire_key(struct conn *c, const struct proto_request *req,
                       const char *cmd, long long unit_ms, int absolute)
{
    const char *key = req->argv[1];
    size_t keylen = req->argvlen[1];
    long long n;
    enum expire_when when;
    if (arg_check_key(c, key, keylen) != 0)
        return;
    if (parse_int_arg(req->argv[2], req->argvlen[2], &n) != 0) {
        reply_error(c, "ERR", ERR_NOT_INT);
        return;
    }
    if (parse_expire_options(c, req, &when) != 0)
        return;
    /* Far enough from overflow for the arithmetic below; the real bound
     * is on the time left, checked next. */
    long long limit = LLONG_MAX / 4 / unit_ms;
    if (n > limit || n < -limit) {
        reply_error(c, "ERR", "invalid expire time in '%s' command", cmd);
        return;
    }
    long long ms = n * unit_ms - (absolute ? now_ms(c) : 0);
    if (ms > (long long)PROTO_MS_MAX) {
        reply_error(c, "ERR", "invalid expire time in '%s' command", cmd);
        return;
    }
    uint64_t token = locktable_holder_token(locks(c), key, keylen);
    if (!token ||
        !expire_allowed(when, locktable_pttl_us(locks(c), key, keylen), ms)) {
        reply_int(c, 0);
        return;
    }
    if (ms <= 0) {
        reply_int(c, locktable_release(locks(c), key, keylen, token));
        return;
    }
    if (check_ttl_bound(c, ms) != 0)
        return;
    int r = locktable_extend(locks(c), key, keylen, token,
                             (uint64_t)ms * 1000);
    if (r < 0)
        reply_error(c, "ERR", NOT_DURABLE_MESSAGE);
    else
        reply_int(c, r);
}

void cmd_expire(struct conn *c, const struct proto_request *req)
{
    expire_key(c, req, "expire", 1000, 0);
}

void cmd_pexpire(struct conn *c, const struct proto_request *req)
{
    expire_key(c, req, "pexpire", 1, 0);
}

void cmd_expireat(struct conn *c, const struct proto_request *req)
{
    expire_key(c, req, "expireat", 1000, 1);
}

void cmd_pexpireat(struct conn *c, const struct proto_request *req)
{
    expire_key(c, req, "pexpireat", 1, 1);
}

void cmd_persist(struct conn *c, const struct proto_request *req)
{
    const char *key = req->argv[1];
    size_t keylen = req->argvlen[1];
    if (arg_check_key(c, key, keylen) != 0)
        return;
    uint64_t token = locktable_holder_token(locks(c), key, keylen);
    if (!token || locktable_pttl_us(locks(c), key, keylen) == -1) {
        reply_int(c, 0);
        return;
    }
    if (check_ttl_bound(c, 0) != 0)
        return;
    int r = locktable_extend(locks(c), key, keylen, token, 0);
    if (r < 0)
        reply_error(c, "ERR", NOT_DURABLE_MESSAGE);
    else
        reply_int(c, r);
}
