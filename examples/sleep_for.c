/* examples/sleep_for.c - py-cachify's asyncio lock-decorator example, in C
 * on libevent with the async API and CACHIFY_ASYNC_LOCKED_FN.
 *
 *     build/examples/sleep_for [URL]     (default cachify://127.0.0.1:7379;
 *                                         "mem:" for the embedded store)
 *
 * The Python original (py-cachify docs, "Lock - Using Lock as a Decorator"):
 *
 *     @lock(key='sleep_for_lock-{arg}', nowait=True)
 *     async def sleep_for(arg: int) -> None:
 *         await asyncio.sleep(arg)
 *
 *     async def main() -> None:
 *         _ = asyncio.create_task(sleep_for(3))
 *         await asyncio.sleep(0.1)
 *         print(f'Sleep for is locked for argument 3: '
 *               f'{await sleep_for.is_locked(3)}')
 *         print(f'Sleep for is locked for argument 4: '
 *               f'{await sleep_for.is_locked(4)}')
 *         task = asyncio.create_task(sleep_for(5))
 *         await asyncio.sleep(0.1)
 *         print(f'Sleep for is locked for argument 5: '
 *               f'{await sleep_for.is_locked(5)}')
 *         await sleep_for.release(5)
 *         print(f'Sleep for is locked for argument 5: '
 *               f'{await sleep_for.is_locked(5)}')
 *         await task
 *         try:
 *             await asyncio.gather(sleep_for(1), sleep_for(1))
 *         except CachifyLockError as e:
 *             print(f'Exception: {e}')
 *
 * Each `await` becomes a callback that moves main() one step on (advance);
 * nothing blocks the loop: the sleeps are timers.  py-cachify logs
 * "<key> is already locked!" before raising; that log line goes to stderr
 * here, the prints to stdout.  Exit status 0, or 1 on an unexpected error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "client/cachify.h"

struct app;

/* One asyncio task running sleep_for(arg). */
struct task {
    struct app *app;
    int arg;
    int finished;
    int awaited;  /* main() is blocked on `await task` */
    int gathered; /* part of the asyncio.gather */
};

struct app {
    struct event_base *base;
    struct cachify_async *ac;
    int step;
    int failed;
    int gather_left;
    struct task t3, t5, t1a, t1b;
    int check_arg; /* the argument of the is_locked in flight */
};

static void advance(struct app *a);

/* sleep_for: py-cachify's defaults (nowait, 30 s expiry). */
static const struct cachify_lock_opts sleep_opts = CACHIFY_LOCK_OPTS_DEFAULT;

/* await asyncio.sleep(arg) ends: so does the body. */
static void body_wake(evutil_socket_t fd, short what, void *call)
{
    (void)fd;
    (void)what;
    cachify_async_call_done(call);
}

/* @lock(key='sleep_for_lock-{arg}', nowait=True)
 * async def sleep_for(arg): await asyncio.sleep(arg) */
CACHIFY_ASYNC_LOCKED_FN(sleep_for, (int arg), (arg), ("sleep_for_lock-%d", arg),
                        &sleep_opts)
{
    struct task *t = cachify_async_call_ctx(call);
    struct timeval tv = { arg, 0 };

    if (event_base_once(t->app->base, -1, EV_TIMEOUT, body_wake, call,
                        &tv) != 0)
        cachify_async_call_done(call); /* cannot sleep: end at once */
}

static void fail(struct app *a, const char *what, int status, const char *msg)
{
    fflush(stdout);
    fprintf(stderr, "sleep_for: %s: %s (%s)\n", what,
            msg && *msg ? msg : "error", cachify_status_name(status));
    a->failed = 1;
    if (a->ac != NULL) {
        struct cachify_async *ac = a->ac;

        a->ac = NULL; /* what the CLOSED callbacks check */
        cachify_async_close(ac);
    }
    event_base_loopbreak(a->base);
}

static void task_done(int status, const char *errstr, void *ctx)
{
    struct task *t = ctx;
    struct app *a = t->app;

    t->finished = 1;
    if (a->ac == NULL)
        return; /* shutting down after an error */
    if (t->gathered) {
        if (status == CACHIFY_LOCKED || status == CACHIFY_TIMEOUT) {
            /* py-cachify's log line, then the caught CachifyLockError. */
            fflush(stdout);
            fprintf(stderr, "%s\n", errstr);
            printf("Exception: %s\n", errstr);
        } else if (status != CACHIFY_OK) {
            fail(a, "sleep_for(1)", status, errstr);
            return;
        }
        if (--a->gather_left == 0)
            advance(a);
        return;
    }
    /* sleep_for(5)'s lock is force-released while it sleeps (step 5), so
     * its own release finds it gone: CACHIFY_LOST, where py-cachify
     * notices nothing. */
    if (status != (t == &a->t5 ? CACHIFY_LOST : CACHIFY_OK)) {
        fail(a, "sleep_for", status, errstr);
        return;
    }
    if (t->awaited)
        advance(a);
}

