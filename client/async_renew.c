/* client/async_renew.c - the async renewer: keeps an async holder's lock
 * (EXTEND) or pool slot (POOL_EXTEND) alive from the handle's event loop,
 * over the handle's own connection (cachify_async.h, "async renewal").
 *
 * Owns: struct cachify_async_renewer, its timer, its timing and the one
 * report of a failed renewal; the handle's list of renewers (so that
 * closing the handle stops them: arenew_detach_all).  Used by the public
 * cachify_async_renewer_* calls and by the decorated calls' opts.renew
 * (async_deco.c), so both renew the same way.  Does not own: the EXTEND
 * itself (the public async call, so every backend renews alike) or the
 * release that follows a stop (the holder's, or async_deco.c's).
 *
 * Timing, as the sync renewer's (renew.c), on the monotonic clock: a
 * renewal every exp/3 after the last one sent that got through; the lease
 * is taken to end exp after that renewal was *sent* (the first: exp after
 * the start, or after the acquire was sent for a decorated call).  A
 * renewal that fails with an error, or cannot even be sent, is retried
 * every exp/10 (at least 10 ms) until that end; one that gets no answer
 * at all (a stopped server, the handle's io timeout longer than the
 * lease) is given up at that end by the timer.  Then the lock may be
 * gone: reported.  The server's 0 (the token no longer holds the key)
 * is reported at once.
 *
 * A stop never frees memory an EXTEND in flight will still be answered
 * into: the renewer waits, off the timer, for that answer (the async API
 * answers every call exactly once, CACHIFY_ERR_CLOSED at the latest), and
 * the stop's completion runs only then, so a release sent from it goes
 * after every EXTEND the renewer sent, on every backend and connection.
 */
#include "client/async_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

/* Where a renewer is between its start and its free. */
enum arenew_state {
    AR_IDLE,      /* made, not started: no timer, not on the handle */
    AR_RENEWING,  /* the timer is armed for the next renewal, or, with an
                     EXTEND in flight, for the lease's end */
    AR_FAILED,    /* a failure was reported; no more renewals (an EXTEND
                     may still be in flight) */
    AR_STOPPING   /* stop asked: waits for the EXTEND in flight, or for
                     the timer made active, to run the completion */
};

struct cachify_async_renewer {
    struct cachify_async_renewer *prev, *next; /* ac->renewers */
    struct cachify_async *ac;  /* NULL once the handle closed */
    struct event *ev;          /* the timer (see enum arenew_state) */
    enum arenew_state state;
    char *key;                 /* as the holder gave it (no prefix) */
    uint64_t token;
    long long exp_ms;          /* the lease each renewal asks for */
    long long sent_ms;         /* the start, then the last renewal sent */
    long long lease_end_ms;    /* monotonic: the lease ends by then */
    int pool;                  /* POOL_EXTEND */
    int inflight;              /* an EXTEND awaits its callback */
    int lost;                  /* a failure was reported */
    int handle_cb;             /* report to ac->renew_cb (decorated calls) */
    cachify_renew_cb cb;
    void *arg;
    cachify_async_stopped_cb done;
    void *done_arg;
};

static long long now_ms(void)
{
    return (long long)(async_now_us() / 1000);
}

static void arm(struct cachify_async_renewer *r, long long ms)
{
    struct timeval tv;

    if (ms < 0)
        ms = 0;
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    event_add(r->ev, &tv);
}

