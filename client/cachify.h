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
 *   cachifys://[:password@]host[:port][/]
 *       [?ca=PATH&cert=PATH&key=PATH&servername=NAME]
 *        TCP with TLS 1.2 or later to cachifyd's tls_port (port 7380 by
 *        default: cachifyd's tls_port has no default, 7380 is the
 *        convention).  The server's certificate is always verified:
 *        against the CA file (or hashed directory) ca=, else the system's
 *        default CAs; it must name host (or servername=, also sent as
 *        SNI; an IP address is matched against the certificate's IP
 *        addresses).  cert= and key= (both or neither): a client
 *        certificate, for a server with tls_auth_clients.  Option values
 *        are percent-decoded (%40 for '@', %26 for '&'); an unknown option,
 *        or a file that cannot be used, is CACHIFY_ERR_ARG at open; a
 *        certificate refused either way is CACHIFY_ERR_IO, at open for
 *        the sync API, through the first callbacks for the async one.
 *        connect_timeout_ms bounds the TCP connect and the handshake.
 *   unix:///path/to/socket               Unix socket to cachifyd
 *   mem:  (or NULL or "")                the embedded backend: one
 *        process-wide, thread-safe lock table built from cachifyd's own
 *        lock engine, shared by every handle opened on "mem:"
 *   etcd://[user:password@]host[:port][,host[:port]...][/?prefix=P]
 *        an etcd cluster (port 2379) through its v3 JSON gateway: the
 *        same calls and messages; lifetimes in whole seconds, 2 s at least
 *        (docs/client.md, "The etcd backend")
 *
 * Lock semantics follow py-cachify 3.x `lock(key, nowait=True, timeout=None,
 * exp=30 s)`: a failed attempt is CACHIFY_LOCKED (or CACHIFY_TIMEOUT after a
 * wait) with the message "<key> is already locked!".  Where cachifyd does
 * better, so does this library: waiting happens on the server (no polling),
 * a release passes the holder's token so it never frees a lock someone else
 * took after an expiry (and a decorated call then says CACHIFY_LOST), and
 * the token is returned as a fencing token.  With pycachify_keys, keys are
 * laid out as py-cachify 3.x stores them ("PYC-<key>-lock"), so C and
 * Python programs share locks.
 *
 * Threads: a struct cachify is used by one thread at a time (open one per
 * thread); the embedded table behind them is shared and locked internally.
 * A struct cachify_async belongs to the thread running its event_base.
 *
 * Names that start with cachify_impl_ or CACHIFY_IMPL_ are what the
 * decorator macros expand to: not API, not for direct use.  (Not a double
 * underscore: C++ reserves every name that contains one, and this header
 * is read by C++ compilers too.)
 */
#ifndef CACHIFY_H
#define CACHIFY_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct event_base;

#define CACHIFY_CLIENT_VERSION "0.3.0"

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
    CACHIFY_LOST = -10,      /* the body ran, but at its release the lock
                                was no longer held by its token: it expired
                                or was force-released meanwhile, and someone
                                else may have held it while the body ran */
    CACHIFY_FULL = -11,      /* pool: every slot is held, and the call did
                                not wait (py-cachify's CachifyPoolFullError) */
    CACHIFY_ERR_TYPE = -12,  /* the key is a pool where a lock was asked
                                for, or a lock where a pool was, or the pool
                                lives with another max_size */
};

/* "OK", "LOCKED", "TIMEOUT", "ERR_IO", ..., "LOST", "FULL", "ERR_TYPE";
 * "?" for anything else. */
const char *cachify_status_name(int status);

/* In both option structs a zero field means its default, so `{0}` and a
 * struct that names only some fields are safe.  A wait without bound
 * (timeout_ms) and a lock that never expires (exp_ms) are asked for by
 * name only: CACHIFY_FOREVER is LLONG_MAX, not -1, because -1 is what a
 * failed computation or poll()'s "infinite" habit hands over by accident;
 * any negative is CACHIFY_ERR_ARG.  CACHIFY_EXP_NONE is the same value: a
 * lifetime without bound. */
#define CACHIFY_FOREVER LLONG_MAX
#define CACHIFY_EXP_DEFAULT 0LL
#define CACHIFY_EXP_NONE CACHIFY_FOREVER

struct cachify_options {
    int connect_timeout_ms;   /* 0: 5000 */
    int io_timeout_ms;        /* bound on a reply that is not a wait; 0: 5000 */
    long long default_exp_ms; /* exp of CACHIFY_EXP_DEFAULT; 0: 30000 (py-cachify) */
    const char *prefix;       /* prepended to every key; NULL: none, or
                                 "PYC-" with pycachify_keys */
    int pycachify_keys;       /* 1: keys as py-cachify 3.x stores them, so a
                                 Python program and this one contend for the
                                 same locks: prefix "PYC-" unless prefix is
                                 set, and the decorators add "-lock" (lock)
                                 or "-once" (once) to the formatted key;
                                 0: neither */
};

/* py-cachify's lock(key, nowait, timeout, exp), plus cachifyd's SESSION.
 * `{0}` is CACHIFY_LOCK_OPTS_DEFAULT in effect: a wait of 0 ms is one
 * attempt, as nowait is. */
struct cachify_lock_opts {
    int nowait;           /* 1: one attempt (py-cachify's default) */
    long long timeout_ms; /* with nowait 0: longest wait, 0 one attempt;
                             CACHIFY_FOREVER; negative: CACHIFY_ERR_ARG */
    long long exp_ms;     /* lifetime; 0 (CACHIFY_EXP_DEFAULT): the handle's
                             default_exp_ms; CACHIFY_EXP_NONE: never */
    int session;          /* also released when this handle's connection ends */
    int renew;            /* 1: while a guard, cachify_with_lock or a
                             decorated call holds the lock, a renewer keeps
                             it alive (cachify_renewer_start); a failed
                             renewal goes to the handle's renew callback
                             and makes the release CACHIFY_LOST.  The plain
                             calls (cachify_acquire, cachify_async_acquire)
                             ignore it: start a renewer yourself
                             (cachify_renewer_start,
                             cachify_async_renewer_start). */
};

