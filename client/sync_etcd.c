/* client/sync_etcd.c - the sync API's etcd backend (implements
 * client/sync_etcd.h).
 *
 * Owns: the handle's thread, its event_base and its etcd backend, and the
 * hand-over of one call at a time (a handle is used by one thread at a
 * time, cachify.h): the caller fills `pending` under `mu`, writes the
 * eventfd, and waits on `cv`; the loop thread's wake event starts the call
 * on its base, and the call's end stores the result and signals `cv`.  The
 * backend is touched by the loop thread only, so libevent needs no thread
 * support.  Closing sets `quit` the same way; the loop thread ends, and
 * once it is joined the closing thread frees the backend (which revokes
 * the SESSION leases on a loop of its own, etcd_keep.c).
 */
#include "client/sync_etcd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "client/cachify.h"
#include "client/etcd.h"

/* One call handed to the loop thread (it lives on the caller's stack). */
struct scall {
    struct setcd *s;
    enum wire_op op;
    const char *key;
    size_t keylen;
    const struct wire_lock *lock;
    unsigned max_size;
    uint64_t token;
    long long ms;
    int done;          /* mu */
    int status;
    long long value;
    char msg[256];
};

struct setcd {
    pthread_t thread;
    int started;
    struct event_base *base;
    struct etcd *etcd;
    int wake_fd;
    struct event *wake_ev;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct scall *pending;  /* mu: handed over, not yet started */
    int quit;               /* mu */
};

/* The loop thread's end of a call: the result, then the caller wakes. */
static void on_done(void *arg, int status, long long value, const char *msg)
{
    struct scall *sc = arg;
    struct setcd *s = sc->s;

    pthread_mutex_lock(&s->mu);
    sc->status = status;
    sc->value = value;
    snprintf(sc->msg, sizeof sc->msg, "%s", msg);
    sc->done = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    struct setcd *s = arg;
    struct scall *sc;
    uint64_t count;
    ssize_t n;
    int quit;

    (void)what;
    n = read(fd, &count, sizeof count); /* resets the counter */
    (void)n;
    pthread_mutex_lock(&s->mu);
    sc = s->pending;
    s->pending = NULL;
    quit = s->quit;
    pthread_mutex_unlock(&s->mu);
    if (sc != NULL &&
        etcd_start(s->etcd, sc->op, sc->key, sc->keylen, sc->lock,
                   sc->max_size, sc->token,
                   sc->ms, on_done, sc) != CACHIFY_OK)
        on_done(sc, CACHIFY_ERR_NOMEM, 0, "out of memory");
    if (quit)
        event_base_loopbreak(s->base);
}

static void *loop_main(void *arg)
{
    struct setcd *s = arg;

    event_base_dispatch(s->base);
    return NULL;
}

static void wake(struct setcd *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->wake_fd, &one, sizeof one);

    (void)w; /* an eventfd counter does not fill at one write per call */
}

int setcd_open(struct setcd **out, const struct cachify_url *url,
               int io_timeout_ms, char *err, size_t errlen)
{
    struct setcd *s = calloc(1, sizeof *s);

    *out = NULL;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    s->wake_fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->base = event_base_new();
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->base != NULL && s->wake_fd >= 0)
        s->wake_ev = event_new(s->base, s->wake_fd, EV_READ | EV_PERSIST,
                               on_wake, s);
    if (s->wake_ev != NULL && event_add(s->wake_ev, NULL) == 0)
        s->etcd = etcd_new(s->base, url, io_timeout_ms);
    if (s->etcd == NULL || pthread_create(&s->thread, NULL, loop_main, s) != 0) {
        setcd_close(s);
        snprintf(err, errlen, "out of memory");
        return CACHIFY_ERR_NOMEM;
    }
    s->started = 1;
    *out = s;
    return CACHIFY_OK;
}

void setcd_close(struct setcd *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        pthread_mutex_unlock(&s->mu);
        wake(s);
        pthread_join(s->thread, NULL);
    }
    /* The loop has stopped: the backend is ours now. */
    etcd_free(s->etcd, NULL, NULL);
    if (s->wake_ev)
        event_free(s->wake_ev);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->base)
        event_base_free(s->base);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int setcd_call(struct setcd *s, enum wire_op op, const char *key,
               size_t keylen, const struct wire_lock *lock, unsigned max_size,
               uint64_t token,
               long long ms, long long *value, char *msg, size_t msglen)
{
    struct scall sc;

    memset(&sc, 0, sizeof sc);
    sc.s = s;
    sc.op = op;
    sc.key = key;
    sc.keylen = keylen;
    sc.lock = lock;
    sc.max_size = max_size;
    sc.token = token;
    sc.ms = ms;
    pthread_mutex_lock(&s->mu);
    s->pending = &sc;
    pthread_mutex_unlock(&s->mu);
    wake(s);
    pthread_mutex_lock(&s->mu);
    while (!sc.done)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (value != NULL)
        *value = sc.value;
    snprintf(msg, msglen, "%s", sc.status == CACHIFY_OK ? "" : sc.msg);
    return sc.status;
}
