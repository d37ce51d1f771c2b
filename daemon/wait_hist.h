/* daemon/wait_hist.h - the histogram of how long ACQUIRE ... WAIT waited.
 *
 * Owns: the bucket bounds and their names, the counts, observed when a queued wait ends
 * in a grant or a timeout (a waiter that leaves first is not counted: it
 * did not learn the outcome).  Does not own: the documents; STATS
 * (cmd_server.c) and /metrics (metrics.c) both read this one struct.
 * I/O-free and O(buckets) per observation.
 */
#ifndef CACHIFY_DAEMON_WAIT_HIST_H
#define CACHIFY_DAEMON_WAIT_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Upper bounds of the finite buckets, in microseconds: 1 ms to 5 min,
 * roughly x2-x5 apart, so both a busy mutex (milliseconds) and a cron job
 * waiting its turn (minutes) land in a bucket of their own.  One more
 * bucket, +Inf, takes the rest. */
#define WAIT_HIST_BOUNDS_US                                                 \
    { 1000, 5000, 10000, 50000, 100000, 250000, 500000, 1000000,          \
      2500000, 5000000, 10000000, 30000000, 60000000, 300000000 }
#define WAIT_HIST_FINITE 14

struct wait_hist {
    uint64_t bucket[WAIT_HIST_FINITE + 1]; /* waits per bucket (not
                                              cumulative); the last is +Inf */
    uint64_t count;                        /* waits observed */
    uint64_t sum_us;                       /* their total wait */
};

/* Adds one wait of us microseconds to h. */
void wait_hist_observe(struct wait_hist *h, uint64_t us);

/* Upper bound of finite bucket i (< WAIT_HIST_FINITE), in microseconds. */
uint64_t wait_hist_bound_us(size_t i);

/* Waits of at most finite bucket i's bound (cumulative, as Prometheus's
 * le buckets); i == WAIT_HIST_FINITE gives count. */
uint64_t wait_hist_cumulative(const struct wait_hist *h, size_t i);

/* The le label of bucket i in seconds ("0.001" ... "300", "+Inf" for
 * i == WAIT_HIST_FINITE), as /metrics and STATS both name it. */
void wait_hist_le(size_t i, char *buf, size_t len);

struct json_t;

/* h as STATS shows it: {"count": n, "sum_us": us, "buckets": {le: waits
 * at most le, ...}}.  NULL when out of memory. */
struct json_t *wait_hist_json(const struct wait_hist *h);

#endif
