/* client/async_etcd.c - the "etcd://" backend of the async client:
 * client/etcd.c on the handle's own event_base.
 *
 * Owns: the hand-over between a request (struct areq) and an etcd call:
 * starting it, and turning its end into the request's result on the done
 * queue (async.c), which runs the callback.  Nothing here blocks but the
 * close, which revokes the handle's SESSION leases (etcd.h).  Does not
 * own: how calls map onto etcd (etcd.c), the callbacks (async.c).
 */
#include "client/async_internal.h"

#include "client/etcd.h"

int aetcd_open(struct cachify_async *ac)
{
    ac->etcd = etcd_new(ac->base, &ac->url, ac->io_timeout_ms);
    return ac->etcd ? CACHIFY_OK : CACHIFY_ERR_NOMEM;
}

static void call_done(void *arg, int status, long long value, const char *msg)
{
    struct areq *r = arg;

    if (status == CACHIFY_LOCKED || status == CACHIFY_TIMEOUT ||
        status == CACHIFY_FULL)
        async_finish_locked(r, status);
    else if (r->op == WIRE_ACQUIRE || r->op == WIRE_POOL_ACQUIRE)
        async_finish_token(r, status, status == CACHIFY_OK ? (uint64_t)value
                                                           : 0,
                           status == CACHIFY_OK ? NULL : msg);
    else
        async_finish(r, status, value, status == CACHIFY_OK ? NULL : "%s",
                     msg);
}

int aetcd_submit(struct cachify_async *ac, struct areq *r)
{
    return etcd_start(ac->etcd, r->op, r->key, r->keylen, &r->lock,
                      r->max_size, r->token,
                      r->ms, call_done, r);
}

static void orphan(void *arg, void *ctx)
{
    struct areq *r = arg;
    struct areq ***tail = ctx;

    r->next = NULL;
    **tail = r;
    *tail = &r->next;
}

void aetcd_shutdown(struct cachify_async *ac, struct areq ***tail)
{
    etcd_free(ac->etcd, orphan, tail);
    ac->etcd = NULL;
}
