/* client/embedded.c - the in-process lock store behind "mem:" (implements
 * client/embedded.h).
 *
 * Owns: the one process-wide store (cachifyd's lock engine, a mutex around
 * every call into it, and a timer thread), created by the first
 * mem_session_new and freed with the last mem_session_free; the waiter
 * records of pending waits.  Does not own: the public API, key prefixes,
 * key validation (sync.c / async.c do those).
 *
 * No polling anywhere.  The timer thread sleeps on a condition variable
 * (CLOCK_MONOTONIC, the engine's clock) until locktable_next_deadline() and
 * then runs locktable_run_timers(); any call that may have created an
 * earlier deadline (a grant with a TTL, a queued bounded wait, an extend, a
 * hand-off) wakes it early.  A blocking acquire sleeps on its own condition
 * variable until the engine's granted/timed_out callback, which runs under
 * the store mutex in whichever thread resolved the wait, marks it done; a
 * bounded wait ends through the timer thread, so it needs no timed sleep.
 *
 * Fencing tokens keep growing across store lifetimes: the last token of a
 * store freed with its last session is kept (g_last_token) and the next
 * store's engine is raised to it before it issues any.
 *
 * Lock order: create_mu (creation and teardown only), then store->mu.
 */
#include "client/embedded.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "client/cachify.h"
#include "engine/clock.h"
#include "engine/lock_pool.h"
#include "engine/locktable.h"

/* Most timer events (expiries, timed-out waits) handled per hold of the
 * mutex, so a burst of simultaneous expiries never starves client threads. */
#define TIMER_SLICE 256

struct mem_store {
    pthread_mutex_t mu;       /* guards everything below and every engine call */
    pthread_cond_t timer_cv;  /* the timer thread sleeps here (monotonic) */
    pthread_t timer;
    struct locktable *table;
    uint64_t timer_at;        /* deadline the timer thread sleeps until */
    size_t sessions;          /* refcount: live mem_sessions */
    int stopping;             /* tells the timer thread to exit */
};

/* A pending wait, handed to the engine as its ctx.  A sync waiter lives on
 * its caller's stack; an async one is heap-allocated, linked into its
 * session (so a session freed first can free it), and freed after its
 * callback. */
struct mem_waiter {
    /* sync */
    pthread_cond_t cv;
    int done;
    /* both */
    int status;
    uint64_t token;
    /* async (cb != NULL) */
    mem_wait_cb cb;
    void *arg;
    struct mem_session *owner;
    struct mem_waiter *prev, *next;
};

struct mem_session {
    struct mem_store *store;
    struct lock_session ls;    /* SESSION locks and waits, linked by the engine */
    struct mem_waiter *async;  /* pending async waiters */
};

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mem_store *g_store;
/* The largest token any store of this process issued, saved when a store
 * goes with its last session: the next store starts above it, so fencing
 * tokens never go backwards between store lifetimes (the engine alone
 * would start from the wall clock, which may have been set back, or lag
 * behind a burst of tokens issued faster than one per microsecond).
 * Guarded by create_mu. */
static uint64_t g_last_token;
/* The clock of the next store (mem_store_set_clock); guarded by create_mu. */
static const struct lock_clock *g_clock = &clock_system;

/* ---- engine callbacks (store mutex held) ---- */

static void unlink_async(struct mem_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        w->owner->async = w->next;
    if (w->next)
        w->next->prev = w->prev;
}

static void resolve(struct mem_waiter *w, int status, uint64_t token)
{
    if (w->cb != NULL) {
        mem_wait_cb cb = w->cb;
        void *arg = w->arg;

        unlink_async(w);
        free(w);
        cb(arg, status, token);
        return;
    }
    w->status = status;
    w->token = token;
    w->done = 1;
    pthread_cond_signal(&w->cv);
}

static void on_granted(void *ctx, uint64_t token, void *arg)
{
    (void)arg;
    resolve(ctx, CACHIFY_OK, token);
}

static void on_timed_out(void *ctx, const char *key, size_t keylen,
                         void *arg)
{
    (void)key;
    (void)keylen;
    (void)arg;
    resolve(ctx, CACHIFY_TIMEOUT, 0);
}

/* ---- the timer thread ---- */

/* Wakes the timer thread when the engine now has a deadline earlier than
 * the one it sleeps until.  Store mutex held. */
static void kick_timer(struct mem_store *st)
{
    if (locktable_next_deadline(st->table) < st->timer_at)
        pthread_cond_signal(&st->timer_cv);
}

