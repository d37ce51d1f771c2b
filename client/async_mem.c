/* client/async_mem.c - the "mem:" backend of the async client: the embedded
 * store (client/embedded.h) driven from the handle's event loop.
 *
 * Owns: the handle's mem_session, the list of its waits queued in the
 * store, and the hand-over of their completions to the loop thread.
 * Everything but a queued wait finishes at once and goes to the done queue
 * (async.c), whose event runs the callback later, never inside the call.
 * A queued wait finishes in another thread (the store's timer thread, or
 * whichever thread released the lock, possibly this one) with the store's
 * mutex held.  So wait_done() only appends the request to the handle's
 * mq list under mq_lock and writes the handle's eventfd; wake_cb, an event
 * on that eventfd in the handle's base, moves the finished waits to the
 * done queue on the loop thread.  This needs no libevent thread support
 * (evthread_use_pthreads) from the caller.  Lock order: the store mutex,
 * then mq_lock; the loop thread never calls the store holding mq_lock.
 * Does not own: the store itself (embedded.c), the callbacks (async.c).
 */
#include "client/async_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "client/embedded.h"

/* Finishes a release or extend with mem's result v: 1/0, or
 * CACHIFY_ERR_TYPE on a pool's key, in cachifyd's words. */
static void finish_typed(struct areq *r, int v)
{
    if (v == CACHIFY_ERR_TYPE)
        async_finish(r, v, 0, "%s", WIRE_NOT_A_LOCK);
    else
        async_finish(r, CACHIFY_OK, v, NULL);
}

static void finish_acquire(struct areq *r, int status, uint64_t token)
{
    switch (status) {
    case CACHIFY_OK:
        async_finish_token(r, CACHIFY_OK, token, NULL);
        break;
    case CACHIFY_LOCKED:
    case CACHIFY_TIMEOUT:
    case CACHIFY_FULL:
        async_finish_locked(r, status);
        break;
    case CACHIFY_ERR_TYPE:
        async_finish(r, status, 0, "%s: a lock, or a pool of another "
                     "max_size", r->key + r->ac->prefixlen);
        break;
    case CACHIFY_ERR_NOMEM:
        async_finish(r, status, 0, "out of memory");
        break;
    default:
        async_finish(r, status, 0, "the embedded store refused: too many "
                                   "locks or waiters");
        break;
    }
}

/* A queued wait finished.  Any thread, store mutex held: only hand it
 * over. */
static void wait_done(void *arg, int status, uint64_t token)
{
    struct areq *r = arg;
    struct cachify_async *ac = r->ac;
    uint64_t one = 1;
    ssize_t w;

    r->status = status;
    r->result_token = token;
    r->mnext = NULL;
    pthread_mutex_lock(&ac->mq_lock);
    if (ac->mq_tail)
        ac->mq_tail->mnext = r;
    else
        ac->mq_head = r;
    ac->mq_tail = r;
    pthread_mutex_unlock(&ac->mq_lock);
    /* Cannot fail: an eventfd counter does not fill up at one write per
     * wait, and the loop's read resets it. */
    w = write(ac->wake_fd, &one, sizeof one);
    (void)w;
}

static void waits_unlink(struct cachify_async *ac, struct areq *r)
{
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        ac->waits = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    r->wprev = r->wnext = NULL;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct cachify_async *ac = arg;
    struct areq *list;
    uint64_t count;
    ssize_t n;

    (void)what;
    n = read(fd, &count, sizeof count); /* resets the counter */
    (void)n;
    pthread_mutex_lock(&ac->mq_lock);
    list = ac->mq_head;
    ac->mq_head = ac->mq_tail = NULL;
    pthread_mutex_unlock(&ac->mq_lock);
    while (list != NULL) {
        struct areq *r = list;

        list = r->mnext;
        waits_unlink(ac, r);
        finish_acquire(r, r->status, r->result_token);
    }
    async_deliver(ac);
}

int amem_open(struct cachify_async *ac)
{
    if (pthread_mutex_init(&ac->mq_lock, NULL) != 0)
        return CACHIFY_ERR_NOMEM;
    ac->mq_init = 1;
    ac->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ac->wake_fd < 0)
        return CACHIFY_ERR_IO;
    ac->wake_ev = event_new(ac->base, ac->wake_fd, EV_READ | EV_PERSIST,
                            wake_cb, ac);
    if (ac->wake_ev == NULL || event_add(ac->wake_ev, NULL) != 0)
        return CACHIFY_ERR_NOMEM;
    ac->ms = mem_session_new();
    return ac->ms ? CACHIFY_OK : CACHIFY_ERR_NOMEM;
}