#define CACHIFY_LOCK_OPTS_DEFAULT { 1, CACHIFY_FOREVER, CACHIFY_EXP_DEFAULT, 0, 0 }

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

/* ----------------------------------------------------------------- pools
 *
 * py-cachify's pool(key, max_size, slot_exp): a key that admits up to
 * max_size holders at once, decided atomically on every backend (cachifyd,
 * the mem: table, and on etcd:// one transaction per slot request, waiters
 * polling: docs/client.md, "The etcd backend"), with FIFO waiting and a
 * fencing token per slot.  opts are a
 * lock's: nowait/timeout_ms for waiting, exp_ms for the slot's lifetime
 * (py-cachify's slot_exp), session.  A key is a lock or a pool, never
 * both: the other kind's calls answer CACHIFY_ERR_TYPE.  Messages:
 * CACHIFY_FULL and CACHIFY_TIMEOUT say "<key> pool is full".  These pools
 * do not share state with py-cachify's own pools (a pickled value there).
 */

/* Takes a slot of pool key (1 <= max_size <= 1000000; a live pool keeps
 * its size: another answers CACHIFY_ERR_TYPE).  CACHIFY_OK with *token,
 * CACHIFY_FULL (no wait), CACHIFY_TIMEOUT, or an error. */
int cachify_pool_acquire(struct cachify *c, const char *key,
                         unsigned max_size, const struct cachify_lock_opts *opts,
                         uint64_t *token);

/* Frees key's slot held by token: 1, 0 when no slot of key has it (it
 * expired or was force-released), or an error. */
int cachify_pool_release(struct cachify *c, const char *key, uint64_t token);

/* Frees every slot of key: how many (>= 0), or an error. */
int cachify_pool_force_release(struct cachify *c, const char *key);

/* Slots of key held now (py-cachify's size()), 0 when none; or an error. */
int cachify_pool_size(struct cachify *c, const char *key);

/* When token holds a slot of key, it expires ms from now: 1; else 0; or an
 * error. */
int cachify_pool_extend(struct cachify *c, const char *key, uint64_t token,
                        long long ms);

/* A pool slot held for the rest of a C scope: as struct cachify_guard. */
struct cachify_pool_guard {
    struct cachify *client;
    char *key;
    uint64_t token;
    int status;
    struct cachify_renewer *renewer; /* with opts.renew (POOL_EXTEND) */
};

struct cachify_pool_guard cachify_pool_guard_acquire(
    struct cachify *c, const char *key, unsigned max_size,
    const struct cachify_lock_opts *opts);

/* Frees the guard's slot with its token: CACHIFY_OK, CACHIFY_LOST when the
 * slot was gone already, or the release's error; safe twice. */
int cachify_pool_guard_release(struct cachify_pool_guard *g);

#define CACHIFY_SCOPED_POOL(g, c, key, max_size, opts)                     \
    struct cachify_pool_guard g                                            \
        __attribute__((cleanup(cachify_pool_guard_release)))              \
        = cachify_pool_guard_acquire((c), (key), (max_size), (opts))

/* --------------------------------------------------------------- renewal
 *
 * A lock's TTL is a guess; a holder that runs longer loses it silently.
 * A renewer keeps it alive while its holder lives: a thread of its own,
 * with a connection of its own (same URL and options as the handle; the
 * handle stays free for its thread), sends EXTEND key token exp_ms every
 * exp_ms / 3.  When the holder's process dies the renewals stop and the
 * lock expires at most exp_ms after the last one.  A renewal that fails is
 * never swallowed: the server answered 0 (the token no longer holds the
 * key: it expired or was force-released), or no renewal got through
 * before the lease ran out (server unreachable, each attempt bounded by
 * exp_ms / 3): the renewer stops, calls cb once (from its thread), and
 * cachify_renewer_stop returns CACHIFY_LOST.  A holder cut off from the
 * server keeps the lock for exp_ms after its last renewal that got
 * through, so for at least 2/3 of exp_ms and at most exp_ms; before the
 * first one, exp_ms after its acquire was sent (the guards and decorators
 * note that time; cachify_renewer_start takes its own call as the start).
 * After an acquire that waited, the wait counts too (the client cannot
 * tell when in it the grant came): the first renewal goes at once.
 * The loss is reported once the lease may have ended, at most one attempt
 * (exp_ms / 3) later.
 */
struct cachify_renewer;

/* A renewal failed: status CACHIFY_LOST (the server said the token holds
 * the key no longer) or the error that outlasted the lease (CACHIFY_ERR_IO
 * ...); errstr says which.  Called from the renewer's thread. */
typedef void (*cachify_renew_cb)(const char *key, uint64_t token, int status,
                                 const char *errstr, void *arg);

/* Starts renewing key (held by token, lifetime exp_ms; 0: the handle's
 * default_exp_ms) for c's holder; the lease is counted from this call, so
 * call it right after the acquire.  CACHIFY_OK with *out, or an error
 * (CACHIFY_ERR_ARG for CACHIFY_EXP_NONE: nothing to renew; the renewer's
 * connection could not be opened: its status). */
int cachify_renewer_start(struct cachify_renewer **out, struct cachify *c,
                          const char *key, uint64_t token, long long exp_ms,
                          cachify_renew_cb cb, void *arg);

