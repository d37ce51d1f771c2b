/* client/renew.c - lock renewal: a thread that keeps a held lock alive
 * with EXTEND while its holder lives (cachify.h, "renewal").
 *
 * Owns: the renewer (its thread, its own handle opened on the holder's
 * URL and options, its timing) and the one report of a failed renewal.
 * Does not own: the EXTEND itself (sync.c, on the renewer's handle, so
 * every backend renews the same way) or the guards that start renewers
 * for opts.renew (scoped.c).
 *
 * Timing, on CLOCK_MONOTONIC: a renewal every exp/3 after the last one
 * sent that got through.  The lease is taken to end exp after that
 * renewal was *sent* (the server extended it later than that, never
 * earlier), and the first lease exp after the acquire was sent (the guards
 * pass that time in: opening the renewer's connection and starting its
 * thread come later, and a cut-off holder's lock ends counting from the
 * grant, not from them), so the renewer gives up no later than the lock
 * can really end.  A renewal that fails with an error (the server
 * unreachable, a timeout) is retried every exp/10 (at least 10 ms), each
 * attempt bounded by exp/3 (the renewer's handle's timeouts), until that
 * end: then the lock may be gone, and the renewal has failed.  The
 * server's 0 (the token no longer holds the key) fails it at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cachify.h"
#include "client/sync_internal.h"
#include "client/wire.h"

struct cachify_renewer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* on CLOCK_MONOTONIC; signalled by stop */
    struct cachify *h;       /* the renewer's own handle */
    char *key;
    uint64_t token;
    long long exp_ms;
    long long began_ms;      /* monotonic: the acquire was sent then */
    cachify_renew_cb cb;
    void *arg;
    int pool;                /* a pool slot: POOL_EXTEND */
    int stop;                /* under mu: stop asked */
    int lost;                /* a renewal failed (cb told) */
};

long long cachify_impl_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps until the monotonic ms `until` or a stop: 1 when stopped. */
static int sleep_until(struct cachify_renewer *r, long long until)
{
    struct timespec ts = {until / 1000, (long)(until % 1000) * 1000000};
    int stopped;

    pthread_mutex_lock(&r->mu);
    while (!r->stop &&
           pthread_cond_timedwait(&r->cv, &r->mu, &ts) != ETIMEDOUT)
        ;
    stopped = r->stop;
    pthread_mutex_unlock(&r->mu);
    return stopped;
}

static void report(struct cachify_renewer *r, int status, const char *why)
{
    r->lost = 1;
    if (r->cb != NULL)
        r->cb(r->key, r->token, status, why, r->arg);
}

static void *renew_loop(void *p)
{
    struct cachify_renewer *r = p;
    long long interval = r->exp_ms / 3 > 0 ? r->exp_ms / 3 : 1;
    long long retry = r->exp_ms / 10 > 10 ? r->exp_ms / 10 : 10;
    long long lease_end = r->began_ms + r->exp_ms;
    long long next = r->began_ms + interval; /* at once if that is past */
    char why[512];

    while (!sleep_until(r, next)) {
        long long at = cachify_impl_now_ms();
        int rc = r->pool ? cachify_pool_extend(r->h, r->key, r->token,
                                               r->exp_ms)
                         : cachify_extend(r->h, r->key, r->token, r->exp_ms);

        if (rc == 1) {
            lease_end = at + r->exp_ms;
            next = at + interval;
            continue;
        }
        if (rc == 0) {
            snprintf(why, sizeof why, "%s: token %llu no longer holds it "
                     "(it expired or was force-released)", r->key,
                     (unsigned long long)r->token);
            report(r, CACHIFY_LOST, why);
            break;
        }
        if (cachify_impl_now_ms() + retry >= lease_end) {
            snprintf(why, sizeof why, "%s: not renewed before its lease "
                     "ran out: %s", r->key, cachify_errstr(r->h));
            report(r, rc, why);
            break;
        }
        next = cachify_impl_now_ms() + retry;
    }
    return NULL;
}

static void renewer_free(struct cachify_renewer *r)
{
    cachify_close(r->h);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->key);
    free(r);
}

int cachify_renewer_start(struct cachify_renewer **out, struct cachify *c,
                          const char *key, uint64_t token, long long exp_ms,
                          cachify_renew_cb cb, void *arg)
{
    return cachify_impl_renewer_start(out, c, key, token, exp_ms, 0,
                                      cachify_impl_now_ms(), cb, arg);
}

int cachify_impl_renewer_start(struct cachify_renewer **out,
                               struct cachify *c, const char *key,
                               uint64_t token, long long exp_ms, int pool,
                               long long began_ms, cachify_renew_cb cb,
                               void *arg)
{
    struct cachify_renewer *r;
    pthread_condattr_t ca;
    int rc;

    if (out == NULL || c == NULL)
        return CACHIFY_ERR_ARG;
    *out = NULL;
    if (exp_ms == CACHIFY_EXP_DEFAULT)
        exp_ms = cachify_impl_default_exp(c);
    if (key == NULL || token == 0 || exp_ms <= 0 || exp_ms == CACHIFY_EXP_NONE)
        return cachify_impl_set_err(c, CACHIFY_ERR_ARG, "renewer: needs a "
                                    "key, its token and a finite exp_ms");
    r = calloc(1, sizeof *r);
    if (r == NULL || (r->key = strdup(key)) == NULL) {
        free(r);
        return cachify_impl_set_err(c, CACHIFY_ERR_NOMEM, "out of memory");
    }
    r->token = token;
    r->exp_ms = exp_ms;
    r->began_ms = began_ms;
    r->pool = pool;
    r->cb = cb;
    r->arg = arg;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    /* Each attempt bounded by a third of the lease: a hung server cannot
     * keep a renewal out past the lease's end. */
    rc = cachify_impl_reopen(c, exp_ms / 3 > 1 ? (int)(exp_ms / 3 < 60000
                                                           ? exp_ms / 3
                                                           : 60000)
                                               : 1,
                             &r->h);
    if (rc != CACHIFY_OK) {
        r->h = NULL;
        renewer_free(r);
        return rc;
    }
    if (pthread_create(&r->thread, NULL, renew_loop, r) != 0) {
        renewer_free(r);
        return cachify_impl_set_err(c, CACHIFY_ERR_NOMEM,
                                    "renewer: cannot start a thread");
    }
    *out = r;
    return CACHIFY_OK;
}

int cachify_impl_renew_held(struct cachify *c, const char *key,
                            uint64_t token,
                            const struct cachify_lock_opts *opts, int pool,
                            long long began_ms, struct cachify_renewer **out)
{
    cachify_renew_cb cb;
    void *arg;
    int rc;

    *out = NULL;
    if (opts == NULL || !opts->renew || opts->exp_ms == CACHIFY_EXP_NONE)
        return CACHIFY_OK; /* nothing asked, or nothing that expires */
    cachify_impl_renew_cb(c, &cb, &arg);
    rc = cachify_impl_renewer_start(out, c, key, token, opts->exp_ms, pool,
                                    began_ms, cb, arg);
    if (rc != CACHIFY_OK) { /* the holder asked not to run without it */
        if (pool)
            cachify_pool_release(c, key, token);
        else
            cachify_release(c, key, token);
    }
    return rc;
}

int cachify_renewer_stop(struct cachify_renewer *r)
{
    int lost;

    if (r == NULL)
        return CACHIFY_OK;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->thread, NULL);
    lost = r->lost;
    renewer_free(r);
    return lost ? CACHIFY_LOST : CACHIFY_OK;
}
