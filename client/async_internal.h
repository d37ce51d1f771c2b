/* client/async_internal.h - internal: the pieces of the async client shared
 * by its three files.
 *
 * Owns: the layout of the async handle (struct cachify_async) and of one
 * request (struct areq), and the contracts between
 *   async.c      the public calls, the queue of finished requests and the
 *                one place user callbacks run (so the ENTERED/DELETED rules
 *                live in one function), close;
 *   async_net.c  the cachifyd backend: connections on bufferevents,
 *                matching replies to requests, timeouts;
 *   async_mem.c  the "mem:" backend: the embedded store, and the hand-over
 *                of completions from the store's threads to the loop thread;
 *   async_etcd.c the "etcd://" backend: client/etcd.c on the handle's base.
 * Does not own: the bytes of requests, the checks of arguments and the
 * meaning of replies (client/wire.c, shared with the sync API), URL
 * parsing (client/url.c), the decorator runtime (async_deco.c, which
 * uses the public API, the handle's base and closing flag, and one detach
 * hook) or the renewers (async_renew.c: the same, and a list on the
 * handle).
 *
 * Threads: everything here belongs to the thread running the handle's
 * event_base, except the fields marked "mq_lock" in the mem section, which
 * the store's threads also touch (see async_mem.c).
 */
#ifndef CACHIFY_CLIENT_ASYNC_INTERNAL_H
#define CACHIFY_CLIENT_ASYNC_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "client/cachify.h"
#include "client/url.h"
#include "client/wire.h"

struct event;
struct evdns_base;
struct etcd;
struct ctls;
struct aconn;
struct cachify_async_call;
struct cachify_async_renewer;

/* Short messages fit here; a message naming a long key is allocated. */
#define AREQ_MSG_INLINE 160

/* One request, from the public call that made it until its callback ran.
 * It is always in exactly one place: a connection's FIFO, the mem waits
 * list, or the handle's done queue. */
struct areq {
    struct areq *next;          /* FIFO link (connection or done queue) */
    struct cachify_async *ac;
    /* The command: WIRE_AUTH is internal (a connection's first request,
     * no callback); WIRE_ACQUIRE has the token callback; WIRE_PING is
     * never made (the async API has no ping). */
    enum wire_op op;
    cachify_token_cb tcb;       /* WIRE_ACQUIRE */
    cachify_value_cb vcb;       /* the others */
    void *arg;
    char *key;                  /* prefix + key, NUL-terminated, owned */
    size_t keylen;
    /* inputs */
    uint64_t token;             /* release/extend: the holder's token */
    long long ms;               /* extend: new lifetime */
    struct wire_lock lock;      /* acquire: TTL, WAIT, SESSION */
    unsigned max_size;          /* pool acquire */
    /* network bookkeeping */
    uint64_t timeout_us;        /* reply bound from when it is sent; 0 none */
    uint64_t deadline_us;       /* absolute (async_now_us); 0 = not armed */
    uint64_t seq;               /* handle-wide order of sending */
    /* mem bookkeeping (loop thread only, except mnext: mq_lock) */
    struct areq *wprev, *wnext; /* the handle's list of queued mem waits */
    struct areq *mnext;         /* cross-thread completion queue */
    /* result */
    int status;
    uint64_t result_token;      /* acquire */
    long long value;            /* the others */
    char *msg;                  /* long message, or NULL: see msgbuf */
    char msgbuf[AREQ_MSG_INLINE];
};

enum async_backend { AB_NET, AB_MEM, AB_ETCD };

struct cachify_async {
    struct event_base *base;
    enum async_backend backend;
    struct cachify_url url;      /* AB_NET: where to connect */
    int connect_timeout_ms;
    int io_timeout_ms;
    long long default_exp_ms;
    char *prefix;                /* "" when none */
    size_t prefixlen;
    int pycachify_keys;          /* decorated keys take "-lock" / "-once" */
    uint64_t seq;                /* counter for areq.seq and grants */

    /* Finished requests whose callbacks have not run yet, in the order
     * they finished, and the event that runs them. */
    struct areq *done_head, *done_tail;
    size_t done_count;
    struct event *done_ev;

    /* ENTERED/DELETED: depth counts user callbacks running now; closing
     * is set by cachify_async_close, which frees the handle at once only
     * when depth is 0 and otherwise leaves that to the outermost
     * delivery, right after the callback returns. */
    int depth;
    int closing;

    /* Decorated calls whose body runs: detached when the handle closes. */
    struct cachify_async_call *calls;
    cachify_renew_cb renew_cb;   /* cachify_async_set_renew_cb */
    void *renew_arg;
    /* Started renewers, stopped ones that wait for an EXTEND in flight
     * too: stopped (and reported) when the handle closes. */
    struct cachify_async_renewer *renewers;

    /* AB_NET (async_net.c) */
    struct aconn *main_conn;     /* ordinary requests; NULL until needed */
    struct aconn *dedicated;     /* waiting acquires and SESSION locks */
    struct evdns_base *dns;      /* only for host names; NULL until needed */
    struct ctls *tls;            /* cachifys://: every connection's TLS */

    /* AB_MEM (async_mem.c) */
    struct mem_session *ms;
    struct areq *waits;          /* queued in the store (loop thread) */
    pthread_mutex_t mq_lock;
    int mq_init;
    struct areq *mq_head, *mq_tail; /* mq_lock: finished, not yet seen */
    int wake_fd;                 /* eventfd the store's threads write */
    struct event *wake_ev;