static void start_task(struct app *a, struct task *t, int arg, int gathered)
{
    int rc;

    t->app = a;
    t->arg = arg;
    t->gathered = gathered;
    rc = sleep_for(a->ac, t, task_done, arg);
    if (rc != CACHIFY_OK)
        fail(a, "sleep_for", rc, "cannot start");
}

/* `await task`: at once when it already ended, else from task_done. */
static void await_task(struct app *a, struct task *t)
{
    if (t->finished)
        advance(a);
    else
        t->awaited = 1;
}

static void timer_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    advance(arg);
}

/* await asyncio.sleep(ms / 1000) */
static void sleep_ms(struct app *a, int ms)
{
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

    if (event_base_once(a->base, -1, EV_TIMEOUT, timer_done, a, &tv) != 0)
        fail(a, "event_base_once", CACHIFY_ERR_NOMEM, "out of memory");
}

static void checked(struct cachify_async *ac, int status, long long value,
                    const char *errstr, void *arg)
{
    struct app *a = arg;

    (void)ac;
    if (status < 0) {
        fail(a, "is_locked", status, errstr);
        return;
    }
    printf("Sleep for is locked for argument %d: %s\n", a->check_arg,
           value ? "True" : "False");
    advance(a);
}

/* print(f'... {await sleep_for.is_locked(arg)}') */
static void check(struct app *a, int arg)
{
    int rc;

    a->check_arg = arg;
    rc = sleep_for_is_locked(a->ac, checked, a, arg);
    if (rc != CACHIFY_OK)
        fail(a, "is_locked", rc, "cannot start");
}

static void released(struct cachify_async *ac, int status, long long value,
                     const char *errstr, void *arg)
{
    (void)ac;
    (void)value;
    if (status < 0)
        fail(arg, "release", status, errstr);
    else
        advance(arg);
}

/* main() of the Python example, one step per `await`. */
static void advance(struct app *a)
{
    int rc;

    if (a->ac == NULL)
        return;
    switch (a->step++) {
    case 0: /* _ = asyncio.create_task(sleep_for(3)); await sleep(0.1) */
        start_task(a, &a->t3, 3, 0);
        sleep_ms(a, 100);
        break;
    case 1:
        check(a, 3);
        break;
    case 2:
        check(a, 4);
        break;
    case 3: /* task = asyncio.create_task(sleep_for(5)); await sleep(0.1) */
        start_task(a, &a->t5, 5, 0);
        sleep_ms(a, 100);
        break;
    case 4:
        check(a, 5);
        break;
    case 5: /* await sleep_for.release(5) */
        rc = sleep_for_release(a->ac, released, a, 5);
        if (rc != CACHIFY_OK)
            fail(a, "release", rc, "cannot start");
        break;
    case 6:
        check(a, 5);
        break;
    case 7: /* await task */
        await_task(a, &a->t5);
        break;
    case 8: /* await asyncio.gather(sleep_for(1), sleep_for(1)) */
        a->gather_left = 2;
        start_task(a, &a->t1a, 1, 1);
        if (a->ac != NULL)
            start_task(a, &a->t1b, 1, 1);
        break;
    default: { /* main() returns; sleep_for(3) ended long ago */
        struct cachify_async *ac = a->ac;

        a->ac = NULL;
        cachify_async_close(ac);
        break;
    }
    }
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "cachify://127.0.0.1:7379";
    struct app a;
    char err[256];
    int rc;

    /* libevent writes with writev: a server gone mid-write must be an
     * error reply (EPIPE), not a signal that kills us. */
    signal(SIGPIPE, SIG_IGN);
    memset(&a, 0, sizeof a);
    a.base = event_base_new();
    if (a.base == NULL) {
        fprintf(stderr, "sleep_for: cannot create an event base\n");
        return 1;
    }
    rc = cachify_async_open(&a.ac, a.base, url, NULL, err, sizeof err);
    if (rc != CACHIFY_OK) {
        fprintf(stderr, "sleep_for: %s: %s\n", url, err);
        event_base_free(a.base);
        return 1;
    }
    advance(&a);
    event_base_dispatch(a.base);
    if (a.ac != NULL) /* the loop ran dry with work left: a bug */
        fail(&a, "event loop", CACHIFY_ERR_IO, "stopped early");
    event_base_free(a.base);
    fflush(stdout);
    return a.failed ? 1 : 0;
}
