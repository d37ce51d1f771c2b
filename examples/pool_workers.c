/* examples/pool_workers.c - py-cachify's "Multiple Concurrent Executions"
 * pool tutorial, with threads and the sync API.
 *
 *     build/examples/pool_workers [URL]
 *
 * URL defaults to cachify://127.0.0.1:7379; "mem:" runs on the embedded
 * store, no daemon needed; an etcd://host:2379,... URL on an etcd cluster.  Four workers start at once against
 * pool(key='concurrent-pool', max_size=2); each that gets a slot holds it
 * for a second.  The output is the Python's, line for line:
 *
 *     Worker W0 started
 *     Worker W1 started
 *     Worker W2 could not acquire slot - pool full
 *     Worker W3 could not acquire slot - pool full
 *     Worker W0 finished
 *     Worker W1 finished
 *
 * and the exit status is 0 (1 when a call failed otherwise, with its
 * message on stderr).  The decorated function is declared once with
 * CACHIFY_POOLED_FN_VOID, py-cachify's @pooled with on_full; worker_size()
 * comes with it.
 *
 * Python's asyncio tasks become threads, one handle each.  asyncio runs its
 * tasks in the order gather() got them, so its lines come in that order;
 * threads would print in whatever order the scheduler picks, so the workers
 * take turns at the two points where their output is decided: trying for
 * a slot (W0, W1, W2, W3 in turn, all four running at once), and printing
 * "finished" (in the order they started).  A worker inside holds its slot
 * for a second and until every worker has tried, so W2 and W3 find the
 * pool full however slow the machine is.  The pool itself is the server's
 * (or the mem: table's): the turns order the prints, the pool decides who
 * gets in.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/cachify.h"

#define NWORKERS 4

static const char *g_url = "cachify://127.0.0.1:7379";

/* The turns (see the top). */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_turn;      /* the worker that tries for a slot next */
static int g_started;   /* workers that got in so far */
static int g_finished;  /* workers that printed "finished" so far */

/* Waits until *counter reaches value. */
static void await_turn(const int *counter, int value)
{
    pthread_mutex_lock(&g_mu);
    while (*counter < value)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
}

/* Adds one to *counter; returns the value before. */
static int bump(int *counter)
{
    pthread_mutex_lock(&g_mu);
    int was = (*counter)++;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    return was;
}

/* on_full=lambda name: print(f'Worker {name} could not acquire slot -
 * pool full') */
static void report_full(const char *name)
{
    printf("Worker %s could not acquire slot - pool full\n", name);
    fflush(stdout);
    bump(&g_turn);
}

/* @pooled(key='concurrent-pool', max_size=2, on_full=report_full) */
static const struct cachify_lock_opts slot_opts = CACHIFY_LOCK_OPTS_DEFAULT;

CACHIFY_POOLED_FN_VOID(worker, (const char *name), (name),
                       ("concurrent-pool"), 2, &slot_opts, 0,
                       report_full(name))
{
    printf("Worker %s started\n", name);
    fflush(stdout);
    int order = bump(&g_started);
    bump(&g_turn);
    struct timespec second = {1, 0};
    nanosleep(&second, NULL); /* await asyncio.sleep(1) */
    await_turn(&g_turn, NWORKERS);
    await_turn(&g_finished, order);
    printf("Worker %s finished\n", name);
    fflush(stdout);
    bump(&g_finished);
}

struct job {
    pthread_t thread;
    int index;
    char name[8];
    int status;
    char errstr[256];
};

static void *run_job(void *p)
{
    struct job *job = p;
    struct cachify *c;
    char err[256];

    job->status = cachify_open(&c, g_url, NULL, err, sizeof err);
    await_turn(&g_turn, job->index);
    if (job->status != CACHIFY_OK) {
        snprintf(job->errstr, sizeof job->errstr, "%s", err);
        bump(&g_turn);
        return NULL;
    }
    job->status = worker(c, job->name);
    snprintf(job->errstr, sizeof job->errstr, "%s", cachify_errstr(c));
    if (job->status < 0 && job->status != CACHIFY_LOST)
        bump(&g_turn); /* neither in nor full: let the next one try */
    cachify_close(c);
    return NULL;
}

int main(int argc, char **argv)
{
    struct job jobs[NWORKERS];
    int failed = 0;

    if (argc > 1)
        g_url = argv[1];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < NWORKERS; i++) {
        jobs[i].index = i;
        snprintf(jobs[i].name, sizeof jobs[i].name, "W%d", i);
        if (pthread_create(&jobs[i].thread, NULL, run_job, &jobs[i]) != 0) {
            fprintf(stderr, "pool_workers: cannot start a thread\n");
            return 1;
        }
    }
    for (int i = 0; i < NWORKERS; i++)
        pthread_join(jobs[i].thread, NULL);
    /* 0: ran in a slot; 1: the pool was full and on_full ran. */
    for (int i = 0; i < NWORKERS; i++) {
        if (jobs[i].status != CACHIFY_OK && jobs[i].status != 1) {
            fprintf(stderr, "pool_workers: worker %s: %s: %s\n",
                    jobs[i].name, cachify_status_name(jobs[i].status),
                    jobs[i].errstr);
            failed = 1;
        }
    }
    return failed;
}
