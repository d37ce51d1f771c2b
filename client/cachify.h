/* cachify.h - libcachify-client: py-cachify's lock and decorator semantics
 * for C programs, over cachifyd or over an in-process lock table.
 *
 * One header, opaque types, one error model: every call returns a status
 * (enum cachify_status; 0 is success, errors are negative, and calls that
 * answer yes/no return 1 or 0) and the handle keeps a message for the last
 * failed call (cachify_errstr).  Errors are never sticky: after an I/O
 * error the connection is closed and the next call reconnects.  No global
 * state is required: everything hangs off the handle.
 *
 * Backends, chosen by the URL given to cachify_open / cachify_async_open:
 *   cachify://[:password@]host[:port]   TCP to cachifyd (port 7379)
 *   unix:///path/to/socket               Unix socket to cachifyd
 *   mem:  (or NULL or "")                the embedded backend: one
 *        process-wide, thread-safe lock table built from cachifyd's own
 *        lock engine, shared by every handle opened on "mem:"
 *
 * Lock semantics follow py-cachify 3.x `lock(key, nowait=True, timeout=None,
 * exp=30 s)`: a failed attempt is CACHIFY_LOCKED (or CACHIFY_TIMEOUT after a
 * wait) with the message "<key> is already locked!".  Where cachifyd does
 * better, so does this library: waiting happens on the server (no polling),
 * a release passes the holder's token so it never frees a lock someone else
 * took after an expiry, and the token is returned as a fencing token.
 *
 * Threads: a struct cachify is used by one thread at a time (open one per
 * thread); the embedded table behind them is shared and locked internally.
 * A struct cachify_async belongs to the thread running its event_base.
 */
#ifndef CACHIFY_H
#define CACHIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

#define CACHIFY_CLIENT_VERSION "0.1.0"

enum cachify_status {
    CACHIFY_OK = 0,
    CACHIFY_LOCKED = -1,     /* held, and the call did not wait */
    CACHIFY_TIMEOUT = -2,    /* waited timeout_ms, still held */
    CACHIFY_ERR_IO = -3,     /* connect/send/receive failed or timed out */
    CACHIFY_ERR_PROTO = -4,  /* the server's bytes are not a valid reply */
    CACHIFY_ERR_SERVER = -5, /* the server answered an error; see errstr */
    CACHIFY_ERR_AUTH = -6,   /* password missing or wrong */
    CACHIFY_ERR_ARG = -7,    /* bad URL, key or option */
    CACHIFY_ERR_NOMEM = -8,  /* out of memory */
    CACHIFY_ERR_CLOSED = -9, /* async: the client closed before the reply */
};

/* "OK", "LOCKED", "TIMEOUT", "ERR_IO", ...; "?" for anything else. */
const char *cachify_status_name(int status);

/* Wait without bound (timeout_ms) / the default and no expiry (exp_ms). */
#define CACHIFY_FOREVER (-1LL)
#define CACHIFY_EXP_DEFAULT (-1LL)
#define CACHIFY_EXP_NONE 0LL

struct cachify_options {
    int connect_timeout_ms;   /* 0: 5000 */
    int io_timeout_ms;        /* bound on a reply that is not a wait; 0: 5000 */
    long long default_exp_ms; /* exp of CACHIFY_EXP_DEFAULT; 0: 30000 (py-cachify) */
    const char *prefix;       /* prepended to every key; NULL: none */
};

/* py-cachify's lock(key, nowait, timeout, exp), plus cachifyd's SESSION. */
struct cachify_lock_opts {
    int nowait;           /* 1: one attempt (py-cachify's default) */
    long long timeout_ms; /* with nowait 0: longest wait; CACHIFY_FOREVER */
    long long exp_ms;     /* lifetime; CACHIFY_EXP_DEFAULT or CACHIFY_EXP_NONE */
    int session;          /* also released when this handle's connection ends */
};

#define CACHIFY_LOCK_OPTS_DEFAULT { 1, CACHIFY_FOREVER, CACHIFY_EXP_DEFAULT, 0 }

/* ------------------------------------------------------------------ sync */

