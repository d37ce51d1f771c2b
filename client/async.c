/* client/async.c - the async half of libcachify-client (declared in
 * client/cachify_async.h) on a caller's event_base.
 *
 * Owns: the handle (open, close), request building for every public
 * async call, and the done queue: every finished request,
 * from either backend, is appended there and its callback runs from one
 * event (done_ev) in async_deliver, never from inside the public call that
 * started it.  User callbacks run only here (async_deliver, and
 * async_destroy for CACHIFY_ERR_CLOSED), so the rule for a callback that
 * closes its own handle lives here too: depth counts callbacks on the
 * stack (ENTERED), cachify_async_close inside one only sets `closing`
 * (DELETED), and the outermost delivery finishes the close when the
 * callback returns.  Pending callbacks then get CACHIFY_ERR_CLOSED, each
 * exactly once, and the handle is freed.  (An acquire answered CLOSED may
 * have been granted meanwhile; that lock lives until its expiry, or until
 * its session ends.)
 * Does not own: connections (async_net.c), the checks of arguments, the
 * bytes of requests and the meaning of replies (wire.c, shared with the
 * sync API), the embedded store (async_mem.c), the decorator runtime
 * (async_deco.c), the renewers (async_renew.c; the close stops them).
 *
 * Result values, argument checks and messages are those of the sync API
 * (the same wire.c functions decide them): a failed acquire says "<key> is
 * already locked!" with the key as the caller gave it (no prefix, as
 * py-cachify words it), other failures say why.
 */
#include "client/async_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

uint64_t async_now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ requests */

struct areq *async_req_new(struct cachify_async *ac, enum wire_op op,
                           const char *key)
{
    size_t klen = strlen(key);
    struct areq *r;

    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->key = malloc(ac->prefixlen + klen + 1);
    if (r->key == NULL) {
        free(r);
        return NULL;
    }
    memcpy(r->key, ac->prefix, ac->prefixlen);
    memcpy(r->key + ac->prefixlen, key, klen + 1);
    r->keylen = ac->prefixlen + klen;
    r->ac = ac;
    r->op = op;
    return r;
}

void async_req_free(struct areq *r)
{
    if (r == NULL)
        return;
    free(r->msg);
    free(r->key);
    free(r);
}

static const char *req_errstr(const struct areq *r)
{
    return r->msg ? r->msg : r->msgbuf;
}

/* Formats the message into msgbuf, or into an allocated string when it is
 * longer (a key can be long); out of memory keeps the truncated form. */
