/* cachify.h - libcachify-client: py-cachify's lock and decorator semantics
 * for C programs, over cachifyd or over an in-process lock table.
 *
 * One header to include (it includes the rest of the public API: the async
 * calls, cachify_async.h; the decorator macros, cachify_decorate.h and
 * cachify_async_decorate.h; this file keeps the handle, the errors, the
 * options, the sync calls, pools, renewal and guards), opaque types, one
 * error model: every call returns a status (enum cachify_status; 0 is
 * success, errors are negative, and calls that answer yes/no return 1 or
 * 0) and the handle keeps a message for the last failed call
 * (cachify_errstr).  Errors are never sticky: after an I/O
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

#ifdef __cplusplus
}
#endif

/* The rest of the public API, one header per part (each refuses to be
 * included alone; the installed copies sit next to this one). */
#include "cachify_async.h"
#include "cachify_decorate.h"
#include "cachify_async_decorate.h"

#endif