/* Stops renewing and frees r: CACHIFY_OK when no renewal failed,
 * CACHIFY_LOST when one did (cb was told).  NULL: CACHIFY_OK. */
int cachify_renewer_stop(struct cachify_renewer *r);

/* The callback of the renewers that opts.renew starts on c (NULL: none;
 * their failures still make the release CACHIFY_LOST). */
void cachify_set_renew_cb(struct cachify *c, cachify_renew_cb cb, void *arg);

/* ---------------------------------------------------------- scoped lock */

/* Runs fn(arg, token) while holding key, then releases it with its token.
 * Returns CACHIFY_OK (fn ran, the lock was released), CACHIFY_LOST (fn
 * ran, but the release found the lock no longer held by its token), or
 * the acquire's status (fn did not run).  A failed release (CACHIFY_ERR_IO
 * ...) leaves its message in cachify_errstr and returns CACHIFY_OK: the
 * lock then ends with its TTL. */
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
    struct cachify_renewer *renewer; /* with opts.renew; NULL otherwise */
};

struct cachify_guard cachify_guard_acquire(struct cachify *c, const char *key,
                                           const struct cachify_lock_opts *opts);

/* Releases a held guard (with its token) and frees its key; safe to call
 * twice and on a guard whose acquire failed (both CACHIFY_OK).  Returns
 * CACHIFY_OK, CACHIFY_LOST when the lock was no longer held by the guard's
 * token (message in cachify_errstr), or the release's error. */
int cachify_guard_release(struct cachify_guard *g);

/* Declares guard variable `g` that holds key until the enclosing scope ends
 * by any path (return, break, goto), through the cleanup attribute of GCC
 * and Clang:
 *     CACHIFY_SCOPED_LOCK(g, c, "job", &opts);
 *     if (g.status != CACHIFY_OK) return g.status;
 *     ... critical section ...
 *     return cachify_guard_release(&g);   optional: CACHIFY_LOST, ...
 * The cleanup cannot report CACHIFY_LOST; to learn it, release the guard
 * yourself at the end (the cleanup then has nothing left to do). */
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
 * The sync renewer's job (see "renewal" above) for a lock or pool slot
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

/* ------------------------------------------------------------ decorators
 *
 * py-cachify's @lock(key='sleep_for_lock-{arg}') and @once(...) as macros
 * that declare, in one place, a function whose every call runs under a lock
 * keyed by its arguments, and its companions <name>_is_locked(args...) and
 * <name>_release(args...) that format the key the same way.  See
 * docs/client.md for why they have this shape.
 */

/* Longest key, prefix included (cachifyd's largest max_key_len).  A longer
 * key is CACHIFY_ERR_ARG on every backend; the server may set a lower bound
 * (its default is 1024 bytes), which is CACHIFY_ERR_SERVER. */
#define CACHIFY_KEY_MAX 65536

/* What py-cachify 3.x adds to a decorated function's formatted key (its
 * operation postfix), used on handles with pycachify_keys. */
#define CACHIFY_IMPL_OP_LOCK "-lock"
#define CACHIFY_IMPL_OP_ONCE "-once"

/* Support for the macros below, not for direct use: each formats a key
 * from fmt (printf-style, into a buffer of any size up to CACHIFY_KEY_MAX),
 * adds op (CACHIFY_IMPL_OP_*) when the handle has pycachify_keys, and
 * acquires it into *g / asks whether it is held / force-releases it.
 * The format attribute makes the compiler check the key format against the
 * function's parameters. */
int cachify_impl_lock_fmt(struct cachify_guard *g, struct cachify *c,
                          const struct cachify_lock_opts *opts,
                          const char *op, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int cachify_impl_is_locked_fmt(struct cachify *c, const char *op,
                               const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int cachify_impl_release_fmt(struct cachify *c, const char *op,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* (int a, const char *b) -> int a, const char *b */
#define CACHIFY_IMPL_UNPAREN(...) __VA_ARGS__

/* Marks parameters a key spec may leave out as used (-Wunused-parameter),
 * portably: passing them to a function that ignores them. */
static inline void cachify_impl_use(int n, ...)
{
    (void)n;
}

/* The companions every decorated function gets: 1/0 or an error, and the
 * forced release (1 freed, 0 not held), with the key formatted as the
 * function formats it (op: the function's CACHIFY_IMPL_OP_*). */
#define CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, op)              \
    int name##_is_locked(struct cachify *cachify_c_,                          \
                         CACHIFY_IMPL_UNPAREN params)                         \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_is_locked_fmt(cachify_c_, op,                     \
                                          CACHIFY_IMPL_UNPAREN keyspec);      \
    }                                                                         \
    int name##_release(struct cachify *cachify_c_,                            \
                       CACHIFY_IMPL_UNPAREN params)                           \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_release_fmt(cachify_c_, op,                       \
                                        CACHIFY_IMPL_UNPAREN keyspec);        \
    }

/* Declarations of what CACHIFY_LOCKED_FN / CACHIFY_ONCE_FN define, for a
 * header (use the _VOID one for the _VOID macros). */
#define CACHIFY_LOCKED_FN_DECL(ret, name, params)                             \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params);                                    \
    int name##_is_locked(struct cachify *cachify_c_,                          \
                         CACHIFY_IMPL_UNPAREN params);                        \
    int name##_release(struct cachify *cachify_c_,                            \
                       CACHIFY_IMPL_UNPAREN params)
#define CACHIFY_LOCKED_FN_VOID_DECL(name, params)                             \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params);        \
    int name##_is_locked(struct cachify *cachify_c_,                          \
                         CACHIFY_IMPL_UNPAREN params);                        \
    int name##_release(struct cachify *cachify_c_,                            \
                       CACHIFY_IMPL_UNPAREN params)

