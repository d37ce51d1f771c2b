/* bench/backend_bench.c - the client library's cost per lock on one
 * backend, through the public API, so cachifyd and etcd are measured the
 * same way.  bench/backends.sh runs it against both on this machine.
 *
 *     backend_bench URL SECONDS CLIENTS HANDOFFS
 *
 * Prints two tab-separated lines:
 *   pairs   <acquire/release pairs per second>   (CLIENTS threads, each
 *           its own handle and key, SECONDS long)
 *   handoff <median ms> <p90 ms> <max ms>         (HANDOFFS rounds: a
 *           waiter blocked in acquire, the holder releases; the time from
 *           the release call to the waiter's grant)
 * Exits non-zero when a call fails.  Not a test: no figure is judged.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/cachify.h"

static const char *g_url;
static double g_secs;
static pthread_barrier_t g_go, g_done;
static double g_released_at, g_granted_at;
static long g_pairs[64];

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static struct cachify *open_or_die(void)
{
    struct cachify *c;
    char err[256];

    if (cachify_open(&c, g_url, NULL, err, sizeof err) != CACHIFY_OK) {
        fprintf(stderr, "backend_bench: open %s: %s\n", g_url, err);
        exit(1);
    }
    return c;
}

static void die_call(struct cachify *c, const char *what)
{
    fprintf(stderr, "backend_bench: %s: %s\n", what, cachify_errstr(c));
    exit(1);
}

static void *pairs_main(void *arg)
{
    long id = (long)arg;
    struct cachify *c = open_or_die();
    char key[64];
    double end;

    snprintf(key, sizeof key, "bench-pairs-%ld-%ld", (long)getpid(), id);
    pthread_barrier_wait(&g_go);
    end = now_s() + g_secs;
    while (now_s() < end) {
        uint64_t t;

        if (cachify_acquire(c, key, NULL, &t) != CACHIFY_OK)
            die_call(c, "acquire");
        if (cachify_release(c, key, t) != 1)
            die_call(c, "release");
        g_pairs[id]++;
    }
    cachify_close(c);
    return NULL;
}

static void *waiter_main(void *arg)
{
    struct cachify_lock_opts wait = {0, 30000, 0, 0, 0};
    struct cachify *c = open_or_die();
    long rounds = (long)arg;

    for (long i = 0; i < rounds; i++) {
        uint64_t t;

        pthread_barrier_wait(&g_go);
        if (cachify_acquire(c, "bench-handoff", &wait, &t) != CACHIFY_OK)
            die_call(c, "waiting acquire");
        g_granted_at = now_s();
        if (cachify_release(c, "bench-handoff", t) != 1)
            die_call(c, "waiter's release");
        pthread_barrier_wait(&g_done);
    }
    cachify_close(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    pthread_t th[64];
    long clients, rounds, total = 0;
    double *lat;
    struct cachify *holder;

    if (argc != 5) {
        fprintf(stderr, "usage: backend_bench URL SECONDS CLIENTS HANDOFFS\n");
        return 2;
    }
    g_url = argv[1];
    g_secs = atof(argv[2]);
    clients = atol(argv[3]);
    rounds = atol(argv[4]);
    if (clients < 1 || clients > 64 || rounds < 1 || g_secs <= 0) {
        fprintf(stderr, "backend_bench: CLIENTS 1..64, HANDOFFS >= 1\n");
        return 2;
    }
    /* Pairs per second. */
    pthread_barrier_init(&g_go, NULL, (unsigned)clients);
    for (long i = 0; i < clients; i++)
        pthread_create(&th[i], NULL, pairs_main, (void *)i);
    for (long i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        total += g_pairs[i];
    }
    pthread_barrier_destroy(&g_go);
    printf("pairs\t%.0f\n", (double)total / g_secs);
    fflush(stdout);
    /* Handoff latency. */
    lat = calloc((size_t)rounds, sizeof *lat);
    holder = open_or_die();
    pthread_barrier_init(&g_go, NULL, 2);
    pthread_barrier_init(&g_done, NULL, 2);
    pthread_create(&th[0], NULL, waiter_main, (void *)rounds);
    for (long i = 0; i < rounds && lat != NULL; i++) {
        uint64_t t;

        if (cachify_acquire(holder, "bench-handoff", NULL, &t) != CACHIFY_OK)
            die_call(holder, "holder's acquire");
        pthread_barrier_wait(&g_go);
        usleep(50 * 1000); /* the waiter is queued by now */
        g_released_at = now_s();
        if (cachify_release(holder, "bench-handoff", t) != 1)
            die_call(holder, "holder's release");
        pthread_barrier_wait(&g_done);
        lat[i] = (g_granted_at - g_released_at) * 1000;
    }
    pthread_join(th[0], NULL);
    cachify_close(holder);
    if (lat == NULL)
        return 1;
    qsort(lat, (size_t)rounds, sizeof *lat, cmp_double);
    printf("handoff\t%.2f\t%.2f\t%.2f\n", lat[rounds / 2],
           lat[rounds * 9 / 10], lat[rounds - 1]);
    free(lat);
    return 0;
}
