/* cachify_async.h - libcachify-client's async API: struct cachify_async
 * on the caller's libevent event_base, its lock and pool calls with their
 * callbacks, and the async renewer.
 *
 * Owns the declarations of client/async.c, client/async_pool.c and
 * client/async_renew.c.  Does not own the options, statuses, lock options
 * or the renew callback type it uses (cachify.h), nor the async decorator
 * macros (cachify_async_decorate.h).  Not included on its own: cachify.h
 * includes it, and user code includes <cachify.h> alone.
 */
#ifndef CACHIFY_ASYNC_H
#define CACHIFY_ASYNC_H

#ifndef CACHIFY_H
#error "include <cachify.h>, which includes cachify_async.h"
#endif

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

/* ----------------------------------------------------------------- async */

struct cachify_async;

/* Callback for acquire: status as cachify_acquire, token when CACHIFY_OK,
 * errstr the message (never NULL; "" on success). */
typedef void (*cachify_token_cb)(struct cachify_async *ac, int status,
                                 uint64_t token, const char *errstr,
                                 void *arg);

/* Callback for the other calls: status < 0 is an error; otherwise value is
 * the result the sync call would return (1/0, or milliseconds for pttl). */
typedef void (*cachify_value_cb)(struct cachify_async *ac, int status,
                                 long long value, const char *errstr,
                                 void *arg);

/* Opens an async handle on base (see cachify_open for url/opts/err).
 * Connects asynchronously: a connect failure is reported to the first
 * callbacks; a bad URL is reported here. */
int cachify_async_open(struct cachify_async **out, struct event_base *base,
                       const char *url, const struct cachify_options *opts,
                       char *err, size_t errlen);

/* Closes ac.  Pending callbacks are called with CACHIFY_ERR_CLOSED before it
 * returns.  Safe to call from inside one of ac's callbacks (it then takes
 * effect when that callback returns). */
void cachify_async_close(struct cachify_async *ac);

/* Each returns CACHIFY_OK when the request is under way (its callback will
 * be called exactly once, never from inside this call), or an error status
 * (and the callback is not called).  A waiting acquire does not hold up the
 * handle's other requests. */
int cachify_async_acquire(struct cachify_async *ac, const char *key,
                          const struct cachify_lock_opts *opts,
                          cachify_token_cb cb, void *arg);
int cachify_async_release(struct cachify_async *ac, const char *key,
                          uint64_t token, cachify_value_cb cb, void *arg);
int cachify_async_force_release(struct cachify_async *ac, const char *key,
                                cachify_value_cb cb, void *arg);
int cachify_async_is_locked(struct cachify_async *ac, const char *key,
                            cachify_value_cb cb, void *arg);
int cachify_async_extend(struct cachify_async *ac, const char *key,
                         uint64_t token, long long ms, cachify_value_cb cb,
                         void *arg);
int cachify_async_pttl(struct cachify_async *ac, const char *key,
                       cachify_value_cb cb, void *arg);

/* Pools, as the sync calls (cachify_pool_*): the acquire's token comes
 * through cb (CACHIFY_FULL, CACHIFY_TIMEOUT with "<key> pool is full",
 * CACHIFY_ERR_TYPE ...); release answers 1/0, force_release and size a
 * count, extend 1/0.  A waiting or SESSION slot gets a connection of its
 * own, as a lock does. */
int cachify_async_pool_acquire(struct cachify_async *ac, const char *key,
                               unsigned max_size,
                               const struct cachify_lock_opts *opts,
                               cachify_token_cb cb, void *arg);
int cachify_async_pool_release(struct cachify_async *ac, const char *key,
                               uint64_t token, cachify_value_cb cb,
                               void *arg);
int cachify_async_pool_force_release(struct cachify_async *ac,
                                     const char *key, cachify_value_cb cb,
                                     void *arg);
int cachify_async_pool_size(struct cachify_async *ac, const char *key,
                            cachify_value_cb cb, void *arg);
int cachify_async_pool_extend(struct cachify_async *ac, const char *key,
                              uint64_t token, long long ms,
                              cachify_value_cb cb, void *arg);