/* py-cachify's @lock(key=..., nowait=..., timeout=..., exp=...).
 *
 *     static const struct cachify_lock_opts job_opts = CACHIFY_LOCK_OPTS_DEFAULT;
 *     CACHIFY_LOCKED_FN(int, job, (int id, const char *what), (id, what),
 *                       ("job-%d-%s", id, what), &job_opts)
 *     {
 *         return do_job(id, what);
 *     }
 *
 * defines
 *     int job(struct cachify *c, int *result, int id, const char *what);
 *     int job_is_locked(struct cachify *c, int id, const char *what);
 *     int job_release(struct cachify *c, int id, const char *what);
 * job() formats the key with the key spec, a parenthesised printf argument
 * list over the parameters (py-cachify's 'job-{id}-{what}'; a constant key
 * is just ("job")), checked by the compiler; acquires it with opts (a
 * const struct cachify_lock_opts *, NULL for the defaults; evaluated at each
 * call); runs the body with *result set (result may be NULL); releases the
 * lock with its token and returns CACHIFY_OK, or CACHIFY_LOST when the
 * release found the lock no longer held by its token (the body outlived
 * exp, or the lock was force-released; *result is still set).  Or it
 * returns the acquire's status (CACHIFY_LOCKED, ...) without running the
 * body.  On a handle with pycachify_keys the key is py-cachify's: the
 * formatted key plus "-lock" ("-once" for the once macros), so messages
 * read "job-1-x-lock is already locked!" as py-cachify 3.x's do.  args
 * repeats the parameter names, to call the body.  ret must be a plain type
 * name (typedef arrays and function pointers); the function needs at least
 * one parameter.  The functions have external linkage like any function
 * definition.  The body runs with cachify_errstr(c) "" and the handle free
 * for other calls (it is not reentrant on the same key). */
#define CACHIFY_LOCKED_FN(ret, name, params, args, keyspec, opts)             \
    CACHIFY_LOCKED_FN_DECL(ret, name, params);                                \
    static ret name##_body params;                                            \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_LOCK) \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params)                                     \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_LOCK, (opts),             \
                           CACHIFY_IMPL_RUN_STORE(ret, name, args), 0,        \
                           (void)0)                                           \
    static ret name##_body params

/* The one function body of every sync decorator: take the lock (keyspec,
 * op) with opts, run `run` (the body) and release with the token
 * (CACHIFY_LOST when the lock was gone by then; a failed release is not
 * the body's failure, and its message stays in cachify_errstr); when the
 * key is held and `skip` is true (once without raise_on_locked), run
 * `on_skip` and answer 1 instead of CACHIFY_LOCKED. */
#define CACHIFY_IMPL_SYNC_CALL(keyspec, op, opts, run, skip, on_skip)         \
    {                                                                         \
        struct cachify_guard cachify_g_;                                      \
        int cachify_st_ =                                                     \
            cachify_impl_lock_fmt(&cachify_g_, cachify_c_, opts, op,          \
                                  CACHIFY_IMPL_UNPAREN keyspec);              \
        if (cachify_st_ == CACHIFY_OK) {                                      \
            run;                                                              \
            if (cachify_guard_release(&cachify_g_) == CACHIFY_LOST)           \
                cachify_st_ = CACHIFY_LOST;                                   \
        } else if (cachify_st_ == CACHIFY_LOCKED && (skip)) {                 \
            on_skip;                                                          \
            cachify_st_ = 1;                                                  \
        }                                                                     \
        return cachify_st_;                                                   \
    }

/* Runs the body and stores what it returns in *result (when not NULL). */
#define CACHIFY_IMPL_RUN_STORE(ret, name, args)                               \
    do {                                                                      \
        ret cachify_r_ = name##_body args;                                    \
        if (cachify_result_ != NULL)                                          \
            *cachify_result_ = cachify_r_;                                    \
    } while (0)

/* The same for a function returning nothing:
 *     int name(struct cachify *c, params...);   plus the two companions. */
#define CACHIFY_LOCKED_FN_VOID(name, params, args, keyspec, opts)             \
    CACHIFY_LOCKED_FN_VOID_DECL(name, params);                                \
    static void name##_body params;                                           \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_LOCK) \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)         \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_LOCK, (opts),             \
                           name##_body args, 0, (void)0)                      \
    static void name##_body params

/* py-cachify's @once(key=..., raise_on_locked=..., return_on_locked=...):
 * one attempt with the default lock options.  name() returns CACHIFY_OK
 * when the body ran (*result set; CACHIFY_LOST as for CACHIFY_LOCKED_FN
 * when the lock was gone at its release); when another call holds the key
 * it returns CACHIFY_LOCKED if raise_on_locked, else 1 with *result =
 * return_on_locked (evaluated then); or another error.  Same companions. */
#define CACHIFY_ONCE_FN(ret, name, params, args, keyspec, raise_on_locked,    \
                        return_on_locked)                                     \
    CACHIFY_LOCKED_FN_DECL(ret, name, params);                                \
    static ret name##_body params;                                            \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_ONCE) \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params)                                     \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_ONCE, NULL,               \
                           CACHIFY_IMPL_RUN_STORE(ret, name, args),           \
                           !(raise_on_locked),                                \
                           if (cachify_result_ != NULL)                       \
                               *cachify_result_ = (return_on_locked))         \
    static ret name##_body params

/* once for a function returning nothing: CACHIFY_OK when it ran, 1 when
 * skipped (or CACHIFY_LOCKED if raise_on_locked), or an error. */