static void unlink_r(struct cachify_async_renewer *r)
{
    struct cachify_async *ac = r->ac;

    if (ac == NULL || r->state == AR_IDLE)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        ac->renewers = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void free_r(struct cachify_async_renewer *r)
{
    if (r->ev)
        event_free(r->ev);
    free(r->key);
    free(r);
}

/* Reports a failure once (why names the key).  The callback may stop r,
 * or close the handle (which frees r): nothing touches r after it. */
static void report(struct cachify_async_renewer *r, int status,
                   const char *why)
{
    cachify_renew_cb cb = r->cb;
    void *arg = r->arg;

    if (r->lost)
        return;
    r->lost = 1;
    if (r->state == AR_RENEWING)
        r->state = AR_FAILED;
    if (r->handle_cb) {
        cb = r->ac != NULL ? r->ac->renew_cb : NULL;
        arg = r->ac != NULL ? r->ac->renew_arg : NULL;
    }
    if (cb != NULL)
        cb(r->key, r->token, status, why, arg);
}

static void report_fmt(struct cachify_async_renewer *r, int status,
                       const char *what, const char *errstr)
{
    char why[512];

    snprintf(why, sizeof why, "%s: %s%s", r->key, what, errstr);
    report(r, status, why);
}

/* A renewal failed with status (errstr says why): tried again in exp/10,
 * unless the lease ends before that, which is then reported. */
static void retry_or_fail(struct cachify_async_renewer *r, int status,
                          const char *errstr)
{
    long long retry = r->exp_ms / 10 > 10 ? r->exp_ms / 10 : 10;

    if (now_ms() + retry >= r->lease_end_ms)
        report_fmt(r, status, "not renewed before its lease ran out: ",
                   errstr);
    else
        arm(r, retry);
}

/* r is stopping and nothing of it is in flight: its completion runs with
 * the final status, r already freed (the completion may close the
 * handle). */
static void finish_stop(struct cachify_async_renewer *r)
{
    struct cachify_async *ac = r->ac;
    cachify_async_stopped_cb done = r->done;
    void *arg = r->done_arg;
    int status = r->lost ? CACHIFY_LOST : CACHIFY_OK;

    unlink_r(r);
    free_r(r);
    if (done != NULL)
        done(ac, status, arg);
}

static void renewed_cb(struct cachify_async *ac, int status, long long value,
                       const char *errstr, void *arg)
{
    struct cachify_async_renewer *r = arg;
    int stopping;
    char tok[96];

    (void)ac;
    r->inflight = 0;
    if (r->ac == NULL) { /* the handle closed: it told everyone already */
        free_r(r);
        return;
    }
    /* Called from the handle's delivery, so a close in a report below
     * waits until this returns; a stop in it is refused while stopping. */
    stopping = r->state == AR_STOPPING;
    if (r->state == AR_RENEWING)
        event_del(r->ev); /* the lease's end no longer matters */
    if (status >= 0 && value == 1) {
        r->lease_end_ms = r->sent_ms + r->exp_ms;
        if (r->state == AR_RENEWING)
            arm(r, r->sent_ms + (r->exp_ms / 3 > 0 ? r->exp_ms / 3 : 1) -
                       now_ms());
    } else if (status >= 0) {
        /* Even when stopping: the holder held less than it thought. */
        snprintf(tok, sizeof tok, "token %llu no longer holds it (it "
                 "expired or was force-released)",
                 (unsigned long long)r->token);
        report_fmt(r, CACHIFY_LOST, tok, "");
        if (!stopping)
            return; /* the report's stop may have freed r */
    } else if (!stopping) {
        if (r->state == AR_RENEWING)
            retry_or_fail(r, status, errstr);
        return;
    } else if (now_ms() >= r->lease_end_ms) {
        report_fmt(r, status, "not renewed before its lease ran out: ",
                   errstr);
    }
    if (stopping)
        finish_stop(r);
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    struct cachify_async_renewer *r = arg;
    int rc;

    (void)fd;
    (void)what;
    if (r->state == AR_STOPPING) { /* made active by a stop */
        finish_stop(r);
        return;
    }
    if (r->state != AR_RENEWING || r->ac == NULL)
        return;
    if (r->inflight) { /* the lease's end came before any answer */
        report_fmt(r, CACHIFY_ERR_IO, "not renewed before its lease ran "
                   "out: ", "no answer to the renewal");
        return;
    }
    r->sent_ms = now_ms();
    rc = r->pool ? cachify_async_pool_extend(r->ac, r->key, r->token,
                                             r->exp_ms, renewed_cb, r)
                 : cachify_async_extend(r->ac, r->key, r->token, r->exp_ms,
                                        renewed_cb, r);
    if (rc == CACHIFY_OK) {
        r->inflight = 1;
        arm(r, r->lease_end_ms - r->sent_ms);
    } else { /* not even sent (out of memory): a failed renewal */
        retry_or_fail(r, rc, cachify_status_name(rc));
    }
}

int arenew_new(struct cachify_async_renewer **out, struct cachify_async *ac,
               const char *key, long long exp_ms, int pool,
               cachify_renew_cb cb, void *arg, int handle_cb)
{
    struct cachify_async_renewer *r;

    *out = NULL;
    if (exp_ms == CACHIFY_EXP_DEFAULT)
        exp_ms = ac->default_exp_ms;
    if (key == NULL || exp_ms <= 0 || exp_ms == CACHIFY_EXP_NONE)
        return CACHIFY_ERR_ARG;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return CACHIFY_ERR_NOMEM;
    r->key = strdup(key);
    r->ev = evtimer_new(ac->base, tick, r);
    if (r->key == NULL || r->ev == NULL) {
        free_r(r);
        return CACHIFY_ERR_NOMEM;
    }
    r->ac = ac;
    r->exp_ms = exp_ms;
    r->pool = pool;
    r->cb = cb;
    r->arg = arg;
    r->handle_cb = handle_cb;
    *out = r;
    return CACHIFY_OK;
}

void arenew_begin(struct cachify_async_renewer *r, uint64_t token,
                  long long began_ms)
{
    struct cachify_async *ac = r->ac;

    r->token = token;
    r->sent_ms = began_ms;
    r->lease_end_ms = began_ms + r->exp_ms;
    r->state = AR_RENEWING;
    r->next = ac->renewers;
    if (r->next)
        r->next->prev = r;
    ac->renewers = r;
    /* The first renewal is due exp/3 after the start (at once if past). */
    arm(r, began_ms + r->exp_ms / 3 - now_ms());
}

void arenew_discard(struct cachify_async_renewer *r)
{
    if (r != NULL && r->state == AR_IDLE)
        free_r(r);
}

void arenew_detach_all(struct cachify_async *ac)
{
    while (ac->renewers != NULL) {
        struct cachify_async_renewer *r = ac->renewers;
        enum arenew_state was = r->state;

        unlink_r(r);
        event_del(r->ev);
        /* Detached first: a stop from the report below is refused.  The
         * decorated calls' renewers are stopping by now (adeco_detach_all),
         * so the handle's callback needs no report here. */
        r->ac = NULL;
        if (was == AR_RENEWING)
            report_fmt(r, CACHIFY_ERR_CLOSED, "no longer renewed: ",
                       "the client was closed");
        if (was == AR_STOPPING && r->done != NULL)
            r->done(ac, CACHIFY_ERR_CLOSED, r->done_arg);
        if (!r->inflight) /* else its callback, CLOSED, frees it */
            free_r(r);
    }
}

/* ---- the public calls ---- */

static int start(struct cachify_async_renewer **out, struct cachify_async *ac,
                 const char *key, uint64_t token, long long exp_ms, int pool,
                 cachify_renew_cb cb, void *arg)
{
    int rc;

    if (out == NULL)
        return CACHIFY_ERR_ARG;
    *out = NULL;
    if (ac == NULL || token == 0)
        return CACHIFY_ERR_ARG;
    if (ac->closing)
        return CACHIFY_ERR_CLOSED;
    rc = async_check_call(ac, key, 1);
    if (rc != CACHIFY_OK)
        return rc;
    rc = arenew_new(out, ac, key, exp_ms, pool, cb, arg, 0);
    if (rc == CACHIFY_OK)
        arenew_begin(*out, token, now_ms());
    return rc;
}

int cachify_async_renewer_start(struct cachify_async_renewer **out,
                                struct cachify_async *ac, const char *key,
                                uint64_t token, long long exp_ms,
                                cachify_renew_cb cb, void *arg)
{
    return start(out, ac, key, token, exp_ms, 0, cb, arg);
}

int cachify_async_pool_renewer_start(struct cachify_async_renewer **out,
                                     struct cachify_async *ac,
                                     const char *key, uint64_t token,
                                     long long exp_ms, cachify_renew_cb cb,
                                     void *arg)
{
    return start(out, ac, key, token, exp_ms, 1, cb, arg);
}

int cachify_async_renewer_stop(struct cachify_async_renewer *r,
                               cachify_async_stopped_cb done, void *arg)
{
    int status;

    if (r == NULL)
        return CACHIFY_OK;
    if (r->ac == NULL || r->state == AR_STOPPING || r->state == AR_IDLE)
        return CACHIFY_ERR_CLOSED; /* inside the close's report */
    status = r->lost ? CACHIFY_LOST : CACHIFY_OK;
    event_del(r->ev);
    r->state = AR_STOPPING;
    r->done = done;
    r->done_arg = arg;
    if (!r->inflight) {
        if (done != NULL)
            event_active(r->ev, EV_TIMEOUT, 1); /* never inside the stop */
        else
            finish_stop(r);
    }
    return status;
}