static void *timer_main(void *arg)
{
    struct mem_store *st = arg;

    pthread_mutex_lock(&st->mu);
    while (!st->stopping) {
        uint64_t at;

        if (locktable_run_timers(st->table, TIMER_SLICE) == TIMER_SLICE) {
            /* More due: let waiting client threads in, then go on. */
            pthread_mutex_unlock(&st->mu);
            pthread_mutex_lock(&st->mu);
            continue;
        }
        at = locktable_next_deadline(st->table);
        st->timer_at = at;
        if (at == UINT64_MAX) {
            pthread_cond_wait(&st->timer_cv, &st->mu);
        } else {
            struct timespec ts;

            ts.tv_sec = (time_t)(at / 1000000);
            ts.tv_nsec = (long)(at % 1000000) * 1000;
            pthread_cond_timedwait(&st->timer_cv, &st->mu, &ts);
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* ---- the store ---- */

/* A keyed hash defeats keys chosen to collide; without the kernel's
 * randomness, time and addresses still vary between processes. */
static void random_seed(uint8_t seed[16])
{
    uint64_t a, b;

    if (getrandom(seed, 16, GRND_NONBLOCK) == 16)
        return;
    a = clock_wall_us(NULL);
    b = clock_mono_us(NULL) ^ (uint64_t)(uintptr_t)seed;
    memcpy(seed, &a, 8);
    memcpy(seed + 8, &b, 8);
}

static struct mem_store *store_new(void)
{
    static const struct lock_events events = {on_granted, on_timed_out, NULL};
    static const struct locktable_limits limits = {0, 0, 0}; /* memory is the bound */
    struct mem_store *st = calloc(1, sizeof *st);
    pthread_condattr_t ca;
    sigset_t all, old;
    uint8_t seed[16];
    int rc;

    if (st == NULL)
        return NULL;
    random_seed(seed);
    st->table = locktable_new(g_clock, &events, &limits, seed);
    if (st->table == NULL)
        goto fail_table;
    /* No session and no timer thread yet: the table is ours alone. */
    locktable_raise_last_token(st->table, g_last_token);
    if (pthread_mutex_init(&st->mu, NULL) != 0)
        goto fail_mutex;
    /* The engine's deadlines are CLOCK_MONOTONIC microseconds. */
    if (pthread_condattr_init(&ca) != 0)
        goto fail_cond;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&st->timer_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        goto fail_cond;
    st->timer_at = UINT64_MAX;
    /* The library's thread must not take the application's signals. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&st->timer, NULL, timer_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        goto fail_thread;
    return st;

fail_thread:
    pthread_cond_destroy(&st->timer_cv);
fail_cond:
    pthread_mutex_destroy(&st->mu);
fail_mutex:
    locktable_free(st->table);
fail_table:
    free(st);
    return NULL;
}

static void store_free(struct mem_store *st)
{
    pthread_mutex_lock(&st->mu);
    st->stopping = 1;
    pthread_cond_signal(&st->timer_cv);
    pthread_mutex_unlock(&st->mu);
    pthread_join(st->timer, NULL);
    locktable_free(st->table);
    pthread_cond_destroy(&st->timer_cv);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

struct mem_session *mem_session_new(void)
{
    struct mem_session *ms = calloc(1, sizeof *ms);

    if (ms == NULL)
        return NULL;
    pthread_mutex_lock(&create_mu);
    if (g_store == NULL)
        g_store = store_new();
    if (g_store == NULL) {
        pthread_mutex_unlock(&create_mu);
        free(ms);
        return NULL;
    }
    /* sessions is read under create_mu only, so st->mu is not needed. */
    g_store->sessions++;
    ms->store = g_store;
    pthread_mutex_unlock(&create_mu);
    return ms;
}

void mem_session_free(struct mem_session *ms)
{
    struct mem_store *st;

    if (ms == NULL)
        return;
    st = ms->store;
    pthread_mutex_lock(&create_mu);
    pthread_mutex_lock(&st->mu);
    locktable_session_end(st->table, &ms->ls);
    while (ms->async != NULL) { /* cancelled by the engine: no callbacks */
        struct mem_waiter *w = ms->async;

        ms->async = w->next;
        free(w);
    }
    /* The engine releases the session's locks in slices from the timer
     * thread (its next deadline is "now" until they are all gone). */
    kick_timer(st);
    pthread_mutex_unlock(&st->mu);
    if (--st->sessions == 0) {
        /* No session left, so nothing issues tokens any more. */
        uint64_t last = locktable_last_token(st->table);

        if (last > g_last_token)
            g_last_token = last;
        g_store = NULL;
        store_free(st);
    }
    pthread_mutex_unlock(&create_mu);
    free(ms);
}

void mem_store_set_clock(const struct lock_clock *clock)
{
    pthread_mutex_lock(&create_mu);
    g_clock = clock != NULL ? clock : &clock_system;
    pthread_mutex_unlock(&create_mu);
}

/* ---- calls ---- */

/* Maps a non-queued engine result to a status. */
static int map_result(enum lock_result r)
{
    switch (r) {
    case LOCK_GRANTED: return CACHIFY_OK;
    case LOCK_BUSY: return CACHIFY_LOCKED;
    case LOCK_LIMIT_LOCKS:
    case LOCK_LIMIT_WAITERS:
    case LOCK_LIMIT_MEMORY:
    case LOCK_NOT_DURABLE: return CACHIFY_ERR_SERVER; /* no journal here */
    case LOCK_WRONGTYPE:
    case LOCK_POOL_SIZE: return CACHIFY_ERR_TYPE;
    case LOCK_NO_MEMORY: return CACHIFY_ERR_NOMEM;
    case LOCK_QUEUED: break;
    }
    return CACHIFY_ERR_SERVER;
}

/* Fills an engine request; wait_ms 0 = no wait, < 0 = no bound. */
static void make_request(struct lock_request *rq, struct mem_session *ms,
                         const char *key, size_t keylen, uint64_t ttl_us,
                         long long wait_ms, int session_lock, void *ctx)
{
    memset(rq, 0, sizeof *rq);
    rq->key = key;
    rq->keylen = keylen;
    rq->ttl_us = ttl_us;
    rq->wait = wait_ms != 0;
    /* The engine reads wait_us 0 as "no bound"; so is a wait too long to
     * count in microseconds (over 290,000 years). */
    rq->wait_us = wait_ms > 0 && wait_ms < INT64_MAX / 1000
                      ? (uint64_t)wait_ms * 1000 : 0;
    rq->session_lock = session_lock;
    rq->session = &ms->ls;
    rq->ctx = ctx;
}

/* A lock (max 0) or a pool slot (max > 0) that blocks the calling
 * thread; see mem_acquire_wait. */
static int acquire_wait(struct mem_session *ms, const char *key,
                        size_t keylen, unsigned max, uint64_t ttl_us,
                        long long wait_ms, int session_lock, uint64_t *token)
{
    struct mem_store *st = ms->store;
    struct mem_waiter w;
    struct lock_request rq;
    enum lock_result r;
    int status;

    memset(&w, 0, sizeof w);
    if (pthread_cond_init(&w.cv, NULL) != 0)
        return CACHIFY_ERR_NOMEM;
    make_request(&rq, ms, key, keylen, ttl_us, wait_ms, session_lock, &w);
    pthread_mutex_lock(&st->mu);
    r = max ? locktable_pool_acquire(st->table, &rq, max, token)
            : locktable_acquire(st->table, &rq, token);
    if (r == LOCK_QUEUED) {
        kick_timer(st); /* a bounded wait may be the earliest deadline */
        while (!w.done)
            pthread_cond_wait(&w.cv, &st->mu);
        status = w.status;
        *token = w.token;
    } else {
        status = r == LOCK_BUSY && max ? CACHIFY_FULL : map_result(r);
    }
    if (status == CACHIFY_OK)
        kick_timer(st);
    pthread_mutex_unlock(&st->mu);
    pthread_cond_destroy(&w.cv);
    return status;
}

int mem_acquire_wait(struct mem_session *ms, const char *key, size_t keylen,
                     uint64_t ttl_us, long long wait_ms, int session_lock,
                     uint64_t *token)
{
    return acquire_wait(ms, key, keylen, 0, ttl_us, wait_ms, session_lock,
                        token);
}

int mem_pool_acquire_wait(struct mem_session *ms, const char *key,
                          size_t keylen, unsigned max, uint64_t ttl_us,
                          long long wait_ms, int session_lock,
                          uint64_t *token)
{
    return acquire_wait(ms, key, keylen, max, ttl_us, wait_ms, session_lock,
                        token);
}

int64_t mem_pool_call(struct mem_session *ms, enum mem_pool_op op,
                      const char *key, size_t keylen, uint64_t token,
                      uint64_t ttl_us)
{
    struct mem_store *st = ms->store;
    int64_t r = 0;
    uint32_t max;

    pthread_mutex_lock(&st->mu);
    switch (op) {
    case MEM_POOL_RELEASE:
        r = locktable_pool_release(st->table, key, keylen, token);
        break;
    case MEM_POOL_SIZE:
        r = locktable_pool_size(st->table, key, keylen, &max);
        break;
    case MEM_POOL_EXTEND:
        r = locktable_pool_extend(st->table, key, keylen, token, ttl_us);
        r = r == -2 ? -1 : r < 0 ? 0 : r; /* no journal here: -1, -3 never */
        break;
    }
    kick_timer(st); /* a freed slot's waiter may now hold one with a TTL */
    pthread_mutex_unlock(&st->mu);
    return r;
}

int mem_acquire_async(struct mem_session *ms, const char *key, size_t keylen,
                      uint64_t ttl_us, long long wait_ms, int session_lock,
                      mem_wait_cb cb, void *arg, uint64_t *token)
{
    return mem_pool_acquire_async(ms, key, keylen, 0, ttl_us, wait_ms,
                                  session_lock, cb, arg, token);
}

int mem_pool_acquire_async(struct mem_session *ms, const char *key,
                           size_t keylen, unsigned max, uint64_t ttl_us,
                           long long wait_ms, int session_lock,
                           mem_wait_cb cb, void *arg, uint64_t *token)
{
    struct mem_store *st = ms->store;
    struct mem_waiter *w = NULL;
    struct lock_request rq;
    enum lock_result r;
    int status;

    if (wait_ms != 0) {
        /* Allocated before taking the mutex; freed unless queued. */
        w = calloc(1, sizeof *w);
        if (w == NULL)
            return CACHIFY_ERR_NOMEM;
        w->cb = cb;
        w->arg = arg;
        w->owner = ms;
    }
    make_request(&rq, ms, key, keylen, ttl_us, wait_ms, session_lock, w);
    pthread_mutex_lock(&st->mu);
    r = max ? locktable_pool_acquire(st->table, &rq, max, token)
            : locktable_acquire(st->table, &rq, token);
    if (r == LOCK_QUEUED) {
        w->next = ms->async;
        if (ms->async)
            ms->async->prev = w;
        ms->async = w;
        w = NULL;
        status = 1;
    } else {
        status = r == LOCK_BUSY && max ? CACHIFY_FULL : map_result(r);
    }
    kick_timer(st);
    pthread_mutex_unlock(&st->mu);
    free(w);
    return status;
}

int mem_release(struct mem_session *ms, const char *key, size_t keylen,
                uint64_t token)
{
    struct mem_store *st = ms->store;
    int r;

    pthread_mutex_lock(&st->mu);
    if (locktable_key_kind(st->table, key, keylen) == LOCK_KIND_POOL)
        r = CACHIFY_ERR_TYPE;
    else
        r = locktable_release(st->table, key, keylen, token);
    kick_timer(st); /* the next waiter may now hold it with a TTL */
    pthread_mutex_unlock(&st->mu);
    return r;
}

int mem_is_locked(struct mem_session *ms, const char *key, size_t keylen)
{
    struct mem_store *st = ms->store;
    int r;

    pthread_mutex_lock(&st->mu);
    r = locktable_is_locked(st->table, key, keylen);
    pthread_mutex_unlock(&st->mu);
    return r;
}

int mem_extend(struct mem_session *ms, const char *key, size_t keylen,
               uint64_t token, uint64_t ttl_us)
{
    struct mem_store *st = ms->store;
    int r;

    pthread_mutex_lock(&st->mu);
    if (locktable_key_kind(st->table, key, keylen) == LOCK_KIND_POOL)
        r = CACHIFY_ERR_TYPE;
    else
        r = locktable_extend(st->table, key, keylen, token, ttl_us);
    kick_timer(st);
    pthread_mutex_unlock(&st->mu);
    return r;
}

int64_t mem_pttl_us(struct mem_session *ms, const char *key, size_t keylen)
{
    struct mem_store *st = ms->store;
    int64_t r;

    pthread_mutex_lock(&st->mu);
    r = locktable_pttl_us(st->table, key, keylen);
    pthread_mutex_unlock(&st->mu);
    return r;
}
