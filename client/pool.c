/* client/pool.c - pools in the sync API: cachify_pool_* calls, the pool
 * guard, and the runtime of the pooled decorators (cachify.h, "pools";
 * the macros in cachify_decorate.h).
 *
 * Owns: checking a pool call's arguments, running it on the handle's
 * backend (cachifyd through wire.c and sync.c's connection, or the mem:
 * table through embedded.c), and wording its results so that every backend
 * says the same ("<key> pool is full").  Does not own: the connection,
 * the key prefix and the message buffer (sync.c, reached through
 * sync_internal.h), the guard's acquire, which the lock guard shares
 * (scoped.c), the protocol (wire.c), pool semantics (the engine).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/cachify.h"
#include "client/embedded.h"
#include "client/sync_internal.h"
#include "client/wire.h"

/* A pool's CACHIFY_FULL / CACHIFY_TIMEOUT with its message. */
static int full_err(struct cachify *c, int status, const char *key)
{
    struct wire_result res;

    wire_full(&res, status, key);
    return cachify_impl_result(c, &res);
}

/* mem: answered -1 for a lock key: the message the server's -WRONGTYPE
 * carries, so both backends read alike. */
static int wrong_type(struct cachify *c)
{
    return cachify_impl_set_err(c, CACHIFY_ERR_TYPE, "%s", WIRE_NOT_A_POOL);
}

int cachify_pool_acquire(struct cachify *c, const char *key,
                         unsigned max_size, const struct cachify_lock_opts *opts,
                         uint64_t *token)
{
    struct wire_req q = {.op = WIRE_POOL_ACQUIRE, .max_size = max_size};
    struct cachify_impl_call call;
    long long value = 0;
    int rc = cachify_impl_begin(c, key, &call);

    if (rc != CACHIFY_OK)
        return rc;
    if ((rc = wire_check_max_size(max_size, call.err, call.errcap)) !=
            CACHIFY_OK ||
        (rc = wire_lock_opts(opts, call.default_exp_ms, &q.lock, call.err,
                             call.errcap)) != CACHIFY_OK)
        return rc;
    if (token == NULL)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "token is NULL");
    *token = 0;
    if (call.mem != NULL) {
        rc = mem_pool_acquire_wait(call.mem, call.key, call.keylen, max_size,
                                   (uint64_t)q.lock.ttl_ms * 1000,
                                   q.lock.wait_ms, q.lock.session, token);
        if (rc == CACHIFY_FULL || rc == CACHIFY_TIMEOUT)
            return full_err(c, rc, key);
        if (rc == CACHIFY_ERR_TYPE)
            return cachify_impl_set_err(c, rc, "%s: a lock, or a pool of "
                                        "another max_size", key);
        if (rc == CACHIFY_ERR_NOMEM)
            return cachify_impl_set_err(c, rc, "out of memory");
        if (rc != CACHIFY_OK)
            return cachify_impl_set_err(c, rc, "%s: refused by a limit",
                                        key);
        return rc;
    }
    q.key = call.key;
    q.keylen = call.keylen;
    rc = cachify_impl_command(c, &q, key, &value);
    if (rc == CACHIFY_OK)
        *token = (uint64_t)value; /* > 0: wire.c refuses any other */
    return rc;
}

/* POOL_RELEASE with a token (1/0) or without (a count), POOL_SIZE,
 * POOL_EXTEND: their value, or an error. */
static int pool_call(struct cachify *c, enum wire_op op, const char *key,
                     uint64_t token, long long ms)
{
    struct wire_req q = {.op = op, .token = token, .ms = ms};
    struct cachify_impl_call call;
    long long value = 0;
    int rc = cachify_impl_begin(c, key, &call);

    if (rc != CACHIFY_OK)
        return rc;
    if (op == WIRE_POOL_RELEASE &&
        (rc = wire_check_release(token, call.err, call.errcap)) != CACHIFY_OK)
        return rc;
    if (op == WIRE_POOL_EXTEND &&
        (rc = wire_check_extend(token, ms, call.err, call.errcap)) !=
            CACHIFY_OK)
        return rc;
    if (call.mem != NULL) {
        int64_t r = mem_pool_call(
            call.mem, op == WIRE_POOL_SIZE     ? MEM_POOL_SIZE
                      : op == WIRE_POOL_EXTEND ? MEM_POOL_EXTEND
                                               : MEM_POOL_RELEASE,
            call.key, call.keylen, token, (uint64_t)ms * 1000);
        if (r < 0)
            return wrong_type(c);
        return r > INT_MAX ? INT_MAX : (int)r;
    }
    q.key = call.key;
    q.keylen = call.keylen;
    rc = cachify_impl_command(c, &q, key, &value);
    if (rc != CACHIFY_OK)
        return rc;
    return value > INT_MAX ? INT_MAX : (int)value;
}