#define CACHIFY_ONCE_FN_VOID(name, params, args, keyspec, raise_on_locked)    \
    CACHIFY_LOCKED_FN_VOID_DECL(name, params);                                \
    static void name##_body params;                                           \
    CACHIFY_IMPL_COMPANIONS(name, params, args, keyspec, CACHIFY_IMPL_OP_ONCE) \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)         \
    CACHIFY_IMPL_SYNC_CALL(keyspec, CACHIFY_IMPL_OP_ONCE, NULL,               \
                           name##_body args, !(raise_on_locked), (void)0)     \
    static void name##_body params

/* py-cachify's @pooled(key=..., max_size=..., on_full=..., raise_on_full=...,
 * slot_exp=...): every call of name runs in a slot of the pool keyed by
 * its arguments, at most max_size at once across processes.
 *
 *     static const struct cachify_lock_opts slot = { .nowait = 1,
 *                                                    .exp_ms = 60000 };
 *     CACHIFY_POOLED_FN_VOID(worker, (const char *name), (name),
 *                            ("concurrent-pool"), 2, &slot, 0,
 *                            report_full(name))
 *     {
 *         ... at most 2 run this at once ...
 *     }
 *
 * defines
 *     int worker(struct cachify *c, const char *name);
 *     int worker_size(struct cachify *c, const char *name);  slots held
 * worker() formats the key from keyspec (as the lock macros; no "-lock"
 * op is added: these pools are not py-cachify's stored ones), takes a slot
 * with opts (NULL: one attempt, the handle's default lifetime), runs the
 * body, frees the slot by its token and returns CACHIFY_OK (CACHIFY_LOST
 * when the slot was gone by then).  When the pool is full (CACHIFY_FULL,
 * or CACHIFY_TIMEOUT after a wait): with raise_on_full, that status;
 * without, it evaluates on_full (an expression over the parameters,
 * py-cachify's on_full(*args); (void)0 for none) and returns 1.  Other
 * errors are returned as they are. */
int cachify_impl_pool_fmt(struct cachify_pool_guard *g, struct cachify *c,
                          unsigned max_size,
                          const struct cachify_lock_opts *opts,
                          const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int cachify_impl_pool_size_fmt(struct cachify *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define CACHIFY_POOLED_FN_DECL(ret, name, params)                             \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params);                                    \
    int name##_size(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)
#define CACHIFY_POOLED_FN_VOID_DECL(name, params)                             \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params);        \
    int name##_size(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)

#define CACHIFY_IMPL_POOL_SIZE_FN(name, params, args, keyspec)                \
    int name##_size(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)  \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_pool_size_fmt(cachify_c_,                         \
                                          CACHIFY_IMPL_UNPAREN keyspec);      \
    }

/* The body of every pooled function: slot, run, free; on_full when full. */
#define CACHIFY_IMPL_POOL_CALL(keyspec, max_size, opts, run, raise_on_full,   \
                               on_full)                                       \
    {                                                                         \
        struct cachify_pool_guard cachify_g_;                                 \
        int cachify_st_ =                                                     \
            cachify_impl_pool_fmt(&cachify_g_, cachify_c_, (max_size), opts,  \
                                  CACHIFY_IMPL_UNPAREN keyspec);              \
        if (cachify_st_ == CACHIFY_OK) {                                      \
            run;                                                              \
            if (cachify_pool_guard_release(&cachify_g_) == CACHIFY_LOST)      \
                cachify_st_ = CACHIFY_LOST;                                   \
        } else if ((cachify_st_ == CACHIFY_FULL ||                            \
                    cachify_st_ == CACHIFY_TIMEOUT) && !(raise_on_full)) {    \
            on_full;                                                          \
            cachify_st_ = 1;                                                  \
        }                                                                     \
        return cachify_st_;                                                   \
    }

/* With a result: *result gets the body's value, or on_full's when full. */
#define CACHIFY_POOLED_FN(ret, name, params, args, keyspec, max_size, opts,   \
                          raise_on_full, on_full)                             \
    CACHIFY_POOLED_FN_DECL(ret, name, params);                                \
    static ret name##_body params;                                            \
    CACHIFY_IMPL_POOL_SIZE_FN(name, params, args, keyspec)                    \
    int name(struct cachify *cachify_c_, ret *cachify_result_,                \
             CACHIFY_IMPL_UNPAREN params)                                     \
    CACHIFY_IMPL_POOL_CALL(keyspec, max_size, (opts),                         \
                           CACHIFY_IMPL_RUN_STORE(ret, name, args),           \
                           raise_on_full,                                     \
                           if (cachify_result_ != NULL)                       \
                               *cachify_result_ = (on_full))                  \
    static ret name##_body params

#define CACHIFY_POOLED_FN_VOID(name, params, args, keyspec, max_size, opts,   \
                               raise_on_full, on_full)                        \
    CACHIFY_POOLED_FN_VOID_DECL(name, params);                                \
    static void name##_body params;                                           \
    CACHIFY_IMPL_POOL_SIZE_FN(name, params, args, keyspec)                    \
    int name(struct cachify *cachify_c_, CACHIFY_IMPL_UNPAREN params)         \
    CACHIFY_IMPL_POOL_CALL(keyspec, max_size, (opts), name##_body args,       \
                           raise_on_full, (void)(on_full))                    \
    static void name##_body params

/* Async decorators belong to the async half (client/async_deco.c) and go
 * below this line; they share the key spec convention above: a
 * parenthesised printf argument list over the function's parameters. */