struct cachify;

/* Opens a handle on url (see above) with opts (NULL: defaults).  Returns
 * CACHIFY_OK and *out, or an error status with *out NULL and a message in
 * err[errlen] (err may be NULL).  Connects at once, so a bad address or a
 * wrong password is reported here. */
int cachify_open(struct cachify **out, const char *url,
                 const struct cachify_options *opts, char *err, size_t errlen);

/* Closes the connection (releasing its SESSION locks) and frees c.  NULL is
 * a no-op. */
void cachify_close(struct cachify *c);

/* The message of the last call on c that failed ("" after a success).  For
 * CACHIFY_LOCKED and CACHIFY_TIMEOUT: "<key> is already locked!".  Owned by
 * c, valid until the next call on c. */
const char *cachify_errstr(const struct cachify *c);

/* Takes key (prefix added) per opts (NULL: CACHIFY_LOCK_OPTS_DEFAULT).
 * CACHIFY_OK with *token (the fencing token), CACHIFY_LOCKED,
 * CACHIFY_TIMEOUT, or an error. */
int cachify_acquire(struct cachify *c, const char *key,
                    const struct cachify_lock_opts *opts, uint64_t *token);

/* Releases key if token still holds it: 1 released, 0 not held by token
 * (it expired, maybe someone else holds it now), or an error. */
int cachify_release(struct cachify *c, const char *key, uint64_t token);

/* Releases key whoever holds it (py-cachify's release): 1 or 0, or error. */
int cachify_force_release(struct cachify *c, const char *key);

/* 1 when key is held, 0 when not, or an error. */
int cachify_is_locked(struct cachify *c, const char *key);

/* When token holds key, its expiry becomes ms from now: 1; else 0; or an
 * error. */
int cachify_extend(struct cachify *c, const char *key, uint64_t token,
                   long long ms);

/* CACHIFY_OK with *ms: milliseconds left, -1 held with no expiry, -2 not
 * held; or an error. */
int cachify_pttl(struct cachify *c, const char *key, long long *ms);

/* Round trip to the server (CACHIFY_OK); the embedded backend answers at
 * once. */
int cachify_ping(struct cachify *c);

/* ---------------------------------------------------------- scoped lock */

/* Runs fn(arg, token) while holding key, then releases it with its token.
 * Returns the acquire status (fn did not run unless it is CACHIFY_OK). */
int cachify_with_lock(struct cachify *c, const char *key,
                      const struct cachify_lock_opts *opts,
                      void (*fn)(void *arg, uint64_t token), void *arg);

/* A lock held for the rest of a C scope.  status is the acquire status;
 * the lock is held only when it is CACHIFY_OK. */
struct cachify_guard {
    struct cachify *client;
    char *key;
    uint64_t token;
    int status;
};

struct cachify_guard cachify_guard_acquire(struct cachify *c, const char *key,
                                           const struct cachify_lock_opts *opts);

/* Releases a held guard (with its token) and frees its key; safe to call
 * twice and on a guard whose acquire failed. */
void cachify_guard_release(struct cachify_guard *g);

/* Declares guard variable `g` that holds key until the enclosing scope ends
 * by any path (return, break, goto), through the cleanup attribute of GCC
 * and Clang:
 *     CACHIFY_SCOPED_LOCK(g, c, "job", &opts);
 *     if (g.status != CACHIFY_OK) return g.status;
 *     ... critical section ...                                          */
#define CACHIFY_SCOPED_LOCK(g, c, key, opts)                               \
    struct cachify_guard g __attribute__((cleanup(cachify_guard_release))) \
        = cachify_guard_acquire((c), (key), (opts))

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

/* ------------------------------------------------------------ decorators
 *
 * py-cachify's @lock(key='sleep_for_lock-{arg}') and @once(...) as macros
 * that declare, in one place, a function whose every call runs under a lock
 * keyed by its arguments, and its companions <name>_is_locked(args...) and
 * <name>_release(args...) that format the key the same way.  Defined below
 * this line by the implementation (see docs/client.md).
 */

#ifdef __cplusplus
}
#endif

#endif