static void req_vmsg(struct areq *r, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    free(r->msg);
    r->msg = NULL;
    r->msgbuf[0] = '\0';
    if (fmt == NULL)
        return;
    va_copy(ap2, ap);
    n = vsnprintf(r->msgbuf, sizeof r->msgbuf, fmt, ap);
    if (n >= (int)sizeof r->msgbuf) {
        r->msg = malloc((size_t)n + 1);
        if (r->msg != NULL)
            vsnprintf(r->msg, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
}

static void done_push(struct areq *r)
{
    struct cachify_async *ac = r->ac;

    r->next = NULL;
    if (ac->done_tail)
        ac->done_tail->next = r;
    else
        ac->done_head = r;
    ac->done_tail = r;
    ac->done_count++;
    event_active(ac->done_ev, EV_TIMEOUT, 0);
}

void async_finish(struct areq *r, int status, long long value,
                  const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    r->value = value;
    va_start(ap, fmt);
    req_vmsg(r, fmt, ap);
    va_end(ap);
    done_push(r);
}

void async_finish_locked(struct areq *r, int status)
{
    struct wire_result res;

    /* A pool's: "<key> pool is full". */
    if (r->op == WIRE_POOL_ACQUIRE)
        wire_full(&res, status, r->key + r->ac->prefixlen);
    else
        wire_locked(&res, status, r->key + r->ac->prefixlen);
    async_finish(r, status, 0, "%s%s%s", res.head, res.text, res.tail);
}

void async_finish_token(struct areq *r, int status, uint64_t token,
                        const char *msg)
{
    r->result_token = token;
    async_finish(r, status, 0, msg ? "%s" : NULL, msg);
}

static void run_callback(struct cachify_async *ac, struct areq *r)
{
    if (r->op == WIRE_ACQUIRE || r->op == WIRE_POOL_ACQUIRE)
        r->tcb(ac, r->status, r->status == CACHIFY_OK ? r->result_token : 0,
               req_errstr(r), r->arg);
    else
        r->vcb(ac, r->status, r->status < 0 ? 0 : r->value, req_errstr(r),
               r->arg);
}

/* ---------------------------------------------------------------- close */

/* Really closes ac: every backend resource goes first (so no completion can
 * arrive any more), then each unanswered callback gets CACHIFY_ERR_CLOSED
 * once, then the handle is freed.  Callbacks run here see `closing` set:
 * their calls on ac are refused and a close is a no-op. */
static void async_destroy(struct cachify_async *ac)
{
    struct areq *list = ac->done_head, **tail;

    ac->closing = 1;
    ac->depth++;
    tail = list ? &ac->done_tail->next : &list;
    ac->done_head = ac->done_tail = NULL;
    ac->done_count = 0;
    if (ac->backend == AB_NET)
        anet_shutdown(ac, &tail);
    else if (ac->backend == AB_ETCD)
        aetcd_shutdown(ac, &tail);
    else
        amem_shutdown(ac, &tail);
    adeco_detach_all(ac);
    arenew_detach_all(ac);
    while (list != NULL) {
        struct areq *r = list;

        list = r->next;
        r->status = CACHIFY_ERR_CLOSED;
        snprintf(r->msgbuf, sizeof r->msgbuf,
                 "the client was closed before the reply");
        free(r->msg);
        r->msg = NULL;
        run_callback(ac, r);
        async_req_free(r);
    }
    if (ac->done_ev)
        event_free(ac->done_ev);
    free(ac->prefix);
    free(ac);
}

void cachify_async_close(struct cachify_async *ac)
{
    if (ac == NULL || ac->closing)
        return;
    ac->closing = 1;
    if (ac->depth == 0)
        async_destroy(ac);
    /* else: inside one of ac's callbacks; async_deliver finishes it. */
}

/* ------------------------------------------------------------- delivery */

void async_deliver(struct cachify_async *ac)
{
    /* Only what is queued now: callbacks that start new requests which
     * finish at once (the embedded store) must not starve the loop. */
    size_t n = ac->done_count;

    ac->depth++;
    while (n-- > 0 && !ac->closing && ac->done_head != NULL) {
        struct areq *r = ac->done_head;

        ac->done_head = r->next;
        if (ac->done_head == NULL)
            ac->done_tail = NULL;
        ac->done_count--;
        run_callback(ac, r);
        async_req_free(r);
    }
    ac->depth--;
    if (ac->closing) {
        if (ac->depth == 0)
            async_destroy(ac);
        return;
    }
    if (ac->done_head != NULL)
        event_active(ac->done_ev, EV_TIMEOUT, 0);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    async_deliver(arg);
}

/* ----------------------------------------------------------------- open */

int cachify_async_open(struct cachify_async **out, struct event_base *base,
                       const char *url, const struct cachify_options *opts,
                       char *err, size_t errlen)
{
    struct cachify_async *ac;
    struct wire_options wo;
    int rc;

    say(err, errlen, "%s", "");
    if (out == NULL)
        return CACHIFY_ERR_ARG;
    *out = NULL;
    if (base == NULL) {
        say(err, errlen, "no event_base given");
        return CACHIFY_ERR_ARG;
    }
    rc = wire_options(opts, &wo, err, errlen);
    if (rc != CACHIFY_OK)
        return rc;
    ac = calloc(1, sizeof *ac);
    if (ac == NULL) {
        say(err, errlen, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    ac->wake_fd = -1;
    ac->base = base;
    rc = cachify_url_parse(url, &ac->url, err, errlen);
    if (rc != CACHIFY_OK) {
        free(ac);
        return rc;
    }
    ac->backend = ac->url.kind == CACHIFY_URL_MEM    ? AB_MEM
                  : ac->url.kind == CACHIFY_URL_ETCD ? AB_ETCD
                                                     : AB_NET;
    ac->connect_timeout_ms = wo.connect_timeout_ms;
    ac->io_timeout_ms = wo.io_timeout_ms;
    ac->default_exp_ms = wo.default_exp_ms;
    ac->prefixlen = wo.prefixlen;
    ac->pycachify_keys = wo.pycachify_keys;
    ac->prefix = strdup(wo.prefix);
    ac->done_ev = event_new(base, -1, 0, done_cb, ac);
    if (ac->prefix == NULL || ac->done_ev == NULL) {
        rc = CACHIFY_ERR_NOMEM;
        say(err, errlen, "out of memory");
    } else if (ac->backend == AB_MEM) {
        rc = amem_open(ac);
        if (rc != CACHIFY_OK)
            say(err, errlen, "cannot set up the embedded store: %s",
                cachify_status_name(rc));
    } else if (ac->backend == AB_ETCD) {
        rc = aetcd_open(ac);
        if (rc != CACHIFY_OK)
            say(err, errlen, "out of memory");
    } else {
        rc = anet_open(ac, err, errlen);
    }
    if (rc != CACHIFY_OK) {
        async_destroy(ac); /* nothing is pending: no callback runs */
        return rc;
    }
    *out = ac;
    return CACHIFY_OK;
}

/* -------------------------------------------------------------- submit */

/* Common checks; NULL cb is refused because "called exactly once" would
 * otherwise have nothing to call. */
int async_check_call(const struct cachify_async *ac, const char *key,
                     int has_cb)
{
    size_t klen;

    if (ac == NULL || key == NULL || !has_cb)
        return CACHIFY_ERR_ARG;
    if (ac->closing)
        return CACHIFY_ERR_CLOSED;
    return wire_check_key(key, ac->prefixlen, &klen, NULL, 0);
}

int async_submit(struct cachify_async *ac, struct areq *r)
{
    int rc;

    r->seq = ++ac->seq;
    rc = ac->backend == AB_NET    ? anet_submit(ac, r)
         : ac->backend == AB_ETCD ? aetcd_submit(ac, r)
                                  : amem_submit(ac, r);
    if (rc != CACHIFY_OK)
        async_req_free(r);
    return rc;
}

static struct areq *make_value_req(struct cachify_async *ac,
                                   enum wire_op op, const char *key,
                                   cachify_value_cb cb, void *arg)
{
    struct areq *r = async_req_new(ac, op, key);

    if (r != NULL) {
        r->vcb = cb;
        r->arg = arg;
    }
    return r;
}

int cachify_async_acquire(struct cachify_async *ac, const char *key,
                          const struct cachify_lock_opts *opts,
                          cachify_token_cb cb, void *arg)
{
    struct wire_lock lock;
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc != CACHIFY_OK)
        return rc;
    rc = wire_lock_opts(opts, ac->default_exp_ms, &lock, NULL, 0);
    if (rc != CACHIFY_OK)
        return rc;
    r = async_req_new(ac, WIRE_ACQUIRE, key);
    if (r == NULL)
        return CACHIFY_ERR_NOMEM;
    r->tcb = cb;
    r->arg = arg;
    r->lock = lock;
    return async_submit(ac, r);
}

int cachify_async_release(struct cachify_async *ac, const char *key,
                          uint64_t token, cachify_value_cb cb, void *arg)
{
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc != CACHIFY_OK)
        return rc;
    rc = wire_check_release(token, NULL, 0);
    if (rc != CACHIFY_OK)
        return rc;
    r = make_value_req(ac, WIRE_RELEASE, key, cb, arg);
    if (r == NULL)
        return CACHIFY_ERR_NOMEM;
    r->token = token;
    return async_submit(ac, r);
}

int cachify_async_force_release(struct cachify_async *ac, const char *key,
                                cachify_value_cb cb, void *arg)
{
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc != CACHIFY_OK)
        return rc;
    r = make_value_req(ac, WIRE_FORCE, key, cb, arg);
    return r ? async_submit(ac, r) : CACHIFY_ERR_NOMEM;
}

int cachify_async_is_locked(struct cachify_async *ac, const char *key,
                            cachify_value_cb cb, void *arg)
{
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc != CACHIFY_OK)
        return rc;
    r = make_value_req(ac, WIRE_IS_LOCKED, key, cb, arg);
    return r ? async_submit(ac, r) : CACHIFY_ERR_NOMEM;
}

int cachify_async_extend(struct cachify_async *ac, const char *key,
                         uint64_t token, long long ms, cachify_value_cb cb,
                         void *arg)
{
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc != CACHIFY_OK)
        return rc;
    rc = wire_check_extend(token, ms, NULL, 0);
    if (rc != CACHIFY_OK)
        return rc;
    r = make_value_req(ac, WIRE_EXTEND, key, cb, arg);
    if (r == NULL)
        return CACHIFY_ERR_NOMEM;
    r->token = token;
    r->ms = ms;
    return async_submit(ac, r);
}

int cachify_async_pttl(struct cachify_async *ac, const char *key,
                       cachify_value_cb cb, void *arg)
{
    struct areq *r;
    int rc = async_check_call(ac, key, cb != NULL);

    if (rc != CACHIFY_OK)
        return rc;
    r = make_value_req(ac, WIRE_PTTL, key, cb, arg);
    return r ? async_submit(ac, r) : CACHIFY_ERR_NOMEM;
}