static uint64_t ms_to_us(long long ms)
{
    /* Longer than the engine can count is as good as no expiry. */
    if (ms <= 0 || ms > (long long)(UINT64_MAX / 2000))
        return 0;
    return (uint64_t)ms * 1000u;
}

int amem_submit(struct cachify_async *ac, struct areq *r)
{
    uint64_t token = 0;
    int64_t us, pool_value;
    int rc;

    switch (r->op) {
    case WIRE_ACQUIRE:
    case WIRE_POOL_ACQUIRE:
        rc = mem_pool_acquire_async(ac->ms, r->key, r->keylen,
                                    r->op == WIRE_POOL_ACQUIRE ? r->max_size
                                                               : 0,
                                    ms_to_us(r->lock.ttl_ms),
                                    r->lock.wait_ms, r->lock.session,
                                    wait_done, r, &token);
        if (rc == 1) {
            /* Queued.  wait_done may already run in another thread, but
             * it does not touch the waits list, and wake_cb (which does)
             * only runs on this thread after we return. */
            r->wnext = ac->waits;
            if (ac->waits)
                ac->waits->wprev = r;
            ac->waits = r;
            return CACHIFY_OK;
        }
        if (rc == CACHIFY_ERR_NOMEM)
            return rc; /* nothing happened: the caller is told at once */
        finish_acquire(r, rc, token);
        return CACHIFY_OK;
    case WIRE_RELEASE:
        finish_typed(r, mem_release(ac->ms, r->key, r->keylen, r->token));
        return CACHIFY_OK;
    case WIRE_FORCE:
        finish_typed(r, mem_release(ac->ms, r->key, r->keylen, 0));
        return CACHIFY_OK;
    case WIRE_IS_LOCKED:
        async_finish(r, CACHIFY_OK, mem_is_locked(ac->ms, r->key, r->keylen),
                     NULL);
        return CACHIFY_OK;
    case WIRE_EXTEND:
        finish_typed(r, mem_extend(ac->ms, r->key, r->keylen, r->token,
                                   ms_to_us(r->ms)));
        return CACHIFY_OK;
    case WIRE_PTTL:
        /* Rounded up to whole milliseconds, as cachifyd's PTTL does. */
        us = mem_pttl_us(ac->ms, r->key, r->keylen);
        async_finish(r, CACHIFY_OK, us < 0 ? (long long)us : (us + 999) / 1000,
                     NULL);
        return CACHIFY_OK;
    case WIRE_POOL_RELEASE:
    case WIRE_POOL_FORCE:
    case WIRE_POOL_SIZE:
    case WIRE_POOL_EXTEND:
        pool_value = mem_pool_call(ac->ms,
                                   r->op == WIRE_POOL_SIZE ? MEM_POOL_SIZE
                                   : r->op == WIRE_POOL_EXTEND
                                       ? MEM_POOL_EXTEND
                                       : MEM_POOL_RELEASE,
                                   r->key, r->keylen, r->token,
                                   ms_to_us(r->ms));
        if (pool_value < 0)
            async_finish(r, CACHIFY_ERR_TYPE, 0, "WRONGTYPE Operation "
                         "against a lock key: POOL_* commands need a pool "
                         "key or a free one");
        else
            async_finish(r, CACHIFY_OK, pool_value, NULL);
        return CACHIFY_OK;
    case WIRE_AUTH:
    case WIRE_PING:
        break;
    }
    return CACHIFY_ERR_ARG;
}

void amem_shutdown(struct cachify_async *ac, struct areq ***tail)
{
    /* After mem_session_free no wait_done can run any more (it cancels the
     * session's waits under the store mutex, which wait_done runs under),
     * so the lists below are ours alone. */
    if (ac->ms != NULL) {
        mem_session_free(ac->ms);
        ac->ms = NULL;
    }
    while (ac->waits != NULL) {
        struct areq *r = ac->waits;

        waits_unlink(ac, r);
        r->next = NULL;
        **tail = r;
        *tail = &r->next;
    }
    ac->mq_head = ac->mq_tail = NULL;
    if (ac->wake_ev != NULL) {
        event_free(ac->wake_ev);
        ac->wake_ev = NULL;
    }
    if (ac->wake_fd >= 0) {
        close(ac->wake_fd);
        ac->wake_fd = -1;
    }
    if (ac->mq_init) {
        pthread_mutex_destroy(&ac->mq_lock);
        ac->mq_init = 0;
    }
}
