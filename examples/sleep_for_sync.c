/* examples/sleep_for_sync.c - py-cachify's "Lock as a decorator" example,
 * with threads and the sync API.
 *
 *     build/examples/sleep_for_sync [URL]
 *
 * URL defaults to cachify://127.0.0.1:7379; "mem:" runs on the embedded
 * store, no daemon needed.  The output is the one py-cachify's documentation
 * shows for this example, byte for byte (py-cachify 3.x's code names the
 * key "sleep_for_lock-1-lock": its decorators add "-lock"):
 *
 *     Sleep for is locked for argument 3: True
 *     Sleep for is locked for argument 4: False
 *     Sleep for is locked for argument 5: True
 *     Sleep for is locked for argument 5: False
 *     sleep_for_lock-1 is already locked!          (stderr: py-cachify's log)
 *     Exception: sleep_for_lock-1 is already locked!
 *
 * Python's tasks become threads; each thread opens its own handle, since a
 * handle belongs to one thread at a time.  The decorated function is
 * declared once with CACHIFY_LOCKED_FN_VOID, which also defines
 * sleep_for_is_locked() and sleep_for_release().  docs/client.md quotes
 * this file.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cachify.h"

static const char *g_url = "cachify://127.0.0.1:7379";

/* @lock(key='sleep_for_lock-{arg}', nowait=True) */
static const struct cachify_lock_opts sleep_opts = CACHIFY_LOCK_OPTS_DEFAULT;

CACHIFY_LOCKED_FN_VOID(sleep_for, (int arg), (arg), ("sleep_for_lock-%d", arg),
                       &sleep_opts)
{
    struct timespec ts = {arg, 0};

    nanosleep(&ts, NULL); /* the work the lock protects */
}

/* One sleep_for(arg) call in its own thread: its status and message. */
struct call {
    pthread_t thread;
    int arg;
    pthread_barrier_t *start; /* NULL, or wait here before the call */
    int status;
    char errstr[256];
};

static void *run_call(void *p)
{
    struct call *call = p;
    struct cachify *c;
    char err[256];

    call->status = cachify_open(&c, g_url, NULL, err, sizeof err);
    if (call->status != CACHIFY_OK) {
        snprintf(call->errstr, sizeof call->errstr, "%s", err);
        if (call->start != NULL)
            pthread_barrier_wait(call->start);
        return NULL;
    }
    if (call->start != NULL)
        pthread_barrier_wait(call->start); /* gather(): both start together */
    call->status = sleep_for(c, call->arg);
    snprintf(call->errstr, sizeof call->errstr, "%s", cachify_errstr(c));
    cachify_close(c);
    return NULL;
}

static int start_call(struct call *call, int arg, pthread_barrier_t *start)
{
    memset(call, 0, sizeof *call);
    call->arg = arg;
    call->start = start;
    return pthread_create(&call->thread, NULL, run_call, call);
}

/* asyncio.sleep(0.1) in the example: give the thread time to take its lock. */
static void pause_100ms(void)
{
    struct timespec ts = {0, 100 * 1000 * 1000};

    nanosleep(&ts, NULL);
}

static const char *py_bool(int v)
{
    return v == 1 ? "True" : "False";
}

/* Prints "Sleep for is locked for argument N: True|False"; -1 on error. */
static int print_locked(struct cachify *c, int arg)
{
    int locked = sleep_for_is_locked(c, arg);

    if (locked < 0) {
        fprintf(stderr, "is_locked(%d): %s: %s\n", arg,
                cachify_status_name(locked), cachify_errstr(c));
        return -1;
    }
    printf("Sleep for is locked for argument %d: %s\n", arg, py_bool(locked));
    return 0;
}

int main(int argc, char **argv)
{
    struct cachify *c;
    struct call t3, t5, pair[2];
    pthread_barrier_t barrier;
    char err[256];
    int failed = 0, rc;

    if (argc > 1)
        g_url = argv[1];
    rc = cachify_open(&c, g_url, NULL, err, sizeof err);
    if (rc != CACHIFY_OK) {
        fprintf(stderr, "sleep_for_sync: %s: %s\n", cachify_status_name(rc),
                err);
        return 1;
    }

    /* A call with arg=3, then: is 3 locked (yes), is 4 locked (no)? */
    if (start_call(&t3, 3, NULL) != 0)
        return 1;
    pause_100ms();
    if (print_locked(c, 3) != 0 || print_locked(c, 4) != 0)
        return 1;

    /* A call with arg=5; locked; forcefully released; not locked. */
    if (start_call(&t5, 5, NULL) != 0)
        return 1;
    pause_100ms();
    if (print_locked(c, 5) != 0)
        return 1;
    if (sleep_for_release(c, 5) < 0) {
        fprintf(stderr, "release(5): %s\n", cachify_errstr(c));
        return 1;
    }
    if (print_locked(c, 5) != 0)
        return 1;
    pthread_join(t5.thread, NULL);
    pthread_join(t3.thread, NULL);
    /* sleep_for(5)'s lock was force-released while it slept, so its own
     * release found it gone: CACHIFY_LOST, where py-cachify notices
     * nothing. */
    if (t3.status != CACHIFY_OK || t5.status != CACHIFY_LOST) {
        fprintf(stderr, "sleep_for(3): %s; sleep_for(5): %s\n", t3.errstr,
                t5.errstr);
        return 1;
    }

    /* Two calls with the same argument at once: one gets the lock, the
     * other fails with CACHIFY_LOCKED ("raises CachifyLockError"). */
    pthread_barrier_init(&barrier, NULL, 2);
    if (start_call(&pair[0], 1, &barrier) != 0 ||
        start_call(&pair[1], 1, &barrier) != 0)
        return 1;
    pthread_join(pair[0].thread, NULL);
    pthread_join(pair[1].thread, NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++) {
        if (pair[i].status == CACHIFY_LOCKED) {
            failed++;
            /* py-cachify logs the message, then the caller prints it. */
            fflush(stdout);
            fprintf(stderr, "%s\n", pair[i].errstr);
            printf("Exception: %s\n", pair[i].errstr);
        } else if (pair[i].status != CACHIFY_OK) {
            fprintf(stderr, "sleep_for(1): %s: %s\n",
                    cachify_status_name(pair[i].status), pair[i].errstr);
            return 1;
        }
    }
    cachify_close(c);
    return failed == 1 ? 0 : 1;
}