    /* AB_ETCD (async_etcd.c) */
    struct etcd *etcd;
};

/* ---- async.c ---- */

/* A request of op on key (prefix added), or NULL when out of memory. */
struct areq *async_req_new(struct cachify_async *ac, enum wire_op op,
                           const char *key);

/* The checks every public call makes first (a NULL callback is refused:
 * "called exactly once" needs something to call). */
int async_check_call(const struct cachify_async *ac, const char *key,
                     int has_cb);

/* Hands r to the backend: CACHIFY_OK, or an error (r freed). */
int async_submit(struct cachify_async *ac, struct areq *r);

/* Monotonic clock in microseconds. */
uint64_t async_now_us(void);

/* Sets r's result and message (printf format; NULL for "") and moves r to
 * the done queue; its callback runs from the loop soon, never inside the
 * caller's own public call. */
__attribute__((format(printf, 4, 5)))
void async_finish(struct areq *r, int status, long long value,
                  const char *fmt, ...);

/* Finishes r as CACHIFY_LOCKED, CACHIFY_TIMEOUT or (a pool's)
 * CACHIFY_FULL with "<key> is already locked!" or "<key> pool is full",
 * the key as the caller gave it (worded by wire.c). */
void async_finish_locked(struct areq *r, int status);

/* The same for a finished acquire. */
void async_finish_token(struct areq *r, int status, uint64_t token,
                        const char *msg);

/* Runs the callbacks of the done queue (called by the loop's events). */
void async_deliver(struct cachify_async *ac);

/* Frees a request that never reached its callback (a failed submit or an
 * internal AUTH). */
void async_req_free(struct areq *r);

/* ---- async_net.c ---- */

/* Sets up the cachifyd backend of ac: for cachifys://, its TLS settings
 * (a CA or key file that cannot be used is reported here).  CACHIFY_OK,
 * or an error with a message in err[errlen]. */
int anet_open(struct cachify_async *ac, char *err, size_t errlen);

/* Sends r on the right connection (connecting first when needed).
 * CACHIFY_OK: r belongs to the backend and will be finished; else an error
 * status and r is still the caller's. */
int anet_submit(struct cachify_async *ac, struct areq *r);

/* Closes every connection (the server then drops their SESSION locks) and
 * appends their unanswered requests to *tail (internal ones are freed).
 * Frees the resolver and the TLS settings. */
void anet_shutdown(struct cachify_async *ac, struct areq ***tail);

/* ---- async_mem.c ---- */

/* Sets up the embedded backend of ac: CACHIFY_OK, or an error. */
int amem_open(struct cachify_async *ac);

/* Runs r against the embedded store; results come through the done queue.
 * CACHIFY_OK, or an error status and r is still the caller's. */
int amem_submit(struct cachify_async *ac, struct areq *r);

/* Ends the session (its SESSION locks are released, its waits cancelled)
 * and appends the unanswered waits to *tail. */
void amem_shutdown(struct cachify_async *ac, struct areq ***tail);

/* ---- async_etcd.c ---- */

/* Sets up the etcd backend of ac: CACHIFY_OK or CACHIFY_ERR_NOMEM. */
int aetcd_open(struct cachify_async *ac);

/* Starts r on the cluster; as amem_submit. */
int aetcd_submit(struct cachify_async *ac, struct areq *r);

/* Drops every request under way (appended to *tail), revokes the handle's
 * SESSION leases (blocking, at most the io timeout), frees the backend. */
void aetcd_shutdown(struct cachify_async *ac, struct areq ***tail);

/* ---- async_deco.c ---- */

/* Tells every decorated call whose body still runs that ac is going away. */
void adeco_detach_all(struct cachify_async *ac);

/* ---- async_renew.c ---- */

/* Makes a renewer of key (exp_ms: 0 for ac's default; pool: POOL_EXTEND)
 * that does not run yet: a failure is reported to cb(arg), or, with
 * handle_cb, to ac's renew callback at that time.  CACHIFY_OK with *out,
 * CACHIFY_ERR_ARG (no key, or a lifetime that does not end) or
 * CACHIFY_ERR_NOMEM. */
int arenew_new(struct cachify_async_renewer **out, struct cachify_async *ac,
               const char *key, long long exp_ms, int pool,
               cachify_renew_cb cb, void *arg, int handle_cb);

/* Starts r for token; the lease counts from began_ms (monotonic ms, as
 * async_now_us / 1000: when the acquire was sent).  Stopped with
 * cachify_async_renewer_stop, or by the handle's close. */
void arenew_begin(struct cachify_async_renewer *r, uint64_t token,
                  long long began_ms);

/* Frees r made but never begun; NULL or a begun one: nothing. */
void arenew_discard(struct cachify_async_renewer *r);

/* The handle closes: every renewer stops; a running one reports
 * CACHIFY_ERR_CLOSED to its callback, a stopping one's completion gets
 * CACHIFY_ERR_CLOSED; each is freed now, or by its EXTEND's callback
 * (answered CACHIFY_ERR_CLOSED by the close right after).  Called after
 * adeco_detach_all. */
void arenew_detach_all(struct cachify_async *ac);

#endif
