/* client/async_deco.c - the runtime behind CACHIFY_ASYNC_LOCKED_FN and
 * CACHIFY_ASYNC_ONCE_FN (client/cachify_async_decorate.h): one decorated
 * call = format the key, take the lock, run the body, release with the
 * token when the body says it is done, then call the caller's completion.  A once call
 * that finds the key held and does not raise completes with 1 (skipped)
 * instead of CACHIFY_LOCKED.
 *
 * Owns: struct cachify_async_call, the state of one decorated call from its
 * start until its completion callback has run, and the copy of the call's
 * arguments the body receives.  Does not own: locking itself (it only uses
 * the public async calls) or the callback rules (async.c).
 *
 * With opts.renew the call also renews its lock while the body runs,
 * with an async renewer (async_renew.c, made before the acquire so that
 * running out of memory cannot leave a granted lock unrenewed) whose lease
 * counts from when the acquire was sent and whose failures go to the
 * handle's renew callback; a failed renewal makes the call complete with
 * CACHIFY_LOST.  The release is sent from the renewer's stop completion,
 * so after every renewal it sent.
 *
 * The one tie to the handle's insides: while a body runs, its call is on
 * the handle's list, so that closing the handle can detach it
 * (adeco_detach_all).  A body that finishes after its handle closed must
 * not touch the freed handle; its completion then reports
 * CACHIFY_ERR_CLOSED through an event made when the call started, still
 * after cachify_async_call_done returns.
 */
#include "client/async_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

struct cachify_async_call {
    struct cachify_async_call *prev, *next; /* ac->calls while the body runs */
    struct cachify_async *ac;  /* NULL once the handle closed */
    struct event_base *base;
    char *key;                 /* without the handle's prefix */
    uint64_t token;
    void (*run)(struct cachify_async_call *call, void *args);
    void *args;
    void *ctx;
    cachify_done_cb done;
    int skip_on_locked;        /* once without raise_on_locked; a pool
                                  without raise_on_full */
    unsigned max_size;         /* a pool slot's call; 0 for a lock */
    int body_done;             /* cachify_async_call_done was called */
    int status;                /* for a deferred completion */
    char msg[96];
    struct event *done_ev;     /* delivers a completion that cannot go
                                  through a release; made at the start so
                                  running out of memory later cannot force
                                  a completion from inside call_done */
    /* renewal (opts.renew); NULL when not asked, or once stopped */
    struct cachify_async_renewer *renewer;
    long long sent_ms;         /* monotonic ms: the acquire was sent */
    int renew_lost;            /* a renewal failed (callback told) */
};

static void deferred_done_cb(evutil_socket_t fd, short what, void *arg);
static void release_now(struct cachify_async_call *call);

static void call_free(struct cachify_async_call *call)
{
    arenew_discard(call->renewer); /* never begun: the acquire failed */
    if (call->done_ev)
        event_free(call->done_ev);
    free(call->key);
    free(call->args);
    free(call);
}

