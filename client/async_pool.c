/* client/async_pool.c - pools in the async API (cachify_async_pool_*).
 *
 * Owns: checking a pool call's arguments and making its request.  Does not
 * own: sending it and reading the reply (async_net.c, which gives a waiting
 * or SESSION slot a connection of its own as it does a lock), the mem:
 * backend (async_mem.c), callbacks and the handle (async.c), the protocol
 * (wire.c).
 */
#include <stdlib.h>

#include "client/async_internal.h"
#include "client/cachify.h"
#include "client/wire.h"

int cachify_async_pool_acquire(struct cachify_async *ac, const char *key,
                               unsigned max_size,
                               const struct cachify_lock_opts *opts,
                               cachify_token_cb cb, void *arg)
{
    struct wire_lock lock;
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc == CACHIFY_OK)
        rc = wire_check_max_size(max_size, NULL, 0);
    if (rc == CACHIFY_OK)
        rc = wire_lock_opts(opts, ac->default_exp_ms, &lock, NULL, 0);
    if (rc != CACHIFY_OK)
        return rc;
    r = async_req_new(ac, WIRE_POOL_ACQUIRE, key);
    if (r == NULL)
        return CACHIFY_ERR_NOMEM;
    r->tcb = cb;
    r->arg = arg;
    r->lock = lock;
    r->max_size = max_size;
    return async_submit(ac, r);
}

/* The value calls: POOL_RELEASE with or without a token, POOL_SIZE,
 * POOL_EXTEND. */
static int value_call(struct cachify_async *ac, enum wire_op op,
                      const char *key, uint64_t token, long long ms,
                      cachify_value_cb cb, void *arg)
{
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc == CACHIFY_OK && op == WIRE_POOL_RELEASE)
        rc = wire_check_release(token, NULL, 0);
    if (rc == CACHIFY_OK && op == WIRE_POOL_EXTEND)
        rc = wire_check_extend(token, ms, NULL, 0);
    if (rc != CACHIFY_OK)
        return rc;
    r = async_req_new(ac, op, key);
    if (r == NULL)
        return CACHIFY_ERR_NOMEM;
    r->vcb = cb;
    r->arg = arg;
    r->token = token;
    r->ms = ms;
    return async_submit(ac, r);
}

int cachify_async_pool_release(struct cachify_async *ac, const char *key,
                               uint64_t token, cachify_value_cb cb,
                               void *arg)
{
    return value_call(ac, WIRE_POOL_RELEASE, key, token, 0, cb, arg);
}

int cachify_async_pool_force_release(struct cachify_async *ac,
                                     const char *key, cachify_value_cb cb,
                                     void *arg)
{
    return value_call(ac, WIRE_POOL_FORCE, key, 0, 0, cb, arg);
}

int cachify_async_pool_size(struct cachify_async *ac, const char *key,
                            cachify_value_cb cb, void *arg)
{
    return value_call(ac, WIRE_POOL_SIZE, key, 0, 0, cb, arg);
}

int cachify_async_pool_extend(struct cachify_async *ac, const char *key,
                              uint64_t token, long long ms,
                              cachify_value_cb cb, void *arg)
{
    return value_call(ac, WIRE_POOL_EXTEND, key, token, ms, cb, arg);
}