/* ---- async decorator (runtime in client/async_deco.c)
 *
 * py-cachify's @lock on an `async def`, for a struct cachify_async, in the
 * shape of CACHIFY_LOCKED_FN_VOID above (name, params, args, keyspec, opts):
 *
 *     static const struct cachify_lock_opts sleep_opts = CACHIFY_LOCK_OPTS_DEFAULT;
 *     CACHIFY_ASYNC_LOCKED_FN(sleep_for, (int arg), (arg),
 *                             ("sleep_for_lock-%d", arg), &sleep_opts)
 *     {
 *         struct task *t = cachify_async_call_ctx(call);
 *         ... start the work; when it has ended: cachify_async_call_done(call);
 *     }
 *
 * defines (external linkage; CACHIFY_ASYNC_LOCKED_FN_DECL declares them)
 *     int sleep_for(struct cachify_async *ac, void *ctx, cachify_done_cb done,
 *                   int arg);
 *     int sleep_for_is_locked(struct cachify_async *ac, cachify_value_cb cb,
 *                             void *cbarg, int arg);   1/0 through cb
 *     int sleep_for_release(struct cachify_async *ac, cachify_value_cb cb,
 *                           void *cbarg, int arg);     forced: 1/0 through cb
 * sleep_for() formats the key with keyspec (a printf argument list over the
 * parameters, as for the sync macros), acquires it with opts (NULL: the
 * defaults; evaluated at each call) without blocking, runs the body once
 * the lock is held, releases the lock with its token when the body calls
 * cachify_async_call_done(call), then calls done(status, errstr, ctx).  It returns CACHIFY_OK (done will be
 * called exactly once, never inside this call) or an error (done is not
 * called), like every async call.
 *
 * Why this shape: the same signature-once, keyspec and companion
 * conventions as the sync macros, so a function moves between the two by
 * changing the macro and the body.  C has no closures, and an async body
 * runs after the call returned, so the macro stores a copy of the arguments
 * (a struct made from the parameter list: each parameter must be a plain
 * declaration, so typedef function pointers and arrays; `args` must be the
 * parameter names, 1 to 8) and hands them to the body by name, as Python
 * would.  The body's work is itself
 * asynchronous, so returning from it is not the end: it receives `call`,
 * this call's handle, and ends by passing it to cachify_async_call_done
 * (from any later callback).  Results travel in the caller's ctx pointer
 * (cachify_async_call_ctx), which comes back to `done`.  Pointer arguments
 * are copied as pointers: what they point to must outlive the call.
 *
 * done's status: CACHIFY_OK when the body ran and the lock was released;
 * CACHIFY_LOST when the body ran but the release found the lock no longer
 * held by its token (it expired or was force-released meanwhile; the
 * token kept a later holder's lock safe); the
 * acquire's failure when the body did not run -- CACHIFY_LOCKED /
 * CACHIFY_TIMEOUT with "<key> is already locked!", py-cachify's
 * CachifyLockError; or the release's error (CACHIFY_ERR_IO,
 * CACHIFY_ERR_CLOSED) after the body ran.
 *
 * CACHIFY_ASYNC_ONCE_FN, at the end, is @once in the same shape.
 */

struct cachify_async_call;

/* The callback of the renewals that opts.renew starts for ac's decorated
 * calls (NULL: none).  In the async API a decorated call with .renew
 * sends EXTEND key token exp_ms every exp_ms / 3 on ac's own connection,
 * from ac's event loop, while its body runs; a failure (the server's 0, or
 * no renewal through before the lease ran out) is reported once, from the
 * loop, and the call completes with CACHIFY_LOST. */
void cachify_async_set_renew_cb(struct cachify_async *ac, cachify_renew_cb cb,
                                void *arg);

/* Completion of one decorated call (see above): status CACHIFY_OK, 1 for a
 * once call that skipped, or < 0; errstr is never NULL. */
typedef void (*cachify_done_cb)(int status, const char *errstr, void *ctx);

/* The body's work is over: releases the lock with its token, then calls
 * the call's done (never from inside this function).  Exactly once per
 * body; call is freed after done returns. */
void cachify_async_call_done(struct cachify_async_call *call);

/* The caller's ctx; the fencing token the body runs under; the formatted
 * key (without the handle's prefix; with "-lock" / "-once" on a handle
 * with pycachify_keys).  Valid until cachify_async_call_done. */
void *cachify_async_call_ctx(const struct cachify_async_call *call);
uint64_t cachify_async_call_token(const struct cachify_async_call *call);
const char *cachify_async_call_key(const struct cachify_async_call *call);

/* Support for the macros below, not for direct use: start formats the key,
 * copies args[0..argsize) and acquires; once_start does the same with the
 * default options and, when the key is held, reports done(1, ...) (skipped)
 * unless raise_on_locked; the others format the key and ask /
 * force-release.  On a handle with pycachify_keys, start adds
 * CACHIFY_IMPL_OP_LOCK to the key, once_start CACHIFY_IMPL_OP_ONCE, and
 * the others their op.  Return values as the async calls. */