static void calls_unlink(struct cachify_async_call *call)
{
    struct cachify_async *ac = call->ac;

    if (ac == NULL)
        return;
    if (call->prev)
        call->prev->next = call->next;
    else
        ac->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

void adeco_detach_all(struct cachify_async *ac)
{
    while (ac->calls != NULL) {
        struct cachify_async_call *call = ac->calls;

        calls_unlink(call);
        call->ac = NULL;
        /* Stopped without a word: the body's end reports CLOSED. */
        if (call->renewer != NULL)
            cachify_async_renewer_stop(call->renewer, NULL, NULL);
        call->renewer = NULL;
    }
}

static void released_cb(struct cachify_async *ac, int status, long long value,
                        const char *errstr, void *arg)
{
    struct cachify_async_call *call = arg;
    char *msg = NULL;

    (void)ac;
    if (status >= 0 && call->renew_lost) {
        /* A renewal failed while the body ran: the lock may have lapsed
         * meanwhile even when the release still found it. */
        value = 0;
    }
    if (status >= 0 && value == 0) {
        /* Not held by our token any more: the body ran, but not all of it
         * under the lock.  The message names the key, as "already locked"
         * does; without memory for it, the tail alone still says what. */
        size_t n = strlen(call->key) + sizeof WIRE_LOST_TAIL;

        status = CACHIFY_LOST;
        if ((msg = malloc(n)) != NULL)
            snprintf(msg, n, "%s%s", call->key, WIRE_LOST_TAIL);
        errstr = msg != NULL ? msg : WIRE_LOST_TAIL + 1;
    }
    call->done(status < 0 ? status : CACHIFY_OK, status < 0 ? errstr : "",
               call->ctx);
    free(msg);
    call_free(call);
}

static void acquired_cb(struct cachify_async *ac, int status, uint64_t token,
                        const char *errstr, void *arg)
{
    struct cachify_async_call *call = arg;

    if (status != CACHIFY_OK) {
        /* once: 1 is "skipped", as the sync CACHIFY_ONCE_FN returns; the
         * message still says why. */
        if (call->skip_on_locked &&
            (status == CACHIFY_LOCKED ||
             (call->max_size &&
              (status == CACHIFY_FULL || status == CACHIFY_TIMEOUT))))
            status = 1;
        call->done(status, errstr, call->ctx);
        call_free(call);
        return;
    }
    call->token = token;
    call->ac = ac;
    call->next = ac->calls;
    if (call->next)
        call->next->prev = call;
    ac->calls = call;
    if (call->renewer != NULL) /* the lease may have started as it left */
        arenew_begin(call->renewer, token, call->sent_ms);
    call->run(call, call->args);
}

void cachify_async_set_renew_cb(struct cachify_async *ac, cachify_renew_cb cb,
                                void *arg)
{
    if (ac == NULL)
        return;
    ac->renew_cb = cb;
    ac->renew_arg = arg;
}

/* py-cachify's suffix op (CACHIFY_IMPL_OP_*) when ac has pycachify_keys,
 * else none. */
static const char *key_suffix(const struct cachify_async *ac, const char *op)
{
    return ac->pycachify_keys ? op : NULL;
}

/* Both start functions: format the key from fmt/ap (with op), copy the
 * arguments, acquire with opts; skip_on_locked turns CACHIFY_LOCKED into
 * 1. */
static int vcall_start(struct cachify_async *ac, const char *op,
                       const struct cachify_lock_opts *opts,
                       unsigned max_size,
                       int skip_on_locked, const void *args, size_t argsize,
                       void (*run)(struct cachify_async_call *call,
                                   void *args),
                       void *ctx, cachify_done_cb done, const char *fmt,
                       va_list ap)
{
    struct cachify_async_call *call;
    char *key;
    int rc;

    if (ac == NULL || run == NULL || done == NULL || fmt == NULL)
        return CACHIFY_ERR_ARG;
    if (ac->closing)
        return CACHIFY_ERR_CLOSED;
    /* Always allocated: the call keeps its key until it completes. */
    rc = wire_format_key(NULL, 0, &key, key_suffix(ac, op), NULL, 0, fmt, ap);
    if (rc != CACHIFY_OK)
        return rc;
    call = calloc(1, sizeof *call);
    if (call == NULL || (call->args = malloc(argsize ? argsize : 1)) == NULL) {
        free(call);
        free(key);
        return CACHIFY_ERR_NOMEM;
    }
    call->key = key;
    call->done_ev = event_new(ac->base, -1, 0, deferred_done_cb, call);
    if (call->done_ev == NULL) {
        call_free(call);
        return CACHIFY_ERR_NOMEM;
    }
    if (opts != NULL && opts->renew && opts->exp_ms != CACHIFY_EXP_NONE &&
        opts->exp_ms >= 0) {
        rc = arenew_new(&call->renewer, ac, key, opts->exp_ms, max_size != 0,
                        NULL, NULL, 1);
        if (rc != CACHIFY_OK) {
            call_free(call);
            return rc;
        }
    }
    memcpy(call->args, args, argsize);
    call->base = ac->base;
    call->run = run;
    call->ctx = ctx;
    call->done = done;
    call->skip_on_locked = skip_on_locked;
    call->max_size = max_size;
    call->sent_ms = (long long)(async_now_us() / 1000); /* the lease may
                                                          start as it leaves */
    rc = max_size ? cachify_async_pool_acquire(ac, key, max_size, opts,
                                               acquired_cb, call)
                  : cachify_async_acquire(ac, key, opts, acquired_cb, call);
    if (rc != CACHIFY_OK)
        call_free(call);
    return rc;
}

int cachify_impl_async_call_start(struct cachify_async *ac,
                                  const struct cachify_lock_opts *opts,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vcall_start(ac, CACHIFY_IMPL_OP_LOCK, opts, 0, 0, args, argsize,
                     run, ctx, done, fmt, ap);
    va_end(ap);
    return rc;
}

/* py-cachify's once: one attempt with the default options (NULL). */
int cachify_impl_async_once_start(struct cachify_async *ac,
                                  int raise_on_locked,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vcall_start(ac, CACHIFY_IMPL_OP_ONCE, NULL, 0, !raise_on_locked,
                     args, argsize, run, ctx, done, fmt, ap);
    va_end(ap);
    return rc;
}

/* py-cachify's pooled: a slot of the pool instead of the lock; no op is
 * added to the key (these pools are not py-cachify's stored ones). */
int cachify_impl_async_pool_start(struct cachify_async *ac,
                                  const struct cachify_impl_pool_how *how,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (how == NULL || how->max_size == 0)
        return CACHIFY_ERR_ARG;
    va_start(ap, fmt);
    rc = vcall_start(ac, NULL, how->opts, how->max_size, !how->raise_on_full,
                     args, argsize, run, ctx, done, fmt, ap);
    va_end(ap);
    return rc;
}

int cachify_impl_async_pool_size_fmt(struct cachify_async *ac,
                                     cachify_value_cb cb, void *arg,
                                     const char *fmt, ...)
{
    va_list ap;
    char *key;
    int rc;

    if (ac == NULL || fmt == NULL)
        return CACHIFY_ERR_ARG;
    va_start(ap, fmt);
    rc = wire_format_key(NULL, 0, &key, NULL, NULL, 0, fmt, ap);
    va_end(ap);
    if (rc != CACHIFY_OK)
        return rc;
    rc = cachify_async_pool_size(ac, key, cb, arg);
    free(key);
    return rc;
}

/* The companions: format, then is_locked (release 0) or force (1). */
static int vkey_call(struct cachify_async *ac, int release, cachify_value_cb cb,
                     void *arg, const char *op, const char *fmt, va_list ap)
{
    char *key;
    int rc;

    if (ac == NULL || fmt == NULL)
        return CACHIFY_ERR_ARG;
    rc = wire_format_key(NULL, 0, &key, key_suffix(ac, op), NULL, 0, fmt, ap);
    if (rc != CACHIFY_OK)
        return rc;
    rc = release ? cachify_async_force_release(ac, key, cb, arg)
                 : cachify_async_is_locked(ac, key, cb, arg);
    free(key);
    return rc;
}

int cachify_impl_async_is_locked_fmt(struct cachify_async *ac,
                                     cachify_value_cb cb, void *arg,
                                     const char *op, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vkey_call(ac, 0, cb, arg, op, fmt, ap);
    va_end(ap);
    return rc;
}

int cachify_impl_async_release_fmt(struct cachify_async *ac,
                                   cachify_value_cb cb, void *arg,
                                   const char *op, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = vkey_call(ac, 1, cb, arg, op, fmt, ap);
    va_end(ap);
    return rc;
}

static void deferred_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct cachify_async_call *call = arg;

    (void)fd;
    (void)what;
    call->done(call->status, call->msg, call->ctx);
    call_free(call);
}