int cachify_pool_release(struct cachify *c, const char *key, uint64_t token)
{
    return pool_call(c, WIRE_POOL_RELEASE, key, token, 0);
}

int cachify_pool_force_release(struct cachify *c, const char *key)
{
    return pool_call(c, WIRE_POOL_FORCE, key, 0, 0);
}

int cachify_pool_size(struct cachify *c, const char *key)
{
    return pool_call(c, WIRE_POOL_SIZE, key, 0, 0);
}

int cachify_pool_extend(struct cachify *c, const char *key, uint64_t token,
                        long long ms)
{
    return pool_call(c, WIRE_POOL_EXTEND, key, token, ms);
}

/* ---- the guard ---- */

struct cachify_pool_guard cachify_pool_guard_acquire(
    struct cachify *c, const char *key, unsigned max_size,
    const struct cachify_lock_opts *opts)
{
    struct cachify_pool_guard g = {c, NULL, 0, CACHIFY_ERR_ARG, NULL};

    if (c != NULL)
        g.status = cachify_impl_guard_acquire(c, key, 1, max_size, opts,
                                              &g.key, &g.token, &g.renewer);
    return g;
}

int cachify_pool_guard_release(struct cachify_pool_guard *g)
{
    int rc = CACHIFY_OK;

    if (g == NULL || g->key == NULL)
        return CACHIFY_OK; /* failed acquire, or released already */
    if (g->status == CACHIFY_OK) {
        /* Renewals end first; a failed one means the slot may have
         * lapsed meanwhile: CACHIFY_LOST even if the release finds it. */
        int renewed = cachify_renewer_stop(g->renewer);

        g->renewer = NULL;
        rc = cachify_pool_release(g->client, g->key, g->token);
        if (rc == 1 && renewed == CACHIFY_LOST)
            rc = 0;
        if (rc == 0)
            rc = cachify_impl_set_err(g->client, CACHIFY_LOST,
                                      "%s: slot %llu%s", g->key,
                                      (unsigned long long)g->token,
                                      WIRE_LOST_TAIL);
        else if (rc == 1)
            rc = CACHIFY_OK;
    }
    free(g->key);
    g->key = NULL;
    g->token = 0;
    return rc;
}

/* ---- the decorators' runtime ---- */

/* Keys of decorated calls up to this size are formatted on the stack (no
 * op is added: these pools are not py-cachify's stored ones). */
#define KEY_STACK 256

int cachify_impl_pool_fmt(struct cachify_pool_guard *g, struct cachify *c,
                          unsigned max_size,
                          const struct cachify_lock_opts *opts,
                          const char *fmt, ...)
{
    va_list ap;

    g->client = c;
    va_start(ap, fmt);
    g->status = cachify_impl_guard_fmt(c, 1, max_size, opts, &g->key,
                                       &g->token, &g->renewer, NULL, fmt, ap);
    va_end(ap);
    return g->status;
}

int cachify_impl_pool_size_fmt(struct cachify *c, const char *fmt, ...)
{
    char buf[KEY_STACK], *key;
    va_list ap;
    int rc;

    if (c == NULL)
        return CACHIFY_ERR_ARG;
    va_start(ap, fmt);
    rc = cachify_impl_format_key(c, buf, sizeof buf, &key, NULL, fmt, ap);
    va_end(ap);
    if (rc != CACHIFY_OK)
        return rc;
    rc = cachify_pool_size(c, key);
    if (key != buf)
        free(key);
    return rc;
}