int cachify_impl_async_call_start(struct cachify_async *ac,
                                  const struct cachify_lock_opts *opts,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int cachify_impl_async_once_start(struct cachify_async *ac,
                                  int raise_on_locked,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int cachify_impl_async_is_locked_fmt(struct cachify_async *ac,
                                     cachify_value_cb cb, void *arg,
                                     const char *op, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
int cachify_impl_async_release_fmt(struct cachify_async *ac,
                                   cachify_value_cb cb, void *arg,
                                   const char *op, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Applies m(a, item) to each of 1 to 8 comma-separated items, joined by
 * nothing (SEQ) or by commas (LIST). */
#define CACHIFY_IMPL_CAT(a, b) CACHIFY_IMPL_CAT2(a, b)
#define CACHIFY_IMPL_CAT2(a, b) a##b
#define CACHIFY_IMPL_NARGS(...)                                               \
    CACHIFY_IMPL_NARGS2(__VA_ARGS__, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define CACHIFY_IMPL_NARGS2(a1, a2, a3, a4, a5, a6, a7, a8, n, ...) n
#define CACHIFY_IMPL_SEQ(m, a, ...)                                           \
    CACHIFY_IMPL_CAT(CACHIFY_IMPL_SEQ, CACHIFY_IMPL_NARGS(__VA_ARGS__))       \
    (m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ1(m, a, x) m(a, x)
#define CACHIFY_IMPL_SEQ2(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ1(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ3(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ2(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ4(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ3(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ5(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ4(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ6(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ5(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ7(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ6(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_SEQ8(m, a, x, ...)                                       \
    m(a, x) CACHIFY_IMPL_SEQ7(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST(m, a, ...)                                          \
    CACHIFY_IMPL_CAT(CACHIFY_IMPL_LIST, CACHIFY_IMPL_NARGS(__VA_ARGS__))      \
    (m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST1(m, a, x) m(a, x)
#define CACHIFY_IMPL_LIST2(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST1(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST3(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST2(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST4(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST3(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST5(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST4(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST6(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST5(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST7(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST6(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_LIST8(m, a, x, ...)                                      \
    m(a, x), CACHIFY_IMPL_LIST7(m, a, __VA_ARGS__)
#define CACHIFY_IMPL_FIELD(a, decl) decl;
#define CACHIFY_IMPL_MEMBER(a, name) (a)->name

#define CACHIFY_ASYNC_LOCKED_FN_DECL(name, params)                            \
    int name(struct cachify_async *cachify_ac_, void *cachify_ctx_,           \
             cachify_done_cb cachify_done_, CACHIFY_IMPL_UNPAREN params);     \
    int name##_is_locked(struct cachify_async *cachify_ac_,                   \
                         cachify_value_cb cachify_cb_, void *cachify_arg_,    \
                         CACHIFY_IMPL_UNPAREN params);                        \
    int name##_release(struct cachify_async *cachify_ac_,                     \
                       cachify_value_cb cachify_cb_, void *cachify_arg_,      \
                       CACHIFY_IMPL_UNPAREN params)

/* The async companions, as CACHIFY_IMPL_COMPANIONS but answering through
 * cb. */
#define CACHIFY_IMPL_ASYNC_COMPANIONS(name, params, args, keyspec, op)        \
    int name##_is_locked(struct cachify_async *cachify_ac_,                   \
                         cachify_value_cb cachify_cb_, void *cachify_arg_,    \
                         CACHIFY_IMPL_UNPAREN params)                         \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_async_is_locked_fmt(                              \
            cachify_ac_, cachify_cb_, cachify_arg_, op,                       \
            CACHIFY_IMPL_UNPAREN keyspec);                                    \
    }                                                                         \
    int name##_release(struct cachify_async *cachify_ac_,                     \
                       cachify_value_cb cachify_cb_, void *cachify_arg_,      \
                       CACHIFY_IMPL_UNPAREN params)                           \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_async_release_fmt(                                \
            cachify_ac_, cachify_cb_, cachify_arg_, op,                       \
            CACHIFY_IMPL_UNPAREN keyspec);                                    \
    }

/* What the two async macros share: the argument struct, the function that
 * hands its members to the body, name() starting the call through
 * start(ac, how, ...) (one of the start functions above), the companions
 * (whose keys take op, the suffix start adds), and the body's
 * declaration. */
#define CACHIFY_IMPL_ASYNC_FN(name, params, args, keyspec, start, how, op)    \
    CACHIFY_ASYNC_LOCKED_FN_DECL(name, params);                               \
    CACHIFY_IMPL_ASYNC_CORE(name, params, args, keyspec, start, how)          \
    CACHIFY_IMPL_ASYNC_COMPANIONS(name, params, args, keyspec, op)            \
    static void name##_body(struct cachify_async_call *call,                  \
                            CACHIFY_IMPL_UNPAREN params)

/* The argument struct, the runner and name() of every async decorator. */
#define CACHIFY_IMPL_ASYNC_CORE(name, params, args, keyspec, start, how)      \
    static void name##_body(struct cachify_async_call *call,                  \
                            CACHIFY_IMPL_UNPAREN params);                     \
    struct name##_cachify_args_ {                                             \
        CACHIFY_IMPL_SEQ(CACHIFY_IMPL_FIELD, 0, CACHIFY_IMPL_UNPAREN params)  \
    };                                                                        \
    static void name##_cachify_run_(struct cachify_async_call *cachify_call_, \
                                    void *cachify_args_)                      \
    {                                                                         \
        struct name##_cachify_args_ *cachify_a_ = cachify_args_;              \
        name##_body(cachify_call_,                                            \
                    CACHIFY_IMPL_LIST(CACHIFY_IMPL_MEMBER, cachify_a_,        \
                                      CACHIFY_IMPL_UNPAREN args));            \
    }                                                                         \
    int name(struct cachify_async *cachify_ac_, void *cachify_ctx_,           \
             cachify_done_cb cachify_done_, CACHIFY_IMPL_UNPAREN params)      \
    {                                                                         \
        struct name##_cachify_args_ cachify_a_ = {                            \
            CACHIFY_IMPL_UNPAREN args };                                      \
        return start(cachify_ac_, how, &cachify_a_, sizeof cachify_a_,        \
                     name##_cachify_run_, cachify_ctx_, cachify_done_,        \
                     CACHIFY_IMPL_UNPAREN keyspec);                           \
    }