/* The renewer stopped, nothing of it in flight any more: release. */
static void renew_stopped_cb(struct cachify_async *ac, int status, void *arg)
{
    struct cachify_async_call *call = arg;

    (void)ac;
    if (status == CACHIFY_LOST)
        call->renew_lost = 1;
    release_now(call);
}

void cachify_async_call_done(struct cachify_async_call *call)
{
    struct cachify_async_renewer *r;

    if (call == NULL || call->body_done)
        return;
    call->body_done = 1;
    r = call->renewer;
    call->renewer = NULL;
    if (r == NULL) /* none asked, or the handle closed (it stopped r) */
        release_now(call);
    else /* released from its completion, after the renewals it sent */
        cachify_async_renewer_stop(r, renew_stopped_cb, call);
}

/* The body is over (and no renewal in flight): release with the token,
 * completing through released_cb, or through done_ev when the release
 * cannot be sent. */
static void release_now(struct cachify_async_call *call)
{
    int rc = CACHIFY_ERR_CLOSED;

    if (call->ac != NULL) {
        struct cachify_async *ac = call->ac;

        calls_unlink(call);
        call->ac = NULL;
        rc = call->max_size
                 ? cachify_async_pool_release(ac, call->key, call->token,
                                              released_cb, call)
                 : cachify_async_release(ac, call->key, call->token,
                                         released_cb, call);
        if (rc == CACHIFY_OK)
            return;
    }
    call->status = rc;
    snprintf(call->msg, sizeof call->msg, "%s",
             rc == CACHIFY_ERR_CLOSED
                 ? "the client was closed before the lock was released"
                 : "cannot send the release");
    /* Still not from inside this call: the caller may touch ctx after it. */
    event_active(call->done_ev, EV_TIMEOUT, 1);
}

void *cachify_async_call_ctx(const struct cachify_async_call *call)
{
    return call ? call->ctx : NULL;
}

uint64_t cachify_async_call_token(const struct cachify_async_call *call)
{
    return call ? call->token : 0;
}

const char *cachify_async_call_key(const struct cachify_async_call *call)
{
    return call ? call->key : "";
}