/* --------------------------------------------------------- async renewal
 *
 * The sync renewer's job (see "renewal" in cachify.h) for a lock or pool slot
 * taken with cachify_async_acquire / cachify_async_pool_acquire, from the
 * handle's event loop and over the handle's own connection (no thread):
 * EXTEND (POOL_EXTEND) key token exp_ms every exp_ms / 3, with the sync
 * renewer's timing and rules.  The lease counts from the start call, so
 * start it in the acquire's callback.  A renewal that fails is never
 * swallowed: the server's 0 (the token no longer holds the key: it expired
 * or was force-released) is reported at once; an error, or a renewal that
 * cannot be sent, is retried every exp_ms / 10 and reported when no
 * renewal got through before the lease would end (a renewal with no answer
 * by then, e.g. a stopped server, is given up then too, whatever the
 * handle's io timeout).  Reported means: cb(key, token, status, errstr,
 * arg) once, from the loop, and the renewer stops renewing; its stop
 * returns CACHIFY_LOST.  A holder cut off from the server keeps the lock
 * for exp_ms after its last renewal that got through (so for at least
 * 2/3 of exp_ms), and learns it within exp_ms / 10 after the lease may
 * have ended.
 *
 * Ordering: an EXTEND may be on its way when you stop.  The stop's
 * completion runs only after it was answered, so a release sent from the
 * completion reaches the server after every EXTEND of the renewer, on
 * every backend; release from there.  A release sent before it may be
 * overtaken by that EXTEND where the two travel apart (etcd://, a SESSION
 * lock's own connection): harmless for a lock (the EXTEND of a released
 * token finds nothing), but the stop then reports the 0 as CACHIFY_LOST.
 *
 * Closing the handle stops its renewers: a running one reports
 * CACHIFY_ERR_CLOSED to cb (the lock is no longer renewed and ends with
 * its lease), a stopping one's completion gets CACHIFY_ERR_CLOSED; all are
 * freed by the close (do not stop them afterwards).
 */
struct cachify_async_renewer;

/* A stop's completion: status CACHIFY_OK (no renewal failed), CACHIFY_LOST
 * (one did; cb was told), or CACHIFY_ERR_CLOSED (the handle closed first).
 * Runs from the loop, never inside the stop; the renewer is freed before. */
typedef void (*cachify_async_stopped_cb)(struct cachify_async *ac,
                                         int status, void *arg);

/* Starts renewing key, held by token with lifetime exp_ms (0: the handle's
 * default_exp_ms), and counts its lease from now.  CACHIFY_OK with *out;
 * CACHIFY_ERR_ARG (no key, token 0, CACHIFY_EXP_NONE: nothing expires),
 * CACHIFY_ERR_CLOSED (the handle is closing), CACHIFY_ERR_NOMEM.  cb may
 * be NULL (the stop still says CACHIFY_LOST). */
int cachify_async_renewer_start(struct cachify_async_renewer **out,
                                struct cachify_async *ac, const char *key,
                                uint64_t token, long long exp_ms,
                                cachify_renew_cb cb, void *arg);

/* The same for a pool slot taken with cachify_async_pool_acquire. */
int cachify_async_pool_renewer_start(struct cachify_async_renewer **out,
                                     struct cachify_async *ac,
                                     const char *key, uint64_t token,
                                     long long exp_ms, cachify_renew_cb cb,
                                     void *arg);

/* Stops r (once; r is no longer yours): returns CACHIFY_OK when no renewal
 * failed so far, CACHIFY_LOST when one did; done (may be NULL) then gets
 * the final word once no EXTEND of r is in flight (CACHIFY_LOST too when
 * that EXTEND found the token gone).  NULL r: CACHIFY_OK; a renewer its
 * handle is closing (from cb's CACHIFY_ERR_CLOSED report):
 * CACHIFY_ERR_CLOSED, nothing done. */
int cachify_async_renewer_stop(struct cachify_async_renewer *r,
                               cachify_async_stopped_cb done, void *arg);

#ifdef __cplusplus
}
#endif

#endif