#define CACHIFY_ASYNC_LOCKED_FN(name, params, args, keyspec, opts)            \
    CACHIFY_IMPL_ASYNC_FN(name, params, args, keyspec,                        \
                          cachify_impl_async_call_start, (opts),              \
                          CACHIFY_IMPL_OP_LOCK)

/* py-cachify's @once(key=..., raise_on_locked=..., return_on_locked=...) on
 * an `async def`: CACHIFY_ASYNC_LOCKED_FN's parameters, signatures, body
 * (`call`, ended by cachify_async_call_done) and companions, with
 * raise_on_locked (an int expression, evaluated at each call) where opts
 * was, in the shape of CACHIFY_ONCE_FN_VOID:
 *
 *     CACHIFY_ASYNC_ONCE_FN(import_file, (const char *src), (src),
 *                           ("import-%s", src), 0)
 *     {
 *         ... start the work; when it has ended: cachify_async_call_done(call);
 *     }
 *
 * One attempt with the default lock options (nowait, the handle's default
 * exp).  When the key is free the body runs and done gets what
 * CACHIFY_ASYNC_LOCKED_FN's done gets.  When another call (any handle, any
 * process) holds it, the body does not run and done gets
 *   - raise_on_locked:  CACHIFY_LOCKED, "<key> is already locked!";
 *   - otherwise:        1 (skipped), errstr "<key> is already locked!"
 *                       (the reason; not an error).
 * 1 is what the sync CACHIFY_ONCE_FN returns when it skips, so
 * done(status): 0 ran, 1 skipped, < 0 error, on both flavours.  There is
 * no return_on_locked parameter: an async body returns nothing (its
 * results go into ctx), so the caller's done applies return_on_locked to
 * ctx when it sees status 1 -- the skipped call never touched ctx.
 * CACHIFY_ASYNC_ONCE_FN_DECL declares the three functions. */
#define CACHIFY_ASYNC_ONCE_FN(name, params, args, keyspec, raise_on_locked)   \
    CACHIFY_IMPL_ASYNC_FN(name, params, args, keyspec,                        \
                          cachify_impl_async_once_start,                      \
                          ((raise_on_locked) ? 1 : 0), CACHIFY_IMPL_OP_ONCE)
#define CACHIFY_ASYNC_ONCE_FN_DECL(name, params)                              \
    CACHIFY_ASYNC_LOCKED_FN_DECL(name, params)

/* py-cachify's @pooled on an `async def`: CACHIFY_ASYNC_LOCKED_FN's shape
 * (parameters, body with `call`, ended by cachify_async_call_done) with a
 * slot of the pool keyed by keyspec (max_size slots; opts as
 * CACHIFY_POOLED_FN's, .renew included) instead of a lock:
 *
 *     CACHIFY_ASYNC_POOLED_FN(fetch, (int id), (id), ("fetchers"), 4,
 *                             NULL, 0)
 *     { ... cachify_async_call_done(call); }
 *
 * defines int fetch(ac, ctx, done, id) and the size companion
 * int fetch_size(ac, cb, cbarg, id) (slots held, through cb).  When the
 * pool is full (or a wait ran out) the body does not run and done gets
 * CACHIFY_FULL / CACHIFY_TIMEOUT with "<key> pool is full" when
 * raise_on_full, else 1 with that message: the caller's done is where
 * py-cachify's on_full runs (ctx has what it needs).  Otherwise done gets
 * what CACHIFY_ASYNC_LOCKED_FN's done gets (CACHIFY_LOST when the slot was
 * gone at its release). */
struct cachify_impl_pool_how {
    unsigned max_size;
    const struct cachify_lock_opts *opts;
    int raise_on_full;
};
int cachify_impl_async_pool_start(struct cachify_async *ac,
                                  const struct cachify_impl_pool_how *how,
                                  const void *args, size_t argsize,
                                  void (*run)(struct cachify_async_call *call,
                                              void *args),
                                  void *ctx, cachify_done_cb done,
                                  const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
int cachify_impl_async_pool_size_fmt(struct cachify_async *ac,
                                     cachify_value_cb cb, void *arg,
                                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define CACHIFY_ASYNC_POOLED_FN_DECL(name, params)                            \
    int name(struct cachify_async *cachify_ac_, void *cachify_ctx_,           \
             cachify_done_cb cachify_done_, CACHIFY_IMPL_UNPAREN params);     \
    int name##_size(struct cachify_async *cachify_ac_,                        \
                    cachify_value_cb cachify_cb_, void *cachify_arg_,         \
                    CACHIFY_IMPL_UNPAREN params)

#define CACHIFY_ASYNC_POOLED_FN(name, params, args, keyspec, max_size, opts,  \
                                raise_on_full)                                \
    CACHIFY_ASYNC_POOLED_FN_DECL(name, params);                               \
    CACHIFY_IMPL_ASYNC_CORE(name, params, args, keyspec,                      \
                            cachify_impl_async_pool_start,                    \
                            (&(const struct cachify_impl_pool_how){           \
                                (max_size), (opts),                           \
                                (raise_on_full) ? 1 : 0}))                    \
    int name##_size(struct cachify_async *cachify_ac_,                        \
                    cachify_value_cb cachify_cb_, void *cachify_arg_,         \
                    CACHIFY_IMPL_UNPAREN params)                              \
    {                                                                         \
        cachify_impl_use(0, CACHIFY_IMPL_UNPAREN args);                       \
        return cachify_impl_async_pool_size_fmt(                              \
            cachify_ac_, cachify_cb_, cachify_arg_,                           \
            CACHIFY_IMPL_UNPAREN keyspec);                                    \
    }                                                                         \
    static void name##_body(struct cachify_async_call *call,                  \
                            CACHIFY_IMPL_UNPAREN params)

#ifdef __cplusplus
}
#endif

#endif
